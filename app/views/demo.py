"""Demo screen."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("demo", __name__)


@bp.get("/demo")
def index() -> str:
    return render_template("base.html")
