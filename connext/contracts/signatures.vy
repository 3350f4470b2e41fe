# pragma version 0.4.3
"""
@title ECDSA recovery and EIP-712 digests
@notice Module shared by the channel and the transfer definitions, so every signature in
        the protocol is checked one way: 65 bytes r || s || v, v in {27, 28}, low s, and
        a recovered address that is never the zero address.
@dev Mirror: connext/protocol/signing.py (recover) and connext/protocol/encoding.py
     (domain separators, typed-data digests). Stateless: import it, no `initializes`.
"""

# secp256k1n / 2 (0x7FFF...FF5D576E7357A4501DDFE92F46681B20A0): a larger s is the
# malleable twin of a valid signature.
_MAX_S: constant(uint256) = (
    57896044618658097711785492504343953926418782139537452191302581570759080747168
)
_DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
_VERSION_HASH: constant(bytes32) = keccak256("1")
SIGNATURE_BYTES: constant(uint256) = 65


@internal
@pure
def _recover(digest: bytes32, signature: Bytes[SIGNATURE_BYTES]) -> address:
    """
    @dev Returns the signer of `digest`, or the zero address when the signature is not
         65 bytes, has a v other than 27/28, a high s, or does not recover at all (the
         precompile rejects r or s out of range and r off the curve).
    @param digest The 32-byte digest that was signed.
    @param signature The signature r || s || v.
    @return address The signer, or `empty(address)`.
    """
    if len(signature) != SIGNATURE_BYTES:
        return empty(address)
    r: uint256 = extract32(signature, 0, output_type=uint256)
    s: uint256 = extract32(signature, 32, output_type=uint256)
    v: uint256 = extract32(signature, 33, output_type=uint256) & 255
    if v != 27 and v != 28:
        return empty(address)
    if s > _MAX_S:
        return empty(address)
    return ecrecover(digest, v, r, s)


@internal
@view
def _domain_separator(name_hash: bytes32, verifying_contract: address) -> bytes32:
    """
    @dev The EIP-712 domain separator {name, version "1", this chain, verifying_contract}.
    @param name_hash keccak256 of the domain name, e.g. keccak256("Connext Channel").
    @param verifying_contract The contract the signature is meant for.
    @return bytes32 The domain separator.
    """
    return keccak256(
        abi_encode(_DOMAIN_TYPEHASH, name_hash, _VERSION_HASH, chain.id, verifying_contract)
    )


@internal
@pure
def _typed_data_digest(domain_separator: bytes32, struct_hash: bytes32) -> bytes32:
    """
    @dev The EIP-712 digest keccak256(0x1901 || domain separator || struct hash).
    @param domain_separator From `_domain_separator`.
    @param struct_hash hashStruct of the signed message.
    @return bytes32 The digest that is signed.
    """
    return keccak256(concat(x"1901", domain_separator, struct_hash))
