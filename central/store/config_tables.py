"""Configuration history of the edges (migration 0010): every configuration central sends an edge,
numbered per edge, hash-chained like the incidents' audit (central/workflow/audit.py), so that a
change can be listed, verified and restored (central/fleet/config_history.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from central.store.tables import Base, UtcDateTime


class EdgeConfigChange(Base):
    """One version of one edge's configuration: who stored it, when, why, the whole configuration
    (as under ``edges:`` in the site file) and what changed against the version before."""

    __tablename__ = "edge_config_changes"
    __table_args__ = (UniqueConstraint("site", "edge", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    edge: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(20))  # baseline | push | zones | models | restore
    reason: Mapped[str | None] = mapped_column(Text)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    restored_from: Mapped[int | None] = mapped_column(Integer)
    command_id: Mapped[str | None] = mapped_column(String(36))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
