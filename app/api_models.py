"""The JSON API's bodies and query strings, declared once as pydantic models.

spectree validates every request and response with them (app/openapi.py) and generates
the OpenAPI document from them, so the document and the server cannot drift apart. Each
request value goes through one of the field types below, which refuse everything their
schema refuses and sometimes more (a zero amount, a bad checksum): the schema is never
stricter than the server. A refusal is a `PydanticCustomError` whose type is the API's
error code and whose message ends "The field 'x' ..."; app/api_input.py makes it the
error body. Never give a request field a plain pydantic type: its coercions (`"1"` -> 1,
`null` for an optional field) would quietly loosen the API.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from annotated_types import GroupedMetadata
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from connext.protocol import errors
from connext.protocol.swaps import SwapQuote, quote_from_json

from .assets import InputError
from .assets import parse_address as parse_user_address

MAX_UINT256 = 2**256 - 1
ROUTABLE_DEFINITIONS = ("Hashlock", "Signed", "Stream")
"""Transfer definitions a conditional transfer may use (Withdraw has its own route)."""
MIN_TIMEOUT, MAX_TIMEOUT = 60, 30 * 24 * 3600  # the node's and SDK's default bounds
MAX_WAIT = 60
MAX_VOUCHERS = 1000
"""Vouchers one call to a stream's pay route may send (it returns once all are stored)."""
RESERVED_META = ("recipient", "routingId", "encryptedPreimage", "link", "sender", "oracle",
                 "stream", "quote", "recipientAsset")
"""Keys of a transfer's `meta` the network sets; a caller may not send them."""
Json = dict[str, Any]


def refuse(code: str, says: str, *, whole: bool = False) -> PydanticCustomError:
    """A field's refusal: `says` completes "The field 'x' ..." (or is the whole sentence)."""
    return PydanticCustomError(code, says.replace("{", "{{").replace("}", "}}"),
                               {"whole": True} if whole else None)


@dataclass(frozen=True)
class _Field(GroupedMetadata):
    """A request field type: its parser (given the raw JSON value) and its schema."""

    parse: Callable[[Any], Any]
    schema: Json

    def __iter__(self) -> Iterator[object]:
        yield PlainValidator(self.parse)
        yield WithJsonSchema(self.schema)


# --- request field types ----------------------------------------------------------------------

ADDRESS = {"type": "string", "pattern": "^0[xX][0-9a-fA-F]{40}$",
           "example": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"}
BYTES32 = {"type": "string", "pattern": "^0x[0-9a-fA-F]{64}$"}
SIGNATURE = {"type": "string", "pattern": "^0x[0-9a-fA-F]{130}$"}
HEX = {"type": "string", "pattern": "^0x([0-9a-fA-F]{2})*$"}
UINT = {"type": "string", "pattern": "^[0-9]+$", "description": "a decimal integer"}


def parse_amount(value: Any) -> int:
    """A positive amount in base units: a decimal string ("1500") or a JSON integer."""
    whole = 'must be a whole number of base units, as a decimal string like "1500000".'
    if isinstance(value, bool) or value is None or isinstance(value, list | dict):
        raise refuse("invalid_amount", whole)
    if isinstance(value, float):
        raise refuse("invalid_amount", 'must be a whole number of base units (1 ETH is '
                                       '"1000000000000000000"); send it as a decimal '
                                       "string, not a fractional number.")
    if isinstance(value, int):
        number = value
    else:
        text = str(value)
        if re.fullmatch(r"\s*-\s*\d+(\.\d*)?\s*", text):
            raise refuse("invalid_amount", "must be more than zero.")
        if re.fullmatch(r"\d*\.\d*", text) and any(c.isdigit() for c in text):
            raise refuse("invalid_amount", "is in base units, so it has no decimals (1 ETH "
                                           'is "1000000000000000000").')
        if not re.fullmatch(r"[0-9]+", text):
            raise refuse("invalid_amount", whole)
        if len(text.lstrip("0")) > 78:
            raise refuse("invalid_amount", "is too large (at most 2^256 - 1).")
        number = int(text)
    if number <= 0:
        raise refuse("invalid_amount", "must be more than zero.")
    if number > MAX_UINT256:
        raise refuse("invalid_amount", "is too large (at most 2^256 - 1).")
    return number


def parse_address(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"0[xX][0-9a-fA-F]{40}", value):
        raise refuse("invalid_address", "must be an Ethereum address (0x followed by 40 hex "
                                        "characters).")
    try:
        return parse_user_address(value)
    except InputError as exc:
        raise refuse("invalid_address", exc.message, whole=True) from None


def parse_asset_ref(value: Any) -> str:
    """An asset as its symbol ("ETH") or address; resolved against the network's assets."""
    if not isinstance(value, str) or not 1 <= len(value) <= 42:
        raise refuse("unknown_asset", 'must be an asset\'s symbol (like "ETH") or its '
                                      "address.")
    return value


def parse_hex(value: Any, length: int | None = None) -> bytes:
    what = f"must be {length} bytes as 0x-prefixed hex." if length else \
        "must be 0x-prefixed hex with an even number of digits."
    if not isinstance(value, str) or not value.startswith("0x"):
        raise refuse("invalid_hex", what)
    digits = value[2:]
    if not re.fullmatch(r"(?:[0-9a-fA-F]{2})*", digits):
        raise refuse("invalid_hex", what)
    raw = bytes.fromhex(digits)
    if length is not None and len(raw) != length:
        raise refuse("invalid_hex", what)
    return raw


def _definition(value: Any) -> str:
    if value not in ROUTABLE_DEFINITIONS:
        raise refuse("unknown_transfer_definition",
                     f"must be one of {', '.join(ROUTABLE_DEFINITIONS)}.")
    return str(value)


def _integer(low: int, high: int, unit: str) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise refuse("invalid_input", f"must be a whole number of {unit} from {low} to "
                                          f"{high}.")
        return value

    return parse


def _meta(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise refuse("invalid_input", "must be a JSON object.")
    for key in RESERVED_META:
        if key in value:
            raise refuse("invalid_input", f"may not use the key '{key}'; the network sets it.")
    return value


PAYMENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def _payment_id(value: Any) -> str:
    if not isinstance(value, str) or PAYMENT_ID.fullmatch(value) is None:
        raise refuse("invalid_input", "must be 1 to 64 letters, digits or . _ : -.")
    return value


def _label(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 100:
        raise refuse("invalid_input", "must be text of at most 100 characters.")
    return value


Amount = Annotated[int, _Field(parse_amount, {
    "description": "An amount in base units (1 ETH = 1000000000000000000): a decimal string "
                   "(recommended; JSON numbers above 2^53 lose precision in many languages) "
                   "or a JSON integer. More than zero, at most 2^256 - 1. Fractions, floats, "
                   "exponents and signs are refused.",
    "oneOf": [{"type": "string", "pattern": "^0*[1-9][0-9]*$"},
              {"type": "integer", "minimum": 1}],
    "example": "250000000000000000"})]
Address = Annotated[str, _Field(parse_address, ADDRESS)]
OptionalAddress = Annotated[str | None, _Field(parse_address, ADDRESS)]
AssetRef = Annotated[str, _Field(parse_asset_ref, {
    "type": "string", "minLength": 1, "maxLength": 42,
    "description": "An asset of the network by symbol (\"ETH\") or address (ETH is the zero "
                   "address).", "example": "ETH"})]
Hex = Annotated[bytes, _Field(parse_hex, HEX)]
Bytes32 = Annotated[bytes, _Field(lambda v: parse_hex(v, 32), BYTES32)]
Signature = Annotated[bytes, _Field(lambda v: parse_hex(v, 65), SIGNATURE)]
Definition = Annotated[str, _Field(_definition, {"type": "string",
                                                   "enum": list(ROUTABLE_DEFINITIONS)})]
Timeout = Annotated[int | None, _Field(_integer(MIN_TIMEOUT, MAX_TIMEOUT, "seconds"), {
    "type": "integer", "minimum": MIN_TIMEOUT, "maximum": MAX_TIMEOUT})]
Wait = Annotated[int | None, _Field(_integer(0, MAX_WAIT, "seconds"), {
    "type": "integer", "minimum": 0, "maximum": MAX_WAIT})]
Count = Annotated[int | None, _Field(_integer(1, MAX_VOUCHERS, "vouchers"), {
    "type": "integer", "minimum": 1, "maximum": MAX_VOUCHERS})]
Meta = Annotated[dict[str, Any] | None, _Field(_meta, {
    "type": "object", "additionalProperties": True,
    "description": "your own data, carried with the transfer (the keys "
                   f"{', '.join(RESERVED_META[:-1])} and {RESERVED_META[-1]} are reserved)"})]
PaymentId = Annotated[str | None, _Field(_payment_id, {
    "type": "string", "pattern": "^[A-Za-z0-9._:-]{1,64}$",
    "description": "your idempotency key: calling again with the same key returns the same "
                   "payment and never pays twice"})]
Label = Annotated[str | None, _Field(_label, {"type": "string", "maxLength": 100})]

def _quote(value: Any) -> SwapQuote:
    try:
        return quote_from_json(value)
    except errors.InvalidQuote:
        raise refuse("invalid_quote", "must be a quote exactly as POST .../quotes returned "
                                      "it.") from None


QuoteTtl = Annotated[int | None, _Field(_integer(1, 3600, "seconds"), {
    "type": "integer", "minimum": 1, "maximum": 3600})]
QuoteIn = Annotated[SwapQuote | None, _Field(_quote, {
    "type": "object", "additionalProperties": True,
    "description": "a swap quote exactly as POST /api/v1/wallets/{address}/quotes returned "
                   "it: the recipient receives its amountOut of its assetOut (the transfer "
                   "pays its amountIn of its assetIn); the node refuses it altered, expired "
                   "or used"})]

TIMEOUT_DOC = "seconds until an unclaimed transfer is refunded (default 3600)"


class Body(BaseModel):
    """A request body: camelCase names only, no field but those declared. An optional
    field left out is None; sent as `null` it is refused like any other wrong value."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, frozen=True)


class Query(BaseModel):
    """A query string: values arrive as text and are parsed by the field types."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- request bodies ---------------------------------------------------------------------------


class NewWalletRequest(Body):
    label: Label = Field(None, description="a name for the API token")


class AssetRequest(Body):
    asset_id: AssetRef


class Payment(Body):
    recipient: Address
    asset_id: AssetRef
    amount: Amount


class TransferRequest(Payment):
    timeout: Timeout = Field(None, description=TIMEOUT_DOC)
    payment_id: PaymentId = None
    wait: Wait = Field(None, description="seconds to wait for the recipient (default 30; 0 "
                                         "returns at once as pending)")
    meta: Meta = None
    quote: QuoteIn = None


class QuoteRequest(Body):
    asset_in: AssetRef
    asset_out: AssetRef
    amount_in: Amount
    ttl: QuoteTtl = Field(None, description="seconds the quote should hold (the node's "
                                            "limit when more or left out)")


class ConditionalTransferRequest(Payment):
    definition: Definition
    initial_state: Hex = Field(description="the definition's ABI-encoded initial state")
    timeout: Timeout = Field(None, description=TIMEOUT_DOC)
    meta: Meta = None
    payment_id: PaymentId = None


class ResolveRequest(Body):
    resolver: Hex = Field(description="the definition's ABI-encoded resolver")


class EmptyRequest(Body):
    """No fields: the body may be left out, or be `{}`."""


class WithdrawRequest(Payment):
    wait: Wait = Field(None, description="seconds to wait for the transaction (default 60)")


class ExitRequest(Body):
    recipient: OptionalAddress = Field(None, description="where the funds go (default: the "
                                                         "wallet's own address)")


class StreamRequest(Body):
    recipient: Address
    asset_id: AssetRef
    budget: Amount = Field(description="base units locked once; vouchers pay out of it")
    timeout_seconds: Timeout = Field(None, description="seconds until the stream expires "
                                                       "(default 3600); the recipient "
                                                       "settles it before then")
    payment_id: PaymentId = None


class StreamPayRequest(Body):
    amount: Amount = Field(description="base units each voucher pays")
    count: Count = Field(None, description="vouchers to pay, one after the other (default "
                                           "1); the call returns once the recipient stored "
                                           "them all")


class OraclePaymentRequest(Payment):
    oracle: Address = Field(description="the address whose receipt releases the payment")
    oracle_payment_id: Bytes32 = Field(description="what the oracle's receipt names (32 "
                                                   "bytes)")
    timeout_seconds: Timeout = Field(None, description="seconds until an unclaimed payment "
                                                       "is refunded (default 3600)")
    payment_id: PaymentId = None


class ClaimRequest(Body):
    data: Bytes32 = Field(description="the outcome the oracle signed (32 bytes)")
    signature: Signature = Field(description="the oracle's receipt: its signature over "
                                             "(oraclePaymentId, data)")


# --- query strings ----------------------------------------------------------------------------


def _query_int(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if not isinstance(value, str) or not re.fullmatch(r"[0-9]{1,19}", value) \
                or not low <= int(value) <= high:
            raise refuse("invalid_input", f"must be a whole number from {low} to {high}.")
        return int(value)

    return parse


class HistoryQuery(Query):
    after: Annotated[int | None, _Field(_query_int(0, 2**63 - 1), {
        "type": "integer", "minimum": 0, "maximum": 2**63 - 1})] = Field(
        None, description="only events with a larger id (default 0)")
    limit: Annotated[int | None, _Field(_query_int(1, 500), {
        "type": "integer", "minimum": 1, "maximum": 500})] = Field(
        None, description="at most this many (default 100)")


# --- path parameters (checked by the views, documented from here) ----------------------------

PATH_PARAMETERS: dict[str, tuple[Json, str]] = {
    "address": (ADDRESS, "the wallet's address (the token must belong to it)"),
    "transferId": (BYTES32, "a transfer paying this wallet"),
    "streamId": (BYTES32, "a stream of this wallet, either way"),
}


# --- responses --------------------------------------------------------------------------------


class Reply(BaseModel):
    """A response body: exactly these fields (the document says so to integrators)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


AddressOut = Annotated[str, Field(pattern=ADDRESS["pattern"],
                                  json_schema_extra={"example": ADDRESS["example"]})]
Bytes32Out = Annotated[str, Field(pattern=BYTES32["pattern"])]
HexOut = Annotated[str, Field(pattern=HEX["pattern"])]
Uint = Annotated[str, Field(pattern=UINT["pattern"], description=UINT["description"])]
Pair = Annotated[list[Uint], Field(min_length=2, max_length=2)]


class ErrorDetail(Reply):
    code: str = Field(description="stable, machine-readable",
                      json_schema_extra={"example": "insufficient_balance"})
    message: str = Field(description="a sentence for people", json_schema_extra={
        "example": "That is more than this wallet's balance (0.5 ETH, 500000000000000000 "
                   "base units)."})
    field: Annotated[str | None, WithJsonSchema({"type": "string"})] = Field(
        None, description="the request field at fault, if one is (absent otherwise)",
        json_schema_extra={"example": "amount"})


class Error(Reply):
    error: ErrorDetail


class Asset(Reply):
    address: AddressOut
    symbol: str
    decimals: int
    name: str


class Balance(Reply):
    assetId: AddressOut
    symbol: str
    decimals: int
    amount: Uint
    formatted: str = Field(json_schema_extra={"example": "0.25"})


class NewWallet(Reply):
    address: AddressOut
    channelAddress: AddressOut
    token: str = Field(description="the API token; shown only once",
                       json_schema_extra={"example": "cxt_..."})


class WalletInfo(Reply):
    address: AddressOut
    channelAddress: AddressOut
    nodeAddress: AddressOut
    chainId: int
    assets: list[Asset]


class Balances(Reply):
    address: AddressOut
    balances: list[Balance]


class Network(Reply):
    chainId: Uint
    channelFactory: AddressOut
    channelMastercopy: AddressOut
    transferRegistry: AddressOut


class ChannelState(Reply):
    """The latest double-signed channel state (alice is the node, bob the wallet).

    The format of docs/PROTOCOL.md.
    """

    channelAddress: AddressOut
    alice: AddressOut
    bob: AddressOut
    network: Network
    assetIds: list[AddressOut]
    balances: list[Pair] = Field(description="[node, user] per asset")
    processedDepositsA: list[Uint]
    processedDepositsB: list[Uint]
    defundNonces: list[Uint]
    timeout: Uint
    nonce: Uint
    merkleRoot: Bytes32Out


class Update(Reply):
    """The update that produced the state, with both signatures."""

    channelAddress: AddressOut
    initiator: AddressOut
    responder: AddressOut
    type: Literal["setup", "deposit", "create", "resolve"]
    nonce: Uint
    details: dict[str, Any]
    aliceSignature: HexOut | None
    bobSignature: HexOut | None


class TransferBalance(Reply):
    amount: Pair
    to: Annotated[list[AddressOut], Field(min_length=2, max_length=2)]


class Transfer(Reply):
    channelAddress: AddressOut
    transferId: Bytes32Out
    transferDefinition: AddressOut
    initiator: AddressOut
    responder: AddressOut
    assetId: AddressOut
    balance: TransferBalance
    transferTimeout: Uint
    initialState: HexOut
    channelNonce: Uint
    meta: dict[str, Any]
    resolver: HexOut | None


class Channel(Reply):
    channelAddress: AddressOut
    state: ChannelState
    latestUpdate: Update
    transfers: list[Transfer] = Field(description="transfers still locked in the channel")


class Credited(Reply):
    credited: Uint = Field(description="base units credited by this call")
    balance: Balance


class FaucetResult(Reply):
    transactionHash: Bytes32Out
    credited: Uint = Field(description="base units credited")
    balance: Balance


class Quote(Reply):
    """A swap quote, signed by the node for this wallet's channel (docs/PROTOCOL.md)."""

    quoteId: Bytes32Out
    node: AddressOut
    chainId: Uint
    payer: AddressOut
    channelAddress: AddressOut
    assetIn: AddressOut
    assetOut: AddressOut
    amountIn: Uint
    amountOut: Uint = Field(description="what the recipient receives, the fee taken")
    fee: Uint = Field(description="the node's fee, in the asset out")
    expiry: Uint = Field(description="unix seconds; a transfer must be made before it")
    signature: HexOut


class PaymentResult(Reply):
    transferId: Bytes32Out
    routingId: Bytes32Out
    status: Literal["completed", "cancelled", "pending"] = Field(
        description="completed: the recipient has it; cancelled: refunded; pending: not "
                    "settled yet (watch the events or history)")


class ResolveResult(Reply):
    transferId: Bytes32Out
    status: Literal["resolved"]
    received: Uint = Field(description="base units credited to this wallet")


class CancelResult(Reply):
    transferId: Bytes32Out
    status: Literal["cancelled"]


class WithdrawResult(Reply):
    transferId: Bytes32Out
    transactionHash: Bytes32Out | None
    status: Literal["confirmed", "failed", "cancelled", "pending"] = Field(
        description="confirmed: paid on chain; failed or cancelled: the funds are back in "
                    "the channel; pending: not mined yet")


class Dispute(Reply):
    nonce: int = Field(description="nonce of the state disputed on chain")
    consensusExpiry: int = Field(
        description="block time (unix seconds) from which /exit pays")
    transactionHash: Bytes32Out | None = Field(
        description="our dispute; null when the chain already held this state or a later "
                    "one")


class ExitProgress(Reply):
    paidOut: dict[str, Uint] = Field(
        description="base units sent by this call, by asset address")
    waiting: dict[str, int] = Field(description="transfers (by id) still locked on chain, "
                                                "with the block time they can be settled; "
                                                "call again then")
    done: bool


class Event(Reply):
    id: int
    event: str = Field(json_schema_extra={"example": "transfer.received"})
    data: dict[str, Any]
    createdAt: str = Field(json_schema_extra={"format": "date-time"})


class History(Reply):
    events: list[Event]
    lastId: int | None = Field(description="pass as `after` to read on")


Direction = Literal["outgoing", "incoming"]


class Stream(Reply):
    """A stream of this wallet: a budget locked once, paid out voucher by voucher."""

    streamId: Bytes32Out
    direction: Direction = Field(description="outgoing: this wallet pays it")
    counterparty: AddressOut = Field(description="the recipient of an outgoing stream, the "
                                                 "payer of an incoming one")
    assetId: AddressOut
    symbol: str
    budget: Uint = Field(description="base units locked (0 once closed)")
    streamed: Uint = Field(description="base units of the highest voucher (paid once "
                                       "closed)")
    left: Uint = Field(description="what the budget still covers")
    vouchers: int = Field(description="vouchers counted by this server since it started")
    status: Literal["open", "streaming", "completed", "refunded"] = Field(
        description="open; streaming: paying in the background (the wallet screen); "
                    "completed: settled with the highest voucher; refunded: closed with "
                    "nothing streamed")
    expiry: int = Field(description="unix seconds after which it is refunded (0 once "
                                    "closed)")


class Streams(Reply):
    streams: list[Stream] = Field(description="open streams both ways, then the ones closed "
                                              "lately")


class StreamClosed(Reply):
    streamId: Bytes32Out
    status: Literal["completed", "refunded"] = Field(
        description="completed: settled with the highest voucher, the rest of the budget "
                    "went back to the payer; refunded: nothing was streamed")
    streamed: Uint = Field(description="base units the recipient got")


class OraclePayment(Reply):
    """An oracle payment waiting for its receipt, either way."""

    transferId: Bytes32Out = Field(description="this wallet's transfer; the recipient "
                                               "claims with its own")
    direction: Direction
    counterparty: AddressOut
    assetId: AddressOut
    symbol: str
    amount: Uint
    oracle: AddressOut
    oraclePaymentId: Bytes32Out
    expiry: int = Field(description="unix seconds after which it is refunded")


class OraclePayments(Reply):
    oraclePayments: list[OraclePayment]


class ClaimResult(Reply):
    transferId: Bytes32Out
    status: Literal["claimed"]
    received: Uint = Field(description="base units credited to this wallet")
