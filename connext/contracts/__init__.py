"""Vyper sources of the on-chain side and their committed build artifacts.

`load_artifact("ChannelFactory")` returns the ABI and bytecode that `build.py` compiled;
nothing here compiles or talks to a chain.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"


@cache
def _read(name: str) -> str:
    path = ARTIFACTS_DIR / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"no artifact {name!r} in {ARTIFACTS_DIR}; run `python -m connext.contracts.build`"
        )
    return path.read_text()


def load_artifact(name: str) -> dict[str, Any]:
    """The artifact {"abi", "bytecode", "vyper_version", "source_hash", ...} of a contract."""
    artifact: dict[str, Any] = json.loads(_read(name))
    return artifact


__all__ = ["ARTIFACTS_DIR", "load_artifact"]
