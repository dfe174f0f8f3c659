"""Task notifications to grid workers' devices, sent after the task row is committed.

A task whose notification did not go out (broker down) keeps ``notified_at`` empty and is sent
again by ``send_pending`` on the next connection, so a worker never misses an assignment.
"""

from __future__ import annotations

import logging
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.payloads import Command, HazardKind, TaskNotification
from broker.topics import command_topic, worker_task_topic
from central.labels import incident_title
from central.tables import CommandRow, Incident, Task, utcnow

log = logging.getLogger(__name__)

_TASK_HAZARDS = frozenset(h.value for h in HazardKind)


class Publisher(Protocol):
    def publish(self, topic: str, payload: bytes, qos: int) -> bool:
        """Hand a message to the transport; True when it was accepted for delivery."""
        ...

    def publish_many(self, messages: list[tuple[str, bytes, int]]) -> list[bool]:
        """Hand several (topic, payload, qos) at once; per message, True when it was accepted."""
        ...


def build_notification(task: Task, incident: Incident) -> TaskNotification:
    return TaskNotification(
        task_id=str(task.id),
        incident_id=incident.id,
        site=incident.site,
        worker=task.worker,
        hazard=HazardKind(incident.hazard),
        camera=incident.camera,
        zone=incident.zone,
        grid_cell=incident.grid_cell,
        title=incident_title(incident.hazard, incident.camera, incident.zone),
        created_at=task.created_at,
        snapshot_sha256=incident.latest_snapshot_sha256,
    )


def send_pending(session: Session, publisher: Publisher) -> int:
    """Publish every task not yet notified (QoS 1) and mark those the transport accepted."""
    rows = session.execute(
        select(Task, Incident).join(Incident, Task.incident_id == Incident.id).where(Task.notified_at.is_(None))
    ).all()
    outgoing: list[tuple[Task, tuple[str, bytes, int]]] = []
    for task, incident in rows:
        if incident.hazard not in _TASK_HAZARDS or incident.camera is None:
            # The task message of the contract describes camera hazards; other reports reach
            # people by webhook and the console only.
            task.notified_at = utcnow()
            continue
        note = build_notification(task, incident)
        outgoing.append((task, (worker_task_topic(incident.site, task.worker),
                                note.model_dump_json(by_alias=True).encode(), 1)))
    accepted = publisher.publish_many([message for _, message in outgoing])
    sent = 0
    for (task, _), ok in zip(outgoing, accepted):
        if ok:
            task.notified_at = utcnow()
            sent += 1
    if sent < len(outgoing):
        log.warning("%d task notification(s) not sent yet; will retry on reconnect", len(outgoing) - sent)
    session.commit()
    return sent


def send_pending_commands(session: Session, publisher: Publisher) -> int:
    """Publish commands (recheck, config) not yet handed to the broker, oldest first."""
    rows = session.scalars(select(CommandRow).where(CommandRow.published.is_(False)).order_by(CommandRow.sent_at))
    sent = 0
    for row in rows:
        cmd = Command(command_id=row.command_id, name=row.name, args=row.args, sent_at=row.sent_at)
        if not publisher.publish(command_topic(row.site, row.edge, row.name),
                                 cmd.model_dump_json(by_alias=True).encode(), 1):
            break
        row.published = True
        sent += 1
    session.commit()
    return sent
