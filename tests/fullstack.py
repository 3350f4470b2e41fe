"""The whole local stack on free ports, for end-to-end and API tests.

A real anvil (contracts deployed, test tokens minted), a nats-server, a `connext node` and a
`connext web`, each a child process of the test run, stopped by pid (newest first) even
when a later start fails. `restart_web()` restarts only the wallet app, keeping its data
directory and secret, so wallets must survive it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from connext.chain.anvil import Anvil
from connext.chain.deploy import TEST_TOKEN_MINT, Deployment, deploy, mint_test_token
from connext.devstack import (
    LOCAL_SWAPS,
    NatsServer,
    NodeDaemon,
    OracleDaemon,
    WebDaemon,
    free_port,
)
from connext.protocol.signing import Signer


class FullStack:
    def __init__(self, root: Path | None = None) -> None:
        self._own_root = root is None
        self.root = root or Path(tempfile.mkdtemp(prefix="connext-stack-"))
        self.anvil = Anvil()
        self.nats = NatsServer(log_path=self.root / "nats.log")
        self.node_port = free_port()
        self.web_port = free_port()
        self.oracle_port = free_port()
        self.oracle_log = self.root / "oracle.log"
        self.oracle: NodeDaemon | None = None
        self.web_secret = secrets.token_hex(32)
        self.admin_token = secrets.token_hex(16)
        """The node's admin token, which the wallet's operator dashboard (/node) uses."""
        self.deployment_file = self.root / "deployments.json"
        self.node_log = self.root / "node.log"
        self.web_log = self.root / "web.log"
        self.node: NodeDaemon | None = None
        self.web: WebDaemon | None = None
        self.deployment: Deployment | None = None

    # --- addresses ----------------------------------------------------------------------

    @property
    def chain_url(self) -> str:
        return self.anvil.url

    @property
    def nats_url(self) -> str:
        return self.nats.url

    @property
    def node_url(self) -> str:
        return f"http://127.0.0.1:{self.node_port}"

    @property
    def oracle_url(self) -> str:
        return f"http://127.0.0.1:{self.oracle_port}"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> FullStack:
        try:
            self.anvil.start()
            self.nats.nodes = [Signer.from_hex(self.anvil.private_keys[1]).address]
            self.nats.start()
            deployer = self.anvil.private_keys[0]
            self.deployment = deploy(self.anvil.url, deployer,
                                     deployment_file=self.deployment_file)
            assert self.deployment.test_token is not None
            for account in self.anvil.accounts[:3]:
                mint_test_token(self.anvil.url, deployer, self.deployment.test_token,
                                account.address, TEST_TOKEN_MINT)
            self.node = NodeDaemon(self.node_env(), self.node_log).start()
            self.oracle = OracleDaemon({
                **os.environ, "CONNEXT_CHAIN_URL": self.anvil.url,
                "CONNEXT_DEPLOYMENT_FILE": str(self.deployment_file),
                "CONNEXT_ORACLE_PORT": str(self.oracle_port), "PYTHONUNBUFFERED": "1",
            }, self.oracle_log).start()
            self.web = WebDaemon(self.web_env(), self.web_log, self.web_port).start()
        except BaseException:
            self.stop()
            raise
        return self

    def node_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "CONNEXT_NODE_KEY": self.anvil.private_keys[1],
            "CONNEXT_NATS_URL": self.nats.url,
            "CONNEXT_CHAIN_URL": self.anvil.url,
            "CONNEXT_NODE_DATABASE_URL": f"sqlite:///{self.root / 'node.sqlite'}",
            "CONNEXT_DEPLOYMENT_FILE": str(self.deployment_file),
            "CONNEXT_NODE_PORT": str(self.node_port),
            "CONNEXT_SWAPS": LOCAL_SWAPS,  # the wallet's swaps, as on `make start`
            "CONNEXT_ADMIN_TOKEN": self.admin_token,
            "PYTHONUNBUFFERED": "1",
        }

    def web_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "CONNEXT_WEB_DATA_DIR": str(self.root / "web"),
            "CONNEXT_WEB_SECRET": self.web_secret,
            "CONNEXT_NATS_URL": self.nats.url,
            "CONNEXT_CHAIN_URL": self.anvil.url,
            "CONNEXT_NODE_URL": self.node_url,
            "CONNEXT_NODE_ADMIN_TOKEN": self.admin_token,
            "CONNEXT_DEPLOYMENT_FILE": str(self.deployment_file),
            "CONNEXT_WEB_HOST": "127.0.0.1",
            "CONNEXT_WEB_PORT": str(self.web_port),
            "CONNEXT_FAUCET_KEY": self.anvil.private_keys[0],
            "CONNEXT_WEB_NEW_WALLETS_PER_HOUR": "0",  # the tests open hundreds of wallets
            "CONNEXT_FAUCET_PER_HOUR": "0",  # ... and fund them (per wallet: the default)
            "CONNEXT_ORACLE_URL": f"http://127.0.0.1:{self.oracle_port}",
            "PYTHONUNBUFFERED": "1",
        }

    def restart_web(self) -> None:
        assert self.web is not None
        self.web.stop()
        self.web.start()

    def restart_node(self) -> None:
        assert self.node is not None
        self.node.stop()
        self.node.start()

    def stop(self) -> None:
        for child in (self.web, self.oracle, self.node):
            if child is not None:
                child.stop()
        self.nats.stop()
        self.anvil.stop()
        if self._own_root and os.environ.get("CONNEXT_KEEP_STACK") != "1":
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> FullStack:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def logs(self) -> str:
        """The node's and web app's logs (for a failing test's report)."""
        parts = []
        for path in (self.node_log, self.web_log):
            if path.exists():
                parts.append(f"--- {path.name}\n" + path.read_text(errors="replace")[-6000:])
        return "\n".join(parts)


def get_json(url: str, timeout: float = 10) -> Any:
    import json

    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())
