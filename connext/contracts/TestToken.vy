# pragma version 0.4.3
# pragma evm-version cancun
"""
@title Test token
@notice A plain ERC20 (18 decimals) that anyone can mint: for local chains, tests and the
        dev faucet only. Never deploy it where its tokens could be mistaken for value.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed

implements: IERC20
implements: IERC20Detailed


name: public(String[32])
symbol: public(String[16])
decimals: public(constant(uint8)) = 18
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])


@deploy
def __init__(name: String[32], symbol: String[16]):
    self.name = name
    self.symbol = symbol


@external
def transfer(to: address, amount: uint256) -> bool:
    self._transfer(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    allowed: uint256 = self.allowance[owner][msg.sender]
    if allowed != max_value(uint256):
        assert allowed >= amount, "TestToken: allowance exceeded"
        self.allowance[owner][msg.sender] = allowed - amount
    self._transfer(owner, to, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    log IERC20.Approval(owner=msg.sender, spender=spender, value=amount)
    return True


@external
def mint(to: address, amount: uint256):
    """
    @notice Creates `amount` tokens for `to`. Open to everyone: local chains only.
    """
    assert to != empty(address), "TestToken: mint to zero address"
    self.totalSupply += amount
    self.balanceOf[to] += amount
    log IERC20.Transfer(sender=empty(address), receiver=to, value=amount)


@internal
def _transfer(owner: address, to: address, amount: uint256):
    assert to != empty(address), "TestToken: transfer to zero address"
    balance: uint256 = self.balanceOf[owner]
    assert balance >= amount, "TestToken: balance exceeded"
    self.balanceOf[owner] = balance - amount
    self.balanceOf[to] += amount
    log IERC20.Transfer(sender=owner, receiver=to, value=amount)
