"""The wire/storage format round-trips every value and refuses malformed input clearly."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connext.protocol.serialization import (
    MalformedData,
    state_from_json,
    state_to_json,
    transfer_from_json,
    transfer_to_json,
    update_from_json,
    update_to_json,
)
from connext.protocol.types import (
    CreateDetails,
    DepositDetails,
    ResolveDetails,
    SetupDetails,
    Transfer,
    TransferBalance,
    Update,
    UpdateType,
)

from .strategies import UINT256, addresses, bytes32, channel_states, networks

balances = st.builds(lambda a, b, x, y: TransferBalance((a, b), (x, y)),
                     UINT256, UINT256, addresses, addresses)
metas = st.dictionaries(st.text(max_size=8), st.text(max_size=8) | st.integers(), max_size=3)
signatures = st.none() | st.binary(min_size=65, max_size=65)

details = st.one_of(
    st.builds(SetupDetails, timeout=UINT256, network=networks),
    st.builds(DepositDetails, asset_id=addresses, total_deposits_alice=UINT256,
              total_deposits_bob=UINT256),
    st.builds(CreateDetails, transfer_id=bytes32, transfer_definition=addresses,
              asset_id=addresses, balance=balances, initial_state=st.binary(max_size=200),
              transfer_timeout=UINT256, meta=metas),
    st.builds(ResolveDetails, transfer_id=bytes32, resolver=st.binary(max_size=100),
              meta=metas),
)
KIND = {SetupDetails: UpdateType.SETUP, DepositDetails: UpdateType.DEPOSIT,
        CreateDetails: UpdateType.CREATE, ResolveDetails: UpdateType.RESOLVE}


@settings(max_examples=100, deadline=None)
@given(state=channel_states())
def test_states_round_trip_through_json_text(state: Any) -> None:
    text = json.dumps(state_to_json(state))
    assert state_from_json(json.loads(text)) == state


@settings(max_examples=100, deadline=None)
@given(d=details, channel=addresses, a=addresses, b=addresses, nonce=UINT256,
       sa=signatures, sb=signatures)
def test_updates_round_trip(d: Any, channel: str, a: str, b: str, nonce: int,
                            sa: bytes | None, sb: bytes | None) -> None:
    update = Update(channel, a, b, KIND[type(d)], nonce, d, sa, sb)
    back = update_from_json(json.loads(json.dumps(update_to_json(update))))
    assert back == update
    assert getattr(back.details, "meta", None) == getattr(d, "meta", None)


@settings(max_examples=50, deadline=None)
@given(channel=addresses, tid=bytes32, definition=addresses, a=addresses, b=addresses,
       balance=balances, timeout=UINT256, state=st.binary(max_size=300), nonce=UINT256,
       meta=metas, resolver=st.none() | st.binary(max_size=64))
def test_transfers_round_trip(channel: str, tid: bytes, definition: str, a: str, b: str,
                              balance: TransferBalance, timeout: int, state: bytes, nonce: int,
                              meta: dict[str, Any], resolver: bytes | None) -> None:
    transfer = Transfer(channel, tid, definition, a, b, a, balance, timeout, state, nonce,
                        meta, resolver)
    back = transfer_from_json(json.loads(json.dumps(transfer_to_json(transfer))))
    assert back == transfer and back.meta == meta and back.resolver == resolver


@settings(max_examples=30, deadline=None)
@given(state=channel_states(), data=st.data())
def test_malformed_states_name_the_bad_field(state: Any, data: st.DataObject) -> None:
    good = state_to_json(state)
    field = data.draw(st.sampled_from(sorted(good)))
    bad_value = data.draw(st.sampled_from([None, "zz", "-1", 1.5, [], {}, "0x12", True]))
    broken = {**good, field: bad_value}
    try:
        parsed = state_from_json(broken)
    except MalformedData as exc:
        assert field in exc.message
    else:  # some substitutions are still valid (e.g. [] for an empty list)
        assert state_to_json(parsed) == broken


def test_uint_out_of_range_and_missing_fields_are_refused() -> None:
    update = Update("0x" + "11" * 20, "0x" + "22" * 20, "0x" + "33" * 20, UpdateType.DEPOSIT,
                    2, DepositDetails("0x" + "00" * 20, 1, 2))
    wire = update_to_json(update)
    with pytest.raises(MalformedData, match="nonce"):
        update_from_json({**wire, "nonce": str(2**256)})
    with pytest.raises(MalformedData, match=r"details\.totalDepositsBob"):
        update_from_json({**wire, "details": {"assetId": "0x" + "00" * 20,
                                              "totalDepositsAlice": "1"}})
    with pytest.raises(MalformedData, match="type"):
        update_from_json({**wire, "type": "steal"})
    with pytest.raises(MalformedData):
        update_from_json("not an object")
