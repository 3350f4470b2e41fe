"""The node daemon (`connext node`): see service.py for how the pieces fit."""

from .config import NodeConfig
from .service import Node

__all__ = ["Node", "NodeConfig"]
