"""`make bench`: every benchmark, printed as a table and written to bench/results.json.

Sections: gas of each contract operation on a real anvil (with the targets from the issue),
the crypto floor of the protocol in one process, routed payments through a real node and
stream vouchers end to end between two processes. Numbers are measurements of this
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
from .vouchers import measure_vouchers

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
        done = run["node_per_payment"]
        rows.append((f"{run['pairs']} pair(s): node CPU per payment",
                     f"{run['node_cpu_ms_per_payment']} ms",
                     f"{run['node_cpu_over_its_signature_floor']}x its own signatures "
                     f"({run['node_signature_floor_ms']} ms)"))
        rows.append((f"{run['pairs']} pair(s): node work per payment",
                     f"{done['signatures_made']} + {done['signatures_checked']} sig",
                     f"made + checked; {done['db_transactions']} db txns "
                     f"({done['db_write_transactions']} writes, {done['db_statements']} "
                     f"statements); {done['messages_sent']} sent / "
                     f"{done['messages_received']} received messages"))
    print(_table("Routed payments (node process + clients, SQLite WAL)", rows))
    print()

    vouchers = measure_vouchers()
    results["vouchers"] = vouchers
    rows = []
    for run in vouchers["runs"]:
        label = f"{run['streams']} stream(s)"
        rows.append((f"{label}: vouchers/s", f"{run['vouchers_per_second']:,}",
                     f"{run['vouchers']:,} vouchers in {run['seconds']} s, "
                     f"stored = acknowledged: {run['stored_equals_acknowledged']}"))
        rows.append((f"{label}: CPU per voucher", f"{run['cpu_us_per_voucher']} us",
                     f"payer {run['payer_cpu_us_per_voucher']} + recipient "
                     f"{run['recipient_cpu_us_per_voucher']} us (nats-server "
                     f"{run['nats_cpu_us_per_voucher']} us); {run['cpu_over_crypto_floor']}x "
                     f"the floor of {vouchers['crypto_floor_us_per_voucher']} us"))
        rows.append((f"{label}: ack latency p50 / p99", f"{run['latency_p50_ms']} ms",
                     f"p99 {run['latency_p99_ms']} ms, {vouchers['in_flight_per_stream']} "
                     "in flight per stream"))
    print(_table("Stream vouchers end to end (payers and recipients in two processes)", rows))
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
