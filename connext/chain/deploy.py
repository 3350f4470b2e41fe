"""Deploy the contracts once per chain and remember where they are.

`deploy(...)` reuses the deployment recorded for the chain's id in the deployment file when
it was made from the same contract artifacts and code still exists at every recorded
address; otherwise it deploys the secret registry, the four transfer definitions, the
mastercopy blueprint, the channel factory (which creates the mastercopy), the transfer
registry (with the definitions registered) and, on local chains, a mintable test token,
then records the addresses (JSON keyed by chain id). `top_up_test_token(...)` mints that
token to the dev accounts (what `make start` and `connext deploy --mint-test-token` do).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from web3 import Web3

from ..contracts import ARTIFACTS_DIR, load_artifact
from ..protocol.types import NetworkContext
from .contracts import Sender, connect, contract

DEFINITION_CONTRACTS: tuple[str, ...] = ("Hashlock", "Signed", "Withdraw", "Stream")
LOCAL_CHAIN_IDS = frozenset({31337, 1337})
TEST_TOKEN_NAME = "Connext Test Token"
TEST_TOKEN_SYMBOL = "TEST"
TEST_TOKEN_MINT = 1_000_000 * 10**18
"""Test tokens minted to each dev account that holds none (a fresh chain)."""


@dataclass(frozen=True)
class Deployment:
    """Where the contracts live on one chain."""

    chain_id: int
    channel_factory: str
    channel_mastercopy: str
    transfer_registry: str
    definitions: Mapping[str, str] = field(hash=False)
    """Transfer definition name -> address, as registered in the transfer registry."""
    test_token: str | None
    block_number: int
    """Block of the first deployment transaction: where chain watchers start."""
    secret_registry: str
    """Where hashlock preimages revealed on chain are recorded (see SecretRegistry.vy)."""
    artifacts: str = ""
    """Digest of the contract artifacts deployed: another build means a new deployment."""

    @property
    def network(self) -> NetworkContext:
        """The protocol's view of this deployment (what channel states are bound to)."""
        return NetworkContext(
            chain_id=self.chain_id,
            channel_factory=self.channel_factory,
            channel_mastercopy=self.channel_mastercopy,
            transfer_registry=self.transfer_registry,
        )

    def addresses(self) -> list[str]:
        fixed = [self.channel_factory, self.channel_mastercopy, self.transfer_registry,
                 self.secret_registry]
        token = [] if self.test_token is None else [self.test_token]
        return [*fixed, *self.definitions.values(), *token]

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "channel_factory": self.channel_factory,
            "channel_mastercopy": self.channel_mastercopy,
            "transfer_registry": self.transfer_registry,
            "definitions": dict(self.definitions),
            "test_token": self.test_token,
            "block_number": self.block_number,
            "secret_registry": self.secret_registry,
            "artifacts": self.artifacts,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Deployment:
        return cls(
            chain_id=int(data["chain_id"]),
            channel_factory=Web3.to_checksum_address(data["channel_factory"]),
            channel_mastercopy=Web3.to_checksum_address(data["channel_mastercopy"]),
            transfer_registry=Web3.to_checksum_address(data["transfer_registry"]),
            definitions={
                str(k): Web3.to_checksum_address(v) for k, v in data["definitions"].items()
            },
            test_token=(
                None if data.get("test_token") is None
                else Web3.to_checksum_address(data["test_token"])
            ),
            block_number=int(data["block_number"]),
            # a deployment recorded before the secret registry existed is redeployed
            secret_registry=Web3.to_checksum_address(
                data.get("secret_registry") or "0x" + "00" * 20),
            artifacts=str(data.get("artifacts", "")),
        )


def deploy(
    w3_or_rpc_url: Web3 | str,
    deployer_private_key: str | bytes,
    *,
    deployment_file: Path | None = None,
    test_token: bool | None = None,
) -> Deployment:
    """The chain's deployment: reused from `deployment_file` if still there, else new.

    `test_token`: deploy the open-mint TestToken; by default only on local chains
    (chain id 31337 or 1337).
    """
    w3 = connect(w3_or_rpc_url)
    chain_id = w3.eth.chain_id
    if deployment_file is not None:
        recorded = load_deployment(deployment_file, chain_id)
        if (recorded is not None and recorded.artifacts == artifacts_digest()
                and _has_code(w3, recorded.addresses())):
            return recorded
    with_token = chain_id in LOCAL_CHAIN_IDS if test_token is None else test_token
    deployment = _deploy_all(Sender(w3, deployer_private_key), with_token)
    if deployment_file is not None:
        save_deployment(deployment_file, deployment)
    return deployment


def artifacts_digest() -> str:
    """sha256 over the committed artifacts of every deployed contract."""
    digest = hashlib.sha256()
    for path in sorted(ARTIFACTS_DIR.glob("*.json")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _deploy_all(sender: Sender, with_token: bool) -> Deployment:
    w3 = sender.w3
    secrets_receipt = sender.deploy_receipt("SecretRegistry")
    secrets = str(secrets_receipt["contractAddress"])
    # the Hashlock reads the secret registry; the channels know the Withdraw definition
    arguments: dict[str, tuple[object, ...]] = {
        name: (secrets,) for name in ("Hashlock", "Signed", "Stream")}
    definitions = {name: str(sender.deploy(name, *arguments.get(name, ())).address)
                   for name in DEFINITION_CONTRACTS}
    blueprint = str(
        sender.deploy_code(load_artifact("ChannelMastercopy")["blueprint_bytecode"])
        ["contractAddress"])
    factory = sender.deploy("ChannelFactory", blueprint, definitions["Withdraw"])
    registry = sender.deploy("TransferRegistry")
    for address in definitions.values():
        sender.transact(registry.functions.add_definition(address))
    token = (
        str(sender.deploy("TestToken", TEST_TOKEN_NAME, TEST_TOKEN_SYMBOL).address)
        if with_token
        else None
    )
    return Deployment(
        chain_id=sender.chain_id,
        channel_factory=str(factory.address),
        channel_mastercopy=str(
            contract(w3, "ChannelFactory", str(factory.address)).functions.mastercopy().call()
        ),
        transfer_registry=str(registry.address),
        definitions=definitions,
        test_token=token,
        block_number=int(secrets_receipt["blockNumber"]),
        secret_registry=secrets,
        artifacts=artifacts_digest(),
    )


def load_deployment(deployment_file: Path, chain_id: int) -> Deployment | None:
    """The deployment recorded for `chain_id`, or None."""
    try:
        entries = json.loads(deployment_file.read_text())
    except FileNotFoundError:
        return None
    entry = entries.get(str(chain_id))
    return None if entry is None else Deployment.from_json(entry)


def save_deployment(deployment_file: Path, deployment: Deployment) -> None:
    """Record `deployment` under its chain id, keeping other chains' entries (atomic write)."""
    try:
        entries: dict[str, Any] = json.loads(deployment_file.read_text())
    except FileNotFoundError:
        entries = {}
    entries[str(deployment.chain_id)] = deployment.to_json()
    deployment_file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=deployment_file.parent, prefix=deployment_file.name)
    with os.fdopen(fd, "w") as out:
        json.dump(entries, out, indent=2, sort_keys=True)
        out.write("\n")
    os.replace(tmp, deployment_file)


def mint_test_token(
    w3_or_rpc_url: Web3 | str,
    private_key: str | bytes,
    token: str,
    to: str,
    amount: int,
) -> None:
    """Mint `amount` TestToken base units to `to` (anyone may mint on local chains)."""
    sender = Sender(connect(w3_or_rpc_url), private_key)
    sender.transact(
        contract(sender.w3, "TestToken", token).functions.mint(
            Web3.to_checksum_address(to), amount
        )
    )


def top_up_test_token(
    w3_or_rpc_url: Web3 | str,
    private_key: str | bytes,
    token: str,
    owners: Sequence[str],
    amount: int = TEST_TOKEN_MINT,
) -> list[str]:
    """Mint `amount` TestToken base units to each of `owners` that holds none; returns whom
    it minted to (nobody on a restarted chain whose accounts kept their tokens)."""
    w3 = connect(w3_or_rpc_url)
    test_token = contract(w3, "TestToken", token)
    checksummed: list[str] = [Web3.to_checksum_address(owner) for owner in owners]
    empty = [owner for owner in checksummed
             if test_token.functions.balanceOf(owner).call() == 0]
    for owner in empty:
        mint_test_token(w3, private_key, token, owner, amount)
    return empty


def _has_code(w3: Web3, addresses: list[str]) -> bool:
    return all(len(w3.eth.get_code(Web3.to_checksum_address(a))) > 0 for a in addresses)
