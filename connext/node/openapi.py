"""The OpenAPI 3.1 document of the node's HTTP API, served at /openapi.json.

Written by hand next to the routes (connext/node/http.py, admin.py); a test checks that
every route the node serves is described here and the other way round.
"""

from __future__ import annotations

from typing import Any

AMOUNT = {"type": "string", "pattern": "^[0-9]{1,78}$",
          "description": "base units, a decimal string"}
ADDRESS = {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"}
ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
ADMIN: list[dict[str, list[str]]] = [{"adminToken": []}]


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _refused(*codes: int) -> dict[str, Any]:
    why = {400: "bad input (nothing changed)", 401: "admin token missing or wrong",
           403: "not allowed", 404: "not found"}
    return {str(code): _json({"$ref": "#/components/schemas/Error"}, why[code])
            for code in codes}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


LIMIT = {"name": "limit", "in": "query", "required": False,
         "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}}
CHANNEL_ASSET = [
    {"name": "channel", "in": "path", "required": True, "schema": ADDRESS},
    {"name": "asset", "in": "path", "required": True, "schema": ADDRESS},
]

SCHEMAS: dict[str, Any] = {
    "Error": ERROR,
    "Profile": {
        "type": "object", "additionalProperties": False,
        "required": ["threshold", "target", "reclaimThreshold", "cap"],
        "description": "0 <= threshold < target <= reclaimThreshold; target <= cap; "
                       "target > 0",
        "properties": {"threshold": AMOUNT, "target": AMOUNT, "reclaimThreshold": AMOUNT,
                       "cap": AMOUNT},
    },
    "Liquidity": {
        "type": "object",
        "required": ["assetId", "onChain", "inChannels", "lowBelow", "low", "channels"],
        "properties": {"assetId": ADDRESS, "onChain": AMOUNT, "inChannels": AMOUNT,
                       "lowBelow": AMOUNT, "low": {"type": "boolean"},
                       "channels": {"type": "integer"}},
    },
    "Payment": {
        "type": "object",
        "required": ["routingId", "status", "senderChannel", "assetId", "amount", "createdAt"],
        "properties": {
            "routingId": {"type": "string"},
            "status": {"enum": ["pending", "link", "forwarded", "resolved", "cancelled",
                                "failed"]},
            "senderChannel": ADDRESS, "assetId": ADDRESS, "amount": AMOUNT,
            "recipient": {"type": ["string", "null"]},
            "recipientChannel": {"type": ["string", "null"]},
            "recipientAssetId": {"type": ["string", "null"]},
            "recipientAmount": {"type": ["string", "null"]},
            "error": {"type": ["string", "null"]},
            "createdAt": {"type": "string", "format": "date-time"},
            "updatedAt": {"type": "string", "format": "date-time"},
        },
    },
    "Summary": {
        "type": "object",
        "required": ["address", "chainId", "channels", "liquidity", "lowLiquidity", "payments",
                     "volume24h", "sinceStart", "collateral"],
        "properties": {
            "address": ADDRESS, "chainId": {"type": "integer"},
            "channels": {"type": "integer"},
            "liquidity": {"type": "array", "items": _ref("Liquidity")},
            "lowLiquidity": {"type": "array", "items": ADDRESS},
            "payments": {"type": "object", "properties": {
                "byStatus": {"type": "object", "additionalProperties": {"type": "integer"}},
                "total": {"type": "integer"}}},
            "volume24h": {"type": "array", "items": {"type": "object", "properties": {
                "assetId": ADDRESS, "payments": {"type": "integer"}, "amount": AMOUNT}}},
            "sinceStart": {"type": "array", "items": {"type": "object", "properties": {
                "assetId": ADDRESS, "volume": AMOUNT, "fees": AMOUNT,
                "collateralDeposited": AMOUNT, "collateralReclaimed": AMOUNT}}},
            "collateral": {"type": "object", "properties": {
                "depositsInFlight": {"type": "integer"}}},
        },
    },
}


def _admin_get(summary: str, schema: dict[str, Any], parameters: list[Any] | None = None,
               ) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "security": ADMIN,
                                 "responses": {"200": _json(schema), **_refused(401)}}
    if parameters:
        operation["parameters"] = parameters
        operation["responses"].update(_refused(400))
    return {"get": operation}


def document() -> dict[str, Any]:
    array = {"type": "array"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "connext-py node", "version": "1",
                 "description": "The node's HTTP API (docs/NODE.md). Channel changes go over "
                                "NATS; here: health, configuration, a channel's signed state "
                                "for its parties, metrics, and the operator's admin API."},
        "components": {
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer",
                                               "description": "CONNEXT_ADMIN_TOKEN"}},
            "schemas": SCHEMAS,
        },
        "paths": {
            "/healthz": {"get": {"summary": "liveness", "responses": {"200": _json({
                "type": "object", "properties": {"status": {"const": "ok"},
                                                 "address": ADDRESS}})}}},
            "/config": {"get": {"summary": "what clients need to know of the node",
                                "responses": {"200": _json({"type": "object"})}}},
            "/openapi.json": {"get": {"summary": "this document",
                                      "responses": {"200": _json({"type": "object"})}}},
            "/metrics": {"get": {
                "summary": "Prometheus metrics (to whom CONNEXT_NODE_METRICS allows)",
                "responses": {"200": {"description": "text exposition format",
                                      "content": {"text/plain": {"schema": {"type": "string"}}}},
                              **_refused(401, 403)}}},
            "/channels/{address}": {"get": {
                "summary": "a channel's latest double-signed state (its parties, signed "
                           "request, or the admin)",
                "parameters": [{"name": "address", "in": "path", "required": True,
                                "schema": ADDRESS}],
                "responses": {"200": _json({"type": "object"}), **_refused(400, 401, 403, 404)},
            }},
            "/admin/channels": _admin_get("every channel's latest state", {
                "type": "object", "properties": {"channels": array}}),
            "/admin/summary": _admin_get("liquidity, channel count, payments, volume, fees",
                                         _ref("Summary")),
            "/admin/liquidity": _admin_get("the node's liquidity per asset", {
                "type": "object", "properties": {"liquidity": {
                    "type": "array", "items": _ref("Liquidity")}}}),
            "/admin/payments": _admin_get("routed payments, newest first", {
                "type": "object", "properties": {"payments": {
                    "type": "array", "items": _ref("Payment")}}},
                [LIMIT, {"name": "status", "in": "query", "required": False,
                         "schema": {"type": "string"}}]),
            "/admin/failures": _admin_get("failed payments and failed requests by code", {
                "type": "object", "properties": {
                    "payments": {"type": "array", "items": _ref("Payment")},
                    "requests": array}}, [LIMIT]),
            "/admin/collateral": _admin_get("collateral deposits and reclaims, newest first", {
                "type": "object", "properties": {"transactions": array,
                                                 "depositsInFlight": {"type": "integer"}}},
                [LIMIT]),
            "/admin/timeline": _admin_get("payments and volume per minute", {
                "type": "object", "properties": {"minutes": array}},
                [{"name": "minutes", "in": "query", "required": False,
                  "schema": {"type": "integer", "minimum": 1, "maximum": 1440,
                             "default": 60}}]),
            "/admin/rates": _admin_get("swap pairs with their current rates and fees", {
                "type": "object", "properties": {"rates": array, "assets": array,
                                                 "source": {"type": "string"}}}),
            "/admin/profiles": _admin_get("collateral profiles: per asset and per channel", {
                "type": "object", "properties": {"assets": array, "channels": array}}),
            "/admin/profiles/{channel}/{asset}": {
                "put": {"summary": "set one channel's collateral profile for one asset",
                        "security": ADMIN, "parameters": CHANNEL_ASSET,
                        "requestBody": {"required": True, "content": {
                            "application/json": {"schema": _ref("Profile")}}},
                        "responses": {"200": _json(_ref("Profile")),
                                      **_refused(400, 401, 404)}},
                "delete": {"summary": "forget it (the asset's profile applies again)",
                           "security": ADMIN, "parameters": CHANNEL_ASSET,
                           "responses": {"200": _json(_ref("Profile")),
                                         **_refused(400, 401, 404)}},
            },
        },
    }
