"""Deposit screen."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("deposit", __name__)


@bp.get("/deposit")
def index() -> str:
    return render_template("base.html")
