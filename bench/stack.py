"""The real stack the benchmarks run against: anvil, nats-server and `connext node`.

Each is a child process on 127.0.0.1 with the contracts deployed and the node funded and
collateralizing generously. The node's database is a SQLite file in the work dir unless the
caller gives another URL (a PostgreSQL database, say), and the caller's extra environment
reaches the node only (CONNEXT_SQLITE_SYNC, say). Everything is stopped by pid when the
`with` block ends; it never reuses a stack another process started. `bench_workdir` is
the temp dir a section keeps its databases and logs in.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from connext.chain.anvil import Anvil
from connext.chain.deploy import Deployment, deploy
from connext.devstack import NatsServer, NodeDaemon, free_port
from connext.protocol.signing import Signer

NODE_KEY = "0x" + "4e" * 32


@dataclass(frozen=True)
class Stack:
    anvil: Anvil
    nats: NatsServer
    deployment: Deployment
    node_address: str
    node_pid: int | None
    node_http_port: int
    node_database_url: str


@contextmanager
def running_stack(workdir: Path, database_url: str | None = None,
                  node_env: Mapping[str, str] | None = None) -> Iterator[Stack]:
    """A fresh anvil, nats-server and node; the node keeps its state at `database_url`
    (default: workdir/node.sqlite) and gets `node_env` on top of this process's env."""
    database_url = database_url or f"sqlite:///{workdir / 'node.sqlite'}"
    with Anvil() as anvil, \
            NatsServer(nodes=[Signer.from_hex(NODE_KEY).address]) as nats:
        deployment_file = workdir / "deployments.json"
        deployment = deploy(anvil.url, anvil.private_keys[0], deployment_file=deployment_file)
        node_signer = Signer.from_hex(NODE_KEY)
        http_port = free_port()
        anvil.set_balance(node_signer.address, 10**26)
        node = NodeDaemon({
            **os.environ,
            "CONNEXT_NODE_KEY": NODE_KEY,
            "CONNEXT_NATS_URL": nats.url,
            "CONNEXT_CHAIN_URL": anvil.url,
            "CONNEXT_NODE_DATABASE_URL": database_url,
            "CONNEXT_DEPLOYMENT_FILE": str(deployment_file),
            "CONNEXT_NODE_PORT": str(http_port),
            "CONNEXT_LOG_LEVEL": "WARNING",
            "CONNEXT_COLLATERAL": '{"0x0000000000000000000000000000000000000000": '
                                  '{"threshold": "0", "target": "1000000000000000000000", '
                                  '"reclaimThreshold": "0"}}',
            **(node_env or {}),
        }, workdir / "node.log").start()
        try:
            yield Stack(anvil, nats, deployment, node_signer.address, node.pid, http_port,
                        database_url)
        finally:
            node.stop()


@contextmanager
def bench_workdir(prefix: str) -> Iterator[Path]:
    """A temp dir for one section's databases and logs, removed afterwards unless
    CONNEXT_KEEP_STACK=1 (then its path is printed)."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield workdir
    finally:
        if os.environ.get("CONNEXT_KEEP_STACK") == "1":
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
