"""The inventory index (migration 0012): one row per edge and per camera central has on record, kept
in step with the edges' configuration versions (``edge_config_changes``, the source of truth) in the
same transaction. It exists so that a list, a search or a filter at 30,000 cameras is one indexed
query instead of a read of every edge's newest configuration."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from central.store.tables import Base, UtcDateTime


class InventoryEdge(Base):
    """An edge and the newest version of its configuration (``change_id`` is that version's row id:
    a process compares the largest one with its own to know its copy of the site is current)."""

    __tablename__ = "inventory_edges"
    __table_args__ = (Index("ix_inventory_edges_change_id", "change_id"),)

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    change_id: Mapped[int] = mapped_column(Integer)
    cameras: Mapped[int] = mapped_column(Integer)
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class InventoryCamera(Base):
    """A camera as its edge's newest configuration has it, or as it was when it was retired (a
    retired camera keeps its row, its incidents and its evidence). ``url`` is the stream URL as
    stored: ``${VAR}`` references, never credentials."""

    __tablename__ = "inventory_cameras"
    __table_args__ = (
        Index("ix_inventory_cameras_edge", "site", "edge"),
        Index("ix_inventory_cameras_grid", "site", "grid_cell"),
        Index("ix_inventory_cameras_name", "name"),
        Index("ix_inventory_cameras_channel", "channel_id"),
    )

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    edge: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(200))
    channel_id: Mapped[str | None] = mapped_column(String(20))
    grid_cell: Mapped[str | None] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(Text)
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    model: Mapped[str] = mapped_column(String(200))
    zones: Mapped[int] = mapped_column(Integer)
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
