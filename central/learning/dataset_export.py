"""`sharpeyes central dataset export`: the reviewed pictures as a training set (Ultralytics YOLO layout).

``images/`` holds the raw frames (never the annotated snapshots), ``labels/`` one ``class cx cy w h``
line per box, ``data.yaml`` the class names (``ebike`` and ``person`` first, so that sets exported at
different times agree), and ``manifest.json`` per picture: sha256, camera, time, incident, reviewer,
verdict and reason, the model that raised it, and the side of a split grouped by camera and day
(models/splits.py reads the same camera and time when it trains). Every exported frame gets an
evidence hold, so the retention purge keeps it while the dataset exists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml
from sqlalchemy.orm import Session

from central.evidence.store import EvidenceBackend
from central.learning.review_labels import current_labels
from central.store.learning_tables import ReviewLabel
from central.store.tables import EvidenceHold
from models.evaluation import yolo_line

FIRST_CLASSES = ("ebike", "person")
HELD_OUT_SHARE = 0.25


@dataclass
class ExportSummary:
    out: Path
    pictures: int = 0
    boxes: int = 0
    missing: list[str] = field(default_factory=list)  # frames the evidence store no longer has
    classes: list[str] = field(default_factory=list)
    held_out: int = 0


def split_sides(rows: list[ReviewLabel]) -> list[str]:
    """"train" or "held_out" per row, whole camera-days on one side (all "train" when it cannot split)."""
    from models.splits import grouped_split

    groups: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        groups.setdefault(f"{row.camera}/{row.observed_at.date()}", []).append(index)
    wanted = [any(b["label"] == "ebike" for b in row.boxes) for row in rows]
    try:
        split = grouped_split(list(groups.values()), held_out_share=HELD_OUT_SHARE, seed=0, wanted=wanted)
    except ValueError:
        return ["train"] * len(rows)
    held = set(split.held_out)
    return ["held_out" if i in held else "train" for i in range(len(rows))]


def export(session: Session, evidence: EvidenceBackend, out: Path, *, since: datetime | None = None,
           hazard: str | None = None, now: datetime) -> ExportSummary:
    rows = current_labels(session, since=since, hazard=hazard)
    summary = ExportSummary(out=out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    present = []
    for row in rows:
        data = evidence.read(row.frame_sha256)
        if data is None:
            summary.missing.append(row.frame_sha256)
            continue
        present.append((row, data))
    others = sorted({b["label"] for row, _ in present for b in row.boxes} - set(FIRST_CLASSES))
    summary.classes = [*FIRST_CLASSES, *others]
    class_id = {name: i for i, name in enumerate(summary.classes)}
    sides = split_sides([row for row, _ in present])
    manifest = []
    holder = f"dataset:{out.resolve()}"[:100]
    for (row, data), side in zip(present, sides, strict=True):
        name = f"{row.camera}_{row.observed_at:%Y%m%dT%H%M%S}_{row.frame_sha256[:12]}"
        (out / "images" / f"{name}.jpg").write_bytes(data)
        lines = [yolo_line(class_id[b["label"]], b["box"]) for b in row.boxes]
        (out / "labels" / f"{name}.txt").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        summary.pictures += 1
        summary.boxes += len(lines)
        summary.held_out += side == "held_out"
        manifest.append({"file": f"{name}.jpg", "sha256": row.frame_sha256, "camera": row.camera,
                         "time": row.observed_at.isoformat(), "incident_id": row.incident_id, "hazard": row.hazard,
                         "verdict": row.verdict, "reason": row.reason, "reviewer": row.reviewer,
                         "reviewed_at": row.at.isoformat(), "model": row.model, "split": side})
        if session.get(EvidenceHold, (row.frame_sha256, holder)) is None:
            session.add(EvidenceHold(sha256=row.frame_sha256, holder=holder, reason="in a training dataset", at=now))
    (out / "data.yaml").write_text(yaml.safe_dump({"path": ".", "train": "images", "val": "images",
                                                   "names": dict(enumerate(summary.classes))}, sort_keys=False))
    (out / "manifest.json").write_text(json.dumps({"exported_at": now.isoformat(), "since": since.isoformat() if since else None,
                                                   "hazard": hazard, "images": manifest}, indent=1), encoding="utf-8")
    session.commit()
    return summary
