# pragma version 0.4.3
# pragma evm-version cancun
"""
@title Transfer registry
@notice The owner-managed list of transfer definitions the network accepts: each entry is
        a definition's name, address and the ABI encodings of its state and resolver (read
        from the definition itself, so the entry cannot disagree with the contract). Nodes
        refuse transfers whose definition is not registered here.
"""

from . import transfer_definition as td


MAX_DEFINITIONS: constant(uint256) = 32


struct RegisteredTransfer:
    name: String[32]
    definition: address
    state_encoding: String[256]
    resolver_encoding: String[128]


event DefinitionAdded:
    definition: indexed(address)
    name: String[32]


event DefinitionRemoved:
    definition: indexed(address)
    name: String[32]


event OwnershipTransferred:
    previous_owner: indexed(address)
    new_owner: indexed(address)


owner: public(address)
_definitions: DynArray[RegisteredTransfer, MAX_DEFINITIONS]


@deploy
def __init__():
    self.owner = msg.sender
    log OwnershipTransferred(previous_owner=empty(address), new_owner=msg.sender)


@external
def add_definition(definition: address):
    """
    @notice Registers `definition` under its own name (owner only); names are unique.
    @param definition A contract implementing transfer_definition.ITransferDefinition.
    """
    self._check_owner()
    name: String[32] = staticcall td.ITransferDefinition(definition).name()
    for entry: RegisteredTransfer in self._definitions:
        assert entry.name != name, "Registry: name taken"
    self._definitions.append(
        RegisteredTransfer(
            name=name,
            definition=definition,
            state_encoding=staticcall td.ITransferDefinition(definition).state_encoding(),
            resolver_encoding=staticcall td.ITransferDefinition(definition).resolver_encoding(),
        )
    )
    log DefinitionAdded(definition=definition, name=name)


@external
def remove_definition(name: String[32]):
    """
    @notice Unregisters the definition called `name` (owner only); reverts if unknown.
    """
    self._check_owner()
    count: uint256 = len(self._definitions)
    for i: uint256 in range(count, bound=MAX_DEFINITIONS):
        entry: RegisteredTransfer = self._definitions[i]
        if entry.name == name:
            # order is not meaningful: move the last entry into the gap
            self._definitions[i] = self._definitions[count - 1]
            self._definitions.pop()
            log DefinitionRemoved(definition=entry.definition, name=name)
            return
    raise "Registry: unknown name"


@external
def transfer_ownership(new_owner: address):
    """
    @notice Hands the registry to `new_owner` (owner only).
    """
    self._check_owner()
    assert new_owner != empty(address), "Registry: zero owner"
    log OwnershipTransferred(previous_owner=self.owner, new_owner=new_owner)
    self.owner = new_owner


@external
@view
def get_definitions() -> DynArray[RegisteredTransfer, MAX_DEFINITIONS]:
    """
    @notice Every registered definition.
    """
    return self._definitions


@external
@view
def get_definition(name: String[32]) -> RegisteredTransfer:
    """
    @notice The definition called `name`; reverts if unknown.
    """
    for entry: RegisteredTransfer in self._definitions:
        if entry.name == name:
            return entry
    raise "Registry: unknown name"


@internal
@view
def _check_owner():
    assert msg.sender == self.owner, "Registry: not the owner"
