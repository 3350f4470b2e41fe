"""The node's store, compared: the same routed payments with SQLite FULL, SQLite NORMAL and
PostgreSQL as the node's database.

Each variant gets a fresh stack (anvil, nats-server, node) and a fresh database; only the
node's store differs (the clients keep the store's default). SQLite's mode is passed to the
node explicitly both ways (CONNEXT_SQLITE_SYNC), never left to the default. PostgreSQL is a
throwaway cluster (connext.store.testing), restarted with PostgreSQL's own durable settings
(fsync, synchronous_commit, full_page_writes on; the tests switch them off), so it is
compared with SQLite at equal durability; its server's CPU is reported next to the node's.
A probe times one small write transaction alone in each store (what a commit costs on this
disk) and multiplies it by the node's commits per payment (its write transactions, where
the node does not count commits apart): the time a payment would wait for the disk if the
node did not overlap its commits. It reports the issue's ratios; it never asserts.
"""

from __future__ import annotations

import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import psycopg

from connext.store.testing import SERVICE_USER, PostgresCluster, unavailable_reason

from .payments import route_payments, signature_floors
from .stack import bench_workdir, running_stack

PAIRS = 10
PAYMENTS_PER_PAIR = 30
SECONDS = 20.0
COMMITS = 200
"""Write transactions of the commit probe, one after another."""
DURABLE = ("-c fsync=on -c synchronous_commit=on -c full_page_writes=on "
           "-c max_connections=200")


def measure_stores(pairs: int = PAIRS, payments_per_pair: int = PAYMENTS_PER_PAIR,
                   seconds: float = SECONDS) -> dict[str, Any]:
    variants: dict[str, dict[str, Any]] = {}
    with bench_workdir("connext-bench-stores-") as workdir:
        for name, mode in (("sqlite_normal", "normal"), ("sqlite_full", "full")):
            (workdir / name).mkdir()
            commit_ms = _sqlite_commit_ms(workdir / name, mode)
            with running_stack(workdir / name, node_env={"CONNEXT_SQLITE_SYNC": mode}) as stack:
                run = route_payments(stack, workdir / name / "clients", pairs,
                                     payments_per_pair, seconds)
            run["store"] = f"SQLite, WAL, synchronous={mode.upper()}"
            run["commit_ms"] = commit_ms
            run["filesystem"] = _filesystem(workdir)
            variants[name] = run
        skipped = unavailable_reason()
        if skipped is None:
            with PostgresCluster() as cluster:
                settings = _restart_durable(cluster)
                commit_ms = _postgres_commit_ms(cluster)
                url = cluster.create_database()
                with running_stack(workdir / "postgresql", database_url=url) as stack:
                    run = route_payments(stack, workdir / "postgresql" / "clients", pairs,
                                         payments_per_pair, seconds,
                                         database_cpu=_server_cpu(cluster))
                run["store"] = f"PostgreSQL {settings.pop('server_version')}"
                run["server_settings"] = settings
                run["commit_ms"] = commit_ms
                run["filesystem"] = _filesystem(cluster.dir)
                variants["postgresql"] = run
    signature_floors(list(variants.values()))
    for run in variants.values():  # if the node's commits were not overlapped
        done = run["node_per_payment"]
        commits = done.get("db_commits", done["db_write_transactions"])
        run["commit_wait_ms_per_payment"] = round(run["commit_ms"] * commits, 2)
    ratios = {"full_over_normal": _ratio(variants, "sqlite_full", "sqlite_normal"),
              "postgresql_over_sqlite_full": _ratio(variants, "postgresql", "sqlite_full"),
              "postgresql_over_sqlite_normal": _ratio(variants, "postgresql", "sqlite_normal")}
    return {"pairs": pairs, "payments_per_pair": payments_per_pair, "seconds_per_run": seconds,
            "variants": variants, "ratios": ratios, "postgresql_skipped": skipped}


def _ratio(variants: dict[str, dict[str, Any]], over: str, under: str) -> float | None:
    if over not in variants or under not in variants:
        return None
    rate = float(variants[over]["payments_per_second"])
    return round(rate / float(variants[under]["payments_per_second"]), 2)


def _restart_durable(cluster: PostgresCluster) -> dict[str, str]:
    """Restart the cluster on its port with durability on; returns what the server says
    its settings are."""
    options = f"-p {cluster.port} -k {cluster.dir} -c listen_addresses=127.0.0.1 {DURABLE}"
    command = [str(cluster.bin_dir / "pg_ctl"), "-D", str(cluster.data_dir), "-o", options,
               "-l", str(cluster.log_file), "-w", "-t", "60", "restart"]
    if cluster.as_root:
        command = ["runuser", "-u", SERVICE_USER, "--", *command]
    subprocess.run(command, check=True, capture_output=True, cwd=cluster.dir)
    with psycopg.connect(host="127.0.0.1", port=cluster.port, user=cluster.user,
                         dbname="postgres") as conn:
        return {name: str(conn.execute(f"SHOW {name}").fetchone()[0])  # type: ignore[index]
                for name in ("server_version", "fsync", "synchronous_commit",
                             "full_page_writes", "wal_sync_method")}


def _sqlite_commit_ms(directory: Path, mode: str, commits: int = COMMITS) -> float:
    """How long one small write transaction takes, alone, in a SQLite file in `directory`
    (WAL, synchronous=`mode`): what a commit costs on this disk."""
    connection = sqlite3.connect(directory / f"commits-{mode}.sqlite", isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(f"PRAGMA synchronous={mode.upper()}")
        connection.execute("CREATE TABLE probe (id INTEGER PRIMARY KEY, body BLOB)")
        started = time.perf_counter()
        for _ in range(commits):
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("INSERT INTO probe (body) VALUES (?)", (bytes(256),))
            connection.execute("COMMIT")
        return round((time.perf_counter() - started) / commits * 1000, 3)
    finally:
        connection.close()


def _postgres_commit_ms(cluster: PostgresCluster, commits: int = COMMITS) -> float:
    """As `_sqlite_commit_ms`, in a database of the (durable) cluster."""
    with psycopg.connect(host="127.0.0.1", port=cluster.port, user=cluster.user,
                         dbname="postgres", autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_commit_probe (id serial PRIMARY KEY, body bytea)")
        started = time.perf_counter()
        for _ in range(commits):
            conn.execute("INSERT INTO bench_commit_probe (body) VALUES (%s)", (bytes(256),))
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_commit_probe")
    return round(elapsed / commits * 1000, 3)


def _server_cpu(cluster: PostgresCluster) -> Callable[[], float]:
    """Reads the CPU seconds of the cluster's server: the postmaster, its live backends and
    the ones it has reaped."""
    pid = int((cluster.data_dir / "postmaster.pid").read_text().split()[0])
    postmaster = psutil.Process(pid)

    def read() -> float:
        times = postmaster.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in postmaster.children(recursive=True):
            try:
                child_times = child.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += child_times.user + child_times.system
        return float(total)

    return read


def _filesystem(path: Path) -> str:
    """The type of the file system `path` is on (fsync is free on tmpfs)."""
    best = max((p for p in psutil.disk_partitions(all=True)
                if str(path.resolve()).startswith(p.mountpoint)),
               key=lambda p: len(p.mountpoint), default=None)
    return best.fstype if best else "unknown"


if __name__ == "__main__":
    import json

    print(json.dumps(measure_stores(), indent=2))
