"""ABI and EIP-712 encoding of everything the protocol hashes or signs.

The one place that turns protocol data into bytes for hashing; it must agree bit for bit
with the Vyper contracts and with eth-account's `encode_typed_data` (tests check both).
Each signed purpose has its own EIP-712 domain name so no signature replays as another.
Words are built by hand (every field is static or an array of static words): it is several
times faster than a generic ABI encoder on the per-update hot path.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from eth_utils.address import to_checksum_address
from sha3 import keccak_256 as _keccak_256  # safe-pysha3: a C keccak, ~4x eth-hash

from .types import Address, ChannelState, CoreTransferState

DOMAIN_VERSION = "1"
CHANNEL_DOMAIN = "Connext Channel"
WITHDRAW_DOMAIN = "Connext Withdraw"
RESOLUTION_DOMAIN = "Connext Transfer Resolution"
SIGNED_TRANSFER_DOMAIN = "Connext Signed Transfer"
STREAM_DOMAIN = "Connext Stream"
DISPUTE_AUTHORIZATION_DOMAIN = "Connext Dispute Authorization"
NODE_REQUEST_DOMAIN = "Connext Node Request"
NATS_LOGIN_DOMAIN = "Connext NATS Login"
MESSAGE_DOMAIN = "Connext Message"
SWAP_QUOTE_DOMAIN = "Connext Swap Quote"

EIP712_DOMAIN_TYPE = (
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
CHANNEL_STATE_TYPE = (
    "ChannelState(address alice,address bob,address[] assetIds,uint256[] balancesAlice,"
    "uint256[] balancesBob,uint256[] processedDepositsA,uint256[] processedDepositsB,"
    "uint256[] defundNonces,uint256 timeout,uint256 nonce,bytes32 merkleRoot)"
)
WITHDRAW_COMMITMENT_TYPE = (
    "WithdrawCommitment(address recipient,address assetId,uint256 amount,uint256 nonce)"
)
TRANSFER_RESOLUTION_TYPE = "TransferResolution(bytes32 transferId,bytes32 resolverHash)"
RECEIPT_TYPE = "Receipt(bytes32 paymentId,bytes32 data)"
VOUCHER_TYPE = "Voucher(bytes32 streamId,uint256 amount)"
DISPUTE_AUTHORIZATION_TYPE = "DisputeAuthorization(address disputer)"
NODE_REQUEST_TYPE = "NodeRequest(string method,string path,uint256 timestamp)"
NATS_LOGIN_TYPE = "NatsLogin(string nonce)"
SWAP_QUOTE_TYPE = (
    "SwapQuote(bytes32 quoteId,address payer,address channelAddress,address assetIn,"
    "address assetOut,uint256 amountIn,uint256 amountOut,uint256 fee,uint256 expiry)"
)

# Minimal-proxy init code as Vyper's create_minimal_proxy_to emits it (see shared FACTS).
_PROXY_PREFIX = bytes.fromhex("602d3d8160093d39f3363d3d373d3d3d363d73")
_PROXY_SUFFIX = bytes.fromhex("5af43d82803e903d91602b57fd5bf3")


def keccak(data: bytes) -> bytes:
    digest: bytes = _keccak_256(data).digest()
    return digest


@lru_cache(maxsize=4096)
def address_bytes(address: Address) -> bytes:
    """20 raw bytes of a hex address (checksummed or not)."""
    raw = bytes.fromhex(address[2:] if address[:2] in ("0x", "0X") else address)
    if len(raw) != 20:
        raise ValueError(f"not a 20-byte address: {address!r}")
    return raw


@lru_cache(maxsize=4096)
def checksum(address: Address | bytes) -> Address:
    return to_checksum_address(address)


def uint_word(value: int) -> bytes:
    return value.to_bytes(32, "big")


@lru_cache(maxsize=4096)
def address_word(address: Address) -> bytes:
    return b"\x00" * 12 + address_bytes(address)


def bytes32_word(value: bytes) -> bytes:
    if len(value) != 32:
        raise ValueError("expected 32 bytes")
    return value


_DOMAIN_TYPEHASH = keccak(EIP712_DOMAIN_TYPE.encode())
_VERSION_HASH = keccak(DOMAIN_VERSION.encode())
CHANNEL_STATE_TYPEHASH = keccak(CHANNEL_STATE_TYPE.encode())
WITHDRAW_COMMITMENT_TYPEHASH = keccak(WITHDRAW_COMMITMENT_TYPE.encode())
TRANSFER_RESOLUTION_TYPEHASH = keccak(TRANSFER_RESOLUTION_TYPE.encode())
RECEIPT_TYPEHASH = keccak(RECEIPT_TYPE.encode())
VOUCHER_TYPEHASH = keccak(VOUCHER_TYPE.encode())
DISPUTE_AUTHORIZATION_TYPEHASH = keccak(DISPUTE_AUTHORIZATION_TYPE.encode())
NODE_REQUEST_TYPEHASH = keccak(NODE_REQUEST_TYPE.encode())
NATS_LOGIN_TYPEHASH = keccak(NATS_LOGIN_TYPE.encode())
SWAP_QUOTE_TYPEHASH = keccak(SWAP_QUOTE_TYPE.encode())


@lru_cache(maxsize=4096)
def domain_separator(name: str, chain_id: int, verifying_contract: Address) -> bytes:
    return keccak(
        _DOMAIN_TYPEHASH
        + keccak(name.encode())
        + _VERSION_HASH
        + uint_word(chain_id)
        + address_word(verifying_contract)
    )


def typed_data_digest(domain: bytes, struct_hash: bytes) -> bytes:
    return keccak(b"\x19\x01" + domain + struct_hash)


def _uint_array_hash(values: tuple[int, ...]) -> bytes:
    return keccak(b"".join(v.to_bytes(32, "big") for v in values))


def channel_state_struct_hash(state: ChannelState) -> bytes:
    return keccak(
        CHANNEL_STATE_TYPEHASH
        + address_word(state.alice)
        + address_word(state.bob)
        + keccak(b"".join(address_word(a) for a in state.asset_ids))
        + _uint_array_hash(tuple(b.alice for b in state.balances))
        + _uint_array_hash(tuple(b.bob for b in state.balances))
        + _uint_array_hash(state.processed_deposits_a)
        + _uint_array_hash(state.processed_deposits_b)
        + _uint_array_hash(state.defund_nonces)
        + uint_word(state.timeout)
        + uint_word(state.nonce)
        + bytes32_word(state.merkle_root)
    )


def channel_state_digest(state: ChannelState) -> bytes:
    """The EIP-712 digest both parties sign for a channel state."""
    domain = domain_separator(CHANNEL_DOMAIN, state.network.chain_id, state.channel_address)
    return typed_data_digest(domain, channel_state_struct_hash(state))


def withdraw_commitment_digest(
    chain_id: int,
    channel_address: Address,
    recipient: Address,
    asset_id: Address,
    amount: int,
    nonce: int,
) -> bytes:
    domain = domain_separator(WITHDRAW_DOMAIN, chain_id, channel_address)
    struct_hash = keccak(
        WITHDRAW_COMMITMENT_TYPEHASH
        + address_word(recipient)
        + address_word(asset_id)
        + uint_word(amount)
        + uint_word(nonce)
    )
    return typed_data_digest(domain, struct_hash)


def transfer_resolution_digest(
    chain_id: int, channel_address: Address, transfer_id: bytes, encoded_resolver: bytes
) -> bytes:
    domain = domain_separator(RESOLUTION_DOMAIN, chain_id, channel_address)
    struct_hash = keccak(
        TRANSFER_RESOLUTION_TYPEHASH + bytes32_word(transfer_id) + keccak(encoded_resolver)
    )
    return typed_data_digest(domain, struct_hash)


def receipt_digest(chain_id: int, definition: Address, payment_id: bytes, data: bytes) -> bytes:
    domain = domain_separator(SIGNED_TRANSFER_DOMAIN, chain_id, definition)
    struct_hash = keccak(RECEIPT_TYPEHASH + bytes32_word(payment_id) + bytes32_word(data))
    return typed_data_digest(domain, struct_hash)


def voucher_digest(chain_id: int, definition: Address, stream_id: bytes, amount: int) -> bytes:
    domain = domain_separator(STREAM_DOMAIN, chain_id, definition)
    struct_hash = keccak(VOUCHER_TYPEHASH + bytes32_word(stream_id) + uint_word(amount))
    return typed_data_digest(domain, struct_hash)


def voucher_digester(chain_id: int, definition: Address,
                     stream_id: bytes) -> Callable[[int], bytes]:
    """`voucher_digest` for one stream, amount by amount, with what the amounts share
    computed once (a stream's payer and recipient hash one voucher after another)."""
    prefix = b"\x19\x01" + domain_separator(STREAM_DOMAIN, chain_id, definition)
    head = VOUCHER_TYPEHASH + bytes32_word(stream_id)

    def digest(amount: int) -> bytes:
        struct_hash = _keccak_256(head + amount.to_bytes(32, "big")).digest()
        result: bytes = _keccak_256(prefix + struct_hash).digest()
        return result

    return digest


def dispute_authorization_digest(chain_id: int, channel_address: Address,
                                 disputer: Address) -> bytes:
    """What a party signs to let `disputer` (e.g. a watchtower service) dispute the channel
    on its behalf; nobody else but the two parties may."""
    domain = domain_separator(DISPUTE_AUTHORIZATION_DOMAIN, chain_id, channel_address)
    struct_hash = keccak(DISPUTE_AUTHORIZATION_TYPEHASH + address_word(disputer))
    return typed_data_digest(domain, struct_hash)


def node_request_digest(chain_id: int, node: Address, method: str, path: str,
                        timestamp: int) -> bytes:
    """What a channel party signs to read its channel from the node's HTTP API
    (`timestamp` in unix milliseconds; see docs/NODE.md)."""
    domain = domain_separator(NODE_REQUEST_DOMAIN, chain_id, node)
    struct_hash = keccak(NODE_REQUEST_TYPEHASH + keccak(method.encode()) + keccak(path.encode())
                         + uint_word(timestamp))
    return typed_data_digest(domain, struct_hash)


def nats_login_digest(nonce: str) -> bytes:
    """What a party signs to log in to NATS: the nonce nats-server sent on this connection
    (its own domain, chain id 0, no verifying contract; see docs/NATS.md)."""
    domain = domain_separator(NATS_LOGIN_DOMAIN, 0, Address("0x" + "00" * 20))
    return typed_data_digest(domain, keccak(NATS_LOGIN_TYPEHASH + keccak(nonce.encode())))


def swap_quote_digest(chain_id: int, node: Address, quote_id: bytes, payer: Address,
                      channel_address: Address, asset_in: Address, asset_out: Address,
                      amount_in: int, amount_out: int, fee: int, expiry: int) -> bytes:
    """What a node signs when it quotes a swap (connext/protocol/swaps.py): its own domain,
    with the node as verifying contract, so a quote is no other signature and no other
    node's quote."""
    domain = domain_separator(SWAP_QUOTE_DOMAIN, chain_id, node)
    struct_hash = keccak(
        SWAP_QUOTE_TYPEHASH + bytes32_word(quote_id) + address_word(payer)
        + address_word(channel_address) + address_word(asset_in) + address_word(asset_out)
        + uint_word(amount_in) + uint_word(amount_out) + uint_word(fee) + uint_word(expiry)
    )
    return typed_data_digest(domain, struct_hash)


def encode_core_transfer_state(core: CoreTransferState) -> bytes:
    """abi.encode(CoreTransferState): twelve static words."""
    return b"".join(
        (
            address_word(core.channel_address),
            bytes32_word(core.transfer_id),
            address_word(core.transfer_definition),
            address_word(core.initiator),
            address_word(core.responder),
            address_word(core.asset_id),
            uint_word(core.balance.amount[0]),
            uint_word(core.balance.amount[1]),
            address_word(core.balance.to[0]),
            address_word(core.balance.to[1]),
            uint_word(core.transfer_timeout),
            bytes32_word(core.initial_state_hash),
        )
    )


def transfer_hash(core: CoreTransferState) -> bytes:
    """The transfer's merkle leaf."""
    return keccak(encode_core_transfer_state(core))


def channel_salt(alice: Address, bob: Address, chain_id: int) -> bytes:
    return keccak(address_word(alice) + address_word(bob) + uint_word(chain_id))


def proxy_init_code(mastercopy: Address) -> bytes:
    return _PROXY_PREFIX + address_bytes(mastercopy) + _PROXY_SUFFIX


@lru_cache(maxsize=4096)
def channel_address(
    factory: Address, mastercopy: Address, alice: Address, bob: Address, chain_id: int
) -> Address:
    """The counterfactual CREATE2 address of the channel between alice and bob."""
    digest = keccak(
        b"\xff"
        + address_bytes(factory)
        + channel_salt(alice, bob, chain_id)
        + keccak(proxy_init_code(mastercopy))
    )
    return checksum(digest[12:])
