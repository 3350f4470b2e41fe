"""The ids of a routed payment's two hops, derived from its routing id.

Both parties derive them the same way, so a retried create is recognised as the same
transfer and the recipient of a stream knows which transfer of its channel a voucher is
for (the forward of the stream's routing id).
"""

from __future__ import annotations

from .encoding import keccak


def sender_transfer_id(routing_id: bytes) -> bytes:
    """The sender's transfer to the node (the first hop)."""
    return keccak(b"connext-transfer" + routing_id)


def forward_transfer_id(routing_id: bytes) -> bytes:
    """The node's transfer to the recipient (the second hop)."""
    return keccak(b"connext-forward" + routing_id)
