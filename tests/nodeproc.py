"""`connext node` processes for the tests, forked from a process that imported the node
once (web3, eth-account, SQLAlchemy and alembic take ~3 s to import; the suite starts the
node about a hundred times). Each child is a process of its own running the real CLI
entry point (`connext node`) with the given environment and its output in a log file:
what `subprocess.Popen([connext, "node"])` gave, without the import. Kept free of pytest
so that the fork server can import it.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

_PRELOAD = ["connext.cli", "connext.node.service", "tests.nodeproc"]
_context: Any = None


def _fork_server() -> Any:
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(_PRELOAD)
    return _context


def _run_node(env: dict[str, str], log_path: str) -> None:
    """In the child: the environment and output of a fresh `connext node`, then its main."""
    os.setpgrp()  # like a process of its own: a signal to the tests' group misses it
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    os.environ.clear()
    os.environ.update(env)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 (PYTHONUNBUFFERED)
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    from connext import cli

    code = 1
    try:
        code = cli.main(["node"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


class NodeChild:
    """The handle of a forked `connext node`: the part of `subprocess.Popen` the tests use
    (pid, poll, send_signal, kill, wait)."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self._process = _fork_server().Process(target=_run_node, args=(env, str(log_path)),
                                               daemon=False)
        self._process.start()
        self.pid: int = self._process.pid

    def poll(self) -> int | None:
        code: int | None = self._process.exitcode
        return code

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        code = self.poll()
        if code is None:
            raise subprocess.TimeoutExpired(["connext", "node"], timeout or 0)
        return code
