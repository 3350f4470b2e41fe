"""web3.py (v8) handles on our contracts and a small sender that signs locally.

`connect` opens a JSON-RPC connection, `contract` binds a committed artifact's ABI to an
address, and `Sender` builds, signs (with the private key, never the node's accounts) and
sends transactions one at a time, waiting for each receipt. It is meant for deployment,
tests and benchmarks; the node's persistent transaction manager is a separate thing.
"""

from __future__ import annotations

from functools import cache
from typing import Any
from weakref import WeakKeyDictionary

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from eth_utils.abi import (
    function_abi_to_4byte_selector,
    get_abi_input_types,
    get_abi_output_types,
)
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import RPCEndpoint, TxParams, TxReceipt, Wei

from ..contracts import load_artifact

DEFAULT_PRIORITY_FEE = 10**9  # 1 gwei
RECEIPT_TIMEOUT = 120.0


class TransactionFailed(RuntimeError):
    """A transaction was mined but reverted."""

    def __init__(self, receipt: TxReceipt) -> None:
        super().__init__(f"transaction {receipt['transactionHash'].hex()} reverted")
        self.receipt = receipt


def connect(w3_or_url: Web3 | str) -> Web3:
    """A Web3 for an RPC URL (HTTP), or the given Web3 as is."""
    if isinstance(w3_or_url, Web3):
        return w3_or_url
    # web3 asks for the chain id before every call it validates; it never changes for an
    # endpoint, so that one answer is cached (nothing else: blocks and receipts are not)
    return Web3(Web3.HTTPProvider(w3_or_url, request_kwargs={"timeout": 60},
                                  cache_allowed_requests=True,
                                  cacheable_requests={RPCEndpoint("eth_chainId")}))


_contract_classes: WeakKeyDictionary[Web3, dict[str, type[Contract]]] = WeakKeyDictionary()


def contract(w3: Web3, name: str, address: str) -> Contract:
    """The contract at `address` with the ABI of artifact `name`, e.g. "ChannelFactory"."""
    classes = _contract_classes.setdefault(w3, {})
    if name not in classes:  # building the class parses the ABI: once per Web3 and name
        classes[name] = w3.eth.contract(abi=load_artifact(name)["abi"])
    return classes[name](address=Web3.to_checksum_address(address))


@cache
def _function(name: str, function: str) -> tuple[bytes, list[str], list[str]]:
    for entry in load_artifact(name)["abi"]:
        if entry.get("type") == "function" and entry["name"] == function:
            return (
                function_abi_to_4byte_selector(entry),
                get_abi_input_types(entry),
                get_abi_output_types(entry),
            )
    raise ValueError(f"{name} has no function {function!r}")


def encode_call(name: str, function: str, *args: Any) -> bytes:
    """Calldata for `function` of artifact `name`; structs are tuples, in ABI order.

    Plain eth-abi, so about ten times cheaper than going through a web3 Contract."""
    selector, inputs, _ = _function(name, function)
    return selector + abi_encode(inputs, args)


def decode_result(name: str, function: str, data: bytes) -> tuple[Any, ...]:
    """The decoded return values of `function` (see `encode_call`)."""
    _, _, outputs = _function(name, function)
    return tuple(abi_decode(outputs, data))


class Sender:
    """Sends transactions from one private key: fills nonce, gas and fees, signs locally."""

    def __init__(self, w3: Web3, private_key: str | bytes) -> None:
        self.w3 = w3
        self.account: LocalAccount = Account.from_key(private_key)
        self.chain_id: int = w3.eth.chain_id

    @property
    def address(self) -> str:
        return str(self.account.address)

    def transact(
        self, call: ContractFunction, *, value: int = 0, gas: int | None = None
    ) -> TxReceipt:
        """Send a contract call and wait for it; TransactionFailed if it reverts.

        Without `gas` the call is estimated first, so a revert raises web3's
        ContractLogicError (with the reason) before anything is sent.
        """
        params: TxParams = {"from": self.account.address, "value": Wei(value)}
        if gas is not None:
            params["gas"] = gas
        tx = call.build_transaction(params)
        return self.send(tx)

    def send(self, tx: TxParams) -> TxReceipt:
        """Complete `tx` (nonce, chain id, fees, gas), sign it, send it, wait for it."""
        full: dict[str, Any] = dict(tx)
        full["from"] = self.account.address
        full.setdefault("value", 0)
        full["chainId"] = self.chain_id
        full["nonce"] = self.w3.eth.get_transaction_count(self.account.address, "pending")
        for key in ("gasPrice", "maxFeePerGas", "maxPriorityFeePerGas"):
            full.pop(key, None)
        full.update(self._fees())
        if "gas" not in full:
            full["gas"] = self.w3.eth.estimate_gas(full)  # type: ignore[arg-type]
        signed = self.account.sign_transaction(full)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT)
        if receipt["status"] != 1:
            raise TransactionFailed(receipt)
        return receipt

    def send_eth(self, to: str, value: int, *, gas: int | None = None) -> TxReceipt:
        tx: TxParams = {"to": Web3.to_checksum_address(to), "value": Wei(value)}
        if gas is not None:
            tx["gas"] = gas
        return self.send(tx)

    def deploy_code(self, init_code: str | bytes, *, gas: int | None = None) -> TxReceipt:
        """Send a contract-creation transaction with raw init code; the receipt has the address."""
        data = init_code if isinstance(init_code, str) else "0x" + init_code.hex()
        tx: TxParams = {"data": HexStr(data)}
        if gas is not None:
            tx["gas"] = gas
        return self.send(tx)

    def deploy(self, name: str, *args: Any) -> Contract:
        """Deploy artifact `name` with constructor `args`; the bound contract."""
        receipt = self.deploy_receipt(name, *args)
        return contract(self.w3, name, str(receipt["contractAddress"]))

    def deploy_receipt(self, name: str, *args: Any) -> TxReceipt:
        """Deploy artifact `name` with constructor `args`; the receipt (with the address)."""
        artifact = load_artifact(name)
        factory = self.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        tx = factory.constructor(*args).build_transaction({"from": self.account.address})
        return self.send(tx)

    def _fees(self) -> dict[str, int]:
        base_fee = self.w3.eth.get_block("latest").get("baseFeePerGas")
        if base_fee is None:  # a chain without EIP-1559
            return {"gasPrice": self.w3.eth.gas_price}
        return {
            "maxFeePerGas": 2 * base_fee + DEFAULT_PRIORITY_FEE,
            "maxPriorityFeePerGas": DEFAULT_PRIORITY_FEE,
        }
