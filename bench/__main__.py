"""`make bench`: every benchmark, printed as a table and written to bench/results.json.

Sections: gas of each contract operation on a real anvil (with the targets from the issue),
and the crypto floor of the protocol in one process. Numbers are measurements of this
machine; nothing here asserts, the results file is what reviewers compare.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

from .crypto import measure_crypto
from .gas import GAS_TARGETS, measure_gas_on_fresh_anvil
from .payments import measure_payments

RESULTS = Path(__file__).parent / "results.json"


def _table(title: str, rows: list[tuple[str, str, str]]) -> str:
    width = max(len(r[0]) for r in rows)
    out = [title, "-" * len(title)]
    for name, value, note in rows:
        out.append(f"{name:<{width}}  {value:>14}  {note}")
    return "\n".join(out)


def main() -> None:
    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpus": platform.machine()},
        "timestamp": int(time.time()),
    }
    gas = measure_gas_on_fresh_anvil()
    results["gas"] = gas
    gas_rows = []
    for name, used in gas.items():
        target = GAS_TARGETS.get(name)
        note = ""
        if target is not None:
            note = f"target <= {target:,}: {'ok' if used <= target else 'MISSED'}"
        gas_rows.append((name, f"{used:,}", note))
    print(_table("Gas (anvil)", gas_rows))
    print()

    crypto = measure_crypto()
    results["crypto"] = crypto
    print(_table("Crypto floor and protocol updates (one process)", [
        ("sign", f"{crypto['sign_us']} us", "coincurve, per signature"),
        ("recover", f"{crypto['recover_us']} us", "recover + address"),
        ("protocol update", f"{crypto['update_us']} us",
         "propose + validate + apply + both signatures + both recovers"),
        ("updates per second", f"{crypto['updates_per_second']:,}", "one core"),
        ("floor per update", f"{crypto['update_floor_us']} us", "2 signs + 2 recovers"),
        ("cost / floor", f"{crypto['update_cost_over_floor']}x", ""),
    ]))
    print()

    payments = measure_payments()
    results["routed_payments"] = payments
    rows = []
    for run in payments["runs"]:
        rows.append((f"{run['pairs']} pair(s): payments/s", f"{run['payments_per_second']:,}",
                     f"{run['payments']} payments in {run['seconds']} s"))
        rows.append((f"{run['pairs']} pair(s): latency p50 / p99",
                     f"{run['latency_p50_ms']} ms", f"p99 {run['latency_p99_ms']} ms"))
        rows.append((f"{run['pairs']} pair(s): CPU per payment",
                     f"{run['cpu_ms_per_payment']} ms",
                     f"{run['cpu_over_crypto_floor']}x the signature floor of "
                     f"{payments['crypto_floor_ms_per_payment']} ms"))
    print(_table("Routed payments (node process + clients, SQLite WAL)", rows))
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
