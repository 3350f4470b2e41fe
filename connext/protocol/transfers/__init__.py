"""Python mirrors of the transfer definitions, by name.

`DEFINITIONS` is what the protocol accepts; a definition's on-chain address comes from the
deployment (the transfer registry), never from here.
"""

from .base import TransferContext, TransferDefinition
from .hashlock import Hashlock, lock_hash
from .signed import Signed
from .stream import Stream
from .withdraw import Withdraw

HASHLOCK = Hashlock()
SIGNED = Signed()
WITHDRAW = Withdraw()
STREAM = Stream()

DEFINITIONS: dict[str, TransferDefinition] = {
    d.name: d for d in (HASHLOCK, SIGNED, WITHDRAW, STREAM)
}

__all__ = [
    "DEFINITIONS",
    "HASHLOCK",
    "SIGNED",
    "STREAM",
    "WITHDRAW",
    "TransferContext",
    "TransferDefinition",
    "lock_hash",
]
