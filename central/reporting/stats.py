"""The numbers the centre reports upward, computed from incidents and their audit trail (pure).

This module is their definition, in plain Python over facts; the API computes the same figures in
the database (central/reporting/stats_sql.py), and the tests hold the two to each other.

结案率 closure rate = closed / incidents (suppressed ones excluded);
按期结案率 on-time rate = closed without any stage overdue / closed;
返工率 rework rate = incidents reworked at least once / incidents that were checked;
mean time per stage from the audit trail; share closed at community level or below (never
escalated above a community); false alarms (dismissed) per camera and zone; overdue now.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

from central.workflow.config import IndexFormula
from central.workflow.grid import GridTree
from central.workflow.vocabulary import CloseReason

# State entered → the stage whose time runs until the next state change.
STAGE_BY_ENTERED = {"triage": "triage", "registered": "dispatch", "returned": "dispatch", "dispatched": "accept",
                    "in_progress": "handle", "feedback": "check", "checking": "check"}
LOW_LEVELS = ("grid", "community")


@dataclass(frozen=True, slots=True)
class IncidentFacts:
    id: int
    state: str
    camera: str | None
    zone: str | None
    grid_cell: str | None
    close_reason: str | None
    ever_overdue: bool
    rework_count: int
    escalated_to: str | None
    deadline_color: str | None


@dataclass(frozen=True, slots=True)
class Step:
    incident_id: int
    at: datetime
    from_state: str | None
    to_state: str | None


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def stage_times(steps: Iterable[Step]) -> dict[str, float | None]:
    """Mean seconds per stage over every visit (a rework visits handle again)."""
    totals: dict[str, list[float]] = defaultdict(list)
    by_incident: dict[int, list[Step]] = defaultdict(list)
    for s in steps:
        if s.to_state is not None and s.from_state != s.to_state:
            by_incident[s.incident_id].append(s)
    for seq in by_incident.values():
        seq.sort(key=lambda s: s.at)
        for a, b in pairwise(seq):
            stage = STAGE_BY_ENTERED.get(a.to_state or "")
            if stage:
                totals[stage].append((b.at - a.at).total_seconds())
    return {stage: (round(sum(v) / len(v), 1) if (v := totals.get(stage)) else None)
            for stage in ("triage", "dispatch", "accept", "handle", "check")}


def summary(incidents: list[IncidentFacts], steps: list[Step], tree: GridTree) -> dict[str, Any]:
    counted = [i for i in incidents if i.close_reason != CloseReason.SUPPRESSED]
    closed = [i for i in counted if i.state == "closed"]
    checked = [i for i in counted if i.rework_count > 0 or i.close_reason == CloseReason.FIXED]
    low = 0
    for i in closed:
        node = tree.nodes.get(i.escalated_to or i.grid_cell or "")
        if i.escalated_to is None or (node is not None and node.level in LOW_LEVELS):
            low += 1
    cams: dict[str, Counter[str]] = defaultdict(Counter)
    zones: dict[tuple[str, str | None], Counter[str]] = defaultdict(Counter)
    for i in counted:
        if i.camera is None:
            continue
        cams[i.camera]["incidents"] += 1
        zones[(i.camera, i.zone)]["incidents"] += 1
        if i.close_reason == CloseReason.FALSE_ALARM:
            cams[i.camera]["false_alarms"] += 1
            zones[(i.camera, i.zone)]["false_alarms"] += 1
    return {
        "total": len(counted),
        "counts_by_state": dict(Counter(i.state for i in counted)),
        "closed": len(closed),
        "closure_rate": _rate(len(closed), len(counted)),
        "on_time_rate": _rate(sum(1 for i in closed if not i.ever_overdue), len(closed)),
        "rework_rate": _rate(sum(1 for i in checked if i.rework_count > 0), len(checked)),
        "mean_stage_s": stage_times(steps),
        "closed_at_community_or_below_share": _rate(low, len(closed)),
        "overdue_now": sum(1 for i in counted if i.state != "closed" and i.deadline_color == "red"),
        "suppressed": len(incidents) - len(counted),
        "false_alarm_rate_by_camera": [
            {"camera": cam, "incidents": c["incidents"], "false_alarms": c["false_alarms"],
             "rate": _rate(c["false_alarms"], c["incidents"])}
            for cam, c in sorted(cams.items())
        ],
        "false_alarms_by_zone": [
            {"camera": cam, "zone": zone, "incidents": c["incidents"], "false_alarms": c["false_alarms"],
             "rate": _rate(c["false_alarms"], c["incidents"])}
            for (cam, zone), c in sorted(zones.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
        ],
    }


def index_score(closure: float | None, on_time: float | None, rework: float | None, formula: IndexFormula) -> float:
    """100 × weighted mean of closure rate, on-time rate and (1 − rework rate); missing parts count as perfect."""
    parts = ((formula.closure_weight, 1.0 if closure is None else closure),
             (formula.on_time_weight, 1.0 if on_time is None else on_time),
             (formula.no_rework_weight, 1.0 if rework is None else 1.0 - rework))
    weight = sum(w for w, _ in parts)
    return round(100.0 * sum(w * v for w, v in parts) / weight, 1)


def index_color(score: float, formula: IndexFormula) -> str:
    if score < formula.red_below:
        return "red"
    if score < formula.yellow_below:
        return "yellow"
    return "blue"


def grid_index(incidents: list[IncidentFacts], tree: GridTree, formula: IndexFormula) -> list[dict[str, Any]]:
    out = []
    for node in sorted(tree.nodes.values(), key=lambda n: (tree.depth(n.code), n.code)):
        cells = tree.subtree([node.code])
        mine = [i for i in incidents if i.grid_cell in cells]
        s = summary(mine, [], tree)
        score = index_score(s["closure_rate"], s["on_time_rate"], s["rework_rate"], formula)
        out.append({"code": node.code, "name": node.name, "level": node.level, "parent": node.parent,
                    "incidents": s["total"], "closure_rate": s["closure_rate"], "on_time_rate": s["on_time_rate"],
                    "rework_rate": s["rework_rate"], "score": score, "color": index_color(score, formula)})
    return out


def to_csv(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0].keys()))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def summary_rows(s: dict[str, Any]) -> list[dict[str, Any]]:
    """The summary flattened to (metric, key, value) rows for CSV."""
    rows: list[dict[str, Any]] = []
    for key in ("total", "closed", "closure_rate", "on_time_rate", "rework_rate",
                "closed_at_community_or_below_share", "overdue_now", "suppressed"):
        rows.append({"metric": key, "key": "", "value": s[key]})
    for state, n in sorted(s["counts_by_state"].items()):
        rows.append({"metric": "count_by_state", "key": state, "value": n})
    for stage, secs in s["mean_stage_s"].items():
        rows.append({"metric": "mean_stage_s", "key": stage, "value": secs})
    for c in s["false_alarm_rate_by_camera"]:
        rows.append({"metric": "false_alarm_rate", "key": c["camera"], "value": c["rate"]})
    return rows
