"""Start, drive and stop a local anvil chain (Foundry) as a child process.

Used by tests, benchmarks and `connext start`: picks a free port, waits until the chain
answers JSON-RPC, exposes the dev accounts' keys (read from anvil's own --config-out, never
hard-coded) and the time-travel calls. It only ever stops the process it started, by pid.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from eth_utils.address import to_checksum_address

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CHAIN_ID = 31337
DEFAULT_MNEMONIC = "test test test test test test test test test test test junk"


class AnvilError(RuntimeError):
    """anvil could not be found, did not start, or refused a JSON-RPC call."""


@dataclass(frozen=True, slots=True)
class DevAccount:
    """A funded dev account of the local chain."""

    address: str
    private_key: str


def find_anvil_binary() -> Path:
    """ANVIL_BIN, else the npm package's native binary, its node shim, or `anvil` on PATH."""
    explicit = os.environ.get("ANVIL_BIN")
    if explicit:
        return Path(explicit)
    modules = REPO_ROOT / "node_modules"
    # the native binary, not the node shim: then our pid is anvil's pid
    for native in sorted(modules.glob("@foundry-rs/anvil-*/bin/anvil")):
        if os.access(native, os.X_OK):
            return native
    shim = modules / ".bin" / "anvil"
    if shim.exists():
        return shim
    on_path = shutil.which("anvil")
    if on_path:
        return Path(on_path)
    raise AnvilError("anvil not found: run `npm install` or set ANVIL_BIN")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the caller retries if it is taken since)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class Anvil:
    """One anvil process. Use `start()`/`stop()` or a `with` block."""

    def __init__(
        self,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        chain_id: int = DEFAULT_CHAIN_ID,
        accounts: int = 10,
        balance_ether: int = 10_000,
        mnemonic: str = DEFAULT_MNEMONIC,
        block_time: float | None = None,
        extra_args: Sequence[str] = (),
        binary: Path | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.host = host
        self.chain_id = chain_id
        self._requested_port = port
        self._port: int | None = None
        self._args = [
            "--chain-id",
            str(chain_id),
            "--accounts",
            str(accounts),
            "--balance",
            str(balance_ether),
            "--mnemonic",
            mnemonic,
            "--host",
            host,
            *([] if block_time is None else ["--block-time", str(block_time)]),
            *extra_args,
        ]
        self._binary = binary
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._accounts: tuple[DevAccount, ...] = ()
        self._request_id = 0

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> Anvil:
        """Start anvil and wait until it answers; retries on a port taken meanwhile."""
        if self._process is not None:
            raise AnvilError("anvil is already running")
        binary = self._binary or find_anvil_binary()
        attempts = 1 if self._requested_port is not None else 3
        last_error: AnvilError | None = None
        for _ in range(attempts):
            port = self._requested_port or free_port(self.host)
            try:
                self._launch(binary, port)
                return self
            except AnvilError as exc:
                last_error = exc
                self.stop()
        assert last_error is not None
        raise last_error

    def _launch(self, binary: Path, port: int) -> None:
        self._workdir = tempfile.TemporaryDirectory(prefix="anvil-")
        workdir = Path(self._workdir.name)
        config = workdir / "config.json"
        log = (workdir / "anvil.log").open("wb")
        try:
            self._process = subprocess.Popen(
                [str(binary), "--port", str(port), "--config-out", str(config), *self._args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        self._port = port
        deadline = time.monotonic() + self._startup_timeout
        while True:
            if self._process.poll() is not None:
                raise AnvilError(f"anvil exited at startup: {self._log_tail()}")
            try:
                answered = int(self.rpc("eth_chainId"), 16)
                self._accounts = _read_accounts(config)
                break
            except (OSError, ValueError, KeyError, AnvilError):
                pass  # not listening yet, or the config file is not written yet
            if time.monotonic() > deadline:
                raise AnvilError(f"anvil did not answer within {self._startup_timeout}s")
            time.sleep(0.05)
        if answered != self.chain_id:
            raise AnvilError(f"anvil answers chain id {answered}, expected {self.chain_id}")

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate our anvil by pid, wait, kill it if it does not exit in `timeout`."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout)
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> Anvil:
        return self if self.running else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what callers need -------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise AnvilError("anvil is not running")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise AnvilError("anvil is not running")
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def accounts(self) -> tuple[DevAccount, ...]:
        """The funded dev accounts, in anvil's order."""
        return self._accounts

    @property
    def private_keys(self) -> tuple[str, ...]:
        """0x-prefixed private keys of the dev accounts."""
        return tuple(a.private_key for a in self._accounts)

    # -- JSON-RPC ----------------------------------------------------------------------

    def rpc(self, method: str, params: Sequence[Any] = ()) -> Any:
        """One JSON-RPC call; AnvilError carries the node's error message."""
        self._request_id += 1
        body = json.dumps(
            {"jsonrpc": "2.0", "id": self._request_id, "method": method, "params": list(params)}
        ).encode()
        request = urllib.request.Request(
            self.url, data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            reply = json.loads(response.read())
        if "error" in reply:
            raise AnvilError(f"{method}: {reply['error'].get('message', reply['error'])}")
        return reply.get("result")

    def block_timestamp(self, block: str | int = "latest") -> int:
        tag = block if isinstance(block, str) else hex(block)
        return int(self.rpc("eth_getBlockByNumber", [tag, False])["timestamp"], 16)

    def increase_time(self, seconds: int) -> None:
        """Move the chain clock forward; the next mined block sees it."""
        self.rpc("evm_increaseTime", [int(seconds)])

    def set_next_block_timestamp(self, timestamp: int) -> None:
        self.rpc("evm_setNextBlockTimestamp", [int(timestamp)])

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", [hex(blocks)])

    def snapshot(self) -> str:
        """An id to `revert` to: the whole chain state, clock included."""
        snapshot_id: str = self.rpc("evm_snapshot")
        return snapshot_id

    def revert(self, snapshot_id: str) -> None:
        """Restore a snapshot (each snapshot can be reverted to once)."""
        if not self.rpc("evm_revert", [snapshot_id]):
            raise AnvilError(f"unknown snapshot {snapshot_id}")

    def set_balance(self, address: str, wei: int) -> None:
        self.rpc("anvil_setBalance", [address, hex(wei)])

    def _log_tail(self) -> str:
        if self._workdir is None:
            return ""
        log = Path(self._workdir.name) / "anvil.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""


def _read_accounts(config: Path) -> tuple[DevAccount, ...]:
    data = json.loads(config.read_text())
    addresses: list[str] = data["available_accounts"]
    keys: list[str] = data["private_keys"]
    return tuple(
        DevAccount(to_checksum_address(a), k) for a, k in zip(addresses, keys, strict=True)
    )


def start_anvil(**kwargs: Any) -> Anvil:
    """Start an anvil on a free port; see `Anvil` for the options."""
    return Anvil(**kwargs).start()
