"""The light client SDK: `Client` (see docs/SDK.md)."""

from .client import (
    DEFAULT_LINK_TIMEOUT,
    Client,
    LinkPayment,
    PaymentResult,
    WithdrawResult,
    parse_link_code,
)
from .unilateral import Dispute, ExitProgress

__all__ = [
    "DEFAULT_LINK_TIMEOUT",
    "Client",
    "Dispute",
    "ExitProgress",
    "LinkPayment",
    "PaymentResult",
    "WithdrawResult",
    "parse_link_code",
]
