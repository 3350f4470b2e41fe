"""Property tests of the channel state machine over random sequences of updates.

Two parties drive one channel through deposits, transfers of every definition, resolves,
cancels and withdrawals, interleaved with invalid updates. After every step: funds are
conserved per asset, nothing is negative, nonces step by one, the merkle root matches the
active transfers; every invalid update is rejected with its typed error and changes nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from connext.protocol import errors
from connext.protocol.channel import (
    Rules,
    countersign,
    create_update,
    deposit_update,
    locked,
    propose,
    resolve_update,
    setup_update,
    transfers_root,
    validate_update,
)
from connext.protocol.encoding import checksum, voucher_digest, withdraw_commitment_digest
from connext.protocol.signing import Signer
from connext.protocol.transfers import HASHLOCK, STREAM, WITHDRAW, lock_hash
from connext.protocol.types import ETH, ChannelState, NetworkContext, Transfer, Update

TOKEN = checksum(b"\x70" * 20)
ASSETS = (ETH, TOKEN)
HASHLOCK_ADDR = checksum(b"\xa1" * 20)
WITHDRAW_ADDR = checksum(b"\xa2" * 20)
STREAM_ADDR = checksum(b"\xa3" * 20)
RULES = Rules(
    definitions={HASHLOCK_ADDR: HASHLOCK, WITHDRAW_ADDR: WITHDRAW, STREAM_ADDR: STREAM},
    now=1_700_000_000,
)
NETWORK = NetworkContext(
    chain_id=31337,
    channel_factory=checksum(b"\xf1" * 20),
    channel_mastercopy=checksum(b"\xf2" * 20),
    transfer_registry=checksum(b"\xf3" * 20),
)
ALICE = Signer(b"\x01" * 32)
BOB = Signer(b"\x02" * 32)
MALLORY = Signer(b"\x03" * 32)
SIGNERS = {ALICE.address: ALICE, BOB.address: BOB}

amounts = st.integers(min_value=1, max_value=10**24)


class ChannelMachine(RuleBasedStateMachine):
    """Model: deposits on chain per asset and party, and the amount withdrawn per asset."""

    def __init__(self) -> None:
        super().__init__()
        self.state: ChannelState | None = None
        self.transfers: dict[bytes, Transfer] = {}
        self.onchain = {(a, p): 0 for a in ASSETS for p in ("alice", "bob")}
        self.withdrawn = dict.fromkeys(ASSETS, 0)
        self.preimages: dict[bytes, bytes] = {}
        self.counter = 0

    # --- helpers ------------------------------------------------------------------

    def commit(self, update: Update) -> None:
        """Initiator proposes, responder validates and countersigns: the happy path."""
        initiator = SIGNERS[update.initiator]
        responder = SIGNERS[update.responder]
        proposed, mine = propose(self.state, self.transfers, update, initiator, RULES)
        signed, theirs = countersign(self.state, self.transfers, proposed, responder, RULES)
        assert signed.double_signed
        assert mine.state == theirs.state
        previous = self.state.nonce if self.state else 0
        assert theirs.state.nonce == previous + 1
        self.state = theirs.state
        self.transfers = dict(theirs.transfers)

    def expect_rejected(self, update: Update, error: type[errors.ProtocolError]) -> None:
        before_state, before_transfers = self.state, dict(self.transfers)
        signer = SIGNERS.get(update.initiator, MALLORY)
        with pytest.raises(error):
            proposed, _ = propose(self.state, self.transfers, update, signer, RULES)
            validate_update(self.state, self.transfers, proposed, RULES)
        assert self.state == before_state
        assert self.transfers == before_transfers

    def new_id(self) -> bytes:
        self.counter += 1
        return hashlib.sha256(b"transfer-%d" % self.counter).digest()

    def party_signer(self, who: str) -> Signer:
        return ALICE if who == "alice" else BOB

    def balance(self, who: str, asset: str) -> int:
        assert self.state is not None
        return int(getattr(self.state.balance_of(asset), who))

    # --- valid steps --------------------------------------------------------------

    @initialize()
    def setup(self) -> None:
        self.commit(setup_update(ALICE.address, BOB.address, NETWORK, timeout=3600))

    @rule(asset=st.sampled_from(ASSETS), who=st.sampled_from(["alice", "bob"]),
          amount=amounts, proposer=st.sampled_from(["alice", "bob"]))
    def deposit(self, asset: str, who: str, amount: int, proposer: str) -> None:
        assert self.state is not None
        self.onchain[(asset, who)] += amount
        self.commit(deposit_update(
            self.state, self.party_signer(proposer).address, asset,
            self.onchain[(asset, "alice")], self.onchain[(asset, "bob")],
        ))

    @rule(asset=st.sampled_from(ASSETS), who=st.sampled_from(["alice", "bob"]),
          fraction=st.floats(min_value=0.01, max_value=1.0))
    def create_hashlock(self, asset: str, who: str, fraction: float) -> None:
        assert self.state is not None
        amount = int(self.balance(who, asset) * fraction)
        if amount <= 0:
            return
        preimage = hashlib.sha256(b"pre-%d" % self.counter).digest()
        transfer_id = self.new_id()
        self.preimages[transfer_id] = preimage
        self.commit(create_update(
            self.state, self.party_signer(who).address, transfer_id=transfer_id,
            transfer_definition=HASHLOCK_ADDR, asset_id=asset, amount=amount,
            initial_state=HASHLOCK.encode_state(lock_hash(preimage), 0), transfer_timeout=600,
        ))

    @rule(asset=st.sampled_from(ASSETS), who=st.sampled_from(["alice", "bob"]),
          fraction=st.floats(min_value=0.01, max_value=1.0))
    def create_withdraw(self, asset: str, who: str, fraction: float) -> None:
        assert self.state is not None
        amount = int(self.balance(who, asset) * fraction)
        if amount <= 0:
            return
        me = self.party_signer(who)
        other = SIGNERS[self.state.counterparty(me.address)]
        commitment = withdraw_commitment_digest(
            NETWORK.chain_id, self.state.channel_address, me.address, asset, amount,
            self.state.nonce + 1,
        )
        initial = WITHDRAW.encode_state(
            me.sign(commitment), me.address, other.address, commitment, self.state.nonce + 1, 0
        )
        self.commit(create_update(
            self.state, me.address, transfer_id=self.new_id(), transfer_definition=WITHDRAW_ADDR,
            asset_id=asset, amount=amount, initial_state=initial, transfer_timeout=600,
        ))

    @rule(asset=st.sampled_from(ASSETS), who=st.sampled_from(["alice", "bob"]),
          fraction=st.floats(min_value=0.01, max_value=1.0))
    def create_stream(self, asset: str, who: str, fraction: float) -> None:
        assert self.state is not None
        amount = int(self.balance(who, asset) * fraction)
        if amount <= 0:
            return
        me = self.party_signer(who)
        transfer_id = self.new_id()
        self.commit(create_update(
            self.state, me.address, transfer_id=transfer_id, transfer_definition=STREAM_ADDR,
            asset_id=asset, amount=amount,
            initial_state=STREAM.encode_state(me.address, transfer_id, 0), transfer_timeout=600,
        ))

    @precondition(lambda self: bool(self.transfers))
    @rule(data=st.data(), cancel=st.booleans())
    def resolve(self, data: st.DataObject, cancel: bool) -> None:
        assert self.state is not None
        transfer = self.transfers[data.draw(st.sampled_from(sorted(self.transfers)))]
        responder = SIGNERS[transfer.responder]
        payer = SIGNERS[transfer.initiator]
        if transfer.transfer_definition == HASHLOCK_ADDR:
            resolver = HASHLOCK.cancel_resolver if cancel else HASHLOCK.encode_resolver(
                self.preimages[transfer.transfer_id]
            )
        elif transfer.transfer_definition == WITHDRAW_ADDR:
            commitment = WITHDRAW.decode_state(transfer.initial_state)[3]
            resolver = WITHDRAW.cancel_resolver if cancel else WITHDRAW.encode_resolver(
                responder.sign(commitment)
            )
            if not cancel:
                self.withdrawn[transfer.asset_id] += transfer.balance.amount[0]
        else:
            voucher = data.draw(st.integers(min_value=0, max_value=2 * transfer.balance.total))
            digest = voucher_digest(NETWORK.chain_id, STREAM_ADDR, transfer.transfer_id, voucher)
            resolver = STREAM.cancel_resolver if cancel else STREAM.encode_resolver(
                voucher, payer.sign(digest)
            )
        self.commit(resolve_update(
            self.state, responder.address, transfer.transfer_id, resolver
        ))

    # --- invalid updates ------------------------------------------------------------

    @rule(asset=st.sampled_from(ASSETS), who=st.sampled_from(["alice", "bob"]))
    def overspend_is_rejected(self, asset: str, who: str) -> None:
        assert self.state is not None
        self.expect_rejected(create_update(
            self.state, self.party_signer(who).address, transfer_id=self.new_id(),
            transfer_definition=HASHLOCK_ADDR, asset_id=asset,
            amount=self.balance(who, asset) + 1,
            initial_state=HASHLOCK.encode_state(b"\x01" * 32, 0), transfer_timeout=600,
        ), errors.InsufficientBalance)

    @rule(offset=st.sampled_from([-1, 0, 2, 7]))
    def wrong_nonce_is_rejected(self, offset: int) -> None:
        assert self.state is not None
        self.onchain[(ETH, "bob")] += 1
        update = deposit_update(self.state, BOB.address, ETH, self.onchain[(ETH, "alice")],
                                self.onchain[(ETH, "bob")])
        self.expect_rejected(replace(update, nonce=self.state.nonce + offset), errors.StaleNonce)
        self.onchain[(ETH, "bob")] -= 1

    @rule()
    def bad_signature_is_rejected(self) -> None:
        assert self.state is not None
        self.onchain[(ETH, "alice")] += 5
        update = deposit_update(self.state, ALICE.address, ETH, self.onchain[(ETH, "alice")],
                                self.onchain[(ETH, "bob")])
        self.onchain[(ETH, "alice")] -= 5
        forged, _ = propose(self.state, self.transfers, update, ALICE, RULES)
        forged = replace(forged, alice_signature=MALLORY.sign(b"\x00" * 32))
        before = self.state
        with pytest.raises(errors.InvalidSignature):
            countersign(self.state, self.transfers, forged, BOB, RULES)
        unsigned = replace(forged, alice_signature=None)
        with pytest.raises(errors.InvalidSignature):
            validate_update(self.state, self.transfers, unsigned, RULES)
        assert self.state == before

    @rule(resolver=st.binary(min_size=32, max_size=32))
    def unknown_transfer_is_rejected(self, resolver: bytes) -> None:
        assert self.state is not None
        self.expect_rejected(
            resolve_update(self.state, BOB.address, self.new_id(), resolver),
            errors.UnknownTransfer,
        )

    @precondition(lambda self: bool(self.transfers))
    @rule(data=st.data())
    def wrong_resolver_is_rejected(self, data: st.DataObject) -> None:
        assert self.state is not None
        transfer = self.transfers[data.draw(st.sampled_from(sorted(self.transfers)))]
        self.expect_rejected(
            resolve_update(self.state, transfer.initiator, transfer.transfer_id,
                           HASHLOCK.cancel_resolver),
            errors.WrongResolver,
        )

    @precondition(lambda self: bool(self.transfers))
    @rule(data=st.data())
    def duplicate_id_is_rejected(self, data: st.DataObject) -> None:
        assert self.state is not None
        existing = data.draw(st.sampled_from(sorted(self.transfers)))
        who = data.draw(st.sampled_from([ALICE, BOB]))
        self.expect_rejected(create_update(
            self.state, who.address, transfer_id=existing, transfer_definition=HASHLOCK_ADDR,
            asset_id=ETH, amount=1, initial_state=HASHLOCK.encode_state(b"\x01" * 32, 0),
            transfer_timeout=600,
        ), errors.DuplicateTransfer)

    @rule(who=st.sampled_from(["alice", "bob"]))
    def transfer_to_self_is_rejected(self, who: str) -> None:
        assert self.state is not None
        me = self.party_signer(who).address
        update = create_update(
            self.state, me, transfer_id=self.new_id(), transfer_definition=HASHLOCK_ADDR,
            asset_id=ETH, amount=1, initial_state=HASHLOCK.encode_state(b"\x01" * 32, 0),
            transfer_timeout=600,
        )
        details: Any = update.details
        to_self = replace(details, balance=replace(details.balance, to=(me, me)))
        self.expect_rejected(replace(update, details=to_self), errors.TransferToSelf)

    @precondition(lambda self: any(
        t.transfer_definition == HASHLOCK_ADDR for t in self.transfers.values()))
    @rule(data=st.data(), preimage=st.binary(min_size=32, max_size=32))
    def wrong_preimage_leaves_funds_locked(self, data: st.DataObject, preimage: bytes) -> None:
        assert self.state is not None
        hashlocks = sorted(
            k for k, t in self.transfers.items() if t.transfer_definition == HASHLOCK_ADDR
        )
        transfer = self.transfers[data.draw(st.sampled_from(hashlocks))]
        if preimage in (self.preimages[transfer.transfer_id], bytes(32)):
            return
        self.expect_rejected(
            resolve_update(self.state, transfer.responder, transfer.transfer_id,
                           HASHLOCK.encode_resolver(preimage)),
            errors.InvalidTransferResolver,
        )

    # --- invariants -----------------------------------------------------------------

    @invariant()
    def funds_are_conserved_and_non_negative(self) -> None:
        if self.state is None:
            return
        for asset in ASSETS:
            index = self.state.asset_index(asset)
            if index is None:
                assert self.onchain[(asset, "alice")] + self.onchain[(asset, "bob")] == 0 or (
                    locked(self.transfers, asset) == 0
                )
                continue
            bal = self.state.balances[index]
            assert bal.alice >= 0 and bal.bob >= 0
            assert self.state.processed_deposits_a[index] == self.onchain[(asset, "alice")]
            assert self.state.processed_deposits_b[index] == self.onchain[(asset, "bob")]
            assert bal.alice + bal.bob + locked(self.transfers, asset) == (
                self.state.processed_deposits_a[index]
                + self.state.processed_deposits_b[index]
                - self.withdrawn[asset]
            )

    @invariant()
    def merkle_root_matches_active_transfers(self) -> None:
        if self.state is not None:
            assert self.state.merkle_root == transfers_root(self.transfers)


ChannelMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_channel_state_machine = ChannelMachine.TestCase
