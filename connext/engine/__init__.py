"""The channel engine shared by the node and the client (see engine.py)."""

from .engine import (
    ChannelBusy,
    ChannelEngine,
    Committed,
    DepositSource,
    OutOfSync,
    Transport,
)

__all__ = ["ChannelBusy", "ChannelEngine", "Committed", "DepositSource", "OutOfSync",
           "Transport"]
