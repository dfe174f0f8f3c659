"""What the writer (``writer.py``) and its receiving process (``receiver.py``) say over their pipe.

One type per kind of message; each side matches on the type. A generation names one MQTT
connection, ``(epoch, connection)``: packet ids of an older one are never acknowledged on a newer.

Receiver to writer: ``Forwarded`` (messages in arrival order), ``ConnectionState`` (on connect, on
subscribe, on disconnect), ``Published`` (the answer to a ``Publish``). Writer to receiver:
``Ack`` (the committed messages, then the receipts to publish for them), ``Publish``,
``Reconnect``, ``Stop``.

Pickling cost, the reason ``Received`` and ``Outgoing`` are NamedTuples and only the envelopes are
dataclasses: the pipe carries thousands of messages a second, each pickled by one process and
unpickled by the other. Measured with ``timeit`` on CPython 3.11 (a shared 2-core box, so ranges
over three runs, best of 7 each): 10,000 messages, 4 in 5 a 541-byte hazard event and 1 in 5 an
evidence blob the receiver stored, distinct objects as paho delivers them, in batches of 500,
pickled and unpickled:
- plain tuples without the generation, rebuilt into ``Received`` by the writer (before): 25-31 ms;
- ``Received`` NamedTuples sent as they are: 29-37 ms (+0.5 us a message; the rebuild it saves
  pays for part of it);
- the same fields as a frozen, slotted dataclass: 52-101 ms, two to three times the tuples (its
  generated ``__setstate__`` sets each field through ``object.__setattr__``).
10,000 ``Outgoing`` task notifications: 6-20 ms as tuples, 18-50 ms as NamedTuples, 41-115 ms as
frozen, slotted dataclasses. An envelope is pickled once per batch: a dataclass there costs nothing
measurable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from central.evidence.store import StoredBlob
from central.workflow.outgoing import Outgoing

Generation = tuple[int, int]


class Received(NamedTuple):
    """One message from the broker, as the receiver got it (``payload``: a StoredBlob when the
    receiver already checked and wrote the evidence blob)."""

    generation: Generation
    mid: int
    qos: int
    topic: str
    payload: bytes | StoredBlob
    received_at: datetime


# -- receiver to writer ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Forwarded:
    messages: list[Received]


@dataclass(frozen=True, slots=True)
class ConnectionState:
    """``subscribed``: connected with every subscription in place (only then is nothing missed)."""

    subscribed: bool
    generation: Generation


@dataclass(frozen=True, slots=True)
class Published:
    request: int
    results: list[bool]  # per message of the Publish: its client queued it


# -- writer to receiver ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Ack:
    generation: Generation | None  # None: no connection yet; the receiver acknowledges nothing
    packets: list[tuple[int, int]]  # (mid, qos) of each committed message
    receipts: list[Outgoing]


@dataclass(frozen=True, slots=True)
class Publish:
    request: int
    messages: list[Outgoing]


@dataclass(frozen=True, slots=True)
class Reconnect:
    """Drop the connection (after a database failure) so the broker delivers the rest again."""

    delay_s: float


@dataclass(frozen=True, slots=True)
class Stop:
    pass


ToWriter = Forwarded | ConnectionState | Published
ToReceiver = Ack | Publish | Reconnect | Stop
