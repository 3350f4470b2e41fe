"""Hypothesis strategies for protocol data (random but valid-shaped states and keys)."""

from __future__ import annotations

from hypothesis import strategies as st

from connext.protocol.encoding import channel_address, checksum
from connext.protocol.signing import SECP256K1_N, Signer
from connext.protocol.types import Balance, ChannelState, NetworkContext

UINT256 = st.integers(min_value=0, max_value=2**256 - 1)
addresses = st.binary(min_size=20, max_size=20).map(checksum)
bytes32 = st.binary(min_size=32, max_size=32)
private_keys = st.integers(min_value=1, max_value=SECP256K1_N - 1).map(
    lambda k: k.to_bytes(32, "big")
)
signers = private_keys.map(Signer)

networks = st.builds(
    NetworkContext,
    chain_id=st.integers(min_value=1, max_value=2**64),
    channel_factory=addresses,
    channel_mastercopy=addresses,
    transfer_registry=addresses,
)


@st.composite
def channel_states(draw: st.DrawFn) -> ChannelState:
    alice = draw(addresses)
    bob = draw(addresses)
    net = draw(networks)
    n = draw(st.integers(min_value=0, max_value=16))
    return ChannelState(
        channel_address=channel_address(
            net.channel_factory, net.channel_mastercopy, alice, bob, net.chain_id
        ),
        alice=alice,
        bob=bob,
        network=net,
        asset_ids=tuple(draw(st.lists(addresses, min_size=n, max_size=n))),
        balances=tuple(
            Balance(draw(UINT256), draw(UINT256)) for _ in range(n)
        ),
        processed_deposits_a=tuple(draw(st.lists(UINT256, min_size=n, max_size=n))),
        processed_deposits_b=tuple(draw(st.lists(UINT256, min_size=n, max_size=n))),
        defund_nonces=tuple(draw(st.lists(UINT256, min_size=n, max_size=n))),
        timeout=draw(UINT256),
        nonce=draw(UINT256),
        merkle_root=draw(bytes32),
    )
