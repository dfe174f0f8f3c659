"""Tables of the learning loop: which detector each camera runs (model_changes) and the labelled
pictures monitors' reviews make (review_labels). Migration 0009."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from central.store.tables import Base, UtcDateTime


class ModelChange(Base):
    """A camera's detector changed through central (promotion through the gate, or a rollback):
    who, when, from which model to which, and the gate's figures. The newest row per camera is
    what a rollback undoes."""

    __tablename__ = "model_changes"
    __table_args__ = (Index("ix_model_changes_camera_at", "site", "camera", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(80))
    site: Mapped[str] = mapped_column(String(64))
    edge: Mapped[str] = mapped_column(String(64))
    camera: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(10))  # promote | rollback
    from_model: Mapped[str] = mapped_column(String(100))
    to_model: Mapped[str] = mapped_column(String(100))
    to_sha256: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    gate: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    command_id: Mapped[str | None] = mapped_column(String(36))


class ReviewLabel(Base):
    """A labelled picture from a monitor's review (central/learning/review_labels.py): the raw frame of the
    incident's first event and the boxes on it, as detected (confirm), without the hazard's objects
    (dismiss: a hard negative, with the reason) or as the reviewer drew them (edit). The newest row
    per incident is its label; older ones stay as the record of who labelled what, when."""

    __tablename__ = "review_labels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    frame_sha256: Mapped[str] = mapped_column(String(64))
    site: Mapped[str] = mapped_column(String(64))
    camera: Mapped[str] = mapped_column(String(64))
    hazard: Mapped[str] = mapped_column(String(40))
    model: Mapped[str | None] = mapped_column(String(100))
    observed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    verdict: Mapped[str] = mapped_column(String(10))  # confirmed | dismissed | edited
    reason: Mapped[str | None] = mapped_column(Text)
    boxes: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{"label", "box": [x1, y1, x2, y2] 0..1}]
    reviewer: Mapped[str] = mapped_column(String(80))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
