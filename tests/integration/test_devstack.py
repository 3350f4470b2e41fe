"""`connext start` (what `make start` runs): the whole local stack up, reused, and stopped."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from web3 import Web3

from connext.chain.contracts import contract
from connext.devstack import free_port, port_is_open

CONNEXT = str(Path(sys.executable).parent / "connext")
ROOT = Path(__file__).resolve().parents[2]


def launch_stack(data_dir: Path, chain_port: int, nats_port: int,
                 node_port: int, web_port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [CONNEXT, "start", "--chain-port", str(chain_port), "--nats-port", str(nats_port),
         "--node-port", str(node_port), "--web-port", str(web_port),
         "--oracle-port", str(free_port()), "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def wait_for_banner(process: subprocess.Popen[str]) -> str:
    """What `connext start` printed up to "Press Ctrl-C to stop." (everything is up)."""
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Press Ctrl-C to stop." in line:
            return "".join(lines)
    process.kill()
    process.wait()
    raise AssertionError("stack did not come up:\n" + "".join(lines))


def start_stack(data_dir: Path, chain_port: int, nats_port: int,
                node_port: int, web_port: int) -> tuple[subprocess.Popen[str], str]:
    process = launch_stack(data_dir, chain_port, nats_port, node_port, web_port)
    return process, wait_for_banner(process)


def wait_for_node(process: subprocess.Popen[str], node_port: int) -> None:
    """Until the stack's node answers /healthz (the stack goes on with the oracle and the
    wallet app meanwhile)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{node_port}/healthz",
                                        timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    # the banner wait reports what the stack printed


def visit_wallet(web_port: int) -> tuple[str, str]:
    """Open the wallet's home page as a new browser would; returns the page and address."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with opener.open(f"http://localhost:{web_port}/", timeout=60) as response:
        page = response.read().decode()
    found = re.search(r'data-address="(0x[0-9a-fA-F]{40})"', page)
    return page, found.group(1) if found else ""


def stop_stack(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0, out
    return out


def test_start_deploys_mints_prints_and_stops_cleanly_then_reuses(tmp_path: Path) -> None:
    chain_port, nats_port, node_port = free_port(), free_port(), free_port()
    web_port = free_port()
    process = launch_stack(tmp_path, chain_port, nats_port, node_port, web_port)
    example: subprocess.Popen[str] | None = None
    try:
        # the SDK example pays between two fresh clients on this stack; it needs only the
        # chain, NATS and the node, so it runs while the stack starts the rest
        wait_for_node(process, node_port)
        example = subprocess.Popen(
            [sys.executable, str(ROOT / "examples" / "pay.py")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
            env={**os.environ, "CONNEXT_CHAIN_URL": f"http://127.0.0.1:{chain_port}",
                 "CONNEXT_NATS_URL": f"nats://127.0.0.1:{nats_port}",
                 "CONNEXT_NODE_URL": f"http://127.0.0.1:{node_port}",
                 "CONNEXT_DATA_DIR": str(tmp_path)},
        )
        banner = wait_for_banner(process)
        assert f"http://127.0.0.1:{chain_port}" in banner
        assert f"nats://127.0.0.1:{nats_port}" in banner
        deployment = json.loads((tmp_path / "deployments.json").read_text())["31337"]
        assert deployment["channel_factory"] in banner
        w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{chain_port}"))
        for address in [deployment["channel_factory"], deployment["transfer_registry"],
                        *deployment["definitions"].values(), deployment["test_token"]]:
            assert len(w3.eth.get_code(address)) > 0, address
        token = contract(w3, "TestToken", deployment["test_token"])
        for account in w3.eth.accounts[:10]:
            assert token.functions.balanceOf(account).call() > 0
        assert port_is_open(nats_port)
        with urllib.request.urlopen(f"http://127.0.0.1:{node_port}/healthz") as response:
            health = json.loads(response.read())
        assert health["status"] == "ok" and health["address"] in banner
        assert f"http://127.0.0.1:{node_port}" in banner

        # the wallet web app answers on the printed URL and gives a visitor a wallet
        assert f"open the wallet: http://localhost:{web_port}" in banner
        home, wallet = visit_wallet(web_port)
        assert "Your wallet" in home and wallet

        stdout, stderr = example.communicate(timeout=180)
        assert example.returncode == 0, stderr[-3000:]
        assert "payment: completed" in stdout
        assert "confirmed" in stdout
    finally:
        if example is not None and example.poll() is None:
            example.kill()
            example.wait()
        if process.returncode is None:  # else it never came up, and wait_for_banner said so
            out = stop_stack(process)
    assert "stopped" in out
    assert not port_is_open(chain_port) and not port_is_open(nats_port)
    assert not port_is_open(node_port) and not port_is_open(web_port)

    # Second run: the chain state came back from disk, so nothing is deployed again.
    process, banner = start_stack(tmp_path, chain_port, nats_port, node_port, web_port)
    try:
        assert deployment["channel_factory"] in banner
        again = json.loads((tmp_path / "deployments.json").read_text())["31337"]
        assert again == deployment
        # the wallet's keys were kept (encrypted with the secret in the data directory)
        assert (tmp_path / "web" / "secret").exists()
        assert (tmp_path / "web" / "wallets.sqlite").exists()
    finally:
        stop_stack(process)
    assert not port_is_open(chain_port) and not port_is_open(nats_port)
