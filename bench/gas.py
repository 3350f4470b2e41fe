"""Gas used by every on-chain step of a channel's life, measured on a real anvil.

`measure_gas(anvil_url)` deploys the contracts on the given anvil (fresh keys, funded with
anvil_setBalance) and returns {step: gas used}; `python bench/gas.py` starts its own anvil,
prints a table and the JSON, and compares with the targets. Nothing is estimated: every
number is the gasUsed of a mined transaction.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/gas.py` from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from web3.types import TxReceipt

from connext.chain.anvil import start_anvil
from connext.chain.channel import ChannelContract, WithdrawCommitment
from connext.chain.contracts import Sender, connect, contract
from connext.chain.deploy import Deployment, deploy
from connext.protocol.encoding import (
    channel_state_digest,
    keccak,
    transfer_hash,
    withdraw_commitment_digest,
)
from connext.protocol.merkle import merkle_proof, merkle_root
from connext.protocol.signing import Signer
from connext.protocol.transfers import HASHLOCK
from connext.protocol.types import ETH, Balance, ChannelState, CoreTransferState, TransferBalance

ETHER = 10**18
UNLIMITED = 2**256 - 1

GAS_TARGETS: dict[str, int] = {
    "channel_deployment": 120_000,
    "withdraw_deployed_channel_eth": 80_000,
    "unilateral_exit_total": 400_000,
}
"""Upper bounds the design promises."""


class _Bench:
    """One deployment and the parties whose transactions are measured."""

    def __init__(self, anvil_url: str) -> None:
        self.w3 = connect(anvil_url)
        deployer = self.party(100)
        self.deployment = deploy(self.w3, deployer.private_key)
        assert self.deployment.test_token is not None
        self.token = contract(self.w3, "TestToken", self.deployment.test_token)
        self.factory = contract(self.w3, "ChannelFactory", self.deployment.channel_factory)
        self.alice = self.party(1000)
        self.bob = self.party(1000)
        self.relayer = self.party(100)
        for signer in (self.alice, self.bob):
            self.send(signer, self.token.functions.mint(signer.address, 1000 * ETHER))
        self.gas: dict[str, int] = {}

    def party(self, ether: int) -> Signer:
        signer = Signer.random()
        self.w3.provider.make_request(
            "anvil_setBalance", [signer.address, hex(ether * ETHER)]  # type: ignore[arg-type]
        )
        return signer

    def send(self, signer: Signer, call: Any, value: int = 0) -> TxReceipt:
        return Sender(self.w3, signer.private_key).transact(call, value=value)

    def record(self, step: str, receipt: TxReceipt) -> None:
        self.gas[step] = int(receipt["gasUsed"])

    def channel(self, alice: Signer, bob: Signer) -> ChannelContract:
        address = self.factory.functions.channel_address(alice.address, bob.address).call()
        return ChannelContract(self.w3, address, alice.address, bob.address)

    def commitment_signatures(
        self, alice: Signer, bob: Signer, channel: ChannelContract, c: WithdrawCommitment
    ) -> tuple[bytes, bytes]:
        digest = withdraw_commitment_digest(
            self.deployment.chain_id, channel.address, c.recipient, c.asset_id, c.amount,
            c.nonce,
        )
        return alice.sign(digest), bob.sign(digest)

    def travel(self, seconds: int) -> None:
        self.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
        self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def measure_gas(anvil_url: str) -> dict[str, int]:
    """Gas of each step; needs an anvil (funds fresh keys with anvil_setBalance)."""
    bench = _Bench(anvil_url)
    _deposits(bench)
    _withdrawals(bench)
    _secrets(bench)
    unilateral = _unilateral_exit(bench)
    bench.gas.update(unilateral)
    bench.gas["unilateral_exit_total"] = sum(unilateral.values())
    return bench.gas


def _deposits(bench: _Bench) -> None:
    alice, bob, token, factory = bench.alice, bench.bob, bench.token, bench.factory
    channel = bench.channel(alice, bob)
    bench.record("bob_deposit_eth_before_deployment",
                 Sender(bench.w3, bob.private_key).send_eth(channel.address, ETHER))
    bench.record("channel_deployment", bench.send(
        bench.relayer, factory.functions.create_channel(alice.address, bob.address)))
    bench.record("bob_deposit_eth",
                 Sender(bench.w3, bob.private_key).send_eth(channel.address, ETHER))
    bench.record("bob_deposit_token",
                 bench.send(bob, token.functions.transfer(channel.address, ETHER)))
    bench.record("erc20_transfer_reference",
                 bench.send(bob, token.functions.transfer(bench.party(0).address, ETHER)))
    bench.record("alice_deposit_eth",
                 bench.send(alice, channel.deposit_alice(ETH, 2 * ETHER), value=2 * ETHER))
    bench.send(alice, token.functions.approve(channel.address, UNLIMITED))
    bench.record("alice_deposit_token",
                 bench.send(alice, channel.deposit_alice(token.address, ETHER)))
    bench.send(alice, token.functions.approve(factory.address, UNLIMITED))
    deposit = factory.functions.create_channel_and_deposit
    bench.record("create_channel_and_deposit_eth", bench.send(
        alice, deposit(alice.address, bench.party(0).address, ETH, ETHER), value=ETHER))
    bench.record("create_channel_and_deposit_token", bench.send(
        alice, deposit(alice.address, bench.party(0).address, token.address, ETHER)))


def _withdrawals(bench: _Bench) -> None:
    alice, bob = bench.alice, bench.bob
    fresh_bob = bench.party(10)
    counterfactual = bench.channel(alice, fresh_bob)
    Sender(bench.w3, fresh_bob.private_key).send_eth(counterfactual.address, ETHER)
    c = WithdrawCommitment(fresh_bob.address, ETH, ETHER // 2, 1)
    signatures = bench.commitment_signatures(alice, fresh_bob, counterfactual, c)
    bench.record("withdraw_with_deployment", bench.send(
        bench.relayer, bench.factory.functions.create_channel_and_withdraw(
            alice.address, fresh_bob.address, c.as_tuple(), *signatures)))

    channel = bench.channel(alice, bob)
    for step, asset, nonce in (("withdraw_deployed_channel_eth", ETH, 1),
                               ("withdraw_deployed_channel_token", bench.token.address, 2)):
        c = WithdrawCommitment(bob.address, asset, ETHER // 2, nonce)
        signatures = bench.commitment_signatures(alice, bob, channel, c)
        bench.record(step, bench.send(bench.relayer, channel.withdraw(c, *signatures)))


def _secrets(bench: _Bench) -> None:
    """Revealing a preimage in the secret registry: what a party whose counterparty does
    not countersign a resolve pays to keep its lock enforceable after the lock's expiry."""
    registry = contract(bench.w3, "SecretRegistry", bench.deployment.secret_registry)
    bench.record("register_secret", bench.send(
        bench.relayer, registry.functions.register(os.urandom(32))))


def _unilateral_exit(bench: _Bench) -> dict[str, int]:
    """Bob force-closes an ETH channel with one active hashlock transfer he can unlock."""
    alice, bob = bench.alice, bench.party(100)
    channel = bench.channel(alice, bob)
    Sender(bench.w3, bob.private_key).send_eth(channel.address, 5 * ETHER)
    bench.send(alice, bench.factory.functions.create_channel_and_deposit(
        alice.address, bob.address, ETH, 5 * ETHER), value=5 * ETHER)

    preimage = os.urandom(32)
    initial_state = HASHLOCK.encode_state(hashlib.sha256(preimage).digest(), 0)
    core = CoreTransferState(
        channel_address=channel.address,
        transfer_id=os.urandom(32),
        transfer_definition=bench.deployment.definitions["Hashlock"],
        initiator=alice.address,
        responder=bob.address,
        asset_id=ETH,
        balance=TransferBalance(amount=(ETHER, 0), to=(alice.address, bob.address)),
        transfer_timeout=3600,
        initial_state_hash=keccak(initial_state),
    )
    leaf = transfer_hash(core)
    state = _state(bench.deployment, channel, merkle_root([leaf]))
    digest = channel_state_digest(state)

    steps: dict[str, Callable[[], TxReceipt]] = {
        "dispute_channel": lambda: bench.send(
            bob, channel.dispute_channel(state, alice.sign(digest), bob.sign(digest))),
        "defund_channel": lambda: bench.send(bob, channel.defund_channel(state, [ETH])),
        "dispute_transfer": lambda: bench.send(
            bob, channel.dispute_transfer(core, merkle_proof([leaf], leaf), state)),
        "defund_transfer": lambda: bench.send(bob, channel.defund_transfer(
            core, initial_state, HASHLOCK.encode_resolver(preimage))),
        "exit_bob": lambda: bench.send(bob, channel.exit(ETH, bob.address, bob.address)),
        "exit_alice": lambda: bench.send(alice, channel.exit(ETH, alice.address, alice.address)),
    }
    gas: dict[str, int] = {}
    for step, send in steps.items():
        gas[step] = int(send()["gasUsed"])
        if step == "dispute_channel":
            bench.travel(state.timeout + 1)
    assert channel.exitable(ETH, bob.address) == 0 == bench.w3.eth.get_balance(channel.address)
    return gas


def _state(deployment: Deployment, channel: ChannelContract, root: bytes) -> ChannelState:
    """Both deposited 5 ETH; alice locked 1 ETH in the transfer and paid bob nothing yet."""
    return ChannelState(
        channel_address=channel.address,
        alice=channel.alice,
        bob=channel.bob,
        network=deployment.network,
        asset_ids=(ETH,),
        balances=(Balance(alice=4 * ETHER, bob=5 * ETHER),),
        processed_deposits_a=(5 * ETHER,),
        processed_deposits_b=(5 * ETHER,),
        defund_nonces=(1,),
        timeout=3600,
        nonce=7,
        merkle_root=root,
    )


def format_table(gas: dict[str, int]) -> str:
    width = max(len(k) for k in gas)
    lines = [f"{'step':<{width}}  {'gas':>9}  target"]
    for step, value in gas.items():
        target = GAS_TARGETS.get(step)
        verdict = "" if target is None else f"<= {target:,} {'ok' if value <= target else 'OVER'}"
        lines.append(f"{step:<{width}}  {value:>9,}  {verdict}")
    return "\n".join(lines)


def measure_gas_on_fresh_anvil() -> dict[str, int]:
    """`measure_gas` on an anvil of its own, stopped afterwards."""
    with start_anvil() as anvil:
        return measure_gas(anvil.url)


def main() -> int:
    gas = measure_gas_on_fresh_anvil()
    print(format_table(gas))
    print(json.dumps(gas, indent=2))
    return 0 if all(gas[k] <= v for k, v in GAS_TARGETS.items()) else 1


if __name__ == "__main__":
    sys.exit(main())
