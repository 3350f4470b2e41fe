"""The crypto floor and the protocol's cost per update in one process.

An update costs the initiator an apply + sign and the responder an apply + recover + sign,
and the initiator then checks the countersignature (recover): 2 signs and 2 recovers is
the floor, the ratio says how much the rest of the protocol adds on top of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from connext.protocol.channel import (
    Rules,
    countersign,
    create_update,
    deposit_update,
    propose,
    resolve_update,
    setup_update,
)
from connext.protocol.encoding import checksum
from connext.protocol.signing import Signer, recover_address_bytes, verify
from connext.protocol.transfers import HASHLOCK, lock_hash
from connext.protocol.types import ETH, NetworkContext


def _per_call_us(fn: Callable[[], Any], seconds: float = 1.0) -> float:
    calls, started = 0, time.perf_counter()
    while True:
        for _ in range(100):
            fn()
        calls += 100
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return elapsed / calls * 1e6


def measure_crypto(seconds: float = 1.0) -> dict[str, float]:
    signer = Signer(b"\x01" * 32)
    digest = b"\x42" * 32
    signature = signer.sign(digest)
    sign_us = _per_call_us(lambda: signer.sign(digest), seconds)
    recover_us = _per_call_us(lambda: recover_address_bytes(digest, signature), seconds)

    alice, bob = Signer(b"\x02" * 32), Signer(b"\x03" * 32)
    hashlock_address = checksum(b"\xa1" * 20)
    rules = Rules(definitions={hashlock_address: HASHLOCK}, now=1)
    network = NetworkContext(31337, checksum(b"\xf1" * 20), checksum(b"\xf2" * 20),
                             checksum(b"\xf3" * 20))
    signers = {alice.address: alice, bob.address: bob}
    state: Any = None
    transfers: Any = {}

    def step(update: Any) -> None:
        nonlocal state, transfers
        proposed, _ = propose(state, transfers, update, signers[update.initiator], rules)
        signed, applied = countersign(state, transfers, proposed, signers[update.responder],
                                      rules)
        responder_sig = signed.bob_signature if update.responder == bob.address else (
            signed.alice_signature)
        assert verify(applied.digest, responder_sig, update.responder)
        state, transfers = applied.state, applied.transfers

    step(setup_update(alice.address, bob.address, network, 3600))
    step(deposit_update(state, bob.address, ETH, 0, 10**30))
    preimage = b"\x07" * 32
    lock_state = HASHLOCK.encode_state(lock_hash(preimage), 0)
    resolver = HASHLOCK.encode_resolver(preimage)
    counter = 0

    def payment_updates() -> None:
        # one create + one resolve: two protocol updates
        nonlocal counter
        counter += 1
        transfer_id = counter.to_bytes(32, "big")
        step(create_update(state, bob.address, transfer_id=transfer_id,
                           transfer_definition=hashlock_address, asset_id=ETH, amount=1,
                           initial_state=lock_state, transfer_timeout=600))
        step(resolve_update(state, alice.address, transfer_id, resolver))

    per_pair_us = _per_call_us(payment_updates, seconds * 2)
    per_update_us = per_pair_us / 2
    floor_us = 2 * sign_us + 2 * recover_us
    return {
        "sign_us": round(sign_us, 1),
        "recover_us": round(recover_us, 1),
        "update_us": round(per_update_us, 1),
        "updates_per_second": round(1e6 / per_update_us, 1),
        "update_floor_us": round(floor_us, 1),
        "update_cost_over_floor": round(per_update_us / floor_us, 2),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(measure_crypto(), indent=2))
