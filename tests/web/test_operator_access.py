"""Who may see the operator dashboard (/node): nobody when the wallet app has no node admin
token; otherwise only a session that gave that token (with the form's CSRF token), until it
logs out or the token changes (its live socket too); guessing is limited. (The dashboard's
content, with a real node, is tested in Chromium: tests/e2e/test_operator_dashboard.py.)"""

from __future__ import annotations

import re
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from .test_security import make_app

TOKEN = "operator-secret-token"


def csrf(client: FlaskClient) -> str:
    page = client.get("/node").get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def login(client: FlaskClient, token: str) -> int:
    return client.post("/node/login", data={"token": token, "csrf_token": csrf(client)}).status_code


def closed(app: Flask) -> None:
    app.extensions["connext.wallets"].close()


def test_without_a_configured_token_the_dashboard_is_off(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    try:
        client = app.test_client()
        response = client.get("/node")
        assert response.status_code == 404
        assert "CONNEXT_NODE_ADMIN_TOKEN" in response.get_data(as_text=True)
        assert client.get("/node/data.json").status_code == 401
        page = client.get("/settings").get_data(as_text=True)  # any form's CSRF token
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token is not None
        assert client.post("/node/login", data={"token": "", "csrf_token": token.group(1)}
                           ).status_code == 404
    finally:
        closed(app)


def test_only_a_session_that_gave_the_token_passes_until_it_logs_out(tmp_path: Path) -> None:
    app = make_app(tmp_path, node_admin_token=TOKEN)
    try:
        client = app.test_client()
        refused = client.get("/node")
        assert refused.status_code == 401 and "Admin token required" in refused.get_data(
            as_text=True)
        assert client.get("/node/data.json").status_code == 401
        # no CSRF token: refused before the token is even looked at
        assert client.post("/node/login", data={"token": TOKEN}).status_code == 400
        for wrong in ("", "operator-secret-toke", TOKEN + " ", TOKEN.upper()):
            assert login(client, wrong) == 401
        assert client.get("/node").status_code == 401
        assert login(client, TOKEN) == 302
        # past the gate: the node (not running here) is what answers now
        passed = client.get("/node")
        assert passed.status_code == 502 and "does not answer" in passed.get_data(as_text=True)
        assert client.get("/node/data.json").status_code == 502
        # the live socket of the dashboard: only for this session, never for another one
        from app import socketio

        live = socketio.test_client(app, namespace="/node", flask_test_client=client)
        assert live.is_connected(namespace="/node")
        live.disconnect(namespace="/node")
        stranger = socketio.test_client(app, namespace="/node",
                                        flask_test_client=app.test_client())
        assert not stranger.is_connected(namespace="/node")
        client.post("/node/logout", data={"csrf_token": csrf(client)})
        assert client.get("/node").status_code == 401
        assert login(client, TOKEN) == 302
        cookie = client.get_cookie("session")
        assert cookie is not None
    finally:
        closed(app)

    # the same secret, another admin token: the old session no longer passes
    rotated = make_app(tmp_path / "rotated", node_admin_token="a-new-token")
    try:
        client = rotated.test_client()
        client.set_cookie("session", cookie.value)
        assert client.get("/node").status_code == 401
    finally:
        closed(rotated)


def test_guessing_the_token_is_limited(tmp_path: Path) -> None:
    app = make_app(tmp_path, node_admin_token=TOKEN)
    try:
        client = app.test_client()
        statuses = [login(client, f"guess-{i}") for i in range(21)]
        assert statuses == [401] * 20 + [429]
        assert login(client, TOKEN) == 429  # even the right one, for the rest of the hour
    finally:
        closed(app)
