"""The JSON API's refusals: `ApiError`, a body's bytes -> one JSON object, and pydantic's
validation errors -> the API's error body.

Everything an integrator sends is checked before any wallet is touched, and every
rejection is an `ApiError` with a stable code, a sentence and the field at fault: here
for the body as a whole, by the models of app/api_models.py for its fields (converted
here, in `refused`, the one place that knows pydantic's error format). Bodies are scanned
for nesting depth before `json.loads` sees them: eth-account raises Python's recursion
limit to 100000, so a deeply nested `[[[[...` would overflow the C stack inside the JSON
decoder and kill the server instead of raising.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

MAX_DEPTH = 32
"""Deepest nesting of arrays and objects accepted in a body (`{"meta": {...}}` is 2)."""
MAX_INT_DIGITS = 100
"""Longest integer literal accepted anywhere in a body (2**256 has 78 digits)."""


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
        if not raw:
            return {}
        # whitespace alone is neither no body nor JSON: refused below as what it is
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


# --- fields ---------------------------------------------------------------------------------


def bad(code: str, field: str, says: str) -> ApiError:
    """422 for one field: "The field 'amount' <says>"."""
    return invalid(code, f"The field '{field}' {says}", field)


def refused(error: ValidationError, model: type[BaseModel],
            where: Literal["body", "query"] = "body") -> ApiError:
    """The one refusal the integrator gets for a body or query string `model` refused: an
    unknown name first (in the order sent), then a missing field, then the first field
    (in the model's order) whose value is wrong."""
    problems = error.errors(include_url=False)
    names = [f.alias or name for name, f in model.model_fields.items()]
    unknown = [p for p in problems if p["type"] == "extra_forbidden"]
    missing = [p for p in problems if p["type"] == "missing"]
    problem = (unknown or missing or problems)[0]
    name = str(problem["loc"][0]) if problem["loc"] else None
    if problem["type"] == "extra_forbidden":
        if where == "query":
            accepted = f"accepts only {', '.join(names)}" if names else "takes none"
            return invalid("unknown_parameter", f"Unknown query parameter '{name}'; this "
                                                f"route {accepted}.", name)
        return invalid("unknown_field", f"Unknown field '{name}'; this route accepts: "
                                        f"{', '.join(names) if names else 'no fields'}.", name)
    if name is None:
        return invalid("invalid_input", "The body must be a JSON object, like "
                                        '{"assetId": "ETH"}.')
    if problem["type"] == "missing":
        return invalid("missing_field", f"The field '{name}' is required.", name)
    says = problem["msg"]
    if not (problem.get("ctx") or {}).get("whole"):
        what = "query parameter" if where == "query" else "field"
        says = f"The {what} '{name}' {says[:1].lower()}{says[1:]}"
    if problem["type"] not in CODES:  # not one of ours: pydantic's own wording
        return invalid("invalid_input", says if says.endswith(".") else says + ".", name)
    return invalid(problem["type"], says, name)


CODES = {"invalid_amount", "invalid_address", "invalid_hex", "invalid_input",
         "unknown_asset", "unknown_transfer_definition"}
"""The error codes the field types of app/api_models.py refuse with."""
