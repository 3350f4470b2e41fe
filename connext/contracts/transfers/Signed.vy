# pragma version 0.4.3
# pragma evm-version cancun
"""
@title Signed (oracle) transfer definition
@notice Pays the responder when the named signer signs an EIP-712 `Receipt(paymentId,
        data)` under this definition's own domain ("Connext Signed Transfer", this
        contract), before the expiry (0: never), or later when the receipt's evidence
        keccak256(digest ++ signature) was registered in the secret registry by then.
        An empty signature cancels: the balance stays as it is.
@dev Mirror: connext/protocol/transfers/signed.py, which decodes exactly as `abi_decode`
     does here (docs/PROTOCOL.md, "Transfers").
"""

from .. import expiry as ex
from .. import signatures
from .. import transfer_definition as td

implements: td.ITransferDefinition

NAME: constant(String[32]) = "Signed"
STATE_ENCODING: constant(String[256]) = (
    "tuple(address signer,bytes32 paymentId,uint256 expiry)"
)
RESOLVER_ENCODING: constant(String[128]) = "tuple(bytes32 data,bytes signature)"

_DOMAIN_NAME_HASH: constant(bytes32) = keccak256("Connext Signed Transfer")
_RECEIPT_TYPEHASH: constant(bytes32) = keccak256("Receipt(bytes32 paymentId,bytes32 data)")

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
    @param encoded_state abi.encode(address signer, bytes32 paymentId, uint256 expiry).
    @return bool True.
    """
    assert balance.amount[1] == 0, "Signed: responder amount not 0"
    signer: address = empty(address)
    payment_id: bytes32 = empty(bytes32)
    expiry: uint256 = 0
    signer, payment_id, expiry = abi_decode(encoded_state, (address, bytes32, uint256))
    assert signer != empty(address), "Signed: zero signer"
    assert expiry == 0 or expiry > block.timestamp, "Signed: expired"
    return True


@external
@view
def resolve(
    balance: td.Balance,
    encoded_state: Bytes[td.MAX_ENCODED_BYTES],
    encoded_resolver: Bytes[td.MAX_ENCODED_BYTES],
) -> td.Balance:
    """
    @notice The final balance: unchanged for an empty signature, everything to the
            responder for the signer's receipt in time; reverts otherwise.
    @param balance The transfer's balance.
    @param encoded_state abi.encode(address signer, bytes32 paymentId, uint256 expiry).
    @param encoded_resolver abi.encode(bytes32 data, bytes signature).
    @return td.Balance The final balance.
    """
    signer: address = empty(address)
    payment_id: bytes32 = empty(bytes32)
    expiry: uint256 = 0
    signer, payment_id, expiry = abi_decode(encoded_state, (address, bytes32, uint256))
    data: bytes32 = empty(bytes32)
    signature: Bytes[signatures.SIGNATURE_BYTES] = b""
    data, signature = abi_decode(encoded_resolver, (bytes32, Bytes[signatures.SIGNATURE_BYTES]))
    if len(signature) == 0:
        return balance
    digest: bytes32 = signatures._typed_data_digest(
        signatures._domain_separator(_DOMAIN_NAME_HASH, self),
        keccak256(abi_encode(_RECEIPT_TYPEHASH, payment_id, data)),
    )
    recovered: address = signatures._recover(digest, signature)
    assert recovered != empty(address) and recovered == signer, "Signed: not the signer"
    evidence: bytes32 = sha256(keccak256(concat(digest, signature)))
    assert ex._in_time(secret_registry, expiry, evidence), "Signed: expired"
    return td.Balance(
        amount=[0, balance.amount[0] + balance.amount[1]], to=balance.to
    )
