"""What every wallet screen needs: the browser's wallet, the service, and errors as text.

A browser's wallet id lives in its signed session cookie; a first visit creates a wallet.
One browser can only ever reach the wallet (and demo wallets) named in its own session.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, g, request, session

from connext.messaging import MessagingTimeout, NoResponders, NotConnected
from connext.protocol import errors

from ..assets import Asset, InputError
from ..chunks import ChunkShop
from ..config import WebConfig
from ..limits import SlidingWindow, TooMany
from ..micropay import MicroPayments
from ..wallets import NodeUnreachable, Wallet, WalletService

WALLET_KEY = "wallet_id"


def wallets() -> WalletService:
    service: WalletService = current_app.extensions["connext.wallets"]
    return service


def micro() -> MicroPayments:
    """Streams and oracle payments (app/micropay.py)."""
    value: MicroPayments = current_app.extensions["connext.micro"]
    return value


def chunk_shop() -> ChunkShop:
    """The demo's pay-per-chunk scene (app/chunks.py)."""
    value: ChunkShop = current_app.extensions["connext.chunks"]
    return value


def config() -> WebConfig:
    value: WebConfig = current_app.extensions["connext.config"]
    return value


def current_wallet() -> Wallet:
    """This browser's wallet, created on its first visit."""
    cached = g.get("wallet")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    wallet = wallets().get_wallet(session.get(WALLET_KEY))
    if wallet is None:
        wallet = new_wallet()
        use_wallet(wallet)
    g.wallet = wallet
    return wallet


def new_wallet(phrase: str | None = None) -> Wallet:
    """Create a wallet (from `phrase` when restoring), within the per-client limit
    (`TooMany` beyond it)."""
    count_new_wallet()
    return wallets().create_wallet(phrase)


def count_new_wallet() -> None:
    """Count a wallet this client is about to create; `TooMany` over the limit."""
    limit: SlidingWindow = current_app.extensions["connext.wallet_limit"]
    limit.hit(request.remote_addr or "unknown")


def use_wallet(wallet: Wallet) -> None:
    session.permanent = True
    session[WALLET_KEY] = wallet.id
    g.wallet = wallet


def fmt(asset: Asset, amount: int) -> str:
    return f"{asset.format(amount)} {asset.symbol}"


MESSAGES = {
    "insufficient_balance": "That is more than your balance.",
    "insufficient_collateral": "The node cannot deliver that much right now; try a smaller "
                               "amount.",
    "channel_not_set_up": "The recipient has no wallet on this network yet.",
    "transfer_to_self": "You cannot pay yourself.",
    "invalid_amount": "The amount must be more than zero.",
    "link_already_claimed": "This link was already claimed.",
    "link_cancelled": "This link was cancelled by its creator.",
    "unknown_link": "This link does not exist on this network.",
    "invalid_link": "This is not a valid payment link.",
    "not_link_creator": "Only the wallet that created a link can cancel it.",
    "not_disputed": "The channel is not disputed on chain yet: force-close it first.",
    "dispute_window_open": "The dispute window is still open; exit once it has ended.",
    "unknown_disputed_state": "The chain holds a channel state this wallet does not have.",
    "channel_disputed": "This channel is being closed on chain; it takes no more payments.",
    "unknown_stream": "There is no open stream with that id in this wallet.",
    "voucher_above_budget": "That is more than what is left of the stream's budget.",
    "invalid_transfer_resolver": "That receipt is not the oracle's signature over this "
                                 "payment and outcome.",
    "unknown_transfer": "That payment is no longer waiting (it was claimed or refunded).",
    "quote_expired": "The swap quote expired before the payment was made; nothing was sent. "
                     "Review the payment again for a fresh quote.",
    "quote_used": "That swap quote was used already; review the payment again for a fresh "
                  "one.",
    "quote_altered": "That swap quote is not the node's as it was given; nothing was sent.",
    "quote_foreign": "That swap quote was made for another wallet; nothing was sent.",
    "invalid_quote": "That swap quote does not fit this payment; review it again.",
    "unsupported_swap": "The node does not swap between these assets.",
    "rate_unavailable": "The node has no current rate for this swap; try again in a moment.",
}


def explain(exc: BaseException) -> str:
    """A sentence for the user; never a stack trace."""
    if isinstance(exc, InputError | NodeUnreachable):
        return str(exc)
    if isinstance(exc, TooMany):
        return exc.message
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code in MESSAGES:
        return MESSAGES[code]
    if isinstance(exc, NoResponders | MessagingTimeout | NotConnected | TimeoutError
                  | ConnectionError):
        return ("The node is not answering right now; nothing was lost. Try again in a "
                "moment.")
    if isinstance(exc, errors.ProtocolError):  # incl. the node's own typed refusals
        return exc.message[:1].upper() + exc.message[1:]
    return "Something went wrong on our side; nothing was sent. Try again in a moment."


def field_of(exc: BaseException, default: str) -> str:
    if isinstance(exc, InputError):
        return exc.field
    if getattr(exc, "code", None) in ("insufficient_balance", "invalid_amount"):
        return "amount"
    if getattr(exc, "code", None) in ("channel_not_set_up", "transfer_to_self"):
        return "recipient"
    return default


def form_error(exc: BaseException, default: str = "form") -> dict[str, Any]:
    return {field_of(exc, default): explain(exc)}
