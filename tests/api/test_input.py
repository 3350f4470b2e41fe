"""Parsing what integrators send, with no app and no network: the nesting guard and strict
JSON bodies, then the models' field types (amounts, addresses, hex, unknown and missing
fields, query values) and the one refusal each gives."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from app import api_models as models
from app.api_input import MAX_DEPTH, ApiError, check_depth, parse_body, refused
from app.api_models import MAX_UINT256


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


def depth_of(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    return 0


def test_the_guard_accepts_the_limit_and_refuses_one_more() -> None:
    check_depth(nested(MAX_DEPTH))
    check_depth('{"a":' * (MAX_DEPTH - 1) + "{}" + "}" * (MAX_DEPTH - 1))
    with pytest.raises(ApiError) as refused:
        check_depth(nested(MAX_DEPTH + 1))
    assert (refused.value.status, refused.value.code) == (422, "too_deeply_nested")
    with pytest.raises(ApiError):
        check_depth('{"a":' * MAX_DEPTH + "[]" + "}" * MAX_DEPTH)


def test_brackets_inside_strings_do_not_count_and_escapes_are_followed() -> None:
    check_depth(json.dumps({"meta": "[" * 1000 + "{" * 1000}))
    check_depth(json.dumps({"meta": '\\"[[[[' * 200}))  # escaped quotes stay inside
    check_depth(json.dumps(["\\" * 9 + "[" * 100]))  # backslashes escaping backslashes
    # a string that really ends: what follows is structure again
    with pytest.raises(ApiError):
        check_depth('["\\\\"' + "," + nested(MAX_DEPTH) + "]")


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab'),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(alphabet='[]{}"\\ab', max_size=4), inner,
                                      max_size=3),
                    max_leaves=40))
def test_the_guard_agrees_with_the_real_depth(value: Any) -> None:
    text = json.dumps(value)
    if depth_of(value) <= MAX_DEPTH:
        check_depth(text)
    else:
        with pytest.raises(ApiError):
            check_depth(text)


def test_a_body_nested_a_hundred_thousand_deep_is_refused_without_parsing() -> None:
    # json.loads on this would overflow the C stack under eth-account's recursion limit
    raw = nested(100_000).encode()
    with pytest.raises(ApiError) as refused:
        parse_body(raw, "application/json")
    assert refused.value.code == "too_deeply_nested"


@pytest.mark.parametrize(("raw", "mimetype", "status", "code"), [
    (b'{"a": 1}', "text/plain", 415, "unsupported_media_type"),
    (b'{"a": 1}', None, 415, "unsupported_media_type"),
    (b"", "application/json", 422, "missing_body"),
    (b"  ", None, 422, "missing_body"),
    (b"{not json", "application/json", 422, "invalid_json"),
    (b"\xff\xfe", "application/json", 422, "invalid_json"),
    (b"[1, 2]", "application/json", 422, "not_an_object"),
    (b'"text"', "application/json", 422, "not_an_object"),
    (b"null", "application/json", 422, "not_an_object"),
    (b'{"a": NaN}', "application/json", 422, "invalid_json"),
    (b'{"a": Infinity}', "application/json", 422, "invalid_json"),
    (b'{"a": 1, "a": 2}', "application/json", 422, "invalid_json"),
    (b'{"a": ' + b"9" * 5000 + b"}", "application/json", 422, "invalid_json"),
])
def test_bodies_that_are_not_one_json_object_are_refused(raw: bytes, mimetype: str | None,
                                                         status: int, code: str) -> None:
    with pytest.raises(ApiError) as refused:
        parse_body(raw, mimetype)
    assert (refused.value.status, refused.value.code) == (status, code)
    assert refused.value.message.endswith(".")


def test_an_optional_body_may_be_empty() -> None:
    assert parse_body(b"", None, required=False) == {}
    assert parse_body(b'{"x": [1]}', "application/json") == {"x": [1]}


def test_an_optional_body_of_whitespace_is_not_taken_for_none() -> None:
    # schemathesis sent "\t" to POST /wallets, which opened a wallet
    with pytest.raises(ApiError) as refused:
        parse_body(b"\t", "application/json", required=False)
    assert (refused.value.status, refused.value.code) == (422, "invalid_json")


def refusal(model: type[BaseModel], body: dict[str, Any], where: Any = "body") -> ApiError:
    with pytest.raises(ValidationError) as failed:
        model.model_validate(body)
    error = refused(failed.value, model, where)
    assert error.status == 422 and error.message.endswith(".")
    return error


def paying(amount: Any) -> dict[str, Any]:
    return {"recipient": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "assetId": "ETH",
            "amount": amount}


@pytest.mark.parametrize(("value", "expected"), [
    ("1", 1), (1, 1), ("1500000000000000000", 1_500_000_000_000_000_000),
    (str(MAX_UINT256), MAX_UINT256), (MAX_UINT256, MAX_UINT256), ("007", 7),
])
def test_amounts_in_base_units(value: Any, expected: int) -> None:
    assert models.Payment.model_validate(paying(value)).amount == expected


@pytest.mark.parametrize(("value", "says"), [
    ("1.5", "no decimals"), ("1.", "no decimals"), (".5", "no decimals"),
    (1.5, "not a fractional number"), (1.0, "not a fractional number"),
    (1e18, "not a fractional number"),
    ("-1", "more than zero"), (-1, "more than zero"), ("0", "more than zero"),
    (0, "more than zero"), ("000", "more than zero"),
    (str(2**256), "too large"), (2**256, "too large"), ("9" * 200, "too large"),
    ("1e18", "whole number"), ("0x10", "whole number"), (" 1", "whole number"),
    ("", "whole number"), ("1,5", "whole number"), ("+1", "whole number"),
    (True, "whole number"), (None, "whole number"), ([1], "whole number"),
])
def test_amounts_that_are_refused(value: Any, says: str) -> None:
    refused = refusal(models.Payment, paying(value))
    assert refused.code == "invalid_amount" and refused.field == "amount"
    assert refused.message.startswith("The field 'amount' ") and says in refused.message


def test_addresses_are_strict() -> None:
    lower = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"
    checksummed = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    for sent in (lower, checksummed):
        assert models.ExitRequest.model_validate({"recipient": sent}).recipient == checksummed
    for bad in (lower[:-1], lower + "0", " " + lower, lower[2:], 123, None,
                checksummed.replace("C", "c", 1)):
        refused = refusal(models.ExitRequest, {"recipient": bad})
        assert (refused.code, refused.field) == ("invalid_address", "recipient")
    assert "checksum" in refusal(models.ExitRequest, {
        "recipient": checksummed.replace("C", "c", 1)}).message


def test_hex_bytes() -> None:
    assert models.ResolveRequest.model_validate({"resolver": "0x"}).resolver == b""
    assert models.ResolveRequest.model_validate({"resolver": "0xAbCd"}).resolver == b"\xab\xcd"
    for bad in ("abcd", "0xabc", "0x zz", "0x\u0660\u0661", 5):
        assert refusal(models.ResolveRequest, {"resolver": bad}).code == "invalid_hex"
    short = refusal(models.ClaimRequest, {"data": "0x" + "00" * 31,
                                          "signature": "0x" + "11" * 65})
    assert (short.code, short.field) == ("invalid_hex", "data")
    assert "32 bytes" in short.message


def test_unknown_fields_then_missing_ones_are_refused_by_name() -> None:
    good = {"recipient": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "assetId": "ETH",
            "amount": "5"}
    assert models.TransferRequest.model_validate(good).amount == 5
    unknown = refusal(models.TransferRequest, {**good, "amonut": "5", "amount": "-1"})
    assert (unknown.code, unknown.field) == ("unknown_field", "amonut")
    assert "recipient, assetId, amount, timeout" in unknown.message
    missing = refusal(models.TransferRequest, {"assetId": "x" * 50})
    assert (missing.code, missing.field) == ("missing_field", "recipient")
    # snake_case names are not the API's: refused like any unknown field
    snake = refusal(models.TransferRequest, {**good, "asset_id": "ETH"})
    assert (snake.code, snake.field) == ("unknown_field", "asset_id")


def test_optional_fields_may_be_left_out_but_not_sent_as_null() -> None:
    assert models.WithdrawRequest.model_validate({
        "recipient": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "assetId": "ETH",
        "amount": 1}).wait is None
    for field in ("timeout", "wait", "meta", "paymentId"):
        refused = refusal(models.TransferRequest, {
            "recipient": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "assetId": "ETH",
            "amount": 1, field: None})
        assert (refused.code, refused.field) == ("invalid_input", field)


def test_meta_may_not_carry_the_keys_the_network_sets() -> None:
    for key in ("recipient", "sender", "link", "oracle", "stream"):
        refused = refusal(models.TransferRequest, {
            "recipient": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "assetId": "ETH",
            "amount": 1, "meta": {key: "x"}})
        assert (refused.code, refused.field) == ("invalid_input", "meta")
        assert f"'{key}'" in refused.message


def test_query_integers() -> None:
    assert models.HistoryQuery.model_validate({}).limit is None
    assert models.HistoryQuery.model_validate({"limit": "5"}).limit == 5
    for bad in ("0", "501", "-1", "1.5", "", "abc", "9" * 30):
        refused = refusal(models.HistoryQuery, {"limit": bad}, "query")
        assert (refused.code, refused.field) == ("invalid_input", "limit")
        assert refused.message == ("The query parameter 'limit' must be a whole number from "
                                   "1 to 500.")
    unknown = refusal(models.HistoryQuery, {"limt": "5"}, "query")
    assert (unknown.code, unknown.field) == ("unknown_parameter", "limt")
