"""`make bench`'s routed-payments section runs on a real stack and reports every figure
issue 11 asks for. A short run (one pair, a few payments): it checks that the bench works
and counts, never how fast anything is (speed lives in `make bench`, not in tests)."""

from __future__ import annotations

from pathlib import Path

from bench.payments import route_payments, signature_floors
from bench.stack import running_stack

PAYMENTS = 5


def test_the_payments_bench_runs_and_reports_every_figure(tmp_path: Path) -> None:
    with running_stack(tmp_path) as stack:
        run = route_payments(stack, tmp_path / "run", 1, PAYMENTS, 60.0)
    signature_floors([run])

    assert run["pairs"] == 1
    assert run["payments"] == PAYMENTS  # every payment completed (the bench asserts each)
    assert run["client_warnings"] == 0
    for key in ("payments_per_second", "latency_p50_ms", "latency_p99_ms",
                "cpu_ms_per_payment", "node_cpu_ms_per_payment",
                "node_cpu_over_its_signature_floor", "cpu_over_crypto_floor"):
        assert run[key] > 0, key
    assert run["latency_p50_ms"] <= run["latency_p99_ms"]
    assert run["node_cpu_ms_per_payment"] < run["cpu_ms_per_payment"]  # node + clients
    steal = run["machine_cpu_steal_percent"]
    assert steal is None or 0 <= steal <= 100
    work = run["node_per_payment"]
    # a routed payment is four updates: the node signs and checks one signature in each,
    # sends two proposals, its reply to the sender's create and its accept of the
    # recipient's resolve, and receives the create and the two countersignatures (the
    # recipient's resolve comes with its countersignature of the forward)
    assert work["signatures_made"] >= 4 and work["signatures_checked"] >= 4
    assert work["messages_sent"] >= 4 and work["messages_received"] >= 3
    # write-ahead of its two proposals and four commits, durable before each reply
    assert work["db_write_transactions"] >= 6
    assert 0 < work["db_commits"] <= work["db_write_transactions"]
    assert work["db_statements"] > work["db_transactions"] > 0
