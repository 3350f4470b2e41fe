"""The node's HTTP API: health, config, channels (for their parties and the admin only),
Prometheus metrics, admin token."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from connext.node.http import metrics_refusal
from connext.protocol.encoding import node_request_digest
from connext.protocol.signing import Signer
from connext.protocol.types import ETH

from .conftest import ADMIN_TOKEN, ClientFactory, NodeProcess
from .test_payments import ETHER, eventually


def get(node: NodeProcess, path: str, token: str | None = None,
        headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{node.http_port}{path}",
                                     headers=headers or {})
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def signed(signer: Signer, chain_id: int, node_address: str, path: str, *,
           age_ms: int = 0) -> dict[str, str]:
    """Headers of a GET of `path` signed by `signer` (docs/NODE.md)."""
    timestamp = int(time.time() * 1000) - age_ms
    digest = node_request_digest(chain_id, node_address, "GET", path, timestamp)
    return {"X-Connext-Signer": signer.address, "X-Connext-Timestamp": str(timestamp),
            "X-Connext-Signature": "0x" + signer.sign(digest).hex()}


def metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_health_config_channels_metrics_and_admin(clients: ClientFactory,
                                                   node: NodeProcess) -> None:
    status, body = get(node, "/healthz")
    assert status == 200 and json.loads(body) == {"status": "ok", "address": node.address}
    status, body = get(node, "/config")
    config: dict[str, Any] = json.loads(body)
    assert config["address"] == node.address
    assert config["definitions"] == dict(clients.deployment.definitions)
    assert config["network"]["channelFactory"] == clients.deployment.channel_factory

    async def pay() -> tuple[str, Signer, Signer]:
        a, b = await clients.connect(), await clients.connect()
        await a.setup()
        await b.setup()
        await a.deposit(ETH, ETHER)
        assert (await a.transfer(b.address, ETH, ETHER // 4)).status == "completed"
        await a.close()
        await b.close()
        return a.channel_address, a.signer, b.signer

    channel_a, signer_a, signer_b = asyncio.run(pay())
    path = f"/channels/{channel_a}"
    chain_id = clients.deployment.chain_id
    status, body = get(node, path, token=ADMIN_TOKEN)
    assert status == 200 and json.loads(body)["state"]["channelAddress"] == channel_a
    # a party of the channel signs its request; nobody else reads the signed state
    status, body = get(node, path, headers=signed(signer_a, chain_id, node.address, path))
    assert status == 200 and json.loads(body)["state"]["channelAddress"] == channel_a
    assert get(node, path)[0] == 401
    assert get(node, path, token="wrong")[0] == 401
    assert get(node, path, headers=signed(signer_b, chain_id, node.address, path))[0] == 403
    stale = signed(signer_a, chain_id, node.address, path, age_ms=120_000)
    assert get(node, path, headers=stale)[0] == 401
    other_path = signed(signer_a, chain_id, node.address, "/channels/" + "0x" + "12" * 20)
    assert get(node, path, headers=other_path)[0] == 401
    assert get(node, "/channels/0x" + "12" * 20, token=ADMIN_TOKEN)[0] == 404
    assert get(node, "/channels/not-an-address", token=ADMIN_TOKEN)[0] == 400

    def metrics() -> str:
        return get(node, "/metrics")[1].decode()

    asyncio.run(eventually(lambda: metric(metrics(), 'connext_payments_total{status="resolved"}')
                           >= 1))
    text = metrics()
    assert metric(text, "connext_channels_opened_total") >= 2
    assert metric(text, 'connext_payment_volume_total{asset="' + ETH + '"}') >= ETHER // 4
    assert metric(text, "connext_collateral_deposited_total") > 0
    # what the node did (counted where it happens): at least the payment's two hops
    for op, at_least in (("signatures_made", 4), ("signatures_checked", 4),
                         ("db_writes", 4), ("db_statements", 8), ("messages_sent", 4),
                         ("messages_received", 4)):
        assert metric(text, f'connext_operations_total{{op="{op}"}}') >= at_least, op

    assert get(node, "/admin/channels")[0] == 401
    assert get(node, "/admin/channels", token="wrong")[0] == 401
    status, body = get(node, "/admin/channels", token=ADMIN_TOKEN)
    assert status == 200
    assert channel_a in {c["channelAddress"] for c in json.loads(body)["channels"]}


@pytest.mark.parametrize("path", ["/channels/0x" + "zz" * 20, "/nope"])
def test_bad_paths_are_clear_errors(node: NodeProcess, path: str) -> None:
    status, _ = get(node, path, token=ADMIN_TOKEN)
    assert status in (400, 404)


@pytest.mark.parametrize(("access", "peer", "admin", "refused"), [
    ("local", "127.0.0.1", False, None), ("local", "::1", False, None),
    ("local", "10.0.0.7", False, 403), ("local", "10.0.0.7", True, None),
    ("admin", "127.0.0.1", False, 401), ("admin", "10.0.0.7", True, None),
    ("public", "10.0.0.7", False, None),
])
def test_who_may_read_the_metrics(access: str, peer: str, admin: bool,
                                  refused: int | None) -> None:
    assert metrics_refusal(access, peer, admin) == refused
