"""What each edge last reported of its configuration (migration 0013): the version it applied and
since when, and the newest one it refused with the problems. Desired state is the edge's newest
configuration version (``edge_config_changes``); the two side by side are its drift
(central/fleet/desired_state.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from central.store.tables import Base, UtcDateTime


class EdgeConfigReport(Base):
    """One row per edge, replaced by each heartbeat that carries ``config`` (an edge too old to send
    it has no row: its applied configuration is known by content hash only, from its status)."""

    __tablename__ = "edge_config_reports"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    edge: Mapped[str] = mapped_column(String(64), primary_key=True)
    applied_version: Mapped[int | None] = mapped_column(Integer)
    applied_hash: Mapped[str] = mapped_column(String(12))
    applied_since: Mapped[datetime] = mapped_column(UtcDateTime)
    refused_version: Mapped[int | None] = mapped_column(Integer)
    refused_hash: Mapped[str | None] = mapped_column(String(12))
    refused_problems: Mapped[list[str] | None] = mapped_column(JSON)
    refused_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reported_at: Mapped[datetime] = mapped_column(UtcDateTime)
