"""Live events: the client SDK's events pushed to the browsers of the wallet they concern.

A browser's socket joins one room per wallet its session owns (its wallet and its demo
wallets); rooms are chosen here from the signed session, never by the browser.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from flask import Flask, request, session
from flask_socketio import SocketIO, join_room

from .assets import Asset
from .views.common import WALLET_KEY, wallets

DEMO_KEY = "demo_wallets"
log = logging.getLogger(__name__)


def shown_balances(assets: dict[str, Asset], balances: dict[str, Any]) -> dict[str, str]:
    """A state's balances (asset id -> base units) as the home page shows them (symbol ->
    text), for every asset the page lists: the page puts them in place as the event comes,
    before its refresh (static/wallet.js), so a payment shows without one more request."""
    shown = {}
    for address, asset in assets.items():
        amount = balances.get(address, "0")
        if isinstance(amount, str) and amount.isdigit():
            shown[asset.symbol] = asset.format(int(amount))
    return shown


def register(app: Flask, socketio: SocketIO) -> None:
    service = app.extensions["connext.wallets"]
    outbox: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue(maxsize=10_000)

    def push(address: str, event: str, data: dict[str, Any]) -> None:
        """Called on the wallets' loop: never block it on a slow browser."""
        payload = {"address": address, "event": event,
                   **{k: v for k, v in data.items() if k != "event"}}
        try:
            outbox.put_nowait((address, payload))
        except queue.Full:
            log.warning("live event queue full; dropping %s for %s", event, address)

    def deliver() -> None:
        while True:
            address, payload = outbox.get()
            try:
                if isinstance(payload.get("balances"), dict):  # a new co-signed state
                    payload["balances"] = shown_balances(service.assets(), payload["balances"])
                socketio.emit("wallet", payload, to=address)
            except Exception:
                log.exception("pushing a live event failed")

    threading.Thread(target=deliver, name="live-events", daemon=True).start()
    service.listeners.append(push)

    watching: dict[str, list[str]] = {}  # socket id -> the wallet addresses it watches
    lock = threading.Lock()

    @socketio.on("connect")  # type: ignore[untyped-decorator]
    def on_connect(auth: Any = None) -> None:
        ids = [session.get(WALLET_KEY), *session.get(DEMO_KEY, [])]
        addresses = []
        for wallet_id in ids:
            wallet = wallets().get_wallet(wallet_id)
            if wallet is not None:
                join_room(wallet.address)
                addresses.append(wallet.address)
        with lock:  # an open page keeps its wallets' clients connected (live events)
            watching[request.sid] = addresses  # type: ignore[attr-defined]
            for address in addresses:
                service.watchers[address] = service.watchers.get(address, 0) + 1

    @socketio.on("disconnect")  # type: ignore[untyped-decorator]
    def on_disconnect(reason: Any = None) -> None:
        with lock:
            for address in watching.pop(request.sid, []):  # type: ignore[attr-defined]
                service.watchers[address] = service.watchers.get(address, 1) - 1
