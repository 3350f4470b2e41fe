"""Process-wide counts of the costly operations on the payment path: signatures made and
checked, database transactions, commits and statements, messages sent and received.

Plain integers, incremented where the work happens (a few tens of nanoseconds each) and
never reset. The node serves them in /metrics (`connext_operations_total{op}`), and
`make bench` divides their growth by the payments made to say where the time goes.
"""

from __future__ import annotations

OPERATIONS = ("signatures_made", "signatures_checked", "db_reads", "db_writes",
              "db_commits", "db_statements", "messages_sent", "messages_received")


class Counts:
    __slots__ = OPERATIONS

    signatures_made: int
    signatures_checked: int  # recoveries and verifications
    db_reads: int  # read transactions
    db_writes: int  # atomic writes (each one durable when it returns)
    db_commits: int  # COMMITs of writes: fewer than writes when group commit batches them
    db_statements: int
    messages_sent: int
    messages_received: int  # requests, notifications and replies

    def __init__(self) -> None:
        for name in OPERATIONS:
            setattr(self, name, 0)

    def snapshot(self) -> dict[str, int]:
        """Every count, read commits before writes: a write is counted before its commit,
        so a snapshot taken while writers run never shows more commits than writes."""
        commits = self.db_commits
        values = {name: getattr(self, name) for name in OPERATIONS}
        values["db_commits"] = commits
        return values


COUNTS = Counts()
