"""Topic names of the v1 contract, built and parsed in one place."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

ROOT = "sharpeyes/v1"
ID_PATTERN = r"[a-z0-9-]+"
_ID_RE = re.compile(rf"^{ID_PATTERN}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def is_valid_id(value: str) -> bool:
    return bool(_ID_RE.match(value))


def _check(*ids: str) -> None:
    for value in ids:
        if not is_valid_id(value):
            raise ValueError(f"{value!r} is not a valid id: use lower-case letters, digits and '-'")


def event_topic(site: str, edge: str) -> str:
    _check(site, edge)
    return f"{ROOT}/{site}/{edge}/event"


def evidence_topic(site: str, edge: str, sha256: str) -> str:
    _check(site, edge)
    if not SHA256_RE.match(sha256):
        raise ValueError(f"{sha256!r} is not a lower-case hex sha256")
    return f"{ROOT}/{site}/{edge}/evidence/{sha256}"


def actuation_topic(site: str, edge: str) -> str:
    """What the edge did to its actuators (sharpeyes.actuation/1)."""
    _check(site, edge)
    return f"{ROOT}/{site}/{edge}/actuation"


def status_topic(site: str, edge: str) -> str:
    _check(site, edge)
    return f"{ROOT}/{site}/{edge}/status"


def camera_health_topic(site: str, edge: str, camera: str) -> str:
    _check(site, edge, camera)
    return f"{ROOT}/{site}/{edge}/camera/{camera}/health"


def command_topic(site: str, edge: str, name: str) -> str:
    _check(site, edge, name)
    return f"{ROOT}/{site}/{edge}/cmd/{name}"


def command_subscription(site: str, edge: str) -> str:
    """What an edge subscribes to: every command addressed to it (and nothing else: ACL-friendly)."""
    _check(site, edge)
    return f"{ROOT}/{site}/{edge}/cmd/+"


def receipt_topic(site: str, edge: str) -> str:
    """Central's receipts to one edge: under the edge's command subtree, so the broker's ACL that
    lets central write commands and the edge read them covers receipts too."""
    return command_topic(site, edge, "receipt")


def hello_topic(site: str, edge: str) -> str:
    """Central's retained hello to one edge (sharpeyes.hello/1)."""
    return command_topic(site, edge, "hello")


def config_topic(site: str, edge: str) -> str:
    """The edge's ``config`` command, which central keeps retained: its desired configuration, handed
    to it on every (re)subscribe (broker/desiredstate.py). Under the edge's own command subtree, so the
    ACL that lets it read its commands, and no other edge's, covers it."""
    return command_topic(site, edge, "config")


def reply_topic(site: str, edge: str, name: str) -> str:
    return command_topic(site, edge, name) + "/reply"


def worker_task_topic(site: str, worker: str) -> str:
    _check(site, worker)
    return f"{ROOT}/{site}/worker/{worker}/task"


# Subscriptions central uses to ingest everything edges publish.
CENTRAL_SUBSCRIPTIONS: tuple[str, ...] = (
    f"{ROOT}/+/+/event",
    f"{ROOT}/+/+/actuation",
    f"{ROOT}/+/+/evidence/+",
    f"{ROOT}/+/+/status",
    f"{ROOT}/+/+/camera/+/health",
    f"{ROOT}/+/+/cmd/+/reply",
)


@dataclass(frozen=True, slots=True)
class TopicParts:
    """A parsed topic. ``kind`` is one of event, actuation, evidence, status, health, command, reply, task."""

    kind: str
    site: str
    edge: str | None = None
    camera: str | None = None
    sha256: str | None = None
    command: str | None = None
    worker: str | None = None


@lru_cache(maxsize=4096)
def parse_topic(topic: str) -> TopicParts | None:
    """Return the parts of a v1 topic, or None when the topic is not part of the contract."""
    # Cached: an edge publishes its events on one topic, thousands of times (TopicParts is frozen).
    prefix = ROOT + "/"
    if not topic.startswith(prefix):
        return None
    parts = topic[len(prefix):].split("/")
    if len(parts) < 3 or not all(parts):
        return None
    site = parts[0]
    if not is_valid_id(site):
        return None
    if parts[1] == "worker":
        if len(parts) == 4 and parts[3] == "task" and is_valid_id(parts[2]):
            return TopicParts("task", site, worker=parts[2])
        return None
    edge, rest = parts[1], parts[2:]
    if not is_valid_id(edge):
        return None
    match rest:
        case ["event"]:
            return TopicParts("event", site, edge)
        case ["status"]:
            return TopicParts("status", site, edge)
        case ["actuation"]:
            return TopicParts("actuation", site, edge)
        case ["evidence", sha] if SHA256_RE.match(sha):
            return TopicParts("evidence", site, edge, sha256=sha)
        case ["camera", camera, "health"] if is_valid_id(camera):
            return TopicParts("health", site, edge, camera=camera)
        case ["cmd", name] if is_valid_id(name):
            return TopicParts("command", site, edge, command=name)
        case ["cmd", name, "reply"] if is_valid_id(name):
            return TopicParts("reply", site, edge, command=name)
    return None
