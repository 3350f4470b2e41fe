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

from ..protocol.channel import DEFAULT_BOUNDS, Bounds
from ..protocol.errors import TimeoutOutOfBounds
from ..protocol.types import ETH, Address
from ..store.store import sync_level
from .swapconfig import SwapConfig

ANVIL_DEV_KEY_1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
"""anvil's second dev account: the node's key on the local stack (account 0 deploys)."""


@dataclass(frozen=True)
class CollateralProfile:
    """How much the node keeps on its side of a user's channel, per asset (base units).

    Before forwarding into a channel whose node balance does not cover the payment, the
    node deposits just in time: what the payment needs plus a buffer of ten such payments, at
    most `target`; its balance in one channel never grows beyond `cap` that way (a
    payment that would need more is refused). Collateral above `reclaim_threshold` is
    taken back down to `target` after a payment; a channel idle for the node's
    `idle_reclaim_after` gives back everything the node holds there.
    """

    threshold: int
    target: int
    reclaim_threshold: int
    cap: int = 10**19


DEFAULT_COLLATERAL = CollateralProfile(
    threshold=10**17, target=10**18, reclaim_threshold=10**19, cap=10**19
)


@dataclass(frozen=True)
class AssetLimits:
    """What the node accepts per asset (base units): the smallest routed payment and
    withdrawal, and the fee a withdrawal pays the node (it pays the withdrawal's gas).
    They make it expensive to have the node deploy channels, lock collateral and pay gas
    for dust."""

    min_payment: int = 10**9
    min_withdrawal: int = 10**14
    withdrawal_fee: int = 0


DEFAULT_LIMITS = AssetLimits()



METRICS_ACCESS = ("local", "admin", "public")


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
    metrics_access: str = "local"
    """Who may read /metrics: "local" (requests from this machine), "admin" (the admin
    token) or "public"."""
    channel_timeout: int = 24 * 3600
    """Dispute window of new channels, seconds."""
    bounds: Bounds = DEFAULT_BOUNDS
    """The channel and transfer timeouts the node accepts (and proposes within)."""
    reveal_delta: int = 600
    """Seconds by which a forwarded hashlock expires before the sender's: time to notice a
    sender that does not settle and to get the preimage registered on chain before the
    sender's lock expires."""
    reveal_margin: int = 300
    """The node registers a preimage on chain when a sender has not settled and its lock
    expires within this many seconds."""
    dispute_unsettled_after: int = 3600
    """Seconds after a sender's lock expired (its preimage registered in time) that the
    node waits for the sender to settle before it disputes the sender's channel."""
    fee_fixed: int = 0
    """Fee in base units the node keeps from each routed payment."""
    collateral: Mapping[Address, CollateralProfile] = field(default_factory=dict)
    limits: Mapping[Address, AssetLimits] = field(default_factory=dict)
    setups_per_hour: int = 30
    """Channel setup requests one identity may make per hour (0: no limit)."""
    withdrawals_per_hour: int = 30
    """Withdrawals one identity may start per hour (0: no limit)."""
    reclaim_interval: float = 600.0
    """Seconds between rounds of taking idle collateral back."""
    idle_reclaim_after: float = 24 * 3600.0
    """A channel without updates for this long gives its collateral back to the node."""
    liquidity_interval: float = 30.0
    """Seconds between reads of the node's own on-chain balance per asset."""
    low_liquidity: Mapping[Address, int] = field(default_factory=dict)
    """Per asset, the on-chain balance below which the node reports low liquidity (log,
    metric, admin API); default: the asset's collateral target."""
    sweep_interval: float = 1.0
    """Seconds between sweeps for expired payments and undelivered forwards."""
    request_timeout: float = 10.0
    shared_database: bool = False
    """True when several node processes serve from one database (replicas)."""
    sqlite_sync: str = "full"
    """SQLite's durability for the node's store: `full` (fsync, group committed) or
    `normal` (survives the process being killed, not power loss)."""
    swaps: SwapConfig = field(default_factory=SwapConfig)
    """Supported assets, swap pairs, rates and quotes (connext/node/swapconfig.py)."""

    def check(self) -> None:
        """Refuse settings that would make the node unsafe (ValueError, with the reason)."""
        try:
            self.bounds.check_channel_timeout(self.channel_timeout)
        except TimeoutOutOfBounds as exc:
            raise ValueError(f"CONNEXT_CHANNEL_TIMEOUT: {exc.message}") from exc
        if not 0 < self.reveal_margin < self.reveal_delta:
            raise ValueError(
                "CONNEXT_REVEAL_MARGIN must be positive and below CONNEXT_REVEAL_DELTA: the "
                "node registers a preimage within the margin, before the sender's lock expires")
        if self.metrics_access not in METRICS_ACCESS:
            raise ValueError(f"CONNEXT_NODE_METRICS must be one of {', '.join(METRICS_ACCESS)}")
        if self.dispute_unsettled_after < 0:
            raise ValueError("CONNEXT_DISPUTE_UNSETTLED_AFTER must not be negative")
        for asset, profile in self.collateral.items():
            if min(profile.threshold, profile.target, profile.reclaim_threshold) < 0 or (
                    profile.cap <= 0):
                raise ValueError(f"CONNEXT_COLLATERAL of {asset}: amounts must not be "
                                 "negative and the cap must be positive")
        if self.reclaim_interval <= 0 or self.liquidity_interval <= 0:
            raise ValueError("CONNEXT_RECLAIM_INTERVAL and CONNEXT_LIQUIDITY_INTERVAL must be "
                             "positive")
        self.swaps.check()

    def collateral_for(self, asset_id: Address) -> CollateralProfile:
        return self.collateral.get(asset_id, DEFAULT_COLLATERAL)

    def low_liquidity_for(self, asset_id: Address) -> int:
        return self.low_liquidity.get(asset_id, self.collateral_for(asset_id).target)

    def limits_for(self, asset_id: Address) -> AssetLimits:
        return self.limits.get(asset_id, DEFAULT_LIMITS)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NodeConfig:
        env = os.environ if env is None else env
        collateral: dict[Address, CollateralProfile] = {}
        if env.get("CONNEXT_COLLATERAL"):
            # {"0x00..00": {"threshold": "...", "target": "...", "reclaimThreshold": "...",
            #               "cap": "..."}}
            for asset, profile in json.loads(env["CONNEXT_COLLATERAL"]).items():
                collateral[asset] = CollateralProfile(
                    int(profile["threshold"]), int(profile["target"]),
                    int(profile["reclaimThreshold"]),
                    int(profile.get("cap", DEFAULT_COLLATERAL.cap)),
                )
        limits: dict[Address, AssetLimits] = {}
        if env.get("CONNEXT_LIMITS"):
            # {"0x00..00": {"minPayment": "...", "minWithdrawal": "...", "withdrawalFee": "..."}}
            for asset, given in json.loads(env["CONNEXT_LIMITS"]).items():
                limits[asset] = AssetLimits(
                    int(given.get("minPayment", DEFAULT_LIMITS.min_payment)),
                    int(given.get("minWithdrawal", DEFAULT_LIMITS.min_withdrawal)),
                    int(given.get("withdrawalFee", DEFAULT_LIMITS.withdrawal_fee)),
                )

        def number(name: str, default: float) -> int:
            return int(env.get(name, str(int(default))))
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
            metrics_access=env.get("CONNEXT_NODE_METRICS", cls.metrics_access),
            channel_timeout=number("CONNEXT_CHANNEL_TIMEOUT", cls.channel_timeout),
            bounds=Bounds(
                min_channel_timeout=number("CONNEXT_MIN_CHANNEL_TIMEOUT",
                                           DEFAULT_BOUNDS.min_channel_timeout),
                max_channel_timeout=number("CONNEXT_MAX_CHANNEL_TIMEOUT",
                                           DEFAULT_BOUNDS.max_channel_timeout),
                min_transfer_timeout=number("CONNEXT_MIN_TRANSFER_TIMEOUT",
                                            DEFAULT_BOUNDS.min_transfer_timeout),
                max_transfer_timeout=number("CONNEXT_MAX_TRANSFER_TIMEOUT",
                                            DEFAULT_BOUNDS.max_transfer_timeout),
            ),
            reveal_delta=number("CONNEXT_REVEAL_DELTA", cls.reveal_delta),
            reveal_margin=number("CONNEXT_REVEAL_MARGIN", cls.reveal_margin),
            dispute_unsettled_after=number("CONNEXT_DISPUTE_UNSETTLED_AFTER",
                                           cls.dispute_unsettled_after),
            fee_fixed=int(env.get("CONNEXT_FEE", "0")),
            collateral=collateral or {ETH: DEFAULT_COLLATERAL},
            limits=limits,
            setups_per_hour=number("CONNEXT_SETUPS_PER_HOUR", cls.setups_per_hour),
            withdrawals_per_hour=number("CONNEXT_WITHDRAWALS_PER_HOUR",
                                        cls.withdrawals_per_hour),
            reclaim_interval=float(env.get("CONNEXT_RECLAIM_INTERVAL",
                                           str(cls.reclaim_interval))),
            idle_reclaim_after=float(env.get("CONNEXT_IDLE_RECLAIM_AFTER",
                                             str(cls.idle_reclaim_after))),
            liquidity_interval=float(env.get("CONNEXT_LIQUIDITY_INTERVAL",
                                             str(cls.liquidity_interval))),
            low_liquidity={asset: int(amount) for asset, amount
                           in json.loads(env.get("CONNEXT_LOW_LIQUIDITY") or "{}").items()},
            shared_database=env.get("CONNEXT_NODE_REPLICAS", "1") != "1",
            sqlite_sync=sync_level(env.get("CONNEXT_SQLITE_SYNC"), default=cls.sqlite_sync),
            swaps=SwapConfig.from_env(env),
        )
