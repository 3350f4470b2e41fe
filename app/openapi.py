"""The OpenAPI 3.0 document of the JSON API (served at /api/openapi.json).

Request schemas are never stricter than the server: anything the schema rejects, the
server rejects too (schemathesis checks both directions of that in tests/api). The server
may refuse more (a zero amount, an address with a bad checksum, an unknown asset).
"""

from __future__ import annotations

from typing import Any

from .api_input import MAX_DEPTH, MAX_TIMEOUT, MAX_WAIT, MIN_TIMEOUT, ROUTABLE_DEFINITIONS

Json = dict[str, Any]


def ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: Json, required: list[str] | None = None, *,
        extra: bool = False, description: str | None = None) -> Json:
    schema: Json = {"type": "object", "properties": properties,
                    "required": list(properties) if required is None else required,
                    "additionalProperties": extra}
    if not schema["required"]:
        del schema["required"]
    if description:
        schema["description"] = description
    return schema


ADDRESS = {"type": "string", "pattern": "^0[xX][0-9a-fA-F]{40}$",
           "example": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"}
BYTES32 = {"type": "string", "pattern": "^0x[0-9a-fA-F]{64}$"}
HEX = {"type": "string", "pattern": "^0x([0-9a-fA-F]{2})*$"}
UINT = {"type": "string", "pattern": "^[0-9]+$", "description": "a decimal integer"}
TEXT = {"type": "string"}

SCHEMAS: Json = {
    "Error": obj({"error": obj({
        "code": {"type": "string", "description": "stable, machine-readable",
                 "example": "insufficient_balance"},
        "message": {"type": "string", "description": "a sentence for people",
                    "example": "That is more than this wallet's balance (0.5 ETH, "
                               "500000000000000000 base units)."},
        "field": {"type": "string", "description": "the request field at fault, if one is",
                  "example": "amount"},
    }, ["code", "message"])}),
    "Address": ADDRESS,
    "Bytes32": BYTES32,
    "Hex": HEX,
    "Uint": UINT,
    "Amount": {
        "description": "An amount in base units (1 ETH = 1000000000000000000): a decimal "
                       "string (recommended; JSON numbers above 2^53 lose precision in many "
                       "languages) or a JSON integer. More than zero, at most 2^256 - 1. "
                       "Fractions, floats, exponents and signs are refused.",
        "oneOf": [{"type": "string", "pattern": "^0*[1-9][0-9]*$"},
                  {"type": "integer", "minimum": 1}],
        "example": "250000000000000000",
    },
    "AssetRef": {"type": "string", "minLength": 1, "maxLength": 42,
                 "description": "An asset of the network by symbol (\"ETH\") or address "
                                "(ETH is the zero address).", "example": "ETH"},
    "Asset": obj({"address": ADDRESS, "symbol": TEXT, "decimals": {"type": "integer"},
                  "name": TEXT}),
    "Balance": obj({"assetId": ADDRESS, "symbol": TEXT, "decimals": {"type": "integer"},
                    "amount": UINT, "formatted": {"type": "string", "example": "0.25"}}),
    "NewWallet": obj({"address": ADDRESS, "channelAddress": ADDRESS,
                      "token": {"type": "string", "description": "the API token; shown only "
                                                                 "once", "example": "cxt_..."}}),
    "WalletInfo": obj({"address": ADDRESS, "channelAddress": ADDRESS, "nodeAddress": ADDRESS,
                       "chainId": {"type": "integer"},
                       "assets": {"type": "array", "items": ref("Asset")}}),
    "Balances": obj({"address": ADDRESS,
                     "balances": {"type": "array", "items": ref("Balance")}}),
    "Network": obj({"chainId": UINT, "channelFactory": ADDRESS, "channelMastercopy": ADDRESS,
                    "transferRegistry": ADDRESS}),
    "ChannelState": obj({
        "channelAddress": ADDRESS, "alice": ADDRESS, "bob": ADDRESS,
        "network": ref("Network"),
        "assetIds": {"type": "array", "items": ADDRESS},
        "balances": {"type": "array", "description": "[node, user] per asset",
                     "items": {"type": "array", "items": UINT, "minItems": 2,
                               "maxItems": 2}},
        "processedDepositsA": {"type": "array", "items": UINT},
        "processedDepositsB": {"type": "array", "items": UINT},
        "defundNonces": {"type": "array", "items": UINT},
        "timeout": UINT, "nonce": UINT, "merkleRoot": BYTES32,
    }, description="The latest double-signed channel state (alice is the node, bob the "
                   "wallet); the format of docs/PROTOCOL.md."),
    "Update": obj({
        "channelAddress": ADDRESS, "initiator": ADDRESS, "responder": ADDRESS,
        "type": {"type": "string", "enum": ["setup", "deposit", "create", "resolve"]},
        "nonce": UINT,
        "details": {"type": "object", "additionalProperties": True},
        "aliceSignature": {**HEX, "nullable": True},
        "bobSignature": {**HEX, "nullable": True},
    }, description="The update that produced the state, with both signatures."),
    "Transfer": obj({
        "channelAddress": ADDRESS, "transferId": BYTES32, "transferDefinition": ADDRESS,
        "initiator": ADDRESS, "responder": ADDRESS, "assetId": ADDRESS,
        "balance": obj({"amount": {"type": "array", "items": UINT, "minItems": 2,
                                   "maxItems": 2},
                        "to": {"type": "array", "items": ADDRESS, "minItems": 2,
                               "maxItems": 2}}),
        "transferTimeout": UINT, "initialState": HEX, "channelNonce": UINT,
        "meta": {"type": "object", "additionalProperties": True},
        "resolver": {**HEX, "nullable": True},
    }),
    "Channel": obj({"channelAddress": ADDRESS, "state": ref("ChannelState"),
                    "latestUpdate": ref("Update"),
                    "transfers": {"type": "array", "items": ref("Transfer"),
                                  "description": "transfers still locked in the channel"}}),
    "Credited": obj({"credited": {**UINT, "description": "base units credited by this call"},
                     "balance": ref("Balance")}),
    "FaucetResult": obj({"transactionHash": BYTES32,
                         "credited": {**UINT, "description": "base units credited"},
                         "balance": ref("Balance")}),
    "PaymentResult": obj({
        "transferId": BYTES32, "routingId": BYTES32,
        "status": {"type": "string", "enum": ["completed", "cancelled", "pending"],
                   "description": "completed: the recipient has it; cancelled: refunded; "
                                  "pending: not settled yet (watch the events or history)"},
    }),
    "ResolveResult": obj({"transferId": BYTES32,
                          "status": {"type": "string", "enum": ["resolved"]},
                          "received": {**UINT, "description": "base units credited to this "
                                                              "wallet"}}),
    "CancelResult": obj({"transferId": BYTES32,
                         "status": {"type": "string", "enum": ["cancelled"]}}),
    "WithdrawResult": obj({
        "transferId": BYTES32,
        "transactionHash": {**BYTES32, "nullable": True},
        "status": {"type": "string", "enum": ["confirmed", "failed", "cancelled", "pending"],
                   "description": "confirmed: paid on chain; failed or cancelled: the funds "
                                  "are back in the channel; pending: not mined yet"},
    }),
    "Dispute": obj({
        "nonce": {"type": "integer", "description": "nonce of the state disputed on chain"},
        "consensusExpiry": {"type": "integer",
                            "description": "block time (unix seconds) from which /exit pays"},
        "transactionHash": {**BYTES32, "nullable": True,
                            "description": "our dispute; null when the chain already held "
                                           "this state or a later one"},
    }),
    "ExitProgress": obj({
        "paidOut": {"type": "object", "additionalProperties": UINT,
                    "description": "base units sent by this call, by asset address"},
        "waiting": {"type": "object", "additionalProperties": {"type": "integer"},
                    "description": "transfers (by id) still locked on chain, with the "
                                   "block time they can be settled; call again then"},
        "done": {"type": "boolean"},
    }),
    "Event": obj({"id": {"type": "integer"}, "event": {"type": "string",
                                                         "example": "transfer.received"},
                  "data": {"type": "object", "additionalProperties": True},
                  "createdAt": {"type": "string", "format": "date-time"}}),
    "History": obj({"events": {"type": "array", "items": ref("Event")},
                    "lastId": {"type": "integer", "nullable": True,
                               "description": "pass as `after` to read on"}}),
}

# --- request bodies -------------------------------------------------------------------------

PAYMENT = {"recipient": ADDRESS, "assetId": ref("AssetRef"), "amount": ref("Amount")}
TIMEOUT = {"type": "integer", "minimum": MIN_TIMEOUT, "maximum": MAX_TIMEOUT,
           "description": "seconds until an unclaimed transfer is refunded (default 3600)"}
WAIT = {"type": "integer", "minimum": 0, "maximum": MAX_WAIT}
META = {"type": "object", "additionalProperties": True,
        "description": "your own data, carried with the transfer (the keys recipient, "
                       "routingId, encryptedPreimage, link and sender are reserved)"}

PAYMENT_ID = {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,64}$",
              "description": "your idempotency key: calling again with the same key returns "
                             "the same payment and never pays twice"}

BODIES: Json = {
    "NewWalletRequest": obj({"label": {"type": "string", "maxLength": 100,
                                       "description": "a name for the API token"}}, []),
    "AssetRequest": obj({"assetId": ref("AssetRef")}),
    "TransferRequest": obj({**PAYMENT, "timeout": TIMEOUT, "paymentId": PAYMENT_ID,
                            "wait": {**WAIT, "description": "seconds to wait for the "
                                                            "recipient (default 30; 0 returns "
                                                            "at once as pending)"},
                            "meta": META}, list(PAYMENT)),
    "ConditionalTransferRequest": obj({
        **PAYMENT,
        "definition": {"type": "string", "enum": list(ROUTABLE_DEFINITIONS)},
        "initialState": {**HEX, "description": "the definition's ABI-encoded initial state"},
        "timeout": TIMEOUT, "meta": META, "paymentId": PAYMENT_ID,
    }, [*PAYMENT, "definition", "initialState"]),
    "ResolveRequest": obj({"resolver": {**HEX, "description": "the definition's ABI-encoded "
                                                              "resolver"}}),
    "WithdrawRequest": obj({**PAYMENT, "wait": {**WAIT, "description": "seconds to wait for "
                                                                      "the transaction (default "
                                                                      "60)"}},
                           list(PAYMENT)),
    "ExitRequest": obj({"recipient": {**ADDRESS, "description": "where the funds go "
                                                                "(default: the wallet's own "
                                                                "address)"}}, []),
}
SCHEMAS.update(BODIES)

ERRORS = {
    401: "No token, or a token that is unknown or revoked.",
    403: "The token belongs to another wallet than the one in the path.",
    404: "No such route, or (where a transfer is named) no such active transfer.",
    409: "A conflict with the channel's state; retry.",
    413: "The body is larger than 64 KiB.",
    415: "The body is not sent as application/json.",
    422: "The request is malformed or the network refused it (the error says why and which "
         "field).",
    429: "Too many event streams open (8 per wallet, 256 in all).",
    500: "An unexpected error; nothing was sent.",
    502: "The node failed to handle the request.",
    503: "The node or the chain is not reachable, or the operation did not finish in time.",
}


def error(status: int, description: str | None = None) -> Json:
    response: Json = {"description": description or ERRORS[status],
                      "content": {"application/json": {"schema": ref("Error")}}}
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"},
                                                    "description": 'Bearer realm="connext"'}}
    return response


def ok(schema: str, description: str, status: int = 200) -> Json:
    return {str(status): {"description": description,
                          "content": {"application/json": {"schema": ref(schema)}}}}


def responses(success: Json, *statuses: int, body: bool = False) -> Json:
    codes = {401, 403, 404, 500, 502, 503, *statuses}
    if body:
        codes |= {413, 415, 422}
    return {**success, **{str(s): error(s) for s in sorted(codes)}}


def body(schema: str, required: bool = True) -> Json:
    return {"required": required,
            "content": {"application/json": {"schema": ref(schema)}}}


WALLET_PARAM = {"name": "address", "in": "path", "required": True, "schema": ADDRESS,
                "description": "the wallet's address (the token must belong to it)"}
TRANSFER_PARAM = {"name": "transferId", "in": "path", "required": True, "schema": BYTES32}
W = "/api/v1/wallets/{address}"


def operation(operation_id: str, summary: str, resp: Json, *, request: Json | None = None,
              params: list[Json] | None = None, auth: bool = True,
              description: str | None = None) -> Json:
    op: Json = {"operationId": operation_id, "summary": summary, "tags": ["wallet"],
                "responses": resp}
    if description:
        op["description"] = description
    if request is not None:
        op["requestBody"] = request
    if params:
        op["parameters"] = params
    if not auth:
        op["security"] = []
    return op


PATHS: Json = {
    "/api/v1/wallets": {"post": operation(
        "createWallet", "Create a wallet and its first API token",
        {**ok("NewWallet", "The new wallet; keep the token, it is shown only once.", 201),
         **{str(s): error(s) for s in (413, 415, 422, 500, 503)},
         "429": {**error(429, "Too many new wallets from this client address (see "
                              "`Retry-After`)."),
                 "headers": {"Retry-After": {"schema": {"type": "string"},
                                             "description": "seconds until one more is "
                                                            "allowed"}}}},
        request=body("NewWalletRequest", required=False), auth=False,
        description="No authentication. Creates a wallet (its key stays on the server, "
                    "encrypted), opens its channel with the node and returns an API token "
                    "for it. Limited per client address (`CONNEXT_WEB_NEW_WALLETS_PER_HOUR`,"
                    " default 60).")},
    W: {"get": operation(
        "getWallet", "The wallet: addresses, node, chain and assets",
        responses(ok("WalletInfo", "The wallet")), params=[WALLET_PARAM])},
    f"{W}/balances": {"get": operation(
        "getBalances", "Spendable balance per asset",
        responses(ok("Balances", "Balances in base units and formatted")),
        params=[WALLET_PARAM])},
    f"{W}/channel": {"get": operation(
        "getChannel", "The latest double-signed state and the active transfers",
        responses(ok("Channel", "The channel")), params=[WALLET_PARAM])},
    f"{W}/deposit": {"post": operation(
        "reconcileDeposit", "Credit what was sent to the channel address",
        responses(ok("Credited", "The balance after reconciling"), 409, body=True),
        request=body("AssetRequest"), params=[WALLET_PARAM],
        description="Send ETH or tokens to the wallet's channel address on chain (any "
                    "account may), then call this to credit them; the node also credits "
                    "deposits by itself after a few blocks.")},
    f"{W}/faucet": {"post": operation(
        "faucet", "Test funds (local development chain only)",
        {**responses(ok("FaucetResult", "Sent and credited"), 409, body=True),
         "429": {**error(429, "The faucet gave this wallet, or everyone, as much as it "
                              "gives per hour (see `Retry-After`)."),
                 "headers": {"Retry-After": {"schema": {"type": "string"},
                                             "description": "seconds until one more is "
                                                            "allowed"}}}},
        request=body("AssetRequest"), params=[WALLET_PARAM],
        description="Sends 1 ETH or 100 test tokens from the development account to the "
                    "channel address and credits them, a few times per wallet and hour "
                    "(`CONNEXT_FAUCET_PER_WALLET_PER_HOUR`, `CONNEXT_FAUCET_PER_HOUR`). 403 "
                    "`faucet_disabled` elsewhere.")},
    f"{W}/transfers": {"post": operation(
        "transfer", "Pay another wallet of the node",
        responses(ok("PaymentResult", "The payment", 201), 409, body=True),
        request=body("TransferRequest"), params=[WALLET_PARAM],
        description="Waits up to `wait` seconds (default 30) for the recipient to claim it.")},
    f"{W}/transfers/conditional": {"post": operation(
        "conditionalTransfer", "A routed transfer under a transfer definition",
        responses(ok("PaymentResult", "The transfer, pending until the recipient resolves "
                                      "it", 201), 409, body=True),
        request=body("ConditionalTransferRequest"), params=[WALLET_PARAM])},
    f"{W}/transfers/{{transferId}}/resolve": {"post": operation(
        "resolveTransfer", "Resolve a transfer paying this wallet",
        responses(ok("ResolveResult", "Resolved"), 409, body=True),
        request=body("ResolveRequest"), params=[WALLET_PARAM, TRANSFER_PARAM])},
    f"{W}/transfers/{{transferId}}/cancel": {"post": operation(
        "cancelTransfer", "Decline a transfer paying this wallet (the payer is refunded)",
        responses(ok("CancelResult", "Cancelled"), 409, body=True),
        request={"required": False, "content": {"application/json": {
            "schema": {"type": "object", "additionalProperties": False}}}},
        params=[WALLET_PARAM, TRANSFER_PARAM])},
    f"{W}/withdrawals": {"post": operation(
        "withdraw", "Move funds out of the channel to any address (the node pays the gas)",
        responses(ok("WithdrawResult", "The withdrawal", 201), 409, body=True),
        request=body("WithdrawRequest"), params=[WALLET_PARAM])},
    f"{W}/force-close": {"post": operation(
        "forceClose", "Dispute the latest co-signed state on chain (leave without the node)",
        responses(ok("Dispute", "The channel's dispute"), 409),
        params=[WALLET_PARAM],
        description="Sent and paid for (gas) by the wallet's own account; on the local "
                    "chain the faucet funds it. The channel takes no more payments after "
                    "this. Idempotent.")},
    f"{W}/exit": {"post": operation(
        "exitChannel", "After the dispute window: send what the channel owes the wallet "
                       "to an address",
        responses(ok("ExitProgress", "What this call paid out and what still waits"), 409,
                  body=True),
        request=body("ExitRequest", required=False), params=[WALLET_PARAM],
        description="409 `not_disputed` before /force-close, `dispute_window_open` while "
                    "the window is open. Call again until `done`.")},
    f"{W}/history": {"get": operation(
        "getHistory", "The wallet's event log, oldest first",
        responses(ok("History", "A page of events"), 422),
        params=[WALLET_PARAM,
                {"name": "after", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
                 "description": "only events with a larger id (default 0)"},
                {"name": "limit", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 1, "maximum": 500},
                 "description": "at most this many (default 100)"}])},
    f"{W}/events": {"get": operation(
        "streamEvents", "Live events (server-sent events)",
        {"200": {"description": "An endless text/event-stream: a `ready` event, then one "
                                "event per wallet event (`event:` its name, `data:` JSON), "
                                "and a `: heartbeat` comment every 15 seconds.",
                 "content": {"text/event-stream": {"schema": {"type": "string"}}}},
         **{str(s): error(s) for s in (401, 403, 404, 429, 500, 502, 503)}},
        params=[WALLET_PARAM])},
}


def document() -> Json:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "connext-py wallet API",
            "version": "1.0.0",
            "description": (
                "One wallet per API token, mirroring the client SDK. Amounts are base units "
                "as decimal strings. Every error is `{\"error\": {\"code\", \"message\", "
                f"\"field\"?}}}}`. Bodies nested deeper than {MAX_DEPTH} levels are refused. "
                "See docs/API.md."),
        },
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "a wallet's API token "
                                                          "(cxt_...)"}},
        },
        "security": [{"bearer": []}],
    }
