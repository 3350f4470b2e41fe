"""Compile the Vyper contracts into the committed artifacts (ABI + bytecode JSON).

`python -m connext.contracts.build` rewrites connext/contracts/artifacts/<Name>.json;
`--check` only reports whether they are fresh. Output is deterministic: the same sources
and compiler give byte-identical files. Nothing at run time compiles: the chain code
loads these artifacts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import vyper
from vyper.compiler.input_bundle import FileInput, FilesystemInputBundle
from vyper.compiler.phases import CompilerData

CONTRACTS_DIR = Path(__file__).resolve().parent
ARTIFACTS_DIR = CONTRACTS_DIR / "artifacts"

CONTRACTS: tuple[str, ...] = (
    "ChannelMastercopy.vy",
    "ChannelFactory.vy",
    "TransferRegistry.vy",
    "SecretRegistry.vy",
    "TestToken.vy",
    "transfers/Hashlock.vy",
    "transfers/Signed.vy",
    "transfers/Withdraw.vy",
    "transfers/Stream.vy",
)
"""Deployable contracts, relative to CONTRACTS_DIR. Other .vy files are modules they import."""

BLUEPRINTS = frozenset({"ChannelMastercopy"})
"""Contracts deployed as EIP-5202 blueprints (the factory creates the mastercopy)."""


def artifact_name(source: str) -> str:
    return Path(source).stem


def _load(source: str) -> tuple[FileInput, FilesystemInputBundle]:
    bundle = FilesystemInputBundle([CONTRACTS_DIR])
    file_input = bundle.load_file(Path(source))
    assert isinstance(file_input, FileInput)
    return file_input, bundle


def source_hash(source: str) -> str:
    """sha256 over the contract's source and, recursively, the modules it imports.

    This is Vyper's own integrity sum; it needs only the compiler front end.
    """
    file_input, bundle = _load(source)
    return str(CompilerData(file_input, bundle).integrity_sum)


def compile_contract(source: str) -> dict[str, Any]:
    """The artifact of one contract: ABI, deploy bytecode, compiler version, source hash."""
    file_input, bundle = _load(source)
    formats = ["abi", "bytecode", "integrity"]
    if artifact_name(source) in BLUEPRINTS:
        formats.append("blueprint_bytecode")
    output = vyper.compile_from_file_input(file_input, input_bundle=bundle, output_formats=formats)
    artifact: dict[str, Any] = {
        "contract_name": artifact_name(source),
        "source": source,
        "abi": output["abi"],
        "bytecode": output["bytecode"],
        "vyper_version": vyper.__version__,
        "source_hash": output["integrity"],
    }
    if "blueprint_bytecode" in output:
        artifact["blueprint_bytecode"] = output["blueprint_bytecode"]
    return artifact


def serialize(artifact: dict[str, Any]) -> str:
    return json.dumps(artifact, indent=2, sort_keys=True) + "\n"


def build(out_dir: Path | None = None) -> list[Path]:
    """Compile every contract into `out_dir` (default: the committed artifacts directory)."""
    target = ARTIFACTS_DIR if out_dir is None else out_dir
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for source in CONTRACTS:
        path = target / f"{artifact_name(source)}.json"
        text = serialize(compile_contract(source))
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        written.append(path)
    return written


def stale(artifacts_dir: Path | None = None) -> list[str]:
    """Names of artifacts that are missing or were built from other sources or compiler."""
    directory = ARTIFACTS_DIR if artifacts_dir is None else artifacts_dir
    result: list[str] = []
    for source in CONTRACTS:
        name = artifact_name(source)
        path = directory / f"{name}.json"
        try:
            artifact = json.loads(path.read_text())
        except (OSError, ValueError):
            result.append(name)
            continue
        if (
            artifact.get("vyper_version") != vyper.__version__
            or artifact.get("source_hash") != source_hash(source)
        ):
            result.append(name)
    return result


def check(artifacts_dir: Path | None = None) -> bool:
    """True when every committed artifact matches its sources and the pinned compiler."""
    return not stale(artifacts_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m connext.contracts.build", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report stale artifacts")
    args = parser.parse_args(argv)
    if args.check:
        names = stale()
        if names:
            print("stale artifacts: " + ", ".join(names), file=sys.stderr)
            return 1
        print("artifacts are fresh")
        return 0
    for path in build():
        print(f"wrote {path.relative_to(CONTRACTS_DIR.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
