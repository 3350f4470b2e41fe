"""Send screen."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("send", __name__)


@bp.get("/send")
def index() -> str:
    return render_template("base.html")


@bp.get("/request")
def request() -> str:
    return render_template("base.html")
