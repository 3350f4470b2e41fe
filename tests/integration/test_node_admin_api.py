"""The node's admin API and its OpenAPI document, against a real node: every admin route
refuses a request without the token (or with a wrong one), answers in the documented
shapes, refuses bad profiles with a clear error and changes nothing; the document is valid
OpenAPI 3.1 and describes exactly the routes the node serves; `connext node status` prints
the same summary; the metrics carry volume, fees, liquidity and collateral transactions; a
low on-chain balance is reported in the API, the metrics and the log."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import urllib.request
from typing import Any

import jsonschema_rs
import pytest
from schemathesis.specs.openapi.definitions import OPENAPI_31

from connext import cli
from connext.chain.deploy import Deployment
from connext.node.http import routes
from connext.node.openapi import document
from connext.protocol.types import ETH

from .conftest import ADMIN_TOKEN, CONNEXT, ClientFactory, NodeProcess
from .test_collateral_management import admin
from .test_node_http import metric
from .test_payments import ETHER

GOOD = {"threshold": "1", "target": "100", "reclaimThreshold": "200", "cap": "300"}
BAD_PROFILES: list[tuple[Any, str]] = [
    ({**GOOD, "target": "0"}, "target must be positive"),
    ({**GOOD, "threshold": "-1"}, "threshold must be a whole number"),
    ({**GOOD, "cap": "99"}, "cap must be at least target"),
    ({**GOOD, "threshold": "100"}, "threshold must be below target"),
    ({**GOOD, "reclaimThreshold": "50"}, "reclaimThreshold must be at least target"),
    ({**GOOD, "cap": str(2**256)}, "cap must be from 0 to 2**256 - 1"),
    ({**GOOD, "cap": "1e30"}, "cap must be a whole number"),
    ({**GOOD, "target": 1.5}, "target must be a whole number"),
    ({**GOOD, "target": True}, "target must be a whole number"),
    ({k: v for k, v in GOOD.items() if k != "cap"}, "cap is required"),
    ({**GOOD, "owner": "me"}, "unknown fields: owner"),
    (["not", "an", "object"], "the body must be a JSON object"),
]


LOW_BELOW = 10**30  # more of the test token than the node has: its liquidity is low


@pytest.fixture
def node_extra_env(deployment: Deployment) -> dict[str, str]:
    assert deployment.test_token is not None
    return {"CONNEXT_LOW_LIQUIDITY": json.dumps({deployment.test_token: str(LOW_BELOW)}),
            "CONNEXT_LIQUIDITY_INTERVAL": "1"}


def _schema(doc: dict[str, Any], path: str) -> Any:
    """A validator of the 200 response of GET `path` (component refs resolved)."""
    schema = doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"]
    return jsonschema_rs.validator_for({**schema, "components": doc["components"]})


def test_the_document_is_valid_openapi_and_describes_exactly_the_served_routes() -> None:
    doc = document()
    jsonschema_rs.validator_for(OPENAPI_31).validate(json.loads(json.dumps(doc)))
    served: dict[str, set[str]] = {}
    for route in routes():
        served.setdefault(route.path, set()).add(route.method.lower())  # type: ignore[attr-defined]
    assert served == {path: set(ops) for path, ops in doc["paths"].items()}
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            if path.startswith("/admin/"):
                assert operation["security"] == [{"adminToken": []}], (method, path)
                assert "401" in operation["responses"], (method, path)


def test_admin_routes_refuse_without_the_token_and_answer_in_the_documented_shapes(
    clients: ClientFactory, node: NodeProcess, capsys: pytest.CaptureFixture[str],
) -> None:
    async def scenario() -> None:
        payer, payee = await clients.connect(), await clients.connect()
        await payer.setup()
        await payee.setup()
        await payer.deposit(ETH, ETHER)
        assert (await payer.transfer(payee.address, ETH, ETHER // 10)).status == "completed"
        await payer.close()
        await payee.close()
        return None

    asyncio.run(scenario())
    status, served = admin(node, "GET", "/openapi.json", token=None)
    assert status == 200 and served == json.loads(json.dumps(document()))

    _, channels = admin(node, "GET", "/admin/channels")
    target = channels["channels"][0]["channelAddress"]
    profile_path = f"/admin/profiles/{target}/{ETH}"
    for path, operations in served["paths"].items():
        if not path.startswith("/admin/"):
            continue
        concrete = path.replace("{channel}", target).replace("{asset}", ETH)
        for method in operations:
            body = GOOD if method == "put" else None
            for token in (None, "wrong-token", ADMIN_TOKEN + "x", ""):
                status, answer = admin(node, method.upper(), concrete, body, token=token)
                assert status == 401 and answer == {"error": "admin token required"}, (
                    method, path, token)
    # nothing was set by the refused requests
    _, profiles = admin(node, "GET", "/admin/profiles")
    assert profiles["channels"] == []

    for path in ("/admin/summary", "/admin/liquidity", "/admin/payments", "/admin/failures",
                 "/admin/collateral", "/admin/timeline", "/admin/rates", "/admin/profiles"):
        status, answer = admin(node, "GET", path)
        assert status == 200, path
        _schema(served, path).validate(answer)
    _, summary = admin(node, "GET", "/admin/summary")
    assert summary["address"] == node.address and summary["channels"] == 2
    assert summary["payments"]["byStatus"] == {"resolved": 1}
    assert summary["volume24h"] == [{"assetId": ETH, "payments": 1, "amount": str(ETHER // 10)}]
    # liquidity: the node's side of its channels, and the low one reported (API, log)
    token = clients.deployment.test_token
    assert summary["lowLiquidity"] == [token]
    by_asset = {x["assetId"]: x for x in summary["liquidity"]}
    assert by_asset[token]["low"] is True and by_asset[token]["lowBelow"] == str(LOW_BELOW)
    assert by_asset[ETH]["low"] is False
    node_sides = sum(int(c["balances"][0][0]) for c in channels["channels"])
    assert by_asset[ETH]["inChannels"] == str(node_sides) and by_asset[ETH]["channels"] == 2
    assert "low liquidity" in node.output() and token in node.output()
    _, payments = admin(node, "GET", "/admin/payments?limit=5")
    assert [(p["status"], p["amount"]) for p in payments["payments"]] == [
        ("resolved", str(ETHER // 10))]
    _, minutes = admin(node, "GET", "/admin/timeline?minutes=5")
    assert len(minutes["minutes"]) == 5
    assert sum(m["resolved"] for m in minutes["minutes"]) == 1
    _, rates = admin(node, "GET", "/admin/rates")
    # this node quotes no swaps: no pairs, and the assets it knows
    assert rates["rates"] == [] and rates["source"] == "config"
    assert {"symbol": "ETH", "address": ETH, "decimals": 18} in rates["assets"]

    for query in ("limit=0", "limit=501", "limit=-1", "limit=abc", "status=lost"):
        status, answer = admin(node, "GET", f"/admin/payments?{query}")
        assert status == 400 and answer["error"], query
    status, _ = admin(node, "GET", "/admin/timeline?minutes=1441")
    assert status == 400

    # profiles: bad ones are refused with the reason, and change nothing
    for bad, reason in BAD_PROFILES:
        status, answer = admin(node, "PUT", profile_path, bad)
        assert status == 400 and reason in answer["error"], (bad, answer)
    for raw in (b"{not json", b"\xff\xfe", b'{"cap": ' + b"9" * 5000 + b"}"):
        status, answer = admin(node, "PUT", profile_path, raw=raw)
        assert status == 400 and answer == {"error": "the body must be JSON"}, raw[:20]
    status, answer = admin(node, "PUT", f"/admin/profiles/0x{'12' * 20}/{ETH}", GOOD)
    assert status == 404  # not a channel of the node's
    status, answer = admin(node, "PUT", f"/admin/profiles/not-an-address/{ETH}", GOOD)
    assert status == 400
    _, profiles = admin(node, "GET", "/admin/profiles")
    assert profiles["channels"] == []
    assert {"assetId": ETH, "threshold": str(10**17), "target": str(10**18),
            "reclaimThreshold": str(10**19), "cap": str(10**19)} in profiles["assets"]

    status, answer = admin(node, "PUT", profile_path, GOOD)
    assert status == 200 and answer == {"channelAddress": target, "assetId": ETH, **GOOD}
    _, profiles = admin(node, "GET", "/admin/profiles")
    assert profiles["channels"] == [{"channelAddress": target, "assetId": ETH, **GOOD}]
    status, _ = admin(node, "DELETE", profile_path)
    assert status == 200
    status, _ = admin(node, "DELETE", profile_path)
    assert status == 404

    # the terminal prints the same summary; without the token it says why
    env = {**node.env, "CONNEXT_NODE_PORT": str(node.http_port)}
    shown = subprocess.run([CONNEXT, "node", "status"], env=env, capture_output=True,
                           text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert f"node {node.address}" in shown.stdout and "channels: 2" in shown.stdout
    assert re.search(r"payments: 1 \(resolved 1\)", shown.stdout)
    assert "last 24 h in " + ETH + ": 1 resolved, 0.100000 ETH" in shown.stdout
    url = f"http://127.0.0.1:{node.http_port}"  # the same command in this process
    assert cli.main(["node", "status", "--json", "--url", url, "--token", ADMIN_TOKEN]) == 0
    assert json.loads(capsys.readouterr().out)["channels"] == 2
    assert cli.main(["node", "status", "--url", url, "--token", "wrong"]) == 1
    assert "refused the admin token" in capsys.readouterr().err

    # the metrics name what the admin API shows
    with urllib.request.urlopen(f"http://127.0.0.1:{node.http_port}/metrics",
                                timeout=10) as response:
        text = response.read().decode()
    asset = f'{{asset="{ETH}"}}'
    assert metric(text, f"connext_payment_volume_total{asset}") == ETHER // 10
    assert f"connext_fees_total{asset} 0.0" in text
    assert f'connext_collateral_transactions_total{{asset="{ETH}",kind="deposit"}} 1.0' in text
    assert "# TYPE connext_swaps_total counter" in text  # the swaps code counts there
    assert metric(text, f"connext_liquidity_onchain{asset}") > 0
    assert f"connext_liquidity_low{asset} 0.0" in text
    assert f'connext_liquidity_low{{asset="{token}"}} 1.0' in text
