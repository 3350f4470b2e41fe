# pragma version 0.4.3
# pragma evm-version cancun
"""
@title Secret registry
@notice Records when a hashlock preimage was first revealed on chain. Anyone may register a
        preimage; the registry keeps the block time of its first registration under its
        sha256 hash (the Hashlock definition's lock hash). A Hashlock transfer pays its
        responder on chain when its preimage was registered no later than its expiry,
        whenever the transfer itself is disputed: a party whose counterparty does not
        countersign a resolve makes its claim enforceable by registering before the lock
        expires (Raiden's design).
@dev Mirror: the `registered` mapping of connext.protocol.transfers.TransferContext, fed
     by the SecretRegistered logs. A registration is never changed or removed.
"""


event SecretRegistered:
    lock_hash: indexed(bytes32)
    preimage: bytes32


# sha256(preimage) => block time of its first registration (0: never registered)
_registered_at: HashMap[bytes32, uint256]


@external
def register(preimage: bytes32) -> bool:
    """
    @notice Records `preimage` with the current block time, unless it was registered
            before (then nothing changes).
    @param preimage The secret; its sha256 is the lock hash it opens.
    @return bool True when this call registered it, False when it was registered before.
    """
    lock_hash: bytes32 = sha256(preimage)
    if self._registered_at[lock_hash] != 0:
        return False
    self._registered_at[lock_hash] = block.timestamp
    log SecretRegistered(lock_hash=lock_hash, preimage=preimage)
    return True


@external
@view
def registered_at(lock_hash: bytes32) -> uint256:
    """
    @notice The block time at which the preimage of `lock_hash` was first registered, or
            0 if it never was.
    """
    return self._registered_at[lock_hash]
