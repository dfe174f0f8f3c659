"""The first stage of the ingest: what each message of a batch says, or why it is refused.

Message-local checks only (topic, schema, origin, evidence hash): nothing here reads the store, so
a refusal found here never depends on what else the batch holds. What depends on the store (a
duplicate, an incident key owned by another camera) is the planner's (``central.ingest.plan``).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from broker.payloads import (
    Actuation,
    CameraHealth,
    CommandReply,
    ContractError,
    EdgeStatus,
    HazardEvent,
    parse_actuation,
    parse_event,
)
from broker.topics import TopicParts, parse_topic
from central.evidence.store import EvidenceBackend, StoredBlob, sha256_hex, sniff_content_type, store_checked
from central.workflow.routing import GridRouter

_Model = TypeVar("_Model", bound=BaseModel)


class Refused(Exception):
    """A message central will not store; its reason goes to the dead-letter store."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class BlobIn:
    """An evidence blob whose bytes hash to its name and are written (not yet synced)."""

    sha256: str
    size: int
    sniffed_type: str


Body = HazardEvent | Actuation | EdgeStatus | CameraHealth | CommandReply | BlobIn


@dataclass(slots=True)
class Message:
    """One message of the batch: where it came from and what it says (``body``), or ``refusal``.

    ``body`` is None with no refusal for a cleared retained status or health (nothing to store)."""

    topic: str
    payload: bytes | StoredBlob
    received_at: datetime
    parts: TopicParts | None = None
    body: Body | None = None
    refusal: str | None = None
    # An event's id as text (UUID.__str__ is not free and several stages ask).
    event_id: str = ""

    @property
    def kind(self) -> str:
        return self.parts.kind if self.parts is not None else "unknown"


def describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'payload'}: {err['msg']}" for err in exc.errors()
    )


def validate(model: type[_Model], payload: bytes) -> _Model:
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        raise Refused(describe(exc)) from None


def _parse_event_fast(payload: bytes) -> HazardEvent:
    """The event as parse_event gives it: parsed and validated in one pass by pydantic's Rust core
    (about half the cost); only what that pass refuses goes through parse_event, for its reason."""
    try:
        event = HazardEvent.model_validate_json(payload)
        # A missing "schema" takes the model's default here, but parse_event refuses it.
        if "schema_" in event.model_fields_set:
            return event
    except ValidationError:
        pass
    try:
        return parse_event(payload)
    except ContractError as exc:
        raise Refused(exc.reason) from None


def same_origin(parts: TopicParts, site: str, edge: str) -> None:
    # The broker's ACL confines an edge to its own topics; a payload naming another edge is a
    # misconfigured or spoofing device.
    if (site, edge) != (parts.site, parts.edge):
        raise Refused(f"payload names site/edge {site}/{edge} but arrived on the topic of {parts.site}/{parts.edge}")


def known_origin(router: GridRouter, parts: TopicParts, site: str, edge: str, camera: str) -> None:
    """The payload comes from the topic's edge, and the camera is one central files for."""
    same_origin(parts, site, edge)
    unknown = router.unknown_origin(site, edge, camera)
    if unknown is not None:
        raise Refused(unknown)


def _body(router: GridRouter, parts: TopicParts, message: Message) -> Body | None:
    payload = message.payload
    if parts.kind == "evidence":
        if isinstance(payload, StoredBlob):  # checked and written by the receiving process
            return BlobIn(payload.sha256, payload.size, payload.sniffed_type)
        return None  # checked by check_blobs, on the writer pool
    if not isinstance(payload, bytes):  # the receiver stores blobs of evidence topics only
        raise Refused(f"a stored blob arrived on {message.topic!r}, which carries JSON")
    if parts.kind == "event":
        event = _parse_event_fast(payload)
        known_origin(router, parts, event.site, event.edge, event.camera)
        message.event_id = str(event.event_id)
        return event
    if parts.kind == "actuation":
        try:
            record = parse_actuation(payload)
        except ContractError as exc:
            raise Refused(exc.reason) from None
        known_origin(router, parts, record.site, record.edge, record.camera)
        return record
    if parts.kind == "status":
        if not payload:
            return None  # a retained status cleared
        status = validate(EdgeStatus, payload)
        same_origin(parts, status.site, status.edge)
        return status
    if parts.kind == "health":
        if not payload:
            return None
        health = validate(CameraHealth, payload)
        same_origin(parts, health.site, health.edge)
        if health.camera != parts.camera:
            raise Refused(f"payload names camera {health.camera} but arrived on the topic of {parts.camera}")
        return health
    if parts.kind == "reply":
        return validate(CommandReply, payload)
    raise Refused(f"central does not ingest {parts.kind} messages (topic {message.topic!r})")


def parse_message(router: GridRouter, topic: str, payload: bytes | StoredBlob, received_at: datetime) -> Message:
    message = Message(topic, payload, received_at, parse_topic(topic))
    if message.parts is None:
        message.refusal = f"unknown topic {topic!r}: not part of the sharpeyes/v1 contract"
        return message
    try:
        message.body = _body(router, message.parts, message)
    except Refused as refused:
        message.refusal = refused.reason
    return message


# -- evidence bytes: checked and written on a pool ------------------------------------------------

_WRITERS: ThreadPoolExecutor | None = None


def _writers() -> ThreadPoolExecutor:
    global _WRITERS
    if _WRITERS is None:
        _WRITERS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="evidence-write")
    return _WRITERS


def _check_and_write(evidence: EvidenceBackend, sha: str, payload: bytes) -> str | None:
    """The refusal, or None when the bytes hash to their name and are written (synced later with
    the batch, before its commit). hashlib lets go of the interpreter lock for large buffers, so a
    batch's blobs are hashed and written side by side."""
    if not payload:
        return "empty evidence payload"
    if store_checked(evidence, sha, payload) is None:
        return f"sha256 mismatch: the topic names {sha} but the bytes hash to {sha256_hex(payload)}"
    return None


def check_blobs(messages: list[Message], evidence: EvidenceBackend) -> None:
    """Hash and write the batch's evidence bytes (the file is written even for a known blob, in case
    someone deleted it from disk); each becomes a BlobIn, or is refused naming the mismatch."""
    pending: list[tuple[Message, str, Future[str | None]]] = []
    for message in messages:
        parts = message.parts
        if (message.refusal is None and parts is not None and parts.kind == "evidence"
                and isinstance(message.payload, bytes)):
            assert parts.sha256 is not None
            pending.append((message, parts.sha256, _writers().submit(_check_and_write, evidence, parts.sha256,
                                                                     message.payload)))
    for message, sha, future in pending:
        refusal = future.result()
        if refusal is not None:
            message.refusal = refusal
        else:
            assert isinstance(message.payload, bytes)
            message.body = BlobIn(sha, len(message.payload), sniff_content_type(message.payload))


def parse_batch(router: GridRouter, evidence: EvidenceBackend,
                items: list[tuple[str, bytes | StoredBlob, datetime]]) -> list[Message]:
    messages = [parse_message(router, topic, payload, at) for topic, payload, at in items]
    check_blobs(messages, evidence)
    return messages
