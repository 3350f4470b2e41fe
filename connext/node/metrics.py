"""Prometheus metrics of one node process (served at /metrics).

A registry of our own per Node, so several nodes in one process (tests) never share
counters. Labels are bounded sets (status, method, error code, asset), never user data.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from ..counters import COUNTS


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.channels = Counter("connext_channels_opened", "Channels set up by this node",
                                registry=self.registry)
        self.payments = Counter("connext_payments", "Routed payments by outcome",
                                ["status"], registry=self.registry)
        self.volume = Counter("connext_payment_volume", "Base units delivered by routed payments",
                              ["asset"], registry=self.registry)
        self.failures = Counter("connext_request_failures", "Requests answered with an error",
                                ["method", "code"], registry=self.registry)
        self.collateral = Counter("connext_collateral_deposited",
                                  "Base units the node deposited as collateral", ["asset"],
                                  registry=self.registry)
        self.deposits = Counter("connext_deposits_reconciled", "Deposit updates",
                                registry=self.registry)
        self.background_failures = Counter(
            "connext_background_failures",
            "Failed steps of the node's background work (retried on the next round)",
            ["task"], registry=self.registry)
        self.secrets_registered = Counter(
            "connext_secrets_registered",
            "Preimages the node registered on chain for senders that did not settle",
            registry=self.registry)
        self.channels_disputed = Counter(
            "connext_channels_disputed_by_node",
            "Channels the node disputed on chain to collect what a silent sender owes",
            registry=self.registry)
        self.collateral_reclaimed = Counter(
            "connext_collateral_reclaimed", "Base units of collateral the node took back",
            ["asset"], registry=self.registry)
        # --- operations (admin API and dashboard show the same numbers) ---
        self.fees = Counter("connext_fees", "Base units of fees the node kept from routed payments",
                            ["asset"], registry=self.registry)
        self.swaps = Counter(
            "connext_swaps", "Routed payments delivered in another asset than they were paid in",
            ["from_asset", "to_asset"], registry=self.registry)
        """Incremented by the swaps code: `metrics.swaps.labels(from_asset=a, to_asset=b).inc()`."""
        self.collateral_transactions = Counter(
            "connext_collateral_transactions",
            "Collateral transactions of the node (kind: deposit or reclaim)",
            ["asset", "kind"], registry=self.registry)
        self.liquidity_onchain = Gauge(
            "connext_liquidity_onchain", "Base units the node's own account holds on chain",
            ["asset"], registry=self.registry)
        self.liquidity_in_channels = Gauge(
            "connext_liquidity_in_channels",
            "Base units the node holds on its side of its channels", ["asset"],
            registry=self.registry)
        self.liquidity_low = Gauge(
            "connext_liquidity_low",
            "1 when the node's on-chain balance of the asset is below its low-liquidity level",
            ["asset"], registry=self.registry)
        self.request_seconds = Histogram(
            "connext_request_seconds", "Time to answer a request", ["method"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
            registry=self.registry,
        )

        self.registry.register(_Operations())

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Operations(Collector):
    """connext.counters of this process: signatures, database work, messages."""

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "connext_operations", "Costly operations done by this process (all its work)",
            labels=["op"])
        for name, value in COUNTS.snapshot().items():
            family.add_metric([name], value)
        yield family
