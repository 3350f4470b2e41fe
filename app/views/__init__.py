"""The wallet's screens, one blueprint per area."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Flask, g, render_template, request

from ..limits import TooMany
from . import close, demo, deposit, home, links, oracle, send, settings, streams, withdraw
from .common import current_wallet

BLUEPRINTS = (home.bp, deposit.bp, send.bp, links.bp, streams.bp, oracle.bp, withdraw.bp,
              settings.bp, demo.bp, close.bp)


def register(app: Flask) -> None:
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)

    @app.template_filter("utc")
    def utc(timestamp: int) -> str:
        return datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%d %H:%M UTC")

    @app.context_processor
    def wallet_context() -> dict[str, Any]:
        screen = request.blueprint in {bp.name for bp in BLUEPRINTS}
        try:
            return {"wallet": current_wallet() if screen else g.get("wallet")}
        except TooMany:
            return {"wallet": None}  # the page saying so is being rendered

    @app.errorhandler(TooMany)
    def too_many(exc: TooMany) -> tuple[str, int, dict[str, str]]:
        page = render_template("limited.html", message=exc.message)
        return page, 429, {"Retry-After": str(exc.retry_after)}
