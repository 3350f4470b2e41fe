"""Per-client limits of the wallet app: new wallets per client address, faucet drips per
wallet and per hour (connext.ratelimit's sliding window).

The key of a client is its IP address as the server sees it, or, behind reverse proxies
the app is told to trust (CONNEXT_WEB_TRUST_PROXY, app/security.py), the address the
nearest of them forwards; any other X-Forwarded-For is ignored.
"""

from __future__ import annotations

from connext.ratelimit import SlidingWindow as _SlidingWindow
from connext.ratelimit import TooMany

__all__ = ["FaucetLimit", "FaucetLimited", "SlidingWindow", "TooMany"]


class SlidingWindow(_SlidingWindow):
    """The new-wallet limit (its refusal speaks of new wallets from the client's network)."""

    def __init__(self, limit: int, window: float = 3600.0, max_keys: int = 100_000, *,
                 what: str = "new wallets from your network") -> None:
        super().__init__(limit, window, max_keys, what=what)


class FaucetLimited(TooMany):
    """The faucet gave this wallet (or everyone) as much as it gives per hour."""

    code = "faucet_limited"


class FaucetLimit:
    """Drips per wallet and per hour, and for all wallets together."""

    def __init__(self, per_wallet: int, overall: int) -> None:
        self.per_wallet = _SlidingWindow(per_wallet, what="faucet drips for this wallet")
        self.overall = _SlidingWindow(overall, what="faucet drips on this server")

    def hit(self, wallet: str) -> None:
        try:
            self.per_wallet.hit(wallet)
            self.overall.hit("*")
        except TooMany as exc:
            raise FaucetLimited(exc.message, exc.retry_after) from None
