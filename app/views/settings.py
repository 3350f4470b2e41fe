"""Settings screen."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("settings", __name__)


@bp.get("/settings")
def index() -> str:
    return render_template("base.html")
