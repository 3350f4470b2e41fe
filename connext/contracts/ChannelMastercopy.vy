# pragma version 0.4.3
# pragma evm-version cancun
"""
@title Channel mastercopy
@notice The logic of every two-party channel between `alice` (the node) and `bob` (the
        user). Each channel is an EIP-1167 minimal proxy to this contract, created with
        CREATE2 by the channel factory, and holds the channel's funds.
        - Bob deposits with a plain ETH or ERC20 transfer to the channel address (before or
          after deployment); alice with `deposit_alice`.
        - Cooperative: `withdraw` pays a commitment both parties signed, once per nonce.
        - Unilateral: `dispute_channel` (latest double-signed state; a higher nonce replaces
          it within the consensus window; only a party, or an address a party authorised
          by signature, may dispute), then after the window `defund_channel`,
          `dispute_transfer` and `defund_transfer` credit each owner, and `exit` pays the
          credits. None of this expires: funds are never stranded.
        - A Withdraw transfer is paid once: if its commitment was executed, settling the
          transfer on chain gives nothing back to its initiator; if the transfer is
          refunded on chain, its commitment can no longer be executed.
@dev A proxy stores nothing at deployment. Every function that needs the parties takes
     `alice` and `bob` and checks them by recomputing this proxy's CREATE2 address from the
     factory (an immutable) and the salt keccak256(abi.encode(alice, bob, chain id)).
     Byte-level rules: docs/PROTOCOL.md; Python mirror: connext/protocol/encoding.py.
"""

from ethereum.ercs import IERC20

from . import signatures
from . import transfer_definition as td
from .transfers import Withdraw


MAX_ASSETS: constant(uint256) = 16
MAX_PROOF_LENGTH: constant(uint256) = 32

# Init code of Vyper's `create_minimal_proxy_to`: a 9-byte deployer, then the EIP-1167
# runtime with the mastercopy address in the middle.
_PROXY_CODE_PREFIX: constant(Bytes[19]) = x"602d3d8160093d39f3363d3d373d3d3d363d73"
_PROXY_CODE_SUFFIX: constant(Bytes[15]) = x"5af43d82803e903d91602b57fd5bf3"

_CHANNEL_DOMAIN_HASH: constant(bytes32) = keccak256("Connext Channel")
_WITHDRAW_DOMAIN_HASH: constant(bytes32) = keccak256("Connext Withdraw")
_RESOLUTION_DOMAIN_HASH: constant(bytes32) = keccak256("Connext Transfer Resolution")
_AUTHORIZATION_DOMAIN_HASH: constant(bytes32) = keccak256("Connext Dispute Authorization")
_CHANNEL_STATE_TYPEHASH: constant(bytes32) = keccak256(
    "ChannelState(address alice,address bob,address[] assetIds,uint256[] balancesAlice,"
    "uint256[] balancesBob,uint256[] processedDepositsA,uint256[] processedDepositsB,"
    "uint256[] defundNonces,uint256 timeout,uint256 nonce,bytes32 merkleRoot)"
)
_WITHDRAW_TYPEHASH: constant(bytes32) = keccak256(
    "WithdrawCommitment(address recipient,address assetId,uint256 amount,uint256 nonce)"
)
_RESOLUTION_TYPEHASH: constant(bytes32) = keccak256(
    "TransferResolution(bytes32 transferId,bytes32 resolverHash)"
)
_AUTHORIZATION_TYPEHASH: constant(bytes32) = keccak256("DisputeAuthorization(address disputer)")

# The dispute record packs the disputed nonce above a 64-bit consensus expiry; a transfer
# dispute record is its 64-bit expiry plus a "defunded" flag.
_EXPIRY_BITS: constant(uint256) = 64
_EXPIRY_MASK: constant(uint256) = 2**64 - 1
_DEFUNDED: constant(uint256) = 2**128
# Two amounts share a word (ledger, party credits): per asset, amounts are limited to
# 2**128 - 1 base units, checked wherever they grow.
_HALF_BITS: constant(uint256) = 128
_HALF_MASK: constant(uint256) = 2**128 - 1
_ADDRESS_MASK: constant(uint256) = 2**160 - 1
# An asset missing from the disputed state starts at defund nonce 1, like every new asset.
_INITIAL_DEFUND_NONCE: constant(uint256) = 1


struct ChannelState:
    alice: address
    bob: address
    asset_ids: DynArray[address, MAX_ASSETS]
    balances_alice: DynArray[uint256, MAX_ASSETS]
    balances_bob: DynArray[uint256, MAX_ASSETS]
    processed_deposits_a: DynArray[uint256, MAX_ASSETS]
    processed_deposits_b: DynArray[uint256, MAX_ASSETS]
    defund_nonces: DynArray[uint256, MAX_ASSETS]
    timeout: uint256
    nonce: uint256
    merkle_root: bytes32


struct WithdrawCommitment:
    recipient: address
    asset_id: address
    amount: uint256
    nonce: uint256


struct CoreTransferState:
    channel_address: address
    transfer_id: bytes32
    transfer_definition: address
    initiator: address
    responder: address
    asset_id: address
    balance: td.Balance
    transfer_timeout: uint256
    initial_state_hash: bytes32


struct ChannelDispute:
    dispute_hash: bytes32
    nonce: uint256
    consensus_expiry: uint256


struct TransferDispute:
    expiry: uint256
    defunded: bool


event AliceDeposited:
    asset_id: indexed(address)
    depositor: indexed(address)
    amount: uint256


event Withdrawn:
    recipient: indexed(address)
    asset_id: indexed(address)
    amount: uint256
    nonce: uint256


event ChannelDisputed:
    disputer: indexed(address)
    nonce: uint256
    state_hash: bytes32
    merkle_root: bytes32
    consensus_expiry: uint256


event ChannelDefunded:
    asset_id: indexed(address)
    defund_nonce: uint256
    to_alice: uint256
    to_bob: uint256


event TransferDisputed:
    transfer_id: indexed(bytes32)
    transfer_hash: bytes32
    expiry: uint256


event TransferDefunded:
    transfer_id: indexed(bytes32)
    transfer_hash: bytes32
    amount: uint256[2]
    resolved: bool
    # what resolved it (empty when refunded): a payment's other hop settles with the same
    encoded_resolver: Bytes[td.MAX_ENCODED_BYTES]


event Exited:
    asset_id: indexed(address)
    owner: indexed(address)
    recipient: address
    amount: uint256


# The channel factory: the only deployer whose CREATE2 proxies are channels.
factory: public(immutable(address))
# The Withdraw transfer definition: its transfers are tied to a withdraw commitment nonce.
withdraw_definition: public(immutable(address))
# keccak256 of the proxy init code pointing at this mastercopy.
proxy_code_hash: public(immutable(bytes32))

# asset => total paid out (withdrawals, exits) << 128 | total deposited through
# `deposit_alice`: one word, so a payout after alice's first deposit rewrites a non-zero
# slot (5,000 gas) instead of filling an empty one (22,100)
_ledger: HashMap[address, uint256]
# bitmap of used withdraw commitment nonces: word (nonce >> 8) => bits
_used_withdrawals: HashMap[uint256, uint256]

# keccak256(state hash || merkle root) of the disputed state: one word commits to both
_dispute_hash: bytes32
# nonce << 64 | consensus expiry; 0 while no dispute
_dispute_nonce_expiry: uint256

# asset => last defund nonce paid out
_defund_nonces: HashMap[address, uint256]
# Credits from defunds, paid by `exit`. The parties' credits share one word per asset
# (bob's << 128 | alice's), so a defund writes one fresh slot instead of two.
_party_credits: HashMap[address, uint256]
# asset => owner => credit of any other address a transfer's balance names
_other_credits: HashMap[address, HashMap[address, uint256]]
# transfer hash => expiry | _DEFUNDED; 0 while not disputed
_transfer_disputes: HashMap[bytes32, uint256]


@deploy
def __init__(withdraw: address):
    """
    @dev Created by the factory (from a blueprint), so the factory is `msg.sender`.
    @param withdraw The network's Withdraw transfer definition.
    """
    factory = msg.sender
    withdraw_definition = withdraw
    proxy_code_hash = keccak256(
        concat(_PROXY_CODE_PREFIX, convert(self, bytes20), _PROXY_CODE_SUFFIX)
    )


@external
@payable
def __default__():
    """
    @notice Bob deposits ETH with a plain transfer; the contract only has to accept it.
    @dev Calldata means a call to a function this contract does not have: refuse it
         rather than succeed silently.
    """
    assert len(msg.data) == 0, "Channel: unknown function"


@external
@payable
@nonreentrant
def deposit_alice(alice: address, bob: address, asset_id: address, amount: uint256):
    """
    @notice Deposits `amount` of `asset_id` on alice's side (anyone may pay for her).
            ETH: send `amount` as value. Token: approve the channel first.
    @param alice The channel's alice.
    @param bob The channel's bob.
    @param asset_id The token, or the zero address for ETH.
    @param amount The amount in base units.
    """
    self._check_channel(alice, bob)
    if asset_id == empty(address):
        assert msg.value == amount, "Channel: wrong ETH value"
    else:
        assert msg.value == 0, "Channel: ETH sent with token"
        self._safe_transfer_from(asset_id, msg.sender, amount)
    self._add_alice_deposit(asset_id, amount)
    log AliceDeposited(asset_id=asset_id, depositor=msg.sender, amount=amount)


@external
@nonreentrant
def credit_alice_deposit(
    alice: address, bob: address, asset_id: address, amount: uint256, depositor: address
):
    """
    @notice Credits alice with funds the factory has just moved into the channel, so that
            `create_channel_and_deposit` needs one token transfer instead of three.
    @dev Only the factory may call this, right after it moved `amount` in.
    @param alice The channel's alice.
    @param bob The channel's bob.
    @param asset_id The token, or the zero address for ETH.
    @param amount The amount the factory moved in.
    @param depositor Who paid it (for the event).
    """
    assert msg.sender == factory, "Channel: only the factory"
    self._check_channel(alice, bob)
    self._add_alice_deposit(asset_id, amount)
    log AliceDeposited(asset_id=asset_id, depositor=depositor, amount=amount)


@external
@nonreentrant
def withdraw(
    alice: address,
    bob: address,
    commitment: WithdrawCommitment,
    signature_alice: Bytes[signatures.SIGNATURE_BYTES],
    signature_bob: Bytes[signatures.SIGNATURE_BYTES],
):
    """
    @notice Pays a withdraw commitment signed by both parties; each nonce pays once.
    @param alice The channel's alice.
    @param bob The channel's bob.
    @param commitment {recipient, asset_id, amount, nonce}.
    @param signature_alice Alice's EIP-712 signature ("Connext Withdraw" domain).
    @param signature_bob Bob's signature on the same commitment.
    """
    self._check_channel(alice, bob)
    digest: bytes32 = signatures._typed_data_digest(
        signatures._domain_separator(_WITHDRAW_DOMAIN_HASH, self),
        keccak256(
            abi_encode(
                _WITHDRAW_TYPEHASH,
                commitment.recipient,
                commitment.asset_id,
                commitment.amount,
                commitment.nonce,
            )
        ),
    )
    self._check_signatures(digest, alice, bob, signature_alice, signature_bob)
    word: uint256 = commitment.nonce >> 8
    bit: uint256 = 1 << (commitment.nonce & 255)
    used: uint256 = self._used_withdrawals[word]
    assert used & bit == 0, "Channel: commitment already used"
    self._used_withdrawals[word] = used | bit
    self._pay(commitment.asset_id, commitment.recipient, commitment.amount)
    log Withdrawn(
        recipient=commitment.recipient,
        asset_id=commitment.asset_id,
        amount=commitment.amount,
        nonce=commitment.nonce,
    )


@external
@nonreentrant
def dispute_channel(
    state: ChannelState,
    signature_alice: Bytes[signatures.SIGNATURE_BYTES],
    signature_bob: Bytes[signatures.SIGNATURE_BYTES],
    authorization: Bytes[signatures.SIGNATURE_BYTES],
):
    """
    @notice Records a double-signed state on chain. The first dispute opens a consensus
            window of `state.timeout` seconds; a higher nonce replaces the state within the
            window without extending it, and opens a new window once it is over. Only a
            party disputes, or an address a party authorised (a watchtower service): a
            signed state that leaked cannot be used by anyone else to end the channel.
    @param state The channel state both parties signed.
    @param signature_alice Alice's EIP-712 signature ("Connext Channel" domain).
    @param signature_bob Bob's signature on the same state.
    @param authorization Empty when a party calls; else a party's EIP-712
           DisputeAuthorization(disputer = the caller) signature.
    """
    self._check_channel(state.alice, state.bob)
    if msg.sender != state.alice and msg.sender != state.bob:
        self._check_authorization(state.alice, state.bob, authorization)
    n: uint256 = len(state.asset_ids)
    assert (
        len(state.balances_alice) == n
        and len(state.balances_bob) == n
        and len(state.processed_deposits_a) == n
        and len(state.processed_deposits_b) == n
        and len(state.defund_nonces) == n
    ), "Channel: malformed state"
    assert state.nonce < 2**128, "Channel: nonce too large"
    state_hash: bytes32 = self._state_hash(state)
    digest: bytes32 = signatures._typed_data_digest(
        signatures._domain_separator(_CHANNEL_DOMAIN_HASH, self), state_hash
    )
    self._check_signatures(digest, state.alice, state.bob, signature_alice, signature_bob)

    record: uint256 = self._dispute_nonce_expiry
    assert state.nonce > record >> _EXPIRY_BITS, "Channel: stale nonce"
    expiry: uint256 = record & _EXPIRY_MASK
    if block.timestamp >= expiry:
        # no dispute yet, or its window is over: this state gets a window of its own
        expiry = block.timestamp + state.timeout
        assert expiry <= _EXPIRY_MASK, "Channel: timeout too large"
    self._dispute_hash = keccak256(concat(state_hash, state.merkle_root))
    self._dispute_nonce_expiry = (state.nonce << _EXPIRY_BITS) | expiry
    log ChannelDisputed(
        disputer=msg.sender,
        nonce=state.nonce,
        state_hash=state_hash,
        merkle_root=state.merkle_root,
        consensus_expiry=expiry,
    )


@external
@nonreentrant
def defund_channel(state: ChannelState, asset_ids: DynArray[address, MAX_ASSETS]):
    """
    @notice After the consensus window, credits each party its balance in the disputed
            state plus its deposits that the state has not processed yet, once per asset
            and defund nonce. An asset missing from the state counts as defund nonce 1
            with zero balances, so deposits nobody processed are never stranded.
    @param state The disputed state, passed again (checked against the stored hash).
    @param asset_ids The assets to defund.
    """
    record: uint256 = self._dispute_nonce_expiry
    assert record != 0, "Channel: no dispute"
    assert block.timestamp >= record & _EXPIRY_MASK, "Channel: consensus window open"
    # the stored hash was checked against both signatures and this proxy's parties
    assert (
        keccak256(concat(self._state_hash(state), state.merkle_root)) == self._dispute_hash
    ), "Channel: not the disputed state"

    for asset_id: address in asset_ids:
        defund_nonce: uint256 = _INITIAL_DEFUND_NONCE
        to_alice: uint256 = 0
        to_bob: uint256 = 0
        processed_a: uint256 = 0
        processed_b: uint256 = 0
        for i: uint256 in range(len(state.asset_ids), bound=MAX_ASSETS):
            if state.asset_ids[i] == asset_id:
                defund_nonce = state.defund_nonces[i]
                to_alice = state.balances_alice[i]
                to_bob = state.balances_bob[i]
                processed_a = state.processed_deposits_a[i]
                processed_b = state.processed_deposits_b[i]
                break
        assert defund_nonce > self._defund_nonces[asset_id], "Channel: already defunded"
        self._defund_nonces[asset_id] = defund_nonce

        ledger: uint256 = self._ledger[asset_id]
        total_alice: uint256 = ledger & _HALF_MASK
        total_bob: uint256 = self._balance(asset_id) + (ledger >> _HALF_BITS) - total_alice
        to_alice += self._unprocessed(total_alice, processed_a)
        to_bob += self._unprocessed(total_bob, processed_b)
        self._credit_parties(asset_id, to_alice, to_bob)
        log ChannelDefunded(
            asset_id=asset_id, defund_nonce=defund_nonce, to_alice=to_alice, to_bob=to_bob
        )


@external
@nonreentrant
def dispute_transfer(
    cts: CoreTransferState, proof: DynArray[bytes32, MAX_PROOF_LENGTH], state_hash: bytes32
):
    """
    @notice After the consensus window, proves an active transfer in the disputed state's
            merkle root and starts its dispute: until `now + cts.transfer_timeout` it can
            be resolved through its definition, afterwards it is refunded.
    @param cts The transfer's core state (its hash is the merkle leaf).
    @param proof The sibling hashes from the leaf up.
    @param state_hash The disputed state's hash (EIP-712 struct hash, as in the
           ChannelDisputed event): with the root the proof yields, it must match the record.
    """
    assert cts.channel_address == self, "Channel: transfer of another channel"
    record: uint256 = self._dispute_nonce_expiry
    assert record != 0, "Channel: no dispute"
    assert block.timestamp >= record & _EXPIRY_MASK, "Channel: consensus window open"
    transfer_hash: bytes32 = keccak256(abi_encode(cts))
    assert self._transfer_disputes[transfer_hash] == 0, "Channel: transfer already disputed"
    root: bytes32 = self._merkle_root(transfer_hash, proof)
    assert keccak256(concat(state_hash, root)) == self._dispute_hash, (
        "Channel: transfer not in the disputed state"
    )
    expiry: uint256 = block.timestamp + cts.transfer_timeout
    assert expiry <= _EXPIRY_MASK, "Channel: timeout too large"
    self._transfer_disputes[transfer_hash] = expiry
    log TransferDisputed(transfer_id=cts.transfer_id, transfer_hash=transfer_hash, expiry=expiry)


@external
@nonreentrant
def defund_transfer(
    cts: CoreTransferState,
    encoded_initial_state: Bytes[td.MAX_ENCODED_BYTES],
    encoded_resolver: Bytes[td.MAX_ENCODED_BYTES],
    responder_signature: Bytes[signatures.SIGNATURE_BYTES],
):
    """
    @notice Settles a disputed transfer once. Before its dispute expiry the definition's
            `resolve` decides the final balance; the caller must be the responder or bring
            the responder's EIP-712 TransferResolution signature. After the expiry anyone
            can refund the balance as it is. The amounts are credited to `cts.balance.to`.
    @param cts The disputed transfer's core state.
    @param encoded_initial_state The initial state (its keccak is cts.initial_state_hash).
    @param encoded_resolver The resolver (ignored after the expiry).
    @param responder_signature The responder's signature on (transfer id, keccak(resolver)),
           or empty when the responder calls.
    """
    transfer_hash: bytes32 = keccak256(abi_encode(cts))
    record: uint256 = self._transfer_disputes[transfer_hash]
    assert record != 0, "Channel: transfer not disputed"
    assert record & _DEFUNDED == 0, "Channel: transfer already defunded"
    assert keccak256(encoded_initial_state) == cts.initial_state_hash, (
        "Channel: wrong initial state"
    )
    self._transfer_disputes[transfer_hash] = record | _DEFUNDED

    amount: uint256[2] = cts.balance.amount
    resolved: bool = block.timestamp < record & _EXPIRY_MASK
    if resolved:
        if msg.sender != cts.responder:
            self._check_resolution_signature(cts, encoded_resolver, responder_signature)
        final: td.Balance = staticcall td.ITransferDefinition(cts.transfer_definition).resolve(
            cts.balance, encoded_initial_state, encoded_resolver
        )
        assert final.amount[0] + final.amount[1] <= amount[0] + amount[1], (
            "Channel: resolve pays out too much"
        )
        amount = final.amount
    if cts.transfer_definition == withdraw_definition:
        amount = self._settle_withdraw(encoded_initial_state, amount)
    # initiator and responder are the parties; this proxy's address says who is alice
    alice: address = cts.initiator
    bob: address = cts.responder
    if not self._is_channel(alice, bob):
        alice = cts.responder
        bob = cts.initiator
        self._check_channel(alice, bob)
    self._credit(cts.asset_id, cts.balance.to[0], amount[0], alice, bob)
    self._credit(cts.asset_id, cts.balance.to[1], amount[1], alice, bob)
    log TransferDefunded(
        transfer_id=cts.transfer_id,
        transfer_hash=transfer_hash,
        amount=amount,
        resolved=resolved,
        encoded_resolver=encoded_resolver if resolved else b"",
    )


@external
@nonreentrant
def exit(alice: address, bob: address, asset_id: address, owner: address, recipient: address):
    """
    @notice Pays `owner`'s credit in `asset_id` (from defunds) to `recipient`. The owner
            calls, or anyone may pay the owner to itself.
    @param alice The channel's alice.
    @param bob The channel's bob.
    @param asset_id The token, or the zero address for ETH.
    @param owner Whose credit is paid.
    @param recipient Who receives it.
    """
    self._check_channel(alice, bob)
    assert msg.sender == owner or recipient == owner, "Channel: not the owner"
    amount: uint256 = self._take_credit(asset_id, owner, alice, bob)
    assert amount != 0, "Channel: nothing to exit"
    self._pay(asset_id, recipient, amount)
    log Exited(asset_id=asset_id, owner=owner, recipient=recipient, amount=amount)


@external
@view
def total_deposits_alice(asset_id: address) -> uint256:
    """
    @notice Everything deposited on alice's side so far.
    """
    return self._ledger[asset_id] & _HALF_MASK


@external
@view
def total_deposits_bob(asset_id: address) -> uint256:
    """
    @notice Everything deposited on bob's side so far: what the channel holds and has paid
            out, minus alice's deposits.
    """
    ledger: uint256 = self._ledger[asset_id]
    return self._balance(asset_id) + (ledger >> _HALF_BITS) - (ledger & _HALF_MASK)


@external
@view
def total_transferred(asset_id: address) -> uint256:
    """
    @notice Everything the channel has paid out (withdrawals and exits).
    """
    return self._ledger[asset_id] >> _HALF_BITS


@external
@view
def withdrawal_used(nonce: uint256) -> bool:
    """
    @notice Whether the withdraw commitment with this nonce has been paid.
    """
    return self._used_withdrawals[nonce >> 8] & (1 << (nonce & 255)) != 0


@external
@view
def channel_dispute() -> ChannelDispute:
    """
    @notice The dispute record: keccak256(state hash || merkle root) of the disputed
            state (both are in the ChannelDisputed event), its nonce and the consensus
            expiry; all zero while there is no dispute.
    """
    record: uint256 = self._dispute_nonce_expiry
    return ChannelDispute(
        dispute_hash=self._dispute_hash,
        nonce=record >> _EXPIRY_BITS,
        consensus_expiry=record & _EXPIRY_MASK,
    )


@external
@view
def defund_nonce(asset_id: address) -> uint256:
    """
    @notice The defund nonce of the last defund of `asset_id` (0: never defunded).
    """
    return self._defund_nonces[asset_id]


@external
@view
def exitable(alice: address, bob: address, asset_id: address, owner: address) -> uint256:
    """
    @notice What `owner` can exit in `asset_id` of the channel between alice and bob.
    """
    self._check_channel(alice, bob)
    if owner == alice:
        return self._party_credits[asset_id] & _HALF_MASK
    if owner == bob:
        return self._party_credits[asset_id] >> _HALF_BITS
    return self._other_credits[asset_id][owner]


@external
@view
def transfer_dispute(transfer_hash: bytes32) -> TransferDispute:
    """
    @notice The dispute of a transfer by its hash: expiry 0 when not disputed.
    """
    record: uint256 = self._transfer_disputes[transfer_hash]
    return TransferDispute(expiry=record & _EXPIRY_MASK, defunded=record & _DEFUNDED != 0)


@internal
@view
def _check_channel(alice: address, bob: address):
    assert self._is_channel(alice, bob), "Channel: not this channel's parties"


@internal
@view
def _is_channel(alice: address, bob: address) -> bool:
    """
    @dev Whether this proxy is the factory's CREATE2 proxy for `alice` and `bob`.
    """
    salt: bytes32 = keccak256(abi_encode(alice, bob, chain.id))
    digest: bytes32 = keccak256(
        concat(x"ff", convert(factory, bytes20), salt, proxy_code_hash)
    )
    return convert(convert(digest, uint256) & _ADDRESS_MASK, address) == self


@internal
@pure
def _check_signatures(
    digest: bytes32,
    alice: address,
    bob: address,
    signature_alice: Bytes[signatures.SIGNATURE_BYTES],
    signature_bob: Bytes[signatures.SIGNATURE_BYTES],
):
    # the parties are never the zero address: _check_channel derived them from self
    assert signatures._recover(digest, signature_alice) == alice, "Channel: bad alice signature"
    assert signatures._recover(digest, signature_bob) == bob, "Channel: bad bob signature"


@internal
def _settle_withdraw(
    encoded_initial_state: Bytes[td.MAX_ENCODED_BYTES], amount: uint256[2]
) -> uint256[2]:
    """
    @dev A Withdraw transfer and its commitment pay once between them. Executed
         commitment: the transfer settles as resolved ([0, fee]: the rest left through the
         commitment), whoever asks and whatever the resolver said. Anything going back to
         the initiator instead: the commitment's nonce is spent, so it can never execute.
    """
    state: Withdraw.WithdrawState = abi_decode(
        encoded_initial_state, Withdraw.WithdrawState, unwrap_tuple=False
    )
    word: uint256 = state.nonce >> 8
    bit: uint256 = 1 << (state.nonce & 255)
    used: uint256 = self._used_withdrawals[word]
    if used & bit != 0:
        return [0, state.fee]
    if amount[0] != 0:
        self._used_withdrawals[word] = used | bit
    return amount


@internal
@view
def _check_authorization(
    alice: address, bob: address, authorization: Bytes[signatures.SIGNATURE_BYTES]
):
    digest: bytes32 = signatures._typed_data_digest(
        signatures._domain_separator(_AUTHORIZATION_DOMAIN_HASH, self),
        keccak256(abi_encode(_AUTHORIZATION_TYPEHASH, msg.sender)),
    )
    signer: address = signatures._recover(digest, authorization)
    assert signer != empty(address) and (signer == alice or signer == bob), (
        "Channel: not a party or authorised"
    )


@internal
@view
def _check_resolution_signature(
    cts: CoreTransferState,
    encoded_resolver: Bytes[td.MAX_ENCODED_BYTES],
    responder_signature: Bytes[signatures.SIGNATURE_BYTES],
):
    digest: bytes32 = signatures._typed_data_digest(
        signatures._domain_separator(_RESOLUTION_DOMAIN_HASH, self),
        keccak256(abi_encode(_RESOLUTION_TYPEHASH, cts.transfer_id, keccak256(encoded_resolver))),
    )
    recovered: address = signatures._recover(digest, responder_signature)
    assert recovered != empty(address) and recovered == cts.responder, (
        "Channel: not the responder's resolution"
    )


@internal
@pure
def _state_hash(state: ChannelState) -> bytes32:
    """
    @dev EIP-712 hashStruct(ChannelState); arrays hash as keccak of their 32-byte words.
    """
    return keccak256(
        abi_encode(
            _CHANNEL_STATE_TYPEHASH,
            state.alice,
            state.bob,
            self._addresses_hash(state.asset_ids),
            self._words_hash(state.balances_alice),
            self._words_hash(state.balances_bob),
            self._words_hash(state.processed_deposits_a),
            self._words_hash(state.processed_deposits_b),
            self._words_hash(state.defund_nonces),
            state.timeout,
            state.nonce,
            state.merkle_root,
        )
    )


@internal
@pure
def _addresses_hash(values: DynArray[address, MAX_ASSETS]) -> bytes32:
    # abi_encode wraps the array in a tuple: skip the offset and length words
    return keccak256(slice(abi_encode(values), 64, 32 * len(values)))


@internal
@pure
def _words_hash(values: DynArray[uint256, MAX_ASSETS]) -> bytes32:
    return keccak256(slice(abi_encode(values), 64, 32 * len(values)))


@internal
@pure
def _merkle_root(leaf: bytes32, proof: DynArray[bytes32, MAX_PROOF_LENGTH]) -> bytes32:
    """
    @dev Folds the proof over the leaf; each pair is hashed smaller word first.
    """
    node: bytes32 = leaf
    for sibling: bytes32 in proof:
        if convert(node, uint256) <= convert(sibling, uint256):
            node = keccak256(concat(node, sibling))
        else:
            node = keccak256(concat(sibling, node))
    return node


@internal
@pure
def _unprocessed(total: uint256, processed: uint256) -> uint256:
    # a state never processes more than was deposited; if one did, pay nothing extra
    # rather than revert and strand the asset
    if total > processed:
        return total - processed
    return 0


@internal
def _add_alice_deposit(asset_id: address, amount: uint256):
    ledger: uint256 = self._ledger[asset_id]
    assert (ledger & _HALF_MASK) + amount <= _HALF_MASK, "Channel: amount too large"
    self._ledger[asset_id] = ledger + amount


@internal
def _credit_parties(asset_id: address, to_alice: uint256, to_bob: uint256):
    credits: uint256 = self._party_credits[asset_id]
    alice_credit: uint256 = (credits & _HALF_MASK) + to_alice
    bob_credit: uint256 = (credits >> _HALF_BITS) + to_bob
    assert alice_credit <= _HALF_MASK and bob_credit <= _HALF_MASK, "Channel: amount too large"
    self._party_credits[asset_id] = (bob_credit << _HALF_BITS) | alice_credit


@internal
def _credit(asset_id: address, owner: address, amount: uint256, alice: address, bob: address):
    if amount == 0:
        return
    if owner == alice:
        self._credit_parties(asset_id, amount, 0)
    elif owner == bob:
        self._credit_parties(asset_id, 0, amount)
    else:
        self._other_credits[asset_id][owner] += amount


@internal
def _take_credit(asset_id: address, owner: address, alice: address, bob: address) -> uint256:
    """
    @dev Zeroes `owner`'s credit and returns it.
    """
    if owner == alice or owner == bob:
        credits: uint256 = self._party_credits[asset_id]
        if owner == alice:
            self._party_credits[asset_id] = credits & (_HALF_MASK << _HALF_BITS)
            return credits & _HALF_MASK
        self._party_credits[asset_id] = credits & _HALF_MASK
        return credits >> _HALF_BITS
    amount: uint256 = self._other_credits[asset_id][owner]
    self._other_credits[asset_id][owner] = 0
    return amount


@internal
@view
def _balance(asset_id: address) -> uint256:
    if asset_id == empty(address):
        return self.balance
    return staticcall IERC20(asset_id).balanceOf(self)


@internal
def _pay(asset_id: address, recipient: address, amount: uint256):
    """
    @dev Counts the payout in the ledger (so bob's deposit total stays right), then
         sends ETH or tokens. Callers have updated their own records before.
    """
    ledger: uint256 = self._ledger[asset_id]
    assert (ledger >> _HALF_BITS) + amount <= _HALF_MASK, "Channel: amount too large"
    self._ledger[asset_id] = ledger + (amount << _HALF_BITS)
    if asset_id == empty(address):
        raw_call(recipient, b"", value=amount)
        return
    assert asset_id.is_contract, "Channel: asset is not a token"
    response: Bytes[32] = raw_call(
        asset_id,
        abi_encode(recipient, amount, method_id=method_id("transfer(address,uint256)")),
        max_outsize=32,
    )
    if len(response) != 0:
        assert abi_decode(response, bool), "Channel: token transfer failed"


@internal
def _safe_transfer_from(asset_id: address, owner: address, amount: uint256):
    # a call to an address without code succeeds and moves nothing
    assert asset_id.is_contract, "Channel: asset is not a token"
    response: Bytes[32] = raw_call(
        asset_id,
        abi_encode(
            owner, self, amount, method_id=method_id("transferFrom(address,address,uint256)")
        ),
        max_outsize=32,
    )
    if len(response) != 0:
        assert abi_decode(response, bool), "Channel: token transfer failed"
