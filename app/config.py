"""The wallet app's configuration, from `CONNEXT_*` environment variables.

Defaults fit the local stack that `make start` runs. The web secret encrypts every wallet's
keys at rest: without `CONNEXT_WEB_SECRET` a random one is created once in the data
directory, so wallets survive a restart. Documented in docs/WEB.md.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ANVIL_DEV_KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
"""anvil's first dev account: the faucet on local chains (chain id 31337) only."""

SERVERS = ("werkzeug", "gunicorn")
"""The HTTP servers `connext web` can run the app on (app/serving.py)."""


@dataclass(frozen=True)
class WebConfig:
    data_dir: Path = Path(".data/web")
    secret_key: str = ""
    nats_url: str = "nats://127.0.0.1:4222"
    chain_url: str = "http://127.0.0.1:8545"
    node_url: str = "http://127.0.0.1:8000"
    node_admin_token: str | None = None
    """The node's admin token: the operator dashboard (/node) reads the node's admin API with
    it, and a visitor must give it to see the dashboard. None turns the dashboard off."""
    deployment_file: Path = Path(".data/deployments.json")
    host: str = "127.0.0.1"
    port: int = 3000
    faucet_key: str | None = None
    """Key of a funded account that the faucet pays from; None disables the faucet."""
    public_url: str = ""
    """The base URL used in shareable links (default: the URL the request came in on)."""
    request_timeout: float = 10.0
    idle_seconds: float = 900.0
    """A wallet's client is closed after this long unused with no browser watching it
    (it reconnects on next use; the node keeps what arrived meanwhile)."""
    new_wallets_per_hour: int = 60
    """New wallets one client address may create per hour (browser first visits, restores,
    the demo, the API); 0 turns the limit off."""
    faucet_per_wallet_per_hour: int = 5
    """Faucet drips one wallet may take per hour (0: no limit)."""
    faucet_per_hour: int = 200
    """Faucet drips all wallets together may take per hour (0: no limit): the faucet also
    pays the gas wallets need to answer disputes, so nobody may drain it."""
    oracle_url: str = ""
    """A demo oracle (`connext oracle`) the wallet may ask for receipts; "" for none (a
    receipt is then pasted in)."""
    server: str = "werkzeug"
    """"werkzeug" (the development server) or "gunicorn" (production: app/serving.py)."""
    threads: int = 100
    """gunicorn's threads: each open page holds one for its live socket."""
    trusted_proxies: int = 0
    """Reverse proxies in front of the app whose X-Forwarded-For/-Proto/-Host it believes
    (0: none; the request is taken as it reached the server)."""
    testing: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WebConfig:
        env = os.environ if env is None else env
        data_dir = Path(env.get("CONNEXT_WEB_DATA_DIR", str(cls.data_dir)))
        faucet = env.get("CONNEXT_FAUCET_KEY", ANVIL_DEV_KEY_0)
        return cls(
            data_dir=data_dir,
            secret_key=env.get("CONNEXT_WEB_SECRET") or load_or_create_secret(data_dir),
            nats_url=env.get("CONNEXT_NATS_URL", cls.nats_url),
            chain_url=env.get("CONNEXT_CHAIN_URL", cls.chain_url),
            node_url=env.get("CONNEXT_NODE_URL", cls.node_url),
            node_admin_token=env.get("CONNEXT_NODE_ADMIN_TOKEN") or None,
            deployment_file=Path(env.get("CONNEXT_DEPLOYMENT_FILE",
                                         str(cls.deployment_file))),
            host=env.get("CONNEXT_WEB_HOST", cls.host),
            port=int(env.get("CONNEXT_WEB_PORT", str(cls.port))),
            faucet_key=faucet or None,
            public_url=env.get("CONNEXT_WEB_PUBLIC_URL", ""),
            idle_seconds=float(env.get("CONNEXT_WEB_IDLE_SECONDS", str(cls.idle_seconds))),
            new_wallets_per_hour=int(env.get("CONNEXT_WEB_NEW_WALLETS_PER_HOUR",
                                             str(cls.new_wallets_per_hour))),
            faucet_per_wallet_per_hour=int(env.get("CONNEXT_FAUCET_PER_WALLET_PER_HOUR",
                                                   str(cls.faucet_per_wallet_per_hour))),
            faucet_per_hour=int(env.get("CONNEXT_FAUCET_PER_HOUR", str(cls.faucet_per_hour))),
            oracle_url=env.get("CONNEXT_ORACLE_URL", "").rstrip("/"),
            server=env.get("CONNEXT_WEB_SERVER", cls.server),
            threads=int(env.get("CONNEXT_WEB_THREADS", str(cls.threads))),
            trusted_proxies=int(env.get("CONNEXT_WEB_TRUST_PROXY", "0") or "0"),
        )

    @property
    def database_url(self) -> str:
        return f"sqlite:///{(self.data_dir / 'wallets.sqlite').resolve()}"

    def client_database_url(self, address: str) -> str:
        """Each wallet's client keeps its channel in its own SQLite file."""
        return f"sqlite:///{(self.data_dir / 'channels' / f'{address}.sqlite').resolve()}"


def load_or_create_secret(data_dir: Path) -> str:
    path = data_dir / "secret"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(secret)
    return secret
