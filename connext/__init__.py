"""connext-py: a state-channel payment network.

The library lives in subpackages: `protocol` (pure rules), `contracts` (Vyper sources and
artifacts), `chain` (web3 adapters). Nothing here runs at import time.
"""

__version__ = "0.1.0"
