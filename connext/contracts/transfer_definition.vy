# pragma version 0.4.3
"""
@title What the channel and every transfer definition share
@notice The Balance struct, the size limit of encoded states and resolvers, and the
        interface the channel calls when it resolves a disputed transfer.
@dev A definition's `create` reverts on every invalid initial state and returns True
     otherwise; `resolve` reverts on invalid input and returns the final balance. Index 0
     of a Balance is the initiator (payer), index 1 the responder.
"""

# Upper bound of an ABI-encoded transfer state or resolver, in bytes.
MAX_ENCODED_BYTES: constant(uint256) = 1024


struct Balance:
    amount: uint256[2]
    to: address[2]


interface ITransferDefinition:
    def create(balance: Balance, encoded_state: Bytes[MAX_ENCODED_BYTES]) -> bool: view
    def resolve(
        balance: Balance,
        encoded_state: Bytes[MAX_ENCODED_BYTES],
        encoded_resolver: Bytes[MAX_ENCODED_BYTES],
    ) -> Balance: view
    def name() -> String[32]: view
    def state_encoding() -> String[256]: view
    def resolver_encoding() -> String[128]: view
