"""The committed artifacts are exactly what the pinned compiler makes of the sources."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from connext.contracts import ARTIFACTS_DIR, load_artifact
from connext.contracts.build import CONTRACTS, artifact_name, build, check, stale


def test_committed_artifacts_equal_a_fresh_build(tmp_path: Path) -> None:
    build(tmp_path)
    for source in CONTRACTS:
        name = artifact_name(source)
        fresh = json.loads((tmp_path / f"{name}.json").read_text())
        committed = load_artifact(name)
        assert committed["abi"] == fresh["abi"], f"{name}: stale ABI, run the build"
        assert committed["bytecode"] == fresh["bytecode"], f"{name}: stale bytecode"
        assert committed.get("blueprint_bytecode") == fresh.get("blueprint_bytecode")
        assert committed["source_hash"] == fresh["source_hash"]
        assert committed["vyper_version"] == "0.4.3"
        # byte-identical files: the build is deterministic
        assert (ARTIFACTS_DIR / f"{name}.json").read_text() == (
            tmp_path / f"{name}.json"
        ).read_text()


def test_check_accepts_fresh_artifacts_and_names_stale_ones(tmp_path: Path) -> None:
    assert check()
    copy = tmp_path / "artifacts"
    shutil.copytree(ARTIFACTS_DIR, copy)
    assert check(copy)

    hashlock = copy / "Hashlock.json"
    artifact = json.loads(hashlock.read_text())
    artifact["source_hash"] = "0" * 64
    hashlock.write_text(json.dumps(artifact))
    (copy / "Stream.json").unlink()

    assert not check(copy)
    assert stale(copy) == ["Hashlock", "Stream"]


def test_every_contract_has_an_abi_and_deploy_code() -> None:
    for source in CONTRACTS:
        artifact = load_artifact(artifact_name(source))
        assert artifact["abi"], source
        assert artifact["bytecode"].startswith("0x") and len(artifact["bytecode"]) > 100
    assert load_artifact("ChannelMastercopy")["blueprint_bytecode"].startswith("0x")
