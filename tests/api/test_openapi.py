"""The OpenAPI document: valid OpenAPI 3.0, generated from the models, and exactly the
routes the app serves."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema_rs
import pytest
import schemathesis
from flask import Flask

from app import create_app
from app.config import WebConfig
from app.openapi import OPERATIONS, document
from app.wallets import WalletService


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    down = "http://127.0.0.1:9"
    config = WebConfig(data_dir=tmp_path, secret_key="s" * 64, chain_url=down, node_url=down,
                       nats_url="nats://127.0.0.1:9", testing=True)
    service = WalletService(config)
    yield create_app(config, service)  # type: ignore[misc]
    service.close()


def test_the_document_is_served_as_json_and_is_valid_openapi_3_0(app: Flask) -> None:
    response = app.test_client().get("/api/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    served = json.loads(response.get_data())
    assert served == json.loads(json.dumps(document(app)))
    from schemathesis.specs.openapi.definitions import OPENAPI_30

    jsonschema_rs.validator_for(OPENAPI_30).validate(served)
    loaded = schemathesis.openapi.from_dict(served)
    operations = [result.ok() for result in loaded.get_all_operations()]  # Err would raise
    assert len(operations) == len(OPERATIONS) == 23


def flask_to_openapi(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: "{" + m.group(1) + "}", rule)


def test_every_route_is_documented_with_its_methods_and_nothing_else(app: Flask) -> None:
    served: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api.") and rule.endpoint not in (
                "api.unknown_route", "api.unknown_root", "api.openapi"):
            methods = {m.lower() for m in rule.methods or ()} - {"head", "options"}
            served.setdefault(flask_to_openapi(rule.rule), set()).update(methods)
    paths = document(app)["paths"]
    assert served == {path: set(operations) for path, operations in paths.items()}


def test_every_operation_documents_its_errors_with_the_error_schema(app: Flask) -> None:
    doc = document(app)
    error = {"$ref": "#/components/schemas/Error"}
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert any(code.startswith("2") for code in responses), (method, path)
            for code, response in responses.items():
                if code.startswith(("4", "5")):
                    assert response["content"]["application/json"]["schema"] == error
            if operation.get("security") != []:
                assert {"401", "403"} <= set(responses), (method, path)
                assert "WWW-Authenticate" in responses["401"]["headers"]
            if "requestBody" in operation:
                assert {"413", "415", "422"} <= set(responses), (method, path)
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": "a wallet's API token (cxt_...)"}
