"""Pay between two clients on the local stack (`make start` running, then
`.venv/bin/python examples/pay.py`).

Creates two fresh users, funds them from anvil's dev accounts, opens their channels with
the node, deposits, pays A -> B through the node, and withdraws B's funds to a fresh
address. Everything real: anvil, NATS, the node, the channel contracts.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import urllib.request
from pathlib import Path

from connext.chain.contracts import Sender, connect
from connext.chain.deploy import load_deployment
from connext.client import Client
from connext.protocol.signing import Signer
from connext.protocol.types import ETH

CHAIN_URL = os.environ.get("CONNEXT_CHAIN_URL", "http://127.0.0.1:8545")
NATS_URL = os.environ.get("CONNEXT_NATS_URL", "nats://127.0.0.1:4222")
NODE_URL = os.environ.get("CONNEXT_NODE_URL", "http://127.0.0.1:8000")
DATA_DIR = Path(os.environ.get("CONNEXT_DATA_DIR", ".data"))
FUNDER_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"  # anvil #2
ETHER = 10**18


async def main() -> None:
    w3 = connect(CHAIN_URL)
    deployment = load_deployment(DATA_DIR / "deployments.json", w3.eth.chain_id)
    assert deployment is not None, "run `make start` first"
    with urllib.request.urlopen(f"{NODE_URL}/config") as response:
        node_address = json.loads(response.read())["address"]

    funder = Sender(w3, FUNDER_KEY)
    workdir = Path(tempfile.mkdtemp(prefix="connext-example-"))
    users = []
    for name in ("alice", "bob"):
        signer = Signer.random()
        funder.send_eth(signer.address, ETHER)  # gas money for the user's own deposit
        client = await Client.connect(
            signer, node_address=node_address, nats_url=NATS_URL, chain_url=CHAIN_URL,
            database_url=f"sqlite:///{workdir / name}.sqlite", deployment=deployment,
        )
        await client.setup()
        print(f"{name}: {client.address}, channel {client.channel_address}")
        users.append(client)
    alice, bob = users

    bob.on("transfer.received", lambda event: print(f"bob received {event['amount']} wei"))
    await alice.deposit(ETH, ETHER // 2)
    print("alice's balances:", await alice.balances())

    result = await alice.transfer(bob.address, ETH, ETHER // 10)
    print("payment:", result.status)
    print("bob's balances:", await bob.balances())

    cash_out = Signer.random().address
    withdrawal = await bob.withdraw(cash_out, ETH, ETHER // 20)
    print(f"bob withdrew to {cash_out}: {withdrawal.status}, tx {withdrawal.transaction_hash}")
    print("on-chain balance of the cash-out address:", w3.eth.get_balance(cash_out))
    for client in users:
        await client.close()


if __name__ == "__main__":
    asyncio.run(main())
