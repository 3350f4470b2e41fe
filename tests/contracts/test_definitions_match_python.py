"""Each transfer definition contract computes exactly what its Python mirror computes.

For random inputs (valid and invalid: wrong preimages, expired locks, bad or foreign
signatures, fees above the amount, garbled encodings) `create` and `resolve` run on chain
(eth_call at a block whose timestamp is known) and in connext.protocol.transfers with that
timestamp: the contract reverts exactly when the mirror raises a TransferError, and
otherwise both give the same final balance.
"""

from __future__ import annotations

import hashlib
import random

import pytest
from eth_abi.abi import decode

from connext.chain.anvil import Anvil
from connext.chain.contracts import Sender, connect, contract, encode_call
from connext.chain.deploy import Deployment
from connext.protocol.encoding import checksum
from connext.protocol.errors import TransferError
from connext.protocol.transfers import DEFINITIONS, HASHLOCK, TransferContext
from connext.protocol.types import TransferBalance

from .helpers import try_call
from .transfer_cases import Case, CaseMaker, Registered, maker_for

pytestmark = pytest.mark.chain

CASES = 250


@pytest.fixture
def registered(anvil: Anvil, deployment: Deployment) -> Registered:
    """Evidence registered in the secret registry a few hundred seconds apart: hashlock
    preimages, and oracle receipts and stream vouchers (their keccak(digest ++ signature)),
    with the block time of each registration."""
    sender = Sender(connect(anvil.url), anvil.private_keys[0])
    registry = contract(sender.w3, "SecretRegistry", deployment.secret_registry)
    found = Registered.draw(random.Random("evidence"), deployment)

    for preimage in found.preimages():
        at = anvil.block_timestamp() + 100
        anvil.set_next_block_timestamp(at)
        sender.transact(registry.functions.register(preimage))
        found.at[preimage] = at
    return found


def _context(deployment: Deployment, address: str, now: int,
             registered: Registered) -> TransferContext:
    return TransferContext(chain_id=deployment.chain_id, definition=address, now=now,
                           registered={hashlib.sha256(p).digest(): at
                                       for p, at in registered.at.items()})


@pytest.fixture
def known_block(anvil: Anvil, registered: Registered) -> tuple[int, int]:
    """(number, timestamp) of a freshly mined block: eth_call at it sees that timestamp.
    It comes after the secret registrations."""
    timestamp = anvil.block_timestamp() + 1000
    anvil.set_next_block_timestamp(timestamp)
    anvil.mine()
    number = int(anvil.rpc("eth_blockNumber"), 16)
    assert anvil.block_timestamp(number) == timestamp
    return number, timestamp


def _contract_create(anvil: Anvil, address: str, name: str, case: Case, block: int) -> bool:
    result = try_call(anvil, address, encode_call(name, "create", case.balance_tuple(),
                                                  case.state), block)
    if result is None:
        return False
    (accepted,) = decode(["bool"], result)
    assert accepted, "create returns True or reverts"
    return True


def _contract_resolve(
    anvil: Anvil, address: str, name: str, case: Case, block: int
) -> TransferBalance | None:
    data = encode_call(name, "resolve", case.balance_tuple(), case.state, case.resolver)
    result = try_call(anvil, address, data, block)
    if result is None:
        return None
    ((amount, to),) = decode(["(uint256[2],address[2])"], result)
    return TransferBalance(amount=(amount[0], amount[1]), to=(checksum(to[0]), checksum(to[1])))


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
def test_create_and_resolve_match_the_python_mirror(
    name: str, anvil: Anvil, deployment: Deployment, known_block: tuple[int, int],
    registered: Registered,
) -> None:
    number, now = known_block
    address = deployment.definitions[name]
    mirror = DEFINITIONS[name]
    ctx = _context(deployment, address, now, registered)
    make = maker_for(name, CaseMaker(random.Random(f"{name}-2026"), ctx, registered))
    outcomes = {"create": [0, 0], "resolve": [0, 0]}

    for _ in range(CASES):
        case = make()
        try:
            mirror.create(case.balance, case.state, ctx)
            python_creates = True
        except TransferError:
            python_creates = False
        assert _contract_create(anvil, address, name, case, number) == python_creates, case
        outcomes["create"][python_creates] += 1

        try:
            python_final: TransferBalance | None = mirror.resolve(
                case.balance, case.state, case.resolver, ctx)
        except TransferError:
            python_final = None
        assert _contract_resolve(anvil, address, name, case, number) == python_final, case
        outcomes["resolve"][python_final is not None] += 1

    # both verdicts occur often enough for the comparison to mean something
    assert all(min(counts) >= CASES // 10 for counts in outcomes.values()), outcomes


def test_resolve_reverts_where_the_final_amount_would_overflow(
    anvil: Anvil, deployment: Deployment, known_block: tuple[int, int]
) -> None:
    number, now = known_block
    address = deployment.definitions["Hashlock"]
    ctx = TransferContext(chain_id=deployment.chain_id, definition=address, now=now)
    preimage = b"\x01" * 32
    case = Case(
        TransferBalance(amount=(2**256 - 1, 1), to=(checksum(b"\x01" * 20),
                                                     checksum(b"\x02" * 20))),
        HASHLOCK.encode_state(hashlib.sha256(preimage).digest(), 0),
        HASHLOCK.encode_resolver(preimage),
    )
    assert _contract_resolve(anvil, address, "Hashlock", case, number) is None
    with pytest.raises(TransferError):
        HASHLOCK.resolve(case.balance, case.state, case.resolver, ctx)
