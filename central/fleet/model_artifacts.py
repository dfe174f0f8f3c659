"""The model files central serves its edges (``model_artifacts``, bytes in the evidence store).

Central registers a model the first time it assigns it or an edge asks for it, from central's own
model registry (central runs where models are trained and registered); from then on the row and the
blobs are what every replica serves, even one without the file on its disk. What an edge may read
is what central's configuration assigns to its cameras: central's copy of the site and the edge's
newest stored configuration version (written by whichever replica sent it)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from broker.siteconfig import SiteConfig
from central.evidence.store import EvidenceBackend, sha256_hex
from central.fleet import config_history
from central.store.model_tables import ModelArtifact

log = logging.getLogger(__name__)


class ArtifactUnavailable(LookupError):
    """Central can neither load the model from its registry nor finds it registered before."""


@dataclass(frozen=True, slots=True)
class Blob:
    sha256: str
    size: int


def assigned_models(session: Session, site: SiteConfig | None, edge_id: str) -> set[str]:
    """The models central's configuration gives the cameras of EDGE_ID."""
    names: set[str] = set()
    if site is not None:
        names |= {c.model for e in site.edges if e.id == edge_id for c in e.cameras}
        latest = config_history.latest(session, site.site, edge_id)
        if latest is not None:
            names |= {str(c["model"]) for c in latest.config.get("cameras", []) if c.get("model")}
    return names


def _newest(session: Session, name: str) -> ModelArtifact | None:
    return session.scalars(select(ModelArtifact).where(ModelArtifact.name == name)
                           .order_by(ModelArtifact.created_at.desc(), ModelArtifact.id.desc()).limit(1)).first()


def register(session: Session, evidence: EvidenceBackend, name: str, *, actor: str, at: datetime) -> ModelArtifact:
    """The artifact of NAME as central's registry has it now, registered (and its bytes stored) if
    missing; where central cannot load NAME, the newest one registered before. Flushed, not committed."""
    from models.registry import ChecksumMismatch, ModelNotFound, load_published, resolve_class_file, resolve_model

    try:
        resolved = resolve_model(name)
        if resolved.entry.name != name:  # a path given as a model: not something central delivers
            raise ModelNotFound(f"{name} is a file, not a registered model")
    except (ModelNotFound, ChecksumMismatch, ValueError, KeyError) as exc:
        known = _newest(session, name)
        if known is None:
            raise ArtifactUnavailable(f"model {name}: central cannot load it ({exc}) and none was registered before") from None
        return known
    entry = resolved.entry
    row = session.scalar(select(ModelArtifact).where(ModelArtifact.name == name, ModelArtifact.sha256 == entry.sha256))
    data = None
    if row is None or not evidence.exists(entry.sha256):
        data = resolved.path.read_bytes()
        if sha256_hex(data) != entry.sha256:  # changed since resolve_model checked it
            raise ArtifactUnavailable(f"model {name}: {resolved.path} changed while it was read")
        evidence.put(entry.sha256, data)
    classes_path, classes_sha = resolve_class_file(entry)
    classes_size = classes_path.stat().st_size
    if not evidence.exists(classes_sha):
        names_data = classes_path.read_bytes()
        if sha256_hex(names_data) != classes_sha:
            raise ArtifactUnavailable(f"model {name}: {classes_path} changed while it was read")
        evidence.put(classes_sha, names_data)
    if row is not None:
        return row
    published = any(m.name == name and m.sha256 == entry.sha256 for m in load_published().models)
    # The class file as the edge will write it: published models keep the name registry.yaml gives it,
    # others are named by content so that two models' files never overwrite each other on the edge.
    classes_file = entry.classes if published else f"{classes_sha}.names"
    row = ModelArtifact(name=name, sha256=entry.sha256, size=len(data) if data is not None else resolved.path.stat().st_size,
                        classes_file=classes_file, classes_sha256=classes_sha, classes_size=classes_size,
                        entry=entry.model_dump(mode="json"), published=published, created_at=at, created_by=actor)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # another replica registered it meanwhile: the same bytes, take its row
        found = session.scalar(select(ModelArtifact).where(ModelArtifact.name == name,
                                                           ModelArtifact.sha256 == entry.sha256))
        assert found is not None
        return found
    log.info("model %s (sha256 %s, %d bytes) registered for delivery to edges by %s", name, entry.sha256, row.size, actor)
    return row


def register_artifacts(session: Session, evidence: EvidenceBackend, names: set[str], *, actor: str,
                       at: datetime) -> None:
    """Register each of NAMES that central can load (a promotion: the model and its training record
    are kept at central from now on); one it cannot load is left for the edge's request to name."""
    for name in sorted(names):
        try:
            register(session, evidence, name, actor=actor, at=at)
        except ArtifactUnavailable as exc:
            log.warning("%s", exc)


def manifest_entry(row: ModelArtifact) -> dict[str, Any]:
    """What an edge needs to register and fetch ROW: its registry entry as the edge writes it, the
    class names file, sizes and the sha256 of both (the URLs are by sha256)."""
    entry = dict(row.entry)
    if not row.published:
        entry.update(file=f"{row.sha256}.onnx", classes=row.classes_file)
    return {"name": row.name, "sha256": row.sha256, "size": row.size, "published": row.published, "entry": entry,
            "classes": {"file": row.classes_file, "sha256": row.classes_sha256, "size": row.classes_size}}


def readable_blob(session: Session, sha256: str, names: set[str]) -> Blob | None:
    """Blob SHA256 when it is the weights or the class file of a model named in NAMES; else None."""
    if not names:
        return None
    rows = session.scalars(select(ModelArtifact).where(ModelArtifact.name.in_(sorted(names)),
                                                       or_(ModelArtifact.sha256 == sha256,
                                                           ModelArtifact.classes_sha256 == sha256))).all()
    for row in rows:
        if row.sha256 == sha256:
            return Blob(sha256, row.size)
        return Blob(sha256, row.classes_size)
    return None
