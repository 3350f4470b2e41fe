"""The wallet's screens, one blueprint per area."""

from __future__ import annotations

from typing import Any

from flask import Flask, g, request

from . import close, demo, deposit, home, links, send, settings, withdraw
from .common import current_wallet

BLUEPRINTS = (home.bp, deposit.bp, send.bp, links.bp, withdraw.bp, settings.bp, demo.bp,
              close.bp)


def register(app: Flask) -> None:
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)

    @app.context_processor
    def wallet_context() -> dict[str, Any]:
        screen = request.blueprint in {bp.name for bp in BLUEPRINTS}
        return {"wallet": current_wallet() if screen else g.get("wallet")}
