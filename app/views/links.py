"""Links screen."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("links", __name__)


@bp.get("/links")
def index() -> str:
    return render_template("base.html")
