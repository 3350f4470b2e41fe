"""The pure protocol: channel states, updates, encoding, signing, merkle trees, transfers.

Nothing in this package does I/O, reads a clock or draws randomness implicitly: every rule
of the protocol can be tested without a chain, a broker or a database.
"""

from .channel import (
    Applied,
    Rules,
    apply_update,
    countersign,
    create_update,
    deposit_update,
    propose,
    resolve_update,
    setup_update,
    sign_state,
    validate_update,
    verify_channel_state,
)
from .signing import Signer, recover
from .types import (
    ETH,
    Balance,
    ChannelState,
    NetworkContext,
    Transfer,
    TransferBalance,
    Update,
    UpdateType,
)

__all__ = [
    "ETH",
    "Applied",
    "Balance",
    "ChannelState",
    "NetworkContext",
    "Rules",
    "Signer",
    "Transfer",
    "TransferBalance",
    "Update",
    "UpdateType",
    "apply_update",
    "countersign",
    "create_update",
    "deposit_update",
    "propose",
    "recover",
    "resolve_update",
    "setup_update",
    "sign_state",
    "validate_update",
    "verify_channel_state",
]
