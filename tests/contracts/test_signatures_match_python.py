"""The channel accepts exactly the states and signatures the Python protocol accepts.

Random channel states are signed with connext.protocol.signing; `dispute_channel` is
called (eth_call, nothing mined) with the real signatures and with broken ones. For every
case the contract's verdict must equal Python's (both signatures recover to the parties).
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from connext.chain.anvil import Anvil
from connext.chain.channel import channel_state_tuple
from connext.chain.contracts import encode_call
from connext.protocol.encoding import channel_state_digest, checksum
from connext.protocol.signing import Signer, verify
from connext.protocol.types import Balance, ChannelState

from .helpers import ChannelUnderTest, high_s_twin, try_call

pytestmark = pytest.mark.chain

STATES = 40


def _random_state(rng: random.Random, channel: ChannelUnderTest) -> ChannelState:
    n = rng.choice([0, 1, 2, 3, 16, rng.randint(0, 16)])

    def amount() -> int:
        return rng.choice([0, 1, rng.getrandbits(64), rng.getrandbits(128), rng.getrandbits(256)])

    return channel.state(
        nonce=rng.randint(1, 2**64),
        asset_ids=[checksum(rng.randbytes(20)) for _ in range(n)],
        balances=[(amount(), amount()) for _ in range(n)],
        processed_a=[amount() for _ in range(n)],
        processed_b=[amount() for _ in range(n)],
        defund_nonces=[rng.randint(1, 2**32) for _ in range(n)] or None,
        timeout=rng.randint(0, 2**32),
    ) if n else replace(
        channel.state(nonce=rng.randint(1, 2**64), timeout=rng.randint(0, 2**32)),
        asset_ids=(), balances=(), processed_deposits_a=(), processed_deposits_b=(),
        defund_nonces=(), merkle_root=rng.randbytes(32),
    )


def _cases(
    rng: random.Random, channel: ChannelUnderTest, state: ChannelState, stranger: Signer
) -> dict[str, tuple[ChannelState, bytes, bytes]]:
    sig_a, sig_b = channel.sign(state)
    digest = channel_state_digest(state)
    flipped = bytearray(sig_a)
    flipped[rng.randrange(65)] ^= 1 << rng.randrange(8)
    if state.balances:
        first = state.balances[0]
        changed = replace(state, balances=(Balance(first.alice ^ 1, first.bob),
                                           *state.balances[1:]))
    else:
        changed = replace(state, merkle_root=bytes(32))
    return {
        "valid": (state, sig_a, sig_b),
        "stranger signs for alice": (state, stranger.sign(digest), sig_b),
        "stranger signs for bob": (state, sig_a, stranger.sign(digest)),
        "swapped": (state, sig_b, sig_a),
        "flipped bit": (state, bytes(flipped), sig_b),
        "high s": (state, sig_a, high_s_twin(sig_b)),
        "v not 27/28": (state, sig_a[:64] + bytes((rng.choice([0, 1, 29]),)), sig_b),
        "next nonce": (replace(state, nonce=state.nonce + 1), sig_a, sig_b),
        "other balance or root": (changed, sig_a, sig_b),
    }


def test_dispute_accepts_exactly_the_signatures_python_accepts(
    channel: ChannelUnderTest, anvil: Anvil
) -> None:
    channel.deploy()
    rng = random.Random(20261123)
    stranger = Signer.random()
    verdicts: dict[str, set[bool]] = {}
    for _ in range(STATES):
        state = _random_state(rng, channel)
        for case, (signed, sig_a, sig_b) in _cases(rng, channel, state, stranger).items():
            digest = channel_state_digest(signed)
            python_accepts = verify(digest, sig_a, channel.alice.address) and verify(
                digest, sig_b, channel.bob.address
            )
            data = encode_call("ChannelMastercopy", "dispute_channel",
                               channel_state_tuple(signed), sig_a, sig_b, b"")
            contract_accepts = try_call(anvil, channel.address, data,
                                        sender=channel.bob.address) is not None
            assert contract_accepts == python_accepts, (case, signed)
            verdicts.setdefault(case, set()).add(contract_accepts)
    assert verdicts.pop("valid") == {True}
    assert all(v == {False} for v in verdicts.values()), verdicts
