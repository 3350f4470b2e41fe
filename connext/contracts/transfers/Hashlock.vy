# pragma version 0.4.3
# pragma evm-version cancun
"""
@title Hashlock transfer definition
@notice Pays the responder when the sha256 preimage of the lock hash is revealed before the
        expiry (an expiry of 0 never expires), or at any later time when the preimage was
        registered in the secret registry no later than the expiry: so a lock stays
        enforceable although transfer disputes come after the channel's consensus window.
        A zero preimage cancels: the balance stays as it is, so the amount goes back to
        the initiator.
@dev Mirror: connext/protocol/transfers/hashlock.py. State `(bytes32 lockHash, uint256
     expiry)` and resolver `(bytes32 preimage)` are static: `abi_decode` accepts exactly
     64 and 32 bytes.
"""

from .. import expiry as ex
from .. import transfer_definition as td

implements: td.ITransferDefinition

NAME: constant(String[32]) = "Hashlock"
STATE_ENCODING: constant(String[256]) = "tuple(bytes32 lockHash,uint256 expiry)"
RESOLVER_ENCODING: constant(String[128]) = "tuple(bytes32 preimage)"

# Where preimages revealed on chain are recorded with their block time.
secret_registry: public(immutable(address))


@deploy
def __init__(registry: address):
    """
    @param registry The network's SecretRegistry.
    """
    secret_registry = registry


@external
@view
def name() -> String[32]:
    return NAME


@external
@view
def state_encoding() -> String[256]:
    return STATE_ENCODING


@external
@view
def resolver_encoding() -> String[128]:
    return RESOLVER_ENCODING


@external
@view
def create(balance: td.Balance, encoded_state: Bytes[td.MAX_ENCODED_BYTES]) -> bool:
    """
    @notice Reverts unless `encoded_state` is a valid initial hashlock state.
    @param balance The transfer's balance; the responder's amount must be 0.
    @param encoded_state abi.encode(bytes32 lockHash, uint256 expiry).
    @return bool True.
    """
    assert balance.amount[1] == 0, "Hashlock: responder amount not 0"
    lock_hash: bytes32 = empty(bytes32)
    expiry: uint256 = 0
    lock_hash, expiry = abi_decode(encoded_state, (bytes32, uint256))
    assert lock_hash != empty(bytes32), "Hashlock: zero lock hash"
    assert expiry == 0 or expiry > block.timestamp, "Hashlock: expired"
    return True


@external
@view
def resolve(
    balance: td.Balance,
    encoded_state: Bytes[td.MAX_ENCODED_BYTES],
    encoded_resolver: Bytes[td.MAX_ENCODED_BYTES],
) -> td.Balance:
    """
    @notice The final balance: unchanged for a zero preimage, everything to the responder
            for the right preimage before the expiry (or registered no later than the
            expiry); reverts otherwise.
    @param balance The transfer's balance.
    @param encoded_state abi.encode(bytes32 lockHash, uint256 expiry).
    @param encoded_resolver abi.encode(bytes32 preimage).
    @return td.Balance The final balance.
    """
    lock_hash: bytes32 = empty(bytes32)
    expiry: uint256 = 0
    lock_hash, expiry = abi_decode(encoded_state, (bytes32, uint256))
    preimage: bytes32 = abi_decode(encoded_resolver, bytes32)
    if preimage == empty(bytes32):
        return balance
    assert sha256(preimage) == lock_hash, "Hashlock: wrong preimage"
    assert ex._in_time(secret_registry, expiry, lock_hash), "Hashlock: expired"
    return td.Balance(
        amount=[0, balance.amount[0] + balance.amount[1]], to=balance.to
    )
