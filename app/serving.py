"""How `connext web` serves the wallet: gunicorn (production) or Werkzeug (development).

gunicorn runs exactly one gthread worker (Flask-SocketIO's documented setup for WebSockets
without green threads: `gunicorn -w 1 --threads 100 module:app`): the wallets' clients,
rate limits and Socket.IO rooms live in that one process's memory, so never add a worker.
The app is built in the worker, never in the master (no preload), so the wallets' loop and
the live-event thread run where the requests are served.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

from .config import SERVERS, WebConfig

log = logging.getLogger(__name__)

GRACEFUL_SECONDS = 10
"""How long a stopping gunicorn lets requests in flight finish (live sockets are hung up
at once: they never finish on their own)."""


def serve(config: WebConfig | None = None) -> None:
    """Run the app until interrupted (what `connext web` does)."""
    config = config or WebConfig.from_env()
    if config.server not in SERVERS:
        raise SystemExit(f"error: unknown web server {config.server!r} "
                         f"(choose {' or '.join(SERVERS)})")
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    print(f"wallet web app on http://{_display_host(config.host)}:{config.port} "
          f"({config.server})", flush=True)
    if config.server == "gunicorn":
        WalletServer(config).run()
    else:
        _serve_werkzeug(config)


def _serve_werkzeug(config: WebConfig) -> None:
    from . import create_app, socketio

    log.warning("Werkzeug's development server: use `connext web --server gunicorn` "
                "in production")
    app = create_app(config)
    try:
        socketio.run(app, host=config.host, port=config.port, allow_unsafe_werkzeug=True,
                     use_reloader=False, log_output=False)
    finally:
        app.extensions["connext.wallets"].close()


class WalletServer(BaseApplication):  # type: ignore[misc]
    """gunicorn run from Python with our settings (no config file, no command line)."""

    def __init__(self, config: WebConfig) -> None:
        self.config = config
        super().__init__()

    def load_config(self) -> None:
        settings = {
            "bind": [f"{self.config.host}:{self.config.port}"],
            "workers": 1,
            "worker_class": WalletWorker,
            "threads": self.config.threads,
            "preload_app": False,
            "graceful_timeout": GRACEFUL_SECONDS,
            # whether a request came over HTTPS is the app's decision alone
            # (CONNEXT_WEB_TRUST_PROXY, app/security.py), the same under either server
            "forwarded_allow_ips": "",
            "secure_scheme_headers": {},
            "proc_name": "connext-web",
        }
        if "control_socket_disable" in self.cfg.settings:  # newer gunicorn
            settings["control_socket_disable"] = True  # one shared path per user otherwise
        for name, value in settings.items():
            self.cfg.set(name, value)

    def load(self) -> Flask:
        from . import create_app

        return create_app(self.config)


class WalletWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker that hangs up the live sockets when told to stop and
    closes the wallets' clients when it ends (Ctrl-C, SIGTERM, or its master gone)."""

    wsgi: Flask

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        # not in the signal handler itself: closing a socket takes its lock
        threading.Thread(target=_hang_up, name="hang-up", daemon=True).start()

    def run(self) -> None:
        try:
            super().run()
        finally:
            _hang_up()  # the pool's threads serving sockets must end for the process to
            self.wsgi.extensions["connext.wallets"].close()


def _hang_up() -> None:
    from . import socketio

    try:
        socketio.server.eio.disconnect()
    except Exception:
        log.exception("hanging up the live sockets failed")


def _display_host(host: str) -> str:
    return "localhost" if host in ("127.0.0.1", "0.0.0.0", "") else host
