"""The centre's statistics aggregated in the database (GROUP BY), over any period and any number of
incidents: the figures of ``central.reporting.stats.summary`` (which stays the pure definition, and the test
oracle) plus counts per day, hazard, grid cell and camera for the dashboard's charts.

Both backends: SQLite (3.25+, window functions) and PostgreSQL; only the day of an instant and the
seconds between two differ, see ``_day`` and ``_seconds``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from sqlalchemy import Float, Select, and_, case, cast, false, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from central.reporting.stats import LOW_LEVELS, STAGE_BY_ENTERED, _rate
from central.store.tables import AuditRecord, Incident
from central.workflow.grid import GridTree
from central.workflow.vocabulary import CloseReason

STAGES = ("triage", "dispatch", "accept", "handle", "check")
CACHE_ENTRIES = 64


class ResultCache:
    """The last few results by key; callers put the live feed's version in the key, so anything that
    changes incidents makes the next request compute afresh and old entries fall out."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self._entries = entries
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._entries:
                self._items.popitem(last=False)
        return value


def _day(session: Session, column: Any) -> ColumnElement[Any]:
    """The UTC calendar day of an instant, as YYYY-MM-DD text."""
    if session.get_bind().dialect.name == "sqlite":
        return func.date(column)  # stored as naive UTC text
    return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")


def _seconds(session: Session, later: Any, earlier: Any) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "sqlite":
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0
    return func.extract("epoch", later - earlier)


def _count(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _rate_counts(inc: Any) -> tuple[ColumnElement[bool], ColumnElement[bool], list[ColumnElement[Any]]]:
    """What the closure, on-time and rework rates count (``central.reporting.stats.summary`` defines them):
    the conditions "counted" (not suppressed) and "closed", and five counts: incidents, closed,
    closed on time, reworked, checked."""
    counted = or_(inc.c.close_reason.is_(None), inc.c.close_reason != CloseReason.SUPPRESSED)
    closed = and_(counted, inc.c.state == "closed")
    reworked = func.coalesce(inc.c.rework_count, 0) > 0
    return counted, closed, [
        _count(counted), _count(closed), _count(and_(closed, inc.c.ever_overdue.is_not(True))),
        _count(and_(counted, reworked)), _count(and_(counted, or_(reworked, inc.c.close_reason == CloseReason.FIXED))),
    ]


def summary(session: Session, selected: Select[Any], tree: GridTree) -> dict[str, Any]:
    """``selected``: a SELECT of Incident rows (scope, grid, hazard, period already applied)."""
    inc = selected.with_only_columns(
        Incident.id, Incident.state, Incident.camera, Incident.zone, Incident.grid_cell, Incident.hazard,
        Incident.close_reason, Incident.ever_overdue, Incident.rework_count, Incident.escalated_to,
        Incident.deadline_color, Incident.started_at,
    ).subquery("inc")
    counted, closed, rate_counts = _rate_counts(inc)
    low_codes = sorted(code for code, node in tree.nodes.items() if node.level in LOW_LEVELS)
    low = or_(inc.c.escalated_to.is_(None), inc.c.escalated_to.in_(low_codes) if low_codes else false())
    head = session.execute(select(
        *rate_counts, _count(and_(closed, low)), _count(and_(counted, inc.c.state != "closed", inc.c.deadline_color == "red")),
        _count(inc.c.close_reason == CloseReason.SUPPRESSED),
    ).select_from(inc)).one()
    total, n_closed, on_time, n_reworked, checked, n_low, overdue, suppressed = (int(v) for v in head)

    def grouped(*keys: Any, where: ColumnElement[bool] = counted) -> list[Any]:
        false_alarms = _count(inc.c.close_reason == CloseReason.FALSE_ALARM)
        return list(session.execute(select(*keys, func.count(), false_alarms).select_from(inc).where(where)
                                    .group_by(*keys).order_by(*keys)))

    by_state = {state: n for state, n, _ in grouped(inc.c.state)}
    cameras = grouped(inc.c.camera, where=and_(counted, inc.c.camera.is_not(None)))
    zones = grouped(inc.c.camera, inc.c.zone, where=and_(counted, inc.c.camera.is_not(None)))
    day = _day(session, inc.c.started_at).label("day")
    return {
        "total": total,
        "counts_by_state": by_state,
        "closed": n_closed,
        "closure_rate": _rate(n_closed, total),
        "on_time_rate": _rate(on_time, n_closed),
        "rework_rate": _rate(n_reworked, checked),
        "mean_stage_s": stage_times(session, inc.c.id),
        "closed_at_community_or_below_share": _rate(n_low, n_closed),
        "overdue_now": overdue,
        "suppressed": suppressed,
        "false_alarm_rate_by_camera": [
            {"camera": cam, "incidents": n, "false_alarms": int(f), "rate": _rate(int(f), n)} for cam, n, f in cameras],
        "false_alarms_by_zone": [
            {"camera": cam, "zone": zone, "incidents": n, "false_alarms": int(f), "rate": _rate(int(f), n)}
            for cam, zone, n, f in sorted(zones, key=lambda r: (r[0], r[1] or ""))],
        "by_day": [{"day": d, "incidents": n} for d, n, _ in grouped(day)],
        "by_hazard": [{"hazard": hz, "incidents": n} for hz, n, _ in grouped(inc.c.hazard)],
        "by_grid_cell": [{"grid_cell": cell, "incidents": n} for cell, n, _ in grouped(inc.c.grid_cell)],
    }


def stage_times(session: Session, incident_ids: Any) -> dict[str, float | None]:
    """Mean seconds per stage over every visit, as ``central.reporting.stats.stage_times`` defines it: each
    state change of an incident's audit trail lasts until its next one."""
    from central.evidence.access import RECORD_ONLY_ACTIONS

    steps = (select(AuditRecord.to_state.label("to_state"), AuditRecord.at.label("at"),
                    func.lead(AuditRecord.at).over(partition_by=AuditRecord.incident_id,
                                                   order_by=(AuditRecord.at, AuditRecord.seq)).label("next_at"))
             .where(AuditRecord.incident_id.in_(select(incident_ids)), AuditRecord.to_state.is_not(None),
                    or_(AuditRecord.from_state.is_(None), AuditRecord.from_state != AuditRecord.to_state),
                    AuditRecord.action.not_in(RECORD_ONLY_ACTIONS))
             .subquery("steps"))
    rows = session.execute(
        select(steps.c.to_state, func.count(), func.sum(cast(_seconds(session, steps.c.next_at, steps.c.at), Float)))
        .where(steps.c.next_at.is_not(None), steps.c.to_state.in_(list(STAGE_BY_ENTERED)))
        .group_by(steps.c.to_state))
    visits: dict[str, tuple[int, float]] = {}
    for to_state, n, seconds in rows:
        stage = STAGE_BY_ENTERED[to_state]
        count, total = visits.get(stage, (0, 0.0))
        visits[stage] = (count + n, total + float(seconds or 0.0))
    return {stage: (round(visits[stage][1] / visits[stage][0], 1) if stage in visits else None) for stage in STAGES}


def by_grid_cell_for_index(session: Session, selected: Select[Any]) -> dict[str | None, dict[str, int]]:
    """Per grid cell: the counts the monthly index needs (summed over each node's subtree)."""
    inc = selected.with_only_columns(Incident.grid_cell, Incident.state, Incident.close_reason, Incident.ever_overdue,
                                     Incident.rework_count).subquery("inc")
    rows = session.execute(select(inc.c.grid_cell, *_rate_counts(inc)[2]).select_from(inc).group_by(inc.c.grid_cell))
    return {cell: {"total": int(t), "closed": int(c), "on_time": int(o), "reworked": int(r), "checked": int(k)}
            for cell, t, c, o, r, k in rows}


def grid_index(session: Session, selected: Select[Any], tree: GridTree, formula: Any) -> list[dict[str, Any]]:
    """The monthly red/yellow/blue index per grid node, from per-cell counts summed over subtrees."""
    from central.reporting.stats import index_color, index_score

    cells = by_grid_cell_for_index(session, selected)
    out = []
    for node in sorted(tree.nodes.values(), key=lambda n: (tree.depth(n.code), n.code)):
        mine = [cells[c] for c in tree.subtree([node.code]) if c in cells]
        total, closed, on_time, reworked, checked = (sum(m[k] for m in mine) for k in
                                                     ("total", "closed", "on_time", "reworked", "checked"))
        closure, on_time_rate, rework = _rate(closed, total), _rate(on_time, closed), _rate(reworked, checked)
        score = index_score(closure, on_time_rate, rework, formula)
        out.append({"code": node.code, "name": node.name, "level": node.level, "parent": node.parent,
                    "incidents": total, "closure_rate": closure, "on_time_rate": on_time_rate,
                    "rework_rate": rework, "score": score, "color": index_color(score, formula)})
    return out

