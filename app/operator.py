"""The operator dashboard at /node: the node's liquidity per asset, channel count, payments
and volume over time (Chart.js, from npm), collateral transactions and recent failures,
updated live over Socket.IO (namespace /node).

It reads the node's admin API with the node's admin token (CONNEXT_NODE_ADMIN_TOKEN), so a
visitor sees it only after giving that same token; the session then remembers a
fingerprint of it (a changed token logs everyone out). Without a configured token the
dashboard is off. It never changes anything on the node.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import urllib.error
import urllib.request
from typing import Any

from flask import (
    Blueprint,
    Flask,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_socketio import SocketIO, join_room
from werkzeug.wrappers import Response

from .assets import format_units
from .config import WebConfig
from .limits import SlidingWindow, TooMany

log = logging.getLogger(__name__)

bp = Blueprint("operator", __name__)
OPERATOR_KEY = "operator"
NAMESPACE = "/node"
ROOM = "operators"
REFRESH_SECONDS = 2.0
LOGIN_ATTEMPTS_PER_HOUR = 20
TIMELINE_MINUTES = 30


class NodeUnavailable(Exception):
    """The node's admin API did not answer (or refused the token)."""


class NodeAdmin:
    """Reads of the node's admin API, with the node's admin token."""

    def __init__(self, config: WebConfig) -> None:
        self.url = config.node_url.rstrip("/")
        self.token = config.node_admin_token

    def get(self, path: str) -> Any:
        request_ = urllib.request.Request(f"{self.url}{path}",
                                          headers={"Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(request_, timeout=5) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise NodeUnavailable(f"the node answered {exc.code} to {path}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise NodeUnavailable(f"the node does not answer: {exc}") from exc

    def snapshot(self) -> dict[str, Any]:
        """What the dashboard shows, in one piece."""
        return {
            "summary": self.get("/admin/summary"),
            "timeline": self.get(f"/admin/timeline?minutes={TIMELINE_MINUTES}")["minutes"],
            "collateral": self.get("/admin/collateral?limit=10")["transactions"],
            "failures": self.get("/admin/failures?limit=10")["payments"],
            # symbols and decimals of the assets the node supports, to show amounts in
            "assets": {a["address"]: {"symbol": a["symbol"], "decimals": a["decimals"]}
                       for a in self.get("/admin/rates")["assets"]},
        }


def _config() -> WebConfig:
    config: WebConfig = current_app.extensions["connext.config"]
    return config


def _fingerprint(token: str) -> str:
    return hashlib.sha256(b"connext operator session:" + token.encode()).hexdigest()


def is_operator() -> bool:
    token = _config().node_admin_token
    given = session.get(OPERATOR_KEY)
    return bool(token) and isinstance(given, str) and hmac.compare_digest(
        given, _fingerprint(str(token)))


def _admin() -> NodeAdmin:
    admin: NodeAdmin = current_app.extensions["connext.node_admin"]
    return admin


@bp.get("/node")
def dashboard() -> tuple[str, int]:
    if not _config().node_admin_token:
        return render_template("node_login.html", off=True), 404
    if not is_operator():
        return render_template("node_login.html"), 401
    try:
        snapshot = _admin().snapshot()
    except NodeUnavailable as exc:
        return render_template("node.html", error=str(exc), snapshot=None), 502
    return render_template("node.html", snapshot=snapshot, error=None), 200


@bp.post("/node/login")
def login() -> Response | tuple[str, int]:
    token = _config().node_admin_token
    if not token:
        return render_template("node_login.html", off=True), 404
    limit: SlidingWindow = current_app.extensions["connext.operator_logins"]
    try:
        limit.hit(request.remote_addr or "unknown")
    except TooMany:
        return render_template("node_login.html", error="Too many attempts: try again later."), 429
    given = request.form.get("token", "")
    if not hmac.compare_digest(given.encode(), str(token).encode()):
        return render_template("node_login.html", error="That is not the node's admin token."), 401
    session[OPERATOR_KEY] = _fingerprint(str(token))
    return redirect(url_for("operator.dashboard"))


@bp.post("/node/logout")
def logout() -> Response:
    session.pop(OPERATOR_KEY, None)
    return redirect(url_for("operator.dashboard"))


@bp.get("/node/data.json")
def data() -> tuple[dict[str, Any], int]:
    if not is_operator():
        return {"error": "the node's admin token is required"}, 401
    try:
        return _admin().snapshot(), 200
    except NodeUnavailable as exc:
        return {"error": str(exc)}, 502


def register(app: Flask, socketio: SocketIO) -> None:
    app.add_template_filter(format_units, "units")
    config: WebConfig = app.extensions["connext.config"]
    app.extensions["connext.node_admin"] = admin = NodeAdmin(config)
    app.extensions["connext.operator_logins"] = SlidingWindow(
        LOGIN_ATTEMPTS_PER_HOUR, what="operator logins from your network")
    app.register_blueprint(bp)
    watching: set[str] = set()
    lock = threading.Lock()
    wake = threading.Event()

    @socketio.on("connect", namespace=NAMESPACE)  # type: ignore[untyped-decorator]
    def on_connect(auth: Any = None) -> bool:
        if not is_operator():
            return False  # refused: the token was never given in this session
        join_room(ROOM, namespace=NAMESPACE)
        with lock:
            watching.add(request.sid)  # type: ignore[attr-defined]
        wake.set()
        return True

    @socketio.on("disconnect", namespace=NAMESPACE)  # type: ignore[untyped-decorator]
    def on_disconnect(reason: Any = None) -> None:
        with lock:
            watching.discard(request.sid)  # type: ignore[attr-defined]

    def push() -> None:
        """While an operator watches, send the dashboard's numbers every few seconds."""
        while True:
            with lock:
                anyone = bool(watching)
            if not anyone:
                wake.wait()
                wake.clear()
                continue
            try:
                socketio.emit("snapshot", admin.snapshot(), namespace=NAMESPACE, to=ROOM)
            except NodeUnavailable as exc:
                socketio.emit("unavailable", {"error": str(exc)}, namespace=NAMESPACE, to=ROOM)
            except Exception:
                log.exception("pushing the operator dashboard failed")
            wake.wait(REFRESH_SECONDS)
            wake.clear()

    if config.node_admin_token:
        threading.Thread(target=push, name="operator-dashboard", daemon=True).start()
