"""`connext node status`: the admin summary of a running node, printed for a terminal.

It reads the node's admin API (GET /admin/summary with the admin token), exactly what the
operator dashboard shows; it never talks to the chain or the database itself.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from ..protocol.types import ETH


class StatusUnavailable(Exception):
    """The node did not answer, or refused the token (the message says which)."""


def fetch_summary(node_url: str, token: str | None, timeout: float = 10) -> dict[str, Any]:
    if not token:
        raise StatusUnavailable("no admin token: set CONNEXT_ADMIN_TOKEN (or pass --token)")
    request = urllib.request.Request(f"{node_url.rstrip('/')}/admin/summary",
                                     headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            summary: dict[str, Any] = json.loads(response.read())
            return summary
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            raise StatusUnavailable(f"{node_url} refused the admin token") from exc
        raise StatusUnavailable(f"{node_url} answered {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise StatusUnavailable(f"{node_url} does not answer: {exc}") from exc


def _amount(asset: str, value: str) -> str:
    if asset == ETH:
        return f"{int(value) / 10**18:,.6f} ETH ({value} wei)"
    return f"{value} base units"


def format_summary(summary: dict[str, Any]) -> str:
    lines = [f"node {summary['address']} on chain {summary['chainId']}",
             f"channels: {summary['channels']}"]
    lines.append("liquidity:")
    for entry in summary["liquidity"]:
        flag = "  LOW" if entry["low"] else ""
        lines.append(f"  {entry['assetId']}: on chain {_amount(entry['assetId'], entry['onChain'])}"
                     f"; in {entry['channels']} channels "
                     f"{_amount(entry['assetId'], entry['inChannels'])}{flag}")
    payments = summary["payments"]
    by_status = ", ".join(f"{k} {v}" for k, v in sorted(payments["byStatus"].items())) or "none"
    lines.append(f"payments: {payments['total']} ({by_status})")
    for entry in summary["volume24h"]:
        lines.append(f"  last 24 h in {entry['assetId']}: {entry['payments']} resolved, "
                     f"{_amount(entry['assetId'], entry['amount'])}")
    lines.append("since the node started:")
    for entry in summary["sinceStart"]:
        asset = entry["assetId"]
        lines.append(f"  {asset}: volume {_amount(asset, entry['volume'])}, fees "
                     f"{_amount(asset, entry['fees'])}, collateral deposited "
                     f"{_amount(asset, entry['collateralDeposited'])}, reclaimed "
                     f"{_amount(asset, entry['collateralReclaimed'])}")
    lines.append(f"collateral deposits in flight: {summary['collateral']['depositsInFlight']}")
    if summary["lowLiquidity"]:
        lines.append("WARNING: low liquidity in " + ", ".join(summary["lowLiquidity"]))
    return "\n".join(lines)
