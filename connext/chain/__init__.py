"""Adapters to an EVM chain: the local anvil process, contract deployment and wrappers.

Everything that talks JSON-RPC lives here; the pure protocol never imports it.
"""
