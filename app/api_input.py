"""Request parsing for the JSON API: bodies, fields and query values, strictly.

Everything an integrator sends is checked here before any wallet is touched, and every
rejection is an `ApiError` with a stable code, a sentence and the field at fault. Bodies
are scanned for nesting depth before `json.loads` sees them: eth-account raises Python's
recursion limit to 100000, so a deeply nested `[[[[...` would overflow the C stack inside
the JSON decoder and kill the server instead of raising.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .assets import InputError
from .assets import parse_address as parse_user_address

MAX_DEPTH = 32
"""Deepest nesting of arrays and objects accepted in a body (`{"meta": {...}}` is 2)."""
MAX_UINT256 = 2**256 - 1
MAX_INT_DIGITS = 100
"""Longest integer literal accepted anywhere in a body (2**256 has 78 digits)."""
ROUTABLE_DEFINITIONS = ("Hashlock", "Signed", "Stream")
"""Transfer definitions a conditional transfer may use (Withdraw has its own route)."""
MIN_TIMEOUT, MAX_TIMEOUT = 60, 30 * 24 * 3600  # the node's and SDK's default bounds
MAX_WAIT = 60


class ApiError(Exception):
    """An answer other than success: HTTP status, stable code, sentence, field at fault."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        return {"error": error}


def invalid(code: str, message: str, field: str | None = None) -> ApiError:
    return ApiError(422, code, message, field)


# --- bodies -------------------------------------------------------------------------------

_STRUCTURE = re.compile(r'[\[\]{}"\\]')


def check_depth(text: str, limit: int = MAX_DEPTH) -> None:
    """Reject text whose arrays/objects nest deeper than `limit`, without parsing it.

    Brackets inside strings do not count; a backslash escapes the next character inside a
    string. Unbalanced text is left for the JSON parser to reject.
    """
    depth = 0
    in_string = False
    escape_at = -2  # position of the backslash whose next character is escaped
    for match in _STRUCTURE.finditer(text):
        char, at = match.group(), match.start()
        if in_string:
            if at == escape_at + 1:
                continue  # an escaped quote or backslash: plain text
            if char == "\\":
                escape_at = at
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                raise invalid("too_deeply_nested",
                              f"The body nests arrays or objects more than {limit} levels "
                              "deep; send a flatter JSON object.")
        elif char in "]}":
            depth -= 1


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError("integer literal too long")
    return int(text)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def parse_body(raw: bytes, mimetype: str | None, *, required: bool = True) -> dict[str, Any]:
    """The request body as a JSON object (an empty body is `{}` when not `required`)."""
    if not raw.strip():
        if required:
            raise invalid("missing_body", "Send a JSON object as the request body (with "
                                          "'Content-Type: application/json').")
        return {}
    if (mimetype or "").lower() != "application/json":
        raise ApiError(415, "unsupported_media_type",
                       "Send the body as JSON, with the header "
                       "'Content-Type: application/json'.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid("invalid_json", "The body is not valid UTF-8 text.") from None
    check_depth(text)
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_int=_parse_int,
                           object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as exc:
        raise invalid("invalid_json", f"The body is not valid JSON ({_why(exc)}).") from None
    if not isinstance(value, dict):
        raise invalid("not_an_object", "The body must be a JSON object, like "
                                       '{"assetId": "ETH"}.')
    return value


def _why(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return str(exc) or type(exc).__name__


@dataclass(frozen=True)
class Field:
    name: str
    parse: Callable[[Any, str], Any]
    required: bool = True


def fields(body: Mapping[str, Any], spec: Sequence[Field]) -> dict[str, Any]:
    """Check `body` has exactly the fields of `spec` (optional ones may be absent) and parse
    each; returns {name: parsed value} for the fields present."""
    known = [f.name for f in spec]
    for name in body:
        if name not in known:
            accepted = ", ".join(known) if known else "no fields"
            raise invalid("unknown_field", f"Unknown field '{name}'; this route accepts: "
                                           f"{accepted}.", name)
    parsed: dict[str, Any] = {}
    for field in spec:
        if field.name not in body:
            if field.required:
                raise invalid("missing_field", f"The field '{field.name}' is required.",
                              field.name)
            continue
        parsed[field.name] = field.parse(body[field.name], field.name)
    return parsed


# --- field values -------------------------------------------------------------------------


def bad(code: str, field: str, says: str) -> ApiError:
    """422 for one field: "The field 'amount' <says>"."""
    return invalid(code, f"The field '{field}' {says}", field)


def amount(value: Any, field: str = "amount") -> int:
    """A positive amount in base units: a decimal string ("1500") or a JSON integer."""
    whole = 'must be a whole number of base units, as a decimal string like "1500000".'
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        raise bad("invalid_amount", field, whole)
    if isinstance(value, float):
        raise bad("invalid_amount", field, 'must be a whole number of base units (1 ETH is '
                                           '"1000000000000000000"); send it as a decimal '
                                           "string, not a fractional number.")
    if isinstance(value, int):
        number = value
    else:
        text = str(value)
        if re.fullmatch(r"\s*-\s*\d+(\.\d*)?\s*", text):
            raise bad("invalid_amount", field, "must be more than zero.")
        if re.fullmatch(r"\d*\.\d*", text) and any(c.isdigit() for c in text):
            raise bad("invalid_amount", field, "is in base units, so it has no decimals (1 ETH "
                                               'is "1000000000000000000").')
        if not re.fullmatch(r"[0-9]+", text):
            raise bad("invalid_amount", field, whole)
        if len(text.lstrip("0")) > 78:
            raise bad("invalid_amount", field, "is too large (at most 2^256 - 1).")
        number = int(text)
    if number <= 0:
        raise bad("invalid_amount", field, "must be more than zero.")
    if number > MAX_UINT256:
        raise bad("invalid_amount", field, "is too large (at most 2^256 - 1).")
    return number


def address(value: Any, field: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"0[xX][0-9a-fA-F]{40}", value):
        raise bad("invalid_address", field, "must be an Ethereum address (0x followed by 40 "
                                            "hex characters).")
    try:
        return parse_user_address(value, field)
    except InputError as exc:
        raise invalid("invalid_address", exc.message, field) from None


def asset_ref(value: Any, field: str) -> str:
    """An asset as its symbol ("ETH") or address; resolved against the wallet's assets."""
    if not isinstance(value, str) or not 1 <= len(value) <= 42:
        raise bad("unknown_asset", field, 'must be an asset\'s symbol (like "ETH") or its '
                                          "address.")
    return value


def hex_bytes(value: Any, field: str, length: int | None = None) -> bytes:
    what = f"must be {length} bytes as 0x-prefixed hex." if length else \
        "must be 0x-prefixed hex with an even number of digits."
    if not isinstance(value, str) or not value.startswith("0x"):
        raise bad("invalid_hex", field, what)
    digits = value[2:]
    if not re.fullmatch(r"(?:[0-9a-fA-F]{2})*", digits):
        raise bad("invalid_hex", field, what)
    raw = bytes.fromhex(digits)
    if length is not None and len(raw) != length:
        raise bad("invalid_hex", field, what)
    return raw


def bytes32(value: Any, field: str) -> bytes:
    return hex_bytes(value, field, 32)


def definition(value: Any, field: str) -> str:
    if value not in ROUTABLE_DEFINITIONS:
        names = ", ".join(ROUTABLE_DEFINITIONS)
        raise bad("unknown_transfer_definition", field, f"must be one of {names}.")
    return str(value)


def _integer(value: Any, field: str, low: int, high: int, unit: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise bad("invalid_input", field, f"must be a whole number of {unit} from {low} to "
                                          f"{high}.")
    return value


def timeout(value: Any, field: str) -> int:
    return _integer(value, field, MIN_TIMEOUT, MAX_TIMEOUT, "seconds")


def wait(value: Any, field: str) -> int:
    return _integer(value, field, 0, MAX_WAIT, "seconds")


def meta(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad("invalid_input", field, "must be a JSON object.")
    return value


PAYMENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def payment_id(value: Any, field: str) -> str:
    if not isinstance(value, str) or PAYMENT_ID.fullmatch(value) is None:
        raise bad("invalid_input", field, "must be 1 to 64 letters, digits or . _ : -.")
    return value


def label(value: Any, field: str) -> str:
    if not isinstance(value, str) or len(value) > 100:
        raise bad("invalid_input", field, "must be text of at most 100 characters.")
    return value


# --- query values -------------------------------------------------------------------------


def query_int(args: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = args.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,19}", raw) or not low <= int(raw) <= high:
        raise invalid("invalid_input", f"The query parameter '{name}' must be a whole number "
                                       f"from {low} to {high}.", name)
    return int(raw)
