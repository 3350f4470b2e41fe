"""The wallet web app at http://localhost:3000 (Flask + Flask-SocketIO + htmx).

`create_app(config)` builds the app: one blueprint per area (app/views/), the JSON API for
integrators (app/api.py), live events over Socket.IO (app/live.py), the security headers
and cookie flags (app/security.py); app/serving.py runs it. Every wallet operation goes
through the client SDK (`connext.client.Client`) hosted by `WalletService` on one asyncio
loop in a background thread. Views stay short; the work lives in the library.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, send_from_directory
from flask_socketio import SocketIO
from flask_wtf.csrf import CSRFProtect

from .chunks import ChunkShop
from .config import WebConfig
from .limits import SlidingWindow
from .micropay import MicroPayments
from .security import protect
from .wallets import WalletService

ROOT = Path(__file__).resolve().parent.parent
VENDOR = {
    # browser libraries come from npm (package.json) and are served, never committed
    "htmx.min.js": ROOT / "node_modules" / "htmx.org" / "dist",
    "socket.io.min.js": ROOT / "node_modules" / "socket.io-client" / "dist",
    "chart.umd.min.js": ROOT / "node_modules" / "chart.js" / "dist",  # the operator dashboard
}

socketio = SocketIO()
csrf = CSRFProtect()


def create_app(config: WebConfig | None = None,
               wallets: WalletService | None = None) -> Flask:
    config = config or WebConfig.from_env()
    app = Flask(__name__, template_folder=str(ROOT / "templates"),
                static_folder=str(ROOT / "static"))
    app.config.update(
        SECRET_KEY=config.secret_key,
        PERMANENT_SESSION_LIFETIME=timedelta(days=365),
        WTF_CSRF_TIME_LIMIT=None,
        MAX_CONTENT_LENGTH=64 * 1024,
        TESTING=config.testing,
    )
    app.extensions["connext.config"] = config
    service = app.extensions["connext.wallets"] = wallets or WalletService(config)
    app.extensions["connext.micro"] = MicroPayments(service)
    app.extensions["connext.chunks"] = ChunkShop(service)
    app.extensions["connext.wallet_limit"] = SlidingWindow(config.new_wallets_per_hour)
    csrf.init_app(app)

    from . import api, live, operator, views

    views.register(app)
    app.register_blueprint(api.bp)
    csrf.exempt(api.bp)  # the API authenticates by bearer token, never by cookie
    socketio.init_app(app, async_mode="threading")  # same-origin only (the default)
    live.register(app, socketio)
    operator.register(app, socketio)  # /node, the operator dashboard

    @app.get("/vendor/<name>")
    def vendor(name: str) -> Any:
        directory = VENDOR.get(name)
        if directory is None:
            return "not found", 404
        return send_from_directory(directory, name, max_age=3600)

    @app.get("/healthz")
    def healthz() -> Any:
        return {"status": "ok"}

    protect(app, config.trusted_proxies)
    return app

