"""Every configuration central sends an edge, as a numbered, hash-chained version (table
``edge_config_changes``): what changed against the version before, what a removal would take away
(open incidents, held evidence, PIPL register entries), and the chain's verification.

Configurations are handled as JSON (the site file's ``edges:`` entry), so a stored version can be
diffed and restored without the model that wrote it."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from broker.siteconfig import SiteConfig
from central.evidence import pipl
from central.store.config_tables import EdgeConfigChange
from central.store.tables import EvidenceHold, EvidenceRef, Incident, IncidentEvidence
from central.workflow.audit import GENESIS, canonical
from central.workflow.config import RetentionConfig
from central.workflow.rules import OPEN_STATES

EdgeData = dict[str, Any]
# Written by central when the configuration it runs (from the site file) is not the newest version
# on record: the version a first change is measured against, and what a restore can go back to.
BASELINE_ACTOR = "site file"


def _cameras(edge: EdgeData | None) -> dict[str, EdgeData]:
    return {c["id"]: c for c in (edge or {}).get("cameras", [])}


def _zones(camera: EdgeData) -> dict[str, EdgeData]:
    return {z["id"]: z for z in camera.get("zones", [])}


def diff(old: EdgeData | None, new: EdgeData) -> dict[str, list[str]]:
    """What NEW changes against OLD: cameras and zones ("camera/zone") added, removed or changed,
    and the edge's own settings."""
    before, after = _cameras(old), _cameras(new)
    kept = [c for c in after if c in before]
    zones_added, zones_removed, changed = [], [], []
    for camera in kept:
        zb, za = _zones(before[camera]), _zones(after[camera])
        zones_added += [f"{camera}/{z}" for z in za if z not in zb]
        zones_removed += [f"{camera}/{z}" for z in zb if z not in za]
        if canonical(before[camera]) != canonical(after[camera]):
            changed.append(camera)
    settings = sorted(k for k in {*(old or {}), *new} - {"cameras"} if (old or {}).get(k) != new.get(k))
    return {"cameras_added": sorted(c for c in after if c not in before),
            "cameras_removed": sorted(c for c in before if c not in after), "cameras_changed": sorted(changed),
            "zones_added": sorted(zones_added), "zones_removed": sorted(zones_removed), "settings_changed": settings}


def removals(summary: dict[str, list[str]]) -> list[str]:
    """What a change takes away, by the names its confirmation must give: cameras, and zones of
    the cameras it keeps (a removed camera's zones go with it)."""
    return sorted([*summary["cameras_removed"], *summary["zones_removed"]])


def affected(session: Session, site: SiteConfig, retention: RetentionConfig, names: list[str]) -> dict[str, Any]:
    """What removing NAMES (cameras, "camera/zone") touches: its open incidents, the evidence kept
    past retention (legal holds, dataset holds) and the PIPL register entries of those cameras."""
    cameras = [n for n in names if "/" not in n]
    zones = [tuple(n.split("/", 1)) for n in names if "/" in n]
    terms: list[ColumnElement[bool]] = [Incident.camera.in_(cameras)] if cameras else []
    terms += [and_(Incident.camera == c, Incident.zone == z) for c, z in zones]
    if not terms:
        return {"open_incidents": [], "held_evidence": [], "pipl_register": []}
    mine = select(Incident).where(Incident.site == site.site, or_(*terms))
    open_rows = session.scalars(mine.where(Incident.state.in_(OPEN_STATES)).order_by(Incident.id).limit(200))
    ids = select(Incident.id).where(Incident.site == site.site, or_(*terms))
    shas = select(EvidenceRef.sha256).where(EvidenceRef.incident_id.in_(ids)).union(
        select(IncidentEvidence.sha256).where(IncidentEvidence.incident_id.in_(ids)))
    held = [{"incident_id": i.id, "hold": "legal hold"} for i in
            session.scalars(mine.where(Incident.legal_hold.is_(True)).order_by(Incident.id).limit(200))]
    held += [{"sha256": h.sha256, "hold": h.holder} for h in
             session.scalars(select(EvidenceHold).where(EvidenceHold.sha256.in_(shas)).limit(200))]
    touched = {c for c in cameras} | {c for c, _ in zones}
    register = [r for r in pipl.register(site, retention) if r["camera"] in touched]
    return {"open_incidents": [{"id": i.id, "camera": i.camera, "zone": i.zone, "state": i.state} for i in open_rows],
            "held_evidence": held,
            "pipl_register": [{"camera": r["camera"], "edge": r["edge"], "hazards": r["hazards"],
                               "purpose": r["purpose"], "retention": r["retention"]} for r in register]}


def _hash(prev: str, row: EdgeConfigChange) -> str:
    at = row.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    config_sha = hashlib.sha256(canonical(row.config).encode()).hexdigest()
    body = canonical([row.site, row.edge, row.version, at, row.actor, row.action, row.reason, config_sha,
                      row.summary, row.restored_from, row.command_id])
    return hashlib.sha256((prev + "|" + body).encode()).hexdigest()


def latest(session: Session, site: str, edge: str) -> EdgeConfigChange | None:
    return session.scalars(select(EdgeConfigChange).where(EdgeConfigChange.site == site, EdgeConfigChange.edge == edge)
                           .order_by(EdgeConfigChange.version.desc()).limit(1)).first()


def record(session: Session, site: str, edge: str, config: EdgeData, *, actor: str, action: str, at: datetime,
           reason: str | None = None, restored_from: int | None = None,
           command_id: str | None = None) -> EdgeConfigChange:
    """Append CONFIG as the edge's next version (not committed: the caller commits it with its command)."""
    last = latest(session, site, edge)
    row = EdgeConfigChange(site=site, edge=edge, version=(last.version if last else 0) + 1, at=at, actor=actor,
                           action=action, reason=reason, config=config,
                           summary=diff(last.config if last else None, config), restored_from=restored_from,
                           command_id=command_id, prev_hash=last.hash if last else GENESIS)
    row.hash = _hash(row.prev_hash, row)
    session.add(row)
    session.flush()  # the next record() reads this one as the latest
    return row


def ensure_baseline(session: Session, site: str, edge: str, running: EdgeData, at: datetime) -> None:
    """Record the configuration central runs when the history does not end with it (no history yet,
    or the site file changed since): each version's diff is then against what the edge really had."""
    last = latest(session, site, edge)
    if last is None or canonical(last.config) != canonical(running):
        record(session, site, edge, running, actor=BASELINE_ACTOR, action="baseline", at=at,
               reason="the configuration central ran before the next change")


def history(session: Session, site: str, edge: str) -> list[EdgeConfigChange]:
    return list(session.scalars(select(EdgeConfigChange).where(EdgeConfigChange.site == site,
                                                               EdgeConfigChange.edge == edge)
                                .order_by(EdgeConfigChange.version)))


def verify(rows: list[EdgeConfigChange]) -> list[str]:
    """Where the chain of one edge's versions (in version order) is broken, in words."""
    problems, prev, version = [], GENESIS, 0
    for row in rows:
        if row.version != version + 1:
            problems.append(f"version {row.version} follows {version}: a version is missing")
        if row.prev_hash != prev:
            problems.append(f"version {row.version}: prev_hash does not match the version before")
        if _hash(row.prev_hash, row) != row.hash:
            problems.append(f"version {row.version}: its fields were changed (hash mismatch)")
        prev, version = row.hash, row.version
    return problems
