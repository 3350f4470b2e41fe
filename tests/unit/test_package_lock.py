"""package-lock.json as committed is what npm installs on every platform: it names anvil's
binary package for each platform the npm package ships (macOS, Linux, Windows; x64, arm64),
so `npm ci` uses it unchanged and `npm install` has nothing to add to it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def lock() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "package-lock.json").read_text())
    return data


def test_every_optional_platform_package_is_in_the_lock_at_its_version() -> None:
    packages = lock()["packages"]
    for path, entry in packages.items():
        for name, version in entry.get("optionalDependencies", {}).items():
            locked = packages.get(f"node_modules/{name}")
            assert locked is not None, f"{path} wants {name}, which the lock lacks"
            assert locked["version"] == version, name
            assert locked.get("integrity", "").startswith("sha512-"), name


def test_anvil_is_locked_for_macos_linux_and_windows() -> None:
    packages = lock()["packages"]
    platforms = {(e["os"][0], e["cpu"][0]) for p, e in packages.items()
                 if p.startswith("node_modules/@foundry-rs/anvil-")}
    assert {("darwin", "arm64"), ("darwin", "x64"), ("linux", "x64"), ("linux", "arm64"),
            ("win32", "x64")} <= platforms


def test_the_lock_is_of_package_json() -> None:
    wanted = json.loads((ROOT / "package.json").read_text())["dependencies"]
    assert lock()["packages"][""]["dependencies"] == wanted
