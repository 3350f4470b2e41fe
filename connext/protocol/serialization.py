"""JSON-ready dicts for protocol data: the one wire and storage format.

Amounts are decimal strings (uint256 does not fit a JSON number in most languages), bytes
are 0x-hex, addresses checksummed. Parsing is strict: anything malformed raises
`MalformedData` with the path of the offending field, never a half-built object.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import orjson

from .encoding import checksum
from .errors import ProtocolError
from .types import (
    Address,
    Balance,
    ChannelState,
    CreateDetails,
    DepositDetails,
    NetworkContext,
    ResolveDetails,
    SetupDetails,
    Transfer,
    TransferBalance,
    Update,
    UpdateDetails,
    UpdateType,
)

T = TypeVar("T")
MAX_UINT256 = 2**256 - 1
Json = dict[str, Any]


class MalformedData(ProtocolError):
    code = "malformed_data"


# --- bytes -----------------------------------------------------------------------------


def compact_json(value: Any) -> bytes:
    """Compact UTF-8 JSON of a JSON-ready value, for the wire and the store (not canonical:
    keys in the order given). orjson (several times faster than the standard library),
    which hands back what it cannot write exactly (integers beyond 64 bits) to `json`.
    Parsing stays with `json`: orjson reads such integers as floats, silently."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode()


# --- leaves ---------------------------------------------------------------------------


def hexb(value: bytes) -> str:
    return "0x" + value.hex()


def _field(data: Mapping[str, Any], name: str, path: str) -> Any:
    if not isinstance(data, Mapping):
        raise MalformedData(f"{path or 'value'}: expected an object")
    if name not in data:
        raise MalformedData(f"{path}{name}: missing")
    return data[name]


def parse_uint(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise MalformedData(f"{path}: expected a decimal string")
    try:
        number = int(value) if isinstance(value, int) else int(value, 10)
    except ValueError:
        raise MalformedData(f"{path}: not a decimal integer: {value!r}") from None
    if not 0 <= number <= MAX_UINT256:
        raise MalformedData(f"{path}: out of the uint256 range")
    return number


def parse_bytes(value: Any, path: str, length: int | None = None) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise MalformedData(f"{path}: expected 0x-prefixed hex")
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError:
        raise MalformedData(f"{path}: invalid hex") from None
    if length is not None and len(raw) != length:
        raise MalformedData(f"{path}: expected {length} bytes, got {len(raw)}")
    return raw


def parse_address(value: Any, path: str) -> Address:
    return checksum(parse_bytes(value, path, 20))


def _parse_list(value: Any, path: str, item: Callable[[Any, str], T]) -> tuple[T, ...]:
    if not isinstance(value, list):
        raise MalformedData(f"{path}: expected a list")
    return tuple(item(v, f"{path}[{i}]") for i, v in enumerate(value))


def _parse_meta(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedData(f"{path}: expected an object")
    return value


# --- composite types ------------------------------------------------------------------


def network_to_json(net: NetworkContext) -> Json:
    return {
        "chainId": str(net.chain_id),
        "channelFactory": net.channel_factory,
        "channelMastercopy": net.channel_mastercopy,
        "transferRegistry": net.transfer_registry,
    }


def network_from_json(data: Any, path: str = "") -> NetworkContext:
    return NetworkContext(
        chain_id=parse_uint(_field(data, "chainId", path), f"{path}chainId"),
        channel_factory=parse_address(_field(data, "channelFactory", path),
                                      f"{path}channelFactory"),
        channel_mastercopy=parse_address(_field(data, "channelMastercopy", path),
                                         f"{path}channelMastercopy"),
        transfer_registry=parse_address(_field(data, "transferRegistry", path),
                                        f"{path}transferRegistry"),
    )


def state_to_json(state: ChannelState) -> Json:
    return {
        "channelAddress": state.channel_address,
        "alice": state.alice,
        "bob": state.bob,
        "network": network_to_json(state.network),
        "assetIds": list(state.asset_ids),
        "balances": [[str(b.alice), str(b.bob)] for b in state.balances],
        "processedDepositsA": [str(v) for v in state.processed_deposits_a],
        "processedDepositsB": [str(v) for v in state.processed_deposits_b],
        "defundNonces": [str(v) for v in state.defund_nonces],
        "timeout": str(state.timeout),
        "nonce": str(state.nonce),
        "merkleRoot": hexb(state.merkle_root),
    }


def _parse_balance(value: Any, path: str) -> Balance:
    if not isinstance(value, list) or len(value) != 2:
        raise MalformedData(f"{path}: expected [alice, bob]")
    return Balance(parse_uint(value[0], f"{path}[0]"), parse_uint(value[1], f"{path}[1]"))


def state_from_json(data: Any, path: str = "") -> ChannelState:
    def f(name: str) -> Any:
        return _field(data, name, path)

    state = ChannelState(
        channel_address=parse_address(f("channelAddress"), f"{path}channelAddress"),
        alice=parse_address(f("alice"), f"{path}alice"),
        bob=parse_address(f("bob"), f"{path}bob"),
        network=network_from_json(f("network"), f"{path}network."),
        asset_ids=_parse_list(f("assetIds"), f"{path}assetIds", parse_address),
        balances=_parse_list(f("balances"), f"{path}balances", _parse_balance),
        processed_deposits_a=_parse_list(f("processedDepositsA"), f"{path}processedDepositsA",
                                         parse_uint),
        processed_deposits_b=_parse_list(f("processedDepositsB"), f"{path}processedDepositsB",
                                         parse_uint),
        defund_nonces=_parse_list(f("defundNonces"), f"{path}defundNonces", parse_uint),
        timeout=parse_uint(f("timeout"), f"{path}timeout"),
        nonce=parse_uint(f("nonce"), f"{path}nonce"),
        merkle_root=parse_bytes(f("merkleRoot"), f"{path}merkleRoot", 32),
    )
    n = len(state.asset_ids)
    if not (len(state.balances) == len(state.processed_deposits_a)
            == len(state.processed_deposits_b) == len(state.defund_nonces) == n):
        raise MalformedData(
            f"{path}assetIds, balances, processedDepositsA, processedDepositsB and "
            "defundNonces must have the same length"
        )
    return state


def transfer_balance_to_json(balance: TransferBalance) -> Json:
    return {"amount": [str(a) for a in balance.amount], "to": list(balance.to)}


def transfer_balance_from_json(data: Any, path: str = "") -> TransferBalance:
    amount = _parse_list(_field(data, "amount", path), f"{path}amount", parse_uint)
    to = _parse_list(_field(data, "to", path), f"{path}to", parse_address)
    if len(amount) != 2 or len(to) != 2:
        raise MalformedData(f"{path}: amount and to must have two entries")
    return TransferBalance(amount=(amount[0], amount[1]), to=(to[0], to[1]))


def transfer_to_json(transfer: Transfer) -> Json:
    return {
        "channelAddress": transfer.channel_address,
        "transferId": hexb(transfer.transfer_id),
        "transferDefinition": transfer.transfer_definition,
        "initiator": transfer.initiator,
        "responder": transfer.responder,
        "assetId": transfer.asset_id,
        "balance": transfer_balance_to_json(transfer.balance),
        "transferTimeout": str(transfer.transfer_timeout),
        "initialState": hexb(transfer.initial_state),
        "channelNonce": str(transfer.channel_nonce),
        "meta": dict(transfer.meta),
        "resolver": None if transfer.resolver is None else hexb(transfer.resolver),
    }


def transfer_from_json(data: Any, path: str = "") -> Transfer:
    def f(name: str) -> Any:
        return _field(data, name, path)

    resolver = f("resolver")
    return Transfer(
        channel_address=parse_address(f("channelAddress"), f"{path}channelAddress"),
        transfer_id=parse_bytes(f("transferId"), f"{path}transferId", 32),
        transfer_definition=parse_address(f("transferDefinition"), f"{path}transferDefinition"),
        initiator=parse_address(f("initiator"), f"{path}initiator"),
        responder=parse_address(f("responder"), f"{path}responder"),
        asset_id=parse_address(f("assetId"), f"{path}assetId"),
        balance=transfer_balance_from_json(f("balance"), f"{path}balance."),
        transfer_timeout=parse_uint(f("transferTimeout"), f"{path}transferTimeout"),
        initial_state=parse_bytes(f("initialState"), f"{path}initialState"),
        channel_nonce=parse_uint(f("channelNonce"), f"{path}channelNonce"),
        meta=_parse_meta(f("meta"), f"{path}meta"),
        resolver=None if resolver is None else parse_bytes(resolver, f"{path}resolver"),
    )


def details_to_json(details: UpdateDetails) -> Json:
    if isinstance(details, SetupDetails):
        return {"timeout": str(details.timeout), "network": network_to_json(details.network)}
    if isinstance(details, DepositDetails):
        return {
            "assetId": details.asset_id,
            "totalDepositsAlice": str(details.total_deposits_alice),
            "totalDepositsBob": str(details.total_deposits_bob),
        }
    if isinstance(details, CreateDetails):
        return {
            "transferId": hexb(details.transfer_id),
            "transferDefinition": details.transfer_definition,
            "assetId": details.asset_id,
            "balance": transfer_balance_to_json(details.balance),
            "initialState": hexb(details.initial_state),
            "transferTimeout": str(details.transfer_timeout),
            "meta": dict(details.meta),
        }
    return {
        "transferId": hexb(details.transfer_id),
        "resolver": hexb(details.resolver),
        "meta": dict(details.meta),
    }


def details_from_json(kind: UpdateType, data: Any, path: str = "") -> UpdateDetails:
    def f(name: str) -> Any:
        return _field(data, name, path)

    if kind is UpdateType.SETUP:
        return SetupDetails(timeout=parse_uint(f("timeout"), f"{path}timeout"),
                            network=network_from_json(f("network"), f"{path}network."))
    if kind is UpdateType.DEPOSIT:
        return DepositDetails(
            asset_id=parse_address(f("assetId"), f"{path}assetId"),
            total_deposits_alice=parse_uint(f("totalDepositsAlice"), f"{path}totalDepositsAlice"),
            total_deposits_bob=parse_uint(f("totalDepositsBob"), f"{path}totalDepositsBob"),
        )
    if kind is UpdateType.CREATE:
        return CreateDetails(
            transfer_id=parse_bytes(f("transferId"), f"{path}transferId", 32),
            transfer_definition=parse_address(f("transferDefinition"),
                                              f"{path}transferDefinition"),
            asset_id=parse_address(f("assetId"), f"{path}assetId"),
            balance=transfer_balance_from_json(f("balance"), f"{path}balance."),
            initial_state=parse_bytes(f("initialState"), f"{path}initialState"),
            transfer_timeout=parse_uint(f("transferTimeout"), f"{path}transferTimeout"),
            meta=_parse_meta(f("meta"), f"{path}meta"),
        )
    return ResolveDetails(
        transfer_id=parse_bytes(f("transferId"), f"{path}transferId", 32),
        resolver=parse_bytes(f("resolver"), f"{path}resolver"),
        meta=_parse_meta(f("meta"), f"{path}meta"),
    )


def update_to_json(update: Update) -> Json:
    return {
        "channelAddress": update.channel_address,
        "initiator": update.initiator,
        "responder": update.responder,
        "type": update.type.value,
        "nonce": str(update.nonce),
        "details": details_to_json(update.details),
        "aliceSignature": None if update.alice_signature is None
        else hexb(update.alice_signature),
        "bobSignature": None if update.bob_signature is None else hexb(update.bob_signature),
    }


def update_from_json(data: Any, path: str = "") -> Update:
    def f(name: str) -> Any:
        return _field(data, name, path)

    try:
        kind = UpdateType(f("type"))
    except ValueError:
        raise MalformedData(f"{path}type: unknown update type {f('type')!r}") from None

    def signature(name: str) -> bytes | None:
        value = f(name)
        return None if value is None else parse_bytes(value, f"{path}{name}", 65)

    return Update(
        channel_address=parse_address(f("channelAddress"), f"{path}channelAddress"),
        initiator=parse_address(f("initiator"), f"{path}initiator"),
        responder=parse_address(f("responder"), f"{path}responder"),
        type=kind,
        nonce=parse_uint(f("nonce"), f"{path}nonce"),
        details=details_from_json(kind, f("details"), f"{path}details."),
        alice_signature=signature("aliceSignature"),
        bob_signature=signature("bobSignature"),
    )
