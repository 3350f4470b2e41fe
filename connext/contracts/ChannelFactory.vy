# pragma version 0.4.3
# pragma evm-version cancun
"""
@title Channel factory
@notice Creates channels: EIP-1167 minimal proxies to the channel mastercopy at the CREATE2
        address given by salt = keccak256(abi.encode(alice, bob, chain id)). The address is
        known before deployment, so bob can fund a channel that does not exist yet; the
        proxy is deployed only when it is needed (a deposit by alice, a withdrawal, a
        dispute), possibly in the same transaction.
@dev The factory creates the mastercopy in its constructor from a blueprint, so the
     mastercopy can hold the factory's address as an immutable and check every proxy's
     address without storing anything in it.
"""

from ethereum.ercs import IERC20

from . import signatures
from . import ChannelMastercopy


event ChannelCreated:
    channel: indexed(address)
    alice: indexed(address)
    bob: indexed(address)


# The channel logic every proxy delegates to.
mastercopy: public(immutable(address))
# keccak256 of the proxy init code (see ChannelMastercopy.proxy_code_hash).
proxy_code_hash: public(immutable(bytes32))


@deploy
def __init__(mastercopy_blueprint: address, withdraw_definition: address):
    """
    @param mastercopy_blueprint An EIP-5202 blueprint of ChannelMastercopy.
    @param withdraw_definition The network's Withdraw transfer definition (the channels
           tie its transfers to their withdraw commitments).
    """
    mastercopy = create_from_blueprint(mastercopy_blueprint, withdraw_definition)
    proxy_code_hash = staticcall ChannelMastercopy.__interface__(mastercopy).proxy_code_hash()


@external
@view
def channel_address(alice: address, bob: address) -> address:
    """
    @notice The address of the channel between `alice` and `bob`, deployed or not.
    """
    return self._channel_address(alice, bob)


@external
def create_channel(alice: address, bob: address) -> address:
    """
    @notice Deploys the channel between `alice` (the node) and `bob` (the user).
    @return address The channel; reverts if it already exists.
    """
    return self._create_channel(alice, bob, 0)


@external
@payable
def create_channel_and_deposit(
    alice: address, bob: address, asset_id: address, amount: uint256
) -> address:
    """
    @notice Deposits on alice's side, deploying the channel first if needed.
            ETH: send `amount` as value. Token: approve this factory for `amount`; it moves
            the tokens from the caller straight into the channel.
    @return address The channel.
    """
    channel: address = self._channel_address(alice, bob)
    if asset_id == empty(address):
        assert msg.value == amount, "Factory: wrong ETH value"
    else:
        assert msg.value == 0, "Factory: ETH sent with token"
    if not channel.is_contract:
        # ETH rides along with the deployment
        self._create_channel(alice, bob, msg.value)
    elif msg.value != 0:
        raw_call(channel, b"", value=msg.value)
    if asset_id != empty(address):
        assert asset_id.is_contract, "Factory: asset is not a token"
        response: Bytes[32] = raw_call(
            asset_id,
            abi_encode(
                msg.sender,
                channel,
                amount,
                method_id=method_id("transferFrom(address,address,uint256)"),
            ),
            max_outsize=32,
        )
        if len(response) != 0:
            assert abi_decode(response, bool), "Factory: token transfer failed"
    extcall ChannelMastercopy.__interface__(channel).credit_alice_deposit(
        alice, bob, asset_id, amount, msg.sender
    )
    return channel


@external
def create_channel_and_withdraw(
    alice: address,
    bob: address,
    commitment: ChannelMastercopy.WithdrawCommitment,
    signature_alice: Bytes[signatures.SIGNATURE_BYTES],
    signature_bob: Bytes[signatures.SIGNATURE_BYTES],
) -> address:
    """
    @notice Pays a double-signed withdraw commitment, deploying the channel first if needed.
    @return address The channel.
    """
    channel: address = self._channel_address(alice, bob)
    if not channel.is_contract:
        self._create_channel(alice, bob, 0)
    extcall ChannelMastercopy.__interface__(channel).withdraw(
        alice, bob, commitment, signature_alice, signature_bob
    )
    return channel


@internal
def _create_channel(alice: address, bob: address, eth: uint256) -> address:
    assert alice != empty(address) and bob != empty(address), "Factory: zero party"
    assert alice != bob, "Factory: alice is bob"
    channel: address = create_minimal_proxy_to(
        mastercopy, value=eth, salt=keccak256(abi_encode(alice, bob, chain.id))
    )
    log ChannelCreated(channel=channel, alice=alice, bob=bob)
    return channel


@internal
@view
def _channel_address(alice: address, bob: address) -> address:
    salt: bytes32 = keccak256(abi_encode(alice, bob, chain.id))
    digest: bytes32 = keccak256(concat(x"ff", convert(self, bytes20), salt, proxy_code_hash))
    return convert(convert(digest, uint256) & 2**160 - 1, address)
