"""Hazard rules: pure, deterministic state machines over detection samples (no I/O)."""

from __future__ import annotations

from collections.abc import Callable

from broker.zoneconfig import ZoneConfig
from broker.zonekinds import ZONE_KINDS, RuleName
from edge.rules.fire_lane import FireLaneRule
from edge.rules.presence import PresenceRule
from edge.rules.types import Rule, RuleEvent, ZoneObject

__all__ = ["RULES", "FireLaneRule", "PresenceRule", "Rule", "RuleEvent", "ZoneObject", "rule_for_zone"]

# The class behind each rule name of broker.zonekinds (broker names rules; it may not import them).
RULES: dict[RuleName, Callable[[ZoneConfig], Rule]] = {
    RuleName.FIRE_LANE: FireLaneRule,
    RuleName.PRESENCE: PresenceRule,
}


def rule_for_zone(zone: ZoneConfig) -> Rule:
    """The rule that watches a zone of this kind, as its ``ZoneKindSpec`` names it."""
    spec = ZONE_KINDS.get(zone.kind)
    make = RULES.get(spec.rule) if spec is not None else None
    if make is None:
        raise ValueError(f"zone {zone.id!r}: no rule for kind {zone.kind!r}")
    return make(zone)
