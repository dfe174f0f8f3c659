"""Hazard rules: pure, deterministic state machines over detection samples (no I/O)."""

from __future__ import annotations

from broker.zoneconfig import ZoneConfig
from edge.rules.fire_lane import FireLaneRule
from edge.rules.presence import PresenceRule
from edge.rules.types import Rule, RuleEvent, ZoneObject

__all__ = ["FireLaneRule", "PresenceRule", "Rule", "RuleEvent", "ZoneObject", "rule_for_zone"]


def rule_for_zone(zone: ZoneConfig) -> Rule:
    """The rule that watches a zone of this kind."""
    if zone.kind == "fire_lane":
        return FireLaneRule(zone)
    if zone.kind in ("indoor", "occupancy"):
        return PresenceRule(zone)
    raise ValueError(f"zone {zone.id!r}: no rule for kind {zone.kind!r}")
