"""The JSON API for integrators in other languages: one wallet per token, under /api/v1.

It mirrors the client SDK (`connext.client.Client`) for one wallet: the wallet is named in
the path, the caller proves it may act for it with that wallet's API token
(`Authorization: Bearer cxt_...`). Every route is declared with `route`: the token is
checked first, then the body's bytes (app/api_input.py), then its fields by the view's
model (app/api_models.py, through spectree), all before anything is touched; every error
is `{"error": {"code", "message", "field"?}}` with a sentence from the same place the
wallet screens get theirs. The OpenAPI document, generated from the same models, is at
/api/openapi.json (app/openapi.py); docs/API.md explains it with curl examples. Streams
and oracle payments live in app/api_micro.py.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Coroutine
from datetime import UTC
from typing import Any, TypeVar, get_type_hints

from flask import Blueprint, Response, current_app, g, jsonify, request
from flask.blueprints import BlueprintSetupState
from pydantic_core import PydanticCustomError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.routing.exceptions import RoutingException

from connext.client import Client
from connext.messaging import MessagingError, RemoteError
from connext.protocol import errors
from connext.protocol.serialization import (
    hexb,
    state_to_json,
    transfer_to_json,
    update_to_json,
)
from connext.protocol.swaps import quote_to_json
from connext.protocol.types import ChannelState

from . import api_input as inputs
from . import api_models as models
from .api_events import EventHub, EventStream, TooManyStreams
from .api_input import ApiError, invalid
from .assets import Asset, InputError
from .limits import TooMany
from .openapi import OPERATIONS, RETRY_AFTER, Operation, document, responses, spec
from .views.common import count_new_wallet, explain, wallets
from .wallets import NodeUnreachable, Wallet, WalletService

log = logging.getLogger(__name__)
T = TypeVar("T")

bp = Blueprint("api", __name__, url_prefix="/api")
WALLET = "/v1/wallets/<address>"
BEARER = {"WWW-Authenticate": 'Bearer realm="connext"'}
CONFLICT_CODES = {"duplicate_transfer", "stale_nonce", "channel_already_set_up",
                  "payment_id_reused",
                  "link_already_claimed", "link_cancelled", "channel_disputed",
                  "not_disputed", "dispute_window_open", "unknown_disputed_state",
                  "stream_not_open"}
NOT_FOUND_CODES = {"unknown_transfer", "unknown_link", "unknown_stream"}
DEFAULT_WAIT = 30
RUN_MARGIN = 30.0
"""Seconds a request may take beyond the payment's own wait (setup, proposal, node)."""


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    hub = EventHub()
    state.app.extensions["connext.api.events"] = hub
    service: WalletService | None = state.app.extensions.get("connext.wallets")
    if service is not None:
        service.listeners.append(hub.publish)


_service = wallets  # the one accessor of the app's WalletService (app/views/common.py)


def _hub() -> EventHub:
    hub: EventHub = current_app.extensions["connext.api.events"]
    return hub


def _run(coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
    return _service().run(coro, timeout)


# --- errors ---------------------------------------------------------------------------------


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return "The request failed."
    text = text[:1].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


FORM_FIELDS = {"asset": "assetId", "to": "recipient"}
"""Field names the wallet service uses in its `InputError`s -> the API's names."""


def _field_for(code: str) -> str | None:
    """The body field an SDK/node error is about, when the request has that field."""
    field = {"insufficient_balance": "amount", "invalid_amount": "amount",
             "channel_not_set_up": "recipient", "transfer_to_self": "recipient",
             "voucher_above_budget": "amount", "voucher_not_increasing": "amount",
             "invalid_transfer_resolver": "signature", "invalid_quote": "quote",
             "quote_altered": "quote", "quote_foreign": "quote", "quote_expired": "quote",
             "quote_used": "quote"}.get(code)
    return field if field in g.get("api_body_fields", ()) else None


def to_api_error(exc: BaseException) -> ApiError:
    """Any failure -> the answer the integrator gets (never a stack trace)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    if isinstance(exc, InputError):
        return invalid("invalid_input", _sentence(exc.message),
                       None if exc.field == "form" else FORM_FIELDS.get(exc.field, exc.field))
    if isinstance(exc, TooMany):
        return ApiError(429, getattr(exc, "code", "too_many_wallets"), exc.message,
                        headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, NodeUnreachable):
        return ApiError(503, "node_unreachable", _sentence(explain(exc)))
    if isinstance(exc, RemoteError) and exc.code in ("internal_error", "messaging_error"):
        return ApiError(502, "node_error", "The node failed to handle this request; nothing "
                                           "was sent. Try again in a moment.")
    if isinstance(exc, MessagingError) and not isinstance(exc, RemoteError):
        return ApiError(503, "node_unreachable", _sentence(explain(exc)))
    if isinstance(exc, errors.ProtocolError):
        code = exc.code
        status = 409 if code in CONFLICT_CODES else 404 if code in NOT_FOUND_CODES else 422
        if code == "rate_limited":
            status = 429
        return ApiError(status, code, _sentence(explain(exc)), _field_for(code))
    if isinstance(exc, TimeoutError):
        return ApiError(503, "timeout", "The operation did not finish in time; it may still "
                                        "complete. Check the wallet's history before trying "
                                        "again.")
    if isinstance(exc, OSError):
        return ApiError(503, "unavailable", "A service the wallet depends on (the chain or "
                                            "the node) is not reachable right now; try again "
                                            "in a moment.")
    log.error("API request failed", exc_info=exc)
    return ApiError(500, "internal_error", _sentence(explain(exc)))


def _http_error(exc: HTTPException) -> ApiError:
    status = exc.code or 500
    messages = {
        404: ("not_found", "There is no such API route; see /api/openapi.json."),
        405: ("method_not_allowed", "This route does not accept that method."),
        413: ("payload_too_large", "The body is too large (at most 64 KiB)."),
    }
    code, message = messages.get(status, ("http_error", _sentence(exc.description or "")))
    headers = {k: v for k, v in exc.get_headers() if k.lower() == "allow"}
    return ApiError(status, code, message, headers=headers)


def error_response(error: ApiError) -> Response:
    response = jsonify(error.body())
    response.status_code = error.status
    for key, value in error.headers.items():
        response.headers[key] = value
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(Exception)
def _on_error(exc: Exception) -> Response:
    return error_response(to_api_error(exc))


@bp.after_request
def _finish(response: Response) -> Response:
    response.headers.setdefault("Cache-Control", "no-store")
    if request.method == "OPTIONS":
        # Flask's automatic answer would also list the methods of the catch-all route
        allowed = _allowed_methods(request.path)
        if not allowed:
            return error_response(ApiError(404, "not_found", "There is no such API route; "
                                                             "see /api/openapi.json."))
        response.headers["Allow"] = ", ".join(allowed)
    return response


_CATCH_ALL = ("api.unknown_route", "api.unknown_root")
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


@bp.route("/", methods=_METHODS, endpoint="unknown_root")
@bp.route("/<path:rest>", methods=_METHODS, endpoint="unknown_route")
def _unknown(rest: str = "") -> Response:
    """Anything under /api that no route takes: JSON 404, or 405 with `Allow` when the path
    exists with other methods."""
    allowed = _allowed_methods(request.path)
    if allowed:
        methods = ", ".join(allowed)
        raise ApiError(405, "method_not_allowed",
                       f"{request.method} is not allowed on this route; it accepts {methods}.",
                       headers={"Allow": methods})
    raise ApiError(404, "not_found", "There is no such API route; see /api/openapi.json.")


def _allowed_methods(path: str) -> list[str]:
    """The methods the API's own routes (not the catch-all) accept at `path`."""
    routes: Map | None = current_app.extensions.get("connext.api.routes")
    if routes is None:
        routes = Map([Rule(r.rule, methods=r.methods, endpoint=r.endpoint)
                      for r in current_app.url_map.iter_rules()
                      if r.endpoint.startswith("api.") and r.endpoint not in _CATCH_ALL])
        current_app.extensions["connext.api.routes"] = routes
    try:
        return sorted(routes.bind("localhost").allowed_methods(path))
    except RoutingException:
        return []


# --- authentication and the routes' declaration ----------------------------------------------


def _authorize(address: str) -> Wallet:
    """The wallet in the path, if the request carries one of its live API tokens."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "unauthorized", "Send the wallet's API token in the header "
                                            "'Authorization: Bearer <token>'.", headers=BEARER)
    wallet = None if len(token) > 200 else _service().wallet_for_token(token)
    if wallet is None:
        raise ApiError(401, "invalid_token", "That API token is not valid (it may have been "
                                             "revoked); create a new one in the wallet's "
                                             "Settings.", headers=BEARER)
    if address.lower() != wallet.address.lower():
        raise ApiError(403, "forbidden", "This token belongs to another wallet; use the "
                                         "token of the wallet named in the path.")
    return wallet


def _only_query(allowed: tuple[str, ...]) -> None:
    for name in request.args:
        if name not in allowed:
            accepted = f"accepts only {', '.join(allowed)}" if allowed else "takes none"
            raise invalid("unknown_parameter", f"Unknown query parameter '{name}'; this route "
                                               f"{accepted}.", name)


def _check_body(required: bool) -> None:
    """The body's bytes as one JSON object (app/api_input.py), before spectree reads it:
    `request.get_json()` alone has no nesting guard and no error codes of ours."""
    body = inputs.parse_body(request.get_data(cache=True), request.mimetype,
                             required=required)
    g.api_body_fields = set(body)


View = Callable[..., Any]


def route(rule: str, method: str, operation_id: str, ok: tuple[int, Any, str], *,
          errors: tuple[int, ...] = (), auth: bool = True, body_required: bool = True,
          notes: dict[int, str] | None = None, headers: dict[int, Any] | None = None,
          endless: bool = False) -> Callable[[View], View]:
    """Declare an API route: `rule` under /api, its success `ok` (status, response model,
    description) and the errors it may answer beyond the usual ones (`notes` describes
    them, `headers` documents their headers; `endless`: the answer
    is an event stream, sent as the view makes it). The view's docstring
    is the operation's summary (first paragraph) and description; its parameters say what
    it takes: `wallet` (authorized from the path's `<address>`), `json` (the body's
    model), `query` (the query string's model) and the path's other parts.

    Each request is checked in this order: the token, unknown query parameters, the
    body's bytes, then (spectree) the query's and body's values; only then the view runs,
    and its answer is checked against `ok`'s model on its way out."""

    def declare(view: View) -> View:
        hints = get_type_hints(view)
        body, query = hints.get("json"), hints.get("query")
        names = tuple(f.alias or n for n, f in query.model_fields.items()) if query else ()
        operation = Operation(
            operation_id, method.lower(), "/api" + re.sub(r"<(\w+)>", r"{\1}", rule), body,
            body_required, query, auth, endless, headers or {})
        validated = spec.validate(
            resp=responses(ok, errors, auth=auth, body=body is not None, notes=notes or {}),
            operation_id=operation_id, security=None if auth else {})(view)
        # spectree reads a response's whole body to check it: never an endless stream's
        target = view if endless else validated

        @functools.wraps(validated)
        def checked(**params: Any) -> Any:
            g.api_operation = operation
            if auth:
                params["wallet"] = _authorize(params.pop("address"))
            _only_query(names)
            if body is not None:
                _check_body(body_required)
            return target(**params)

        bp.add_url_rule(rule, endpoint=view.__name__, view_func=checked, methods=[method])
        OPERATIONS[operation_id] = operation
        return checked

    return declare


# --- shared pieces ------------------------------------------------------------------------------


def asset_of(ref: str, field: str = "assetId") -> Asset:
    service = _service()
    try:
        return service.asset(ref, field)
    except InputError:
        symbols = ", ".join(a.symbol for a in service.assets().values())
        raise inputs.bad("unknown_asset", field, f"must be one of this network's assets: "
                                                 f"{symbols} (by symbol or address).") from None


def balance_of(asset: Asset, amount: int) -> dict[str, Any]:
    return {"assetId": asset.address, "symbol": asset.symbol, "decimals": asset.decimals,
            "amount": str(amount), "formatted": asset.format(amount)}


def _spendable(state: ChannelState, asset: Asset) -> int:
    return state.balance_of(asset.address).bob if asset.address in state.asset_ids else 0


async def check_balance(client: Client, asset: Asset, amount: int,
                        field: str = "amount") -> None:
    balance = _spendable(await client.channel(), asset)
    if amount > balance:
        raise ApiError(422, "insufficient_balance",
                       f"That is more than this wallet's balance ({asset.format(balance)} "
                       f"{asset.symbol}, {balance} base units).", field)


def not_to_self(wallet: Wallet, recipient: str) -> str:
    if recipient == wallet.address:
        raise invalid("transfer_to_self", "That is this wallet's own address; you cannot "
                                          "pay yourself.", "recipient")
    return recipient


def bytes32_in_path(value: str, name: str) -> bytes:
    """A path's 32-byte id (documented by app/api_models.py PATH_PARAMETERS)."""
    try:
        return models.parse_hex(value, 32)
    except PydanticCustomError as refusal:
        raise inputs.bad("invalid_hex", name, refusal.message()) from None


def api_payment_id(given: str | None) -> str | None:
    """The integrator's idempotency key, kept apart from the wallet screens' keys."""
    return None if given is None else f"api:{given}"



# --- routes -----------------------------------------------------------------------------------


@bp.get("/openapi.json")
def openapi() -> Response:
    response = jsonify(document(current_app))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@route("/v1/wallets", "POST", "createWallet",
       (201, models.NewWallet, "The new wallet; keep the token, it is shown only once."),
       errors=(429,), auth=False, body_required=False, headers={429: RETRY_AFTER},
       notes={429: "Too many new wallets from this client address (see `Retry-After`)."})
def create_wallet(json: models.NewWalletRequest) -> tuple[Response, int]:
    """Create a wallet and its first API token

    No authentication. Creates a wallet (its key stays on the server, encrypted), opens
    its channel with the node and returns an API token for it. Limited per client address
    (`CONNEXT_WEB_NEW_WALLETS_PER_HOUR`, default 60).
    """
    service = _service()
    count_new_wallet()
    service.deployment()  # the network must answer before anything is created
    service.node_address()
    wallet = service.create_wallet()
    token = service.create_token(wallet, json.label or "API")
    client = _run(service.client(wallet))  # opens the channel: it can receive at once
    return jsonify({"address": wallet.address, "channelAddress": client.channel_address,
                    "token": token}), 201


@route(WALLET, "GET", "getWallet", (200, models.WalletInfo, "The wallet"))
def wallet_info(wallet: Wallet) -> Response:
    """The wallet: addresses, node, chain and assets"""
    service = _service()
    client = _run(service.client(wallet))
    return jsonify({
        "address": wallet.address,
        "channelAddress": client.channel_address,
        "nodeAddress": service.node_address(),
        "chainId": service.deployment().chain_id,
        "assets": [{"address": a.address, "symbol": a.symbol, "decimals": a.decimals,
                    "name": a.name} for a in service.assets().values()],
    })


@route(f"{WALLET}/balances", "GET", "getBalances",
       (200, models.Balances, "Balances in base units and formatted"))
def balances(wallet: Wallet) -> Response:
    """Spendable balance per asset"""
    service = _service()

    async def read() -> ChannelState:
        return await (await service.client(wallet)).channel()

    state = _run(read())
    return jsonify({"address": wallet.address, "balances": [
        balance_of(asset, _spendable(state, asset)) for asset in service.assets().values()]})


@route(f"{WALLET}/channel", "GET", "getChannel", (200, models.Channel, "The channel"))
def channel(wallet: Wallet) -> Response:
    """The latest double-signed state and the active transfers"""
    service = _service()

    async def read() -> Any:
        client = await service.client(wallet)
        stored = await client.engine.channel(client.channel_address)
        if stored is None:
            raise errors.ChannelNotSetUp("this wallet has no channel yet")
        return stored

    stored = _run(read())
    return jsonify({
        "channelAddress": stored.state.channel_address,
        "state": state_to_json(stored.state),
        "latestUpdate": update_to_json(stored.latest_update),
        "transfers": [transfer_to_json(t) for t in stored.transfers.values()],
    })


@route(f"{WALLET}/deposit", "POST", "reconcileDeposit",
       (200, models.Credited, "The balance after reconciling"), errors=(409,))
def deposit(wallet: Wallet, json: models.AssetRequest) -> Response:
    """Credit what was sent to the channel address

    Send ETH or tokens to the wallet's channel address on chain (any account may), then
    call this to credit them; the node also credits deposits by itself after a few blocks.
    """
    asset = asset_of(json.asset_id)
    service = _service()

    async def reconcile() -> tuple[int, int]:
        client = await service.client(wallet)
        state = await client.channel()
        before = _spendable(state, asset)
        totals = await client.deposits.total_deposits(state, asset.address)
        if state.asset_index(asset.address) is None and totals == (0, 0):
            return before, before  # nothing ever sent: nothing to credit
        state = await client.reconcile_deposit(asset.address)
        return before, _spendable(state, asset)

    before, after = _run(reconcile())
    return jsonify({"credited": str(after - before), "balance": balance_of(asset, after)})


@route(f"{WALLET}/faucet", "POST", "faucet", (200, models.FaucetResult, "Sent and credited"),
       errors=(409, 429), headers={429: RETRY_AFTER},
       notes={429: "The faucet gave this wallet, or everyone, as much as it gives per hour "
                   "(see `Retry-After`)."})
def faucet(wallet: Wallet, json: models.AssetRequest) -> Response:
    """Test funds (local development chain only)

    Sends 1 ETH or 100 test tokens from the development account to the channel address
    and credits them, a few times per wallet and hour (`CONNEXT_FAUCET_PER_WALLET_PER_HOUR`,
    `CONNEXT_FAUCET_PER_HOUR`). 403 `faucet_disabled` elsewhere.
    """
    service = _service()
    if not service.faucet_enabled:
        raise ApiError(403, "faucet_disabled", "The faucet exists only on a local development "
                                               "chain; send real funds to the channel "
                                               "address and call the deposit route.")
    asset = asset_of(json.asset_id)
    client = _run(service.client(wallet))
    before = _spendable(_run(client.channel()), asset)
    tx = service.faucet(wallet, asset, client.channel_address)
    after = _spendable(_run(client.reconcile_deposit(asset.address)), asset)
    return jsonify({"transactionHash": tx, "credited": str(after - before),
                    "balance": balance_of(asset, after)})


@route(f"{WALLET}/transfers", "POST", "transfer", (201, models.PaymentResult, "The payment"),
       errors=(409,))
def transfer(wallet: Wallet, json: models.TransferRequest) -> tuple[Response, int]:
    """Pay another wallet of the node

    Waits up to `wait` seconds (default 30) for the recipient to claim it.
    """
    recipient = not_to_self(wallet, json.recipient)
    asset = asset_of(json.asset_id)
    wait = DEFAULT_WAIT if json.wait is None else json.wait
    service = _service()

    async def pay() -> Any:
        client = await service.client(wallet)
        await check_balance(client, asset, json.amount)
        return await client.transfer(recipient, asset.address, json.amount,
                                     timeout=json.timeout or 3600, wait=wait or None,
                                     meta=json.meta, payment_id=api_payment_id(json.payment_id),
                                     quote=json.quote)

    result = _run(pay(), timeout=wait + RUN_MARGIN)
    return jsonify({"transferId": hexb(result.transfer_id),
                    "routingId": hexb(result.routing_id), "status": result.status}), 201


@route(f"{WALLET}/quotes", "POST", "quote", (200, models.Quote, "The node's signed quote"))
def quote(wallet: Wallet, json: models.QuoteRequest) -> Response:
    """Ask the node for a swap quote

    What paying `amountIn` of `assetIn` delivers in `assetOut` (the fee taken), signed by
    the node for this wallet and valid until `expiry`; pass it as `quote` to POST
    .../transfers (once) so the recipient receives the other asset.
    """
    asset_in, asset_out = asset_of(json.asset_in, "assetIn"), asset_of(json.asset_out,
                                                                       "assetOut")
    service = _service()

    async def ask() -> Any:
        client = await service.client(wallet)
        return await client.quote(asset_in.address, asset_out.address, json.amount_in,
                                  ttl=json.ttl)

    return jsonify(quote_to_json(_run(ask())))


@route(f"{WALLET}/transfers/conditional", "POST", "conditionalTransfer",
       (201, models.PaymentResult, "The transfer, pending until the recipient resolves it"),
       errors=(409,))
def conditional_transfer(wallet: Wallet,
                         json: models.ConditionalTransferRequest) -> tuple[Response, int]:
    """A routed transfer under a transfer definition"""
    recipient = not_to_self(wallet, json.recipient)
    asset = asset_of(json.asset_id)
    service = _service()

    async def pay() -> Any:
        client = await service.client(wallet)
        await check_balance(client, asset, json.amount)
        return await client.conditional_transfer(
            recipient, asset.address, json.amount, json.definition, json.initial_state,
            timeout=json.timeout or 3600, meta=json.meta,
            payment_id=api_payment_id(json.payment_id))

    result = _run(pay())
    return jsonify({"transferId": hexb(result.transfer_id),
                    "routingId": hexb(result.routing_id), "status": result.status}), 201


async def _incoming(client: Client, transfer_id: bytes) -> Any:
    transfer = (await client.active_transfers()).get(transfer_id)
    if transfer is None or transfer.responder != client.address:
        raise ApiError(404, "unknown_transfer", "No active transfer with that id pays this "
                                                "wallet.", "transferId")
    return transfer


@route(f"{WALLET}/transfers/<transferId>/resolve", "POST", "resolveTransfer",
       (200, models.ResolveResult, "Resolved"), errors=(409,))
def resolve(wallet: Wallet, transferId: str, json: models.ResolveRequest) -> Response:
    """Resolve a transfer paying this wallet"""
    tid = bytes32_in_path(transferId, "transferId")
    service = _service()

    async def settle() -> int:
        client = await service.client(wallet)
        transfer = await _incoming(client, tid)
        before = (await client.channel()).balance_of(transfer.asset_id).bob
        state = await client.resolve(tid, json.resolver)
        return int(state.balance_of(transfer.asset_id).bob - before)

    received = _run(settle())
    return jsonify({"transferId": hexb(tid), "status": "resolved",
                    "received": str(received)})


@route(f"{WALLET}/transfers/<transferId>/cancel", "POST", "cancelTransfer",
       (200, models.CancelResult, "Cancelled"), errors=(409,), body_required=False)
def cancel(wallet: Wallet, transferId: str, json: models.EmptyRequest) -> Response:
    """Decline a transfer paying this wallet (the payer is refunded)"""
    tid = bytes32_in_path(transferId, "transferId")
    service = _service()

    async def decline() -> None:
        client = await service.client(wallet)
        await _incoming(client, tid)
        await client.cancel(tid)

    _run(decline())
    return jsonify({"transferId": hexb(tid), "status": "cancelled"})


@route(f"{WALLET}/withdrawals", "POST", "withdraw",
       (201, models.WithdrawResult, "The withdrawal"), errors=(409,))
def withdraw(wallet: Wallet, json: models.WithdrawRequest) -> tuple[Response, int]:
    """Move funds out of the channel to any address (the node pays the gas)"""
    asset = asset_of(json.asset_id)
    wait = 60 if json.wait is None else json.wait
    service = _service()

    async def cash_out() -> Any:
        client = await service.client(wallet)
        await check_balance(client, asset, json.amount)
        return await client.withdraw(json.recipient, asset.address, json.amount,
                                     wait=wait or None)

    result = _run(cash_out(), timeout=wait + RUN_MARGIN)
    return jsonify({"transferId": hexb(result.transfer_id),
                    "transactionHash": result.transaction_hash,
                    "status": result.status}), 201


@route(f"{WALLET}/force-close", "POST", "forceClose",
       (200, models.Dispute, "The channel's dispute"), errors=(409,))
def force_close(wallet: Wallet) -> Response:
    """Dispute the latest co-signed state on chain (leave without the node)

    Sent and paid for (gas) by the wallet's own account; on the local chain the faucet
    funds it. The channel takes no more payments after this. Idempotent.
    """
    result = _service().force_close(wallet)
    return jsonify({"nonce": result.nonce, "consensusExpiry": result.consensus_expiry,
                    "transactionHash": result.transaction})


@route(f"{WALLET}/exit", "POST", "exitChannel",
       (200, models.ExitProgress, "What this call paid out and what still waits"),
       errors=(409,), body_required=False)
def exit_channel(wallet: Wallet, json: models.ExitRequest) -> Response:
    """After the dispute window: send what the channel owes the wallet to an address

    409 `not_disputed` before /force-close, `dispute_window_open` while the window is
    open. Call again until `done`.
    """
    progress = _service().exit_channel(wallet, json.recipient)
    return jsonify({"paidOut": {a: str(v) for a, v in progress.paid_out.items()},
                    "waiting": {hexb(t): until for t, until in progress.waiting.items()},
                    "done": progress.done})


@route(f"{WALLET}/history", "GET", "getHistory", (200, models.History, "A page of events"),
       errors=(422,))
def history(wallet: Wallet, query: models.HistoryQuery) -> Response:
    """The wallet's event log, oldest first"""
    service = _service()

    async def read() -> list[Any]:
        client = await service.client(wallet)
        return await client.history(after_id=query.after or 0, limit=query.limit or 100)

    events = _run(read())
    return jsonify({
        "events": [{"id": e.id, "event": e.kind, "data": dict(e.payload),
                    "createdAt": _iso(e.created_at)} for e in events],
        "lastId": events[-1].id if events else None,
    })


def _iso(when: Any) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return str(when.astimezone(UTC).isoformat().replace("+00:00", "Z"))


@route(f"{WALLET}/events", "GET", "streamEvents",
       (200, None, "An endless text/event-stream: a `ready` event, then one event per wallet "
                   "event (`event:` its name, `data:` JSON), and a `: heartbeat` comment "
                   "every 15 seconds."), errors=(429,), endless=True)
def events(wallet: Wallet) -> Response:
    """Live events (server-sent events)"""
    service = _service()
    _run(service.client(wallet))  # connected, so the wallet's events flow
    hub = _hub()
    try:
        subscription = hub.subscribe(wallet.address)
    except TooManyStreams:
        raise ApiError(429, "too_many_streams", "Too many event streams are open (this "
                                                "wallet's, or the server's); close one first "
                                                "or try again in a moment.") from None
    heartbeat = float(current_app.config.get("API_HEARTBEAT_SECONDS", 15.0))
    return Response(EventStream(hub, subscription, heartbeat), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


from . import api_micro  # noqa: E402, F401 - its routes join `bp` (and it imports this module)
