"""How the benchmarks report: tables, percentiles and the issue's targets next to a figure.

A target is checked and printed as "ok" or "MISSED"; nothing here raises when one is
missed. The numbers are what they are on this machine, the results file keeps them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def table(title: str, rows: list[tuple[str, str, str]]) -> str:
    width = max(len(r[0]) for r in rows)
    out = [title, "-" * len(title)]
    for name, value, note in rows:
        out.append(f"{name:<{width}}  {value:>14}  {note}")
    return "\n".join(out)


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank q-quantile (0 < q <= 1) of `values`."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass(frozen=True)
class Target:
    """One of the issue's targets: a figure must be at most (or at least) `limit`."""

    name: str
    limit: float
    unit: str
    at_most: bool = True

    def met(self, value: float | None) -> bool | None:
        if value is None:
            return None
        return value <= self.limit if self.at_most else value >= self.limit

    def note(self, value: float | None) -> str:
        """ "target <= 1 ms: ok" """
        met = self.met(value)
        verdict = "not measured" if met is None else "ok" if met else "MISSED"
        return f"target {'<=' if self.at_most else '>='} {self.limit:g}{self.unit}: {verdict}"

    def figure(self, value: float | None) -> str:
        """ "0.8 ms", or "-" when not measured."""
        return "-" if value is None else f"{value}{self.unit}"

    def record(self, value: float | None, measured: str) -> dict[str, object]:
        """What results.json keeps of this target: the figure, where it comes from, met."""
        return {"target": self.name, "limit": self.limit, "unit": self.unit.strip(),
                "at_most": self.at_most, "value": value, "measured": measured,
                "met": self.met(value)}


# The targets of issue 11 (routed payments, stores and the wallet path).
NODE_CPU_PER_PAYMENT = Target("node CPU per routed payment", 1.0, " ms")
NODE_CPU_OVER_SIGNATURES = Target("node CPU over its own signature floor", 3.0, "x")
PAYMENTS_PER_SECOND_50_PAIRS = Target("routed payments/s with 50 pairs", 500, "/s",
                                      at_most=False)
P50_ONE_PAIR = Target("latency p50 with one pair", 5.0, " ms")
P99_ONE_PAIR = Target("latency p99 with one pair", 25.0, " ms")
FULL_OVER_NORMAL = Target("SQLite FULL / NORMAL throughput", 0.8, "", at_most=False)
POSTGRES_OVER_SQLITE = Target("PostgreSQL / SQLite throughput", 0.5, "", at_most=False)
WALLET_P50 = Target("wallet path p50 (Send to the balance shown)", 100.0, " ms")
