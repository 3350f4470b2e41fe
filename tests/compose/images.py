"""The offline stand-ins for the images docker-compose.yml pulls, built on the host for the
compose test (tests/compose/offline.yml names them). Containers here reach Debian's mirror
but not Docker Hub, PyPI or npm, so everything else is prepared on the host: a Debian base
made by debootstrap, the project's wheels, the host's Node and the npm packages of
package-lock.json. What the slow steps make is kept in the cache (tests/compose/engine.py's
CACHE) for the next run. Users never run any of this: docker-compose.yml and the Dockerfile
keep the official images.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

from connext.devstack import nats_server_binary

from .engine import CACHE, Engine

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OVERRIDE = HERE / "offline.yml"
"""The test-only compose override: these images instead of the official ones."""

BASE_IMAGE = "connext-compose-test/debian:bookworm-minbase"
PYTHON_IMAGE = "connext-compose-test/python:3.11-slim"
NODE_IMAGE = "connext-compose-test/node:local"
JS_STAGE_IMAGE = "connext-compose-test/connext-py-js:local"
NATS_IMAGE = "connext-compose-test/nats:local"
POSTGRES_IMAGE = "connext-compose-test/postgres:15"
DEBIAN_MIRROR = os.environ.get("CONNEXT_DEBIAN_MIRROR", "http://deb.debian.org/debian")

Say = Callable[[str], None]


def build_stand_ins(engine: Engine, say: Say = print) -> None:
    """Every image offline.yml names except the project's own (compose builds that from
    the user-facing Dockerfile on top of the Node and Python stand-ins)."""
    for name, make in (("base image", base_image), ("python", python_image),
                       ("node", node_image), ("nats", nats_image),
                       ("postgres", postgres_image), ("npm ci stage", js_stage)):
        began = time.monotonic()
        make(engine, say)
        say(f"  {name}: {time.monotonic() - began:.0f} s")


def base_image(engine: Engine, say: Say) -> None:
    """Debian bookworm (debootstrap minbase) as an image: from the engine if it has it,
    else from the cached tarball, else debootstrapped (root; a minute or two)."""
    if engine.docker("image", "inspect", BASE_IMAGE, check=False).returncode == 0:
        return
    tarball = CACHE / "bookworm-minbase.tar"
    if not tarball.exists():
        say(f"  debootstrap bookworm from {DEBIAN_MIRROR} (cached in {tarball})")
        _debootstrap(tarball)
    engine.docker("import", str(tarball), BASE_IMAGE)


def _debootstrap(tarball: Path) -> None:
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        raise RuntimeError("the Debian base image needs debootstrap run as root "
                           "(`make test-compose` installs it as root)")
    with tempfile.TemporaryDirectory(dir=CACHE, prefix="rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        try:
            subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs),
                            DEBIAN_MIRROR], check=True, capture_output=True, timeout=1800)
        except subprocess.CalledProcessError as failed:
            raise RuntimeError("debootstrap failed:\n" + failed.stdout.decode()[-3000:]
                               + failed.stderr.decode()[-3000:]) from failed
        finally:
            for mount in ("proc", "sys"):  # debootstrap unmounts them, unless it failed
                subprocess.run(["umount", "-l", str(rootfs / mount)], capture_output=True)
        partial = tarball.with_suffix(".partial")
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True)
        os.replace(partial, tarball)


def python_image(engine: Engine, say: Say) -> None:
    context = CACHE / "python-context"
    _wheels(context / "wheels", say)
    build(engine, PYTHON_IMAGE, HERE / "python" / "Dockerfile", context, BASE=BASE_IMAGE)


def node_image(engine: Engine, say: Say) -> None:
    """The host's node and npm (Node >= 20, what anvil's platform packages want)."""
    context = CACHE / "node-context"
    _npm_cache(context / "npm-cache", say)
    node = Path(os.path.realpath(shutil.which("node") or "node"))
    npm = Path(os.path.realpath(shutil.which("npm") or "npm")).parents[1]  # npm/bin/npm-cli.js
    version = subprocess.run([str(node), "--version"], capture_output=True, text=True,
                             check=False).stdout if node.is_file() else ""
    if not version.startswith("v") or int(version[1:].split(".")[0]) < 20 \
            or not (npm / "package.json").is_file():
        raise RuntimeError("the Node stand-in copies the host's node and npm: "
                           f"install Node >= 20 (found {version.strip() or 'none'})")
    shutil.copy2(node, context / "node")
    shutil.rmtree(context / "npm", ignore_errors=True)
    shutil.copytree(npm, context / "npm", symlinks=True)
    build(engine, NODE_IMAGE, HERE / "node" / "Dockerfile", context, BASE=BASE_IMAGE)


def _wheels(directory: Path, say: Say) -> None:
    """Wheels of the project's dependencies and its build backend, for the container's
    Python 3.11 (so made by a 3.11 venv): kept while the dependencies stay the same."""
    if sys.version_info[:2] != (3, 11):
        raise RuntimeError("the image's Python is Debian bookworm's 3.11: build its wheels "
                           f"from a Python 3.11 venv (this is {sys.version.split()[0]})")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    requirements = [*project["project"]["dependencies"], *project["build-system"]["requires"],
                    "wheel"]
    if _fresh(directory, "\n".join(requirements)):
        return
    say(f"  pip wheel: {len(requirements)} requirements into {directory}")
    directory.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
           "--wheel-dir", str(directory), "--find-links", str(directory)]
    # what the cache already holds first; the index only for what it lacks
    if subprocess.run([*pip, "--no-index", *requirements], capture_output=True).returncode:
        online = subprocess.run([*pip, *requirements], capture_output=True, text=True,
                                timeout=1800)
        if online.returncode:
            raise RuntimeError(f"pip wheel failed:\n{online.stdout[-3000:]}"
                               f"{online.stderr[-3000:]}")
    _remember(directory, "\n".join(requirements))


def _npm_cache(directory: Path, say: Say) -> None:
    """An npm cache holding what `npm ci` needs for package-lock.json (npm ci on the host
    fills it): the Dockerfile's own `npm ci` then runs offline from it."""
    lock = (ROOT / "package-lock.json").read_text()
    if _fresh(directory, lock):
        return
    say(f"  npm ci: filling {directory}")
    shutil.rmtree(directory, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("package.json", "package-lock.json"):
            shutil.copy(ROOT / name, tmp)
        subprocess.run(["npm", "ci", "--cache", str(directory), "--ignore-scripts",
                        "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=tmp, check=True, capture_output=True, timeout=600)
    shutil.rmtree(directory / "_logs", ignore_errors=True)  # would change every run
    _remember(directory, lock)


def _fresh(directory: Path, inputs: str) -> bool:
    """Whether `directory` was made from `inputs` (its stamp sits outside it, so the
    image's COPY sees the same files and Docker reuses its layers)."""
    stamp = directory.parent / f"{directory.name}.sha256"
    digest = hashlib.sha256(inputs.encode()).hexdigest()
    return directory.is_dir() and stamp.exists() and stamp.read_text() == digest


def _remember(directory: Path, inputs: str) -> None:
    stamp = directory.parent / f"{directory.name}.sha256"
    stamp.write_text(hashlib.sha256(inputs.encode()).hexdigest())


def nats_image(engine: Engine, say: Say) -> None:
    with tempfile.TemporaryDirectory() as context:
        shutil.copy(nats_server_binary(), Path(context) / "nats-server")
        build(engine, NATS_IMAGE, HERE / "nats" / "Dockerfile", Path(context))


def postgres_image(engine: Engine, say: Say) -> None:
    build(engine, POSTGRES_IMAGE, HERE / "postgres" / "Dockerfile", HERE / "postgres",
          BASE=BASE_IMAGE)


def js_stage(engine: Engine, say: Say) -> None:
    """The Dockerfile's `js` stage (npm ci), tagged: compose builds the final image only,
    and an untagged stage would go with the dangling images pruned after a run."""
    build(engine, JS_STAGE_IMAGE, ROOT / "Dockerfile", ROOT, target="js",
          NODE_IMAGE=NODE_IMAGE, PYTHON_IMAGE=PYTHON_IMAGE)


def prune_dangling_images(engine: Engine) -> None:
    """Remove the images later builds superseded (call it only on an engine of our own)."""
    engine.docker("image", "prune", "--force")


def build(engine: Engine, tag: str, dockerfile: Path, context: Path, target: str = "",
          **args: str) -> None:
    arguments = [a for name, value in args.items() for a in ("--build-arg", f"{name}={value}")]
    if target:
        arguments += ["--target", target]
    engine.docker("build", "--quiet", "--force-rm", "--tag", tag, "--file", str(dockerfile),
                  *arguments, str(context), timeout=1800)
