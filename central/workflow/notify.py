"""Task notifications to grid workers' devices, sent after the task row is committed.

A task whose notification did not go out (broker down) keeps ``notified_at`` empty and is sent
again by ``send_pending`` on the next connection, so a worker never misses an assignment.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from broker.desiredstate import DESIRED_VERSION_ARG
from broker.payloads import Command, HazardKind, TaskNotification
from broker.topics import command_topic, worker_task_topic
from central.store.config_tables import EdgeConfigChange
from central.store.tables import CommandRow, Incident, Task, utcnow
from central.workflow.labels import incident_title
from central.workflow.outgoing import Outgoing

log = logging.getLogger(__name__)

_TASK_HAZARDS = frozenset(h.value for h in HazardKind)


class Publisher(Protocol):
    def publish(self, topic: str, payload: bytes, qos: int) -> bool:
        """Hand a message to the transport; True when it was accepted for delivery."""
        ...

    def publish_many(self, messages: Sequence[Outgoing]) -> list[bool]:
        """Hand several at once; per message, True when it was accepted."""
        ...


def send_pending(session: Session, publisher: Publisher) -> int:
    """Publish every task not yet notified (QoS 1) and mark those the transport accepted.

    Plain rows and one UPDATE per outcome, not ORM objects: a burst of new incidents leaves
    thousands of tasks to announce, and this runs beside the ingest's writer.
    """
    rows = session.execute(
        select(Task.id, Task.worker, Task.created_at, Incident.id.label("incident_id"), Incident.site,
               Incident.hazard, Incident.camera, Incident.zone, Incident.grid_cell,
               Incident.latest_snapshot_sha256)
        .join(Incident, Task.incident_id == Incident.id).where(Task.notified_at.is_(None)).order_by(Task.id)
    ).all()
    silent: list[int] = []
    outgoing: list[tuple[int, Outgoing]] = []  # (task id, its message)
    for row in rows:
        if row.hazard not in _TASK_HAZARDS or row.camera is None:
            # The task message of the contract describes camera hazards; other reports reach
            # people by webhook and the console only.
            silent.append(row.id)
            continue
        note = TaskNotification(
            task_id=str(row.id), incident_id=row.incident_id, site=row.site, worker=row.worker,
            hazard=HazardKind(row.hazard), camera=row.camera, zone=row.zone, grid_cell=row.grid_cell,
            title=incident_title(row.hazard, row.camera, row.zone), created_at=row.created_at,
            snapshot_sha256=row.latest_snapshot_sha256,
        )
        outgoing.append((row.id, Outgoing(worker_task_topic(row.site, row.worker),
                                          note.to_wire(), 1)))
    accepted = publisher.publish_many([message for _, message in outgoing])
    done = silent + [task_id for (task_id, _), ok in zip(outgoing, accepted, strict=True) if ok]
    for chunk in range(0, len(done), 500):
        session.execute(update(Task).where(Task.id.in_(done[chunk:chunk + 500])).values(notified_at=utcnow()))
    sent = len(done) - len(silent)
    if sent < len(outgoing):
        log.warning("%d task notification(s) not sent yet; will retry on reconnect", len(outgoing) - sent)
    session.commit()
    return sent


def send_pending_commands(session: Session, publisher: Publisher) -> int:
    """Publish commands (recheck, config) not yet handed to the broker, oldest first (so the newest
    configuration of an edge is the one left retained)."""
    rows = list(session.scalars(select(CommandRow).where(CommandRow.published.is_(False)).order_by(CommandRow.sent_at)))
    numbers = _config_numbers(session, [row.command_id for row in rows if row.name == "config"])
    sent = 0
    for row in rows:
        args = {**row.args, DESIRED_VERSION_ARG: numbers[row.command_id]} if row.command_id in numbers else row.args
        cmd = Command(command_id=row.command_id, name=row.name, args=args, sent_at=row.sent_at)
        # A configuration stays retained on the broker: the edge's desired state, handed to it on
        # every (re)subscribe, so an edge away now still gets it (central/fleet/desired_state.py).
        retain = row.name == "config"
        # Claimed before it is sent (a conditional UPDATE, committed): where several central processes
        # sweep this table, only the one whose UPDATE took the row sends it, so a command goes out once
        # (normally from the process that stored it, which sweeps right after its commit).
        if not _claim(session, row.command_id):
            continue
        if not publisher.publish_many([Outgoing(command_topic(row.site, row.edge, row.name), cmd.to_wire(), 1,
                                                retain)])[0]:
            session.execute(update(CommandRow).where(CommandRow.command_id == row.command_id).values(published=False))
            session.commit()
            break
        sent += 1
    session.commit()
    return sent


def _claim(session: Session, command_id: str) -> bool:
    taken = session.execute(update(CommandRow).where(CommandRow.command_id == command_id,
                                                     CommandRow.published.is_(False)).values(published=True))
    session.commit()
    return bool(getattr(taken, "rowcount", 0))


def _config_numbers(session: Session, command_ids: list[str]) -> dict[str, int]:
    """The configuration version each config command carries (its number in the edge's history),
    which travels beside the configuration so the edge can report it back (broker/desiredstate.py)."""
    numbers: dict[str, int] = {}
    for start in range(0, len(command_ids), 500):
        chunk = command_ids[start:start + 500]
        numbers.update((c, v) for c, v in session.execute(
            select(EdgeConfigChange.command_id, EdgeConfigChange.version)
            .where(EdgeConfigChange.command_id.in_(chunk))).all() if c is not None)
    return numbers
