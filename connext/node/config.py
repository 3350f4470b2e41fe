"""The node's configuration: from the environment, with defaults for the local stack.

Every setting has one name (`CONNEXT_*`), documented in docs/NODE.md. Secrets (the node's
private key, the admin token) are read here and never logged.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..protocol.types import ETH, Address

ANVIL_DEV_KEY_1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
"""anvil's second dev account: the node's key on the local stack (account 0 deploys)."""


@dataclass(frozen=True)
class CollateralProfile:
    """How much the node keeps on its side of a user's channel, per asset (base units).

    Before forwarding into a channel whose node balance is below what the payment needs,
    or below `threshold`, the node tops it up to `target` (or to the payment, if larger);
    idle collateral above `reclaim_threshold` may be withdrawn back to the node.
    """

    threshold: int
    target: int
    reclaim_threshold: int


DEFAULT_COLLATERAL = CollateralProfile(
    threshold=10**17, target=10**18, reclaim_threshold=10**19
)


@dataclass(frozen=True)
class NodeConfig:
    private_key: str
    nats_url: str = "nats://127.0.0.1:4222"
    chain_url: str = "http://127.0.0.1:8545"
    database_url: str = "sqlite:///.data/node.sqlite"
    deployment_file: Path = Path(".data/deployments.json")
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    admin_token: str | None = None
    channel_timeout: int = 24 * 3600
    """Dispute window of new channels, seconds."""
    forward_expiry_margin: int = 5
    """Seconds by which a forwarded hashlock expires before the sender's."""
    fee_fixed: int = 0
    """Fee in base units the node keeps from each routed payment."""
    collateral: Mapping[Address, CollateralProfile] = field(default_factory=dict)
    sweep_interval: float = 1.0
    """Seconds between sweeps for expired payments and undelivered forwards."""
    request_timeout: float = 10.0
    shared_database: bool = False
    """True when several node processes serve from one database (replicas)."""

    def collateral_for(self, asset_id: Address) -> CollateralProfile:
        return self.collateral.get(asset_id, DEFAULT_COLLATERAL)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NodeConfig:
        env = os.environ if env is None else env
        collateral: dict[Address, CollateralProfile] = {}
        if env.get("CONNEXT_COLLATERAL"):
            # {"0x00..00": {"threshold": "...", "target": "...", "reclaimThreshold": "..."}}
            for asset, profile in json.loads(env["CONNEXT_COLLATERAL"]).items():
                collateral[asset] = CollateralProfile(
                    int(profile["threshold"]), int(profile["target"]),
                    int(profile["reclaimThreshold"]),
                )
        return cls(
            private_key=env.get("CONNEXT_NODE_KEY", ANVIL_DEV_KEY_1),
            nats_url=env.get("CONNEXT_NATS_URL", cls.nats_url),
            chain_url=env.get("CONNEXT_CHAIN_URL", cls.chain_url),
            database_url=env.get("CONNEXT_NODE_DATABASE_URL",
                                 env.get("DATABASE_URL", cls.database_url)),
            deployment_file=Path(env.get("CONNEXT_DEPLOYMENT_FILE", str(cls.deployment_file))),
            http_host=env.get("CONNEXT_NODE_HOST", cls.http_host),
            http_port=int(env.get("CONNEXT_NODE_PORT", str(cls.http_port))),
            admin_token=env.get("CONNEXT_ADMIN_TOKEN") or None,
            channel_timeout=int(env.get("CONNEXT_CHANNEL_TIMEOUT", str(cls.channel_timeout))),
            fee_fixed=int(env.get("CONNEXT_FEE", "0")),
            collateral=collateral or {ETH: DEFAULT_COLLATERAL},
            shared_database=env.get("CONNEXT_NODE_REPLICAS", "1") != "1",
        )
