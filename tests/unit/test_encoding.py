"""Our EIP-712 hashing and recovery agree with eth-account's reference implementation."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from connext.protocol import encoding
from connext.protocol.encoding import (
    channel_address,
    channel_state_digest,
    dispute_authorization_digest,
    node_request_digest,
    receipt_digest,
    transfer_resolution_digest,
    voucher_digest,
    withdraw_commitment_digest,
)
from connext.protocol.signing import Signer, recover

from .strategies import UINT256, addresses, bytes32, channel_states, private_keys

DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def reference_digest(
    name: str, chain_id: int, contract: str, primary: str, fields: list[dict[str, str]],
    message: dict[str, Any],
) -> bytes:
    signable = encode_typed_data(
        full_message={
            "types": {"EIP712Domain": DOMAIN_FIELDS, primary: fields},
            "primaryType": primary,
            "domain": {
                "name": name,
                "version": "1",
                "chainId": chain_id,
                "verifyingContract": contract,
            },
            "message": message,
        }
    )
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


@settings(max_examples=150, deadline=None)
@given(state=channel_states())
def test_channel_state_digest_equals_eth_account_reference(state: Any) -> None:
    fields = [
        {"name": "alice", "type": "address"},
        {"name": "bob", "type": "address"},
        {"name": "assetIds", "type": "address[]"},
        {"name": "balancesAlice", "type": "uint256[]"},
        {"name": "balancesBob", "type": "uint256[]"},
        {"name": "processedDepositsA", "type": "uint256[]"},
        {"name": "processedDepositsB", "type": "uint256[]"},
        {"name": "defundNonces", "type": "uint256[]"},
        {"name": "timeout", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "merkleRoot", "type": "bytes32"},
    ]
    message = {
        "alice": state.alice,
        "bob": state.bob,
        "assetIds": list(state.asset_ids),
        "balancesAlice": [b.alice for b in state.balances],
        "balancesBob": [b.bob for b in state.balances],
        "processedDepositsA": list(state.processed_deposits_a),
        "processedDepositsB": list(state.processed_deposits_b),
        "defundNonces": list(state.defund_nonces),
        "timeout": state.timeout,
        "nonce": state.nonce,
        "merkleRoot": state.merkle_root,
    }
    expected = reference_digest(
        "Connext Channel", state.network.chain_id, state.channel_address, "ChannelState",
        fields, message,
    )
    assert channel_state_digest(state) == expected


@settings(max_examples=60, deadline=None)
@given(
    chain_id=st.integers(min_value=1, max_value=2**64),
    channel=addresses,
    recipient=addresses,
    asset=addresses,
    amount=UINT256,
    nonce=UINT256,
)
def test_withdraw_commitment_digest_equals_reference(
    chain_id: int, channel: str, recipient: str, asset: str, amount: int, nonce: int
) -> None:
    fields = [
        {"name": "recipient", "type": "address"},
        {"name": "assetId", "type": "address"},
        {"name": "amount", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
    ]
    message = {"recipient": recipient, "assetId": asset, "amount": amount, "nonce": nonce}
    expected = reference_digest(
        "Connext Withdraw", chain_id, channel, "WithdrawCommitment", fields, message
    )
    assert withdraw_commitment_digest(chain_id, channel, recipient, asset, amount, nonce) == (
        expected
    )


@settings(max_examples=60, deadline=None)
@given(
    chain_id=st.integers(min_value=1, max_value=2**64),
    contract=addresses,
    a=bytes32,
    b=bytes32,
    amount=UINT256,
    resolver=st.binary(max_size=200),
)
def test_other_domains_equal_reference(
    chain_id: int, contract: str, a: bytes, b: bytes, amount: int, resolver: bytes
) -> None:
    receipt = reference_digest(
        "Connext Signed Transfer", chain_id, contract, "Receipt",
        [{"name": "paymentId", "type": "bytes32"}, {"name": "data", "type": "bytes32"}],
        {"paymentId": a, "data": b},
    )
    assert receipt_digest(chain_id, contract, a, b) == receipt
    voucher = reference_digest(
        "Connext Stream", chain_id, contract, "Voucher",
        [{"name": "streamId", "type": "bytes32"}, {"name": "amount", "type": "uint256"}],
        {"streamId": a, "amount": amount},
    )
    assert voucher_digest(chain_id, contract, a, amount) == voucher
    assert encoding.voucher_digester(chain_id, contract, a)(amount) == voucher  # the hot path
    resolution = reference_digest(
        "Connext Transfer Resolution", chain_id, contract, "TransferResolution",
        [{"name": "transferId", "type": "bytes32"}, {"name": "resolverHash", "type": "bytes32"}],
        {"transferId": a, "resolverHash": keccak(resolver)},
    )
    assert transfer_resolution_digest(chain_id, contract, a, resolver) == resolution


@settings(max_examples=60, deadline=None)
@given(chain_id=st.integers(min_value=1, max_value=2**64), contract=addresses,
       disputer=addresses, method=st.sampled_from(["GET", "POST"]),
       path=st.text(max_size=80), timestamp=UINT256)
def test_authorizations_equal_reference(chain_id: int, contract: str, disputer: str,
                                        method: str, path: str, timestamp: int) -> None:
    authorization = reference_digest(
        "Connext Dispute Authorization", chain_id, contract, "DisputeAuthorization",
        [{"name": "disputer", "type": "address"}], {"disputer": disputer},
    )
    assert dispute_authorization_digest(chain_id, contract, disputer) == authorization
    request = reference_digest(
        "Connext Node Request", chain_id, contract, "NodeRequest",
        [{"name": "method", "type": "string"}, {"name": "path", "type": "string"},
         {"name": "timestamp", "type": "uint256"}],
        {"method": method, "path": path, "timestamp": timestamp},
    )
    assert node_request_digest(chain_id, contract, method, path, timestamp) == request


def test_domains_keep_signatures_apart() -> None:
    """The same fields under two purposes give two digests: no cross-purpose replay."""
    contract = "0x" + "11" * 20
    a = b"\x01" * 32
    assert receipt_digest(1, contract, a, a) != voucher_digest(1, contract, a, int.from_bytes(a))
    assert encoding.domain_separator("Connext Channel", 1, contract) != (
        encoding.domain_separator("Connext Withdraw", 1, contract)
    )


@settings(max_examples=100, deadline=None)
@given(key=private_keys, digest=bytes32)
def test_sign_and_recover_equal_eth_account(key: bytes, digest: bytes) -> None:
    signer = Signer(key)
    ours = signer.sign(digest)
    theirs = Account.unsafe_sign_hash(digest, key)
    assert ours == bytes(theirs.signature)
    assert signer.address == Account.from_key(key).address
    assert recover(digest, ours) == Account._recover_hash(digest, signature=ours)
    assert recover(digest, ours) == signer.address


@settings(max_examples=50, deadline=None)
@given(factory=addresses, mastercopy=addresses, alice=addresses, bob=addresses,
       chain_id=st.integers(min_value=1, max_value=2**64))
def test_channel_address_is_create2_of_the_vyper_minimal_proxy(
    factory: str, mastercopy: str, alice: str, bob: str, chain_id: int
) -> None:
    init_code = (
        bytes.fromhex("602d3d8160093d39f3363d3d373d3d3d363d73")
        + bytes.fromhex(mastercopy[2:])
        + bytes.fromhex("5af43d82803e903d91602b57fd5bf3")
    )
    salt = keccak(
        bytes(12) + bytes.fromhex(alice[2:]) + bytes(12) + bytes.fromhex(bob[2:])
        + chain_id.to_bytes(32, "big")
    )
    raw = keccak(b"\xff" + bytes.fromhex(factory[2:]) + salt + keccak(init_code))[12:]
    assert channel_address(factory, mastercopy, alice, bob, chain_id) == (
        to_checksum_address(raw)
    )
