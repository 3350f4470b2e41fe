"""The wallet's HTTP hardening: every response carries a Content-Security-Policy that runs
only our own scripts, the session cookie is HttpOnly and SameSite=Lax always and Secure over
HTTPS, and a forwarded scheme or client address is believed only from a trusted proxy."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from app import create_app
from app.config import WebConfig

ROOT = Path(__file__).resolve().parents[2]


def make_app(tmp_path: Path, **settings: Any) -> Flask:
    config = WebConfig(data_dir=tmp_path, secret_key="s" * 64, node_url="http://127.0.0.1:9",
                       chain_url="http://127.0.0.1:9", testing=True, **settings)
    return create_app(config)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    made = make_app(tmp_path)
    yield made
    made.extensions["connext.wallets"].close()


def policy(response: TestResponse) -> dict[str, str]:
    header = response.headers["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in header.split(";"))


def session_cookie(response: TestResponse) -> str:
    (cookie,) = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    return cookie


def test_every_response_runs_only_our_own_scripts(app: Flask) -> None:
    client = app.test_client()
    for path in ("/settings", "/healthz", "/static/wallet.js", "/api/v1/nothing-here",
                 "/no-such-page"):
        response = client.get(path)
        directives = policy(response)
        assert directives["script-src"] == "'self'", path
        assert directives["style-src"] == "'self'"
        assert directives["object-src"] == "'none'"
        assert directives["base-uri"] == "'self'"
        assert directives["frame-ancestors"] == "'none'"
        assert directives["connect-src"] == "'self' ws://localhost"  # Socket.IO, same origin
        assert "unsafe" not in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert response.headers["X-Frame-Options"] == "DENY"


def test_the_session_cookie_is_httponly_and_lax_and_secure_only_over_https(
        app: Flask) -> None:
    plain = app.test_client().get("/settings")
    assert plain.status_code == 200
    cookie = session_cookie(plain)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie

    https = app.test_client().get("/settings", base_url="https://wallet.example")
    cookie = session_cookie(https)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie
    assert policy(https)["connect-src"] == "'self' wss://wallet.example"


def test_a_forwarded_scheme_is_ignored_unless_the_proxy_is_trusted(app: Flask) -> None:
    forged = app.test_client().get("/settings", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" not in session_cookie(forged)


def test_behind_a_trusted_proxy_https_and_the_client_address_come_from_it(
        tmp_path: Path) -> None:
    app = make_app(tmp_path, trusted_proxies=1, new_wallets_per_hour=1)
    try:
        def visit(client_ip: str) -> TestResponse:
            return app.test_client().get("/settings", headers={
                "X-Forwarded-Proto": "https", "X-Forwarded-Host": "wallet.example",
                "X-Forwarded-For": client_ip})

        first = visit("203.0.113.7")
        assert first.status_code == 200
        assert "Secure" in session_cookie(first)
        assert policy(first)["connect-src"] == "'self' wss://wallet.example"
        # the new-wallet limit counts each client behind the proxy, not the proxy
        assert visit("198.51.100.9").status_code == 200
        assert visit("203.0.113.7").status_code == 429
    finally:
        app.extensions["connext.wallets"].close()


COMMENT = re.compile(r"{#.*?#}", re.S)
INLINE = {
    "an inline script": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),
    "an inline event handler": re.compile(r"\son[a-z]+\s*=", re.I),
    "hx-on (htmx evaluates it)": re.compile(r"\b(data-)?hx-on", re.I),
    "a javascript: URL": re.compile(r"javascript:", re.I),
    "a js: value (htmx evaluates it)": re.compile(r"=\s*['\"]js:", re.I),
    "an inline style": re.compile(r"\sstyle\s*=|<style", re.I),
}


def test_no_template_has_inline_script_handlers_or_styles() -> None:
    found = []
    for template in sorted((ROOT / "templates").rglob("*.html")):
        text = COMMENT.sub(lambda m: "\n" * m.group().count("\n"), template.read_text())
        for what, pattern in INLINE.items():
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{template.relative_to(ROOT)}:{line}: {what}")
    assert not found, "\n".join(found)


def test_htmx_is_configured_never_to_eval() -> None:
    base = (ROOT / "templates" / "base.html").read_text()
    assert '"allowEval": false' in base
    assert '"includeIndicatorStyles": false' in base  # its own <style> would be refused
    assert '"attributesToSettle": ["class", "width", "height"]' in base  # no style attribute
