"""The node's HTTP API: health, config, channels, Prometheus metrics, admin token."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from connext.protocol.types import ETH

from .conftest import ClientFactory, NodeProcess
from .test_payments import ETHER, eventually


def get(node: NodeProcess, path: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{node.http_port}{path}")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


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

    async def pay() -> tuple[str, str]:
        a, b = await clients.connect(), await clients.connect()
        await a.setup()
        await b.setup()
        await a.deposit(ETH, ETHER)
        assert (await a.transfer(b.address, ETH, ETHER // 4)).status == "completed"
        await a.close()
        await b.close()
        return a.channel_address, b.channel_address

    channel_a, _ = asyncio.run(pay())
    status, body = get(node, f"/channels/{channel_a}")
    assert status == 200 and json.loads(body)["state"]["channelAddress"] == channel_a
    assert get(node, "/channels/0x" + "12" * 20)[0] == 404
    assert get(node, "/channels/not-an-address")[0] == 400

    def metrics() -> str:
        return get(node, "/metrics")[1].decode()

    asyncio.run(eventually(lambda: metric(metrics(), 'connext_payments_total{status="resolved"}')
                           >= 1))
    text = metrics()
    assert metric(text, "connext_channels_opened_total") >= 2
    assert metric(text, 'connext_payment_volume_total{asset="' + ETH + '"}') >= ETHER // 4
    assert metric(text, "connext_collateral_deposited_total") > 0

    assert get(node, "/admin/channels")[0] == 401
    assert get(node, "/admin/channels", token="wrong")[0] == 401
    status, body = get(node, "/admin/channels", token="test-admin-token")
    assert status == 200
    assert channel_a in {c["channelAddress"] for c in json.loads(body)["channels"]}


@pytest.mark.parametrize("path", ["/channels/0x" + "zz" * 20, "/nope"])
def test_bad_paths_are_clear_errors(node: NodeProcess, path: str) -> None:
    status, _ = get(node, path)
    assert status in (400, 404)
