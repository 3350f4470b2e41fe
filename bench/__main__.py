"""`make bench`: every benchmark, printed as a table and written to bench/results.json.

Sections: gas of each contract operation on a real anvil, the crypto floor of the protocol
in one process, routed payments through a real node (1, 10 and 50 pairs), stream vouchers
end to end between two processes, the node's store compared (SQLite FULL and NORMAL,
PostgreSQL) and the wallet path in Chromium; then the issue's targets, each with its figure
and "ok" or "MISSED". `python -m bench stores wallet` runs only those sections and updates
their part of bench/results.json, keeping the others. Numbers are measurements of this
machine; nothing here asserts a figure, the results file is what reviewers compare.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from . import report
from .crypto import measure_crypto
from .gas import GAS_TARGETS, measure_gas_on_fresh_anvil
from .payments import measure_payments, steal_percent
from .report import table
from .stores import measure_stores
from .swaps import measure_swaps
from .vouchers import measure_vouchers
from .wallet import measure_wallet

RESULTS = Path(__file__).parent / "results.json"


def _gas() -> Any:
    gas = measure_gas_on_fresh_anvil()
    rows = []
    for name, used in gas.items():
        target = GAS_TARGETS.get(name)
        note = ""
        if target is not None:
            note = f"target <= {target:,}: {'ok' if used <= target else 'MISSED'}"
        rows.append((name, f"{used:,}", note))
    print(table("Gas (anvil)", rows))
    return gas


def _crypto() -> Any:
    crypto = measure_crypto()
    print(table("Crypto floor and protocol updates (one process)", [
        ("sign", f"{crypto['sign_us']} us", "coincurve, per signature"),
        ("recover", f"{crypto['recover_us']} us", "recover + address"),
        ("protocol update", f"{crypto['update_us']} us",
         "propose + validate + apply + both signatures + both recovers"),
        ("updates per second", f"{crypto['updates_per_second']:,}", "one core"),
        ("floor per update", f"{crypto['update_floor_us']} us", "2 signs + 2 recovers"),
        ("cost / floor", f"{crypto['update_cost_over_floor']}x", ""),
    ]))
    return crypto


def _routed_rows(label: str, run: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The rows of one routed-payment run, with the node's CPU targets next to its CPU."""
    done = run["node_per_payment"]
    commits = f" in {done['db_commits']} commits" if "db_commits" in done else ""
    node_cpu = run["node_cpu_ms_per_payment"]
    database = run.get("database_server_cpu_ms_per_payment")
    cpu_note = report.NODE_CPU_PER_PAYMENT.note(node_cpu)
    if database is not None:  # PostgreSQL does outside the node what SQLite does inside
        cpu_note = (f"+ {database} ms of the database server: "
                    + report.NODE_CPU_PER_PAYMENT.note(node_cpu + database))
    return [
        (f"{label}: payments/s", f"{run['payments_per_second']:,}",
         f"{run['payments']} payments in {run['seconds']} s"
         + (f"; the hypervisor took {steal}% of the CPU"
            if (steal := run.get("machine_cpu_steal_percent")) is not None else "")),
        (f"{label}: latency p50 / p99", f"{run['latency_p50_ms']} ms",
         f"p99 {run['latency_p99_ms']} ms"),
        (f"{label}: CPU per payment", f"{run['cpu_ms_per_payment']} ms",
         f"node + clients; {run['cpu_over_crypto_floor']}x the signature floor"),
        (f"{label}: node CPU per payment", f"{node_cpu} ms", cpu_note),
        (f"{label}: node CPU / its signatures", f"{run['node_cpu_over_its_signature_floor']}x",
         f"of {run['node_signature_floor_ms']} ms; "
         + report.NODE_CPU_OVER_SIGNATURES.note(run["node_cpu_over_its_signature_floor"])),
        (f"{label}: node work per payment",
         f"{done['signatures_made']} + {done['signatures_checked']} sig",
         f"made + checked; {done['db_transactions']} db txns "
         f"({done['db_write_transactions']} writes{commits}, {done['db_statements']} "
         f"statements); {done['messages_sent']} sent / "
         f"{done['messages_received']} received messages"),
    ]


def _payments() -> Any:
    payments = measure_payments()
    rows = []
    for run in payments["runs"]:
        rows.extend(_routed_rows(f"{run['pairs']} pair(s)", run))
    print(table("Routed payments (node process + clients, SQLite WAL, the store's default "
                f"sync; {payments['seconds_per_run']:g} s per run at most)", rows))
    print(f"signature floor of a payment (4 updates x (2 signs + 2 recovers)): "
          f"{payments['crypto_floor_ms_per_payment']} ms")
    return payments


def _vouchers() -> Any:
    vouchers = measure_vouchers()
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
    print(table("Stream vouchers end to end (payers and recipients in two processes)", rows))
    return vouchers


STORE_LABELS = {"sqlite_full": "SQLite FULL", "sqlite_normal": "SQLite NORMAL",
                "postgresql": "PostgreSQL"}


def _stores() -> Any:
    stores = measure_stores()
    rows = []
    for name, run in stores["variants"].items():
        label = STORE_LABELS[name]
        rows.extend(_routed_rows(label, run))
        done = run["node_per_payment"]
        commits = (f"{done['db_commits']} commits" if "db_commits" in done
                   else f"{done['db_write_transactions']} write txns")
        rows.append((f"{label}: a commit alone", f"{run['commit_ms']} ms",
                     f"x {commits} = {run['commit_wait_ms_per_payment']} ms per payment "
                     "on the disk, if not overlapped"))
    ratios = stores["ratios"]
    rows.append(("FULL / NORMAL throughput", f"{ratios['full_over_normal']}",
                 report.FULL_OVER_NORMAL.note(ratios["full_over_normal"])))
    rows.append(("PostgreSQL / SQLite FULL", f"{ratios['postgresql_over_sqlite_full']}",
                 report.POSTGRES_OVER_SQLITE.note(ratios["postgresql_over_sqlite_full"])))
    rows.append(("PostgreSQL / SQLite NORMAL", f"{ratios['postgresql_over_sqlite_normal']}",
                 "throughput"))
    print(table(f"The node's store ({stores['pairs']} pairs, at most "
                f"{stores['pairs'] * stores['payments_per_pair']} payments or "
                f"{stores['seconds_per_run']:g} s each; a fresh stack per store)", rows))
    for name, run in stores["variants"].items():
        print(f"{STORE_LABELS[name]}: {run['store']} on {run['filesystem']}"
              + (f", {run['server_settings']}" if "server_settings" in run else ""))
    if stores["postgresql_skipped"]:
        print(f"PostgreSQL skipped: {stores['postgresql_skipped']}")
    return stores


def _wallet() -> Any:
    wallet = measure_wallet()
    if "skipped" in wallet:
        print(f"Wallet path skipped: {wallet['skipped']}")
        return wallet
    print(table(f"Wallet path in Chromium ({wallet['payments']} payments after a warm-up, "
                "click on Send to what a page shows)", [
        ("recipient sees the balance: p50", f"{wallet['recipient_sees_p50_ms']} ms",
         f"p90 {wallet['recipient_sees_p90_ms']} ms, max {wallet['recipient_sees_max_ms']} "
         f"ms; {report.WALLET_P50.note(wallet['recipient_sees_p50_ms'])}"),
        ("its live event arrives: p50", f"{wallet['recipient_event_p50_ms']} ms",
         f"p90 {wallet['recipient_event_p90_ms']} ms after the click "
         f"({wallet['recipient_events_seen']} events seen)"),
        ("then htmx asks for balances: p50", f"{wallet['recipient_refresh_wait_p50_ms']} ms",
         "after the event"),
        ("the balances request takes: p50", f"{wallet['recipient_balances_request_p50_ms']} ms",
         f"({wallet['recipient_balances_requests_seen']} requests seen)"),
        ("payer sees completed: p50", f"{wallet['payer_sees_completed_p50_ms']} ms",
         f"p90 {wallet['payer_sees_completed_p90_ms']} ms"),
        ("recipient's page never reloaded", f"{wallet['recipient_page_never_reloaded']}",
         "live updates only"),
    ]))
    return wallet


def _swaps() -> Any:
    swaps = measure_swaps()
    rows = []
    for label, key in (("without swap (ETH -> ETH)", "without_swap"),
                       ("with swap (TEST -> ETH)", "with_swap")):
        run = swaps[key]
        quote = (f"; the quote alone p50 {run['quote_latency_p50_ms']} ms"
                 if "quote_latency_p50_ms" in run else "")
        rows.extend([
            (f"{label}: payments/s", f"{run['payments_per_second']:,}",
             f"{run['payments']} payments in {run['seconds']} s"),
            (f"{label}: latency p50 / p99", f"{run['latency_p50_ms']} ms",
             f"p99 {run['latency_p99_ms']} ms{quote}"),
            (f"{label}: node CPU per payment", f"{run['node_cpu_ms_per_payment']} ms",
             f"node + clients {run['cpu_ms_per_payment']} ms"),
        ])
    rows.append(("swap / plain throughput", f"{swaps['swap_over_plain_throughput']}",
                 "same pairs, recipients and collateral"))
    print(table(f"Routed payments with a swap on the way ({swaps['pairs']} pairs, at most "
                f"{swaps['seconds_per_run']:g} s per run)", rows))
    return swaps


SECTIONS: dict[str, tuple[str, Callable[[], Any]]] = {
    "gas": ("gas", _gas),
    "crypto": ("crypto", _crypto),
    "payments": ("routed_payments", _payments),
    "vouchers": ("vouchers", _vouchers),
    "stores": ("stores", _stores),
    "wallet": ("wallet", _wallet),
    "swaps": ("swaps", _swaps),
}
"""Command-line name -> (key in results.json, what measures and prints it)."""


def _skipped(reason: str | None) -> str | None:
    return f"skipped: {reason}" if reason else None


def _targets(results: dict[str, Any]) -> list[tuple[report.Target, float | None, str]]:
    """Every target of the issue, with its figure from `results` (None: not measured) and
    where that figure comes from."""
    runs = {run["pairs"]: run for run in results.get("routed_payments", {}).get("runs", [])}

    def run_figure(pairs: int, key: str) -> float | None:
        return runs[pairs].get(key) if pairs in runs else None

    def worst(key: str) -> tuple[float | None, str]:
        figures = [(run[key], pairs) for pairs, run in runs.items() if run.get(key) is not None]
        if not figures:
            return None, "routed payments not measured"
        value, pairs = max(figures)
        return value, f"worst of the {'/'.join(map(str, runs))}-pair runs: {pairs} pair(s)"

    stores = results.get("stores", {})
    ratios = stores.get("ratios", {})
    wallet = results.get("wallet", {})
    store_runs = f"the node's store, {stores.get('pairs')} pairs"
    figures = [
        (report.NODE_CPU_PER_PAYMENT, *worst("node_cpu_ms_per_payment"), "payments"),
        (report.NODE_CPU_OVER_SIGNATURES, *worst("node_cpu_over_its_signature_floor"),
         "payments"),
        (report.PAYMENTS_PER_SECOND_50_PAIRS, run_figure(50, "payments_per_second"),
         "routed payments, 50 pairs", "payments"),
        (report.P50_ONE_PAIR, run_figure(1, "latency_p50_ms"), "routed payments, 1 pair",
         "payments"),
        (report.P99_ONE_PAIR, run_figure(1, "latency_p99_ms"), "routed payments, 1 pair",
         "payments"),
        (report.FULL_OVER_NORMAL, ratios.get("full_over_normal"), store_runs, "stores"),
        (report.POSTGRES_OVER_SQLITE, ratios.get("postgresql_over_sqlite_full"),
         _skipped(stores.get("postgresql_skipped")) or f"{store_runs}, against SQLite FULL",
         "stores"),
        (report.WALLET_P50, wallet.get("recipient_sees_p50_ms"),
         _skipped(wallet.get("skipped")) or "Chromium, two wallets", "wallet"),
    ]
    return [(target, value, where if value is not None or where.startswith("skipped")
             else f"run `python -m bench {section}`")
            for target, value, where, section in figures]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("sections", nargs="*", metavar="section",
                        help=f"what to run: {', '.join(SECTIONS)} (default: all)")
    chosen = parser.parse_args(argv).sections or list(SECTIONS)
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        parser.error(f"no section {', '.join(unknown)}; the sections: {', '.join(SECTIONS)}")

    results: dict[str, Any] = {}
    if RESULTS.exists() and len(chosen) < len(SECTIONS):  # keep the sections not run now
        results = json.loads(RESULTS.read_text())
    results["machine"] = {"python": platform.python_version(), "arch": platform.machine(),
                          "cpus": os.cpu_count()}
    results["timestamp"] = int(time.time())
    taken = results.setdefault("sections", {})
    failed = []
    for name in chosen:
        key, measure = SECTIONS[name]
        started = time.perf_counter()
        load = [round(x, 2) for x in os.getloadavg()]
        machine_before = psutil.cpu_times()
        try:
            results[key] = measure()
        except Exception:
            traceback.print_exc()
            failed.append(name)
            results[key] = {"failed": traceback.format_exc(limit=3)}
        seconds = round(time.perf_counter() - started, 1)
        steal = steal_percent(machine_before, psutil.cpu_times())
        taken[name] = {"measured_at": int(time.time()), "seconds": seconds,
                       "load_average_before": load, "machine_cpu_steal_percent": steal}
        print(f"({name}: {seconds} s, load average before {load[0]}, CPU steal {steal}%)\n")

    targets = _targets(results)
    results["targets"] = [target.record(value, where) for target, value, where in targets]
    print(table("Issue 11 targets", [(target.name, target.figure(value),
                                      f"{target.note(value)}; {where}")
                                     for target, value, where in targets]))
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
