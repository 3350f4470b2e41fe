"""Transfer definitions' Python mirrors: each pays only on its condition."""

from __future__ import annotations

import pytest

from connext.protocol.encoding import checksum, receipt_digest, voucher_digest
from connext.protocol.errors import InvalidTransferResolver, InvalidTransferState
from connext.protocol.signing import Signer
from connext.protocol.transfers import (
    DEFINITIONS,
    HASHLOCK,
    SIGNED,
    STREAM,
    WITHDRAW,
    TransferContext,
    lock_hash,
)
from connext.protocol.types import TransferBalance

PAYER, PAYEE = checksum(b"\x11" * 20), checksum(b"\x22" * 20)
BALANCE = TransferBalance(amount=(100, 0), to=(PAYER, PAYEE))
CTX = TransferContext(chain_id=31337, definition=checksum(b"\xd0" * 20), now=1_000)
PREIMAGE = b"\x99" * 32


def test_hashlock_pays_on_the_preimage_and_cancels_on_zero() -> None:
    state = HASHLOCK.encode_state(lock_hash(PREIMAGE), 2_000)
    HASHLOCK.create(BALANCE, state, CTX)
    paid = HASHLOCK.resolve(BALANCE, state, HASHLOCK.encode_resolver(PREIMAGE), CTX)
    assert paid.amount == (0, 100) and paid.to == BALANCE.to
    assert HASHLOCK.resolve(BALANCE, state, HASHLOCK.cancel_resolver, CTX) == BALANCE


def test_resolve_with_wrong_preimage_leaves_funds_locked() -> None:
    state = HASHLOCK.encode_state(lock_hash(PREIMAGE), 0)
    with pytest.raises(InvalidTransferResolver, match="wrong preimage"):
        HASHLOCK.resolve(BALANCE, state, HASHLOCK.encode_resolver(b"\x98" * 32), CTX)


def test_expired_hashlock_can_only_be_cancelled() -> None:
    state = HASHLOCK.encode_state(lock_hash(PREIMAGE), 1_000)
    with pytest.raises(InvalidTransferResolver, match="expired"):
        HASHLOCK.resolve(BALANCE, state, HASHLOCK.encode_resolver(PREIMAGE), CTX)
    assert HASHLOCK.resolve(BALANCE, state, HASHLOCK.cancel_resolver, CTX) == BALANCE
    with pytest.raises(InvalidTransferState):
        HASHLOCK.create(BALANCE, state, CTX)


def test_create_refuses_a_prefilled_responder_amount_for_every_definition() -> None:
    prefilled = TransferBalance(amount=(100, 1), to=(PAYER, PAYEE))
    for definition in DEFINITIONS.values():
        with pytest.raises(InvalidTransferState):
            definition.create(prefilled, b"", CTX)


def test_signed_transfer_pays_only_on_the_oracle_receipt() -> None:
    oracle, impostor = Signer(b"\x05" * 32), Signer(b"\x06" * 32)
    payment_id, data = b"\x01" * 32, b"\x02" * 32
    state = SIGNED.encode_state(oracle.address, payment_id, 0)
    SIGNED.create(BALANCE, state, CTX)
    digest = receipt_digest(CTX.chain_id, CTX.definition, payment_id, data)
    paid = SIGNED.resolve(BALANCE, state, SIGNED.encode_resolver(data, oracle.sign(digest)), CTX)
    assert paid.amount == (0, 100)
    with pytest.raises(InvalidTransferResolver):
        SIGNED.resolve(BALANCE, state, SIGNED.encode_resolver(data, impostor.sign(digest)), CTX)
    other_chain = receipt_digest(1, CTX.definition, payment_id, data)
    with pytest.raises(InvalidTransferResolver):
        SIGNED.resolve(BALANCE, state, SIGNED.encode_resolver(data, oracle.sign(other_chain)), CTX)
    assert SIGNED.resolve(BALANCE, state, SIGNED.cancel_resolver, CTX) == BALANCE


def test_stream_pays_the_voucher_capped_at_the_budget() -> None:
    payer = Signer(b"\x0a" * 32)
    stream_id = b"\x33" * 32
    state = STREAM.encode_state(payer.address, stream_id, 0)
    STREAM.create(BALANCE, state, CTX)

    def voucher(amount: int) -> bytes:
        sig = payer.sign(voucher_digest(CTX.chain_id, CTX.definition, stream_id, amount))
        return STREAM.encode_resolver(amount, sig)

    assert STREAM.resolve(BALANCE, state, voucher(37), CTX).amount == (63, 37)
    assert STREAM.resolve(BALANCE, state, voucher(1_000), CTX).amount == (0, 100)
    forged = STREAM.encode_resolver(
        99, Signer(b"\x0b" * 32).sign(voucher_digest(CTX.chain_id, CTX.definition, stream_id, 99))
    )
    with pytest.raises(InvalidTransferResolver):
        STREAM.resolve(BALANCE, state, forged, CTX)


def test_withdraw_needs_both_signatures_on_the_commitment() -> None:
    user, node = Signer(b"\x0c" * 32), Signer(b"\x0d" * 32)
    commitment = b"\x44" * 32
    state = WITHDRAW.encode_state(user.sign(commitment), user.address, node.address,
                                  commitment, 7, 0)
    WITHDRAW.create(BALANCE, state, CTX)
    done = WITHDRAW.resolve(BALANCE, state, WITHDRAW.encode_resolver(node.sign(commitment)), CTX)
    assert done.amount == (0, 0)
    with pytest.raises(InvalidTransferResolver):
        WITHDRAW.resolve(BALANCE, state, WITHDRAW.encode_resolver(user.sign(commitment)), CTX)
    forged = WITHDRAW.encode_state(node.sign(commitment), user.address, node.address,
                                   commitment, 7, 0)
    with pytest.raises(InvalidTransferState):
        WITHDRAW.create(BALANCE, forged, CTX)


def test_garbage_state_and_resolver_are_typed_errors() -> None:
    valid_states = {
        "Hashlock": HASHLOCK.encode_state(lock_hash(PREIMAGE), 0),
        "Signed": SIGNED.encode_state(PAYER, b"\x01" * 32, 0),
        "Withdraw": WITHDRAW.encode_state(b"", PAYER, PAYEE, b"\x01" * 32, 1, 0),
        "Stream": STREAM.encode_state(PAYER, b"\x01" * 32, 0),
    }
    for name, definition in DEFINITIONS.items():
        with pytest.raises(InvalidTransferState):
            definition.create(BALANCE, b"\x01\x02", CTX)
        with pytest.raises(InvalidTransferResolver):
            definition.resolve(BALANCE, valid_states[name], b"\x07", CTX)
