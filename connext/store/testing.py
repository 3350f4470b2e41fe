"""A throwaway PostgreSQL cluster for tests: initdb in a temp dir, start, make databases, stop.

For the store's tests and the node's integration tests alike. PostgreSQL refuses to run as
root, so as root every server command runs as the `postgres` user (via runuser) in a temp
dir it owns. It never touches a cluster it did not create, and removes its dir on stop.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

POSTGRES_BIN_DIRS = (
    "/usr/lib/postgresql/15/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/17/bin",
)
SERVICE_USER = "postgres"


def find_postgres_bin() -> Path | None:
    """The directory holding initdb and pg_ctl ($CONNEXT_POSTGRES_BIN first), or None."""
    candidates = [os.environ.get("CONNEXT_POSTGRES_BIN", ""), *POSTGRES_BIN_DIRS]
    for directory in candidates:
        if directory and (Path(directory) / "initdb").is_file() and (
            Path(directory) / "pg_ctl"
        ).is_file():
            return Path(directory)
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    return None


def unavailable_reason() -> str | None:
    """Why a cluster cannot be started here (for pytest.skip), or None if it can."""
    if find_postgres_bin() is None:
        return (
            "PostgreSQL server binaries (initdb, pg_ctl) not found in "
            f"{', '.join(POSTGRES_BIN_DIRS)} or on PATH; set CONNEXT_POSTGRES_BIN"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVICE_USER)
        except KeyError:
            return f"running as root and there is no '{SERVICE_USER}' user to run PostgreSQL"
        if shutil.which("runuser") is None:
            return "running as root and `runuser` is not available"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresCluster:
    """One private PostgreSQL server on 127.0.0.1 and a random free port.

    Durability is switched off (fsync, synchronous_commit): it is for tests only.
    """

    def __init__(self) -> None:
        reason = unavailable_reason()
        if reason is not None:
            raise RuntimeError(reason)
        bin_dir = find_postgres_bin()
        assert bin_dir is not None
        self.bin_dir = bin_dir
        self.as_root = os.geteuid() == 0
        self.dir = Path(tempfile.mkdtemp(prefix="connext-pg-"))
        self.data_dir = self.dir / "data"
        self.log_file = self.dir / "log"
        self.port = 0
        self.user = "postgres"
        self._started = False
        if self.as_root:
            account = pwd.getpwnam(SERVICE_USER)
            os.chown(self.dir, account.pw_uid, account.pw_gid)

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", SERVICE_USER, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False,
                                cwd=self.dir)
        if result.returncode != 0:
            log = self.log_file.read_text() if self.log_file.exists() else ""
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n"
                f"{result.stderr}\n{log[-2000:]}"
            )

    def start(self) -> PostgresCluster:
        self._run("initdb", "-D", str(self.data_dir), "-A", "trust", "-U", self.user,
                  "-E", "UTF8", "--no-sync")
        for attempt in range(5):  # another process may grab the free port first
            self.port = _free_port()
            options = (
                f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c max_connections=200"
            )
            try:
                self._run("pg_ctl", "-D", str(self.data_dir), "-o", options,
                          "-l", str(self.log_file), "-w", "-t", "60", "start")
            except RuntimeError:
                if attempt == 4:
                    raise
                time.sleep(0.2)
                continue
            self._started = True
            return self
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its directory."""
        try:
            if self._started:
                self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
                self._started = False
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL (psycopg driver) for a database of this cluster."""
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (a fresh random name by default) and return its URL."""
        name = name or f"test_{secrets.token_hex(6)}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user=self.user,
                             dbname="postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def create_schema(self, name: str | None = None, database: str = "postgres") -> str:
        """Create an empty schema and return a URL whose search_path is that schema only.

        To the store it is an empty database, and it takes milliseconds where a CREATE
        DATABASE takes a few hundred: what per-test isolation wants.
        """
        name = name or f"test_{secrets.token_hex(6)}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user=self.user,
                             dbname=database, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        return f"{self.url(database)}?options=-csearch_path%3D{name}"

    def drop_database(self, name: str) -> None:
        with psycopg.connect(host="127.0.0.1", port=self.port, user=self.user,
                             dbname="postgres", autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    """Start a cluster for the duration of the block."""
    with PostgresCluster() as cluster:
        yield cluster
