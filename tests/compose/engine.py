"""A Docker engine for the compose test: the one already reachable (DOCKER_HOST or the
default socket), else a dockerd of our own, started as root with its own socket, exec root
and data root (in the cache, so images survive to the next run) and stopped by its pid.
It never stops or reconfigures an engine it did not start.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "connext-compose"
"""What the compose test keeps between runs: the base image tarball, wheels, npm packages,
its dockerd's data root."""


DATA_ROOT = CACHE / "docker"
PIDFILE = CACHE / "dockerd.pid"


class EngineUnavailable(Exception):
    """No Docker engine is reachable and none can be started here (the reason says why)."""


@dataclass
class Engine:
    """A reachable Docker engine; `env` points docker and docker-compose at it."""

    env: dict[str, str]
    dockerd: subprocess.Popen[bytes] | None = None
    """Our own dockerd, or None when the engine was already there."""
    run_dir: Path | None = None
    log: Path | None = None
    made_bridge: bool = False
    """docker0 appeared with our dockerd: removed again when it stops."""
    started_in_s: float = 0.0
    _stopped: bool = field(default=False, repr=False)

    def docker(self, *args: str, check: bool = True, timeout: float = 600,
               input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(["docker", *args], env=self.env, capture_output=True,
                                text=input is None, input=input, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} failed ({result.returncode}):\n"
                               f"{result.stdout}{result.stderr}")
        return result  # type: ignore[return-value]

    def stop(self) -> None:
        """Stop our dockerd (SIGTERM, then SIGKILL) and the containerd it started."""
        if self.dockerd is None or self._stopped:
            return
        self._stopped = True
        _terminate(self.dockerd.pid, self.dockerd, timeout=60)
        assert self.run_dir is not None
        containerd_pid = self.run_dir / "exec" / "containerd" / "containerd.pid"
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
            pid = int(containerd_pid.read_text().strip())
            os.kill(pid, signal.SIGTERM)  # only if dockerd left it behind
        shutil.rmtree(self.run_dir, ignore_errors=True)
        if self.made_bridge:
            subprocess.run(["ip", "link", "delete", "docker0"], capture_output=True)


def _terminate(pid: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is not None:
        return
    os.kill(pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.kill(pid, signal.SIGKILL)
        process.wait()


def reachable(env: dict[str, str]) -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], env=env, capture_output=True,
                              timeout=30).returncode == 0
    except subprocess.TimeoutExpired:
        return False


@contextlib.contextmanager
def docker_engine(start_timeout: float = 120) -> Iterator[Engine]:
    """The engine to run on, for the duration of the block. One compose test at a time
    per cache (a lock), since two of our dockerds would share a data root."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # the classic builder: Debian's docker.io has no buildx for BuildKit
        env = {**os.environ, "DOCKER_BUILDKIT": "0"}
        if reachable(env):
            yield Engine(env)
            return
        engine = _start_dockerd(env, start_timeout)
        try:
            yield engine
        finally:
            engine.stop()


def _stop_leftover_dockerd() -> None:
    """A dockerd on our data root that a killed run left behind (we hold the lock, so no
    run uses it): stopped, or the new one could not start."""
    try:
        pid = int(PIDFILE.read_text().strip())
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ValueError):
        return
    if not command[0].endswith(b"dockerd") or str(DATA_ROOT).encode() not in command:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.5)


def _start_dockerd(env: dict[str, str], timeout: float) -> Engine:
    where = env.get("DOCKER_HOST", "the default socket")
    if os.geteuid() != 0:
        raise EngineUnavailable(f"no Docker engine answers at {where} and starting dockerd "
                                "needs root (CI runs as root)")
    missing = [b for b in ("dockerd", "docker", "docker-compose") if shutil.which(b) is None]
    if missing:
        raise EngineUnavailable(f"no Docker engine answers at {where} and {', '.join(missing)} "
                                "is not installed (`make test-compose` installs Debian's "
                                "docker.io and docker-compose as root)")
    _stop_leftover_dockerd()
    run_dir = Path(tempfile.mkdtemp(prefix="connext-dockerd-"))
    socket = run_dir / "docker.sock"
    log = CACHE / "dockerd.log"
    began = time.monotonic()
    had_bridge = Path("/sys/class/net/docker0").exists()
    with open(log, "wb") as out:
        dockerd = subprocess.Popen(
            ["dockerd", "--data-root", str(DATA_ROOT), "--exec-root", str(run_dir / "exec"),
             "--pidfile", str(PIDFILE), "-H", f"unix://{socket}"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    engine = Engine({**env, "DOCKER_HOST": f"unix://{socket}"}, dockerd, run_dir, log,
                    made_bridge=not had_bridge)
    deadline = time.monotonic() + timeout
    while not reachable(engine.env):
        if dockerd.poll() is not None or time.monotonic() > deadline:
            engine.stop()
            raise RuntimeError(f"dockerd did not start; its log ({log}):\n"
                               + log.read_text(errors="replace")[-4000:])
        time.sleep(0.5)
    engine.started_in_s = time.monotonic() - began
    return engine
