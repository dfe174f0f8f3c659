"""What every route needs, built once by the server and kept on ``app.state.ctx``."""

from __future__ import annotations

from collections.abc import Callable
import threading
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from central.changes import ChangeFeed
from central.evidence_store import EvidenceStore
from central.tokens import TokenIssuer


@dataclass
class ApiContext:
    sessions: sessionmaker[Session]
    evidence: EvidenceStore
    tokens: TokenIssuer
    feed: ChangeFeed = field(default_factory=ChangeFeed)
    # None when this process runs no ingest (``--no-ingest``).
    mqtt_connected: Callable[[], bool] | None = None
    stream_poll_s: float = 0.5
    # Set when the server shuts down, so open live streams end instead of holding it up.
    closing: threading.Event = field(default_factory=threading.Event)
