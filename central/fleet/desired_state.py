"""Each edge's desired configuration as the broker holds it, and every edge's drift from it.

Desired state is the edge's newest configuration version (``edge_config_changes``). Its ``config``
command is published with the version's number beside the configuration and **retained** on the
edge's own ``.../cmd/config`` (central/workflow/notify.py), so the broker hands it to the edge whenever it
subscribes: an edge that was offline, or restarted with an old site file, converges on connecting
without anyone pushing again, and without central being up. ``retained_desired`` publishes them all
again when central connects, for a broker that lost its retained messages (no persistence, or
killed before its autosave). Why retained rather than the edge asking: docs/edge.md.

What the edges report is stored by the ingest (``edge_config_reports``); ``drift`` lists both side
by side (central/fleet/drift.py decides, pure)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from broker.cameraconfig import EdgeConfig
from broker.desiredstate import DESIRED_VERSION_ARG, config_hash_of
from broker.edgeconfig import config_version
from broker.payloads import Command
from broker.siteconfig import SiteConfig
from broker.topics import config_topic
from central.fleet.drift import Desired, Reported, drift_row, hash_needed
from central.store.config_tables import EdgeConfigChange
from central.store.desired_tables import EdgeConfigReport
from central.store.tables import CommandRow, EdgeStatusRow
from central.workflow.outgoing import Outgoing


def _newest(session: Session, site: str, edges: Iterable[str] | None = None) -> dict[str, EdgeConfigChange]:
    """The newest configuration version of each edge of SITE (of EDGES only, when given)."""
    newest = (select(EdgeConfigChange.edge, func.max(EdgeConfigChange.version).label("version"))
              .where(EdgeConfigChange.site == site).group_by(EdgeConfigChange.edge))
    if edges is not None:
        newest = newest.where(EdgeConfigChange.edge.in_(list(edges)))
    sub = newest.subquery()
    rows = session.scalars(select(EdgeConfigChange).join(
        sub, (EdgeConfigChange.edge == sub.c.edge) & (EdgeConfigChange.version == sub.c.version))
        .where(EdgeConfigChange.site == site))
    return {row.edge: row for row in rows}


def retained_desired(session: Session, site: str, edges: Iterable[str] | None = None) -> list[Outgoing]:
    """The retained ``config`` command of each edge's newest version, of every edge of SITE with one
    (EDGES only, when given); none for an edge central never sent a configuration."""
    newest = _newest(session, site, edges)
    ids = [row.command_id for row in newest.values() if row.command_id is not None]
    commands = {c.command_id: c for c in session.scalars(select(CommandRow).where(CommandRow.command_id.in_(ids)))}
    out = []
    for edge, row in sorted(newest.items()):
        command = commands.get(row.command_id or "")
        if command is None:
            continue
        # Numbered here too: a command stored before versions were numbered on the wire.
        wire = Command(command_id=command.command_id, name="config",
                       args={**command.args, DESIRED_VERSION_ARG: row.version}, sent_at=command.sent_at)
        out.append(Outgoing(config_topic(site, edge), wire.to_wire(), 1, retain=True))
    return out


def _reported(status: EdgeStatusRow | None, report: EdgeConfigReport | None) -> Reported:
    if report is None:  # an edge too old to report versions, or not heard of: its status's content hash
        return Reported(state=status.state if status else None, last_heartbeat_at=status.at if status else None,
                        hash=config_hash_of(status.version) if status else None)
    return Reported(state=status.state if status else None, last_heartbeat_at=status.at if status else None,
                    version=report.applied_version, hash=report.applied_hash, since=report.applied_since,
                    refused_version=report.refused_version, refused_hash=report.refused_hash,
                    refused_problems=tuple(report.refused_problems or ()), refused_at=report.refused_at)


def _hash(config: dict[str, Any]) -> str | None:
    try:
        return config_version(EdgeConfig.model_validate(config))
    except ValueError:  # a version stored by an older schema: the numbers decide
        return None


def drift(session: Session, site: SiteConfig, edges: list[str]) -> list[dict[str, Any]]:
    """Desired against reported configuration for EDGES of SITE, in their order."""
    newest = _newest(session, site.site, edges)
    statuses = {r.edge: r for r in session.scalars(select(EdgeStatusRow).where(EdgeStatusRow.site == site.site))}
    reports = {r.edge: r for r in session.scalars(select(EdgeConfigReport).where(EdgeConfigReport.site == site.site))}
    rows = []
    for edge in edges:
        reported = _reported(statuses.get(edge), reports.get(edge))
        row = newest.get(edge)
        if row is None:  # no version on record: central runs the site file's configuration
            desired = Desired(None, None, config_version(site.edge(edge)))
        else:
            desired = Desired(row.version, row.at, _hash(row.config) if hash_needed(row.version, reported) else None)
        first_unapplied = None
        if row is not None and reported.version is not None and reported.version < row.version:
            first_unapplied = session.scalar(select(EdgeConfigChange.at).where(
                EdgeConfigChange.site == site.site, EdgeConfigChange.edge == edge,
                EdgeConfigChange.version == reported.version + 1))
        rows.append(drift_row(site.site, edge, desired, reported, first_unapplied))
    return rows

