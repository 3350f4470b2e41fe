"""Settings: back up the phrase (after a confirmation), restore from a phrase, start a new
wallet, and create or revoke API tokens for the JSON API.

The phrase is decrypted only to show it here, on an explicit POST; it is never logged.
Restoring verifies the channel the node returns (signatures, merkle root) before use.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from ..assets import InputError
from ..limits import TooMany
from ..wallets import phrase_to_key
from .common import current_wallet, explain, new_wallet, use_wallet, wallets

bp = Blueprint("settings", __name__)


def _page(status: int = 200, **context: Any) -> tuple[str, int]:
    service, wallet = wallets(), current_wallet()
    return render_template("settings.html", tokens=service.tokens(wallet), **context), status


@bp.get("/settings")
def index() -> tuple[str, int]:
    return _page()


@bp.post("/settings/phrase")
def show_phrase() -> tuple[str, int]:
    if request.form.get("confirm") != "yes":
        return _page(422, errors={"confirm": "Tick the box to confirm nobody is watching "
                                              "your screen."})
    return _page(phrase=wallets().phrase(current_wallet()))


@bp.post("/settings/restore")
def restore() -> tuple[str, int] | Response:
    service = wallets()
    phrase = request.form.get("phrase") or ""
    try:
        if not phrase.strip():
            raise InputError("phrase", "Enter your backup phrase.")
        phrase_to_key(phrase)
        wallet = new_wallet(phrase)
        service.run(service.client(wallet), timeout=60)  # fetch and verify its channel
    except Exception as exc:
        return _page(422, errors={"phrase": explain(exc)})
    use_wallet(wallet)
    return redirect(url_for("home.index"))


@bp.post("/settings/new", endpoint="new_wallet")
def start_new_wallet() -> tuple[str, int] | Response:
    if request.form.get("confirm") != "yes":
        return _page(422, errors={"new": "Tick the box to confirm you saved your backup "
                                          "phrase; without it this wallet is gone."})
    try:
        wallet = new_wallet()
    except TooMany as exc:
        return _page(429, errors={"new": exc.message})
    use_wallet(wallet)
    return redirect(url_for("home.index"))


@bp.post("/settings/tokens")
def create_token() -> tuple[str, int]:
    token = wallets().create_token(current_wallet(), request.form.get("label") or "")
    return _page(new_token=token)


@bp.post("/settings/tokens/revoke")
def revoke_token() -> tuple[str, int]:
    if not wallets().revoke_token(current_wallet(), request.form.get("prefix") or ""):
        return _page(422, errors={"tokens": "No such active token."})
    return _page(note="Token revoked: it no longer works.")
