"""The JSON API for integrators in other languages: one wallet per token, under /api/v1.

It mirrors the client SDK (`connext.client.Client`) for one wallet: the wallet is named in
the path, the caller proves it may act for it with that wallet's API token
(`Authorization: Bearer cxt_...`). Every body is parsed strictly (app/api_input.py) before
anything is touched; every error is `{"error": {"code", "message", "field"?}}` with a
sentence from the same place the wallet screens get theirs. The OpenAPI document is at
/api/openapi.json (app/openapi.py); docs/API.md explains it with curl examples.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from datetime import UTC
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, g, jsonify, request
from flask.blueprints import BlueprintSetupState
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
from connext.protocol.types import ChannelState

from . import api_input as inputs
from .api_events import EventHub, EventStream, TooManyStreams
from .api_input import ApiError, Field, fields, invalid
from .assets import Asset, InputError
from .limits import TooMany
from .openapi import document
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
                  "not_disputed", "dispute_window_open", "unknown_disputed_state"}
NOT_FOUND_CODES = {"unknown_transfer", "unknown_link"}
RESERVED_META = ("recipient", "routingId", "encryptedPreimage", "link", "sender")
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
             "channel_not_set_up": "recipient", "transfer_to_self": "recipient"}.get(code)
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


# --- authentication ---------------------------------------------------------------------------


def _authorize(address: str, query: tuple[str, ...] = ()) -> Wallet:
    """The wallet in the path, if the request carries one of its live API tokens (and no
    query parameter but those in `query`)."""
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
    _only_query(query)
    return wallet


def _only_query(allowed: tuple[str, ...]) -> None:
    for name in request.args:
        if name not in allowed:
            accepted = f"accepts only {', '.join(allowed)}" if allowed else "takes none"
            raise invalid("unknown_parameter", f"Unknown query parameter '{name}'; this route "
                                               f"{accepted}.", name)


def _body(required: bool = True) -> dict[str, Any]:
    """The JSON body, parsed by app/api_input.py only: never `request.get_json()`, which
    has no nesting guard."""
    body = inputs.parse_body(request.get_data(cache=True), request.mimetype,
                             required=required)
    g.api_body_fields = set(body)
    return body


# --- shared pieces ------------------------------------------------------------------------------


def _asset(ref: str, field: str = "assetId") -> Asset:
    service = _service()
    try:
        return service.asset(ref, field)
    except InputError:
        symbols = ", ".join(a.symbol for a in service.assets().values())
        raise inputs.bad("unknown_asset", field, f"must be one of this network's assets: "
                                                 f"{symbols} (by symbol or address).") from None


def _balance(asset: Asset, amount: int) -> dict[str, Any]:
    return {"assetId": asset.address, "symbol": asset.symbol, "decimals": asset.decimals,
            "amount": str(amount), "formatted": asset.format(amount)}


def _spendable(state: ChannelState, asset: Asset) -> int:
    return state.balance_of(asset.address).bob if asset.address in state.asset_ids else 0


async def _check_balance(client: Client, asset: Asset, amount: int) -> None:
    balance = _spendable(await client.channel(), asset)
    if amount > balance:
        raise ApiError(422, "insufficient_balance",
                       f"That is more than this wallet's balance ({asset.format(balance)} "
                       f"{asset.symbol}, {balance} base units).", "amount")


def _recipient(wallet: Wallet, recipient: str) -> str:
    if recipient == wallet.address:
        raise invalid("transfer_to_self", "That is this wallet's own address; you cannot "
                                          "pay yourself.", "recipient")
    return recipient


def _meta(args: dict[str, Any]) -> dict[str, Any] | None:
    meta: dict[str, Any] | None = args.get("meta")
    if meta is not None:
        for key in RESERVED_META:
            if key in meta:
                raise inputs.bad("invalid_input", "meta", f"may not use the key '{key}'; the "
                                                          "network sets it.")
    return meta


def _transfer_id(value: str) -> bytes:
    return inputs.bytes32(value, "transferId")


# --- routes -----------------------------------------------------------------------------------


@bp.get("/openapi.json")
def openapi() -> Response:
    response = jsonify(document())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.post("/v1/wallets")
def create_wallet() -> tuple[Response, int]:
    _only_query(())
    args = fields(_body(required=False), [Field("label", inputs.label, required=False)])
    service = _service()
    count_new_wallet()
    service.deployment()  # the network must answer before anything is created
    service.node_address()
    wallet = service.create_wallet()
    token = service.create_token(wallet, args.get("label") or "API")
    client = _run(service.client(wallet))  # opens the channel: it can receive at once
    return jsonify({"address": wallet.address, "channelAddress": client.channel_address,
                    "token": token}), 201


@bp.get(WALLET)
def wallet_info(address: str) -> Response:
    wallet = _authorize(address)
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


@bp.get(f"{WALLET}/balances")
def balances(address: str) -> Response:
    wallet = _authorize(address)
    service = _service()

    async def read() -> ChannelState:
        return await (await service.client(wallet)).channel()

    state = _run(read())
    return jsonify({"address": wallet.address, "balances": [
        _balance(asset, _spendable(state, asset)) for asset in service.assets().values()]})


@bp.get(f"{WALLET}/channel")
def channel(address: str) -> Response:
    wallet = _authorize(address)
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


@bp.post(f"{WALLET}/deposit")
def deposit(address: str) -> Response:
    wallet = _authorize(address)
    args = fields(_body(), [Field("assetId", inputs.asset_ref)])
    asset = _asset(args["assetId"])
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
    return jsonify({"credited": str(after - before), "balance": _balance(asset, after)})


@bp.post(f"{WALLET}/faucet")
def faucet(address: str) -> Response:
    wallet = _authorize(address)
    args = fields(_body(), [Field("assetId", inputs.asset_ref)])
    service = _service()
    if not service.faucet_enabled:
        raise ApiError(403, "faucet_disabled", "The faucet exists only on a local development "
                                               "chain; send real funds to the channel "
                                               "address and call the deposit route.")
    asset = _asset(args["assetId"])
    client = _run(service.client(wallet))
    before = _spendable(_run(client.channel()), asset)
    tx = service.faucet(wallet, asset, client.channel_address)
    after = _spendable(_run(client.reconcile_deposit(asset.address)), asset)
    return jsonify({"transactionHash": tx, "credited": str(after - before),
                    "balance": _balance(asset, after)})


_PAYMENT = [Field("recipient", inputs.address), Field("assetId", inputs.asset_ref),
            Field("amount", inputs.amount)]


def _api_payment_id(args: dict[str, Any]) -> str | None:
    """The integrator's idempotency key, kept apart from the wallet screens' keys."""
    given = args.get("paymentId")
    return None if given is None else f"api:{given}"


@bp.post(f"{WALLET}/transfers")
def transfer(address: str) -> tuple[Response, int]:
    wallet = _authorize(address)
    args = fields(_body(), [*_PAYMENT, Field("timeout", inputs.timeout, required=False),
                            Field("wait", inputs.wait, required=False),
                            Field("meta", inputs.meta, required=False),
                            Field("paymentId", inputs.payment_id, required=False)])
    recipient = _recipient(wallet, args["recipient"])
    meta = _meta(args)
    asset = _asset(args["assetId"])
    amount: int = args["amount"]
    wait: int = args.get("wait", DEFAULT_WAIT)
    service = _service()

    async def pay() -> Any:
        client = await service.client(wallet)
        await _check_balance(client, asset, amount)
        return await client.transfer(recipient, asset.address, amount,
                                     timeout=args.get("timeout", 3600), wait=wait or None,
                                     meta=meta, payment_id=_api_payment_id(args))

    result = _run(pay(), timeout=wait + RUN_MARGIN)
    return jsonify({"transferId": hexb(result.transfer_id),
                    "routingId": hexb(result.routing_id), "status": result.status}), 201


@bp.post(f"{WALLET}/transfers/conditional")
def conditional_transfer(address: str) -> tuple[Response, int]:
    wallet = _authorize(address)
    args = fields(_body(), [*_PAYMENT, Field("definition", inputs.definition),
                            Field("initialState", inputs.hex_bytes),
                            Field("timeout", inputs.timeout, required=False),
                            Field("meta", inputs.meta, required=False),
                            Field("paymentId", inputs.payment_id, required=False)])
    recipient = _recipient(wallet, args["recipient"])
    meta = _meta(args)
    asset = _asset(args["assetId"])
    amount: int = args["amount"]
    service = _service()

    async def pay() -> Any:
        client = await service.client(wallet)
        await _check_balance(client, asset, amount)
        return await client.conditional_transfer(
            recipient, asset.address, amount, args["definition"], args["initialState"],
            timeout=args.get("timeout", 3600), meta=meta, payment_id=_api_payment_id(args))

    result = _run(pay())
    return jsonify({"transferId": hexb(result.transfer_id),
                    "routingId": hexb(result.routing_id), "status": result.status}), 201


async def _incoming(client: Client, transfer_id: bytes) -> Any:
    transfer = (await client.active_transfers()).get(transfer_id)
    if transfer is None or transfer.responder != client.address:
        raise ApiError(404, "unknown_transfer", "No active transfer with that id pays this "
                                                "wallet.", "transferId")
    return transfer


@bp.post(f"{WALLET}/transfers/<transfer_id>/resolve")
def resolve(address: str, transfer_id: str) -> Response:
    wallet = _authorize(address)
    tid = _transfer_id(transfer_id)
    args = fields(_body(), [Field("resolver", inputs.hex_bytes)])
    service = _service()

    async def settle() -> int:
        client = await service.client(wallet)
        transfer = await _incoming(client, tid)
        before = (await client.channel()).balance_of(transfer.asset_id).bob
        state = await client.resolve(tid, args["resolver"])
        return int(state.balance_of(transfer.asset_id).bob - before)

    received = _run(settle())
    return jsonify({"transferId": hexb(tid), "status": "resolved",
                    "received": str(received)})


@bp.post(f"{WALLET}/transfers/<transfer_id>/cancel")
def cancel(address: str, transfer_id: str) -> Response:
    wallet = _authorize(address)
    tid = _transfer_id(transfer_id)
    fields(_body(required=False), [])
    service = _service()

    async def decline() -> None:
        client = await service.client(wallet)
        await _incoming(client, tid)
        await client.cancel(tid)

    _run(decline())
    return jsonify({"transferId": hexb(tid), "status": "cancelled"})


@bp.post(f"{WALLET}/withdrawals")
def withdraw(address: str) -> tuple[Response, int]:
    wallet = _authorize(address)
    args = fields(_body(), [*_PAYMENT, Field("wait", inputs.wait, required=False)])
    asset = _asset(args["assetId"])
    amount: int = args["amount"]
    wait: int = args.get("wait", 60)
    service = _service()

    async def cash_out() -> Any:
        client = await service.client(wallet)
        await _check_balance(client, asset, amount)
        return await client.withdraw(args["recipient"], asset.address, amount,
                                     wait=wait or None)

    result = _run(cash_out(), timeout=wait + RUN_MARGIN)
    return jsonify({"transferId": hexb(result.transfer_id),
                    "transactionHash": result.transaction_hash,
                    "status": result.status}), 201


@bp.post(f"{WALLET}/force-close")
def force_close(address: str) -> Response:
    result = _service().force_close(_authorize(address))
    return jsonify({"nonce": result.nonce, "consensusExpiry": result.consensus_expiry,
                    "transactionHash": result.transaction})


@bp.post(f"{WALLET}/exit")
def exit_channel(address: str) -> Response:
    wallet = _authorize(address)
    args = fields(_body(required=False), [Field("recipient", inputs.address, required=False)])
    progress = _service().exit_channel(wallet, args.get("recipient"))
    return jsonify({"paidOut": {a: str(v) for a, v in progress.paid_out.items()},
                    "waiting": {hexb(t): until for t, until in progress.waiting.items()},
                    "done": progress.done})


@bp.get(f"{WALLET}/history")
def history(address: str) -> Response:
    wallet = _authorize(address, ("after", "limit"))
    after = inputs.query_int(request.args, "after", 0, 0, 2**63 - 1)
    limit = inputs.query_int(request.args, "limit", 100, 1, 500)
    service = _service()

    async def read() -> list[Any]:
        client = await service.client(wallet)
        return await client.history(after_id=after, limit=limit)

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


@bp.get(f"{WALLET}/events")
def events(address: str) -> Response:
    wallet = _authorize(address)
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
