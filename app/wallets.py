"""The wallets behind the web app: keys at rest, one SDK client per wallet, one event loop.

Each browser owns a wallet: a BIP-39 phrase created here, stored encrypted (AES-GCM, key
derived from the app's secret) and decrypted only to build the wallet's `Client`. Clients
live on one asyncio loop in a background thread; Flask views call `WalletService.run`.
Phrases and keys are never logged. API tokens are stored as SHA-256 hashes only.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_account import Account

from connext.chain.contracts import Sender, connect, contract
from connext.chain.deploy import Deployment, load_deployment
from connext.client import Client, Dispute, ExitProgress
from connext.protocol import errors
from connext.protocol.signing import Signer
from connext.protocol.types import ETH, Address

from .assets import ETHER, Asset, InputError
from .config import WebConfig
from .limits import FaucetLimit
from .swaps import NodeSwaps

log = logging.getLogger(__name__)
T = TypeVar("T")
GAS_FLOAT = 10**17
"""ETH the faucet leaves in a wallet's own account for gas (local chain only)."""

Account.enable_unaudited_hdwallet_features()

metadata = sa.MetaData()
wallets_table = sa.Table(
    "wallets", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("address", sa.String(42), nullable=False, index=True),
    sa.Column("sealed_phrase", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)
tokens_table = sa.Table(
    "api_tokens", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("wallet_id", sa.String(64), sa.ForeignKey("wallets.id"), nullable=False,
              index=True),
    sa.Column("label", sa.String(100), nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float, nullable=True),
)
links_table = sa.Table(
    "links", metadata,
    sa.Column("routing_id", sa.String(66), primary_key=True),
    sa.Column("wallet_id", sa.String(64), sa.ForeignKey("wallets.id"), nullable=False,
              index=True),
    sa.Column("sealed_code", sa.LargeBinary, nullable=False),
    sa.Column("asset_id", sa.String(42), nullable=False),
    sa.Column("amount", sa.String(80), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)


class NodeUnreachable(Exception):
    """The node (or NATS) did not answer: nothing was sent."""


@dataclass(frozen=True)
class Wallet:
    id: str
    address: Address


@dataclass(frozen=True)
class ApiToken:
    prefix: str
    label: str
    created_at: float
    revoked_at: float | None


class Sealer:
    """AES-GCM with a key derived from the app secret; nonce || ciphertext."""

    def __init__(self, secret: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"connext-web-wallets",
                   info=b"wallet phrases v1").derive(secret.encode())
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, context: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plaintext.encode(), context.encode())

    def open(self, sealed: bytes, context: str) -> str:
        return self._aead.decrypt(sealed[:12], sealed[12:], context.encode()).decode()


def normalize_phrase(phrase: str) -> str:
    return " ".join(phrase.lower().split())


def phrase_to_key(phrase: str) -> bytes:
    try:
        account = Account.from_mnemonic(normalize_phrase(phrase))
    except Exception as exc:
        raise InputError("phrase", "That is not a valid backup phrase (12 or 24 words from "
                                   "the BIP-39 list).") from exc
    return bytes(account.key)


class WalletService:
    """Owns the wallet records, the clients and the loop they run on."""

    def __init__(self, config: WebConfig) -> None:
        self.config = config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        (config.data_dir / "channels").mkdir(exist_ok=True)
        self.db = sa.create_engine(config.database_url)
        metadata.create_all(self.db)
        self.sealer = Sealer(config.secret_key)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="wallet-loop",
                                        daemon=True)
        self._thread.start()
        self._reaper = asyncio.run_coroutine_threadsafe(self._close_idle_forever(), self.loop)
        self._clients: dict[Address, Client] = {}
        self._last_used: dict[Address, float] = {}
        self.watchers: dict[Address, int] = {}
        """Open browser sockets per wallet address (kept by app/live.py)."""
        self._connecting: dict[Address, asyncio.Future[Client]] = {}
        self._faucet_lock = threading.Lock()
        self._faucet_limit = FaucetLimit(config.faucet_per_wallet_per_hour,
                                         config.faucet_per_hour)
        self._deployment: Deployment | None = None
        self._node_address: Address | None = None
        self._assets: dict[Address, Asset] | None = None
        self.swaps = NodeSwaps(config.node_url)
        """The node's supported assets and swap pairs (app/swaps.py)."""
        self.listeners: list[Callable[[Address, str, dict[str, Any]], None]] = []

    # --- running coroutines from Flask threads --------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run in the background; failures are logged (and reach the user as events)."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        future.add_done_callback(_log_failure)

    def close(self) -> None:
        async def close_all() -> None:
            for client in list(self._clients.values()):
                try:
                    await client.close()
                except Exception:
                    log.exception("closing a client failed")
            self._clients.clear()

        if self.loop.is_running():
            self._reaper.cancel()
            try:
                self.run(close_all(), timeout=30)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self._thread.join(10)
        self.db.dispose()

    # --- the network ------------------------------------------------------------------------

    def deployment(self) -> Deployment:
        if self._deployment is None:
            w3 = connect(self.config.chain_url)
            try:
                chain_id = w3.eth.chain_id
            except Exception as exc:
                raise NodeUnreachable("The chain is not reachable right now.") from exc
            deployment = load_deployment(self.config.deployment_file, chain_id)
            if deployment is None:
                raise NodeUnreachable("The contracts are not deployed on this chain yet.")
            self._deployment = deployment
        return self._deployment

    def node_address(self) -> Address:
        """The node's address, from its HTTP API; remembered in the data directory, so
        wallets open (and can force-close) while the node is down."""
        if self._node_address is None:
            import json
            import urllib.request

            remembered = self.config.data_dir / "node-address"
            try:
                with urllib.request.urlopen(f"{self.config.node_url}/config", timeout=5) as r:
                    self._node_address = json.loads(r.read())["address"]
                remembered.write_text(str(self._node_address))
            except Exception as exc:
                if not remembered.exists():
                    raise NodeUnreachable("The node is not reachable right now; try again "
                                          "in a moment.") from exc
                self._node_address = Address(remembered.read_text().strip())
        assert self._node_address is not None
        return self._node_address

    def assets(self) -> dict[Address, Asset]:
        """ETH, the deployment's test token (symbol and decimals read from the chain) and
        any other asset the node supports (as its /config names it)."""
        known = self._assets
        if known is not None and any(a.get("address") not in known
                                     and isinstance(a.get("decimals"), int)
                                     for a in self.swaps.assets()):
            self._assets = None  # the node names an asset we do not show yet
        if self._assets is None:
            assets = {ETH: ETHER}
            token = self.deployment().test_token
            if token is not None:
                erc20 = contract(connect(self.config.chain_url), "TestToken", token)
                assets[token] = Asset(token, erc20.functions.symbol().call(),
                                      erc20.functions.decimals().call(),
                                      erc20.functions.name().call())
            for supported in self.swaps.assets():
                address = Address(str(supported.get("address")))
                if address not in assets and isinstance(supported.get("decimals"), int):
                    symbol = str(supported.get("symbol"))
                    assets[address] = Asset(address, symbol, supported["decimals"], symbol)
            self._assets = assets
        return self._assets

    def asset(self, address: str | None, field: str = "asset") -> Asset:
        for asset in self.assets().values():
            if address in (asset.address, asset.symbol) or (
                    address and address.lower() == asset.address.lower()):
                return asset
        raise InputError(field, "Choose one of the listed assets.")

    @property
    def faucet_enabled(self) -> bool:
        return self.config.faucet_key is not None and self.deployment().chain_id == 31337

    # --- wallet records ---------------------------------------------------------------------

    def create_wallet(self, phrase: str | None = None) -> Wallet:
        if phrase is None:
            _account, phrase = Account.create_with_mnemonic()
        phrase = normalize_phrase(phrase)
        key = phrase_to_key(phrase)
        wallet = Wallet(secrets.token_urlsafe(24), Signer(key).address)
        with self.db.begin() as conn:
            conn.execute(wallets_table.insert().values(
                id=wallet.id, address=wallet.address,
                sealed_phrase=self.sealer.seal(phrase, wallet.id), created_at=time.time()))
        return wallet

    def get_wallet(self, wallet_id: str | None) -> Wallet | None:
        if not wallet_id:
            return None
        with self.db.connect() as conn:
            row = conn.execute(sa.select(wallets_table.c.address)
                               .where(wallets_table.c.id == wallet_id)).first()
        return None if row is None else Wallet(wallet_id, row.address)

    def phrase(self, wallet: Wallet) -> str:
        with self.db.connect() as conn:
            sealed = conn.execute(sa.select(wallets_table.c.sealed_phrase)
                                  .where(wallets_table.c.id == wallet.id)).scalar_one()
        return self.sealer.open(sealed, wallet.id)

    # --- API tokens ---------------------------------------------------------------------------

    def create_token(self, wallet: Wallet, label: str = "") -> str:
        token = "cxt_" + secrets.token_urlsafe(32)
        with self.db.begin() as conn:
            conn.execute(tokens_table.insert().values(
                token_hash=_hash_token(token), wallet_id=wallet.id,
                label=(label.strip() or "API token")[:100], prefix=token[:12],
                created_at=time.time()))
        return token

    def tokens(self, wallet: Wallet) -> list[ApiToken]:
        with self.db.connect() as conn:
            rows = conn.execute(sa.select(tokens_table).where(
                tokens_table.c.wallet_id == wallet.id).order_by(tokens_table.c.created_at))
            return [ApiToken(r.prefix, r.label, r.created_at, r.revoked_at) for r in rows]

    def revoke_token(self, wallet: Wallet, prefix: str) -> bool:
        with self.db.begin() as conn:
            result = conn.execute(tokens_table.update().where(
                tokens_table.c.wallet_id == wallet.id, tokens_table.c.prefix == prefix,
                tokens_table.c.revoked_at.is_(None)).values(revoked_at=time.time()))
        return bool(result.rowcount)

    def wallet_for_token(self, token: str) -> Wallet | None:
        with self.db.connect() as conn:
            row = conn.execute(sa.select(tokens_table.c.wallet_id).where(
                tokens_table.c.token_hash == _hash_token(token),
                tokens_table.c.revoked_at.is_(None))).first()
        return None if row is None else self.get_wallet(row.wallet_id)

    # --- link payments the wallet created (the code stays sealed at rest) ----------------------

    def record_link(self, wallet: Wallet, routing_id: str, code: str, asset_id: str,
                    amount: int, status: str = "open") -> None:
        """Remember a link the wallet created (once: the same link again changes nothing)."""
        with self.db.begin() as conn:
            exists = conn.execute(sa.select(links_table.c.routing_id).where(
                links_table.c.routing_id == routing_id)).first()
            if exists is not None:
                return
            conn.execute(links_table.insert().values(
                routing_id=routing_id, wallet_id=wallet.id,
                sealed_code=self.sealer.seal(code, routing_id), asset_id=asset_id,
                amount=str(amount), status=status, created_at=time.time()))

    def links(self, wallet: Wallet) -> list[dict[str, Any]]:
        with self.db.connect() as conn:
            rows = conn.execute(sa.select(links_table).where(
                links_table.c.wallet_id == wallet.id).order_by(links_table.c.created_at.desc()))
            return [{"routing_id": r.routing_id, "code": self.sealer.open(r.sealed_code,
                                                                           r.routing_id),
                     "asset_id": r.asset_id, "amount": int(r.amount), "status": r.status,
                     "created_at": r.created_at} for r in rows]

    def set_link_status(self, wallet: Wallet, routing_id: str, status: str) -> None:
        with self.db.begin() as conn:
            conn.execute(links_table.update().where(
                links_table.c.wallet_id == wallet.id,
                links_table.c.routing_id == routing_id).values(status=status))

    # --- clients -------------------------------------------------------------------------------

    async def client(self, wallet: Wallet) -> Client:
        """The wallet's connected client with its channel set up (restored if need be)."""
        self._last_used[wallet.address] = time.monotonic()
        existing = self._clients.get(wallet.address)
        if existing is not None:
            return existing
        pending = self._connecting.get(wallet.address)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Client] = self.loop.create_future()
        self._connecting[wallet.address] = future
        try:
            client = await self._connect(wallet)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: a later waiter re-raises it
            raise
        finally:
            self._connecting.pop(wallet.address, None)
        self._clients[wallet.address] = client
        future.set_result(client)
        return client

    async def close_idle(self, now: float | None = None) -> list[Address]:
        """Close the clients nobody used for `idle_seconds` and no browser watches."""
        now = time.monotonic() if now is None else now
        idle = [address for address in list(self._clients)
                if now - self._last_used.get(address, 0.0) > self.config.idle_seconds
                and self.watchers.get(address, 0) <= 0]
        for address in idle:
            client = self._clients.pop(address)
            try:
                await client.close()
            except Exception:
                log.exception("closing an idle client failed")
        return idle

    async def _close_idle_forever(self) -> None:
        interval = max(1.0, min(60.0, self.config.idle_seconds / 4))
        while True:
            await asyncio.sleep(interval)
            try:
                await self.close_idle()
            except Exception:
                log.exception("closing idle clients failed")

    def connected(self, address: Address) -> bool:
        return address in self._clients

    async def _connect(self, wallet: Wallet) -> Client:
        key = await asyncio.to_thread(lambda: phrase_to_key(self.phrase(wallet)))
        node_address = await asyncio.to_thread(self.node_address)
        deployment = await asyncio.to_thread(self.deployment)
        try:
            client = await Client.connect(
                Signer(key), node_address=node_address, nats_url=self.config.nats_url,
                chain_url=self.config.chain_url,
                database_url=self.config.client_database_url(wallet.address),
                deployment=deployment, request_timeout=self.config.request_timeout,
            )
        except Exception as exc:
            raise NodeUnreachable("Cannot reach the payment network (NATS) right now.") from exc
        address = wallet.address

        def forward(event: dict[str, Any]) -> None:
            for listener in self.listeners:
                try:
                    listener(address, str(event.get("event")), event)
                except Exception:
                    log.exception("event listener failed")

        client.on("*", forward)
        if self.faucet_enabled:  # its watchtower may have to answer a dispute: gas for it
            async def gas() -> None:
                await asyncio.to_thread(self.fund_gas, wallet)

            client.before_chain_transaction = gas
        if await client.engine.channel(client.channel_address) is not None:
            return client  # it came online (or works from its copy while the node is down)
        try:
            await client.setup()
        except errors.ChannelNotSetUp:
            await client.restore()  # the node has it, our store does not: verify and keep
        except Exception:
            await client.close()
            raise
        return client

    # --- the faucet (local chains only) -----------------------------------------------------

    def faucet(self, wallet: Wallet, asset: Asset, channel_address: Address) -> str:
        """Send test funds from the dev account straight to the channel address."""
        if not self.faucet_enabled or self.config.faucet_key is None:
            raise InputError("asset", "The faucet exists only on a local development chain.")
        self._faucet_limit.hit(wallet.address)  # FaucetLimited: nothing is sent
        amount = int(10**asset.decimals) * (1 if asset.address == ETH else 100)
        w3 = connect(self.config.chain_url)
        with self._faucet_lock:
            sender = Sender(w3, self.config.faucet_key)
            if asset.address == ETH:
                receipt = sender.send_eth(channel_address, amount)
            else:
                token = contract(w3, "TestToken", asset.address)
                receipt = sender.transact(token.functions.transfer(channel_address, amount))
        return _tx_hash(receipt)

    # --- leaving without the node -----------------------------------------------------------

    def force_close(self, wallet: Wallet) -> Dispute:
        """Dispute the wallet's latest state on chain from its own account (gas first)."""
        self.fund_gas(wallet)

        async def dispute() -> Dispute:
            return await (await self.client(wallet)).force_close()

        return self.run(dispute(), timeout=120)

    def exit_channel(self, wallet: Wallet, recipient: Address | None) -> ExitProgress:
        """After the dispute window: what the channel owes the wallet, to `recipient`."""
        self.fund_gas(wallet)

        async def take_out() -> ExitProgress:
            return await (await self.client(wallet)).exit_channel(recipient)

        return self.run(take_out(), timeout=180)

    def fund_gas(self, wallet: Wallet) -> str | None:
        """Make sure the wallet's own account can pay gas (for a force-close it sends
        itself). On the local chain the faucet tops it up to GAS_FLOAT; elsewhere an
        empty account gets a sentence saying what to do. Returns the faucet's tx hash."""
        w3 = connect(self.config.chain_url)
        held = int(w3.eth.get_balance(w3.to_checksum_address(wallet.address)))
        if held >= GAS_FLOAT // 10:
            return None
        if not self.faucet_enabled or self.config.faucet_key is None:
            raise InputError("form", f"Your account {wallet.address} needs a little ETH to "
                                     "pay the gas for this; send some to it first.")
        with self._faucet_lock:
            receipt = Sender(w3, self.config.faucet_key).send_eth(wallet.address,
                                                                  GAS_FLOAT - held)
        return _tx_hash(receipt)


def _tx_hash(receipt: Any) -> str:
    return "0x" + bytes(receipt["transactionHash"]).hex()


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _log_failure(future: Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("background wallet task failed: %s", future.exception())
