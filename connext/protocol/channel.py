"""The channel state machine: (state, active transfers, update) -> next state.

`apply_update` rebuilds the next state from the previous one and the update's details and
enforces every protocol rule; `validate_update` also checks signatures. Both are pure and
raise a typed `ProtocolError` without touching their inputs, so a rejected update leaves
the channel exactly as it was. `propose_*` build updates, `sign_*` sign them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TypeVar

from . import errors
from .encoding import channel_address, channel_state_digest, keccak, transfer_hash
from .merkle import merkle_root
from .signing import Signer, verify
from .transfers import TransferContext, TransferDefinition
from .types import (
    MAX_AMOUNT,
    MAX_ASSETS,
    MAX_NONCE,
    ZERO_HASH,
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
    UpdateType,
)

MAX_TIMEOUT = 2**32
"""Upper bound of the dispute window and transfer timeouts, in seconds."""


@dataclass(frozen=True, slots=True)
class Bounds:
    """The timeouts a party accepts, in seconds: the channel's dispute window (setup) and a
    transfer's on-chain dispute window (create). Too short, and a dispute cannot be
    answered on chain in time; too long, and funds stay locked for that long. Each party
    checks its own bounds on what it proposes and on what it countersigns."""

    min_channel_timeout: int = 1
    max_channel_timeout: int = MAX_TIMEOUT
    min_transfer_timeout: int = 1
    max_transfer_timeout: int = MAX_TIMEOUT

    def check_channel_timeout(self, timeout: int) -> None:
        _check_within("the channel's dispute window", timeout, self.min_channel_timeout,
                      self.max_channel_timeout)

    def check_transfer_timeout(self, timeout: int) -> None:
        _check_within("the transfer's timeout", timeout, self.min_transfer_timeout,
                      self.max_transfer_timeout)


DEFAULT_BOUNDS = Bounds(
    min_channel_timeout=3600, max_channel_timeout=30 * 24 * 3600,
    min_transfer_timeout=600, max_transfer_timeout=30 * 24 * 3600,
)
"""What node and client accept unless configured otherwise: an hour to answer a channel
dispute on chain, ten minutes for a transfer's, and never more than 30 days locked."""


def _check_within(what: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise errors.TimeoutOutOfBounds(
            f"{what} of {value} s is outside the accepted {low}..{high} s")

ActiveTransfers = Mapping[bytes, Transfer]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Rules:
    """What the state machine needs besides the channel: known definitions, block time,
    the party's timeout bounds and the secret registry.

    `definitions` maps a definition contract's address to its Python mirror (from the
    deployment's transfer registry); `now` is the block timestamp definitions see;
    `registered` maps a lock hash to the block time its preimage was first registered on
    chain (see TransferContext).
    """

    definitions: Mapping[Address, TransferDefinition]
    now: int = 0
    bounds: Bounds = Bounds()
    registered: Mapping[bytes, int] = field(default_factory=dict)

    def context(self, chain_id: int, definition: Address) -> TransferContext:
        return TransferContext(chain_id, definition, self.now, self.registered)


@dataclass(frozen=True)
class Applied:
    """The outcome of one update."""

    state: ChannelState
    transfers: Mapping[bytes, Transfer]
    """Active transfers after the update."""
    transfer: Transfer | None = None
    """The transfer created, or resolved (with its final balance and resolver)."""

    @cached_property
    def digest(self) -> bytes:
        """The EIP-712 digest of the new state: what both parties sign."""
        return channel_state_digest(self.state)


def leaf(transfer: Transfer) -> bytes:
    """The transfer's merkle leaf: keccak of its core state."""
    return transfer_hash(transfer.core(keccak(transfer.initial_state)))


def transfers_root(transfers: Mapping[bytes, Transfer]) -> bytes:
    return merkle_root(leaf(t) for t in transfers.values())


def locked(transfers: Mapping[bytes, Transfer], asset_id: Address) -> int:
    return sum(t.balance.total for t in transfers.values() if t.asset_id == asset_id)


# --- applying updates -----------------------------------------------------------------


def apply_update(
    state: ChannelState | None,
    transfers: ActiveTransfers,
    update: Update,
    rules: Rules,
) -> Applied:
    """The next state and active transfers, or a ProtocolError (inputs are untouched)."""
    if update.type is UpdateType.SETUP:
        return _apply_setup(state, update, rules)
    if state is None:
        raise errors.ChannelNotSetUp(f"channel {update.channel_address} is not set up")
    _check_common(state, update)
    if update.type is UpdateType.DEPOSIT:
        return _apply_deposit(state, transfers, update)
    if update.type is UpdateType.CREATE:
        return _apply_create(state, transfers, update, rules)
    if update.type is UpdateType.RESOLVE:
        return _apply_resolve(state, transfers, update, rules)
    raise errors.InvalidUpdate(f"unknown update type {update.type!r}")


def validate_update(
    state: ChannelState | None,
    transfers: ActiveTransfers,
    update: Update,
    rules: Rules,
) -> Applied:
    """Apply `update` and check the initiator's signature (and the responder's, if given)."""
    applied = apply_update(state, transfers, update, rules)
    new = applied.state
    digest = applied.digest
    initiator_party = new.party(update.initiator)
    signatures = {"alice": update.alice_signature, "bob": update.bob_signature}
    if not verify(digest, signatures[initiator_party], update.initiator):
        raise errors.InvalidSignature(
            f"the initiator's signature on nonce {new.nonce} is missing or invalid"
        )
    responder_party = new.party(update.responder)
    if signatures[responder_party] is not None and not verify(
        digest, signatures[responder_party], update.responder
    ):
        raise errors.InvalidSignature(f"the responder's signature on nonce {new.nonce} is invalid")
    return applied


def _check_common(state: ChannelState, update: Update) -> None:
    if update.channel_address != state.channel_address:
        raise errors.InvalidUpdate(
            f"update is for channel {update.channel_address}, not {state.channel_address}"
        )
    parties = {state.alice, state.bob}
    if update.initiator not in parties or update.responder not in parties:
        raise errors.InvalidUpdate("the update's parties are not the channel's")
    if update.initiator == update.responder:
        raise errors.InvalidUpdate("initiator and responder must differ")
    if update.nonce != state.nonce + 1:
        raise errors.StaleNonce(
            f"expected nonce {state.nonce + 1}, got {update.nonce}"
        )
    if update.nonce > MAX_NONCE:
        raise errors.InvalidUpdate("the channel has run out of nonces")


def _apply_setup(state: ChannelState | None, update: Update, rules: Rules) -> Applied:
    if state is not None:
        raise errors.ChannelAlreadySetUp(f"channel {state.channel_address} is already set up")
    details = update.details
    if not isinstance(details, SetupDetails):
        raise errors.InvalidUpdate("setup update without setup details")
    if update.nonce != 1:
        raise errors.StaleNonce(f"setup must have nonce 1, got {update.nonce}")
    alice, bob = update.initiator, update.responder
    if alice == bob:
        raise errors.InvalidUpdate("a channel needs two different parties")
    if not 0 < details.timeout <= MAX_TIMEOUT:
        raise errors.InvalidUpdate(f"timeout must be within 1..{MAX_TIMEOUT} seconds")
    rules.bounds.check_channel_timeout(details.timeout)
    net = details.network
    expected = channel_address(
        net.channel_factory, net.channel_mastercopy, alice, bob, net.chain_id
    )
    if update.channel_address != expected:
        raise errors.InvalidChannelAddress(
            f"channel address {update.channel_address} is not the derived {expected}"
        )
    new = ChannelState(
        channel_address=expected,
        alice=alice,
        bob=bob,
        network=net,
        asset_ids=(),
        balances=(),
        processed_deposits_a=(),
        processed_deposits_b=(),
        defund_nonces=(),
        timeout=details.timeout,
        nonce=1,
        merkle_root=ZERO_HASH,
    )
    return Applied(state=new, transfers={})


def _apply_deposit(state: ChannelState, transfers: ActiveTransfers, update: Update) -> Applied:
    details = update.details
    if not isinstance(details, DepositDetails):
        raise errors.InvalidUpdate("deposit update without deposit details")
    index = state.asset_index(details.asset_id)
    if index is None:
        if len(state.asset_ids) >= MAX_ASSETS:
            raise errors.TooManyAssets(f"a channel holds at most {MAX_ASSETS} assets")
        state = replace(
            state,
            asset_ids=(*state.asset_ids, details.asset_id),
            balances=(*state.balances, Balance(0, 0)),
            processed_deposits_a=(*state.processed_deposits_a, 0),
            processed_deposits_b=(*state.processed_deposits_b, 0),
            defund_nonces=(*state.defund_nonces, 1),
        )
        index = len(state.asset_ids) - 1
    processed_a = state.processed_deposits_a[index]
    processed_b = state.processed_deposits_b[index]
    new_a = details.total_deposits_alice - processed_a
    new_b = details.total_deposits_bob - processed_b
    if new_a < 0 or new_b < 0:
        raise errors.InvalidDeposit("deposit totals are below what was already processed")
    if new_a == 0 and new_b == 0:
        raise errors.InvalidDeposit("there is no new deposit to reconcile")
    if max(details.total_deposits_alice, details.total_deposits_bob) > MAX_AMOUNT:
        raise errors.InvalidDeposit(f"deposit totals above {MAX_AMOUNT} are not supported")
    old = state.balances[index]
    new = replace(
        state,
        balances=_set(state.balances, index, Balance(old.alice + new_a, old.bob + new_b)),
        processed_deposits_a=_set(
            state.processed_deposits_a, index, details.total_deposits_alice
        ),
        processed_deposits_b=_set(state.processed_deposits_b, index, details.total_deposits_bob),
        nonce=update.nonce,
    )
    return Applied(state=new, transfers=transfers)


def _apply_create(
    state: ChannelState, transfers: ActiveTransfers, update: Update, rules: Rules
) -> Applied:
    details = update.details
    if not isinstance(details, CreateDetails):
        raise errors.InvalidUpdate("create update without create details")
    if len(details.transfer_id) != 32:
        raise errors.InvalidUpdate("a transfer id is 32 bytes")
    if details.transfer_id in transfers:
        raise errors.DuplicateTransfer(f"transfer 0x{details.transfer_id.hex()} already exists")
    definition = rules.definitions.get(details.transfer_definition)
    if definition is None:
        raise errors.UnknownTransferDefinition(
            f"{details.transfer_definition} is not a registered transfer definition"
        )
    balance = details.balance
    if balance.to[0] != update.initiator:
        raise errors.InvalidUpdate("the transfer must be paid by the update's initiator")
    if balance.to[1] == update.initiator:
        raise errors.TransferToSelf("a transfer cannot pay its own initiator")
    if balance.to[1] != update.responder:
        raise errors.InvalidUpdate("the transfer must pay the channel's other party")
    if balance.amount[0] <= 0 or balance.amount[1] < 0:
        raise errors.InvalidAmount("a transfer amount must be positive")
    if not 0 < details.transfer_timeout <= MAX_TIMEOUT:
        raise errors.InvalidUpdate(f"transfer timeout must be within 1..{MAX_TIMEOUT} seconds")
    rules.bounds.check_transfer_timeout(details.transfer_timeout)
    index = state.asset_index(details.asset_id)
    payer = state.party(update.initiator)
    available = 0 if index is None else getattr(state.balances[index], payer)
    if index is None or balance.total > available:
        raise errors.InsufficientBalance(
            f"{update.initiator} has {available} of {details.asset_id}, "
            f"cannot lock {balance.total}"
        )
    definition.create(
        balance,
        details.initial_state,
        rules.context(state.network.chain_id, details.transfer_definition),
    )
    transfer = Transfer(
        channel_address=state.channel_address,
        transfer_id=details.transfer_id,
        transfer_definition=details.transfer_definition,
        initiator=update.initiator,
        responder=update.responder,
        asset_id=details.asset_id,
        balance=balance,
        transfer_timeout=details.transfer_timeout,
        initial_state=details.initial_state,
        channel_nonce=update.nonce,
        meta=details.meta,
    )
    new_transfers = {**transfers, transfer.transfer_id: transfer}
    old = state.balances[index]
    debited = (
        Balance(old.alice - balance.total, old.bob)
        if payer == "alice"
        else Balance(old.alice, old.bob - balance.total)
    )
    new = replace(
        state,
        balances=_set(state.balances, index, debited),
        nonce=update.nonce,
        merkle_root=transfers_root(new_transfers),
    )
    return Applied(state=new, transfers=new_transfers, transfer=transfer)


def _apply_resolve(
    state: ChannelState, transfers: ActiveTransfers, update: Update, rules: Rules
) -> Applied:
    details = update.details
    if not isinstance(details, ResolveDetails):
        raise errors.InvalidUpdate("resolve update without resolve details")
    transfer = transfers.get(details.transfer_id)
    if transfer is None:
        raise errors.UnknownTransfer(f"no active transfer 0x{details.transfer_id.hex()}")
    if update.initiator != transfer.responder:
        raise errors.WrongResolver("only the transfer's responder can resolve it")
    definition = rules.definitions.get(transfer.transfer_definition)
    if definition is None:
        raise errors.UnknownTransferDefinition(
            f"{transfer.transfer_definition} is not a registered transfer definition"
        )
    final = definition.resolve(
        transfer.balance,
        transfer.initial_state,
        details.resolver,
        rules.context(state.network.chain_id, transfer.transfer_definition),
    )
    if final.total > transfer.balance.total or min(final.amount) < 0:
        raise errors.InvalidTransferResolver("a resolve may not pay out more than was locked")
    index = state.asset_index(transfer.asset_id)
    assert index is not None, "an active transfer's asset is always in the channel"
    credit = {"alice": 0, "bob": 0}
    for amount, to in zip(final.amount, final.to, strict=True):
        credit[state.party(to)] += amount
    old = state.balances[index]
    new_transfers = {k: v for k, v in transfers.items() if k != details.transfer_id}
    new = replace(
        state,
        balances=_set(
            state.balances,
            index,
            Balance(old.alice + credit["alice"], old.bob + credit["bob"]),
        ),
        nonce=update.nonce,
        merkle_root=transfers_root(new_transfers),
    )
    resolved = replace(transfer, balance=final, resolver=details.resolver,
                       meta={**transfer.meta, **details.meta})
    return Applied(state=new, transfers=new_transfers, transfer=resolved)


def _set(values: tuple[T, ...], index: int, value: T) -> tuple[T, ...]:
    return (*values[:index], value, *values[index + 1 :])


# --- building and signing updates -----------------------------------------------------


def setup_update(
    alice: Address, bob: Address, network: NetworkContext, timeout: int
) -> Update:
    """Setup is proposed by alice (the node)."""
    address = channel_address(
        network.channel_factory, network.channel_mastercopy, alice, bob, network.chain_id
    )
    return Update(
        channel_address=address,
        initiator=alice,
        responder=bob,
        type=UpdateType.SETUP,
        nonce=1,
        details=SetupDetails(timeout=timeout, network=network),
    )


def deposit_update(
    state: ChannelState,
    initiator: Address,
    asset_id: Address,
    total_deposits_alice: int,
    total_deposits_bob: int,
) -> Update:
    return _next(
        state,
        initiator,
        UpdateType.DEPOSIT,
        DepositDetails(asset_id, total_deposits_alice, total_deposits_bob),
    )


def create_update(
    state: ChannelState,
    initiator: Address,
    *,
    transfer_id: bytes,
    transfer_definition: Address,
    asset_id: Address,
    amount: int,
    initial_state: bytes,
    transfer_timeout: int,
    meta: Mapping[str, object] | None = None,
) -> Update:
    responder = state.counterparty(initiator)
    details = CreateDetails(
        transfer_id=transfer_id,
        transfer_definition=transfer_definition,
        asset_id=asset_id,
        balance=TransferBalance(amount=(amount, 0), to=(initiator, responder)),
        initial_state=initial_state,
        transfer_timeout=transfer_timeout,
        meta=dict(meta or {}),
    )
    return _next(state, initiator, UpdateType.CREATE, details)


def resolve_update(
    state: ChannelState,
    initiator: Address,
    transfer_id: bytes,
    resolver: bytes,
    meta: Mapping[str, object] | None = None,
) -> Update:
    return _next(
        state,
        initiator,
        UpdateType.RESOLVE,
        ResolveDetails(transfer_id=transfer_id, resolver=resolver, meta=dict(meta or {})),
    )


def _next(
    state: ChannelState,
    initiator: Address,
    kind: UpdateType,
    details: SetupDetails | DepositDetails | CreateDetails | ResolveDetails,
) -> Update:
    return Update(
        channel_address=state.channel_address,
        initiator=initiator,
        responder=state.counterparty(initiator),
        type=kind,
        nonce=state.nonce + 1,
        details=details,
    )


def sign_state(state: ChannelState, signer: Signer) -> bytes:
    return signer.sign(channel_state_digest(state))


def propose(
    state: ChannelState | None,
    transfers: ActiveTransfers,
    update: Update,
    signer: Signer,
    rules: Rules,
) -> tuple[Update, Applied]:
    """Apply our own update and sign the resulting state as its initiator."""
    if signer.address != update.initiator:
        raise errors.InvalidUpdate("only the initiator proposes an update")
    applied = apply_update(state, transfers, update, rules)
    party = applied.state.party(signer.address)
    return update.with_signature(party, signer.sign(applied.digest)), applied


def countersign(
    state: ChannelState | None,
    transfers: ActiveTransfers,
    update: Update,
    signer: Signer,
    rules: Rules,
) -> tuple[Update, Applied]:
    """Validate the counterparty's update and add our signature (as its responder)."""
    if signer.address != update.responder:
        raise errors.InvalidUpdate("this update is not addressed to us")
    applied = validate_update(state, transfers, update, rules)
    party = applied.state.party(signer.address)
    return update.with_signature(party, signer.sign(applied.digest)), applied


def verify_channel_state(
    state: ChannelState,
    alice_signature: bytes,
    bob_signature: bytes,
    transfers: ActiveTransfers,
) -> None:
    """Check a double-signed state from someone else (restore): raise if anything is off."""
    net = state.network
    expected = channel_address(
        net.channel_factory, net.channel_mastercopy, state.alice, state.bob, net.chain_id
    )
    if state.channel_address != expected:
        raise errors.InvalidChannelAddress(
            f"channel address {state.channel_address} is not the derived {expected}"
        )
    digest = channel_state_digest(state)
    if not verify(digest, alice_signature, state.alice):
        raise errors.InvalidSignature("alice's signature on the state is invalid")
    if not verify(digest, bob_signature, state.bob):
        raise errors.InvalidSignature("bob's signature on the state is invalid")
    if any(t.channel_address != state.channel_address for t in transfers.values()):
        raise errors.MerkleRootMismatch("a transfer belongs to another channel")
    if transfers_root(transfers) != state.merkle_root:
        raise errors.MerkleRootMismatch("the active transfers do not match the merkle root")
