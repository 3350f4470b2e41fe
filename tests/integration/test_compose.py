"""docker-compose.yml is valid and every service runs a command these tests also run."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from eth_account import Account
from web3 import Web3

from connext.chain.contracts import contract
from connext.chain.deploy import TEST_TOKEN_MINT
from connext.cli import parser
from connext.devstack import free_port
from connext.node.config import ANVIL_DEV_KEY_1
from connext.protocol.signing import Signer

ROOT = Path(__file__).resolve().parents[2]
CONNEXT = str(Path(sys.executable).parent / "connext")


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_compose_file_is_valid_for_docker_compose() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (make test installs it when run as root)")
    result = subprocess.run([binary, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_every_service_is_there_with_dependencies_and_health() -> None:
    services = compose()["services"]
    assert {"chain", "nats", "nats-config", "nats-auth", "postgres", "deploy", "node", "oracle",
            "web"} <= set(services)
    assert services["nats"]["command"] == ["-c", "/data/nats/nats.conf"]  # authorization on
    assert services["nats"]["depends_on"]["nats-config"]["condition"] == (
        "service_completed_successfully")
    assert services["node"]["depends_on"]["nats-auth"]["condition"] == "service_healthy"
    # the auth service makes the node's address a node: the address of the node's key
    node_key = services["node"].get("environment", {}).get("CONNEXT_NODE_KEY", ANVIL_DEV_KEY_1)
    assert services["nats-auth"]["environment"]["CONNEXT_NATS_NODES"] == (
        Signer.from_hex(node_key).address)
    assert services["node"]["depends_on"]["deploy"]["condition"] == (
        "service_completed_successfully")
    assert services["deploy"]["depends_on"]["chain"]["condition"] == "service_healthy"
    assert services["web"]["depends_on"]["node"]["condition"] == "service_healthy"
    published = {"chain": ("CONNEXT_CHAIN_PORT", 8545), "nats": ("CONNEXT_NATS_PORT", 4222),
                 "node": ("CONNEXT_NODE_PORT", 8000), "oracle": ("CONNEXT_ORACLE_PORT", 8010),
                 "web": ("CONNEXT_WEB_PORT", 3000)}
    for name, (variable, port) in published.items():  # the variables `make start` reads
        assert services[name]["ports"] == [f"127.0.0.1:${{{variable}:-{port}}}:{port}"], name
    assert services["web"]["environment"]["CONNEXT_ORACLE_URL"] == "http://oracle:8010"
    for name in ("chain", "postgres", "nats-auth", "node", "oracle", "web"):
        assert "healthcheck" in services[name], name


def test_users_get_official_images_and_the_offline_stand_ins_stay_in_the_test_override(
        ) -> None:
    services = compose()["services"]
    assert services["nats"]["image"].startswith("nats:")
    assert services["postgres"]["image"].startswith("postgres:")
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ARG PYTHON_IMAGE=python:3.11-slim\n" in dockerfile
    assert re.search(r"^ARG NODE_IMAGE=node:\d+-slim$", dockerfile, re.M)
    assert "npm ci " in dockerfile  # the lock file as committed
    override = yaml.safe_load((ROOT / "tests" / "compose" / "offline.yml").read_text())
    for name, service in override["services"].items():
        assert set(service) <= {"build", "image"}, name  # images only, nothing else changes
        assert service["image"].startswith("connext-compose-test/"), name


def test_every_connext_service_command_is_a_real_connext_command() -> None:
    services = compose()["services"]
    ours = {name: s for name, s in services.items() if s.get("build") == "."}
    assert set(ours) == {"chain", "deploy", "nats-config", "nats-auth", "node", "oracle", "web"}
    for name, service in ours.items():
        parser().parse_args(service["command"])  # exits (SystemExit) if it does not exist
        health = service.get("healthcheck", {}).get("test")
        if health:
            assert health[:2] == ["CMD", "connext"], name
            parser().parse_args(health[2:])


def test_chain_health_and_deploy_commands_work_as_compose_runs_them(tmp_path: Path) -> None:
    port = free_port()
    chain = subprocess.Popen([CONNEXT, "chain", "--port", str(port), "--state",
                              str(tmp_path / "state.json")], stdout=subprocess.PIPE, text=True)
    try:
        assert chain.stdout is not None
        assert "chain ready" in chain.stdout.readline()
        url = f"http://127.0.0.1:{port}"
        assert subprocess.run([CONNEXT, "health", "--rpc-url", url]).returncode == 0
        deploy = compose()["services"]["deploy"]
        swap = {"http://chain:8545": url,
                "/data/deployments.json": str(tmp_path / "deployments.json")}
        for _run in ("first", "again (a restarted stack): nothing more is minted"):
            out = subprocess.run(
                [CONNEXT, *(swap.get(a, a) for a in deploy["command"])],
                env={**os.environ, **deploy["environment"]}, capture_output=True, text=True,
                check=True,
            ).stdout
            deployment = json.loads(out)
            assert deployment["chain_id"] == 31337
            _the_faucet_and_the_node_hold_test_tokens(url, deployment["test_token"])
        _the_oracle_runs_as_compose_runs_it(url, tmp_path / "deployments.json")
    finally:
        chain.send_signal(signal.SIGTERM)
        chain.wait(30)
    assert chain.returncode == 0
    assert (tmp_path / "state.json").exists(), "the chain state is dumped on exit"
    time.sleep(0.1)
    assert subprocess.run([CONNEXT, "health", "--rpc-url", f"http://127.0.0.1:{port}"],
                          capture_output=True).returncode == 1


def _the_faucet_and_the_node_hold_test_tokens(chain_url: str, token: str) -> None:
    w3 = Web3(Web3.HTTPProvider(chain_url))
    test_token = contract(w3, "TestToken", token)
    faucet = Account.from_key(compose()["services"]["web"]["environment"]["CONNEXT_FAUCET_KEY"])
    node = Account.from_key(ANVIL_DEV_KEY_1)  # the node's key when CONNEXT_NODE_KEY is unset
    assert "CONNEXT_NODE_KEY" not in compose()["services"]["node"]["environment"]
    for owner in (faucet.address, node.address):
        assert test_token.functions.balanceOf(owner).call() == TEST_TOKEN_MINT, owner


def _run_until_healthy(name: str, swap: dict[str, str], env: dict[str, str] | None = None
                       ) -> None:
    """Start compose service `name`'s command (its arguments swapped by `swap`: ports,
    hosts, paths), wait until the service's own healthcheck passes, stop it."""
    service = compose()["services"][name]
    process = subprocess.Popen([CONNEXT, *(swap.get(a, a) for a in service["command"])],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        health = service["healthcheck"]["test"][2:]
        for old, new in swap.items():
            health = [h.replace(f":{old}", f":{new}") if old.isdigit() else h for h in health]
        deadline = time.monotonic() + 30
        while subprocess.run([CONNEXT, *health], capture_output=True).returncode != 0:
            assert process.poll() is None and time.monotonic() < deadline, f"{name} did not start"
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def _the_oracle_runs_as_compose_runs_it(chain_url: str, deployment_file: Path) -> None:
    _run_until_healthy("oracle", {"8010": str(free_port()), "0.0.0.0": "127.0.0.1",
                                  "http://chain:8545": chain_url,
                                  "/data/deployments.json": str(deployment_file)})


def test_the_web_service_runs_as_compose_runs_it(tmp_path: Path) -> None:
    """`connext web` with the compose service's arguments serves the wallet and answers the
    compose healthcheck (the network behind it is not needed for that)."""
    service = compose()["services"]["web"]
    env = {**os.environ, **service["environment"], "CONNEXT_WEB_DATA_DIR": str(tmp_path)}
    _run_until_healthy("web", {"3000": str(free_port()), "0.0.0.0": "127.0.0.1"}, env)
