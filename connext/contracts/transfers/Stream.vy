# pragma version 0.4.3
# pragma evm-version cancun
"""
@title Stream (metered payments) transfer definition
@notice The payer locks a budget and signs cumulative EIP-712 `Voucher(streamId, amount)`
        messages under this definition's domain ("Connext Stream", this contract).
        Resolving with a voucher pays min(voucher, budget) to the responder and returns
        the rest, before the stream's expiry (0: never), or later when the voucher's
        evidence keccak256(digest ++ signature) was registered in the secret registry by
        then; an empty signature cancels.
@dev Mirror: connext/protocol/transfers/stream.py. The voucher names the stream, not the
     transfer, so one voucher settles both hops of a routed stream. The mirror decodes
     exactly as `abi_decode` does here (docs/PROTOCOL.md, "Transfers").
"""

from .. import expiry as ex
from .. import signatures
from .. import transfer_definition as td

implements: td.ITransferDefinition

NAME: constant(String[32]) = "Stream"
STATE_ENCODING: constant(String[256]) = (
    "tuple(address signer,bytes32 streamId,uint256 expiry)"
)
RESOLVER_ENCODING: constant(String[128]) = "tuple(uint256 amount,bytes signature)"

_DOMAIN_NAME_HASH: constant(bytes32) = keccak256("Connext Stream")
_VOUCHER_TYPEHASH: constant(bytes32) = keccak256("Voucher(bytes32 streamId,uint256 amount)")

# Where evidence revealed on chain is recorded with its block time.
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
    @notice Reverts unless `encoded_state` is a valid initial state.
    @param balance The transfer's balance; the responder's amount must be 0.
    @param encoded_state abi.encode(address signer, bytes32 streamId, uint256 expiry).
    @return bool True.
    """
    assert balance.amount[1] == 0, "Stream: responder amount not 0"
    signer: address = empty(address)
    stream_id: bytes32 = empty(bytes32)
    expiry: uint256 = 0
    signer, stream_id, expiry = abi_decode(encoded_state, (address, bytes32, uint256))
    assert signer != empty(address), "Stream: zero signer"
    assert expiry == 0 or expiry > block.timestamp, "Stream: expired"
    return True


@external
@view
def resolve(
    balance: td.Balance,
    encoded_state: Bytes[td.MAX_ENCODED_BYTES],
    encoded_resolver: Bytes[td.MAX_ENCODED_BYTES],
) -> td.Balance:
    """
    @notice The final balance: unchanged for an empty signature; for the payer's voucher,
            min(voucher amount, initiator amount) moves to the responder.
    @param balance The transfer's balance.
    @param encoded_state abi.encode(address signer, bytes32 streamId, uint256 expiry).
    @param encoded_resolver abi.encode(uint256 amount, bytes signature).
    @return td.Balance The final balance.
    """
    signer: address = empty(address)
    stream_id: bytes32 = empty(bytes32)
    expiry: uint256 = 0
    signer, stream_id, expiry = abi_decode(encoded_state, (address, bytes32, uint256))
    voucher_amount: uint256 = 0
    signature: Bytes[signatures.SIGNATURE_BYTES] = b""
    voucher_amount, signature = abi_decode(
        encoded_resolver, (uint256, Bytes[signatures.SIGNATURE_BYTES])
    )
    if len(signature) == 0:
        return balance
    digest: bytes32 = signatures._typed_data_digest(
        signatures._domain_separator(_DOMAIN_NAME_HASH, self),
        keccak256(abi_encode(_VOUCHER_TYPEHASH, stream_id, voucher_amount)),
    )
    recovered: address = signatures._recover(digest, signature)
    assert recovered != empty(address) and recovered == signer, "Stream: not the payer"
    evidence: bytes32 = sha256(keccak256(concat(digest, signature)))
    assert ex._in_time(secret_registry, expiry, evidence), "Stream: expired"
    paid: uint256 = min(voucher_amount, balance.amount[0])
    return td.Balance(
        amount=[balance.amount[0] - paid, balance.amount[1] + paid], to=balance.to
    )
