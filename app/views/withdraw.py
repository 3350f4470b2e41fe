"""Cash out screen."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("withdraw", __name__)


@bp.get("/withdraw")
def index() -> str:
    return render_template("base.html")
