"""What an edge's heartbeat says an operator must know (pure): refusals, dead letters, drops, a full
disk, a growing backlog, an actuator that does not answer. Shown with the edge's state in the console and the API."""

from __future__ import annotations

from broker.payloads import EdgeHeartbeat

# Messages waiting on an edge beyond this are worth a look (an outage, a slow central).
BACKLOG_WARN = 1000


def edge_problems(beat: EdgeHeartbeat | None) -> list[str]:
    if beat is None:
        return []
    problems = []
    if beat.publish_refused:
        problems.append(f"broker refuses its messages: {beat.publish_refused}")
    if beat.dead_letters:
        problems.append(f"{beat.dead_letters} dead letter(s) on the edge: `sharpeyes edge outbox --dead`")
    if beat.disk_full:
        problems.append("disk full: dropping evidence, then updates, to keep the newest events")
    dropped = {kind: n for kind, n in sorted(beat.dropped.items()) if n}
    if dropped:
        problems.append("dropped by the outbox policy: " + ", ".join(f"{n} {kind}" for kind, n in dropped.items()))
    for actuator, figures in sorted(beat.actuators.items()):
        if figures.state == "failing":
            problems.append(f"actuator {actuator} does not answer: {figures.last_error or 'no acknowledgement'}")
    if beat.outbox_messages > BACKLOG_WARN:
        problems.append(f"{beat.outbox_messages} message(s) waiting in its outbox")
    return problems
