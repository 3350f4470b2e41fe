# pragma version 0.4.3
"""
@title Expiring conditions that stay enforceable
@notice Module shared by the transfer definitions whose condition expires (Hashlock, Signed,
        Stream): before its expiry a condition pays when met; after it, only when its
        evidence (the preimage, or a hash of the signed receipt or voucher) was registered
        in the secret registry no later than the expiry. Transfer disputes come after the
        channel's consensus window, by when most conditions have expired: the registration
        is what makes them enforceable on chain. An expiry of 0 never expires.
@dev Mirror: connext.protocol.transfers.base (`in_time`). Stateless: import it, no
     `initializes`.
"""


interface ISecretRegistry:
    def registered_at(lock_hash: bytes32) -> uint256: view


@internal
@view
def _in_time(registry: address, expiry: uint256, evidence_hash: bytes32) -> bool:
    """
    @dev Whether a condition with this expiry may still pay: not expired yet, or its
         evidence (sha256 of the registered preimage) registered no later than the expiry.
    """
    if expiry == 0 or expiry > block.timestamp:
        return True
    registered: uint256 = staticcall ISecretRegistry(registry).registered_at(evidence_hash)
    return registered != 0 and registered <= expiry
