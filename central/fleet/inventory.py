"""The inventory in the database: every edge's desired configuration is its newest version in
``edge_config_changes`` (who, when, why, the diff; hash-chained, restorable), and the index tables
(``inventory_edges``, ``inventory_cameras``) follow each version in the same transaction.

``store_version`` is the one writer: the API's changes, the import and the first start all go
through it, so that a version, its index rows and the ``config`` command for the edge are committed
together or not at all."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from broker.cameraconfig import EdgeConfig
from broker.edgeconfig import EdgeConfigMessage, config_version
from central.fleet import config_history
from central.fleet.inventory_plan import EdgeData, State, camera_index
from central.store.config_tables import EdgeConfigChange
from central.store.inventory_tables import InventoryCamera, InventoryEdge
from central.store.tables import CommandRow

IMPORT_ACTOR = "inventory import"
FIRST_START_ACTOR = "site file"


def config_command(site: str, edge: EdgeConfig, actor: str, at: datetime) -> CommandRow:
    """The ``config`` command carrying EDGE's own configuration (camera credentials as ${VAR} references)."""
    message = EdgeConfigMessage(site=site, version=config_version(edge), edge=edge)
    return CommandRow(command_id=str(uuid.uuid4()), site=site, edge=edge.id, name="config",
                      args={"edge_config": message.model_dump(mode="json")}, actor=actor, sent_at=at,
                      status="pending", published=False)


def _index_cameras(session: Session, site: str, edge: str, config: EdgeData, at: datetime, retire: bool) -> None:
    cameras = {c["id"]: c for c in config.get("cameras", [])}
    # Cameras this edge ran that its new version leaves out are retired, unless another edge's
    # version (stored before or after this one, in the same transaction) takes them.
    session.execute(update(InventoryCamera)
                    .where(InventoryCamera.site == site, InventoryCamera.edge == edge,
                           InventoryCamera.retired_at.is_(None), InventoryCamera.id.not_in(list(cameras)))
                    .values(retired_at=at, updated_at=at))
    if retire or not cameras:
        return
    rows = {r.id: r for r in session.scalars(select(InventoryCamera).where(
        InventoryCamera.site == site, InventoryCamera.id.in_(list(cameras))))}
    for camera_id, camera in cameras.items():
        row = rows.get(camera_id)
        if row is None:
            row = InventoryCamera(site=site, id=camera_id)
            session.add(row)
        for key, value in camera_index(camera).items():
            setattr(row, key, value)
        row.edge, row.retired_at, row.updated_at = edge, None, at


def store_version(session: Session, site: str, edge: EdgeConfig | None, *, edge_id: str, actor: str, action: str,
                  at: datetime, reason: str | None = None, restored_from: int | None = None,
                  command: bool = True) -> tuple[EdgeConfigChange, CommandRow | None]:
    """Append EDGE as EDGE_ID's next version, bring its index rows in step and queue its ``config``
    command (not committed: the caller commits). EDGE None retires the edge: its version carries no
    cameras, so the edge stops them, and the index keeps it (and them) as retired."""
    config = (edge or EdgeConfig(id=edge_id)).model_dump(mode="json")
    row = None
    if command:
        row = config_command(site, edge or EdgeConfig(id=edge_id), actor, at)
        session.add(row)
    change = config_history.record(session, site, edge_id, config, actor=actor, action=action, at=at, reason=reason,
                                   restored_from=restored_from, command_id=row.command_id if row else None)
    index = session.get(InventoryEdge, (site, edge_id))
    if index is None:
        index = InventoryEdge(site=site, id=edge_id)
        session.add(index)
    index.version, index.change_id, index.updated_at = change.version, change.id, at
    index.cameras = len(config["cameras"])
    index.retired_at = at if edge is None else None
    _index_cameras(session, site, edge_id, config, at, retire=edge is None)
    session.flush()
    return change, row


@dataclass(frozen=True)
class EdgeRecord:
    edge: str
    change_id: int
    version: int
    config: EdgeData


def edge_ids(session: Session, site: str) -> dict[str, int]:
    """Active edge -> the row id of its newest version."""
    rows = session.execute(select(InventoryEdge.id, InventoryEdge.change_id)
                           .where(InventoryEdge.site == site, InventoryEdge.retired_at.is_(None)))
    return {edge: change_id for edge, change_id in rows}


def load_edges(session: Session, site: str, change_ids: list[int] | None = None) -> list[EdgeRecord]:
    """The newest configuration of each active edge (or of the versions CHANGE_IDS), by edge id."""
    query = (select(InventoryEdge.id, EdgeConfigChange.id, EdgeConfigChange.version, EdgeConfigChange.config)
             .join(EdgeConfigChange, EdgeConfigChange.id == InventoryEdge.change_id)
             .where(InventoryEdge.site == site, InventoryEdge.retired_at.is_(None)).order_by(InventoryEdge.id))
    if change_ids is not None:
        query = query.where(EdgeConfigChange.id.in_(change_ids))
    return [EdgeRecord(e, c, v, cfg) for e, c, v, cfg in session.execute(query)]


def current_state(session: Session, site: str) -> State:
    return {r.edge: r.config for r in load_edges(session, site)}


def revision(session: Session, site: str) -> tuple[int, int]:
    """A cheap fingerprint of the inventory: (edges, sum of their newest version's row id). Every new
    version raises its edge's row id, so the sum moves with any change, whichever commits first (a
    maximum would miss a smaller id committed after a larger one)."""
    count, total = session.execute(select(func.count(), func.coalesce(func.sum(InventoryEdge.change_id), 0))
                                   .where(InventoryEdge.site == site)).one()
    return int(count), int(total)


def is_current(session: Session, site: str, edge: str, held: int | None) -> bool:
    """Whether HELD (the row id of the version a copy holds for EDGE; None: none, or retired) is
    still EDGE's newest version, so a change computed from that copy overwrites nothing unseen."""
    row = session.get(InventoryEdge, (site, edge))
    if row is None:
        return held is None
    return row.change_id == held or (held is None and row.retired_at is not None)


def is_empty(session: Session, site: str) -> bool:
    return session.scalar(select(func.count()).select_from(InventoryEdge).where(InventoryEdge.site == site)) == 0


def export_document(site: str, state: State) -> dict[str, Any]:
    """The site file's ``site`` and ``edges`` for STATE, defaults left out (they come back on import)."""
    edges = [EdgeConfig.model_validate(state[e]).model_dump(mode="json", exclude_defaults=True) for e in sorted(state)]
    return {"site": site, "edges": edges}
