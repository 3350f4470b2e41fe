# pragma version 0.4.3
# pragma evm-version cancun
"""
@title Withdraw transfer definition
@notice A withdrawal from the channel as a transfer: the initiator signs the withdraw
        commitment when creating it, the responder's signature on the same commitment
        resolves it. Resolving returns [0, fee]: the rest leaves the channel through the
        double-signed commitment (ChannelMastercopy.withdraw). An empty signature cancels.
@dev Mirror: connext/protocol/transfers/withdraw.py. `commitmentHash` is the EIP-712 digest
     of the WithdrawCommitment, signed as is. The mirror decodes exactly as `abi_decode`
     does here (docs/PROTOCOL.md, "Transfers").
"""

from .. import signatures
from .. import transfer_definition as td

implements: td.ITransferDefinition

NAME: constant(String[32]) = "Withdraw"
STATE_ENCODING: constant(String[256]) = (
    "tuple(bytes initiatorSignature,address initiator,address responder,"
    "bytes32 commitmentHash,uint256 nonce,uint256 fee)"
)
RESOLVER_ENCODING: constant(String[128]) = "tuple(bytes responderSignature)"


struct WithdrawState:
    initiator_signature: Bytes[signatures.SIGNATURE_BYTES]
    initiator: address
    responder: address
    commitment_hash: bytes32
    nonce: uint256
    fee: uint256


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
    @notice Reverts unless the initiator signed the commitment and the fee fits the amount.
    @param balance The transfer's balance; the responder's amount must be 0.
    @param encoded_state abi.encode(bytes initiatorSignature, address initiator, address
           responder, bytes32 commitmentHash, uint256 nonce, uint256 fee).
    @return bool True.
    """
    assert balance.amount[1] == 0, "Withdraw: responder amount not 0"
    state: WithdrawState = self._decode_state(encoded_state)
    assert state.fee <= balance.amount[0], "Withdraw: fee above amount"
    recovered: address = signatures._recover(state.commitment_hash, state.initiator_signature)
    assert recovered != empty(address) and recovered == state.initiator, (
        "Withdraw: not signed by initiator"
    )
    return True


@external
@view
def resolve(
    balance: td.Balance,
    encoded_state: Bytes[td.MAX_ENCODED_BYTES],
    encoded_resolver: Bytes[td.MAX_ENCODED_BYTES],
) -> td.Balance:
    """
    @notice The final balance: unchanged for an empty signature, [0, fee] once the
            responder signed the commitment; reverts otherwise.
    @param balance The transfer's balance.
    @param encoded_state See `create`.
    @param encoded_resolver abi.encode(bytes responderSignature).
    @return td.Balance The final balance.
    """
    state: WithdrawState = self._decode_state(encoded_state)
    signature: Bytes[signatures.SIGNATURE_BYTES] = abi_decode(
        encoded_resolver, Bytes[signatures.SIGNATURE_BYTES]
    )
    if len(signature) == 0:
        return balance
    recovered: address = signatures._recover(state.commitment_hash, signature)
    assert recovered != empty(address) and recovered == state.responder, (
        "Withdraw: not signed by responder"
    )
    return td.Balance(amount=[0, state.fee], to=balance.to)


@internal
@pure
def _decode_state(encoded_state: Bytes[td.MAX_ENCODED_BYTES]) -> WithdrawState:
    # the state is the tuple itself, not a tuple wrapping the struct
    return abi_decode(encoded_state, WithdrawState, unwrap_tuple=False)
