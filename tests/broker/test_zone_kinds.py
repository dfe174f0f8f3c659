"""The zone-kind specs: one per kind, consistent with the config schema, the hazards and the docs."""

from __future__ import annotations

import re
from typing import get_args

import pytest

from broker.payloads import HazardKind
from broker.zoneconfig import ZoneConfig
from broker.zonekinds import HAZARD_TITLES, KIND_ONLY_OPTIONS, ZONE_KINDS, RuleName, ZoneKind, kinds_with_option
from tests.support import PROJECT_ROOT

SQUARE = [(0.1, 0.1), (0.9, 0.1), (0.9, 0.9), (0.1, 0.9)]


def test_every_kind_of_the_schema_has_one_spec_under_its_own_name() -> None:
    assert list(ZONE_KINDS) == list(get_args(ZoneKind))
    assert all(spec.kind == kind for kind, spec in ZONE_KINDS.items())
    assert len({spec.hazard for spec in ZONE_KINDS.values()}) == len(ZONE_KINDS)  # a hazard names its kind


def test_the_names_of_a_kind_meet_in_its_spec() -> None:
    names = {kind: (spec.hazard, spec.rule) for kind, spec in ZONE_KINDS.items()}
    assert names == {
        "fire_lane": (HazardKind.FIRE_LANE_BLOCKED, RuleName.FIRE_LANE),
        "indoor": (HazardKind.EBIKE_INDOOR, RuleName.PRESENCE),
        "occupancy": (HazardKind.ZONE_OCCUPANCY, RuleName.PRESENCE),
    }


def test_every_hazard_has_a_title() -> None:
    assert set(HAZARD_TITLES) == {h.value for h in HazardKind}
    assert HAZARD_TITLES["ebike_indoor"] == "电动车进楼 E-bike indoors"


def test_kind_only_options_are_known_options_of_a_zone() -> None:
    assert set(KIND_ONLY_OPTIONS) <= set(ZoneConfig.model_fields)
    for spec in ZONE_KINDS.values():
        assert spec.options <= set(KIND_ONLY_OPTIONS)
    assert kinds_with_option("min_count") == ("indoor", "occupancy")


@pytest.mark.parametrize("kind", list(ZONE_KINDS))
def test_a_zone_takes_its_defaults_from_its_spec(kind: str) -> None:
    spec = ZONE_KINDS[kind]  # type: ignore[index]
    zone = ZoneConfig.model_validate({"id": "z", "kind": kind, "polygon": SQUARE, "labels": ["person"]})
    assert (zone.dwell_s, zone.clear_s, zone.realarm_s) == spec.defaults
    assert zone.hazard is spec.hazard and zone.spec is spec
    assert (zone.min_count == 1) == ("min_count" in spec.options)
    a = spec.sampling
    assert a.fps_range[0] <= a.detect_fps <= a.fps_range[1] and a.max_skip_s > 0


def test_the_docs_table_matches_the_specs() -> None:
    text = (PROJECT_ROOT / "docs" / "zones.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \| `(\w+)` \| `(\w+)` \| (.+?) \| (\S+) s / (\S+) s / (\S+) s \| (\S+) fps", text, re.M)
    assert [r[0] for r in rows] == list(ZONE_KINDS)
    rule_classes = {RuleName.FIRE_LANE: "FireLaneRule", RuleName.PRESENCE: "PresenceRule"}
    for kind, hazard, rule, labels, dwell, clear, realarm, fps in rows:
        spec = ZONE_KINDS[kind]
        assert (hazard, rule) == (spec.hazard.value, rule_classes[spec.rule])
        assert labels == (", ".join(spec.labels) if spec.labels else "**required**, e.g. `[person]`")
        assert tuple(float(v) for v in (dwell, clear, realarm)) == spec.defaults
        assert float(fps) == spec.sampling.detect_fps
