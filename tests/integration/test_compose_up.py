"""docker-compose up for real: the images built, the whole stack started on free ports and
healthy, a payment and a cash-out made in Chromium at the published web port and checked
on the chain, then `docker-compose down -v` leaves nothing of the project behind.

`make test-compose` runs it (marker `compose`; `make test` leaves it out). It needs a
Docker engine: the one reachable, else dockerd started as root (tests/compose/engine.py);
it skips only where neither is possible. Offline stand-ins replace the official images
(tests/compose/offline.yml, built by tests/compose/images.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from typing import Any

import nats
import pytest
from eth_account import Account
from playwright.sync_api import Browser, Page, expect, sync_playwright
from web3 import Web3

from connext.chain.contracts import contract
from connext.devstack import free_port
from connext.messaging.natsauth import login_options
from connext.protocol.signing import Signer
from tests.compose.engine import Engine, EngineUnavailable, docker_engine
from tests.compose.images import OVERRIDE, ROOT, build_stand_ins, prune_dangling_images
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.test_wallet import address_of, faucet, send

pytestmark = [pytest.mark.compose, pytest.mark.timeout(3600)]

PUBLISHED = {"chain": "CONNEXT_CHAIN_PORT", "nats": "CONNEXT_NATS_PORT",
             "node": "CONNEXT_NODE_PORT", "oracle": "CONNEXT_ORACLE_PORT",
             "web": "CONNEXT_WEB_PORT"}
"""Service -> the variable docker-compose.yml publishes its port on."""
HEALTHY_WITHIN_S = 300
SLOW = 60_000  # ms: a step that waits on the chain, in containers on a busy machine
ETHER = 10**18


class Compose:
    """docker-compose on the user's file plus the offline override, as project `name`."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.name = name
        self.engine = engine
        self.ports = free_ports()

    def __call__(self, *args: str, timeout: float = 900) -> str:
        command = ["docker-compose", "--no-ansi", "-p", self.name,
                   "-f", str(ROOT / "docker-compose.yml"), "-f", str(OVERRIDE), *args]
        env = {**self.engine.env, **{PUBLISHED[s]: str(p) for s, p in self.ports.items()}}
        result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True,
                                timeout=timeout)
        assert result.returncode == 0, (f"docker-compose {' '.join(args)} failed:\n"
                                        f"{result.stdout}{result.stderr}")
        return result.stdout

    def containers(self) -> list[dict[str, Any]]:
        """`docker inspect` of every container of the project, running or not."""
        ids = self.engine.docker("ps", "-aq", "--filter", self._label).stdout.split()
        if not ids:
            return []
        found: list[dict[str, Any]] = json.loads(self.engine.docker("inspect", *ids).stdout)
        return found

    def leftovers(self, volumes: set[str]) -> dict[str, list[str]]:
        """What of the project still exists: containers, networks, volumes (named ones by
        label; `volumes` adds the anonymous ones its containers had)."""
        def listed(*args: str) -> list[str]:
            return self.engine.docker(*args, "--filter", self._label).stdout.split()

        still = {v for v in volumes
                 if self.engine.docker("volume", "inspect", v, check=False).returncode == 0}
        return {"containers": listed("ps", "-aq"), "networks": listed("network", "ls", "-q"),
                "volumes": sorted(set(listed("volume", "ls", "-q")) | still)}

    def up(self, attempts: int = 3) -> None:
        """`up -d`; again on other ports if one was taken since it was found free."""
        for attempt in range(1, attempts + 1):
            try:
                self("up", "-d")
                return
            except AssertionError as failed:
                if "already" not in str(failed) or attempt == attempts:
                    raise
                self("down", "-v", "--remove-orphans")
                self.ports = free_ports()

    @property
    def _label(self) -> str:
        return f"label=com.docker.compose.project={self.name}"


def free_ports() -> dict[str, int]:
    return {service: free_port() for service in PUBLISHED}


def test_compose_up_pays_and_cashes_out_in_the_browser_and_down_leaves_nothing(
        capsys: pytest.CaptureFixture[str]) -> None:
    def say(line: str) -> None:
        with capsys.disabled():
            print(f"[compose] {line}", flush=True)

    times: dict[str, float] = {}

    @contextmanager
    def timed(phase: str) -> Iterator[None]:
        began = time.monotonic()
        say(f"{phase} ...")
        yield
        times[phase] = time.monotonic() - began
        say(f"{phase}: {times[phase]:.0f} s")

    with ExitStack() as stack:
        with timed("engine"):
            try:
                engine = stack.enter_context(docker_engine())
            except EngineUnavailable as reason:
                pytest.skip(str(reason))
        where = engine.env.get("DOCKER_HOST", "the default socket")
        say(f"our own dockerd at {where}" if engine.dockerd else f"the engine at {where}")
        with timed("stand-ins"):
            build_stand_ins(engine, say)
        compose = Compose(engine, f"connexttest{secrets.token_hex(4)}")
        with timed("build"):
            compose("build", "--force-rm", timeout=1800)
        volumes: set[str] = set()
        try:
            with timed("up"):
                compose.up()
                say(f"project {compose.name} on ports {compose.ports}")
                _wait_until_healthy(compose)
            volumes = _volumes(compose)
            _nats_refuses_strangers(f"nats://127.0.0.1:{compose.ports['nats']}")
            deployment = json.loads(compose("exec", "-T", "node", "cat",
                                            "/data/deployments.json"))["31337"]
            with timed("drive"):
                _pay_and_cash_out_in_chromium(f"http://127.0.0.1:{compose.ports['web']}",
                                              f"http://127.0.0.1:{compose.ports['chain']}",
                                              deployment["test_token"])
        except BaseException:
            with suppress(Exception):
                say("docker-compose logs (tail):\n" + compose("logs", "--tail=40", timeout=120))
            raise
        finally:
            volumes |= _volumes(compose)
            with timed("down"):
                compose("down", "-v", "--remove-orphans", timeout=600)
        assert compose.leftovers(volumes) == {"containers": [], "networks": [],
                                              "volumes": []}
        if engine.dockerd is not None:
            prune_dangling_images(engine)  # superseded builds, in our own engine only
    total = sum(times.values())
    say("run time: " + ", ".join(f"{phase} {s:.0f} s" for phase, s in times.items())
        + f"; total {total:.0f} s")


def _nats_refuses_strangers(url: str) -> None:
    """The published NATS port runs with authorization: no login, no connection; a fresh
    key logs in but cannot read the node's subjects."""
    async def check() -> None:
        with pytest.raises(Exception, match=r"(?i)authorization"):
            await nats.connect(url, max_reconnect_attempts=0, allow_reconnect=False,
                               connect_timeout=5)
        errors: list[str] = []

        async def on_error(exc: Exception) -> None:
            errors.append(str(exc))

        nc = await nats.connect(url, error_cb=on_error, allow_reconnect=False,
                                **login_options(Signer.random()))
        await nc.subscribe("connext.>")
        await nc.flush()
        await asyncio.sleep(0.5)
        await nc.close()
        assert any("permissions violation" in e.lower() for e in errors), errors

    asyncio.run(check())


def _wait_until_healthy(compose: Compose) -> None:
    """Every service's container: healthy where it has a healthcheck, exited 0 for the
    one-shot deploy, running otherwise."""
    services = set(compose("config", "--services").split())
    deadline = time.monotonic() + HEALTHY_WITHIN_S
    while True:
        states = {c["Config"]["Labels"]["com.docker.compose.service"]: _state(c)
                  for c in compose.containers()}
        failed = {s: state for s, state in states.items()
                  if state in ("unhealthy", "dead", "restarting")
                  or (state.startswith("exited ") and state != "exited 0")}
        assert not failed, f"services failed: {failed}"
        pending = {s: states.get(s, "missing") for s in services
                   if states.get(s) not in ("healthy", "running", "exited 0")}
        if not pending:
            return
        assert time.monotonic() < deadline, (
            f"not healthy within {HEALTHY_WITHIN_S} s: {pending}")
        time.sleep(1)


def _state(container: dict[str, Any]) -> str:
    state = container["State"]
    if state["Status"] == "exited":
        return f"exited {state['ExitCode']}"
    health = state.get("Health")
    if state["Status"] == "running" and health:
        return str(health["Status"])  # starting, healthy, unhealthy
    return str(state["Status"])


def _volumes(compose: Compose) -> set[str]:
    return {m["Name"] for c in compose.containers() for m in c["Mounts"]
            if m["Type"] == "volume"}


def _pay_and_cash_out_in_chromium(web_url: str, chain_url: str, test_token: str) -> None:
    """Alice takes ETH and TEST from the faucet and pays Bob in both (the node collateralizes
    Bob's channel in each); Bob cashes out part of each to a fresh address, which the chain
    then holds to the wei."""
    assert os.path.exists(CHROMIUM), (f"no Chromium at {CHROMIUM}: `make test-compose` "
                                      "installs Debian's chromium as root")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            person = _people(browser, web_url)
            alice, bob = person(), person()
            assert address_of(alice) != address_of(bob)
            faucet(alice, "ETH", "1")
            faucet(alice, "TEST", "100")
            send(alice, address_of(bob), "0.25", "ETH")
            send(alice, address_of(bob), "10", "TEST")
            expect(bob.get_by_test_id("balance-ETH")).to_have_text("0.25", timeout=SLOW)
            expect(bob.get_by_test_id("balance-TEST")).to_have_text("10", timeout=SLOW)

            w3 = Web3(Web3.HTTPProvider(chain_url))
            token = contract(w3, "TestToken", test_token)
            external = Account.create().address
            assert w3.eth.get_balance(external) == 0
            assert token.functions.balanceOf(external).call() == 0
            for amount, symbol in (("0.1", "ETH"), ("4", "TEST")):
                tx = _cash_out(bob, external, amount, symbol)
                assert w3.eth.get_transaction_receipt(tx)["status"] == 1
            assert w3.eth.get_balance(external) == ETHER // 10
            assert token.functions.balanceOf(external).call() == 4 * ETHER
            bob.goto("/")
            expect(bob.get_by_test_id("balance-ETH")).to_have_text("0.15", timeout=SLOW)
            expect(bob.get_by_test_id("balance-TEST")).to_have_text("6", timeout=SLOW)
        finally:
            browser.close()


def _people(browser: Browser, web_url: str) -> Callable[[], Page]:
    def open_person() -> Page:
        page = browser.new_context(base_url=web_url).new_page()
        page.goto("/")
        expect(page.get_by_test_id("balance-ETH")).to_be_visible(timeout=SLOW)
        return page

    return open_person


def _cash_out(page: Page, to: str, amount: str, symbol: str) -> str:
    page.goto("/withdraw")
    page.get_by_label("To address").fill(to)
    page.get_by_label("Amount").fill(amount)
    page.get_by_label("Asset").select_option(label=symbol)
    page.get_by_role("button", name="Cash out").click()
    expect(page.get_by_test_id("withdraw-result")).to_have_attribute(
        "data-status", "confirmed", timeout=SLOW)
    tx = page.get_by_test_id("withdraw-tx").text_content() or ""
    assert re.fullmatch(r"0x[0-9a-fA-F]{64}", tx), tx
    return tx
