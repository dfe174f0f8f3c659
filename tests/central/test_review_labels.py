"""Every review is a labelled picture: confirm, dismiss with a reason (a hard negative), the box
editor's edits in the audit trail, the export as a training set with its evidence held against the
retention purge, and false alarms per model. On SQLite and PostgreSQL, through the HTTP API."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from broker.payloads import DetectedObject, HazardKind
from broker.topics import event_topic, evidence_topic
from central.store.tables import EvidenceHold
from tests.central.conftest import Workflow
from tests.central.factories import EDGE, SITE, event, jpeg_bytes, sha, wire
from tests.central.test_workflow_api import incident_of, ok

EVENTS = event_topic(SITE, EDGE)
SCOOTER = DetectedObject(label="motorcycle", score=0.7, box=(0.3, 0.4, 0.6, 0.95), track_id=1)
RIDER = DetectedObject(label="person", score=0.9, box=(0.35, 0.1, 0.6, 0.9), track_id=2)


def _lift_incident(wf: Workflow, key: str, model: str = "yolov8n", camera: str = "elevator-1") -> int:
    from broker.payloads import EvidenceRef, ModelRef

    annotated, raw = jpeg_bytes(f"{key}-annotated"), jpeg_bytes(f"{key}-raw")
    refs = [EvidenceRef(sha256=sha(b), content_type="image/jpeg", bytes=len(b)) for b in (annotated, raw)]
    ev = event(key, camera=camera, zone="car-floor", hazard=HazardKind.EBIKE_INDOOR, score=0.4).model_copy(  # triage
        update={"objects": [SCOOTER, RIDER], "evidence": refs, "model": ModelRef(name=model, sha256="1" * 64)})
    wf.ingest(EVENTS, wire(ev))
    for blob in (annotated, raw):
        wf.ingest(evidence_topic(SITE, EDGE, sha(blob)), blob)
    return int(incident_of(wf, key)["id"])


def test_reviews_become_labels_edits_are_audited_and_the_export_trains(wf: Workflow, tmp_path: Path) -> None:
    confirmed = _lift_incident(wf, "k-yes")
    dismissed = _lift_incident(wf, "k-no", model="lift-ebike", camera="gate")  # another camera: not merged
    raw_of = {i: ok(wf.get("monitor", f"/api/v1/incidents/{i}/labels"))["frame_sha256"] for i in (confirmed, dismissed)}
    assert raw_of[confirmed] == sha(jpeg_bytes("k-yes-raw"))  # the raw frame, never the annotated one
    # Before any review the picture's boxes are the detections.
    assert [b["label"] for b in ok(wf.get("monitor", f"/api/v1/incidents/{confirmed}/labels"))["boxes"]] == ["motorcycle", "person"]

    ok(wf.act("monitor", confirmed, "confirm"))
    label = ok(wf.get("monitor", f"/api/v1/incidents/{confirmed}/labels"))
    assert label["verdict"] == "confirmed" and label["reviewer"] == "monitor"
    assert [b["label"] for b in label["boxes"]] == ["ebike", "person"]  # a confirmed e-bike alarm's motorcycle IS an e-bike

    ok(wf.act("monitor", dismissed, "dismiss", reason="a child's stroller"))
    hard_negative = ok(wf.get("monitor", f"/api/v1/incidents/{dismissed}/labels"))
    assert hard_negative["verdict"] == "dismissed" and [b["label"] for b in hard_negative["boxes"]] == ["person"]

    # The box editor: move the e-bike's box, add a missed second e-bike.
    edited = [{"label": "ebike", "box": [0.28, 0.42, 0.62, 0.96]}, {"label": "person", "box": [0.35, 0.1, 0.6, 0.9]},
              {"label": "ebike", "box": [0.7, 0.5, 0.95, 0.95]}]
    assert wf.client.put(f"/api/v1/incidents/{confirmed}/labels", json={"boxes": edited},
                         headers=wf.login("wang")).status_code == 404  # a grid worker does not even see it
    assert wf.client.put(f"/api/v1/incidents/{confirmed}/labels", json={"boxes": [{"label": "ebike", "box": [0.5, 0.5, 0.4, 0.9]}]},
                         headers=wf.login("monitor")).status_code == 422
    saved = ok(wf.client.put(f"/api/v1/incidents/{confirmed}/labels", json={"boxes": edited}, headers=wf.login("monitor")))
    assert saved["verdict"] == "edited" and len(saved["boxes"]) == 3
    history = ok(wf.get("admin", f"/api/v1/incidents/{confirmed}/history"))
    (entry,) = [h for h in history if h["action"] == "label"]
    assert entry["actor"] == "monitor" and len(entry["payload"]["boxes"]) == 3 and len(entry["payload"]["before"]) == 2
    assert ok(wf.get("admin", f"/api/v1/incidents/{confirmed}/history/verify"))["ok"]

    stats = {m["model"]: m for m in ok(wf.get("monitor", "/api/v1/stats/models"))}
    assert (stats["yolov8n"]["confirmed"], stats["yolov8n"]["dismissed"]) == (1, 0)
    assert stats["lift-ebike"]["false_alarm_rate"] == 1.0

    from central.cli import app

    out = tmp_path / "reviews"
    central = wf.central
    database_url = central.engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(app, ["dataset", "export", "--out", str(out), "--database-url", database_url,
                                      "--evidence-dir", str(central.ctx.evidence.root), "--hazard", "ebike_indoor"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert {(m["verdict"], m["reviewer"]) for m in manifest["images"]} == {("edited", "monitor"), ("dismissed", "monitor")}
    by_verdict = {m["verdict"]: m for m in manifest["images"]}
    assert by_verdict["dismissed"]["reason"] == "a child's stroller"
    assert (out / "images" / by_verdict["edited"]["file"]).read_bytes() == jpeg_bytes("k-yes-raw")
    lines = (out / "labels" / by_verdict["edited"]["file"].replace(".jpg", ".txt")).read_text().splitlines()
    assert sorted(line.split()[0] for line in lines) == ["0", "0", "1"]  # ebike, ebike, person
    assert (out / "labels" / by_verdict["dismissed"]["file"].replace(".jpg", ".txt")).read_text().split()[0] == "1"

    from models.evaluation import load_dataset

    assert load_dataset(out).names == {0: "ebike", 1: "person"}  # what `models train --data` reads
    with central.ctx.sessions() as session:
        held = {h.sha256 for h in session.query(EvidenceHold).all()}
    assert held == {raw_of[confirmed], raw_of[dismissed]}  # kept from the retention purge
