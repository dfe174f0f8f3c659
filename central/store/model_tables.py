"""Tables of model delivery (migration 0011): the detector files central serves its edges
(``model_artifacts``) and the per-edge credentials they fetch them with (``edge_credentials``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from central.store.tables import Base, UtcDateTime


class ModelArtifact(Base):
    """A model file central can serve: its registry entry (with the ``trained`` record and its held-out
    figures, so the evidence of a trained model lives at central, not on the machine that trained it)
    and its class-names file. The bytes of both are blobs of the evidence store, named by sha256, so
    every central replica serves them. One name may have several rows (a model trained again under
    its name); the same bytes under two names are two rows."""

    __tablename__ = "model_artifacts"
    __table_args__ = (UniqueConstraint("name", "sha256"), Index("ix_model_artifacts_sha256", "sha256"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    classes_file: Mapped[str] = mapped_column(String(200))
    classes_sha256: Mapped[str] = mapped_column(String(64))
    classes_size: Mapped[int] = mapped_column(Integer)
    entry: Mapped[dict[str, Any]] = mapped_column(JSON)  # models.registry.ModelEntry, as central registered it
    published: Mapped[bool] = mapped_column(Boolean)  # in registry.yaml (git): the edge's own registry names it already
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(80))


class EdgeCredential(Base):
    """A bearer token an edge fetches its models with. Only its sha256 is kept: the token is 256
    random bits, so a plain hash cannot be guessed back, and any replica can check it with one
    indexed read (no bcrypt cost per download request)."""

    __tablename__ = "edge_credentials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    edge: Mapped[str] = mapped_column(String(64))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(80))
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
