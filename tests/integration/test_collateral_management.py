"""Collateral management on a real chain, nats-server and node: just-in-time collateral
for a payment larger than the recipient's collateral, a per-channel profile set through the
admin API and honoured, idle excess above the reclaim threshold returned on the timer (the
node's on-chain balance checked to the wei), and twenty concurrent payments into one
channel sharing one collateral deposit at a time.

One node for the whole module's story (starting stacks is what the suite's time goes to).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from web3 import Web3

from connext.chain.channel import ChannelContract
from connext.chain.contracts import connect, contract
from connext.client import Client
from connext.protocol.types import ETH
from connext.store import ChannelStore

from .conftest import ADMIN_TOKEN, ClientFactory, NodeProcess
from .test_payments import ETHER, eventually

TARGET = ETHER // 10
RECLAIM_ABOVE = 10 * ETHER  # the asset's: high, so only the channel's own profile reclaims
CAP = 5 * ETHER


@pytest.fixture
def node_extra_env() -> dict[str, str]:
    profile = {"threshold": "0", "target": str(TARGET), "reclaimThreshold": str(RECLAIM_ABOVE),
               "cap": str(CAP)}
    return {"CONNEXT_COLLATERAL": json.dumps({ETH: profile}), "CONNEXT_RECLAIM_INTERVAL": "1",
            "CONNEXT_LIQUIDITY_INTERVAL": "1"}


def admin(node: NodeProcess, method: str, path: str, body: Any = None,
          token: str | None = ADMIN_TOKEN, raw: bytes | None = None) -> tuple[int, Any]:
    """(status, JSON body) of an admin API request to the node (`raw`: the body as is)."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{node.http_port}{path}", data=data,
                                     method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def node_transactions(w3: Web3, sender: str, from_block: int) -> list[tuple[Any, Any]]:
    """(transaction, receipt) of every transaction `sender` sent since `from_block`."""
    found = []
    for number in range(from_block, int(w3.eth.block_number) + 1):
        for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
            if tx["from"] == Web3.to_checksum_address(sender):
                found.append((tx, w3.eth.get_transaction_receipt(tx["hash"])))
    return found


def spent(w3: Web3, sender: str, from_block: int) -> int:
    """Wei `sender`'s transactions since `from_block` took from its balance: value and gas."""
    return sum(int(tx["value"]) + int(r["gasUsed"]) * int(r["effectiveGasPrice"])
               for tx, r in node_transactions(w3, sender, from_block))


def collateral_deposits(w3: Web3, node: NodeProcess, factory: str, user: str,
                        from_block: int) -> list[int]:
    """The amounts of the node's collateral deposits into `user`'s channel, in chain order."""
    factory_contract = contract(w3, "ChannelFactory", factory)
    amounts = []
    for tx, receipt in node_transactions(w3, node.address, from_block):
        if tx["to"] != factory_contract.address or receipt["status"] != 1:
            continue
        function, args = factory_contract.decode_function_input(tx["input"])
        if function.fn_name == "create_channel_and_deposit" and args["bob"] == user:
            amounts.append(int(args["amount"]))
    return amounts


def node_side(node: NodeProcess, client: Client) -> int:
    return int(node.channel(client.channel_address)["state"]["balances"][0][0])


def test_collateral_just_in_time_per_channel_profiles_reclaim_timer_and_concurrency(
    clients: ClientFactory, node: NodeProcess,
) -> None:
    async def scenario() -> None:
        w3 = connect(clients.anvil.url)
        factory = clients.deployment.network.channel_factory
        start = int(w3.eth.block_number)
        payer, payee = await clients.connect(), await clients.connect()
        await payer.setup()
        await payee.setup()
        await payer.deposit(ETH, 5 * ETHER)

        # 1. just in time: the payee's channel has no collateral, then less than the payment
        first, second = 3 * ETHER // 10, ETHER // 2
        assert (await payer.transfer(payee.address, ETH, first)).status == "completed"
        assert node_side(node, payee) == TARGET  # the payment plus the target's buffer
        assert (await payer.transfer(payee.address, ETH, second)).status == "completed"
        assert collateral_deposits(w3, node, factory, payee.address, start) == [
            first + TARGET, second]
        assert node_side(node, payee) == TARGET
        assert await payee.balances() == {ETH: first + second}

        # 2. a profile of the payee's channel, set through the admin API, is honoured
        small = {"threshold": "0", "target": str(TARGET // 2),
                 "reclaimThreshold": str(2 * TARGET), "cap": str(2 * TARGET)}
        status, body = admin(node, "PUT",
                             f"/admin/profiles/{payee.channel_address}/{ETH}", small)
        assert status == 200 and body["cap"] == str(2 * TARGET)
        refused = await payer.transfer(payee.address, ETH, 3 * TARGET, wait=30)
        assert refused.status == "cancelled"  # above the channel's cap: nothing deposited
        third = 3 * TARGET // 2
        assert (await payer.transfer(payee.address, ETH, third)).status == "completed"
        # brought to at most the cap (0.2): 0.1 was there, 0.1 more came
        assert collateral_deposits(w3, node, factory, payee.address, start)[2:] == [
            2 * TARGET - TARGET]
        # the channel's reclaim threshold (0.2) is not exceeded: the node keeps 0.05
        assert node_side(node, payee) == 2 * TARGET - third
        _, profiles = admin(node, "GET", "/admin/profiles")
        assert {"channelAddress": payee.channel_address, "assetId": ETH, **small} in (
            profiles["channels"])

        # 3. on the timer: the payer's channel holds what it paid (0.95 ETH) of the node's;
        # its own profile now says reclaim above 0.5, down to 0.2
        held = first + second + third
        assert node_side(node, payer) == held
        balance_before = int(w3.eth.get_balance(node.address))
        block_before = int(w3.eth.block_number) + 1
        status, _ = admin(node, "PUT", f"/admin/profiles/{payer.channel_address}/{ETH}", {
            "threshold": "0", "target": str(2 * TARGET), "reclaimThreshold": str(5 * TARGET),
            "cap": str(CAP)})
        assert status == 200
        onchain = ChannelContract(w3, payer.channel_address, node.address, payer.address)
        await eventually(lambda: onchain.is_deployed()
                         and onchain.total_transferred(ETH) == held - 2 * TARGET, timeout=30)
        await eventually(lambda: node_side(node, payer) == 2 * TARGET, timeout=10)
        reclaimed = held - 2 * TARGET
        assert int(w3.eth.get_balance(node.address)) == (
            balance_before + reclaimed - spent(w3, node.address, block_before))
        await asyncio.sleep(2.5)  # two more rounds of the timer: nothing more is taken
        assert onchain.total_transferred(ETH) == reclaimed
        assert await payer.balances() == {ETH: 5 * ETHER - held}

        # 4. twenty concurrent payments into one fresh channel: one deposit at a time
        recipient = await clients.connect()
        await recipient.setup()
        payers = [await clients.connect() for _ in range(4)]
        await asyncio.gather(*(p.setup() for p in payers))
        await asyncio.gather(*(p.deposit(ETH, ETHER) for p in payers))
        concurrent_start = int(w3.eth.block_number) + 1
        amount = ETHER // 100
        results = await asyncio.gather(*(
            p.transfer(recipient.address, ETH, amount, wait=60)
            for p in payers for _ in range(5)))
        assert [r.status for r in results] == ["completed"] * 20
        deposits = collateral_deposits(w3, node, factory, recipient.address, concurrent_start)
        channel = ChannelContract(w3, recipient.channel_address, node.address,
                                  recipient.address)
        assert sum(deposits) == channel.total_deposits_alice(ETH)
        # the first covers eleven payments (one and a buffer of ten), the next the rest: no
        # payment made its own deposit, none was duplicated
        assert 1 <= len(deposits) <= 3, deposits
        assert sum(deposits) <= 20 * amount + TARGET + amount
        assert await recipient.balances() == {ETH: 20 * amount}
        assert node_side(node, recipient) == sum(deposits) - 20 * amount
        store = ChannelStore.open(node.env["CONNEXT_NODE_DATABASE_URL"])
        try:
            recorded = sorted((t for t in store.transactions(
                channel_address=recipient.channel_address) if t.purpose == "collateral"),
                key=lambda t: t.id)
        finally:
            store.close()
        assert len(recorded) == len(deposits)
        for before, after in itertools.pairwise(recorded):
            assert before.updated_at <= after.created_at  # mined before the next was made

        # the operator's view agrees
        _, summary = admin(node, "GET", "/admin/summary")
        assert summary["payments"]["byStatus"]["resolved"] == 23
        eth_liquidity = next(x for x in summary["liquidity"] if x["assetId"] == ETH)
        assert int(eth_liquidity["onChain"]) == int(w3.eth.get_balance(node.address))
        _, log = admin(node, "GET", "/admin/collateral?limit=100")
        kinds = [t["kind"] for t in log["transactions"]]
        assert kinds.count("deposit") == 3 + len(deposits) and kinds.count("reclaim") == 1
        for client in (payer, payee, recipient, *payers):
            await client.close()

    asyncio.run(scenario())
