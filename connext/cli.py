"""The `connext` command: run the local stack, deploy contracts, build contracts.

Each subcommand is a thin shell over a library function, so tests and docker-compose run
exactly what people run. Heavy imports happen inside the subcommand that needs them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path


def _start(args: argparse.Namespace) -> int:
    from .devstack import StackConfig, run_stack

    config = StackConfig(
        chain_port=args.chain_port, nats_port=args.nats_port, node_port=args.node_port,
        web_port=args.web_port, oracle_port=args.oracle_port, data_dir=Path(args.data_dir),
    )
    return run_stack(config)


def _node(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import signal

    from .node import Node, NodeConfig

    if args.action == "status":
        return _node_status(args)

    logging.basicConfig(level=os.environ.get("CONNEXT_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = NodeConfig.from_env()
    overrides = {k: v for k, v in {
        "nats_url": args.nats_url, "chain_url": args.chain_url,
        "database_url": args.database_url, "http_port": args.http_port,
        "http_host": args.http_host,
        "deployment_file": Path(args.deployment_file) if args.deployment_file else None,
    }.items() if v is not None}
    config = replace(config, **overrides)

    async def run() -> None:
        node = Node(config)
        await node.start()
        print(f"node {node.address} ready: NATS {config.nats_url}, "
              f"HTTP http://{config.http_host}:{node.http_port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, _log_tasks)
        await stop.wait()
        await node.stop()

    asyncio.run(run())
    return 0


def _node_status(args: argparse.Namespace) -> int:
    from .node.config import NodeConfig
    from .node.status import StatusUnavailable, fetch_summary, format_summary

    url = args.url
    if url is None:
        port = args.http_port or int(os.environ.get("CONNEXT_NODE_PORT", NodeConfig.http_port))
        url = f"http://{args.http_host or NodeConfig.http_host}:{port}"
    try:
        summary = fetch_summary(url, args.token or os.environ.get("CONNEXT_ADMIN_TOKEN"))
    except StatusUnavailable as exc:
        print(f"connext node status: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


def _log_tasks() -> None:
    """SIGUSR1: log what every task of the node is waiting on (for an operator who wants
    to know why something takes long)."""
    import asyncio
    import io
    import logging

    out = io.StringIO()
    for task in asyncio.all_tasks():
        task.print_stack(limit=12, file=out)
    logging.getLogger("connext.node").warning("tasks on SIGUSR1:\n%s", out.getvalue())


def _web(args: argparse.Namespace) -> int:
    from app.config import WebConfig
    from app.serving import serve

    config = WebConfig.from_env()
    overrides = {k: v for k, v in {"host": args.host, "port": args.port,
                                   "server": args.server}.items() if v is not None}
    serve(replace(config, **overrides))
    return 0


def _chain(args: argparse.Namespace) -> int:
    import signal
    import threading

    from .chain.anvil import Anvil

    extra = ["--state", args.state] if args.state else []
    chain = Anvil(port=args.port, host=args.host, extra_args=extra).start()
    print(f"chain ready: {chain.url} (chain id {chain.chain_id})", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.wait(0.5):
        if not chain.running:
            print("anvil exited", file=sys.stderr)
            return 1
    chain.stop()
    return 0


def _oracle(args: argparse.Namespace) -> int:
    from aiohttp import web

    from .chain.contracts import connect
    from .chain.deploy import load_deployment
    from .oracle import ANVIL_DEV_KEY_2, Oracle, application
    from .protocol.signing import Signer

    chain_id = int(connect(args.chain_url).eth.chain_id)
    deployment = load_deployment(Path(args.deployment_file), chain_id)
    if deployment is None:
        print(f"error: no deployment for chain {chain_id} in {args.deployment_file}",
              file=sys.stderr)
        return 1
    key = os.environ.get("CONNEXT_ORACLE_KEY", ANVIL_DEV_KEY_2)
    oracle = Oracle(Signer.from_hex(key), chain_id, deployment.definitions["Signed"])
    print(f"oracle {oracle.signer.address} ready: http://{args.host}:{args.port}", flush=True)
    web.run_app(application(oracle), host=args.host, port=args.port, print=None)
    return 0


def _health(args: argparse.Namespace) -> int:
    import urllib.request

    try:
        if args.rpc_url:
            body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId",
                               "params": []}).encode()
            request = urllib.request.Request(args.rpc_url, data=body,
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=5) as response:
                ok = "result" in json.loads(response.read())
        elif args.nats_url:
            ok = _nats_login_works(args.nats_url)
        else:
            with urllib.request.urlopen(args.http_url, timeout=5) as response:
                ok = response.status == 200
    except OSError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    return 0 if ok else 1


def _nats_login_works(url: str) -> bool:
    """A fresh key can log in (nats-server and the auth service both answer)."""
    import asyncio

    import nats

    from .messaging.natsauth import login_options
    from .protocol.signing import Signer

    async def login() -> bool:
        try:
            nc = await nats.connect(url, connect_timeout=3, max_reconnect_attempts=0,
                                    allow_reconnect=False, **login_options(Signer.random()))
        except Exception as exc:
            print(f"unhealthy: cannot log in to {url}: {exc}", file=sys.stderr)
            return False
        await nc.close()
        return True

    return asyncio.run(login())


def _deploy(args: argparse.Namespace) -> int:
    from .chain.contracts import connect
    from .chain.deploy import deploy, top_up_test_token

    key = args.private_key or os.environ.get("CONNEXT_DEPLOYER_KEY")
    if not key:
        print("error: give --private-key or set CONNEXT_DEPLOYER_KEY", file=sys.stderr)
        return 2
    deployment = deploy(args.rpc_url, key, deployment_file=Path(args.deployment_file))
    if args.mint_test_token:
        if deployment.test_token is None:
            print(f"error: chain {deployment.chain_id} has no test token to mint",
                  file=sys.stderr)
            return 1
        # the chain's own accounts are anvil's dev accounts: the faucet's and the node's
        w3 = connect(args.rpc_url)
        top_up_test_token(w3, key, deployment.test_token, w3.eth.accounts)
    print(json.dumps(deployment.to_json(), indent=2))
    return 0


def _contracts_build(args: argparse.Namespace) -> int:
    from .contracts.build import main as build_main

    return build_main([])


def _contracts_check(args: argparse.Namespace) -> int:
    from .contracts.build import main as build_main

    return build_main(["--check"])


def _nats_config(args: argparse.Namespace) -> int:
    from .messaging.natsauth import write_config

    path = write_config(Path(args.dir), host=args.host, port=args.port, rotate=args.rotate)
    print(f"{'new keys and ' if args.rotate else ''}nats-server config: {path} "
          f"(run `nats-server -c {path}` and `connext nats-auth --dir {args.dir}`)")
    return 0


def _nats_auth(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import signal

    from .messaging.natsauth import AuthKeys, AuthService

    logging.basicConfig(level=os.environ.get("CONNEXT_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    nodes = [n for n in args.node or [] if n] or [
        n.strip() for n in os.environ.get("CONNEXT_NATS_NODES", "").split(",") if n.strip()]
    if not nodes:
        print("connext nats-auth: name the node's address (--node or CONNEXT_NATS_NODES)",
              file=sys.stderr)
        return 2

    async def run() -> None:
        service = AuthService(args.nats_url, AuthKeys.load(Path(args.dir)), nodes,
                              ttl_s=args.ttl)
        await service.start()
        print(f"answering NATS logins on {args.nats_url} (nodes: {', '.join(nodes)})",
              flush=True)
        if args.ready_file:
            Path(args.ready_file).write_text("ready\n")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await service.stop()

    asyncio.run(run())
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="connext", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    start = commands.add_parser("start", help="run the local stack (anvil, NATS, contracts)")
    start.add_argument("--chain-port", type=int,
                       default=int(os.environ.get("CONNEXT_CHAIN_PORT", "8545")))
    start.add_argument("--nats-port", type=int,
                       default=int(os.environ.get("CONNEXT_NATS_PORT", "4222")))
    start.add_argument("--node-port", type=int,
                       default=int(os.environ.get("CONNEXT_NODE_PORT", "8000")))
    start.add_argument("--web-port", type=int,
                       default=int(os.environ.get("CONNEXT_WEB_PORT", "3000")))
    start.add_argument("--oracle-port", type=int,
                       default=int(os.environ.get("CONNEXT_ORACLE_PORT", "8010")))
    start.add_argument("--data-dir", default=os.environ.get("CONNEXT_DATA_DIR", ".data"))
    start.set_defaults(run=_start)

    node = commands.add_parser("node", help="run the node daemon (configured by CONNEXT_*), "
                               "or `connext node status`: a running node's admin summary")
    node.add_argument("action", nargs="?", choices=["run", "status"], default="run")
    node.add_argument("--url", help="status: the node's HTTP URL (default from CONNEXT_NODE_*)")
    node.add_argument("--token", help="status: the admin token (default CONNEXT_ADMIN_TOKEN)")
    node.add_argument("--json", action="store_true", help="status: print the summary as JSON")
    node.add_argument("--nats-url")
    node.add_argument("--chain-url")
    node.add_argument("--database-url")
    node.add_argument("--http-port", type=int)
    node.add_argument("--http-host")
    node.add_argument("--deployment-file")
    node.set_defaults(run=_node)

    web = commands.add_parser(
        "web", help="run the wallet web app (configured by CONNEXT_*)",
        description="Run the wallet web app (docs/WEB.md). Configured by CONNEXT_* "
                    "variables; the options below override them.")
    web.add_argument("--host", help="interface to listen on (CONNEXT_WEB_HOST, "
                                    "default 127.0.0.1)")
    web.add_argument("--port", type=int, help="port (CONNEXT_WEB_PORT, default 3000)")
    web.add_argument("--server", choices=["gunicorn", "werkzeug"],
                     help="gunicorn: the production server (one gthread worker, "
                          "CONNEXT_WEB_THREADS threads, default 100); werkzeug: the "
                          "development server (CONNEXT_WEB_SERVER, default werkzeug)")
    web.set_defaults(run=_web)

    oracle = commands.add_parser("oracle", help="run a demo oracle that signs outcomes "
                                                "(CONNEXT_ORACLE_KEY)")
    oracle.add_argument("--host", default=os.environ.get("CONNEXT_ORACLE_HOST", "127.0.0.1"))
    oracle.add_argument("--port", type=int,
                        default=int(os.environ.get("CONNEXT_ORACLE_PORT", "8010")))
    oracle.add_argument("--chain-url", default=os.environ.get("CONNEXT_CHAIN_URL",
                                                              "http://127.0.0.1:8545"))
    oracle.add_argument("--deployment-file", default=os.environ.get(
        "CONNEXT_DEPLOYMENT_FILE", ".data/deployments.json"))
    oracle.set_defaults(run=_oracle)

    nats_config = commands.add_parser(
        "nats-config", help="make the NATS auth keys (kept if present) and nats.conf")
    nats_config.add_argument("--dir", default=os.environ.get("CONNEXT_NATS_AUTH_DIR",
                                                             ".data/nats"))
    nats_config.add_argument("--host", default="127.0.0.1", help="where nats-server listens")
    nats_config.add_argument("--port", type=int, default=4222)
    nats_config.add_argument("--rotate", action="store_true",
                             help="replace the issuer and auth-service keys")
    nats_config.set_defaults(run=_nats_config)

    nats_auth = commands.add_parser(
        "nats-auth", help="answer nats-server's auth callouts (logins by Ethereum key)")
    nats_auth.add_argument("--nats-url", default=os.environ.get("CONNEXT_NATS_URL",
                                                                "nats://127.0.0.1:4222"))
    nats_auth.add_argument("--dir", default=os.environ.get("CONNEXT_NATS_AUTH_DIR",
                                                           ".data/nats"))
    nats_auth.add_argument("--node", action="append",
                           help="a node's address (repeat for several; or CONNEXT_NATS_NODES)")
    nats_auth.add_argument("--ttl", type=float, default=float(os.environ.get(
        "CONNEXT_NATS_LOGIN_TTL", "3600")), help="seconds a login stays valid")
    nats_auth.add_argument("--ready-file", help="written once logins are answered")
    nats_auth.set_defaults(run=_nats_auth)

    chain = commands.add_parser("chain", help="run a local anvil chain in the foreground")
    chain.add_argument("--host", default="127.0.0.1")
    chain.add_argument("--port", type=int, default=8545)
    chain.add_argument("--state", help="load the chain from this file and dump it on exit")
    chain.set_defaults(run=_chain)

    health = commands.add_parser("health", help="exit 0 when a chain or HTTP service answers")
    target = health.add_mutually_exclusive_group(required=True)
    target.add_argument("--rpc-url")
    target.add_argument("--http-url")
    target.add_argument("--nats-url", help="log in with a fresh key (NATS and its auth)")
    health.set_defaults(run=_health)

    dep = commands.add_parser("deploy", help="deploy the contracts to a chain (idempotent)")
    dep.add_argument("--rpc-url", default=os.environ.get("CONNEXT_CHAIN_URL",
                                                         "http://127.0.0.1:8545"))
    dep.add_argument("--private-key", help="deployer key (or CONNEXT_DEPLOYER_KEY)")
    dep.add_argument("--deployment-file", default=os.environ.get(
        "CONNEXT_DEPLOYMENT_FILE", ".data/deployments.json"))
    dep.add_argument("--mint-test-token", action="store_true",
                     default=os.environ.get("CONNEXT_MINT_TEST_TOKEN", "") not in ("", "0"),
                     help="mint 1,000,000 TEST to each of the chain's dev accounts "
                          "(eth_accounts) that holds none, as `make start` does "
                          "(or CONNEXT_MINT_TEST_TOKEN=1)")
    dep.set_defaults(run=_deploy)

    contracts = commands.add_parser("contracts", help="build or check the Vyper artifacts")
    sub = contracts.add_subparsers(dest="action", required=True)
    sub.add_parser("build", help="compile the Vyper sources into artifacts").set_defaults(
        run=_contracts_build)
    sub.add_parser("check", help="exit 1 if the committed artifacts are stale").set_defaults(
        run=_contracts_check)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
