"""Which collateral profile applies to a channel: the operator's profile for that channel
and asset (set through the admin API, kept in the store) or else the asset's profile from
the node's configuration.

The profiles in use are cached here (the store is read at start, written through on every
change, and with replicas read again every reclaim round), so the payment path never waits
for the database to learn a profile.
A profile is checked before it is stored: a bad one is refused and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..protocol.types import Address
from ..store import ChannelStore
from .config import CollateralProfile, NodeConfig

MAX_UINT256 = 2**256 - 1
PROFILE_FIELDS = {"threshold": "threshold", "target": "target",
                  "reclaimThreshold": "reclaim_threshold", "cap": "cap"}


class InvalidProfile(ValueError):
    """A profile the node refuses (the message says why)."""


def check_profile(profile: CollateralProfile) -> None:
    """Refuse a profile that would make the node churn or lock collateral without bound.

    The target is what a top-up aims for and must be positive; the collateralize threshold
    lies below it (else every payment tops up again); the reclaim threshold is at least the
    target (else a reclaim to the target would itself be above the threshold, round after
    round); the cap, the most the node keeps in one channel, is at least the target.
    """
    values = (profile.threshold, profile.target, profile.reclaim_threshold, profile.cap)
    if any(isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_UINT256
           for v in values):
        raise InvalidProfile("amounts are whole numbers of base units from 0 to 2**256 - 1")
    if profile.target == 0:
        raise InvalidProfile("target must be positive")
    if profile.threshold >= profile.target:
        raise InvalidProfile("threshold must be below target")
    if profile.reclaim_threshold < profile.target:
        raise InvalidProfile("reclaimThreshold must be at least target")
    if profile.cap < profile.target:
        raise InvalidProfile("cap must be at least target")


def profile_from_json(body: Any) -> CollateralProfile:
    """A profile from the admin API's JSON ({threshold, target, reclaimThreshold, cap}, each a
    decimal string or integer), checked; InvalidProfile otherwise."""
    if not isinstance(body, Mapping):
        raise InvalidProfile("the body must be a JSON object")
    unknown = set(body) - set(PROFILE_FIELDS)
    if unknown:
        raise InvalidProfile(f"unknown fields: {', '.join(sorted(map(str, unknown)))}")
    values: dict[str, int] = {}
    for name, attribute in PROFILE_FIELDS.items():
        if name not in body:
            raise InvalidProfile(f"{name} is required")
        values[attribute] = _amount(body[name], name)
    profile = CollateralProfile(**values)
    check_profile(profile)
    return profile


def profile_to_json(profile: CollateralProfile) -> dict[str, str]:
    return {"threshold": str(profile.threshold), "target": str(profile.target),
            "reclaimThreshold": str(profile.reclaim_threshold), "cap": str(profile.cap)}


def _amount(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise InvalidProfile(f"{name} must be a whole number of base units")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 78:
        number = int(value)
    else:
        raise InvalidProfile(f"{name} must be a whole number of base units (a decimal string)")
    if not 0 <= number <= MAX_UINT256:
        raise InvalidProfile(f"{name} must be from 0 to 2**256 - 1")
    return number


class Profiles:
    """The collateral profile of each channel and asset (per-channel ones cached)."""

    def __init__(self, config: NodeConfig, store: ChannelStore) -> None:
        self.config = config
        self.store = store
        self._channels: dict[tuple[Address, Address], CollateralProfile] = {}

    async def load(self) -> None:
        """Read every per-channel profile from the store (at start, and with replicas on
        every reclaim round: what another node process set reaches this one)."""
        self._channels = {
            (stored.channel_address, stored.asset_id): CollateralProfile(
                stored.threshold, stored.target, stored.reclaim_threshold, stored.cap)
            for stored in await self.store.run(self.store.channel_profiles)}

    def for_channel(self, channel_address: Address, asset_id: Address) -> CollateralProfile:
        own = self._channels.get((channel_address, asset_id))
        return own if own is not None else self.config.collateral_for(asset_id)

    def channel_profiles(self) -> dict[tuple[Address, Address], CollateralProfile]:
        return dict(self._channels)

    async def set(self, channel_address: Address, asset_id: Address,
                  profile: CollateralProfile) -> None:
        check_profile(profile)
        await self.store.run(self.store.set_channel_profile, channel_address, asset_id,
                             threshold=profile.threshold, target=profile.target,
                             reclaim_threshold=profile.reclaim_threshold, cap=profile.cap)
        self._channels[(channel_address, asset_id)] = profile

    async def forget(self, channel_address: Address, asset_id: Address) -> bool:
        self._channels.pop((channel_address, asset_id), None)
        return await self.store.run(self.store.delete_channel_profile, channel_address,
                                    asset_id)
