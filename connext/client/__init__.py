"""The light client SDK: `Client` (see docs/SDK.md)."""

from .client import Client, PaymentResult, WithdrawResult

__all__ = ["Client", "PaymentResult", "WithdrawResult"]
