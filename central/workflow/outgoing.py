"""One message central publishes over MQTT (a worker's task, an edge command, a receipt, a hello).

Kept apart from ``notify.py`` and free of imports: the ingest's receiving process unpickles these
from its pipe, and unpickling imports the defining module, so it must not pull in the database layer.
"""

from __future__ import annotations

from typing import NamedTuple


class Outgoing(NamedTuple):
    """A NamedTuple, not a dataclass: it crosses the ingest's pipe in bursts of task notifications,
    and a frozen, slotted dataclass pickled 2.5 times slower (figures in ``central/ingest/pipe.py``)."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
