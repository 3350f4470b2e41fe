"""Deployment: channel addresses are predictable, proxies exist only when needed, and the
deployment script and transfer registry record what the protocol expects."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError

from connext.chain.anvil import Anvil
from connext.chain.contracts import contract
from connext.chain.deploy import Deployment, deploy, load_deployment, save_deployment
from connext.protocol.encoding import channel_address, keccak, proxy_init_code
from connext.protocol.transfers import DEFINITIONS
from connext.protocol.types import ETH

from .helpers import ETHER, ChannelUnderTest, Party, events

pytestmark = pytest.mark.chain


def test_channel_address_is_predicted_by_the_factory_and_by_python(
    channel: ChannelUnderTest, factory: Contract, deployment: Deployment, w3: Web3
) -> None:
    alice, bob = channel.alice.address, channel.bob.address
    predicted_on_chain = factory.functions.channel_address(alice, bob).call()
    predicted_in_python = channel_address(
        deployment.channel_factory, deployment.channel_mastercopy, alice, bob,
        deployment.chain_id,
    )
    assert predicted_on_chain == predicted_in_python
    assert w3.eth.get_code(Web3.to_checksum_address(predicted_on_chain)) == b""

    receipt = channel.deploy()

    created = events(factory.events.ChannelCreated, receipt)
    assert created == [{"channel": predicted_in_python, "alice": alice, "bob": bob}]
    proxy_code = w3.eth.get_code(Web3.to_checksum_address(predicted_in_python))
    assert len(proxy_code) == 45  # the EIP-1167 minimal proxy


def test_the_order_of_the_parties_matters(channel: ChannelUnderTest, factory: Contract) -> None:
    a, b = channel.alice.address, channel.bob.address
    assert factory.functions.channel_address(a, b).call() != (
        factory.functions.channel_address(b, a).call()
    )


def test_mastercopy_checks_proxies_against_its_factory(
    deployment: Deployment, w3: Web3
) -> None:
    mastercopy = contract(w3, "ChannelMastercopy", deployment.channel_mastercopy)
    assert mastercopy.functions.factory().call() == deployment.channel_factory
    assert bytes(mastercopy.functions.proxy_code_hash().call()) == keccak(
        proxy_init_code(deployment.channel_mastercopy)
    )


def test_the_mastercopy_itself_is_nobodys_channel(
    deployment: Deployment, w3: Web3, make_party: Callable[[], Party]
) -> None:
    alice, bob = make_party(), make_party()
    mastercopy = contract(w3, "ChannelMastercopy", deployment.channel_mastercopy)
    with pytest.raises(ContractLogicError, match="not this channel's parties"):
        alice.sender.transact(
            mastercopy.functions.deposit_alice(alice.address, bob.address, ETH, 1), value=1
        )


def test_a_channel_refuses_calls_naming_other_parties(
    channel: ChannelUnderTest, make_party: Callable[[], Party]
) -> None:
    channel.deploy()
    stranger = make_party()
    impostor = ChannelUnderTest(stranger, channel.bob, channel.deployment, channel.w3)
    call = channel.contract.contract.functions.deposit_alice(
        impostor.alice.address, impostor.bob.address, ETH, ETHER
    )
    with pytest.raises(ContractLogicError, match="not this channel's parties"):
        stranger.sender.transact(call, value=ETHER)


def test_a_channel_is_deployed_once_and_only_when_needed(
    channel: ChannelUnderTest, factory: Contract
) -> None:
    alice, bob = channel.alice, channel.bob
    deposit = factory.functions.create_channel_and_deposit(alice.address, bob.address, ETH, ETHER)

    first = alice.sender.transact(deposit, value=ETHER)
    second = alice.sender.transact(deposit, value=ETHER)

    assert len(events(factory.events.ChannelCreated, first)) == 1
    assert events(factory.events.ChannelCreated, second) == []
    assert channel.contract.total_deposits_alice(ETH) == 2 * ETHER
    with pytest.raises(ContractLogicError):
        channel.deploy()


def test_factory_refuses_a_channel_with_itself_or_the_zero_address(
    channel: ChannelUnderTest, factory: Contract
) -> None:
    a = channel.alice.address
    with pytest.raises(ContractLogicError, match="alice is bob"):
        channel.alice.sender.transact(factory.functions.create_channel(a, a))
    with pytest.raises(ContractLogicError, match="zero party"):
        channel.alice.sender.transact(factory.functions.create_channel(a, ETH))


def test_only_the_factory_may_credit_alice_without_a_transfer(channel: ChannelUnderTest) -> None:
    channel.deploy()
    call = channel.contract.contract.functions.credit_alice_deposit(
        channel.alice.address, channel.bob.address, ETH, ETHER, channel.alice.address
    )
    with pytest.raises(ContractLogicError, match="only the factory"):
        channel.alice.sender.transact(call)


def test_registry_lists_the_four_definitions_with_the_python_encodings(
    deployment: Deployment, w3: Web3
) -> None:
    registry = contract(w3, "TransferRegistry", deployment.transfer_registry)
    entries = registry.functions.get_definitions().call()

    assert {name: address for name, address, _, _ in entries} == dict(deployment.definitions)
    for name, _, state_encoding, resolver_encoding in entries:
        assert state_encoding == DEFINITIONS[name].state_encoding
        assert resolver_encoding == DEFINITIONS[name].resolver_encoding
    assert registry.functions.get_definition("Stream").call()[1] == deployment.definitions["Stream"]


def test_only_the_registry_owner_adds_and_removes_definitions(
    deployment: Deployment, w3: Web3, anvil: Anvil, make_party: Callable[[], Party]
) -> None:
    from connext.chain.contracts import Sender

    registry = contract(w3, "TransferRegistry", deployment.transfer_registry)
    owner = Sender(w3, anvil.private_keys[0])
    stranger = make_party()
    with pytest.raises(ContractLogicError, match="not the owner"):
        stranger.sender.transact(registry.functions.remove_definition("Hashlock"))
    with pytest.raises(ContractLogicError, match="name taken"):
        owner.transact(registry.functions.add_definition(deployment.definitions["Hashlock"]))

    owner.transact(registry.functions.remove_definition("Hashlock"))

    names = [entry[0] for entry in registry.functions.get_definitions().call()]
    assert sorted(names) == ["Signed", "Stream", "Withdraw"]
    with pytest.raises(ContractLogicError, match="unknown name"):
        registry.functions.get_definition("Hashlock").call()
    owner.transact(registry.functions.add_definition(deployment.definitions["Hashlock"]))
    assert len(registry.functions.get_definitions().call()) == 4


def test_deploy_reuses_the_recorded_deployment_without_sending_anything(
    anvil: Anvil, w3: Web3, deployment: Deployment, deployment_file: Path
) -> None:
    deployer = w3.eth.account.from_key(anvil.private_keys[0]).address
    nonce = w3.eth.get_transaction_count(deployer)

    again = deploy(anvil.url, anvil.private_keys[0], deployment_file=deployment_file)

    assert again == deployment
    assert w3.eth.get_transaction_count(deployer) == nonce
    assert load_deployment(deployment_file, deployment.chain_id) == deployment
    assert load_deployment(deployment_file, 1) is None


def test_deploy_deploys_again_when_the_recorded_contracts_are_gone(
    anvil: Anvil, deployment: Deployment, tmp_path: Path
) -> None:
    from dataclasses import replace

    file = tmp_path / "deployments.json"
    gone = replace(deployment, channel_factory="0x" + "42" * 20)
    save_deployment(file, gone)
    other_chain = replace(deployment, chain_id=5)
    save_deployment(file, other_chain)

    fresh = deploy(anvil.url, anvil.private_keys[0], deployment_file=file)

    assert fresh.channel_factory not in (deployment.channel_factory, gone.channel_factory)
    assert set(fresh.definitions) == {"Hashlock", "Signed", "Withdraw", "Stream"}
    assert fresh.test_token is not None
    assert load_deployment(file, deployment.chain_id) == fresh
    assert load_deployment(file, 5) == other_chain
