"""The wallet's HTTP hardening: a Content-Security-Policy that runs only our own scripts,
the other security headers on every response, a session cookie that is Secure over HTTPS,
and which reverse proxy (if any) may say that a request came over HTTPS.

Never loosen the policy for a page: a template that needs inline script, an inline event
handler or eval is the bug (htmx runs with allowEval off, templates/base.html).
"""

from __future__ import annotations

import re

from flask import Flask, Response, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d+)?$|^\[[0-9A-Fa-f:.]+\](:\d+)?$")


def protect(app: Flask, trusted_proxies: int) -> None:
    """Install the policy on `app`; call it last in create_app (the proxy fix must wrap
    the Socket.IO middleware too, so live sockets see the same scheme and host)."""
    app.session_interface = SessionCookies()
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")
    app.after_request(add_security_headers)
    if trusted_proxies > 0:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=trusted_proxies, x_proto=trusted_proxies,
            x_host=trusted_proxies, x_port=trusted_proxies)


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the Secure flag exactly when the request came
    over HTTPS (directly, or through a trusted proxy that says so)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure


def content_security_policy() -> str:
    directives = [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",  # the favicon is a data: URL; QR codes are inline SVG
        "connect-src 'self'" + _live_socket_origin(),  # htmx, and Socket.IO's WebSocket
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


def _live_socket_origin() -> str:
    """The page's own origin as a WebSocket URL: 'self' covers it in current browsers,
    older ones (Safari before 15.4) need it spelled out."""
    if not _HOST.match(request.host):
        return ""
    return f" {'wss' if request.is_secure else 'ws'}://{request.host}"


def add_security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = content_security_policy()
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    # same-origin, not no-referrer: Flask-WTF refuses an HTTPS form post without a
    # same-site Referer, and other sites learn nothing of the wallet's URLs
    response.headers["Referrer-Policy"] = "same-origin"
    return response
