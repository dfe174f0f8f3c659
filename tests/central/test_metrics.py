"""Central's /metrics through a real Mosquitto: what an operator's Prometheus reads after an edge
sent a good event, a broken one and its status, with the scheduler ticking."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from broker.payloads import EdgeStatus
from broker.topics import event_topic, status_topic
from central.reporting.metrics import reason_class
from central.server import build_central
from tests.central.factories import EDGE, SITE, event, site_config, wire
from tests.central.test_mqtt_ingest import Device
from tests.support import wait_until


def _samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    res = client.get("/metrics")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(res.text) for s in family.samples}


def test_metrics_count_ingest_dead_letters_lag_edges_and_ticks(tmp_path: Path, mosquitto, monkeypatch) -> None:
    monkeypatch.delenv("SHARPEYES_METRICS_TOKEN", raising=False)
    central = build_central(site_config(broker_port=mosquitto.port), f"sqlite:///{tmp_path}/c.db", tmp_path / "ev",
                            tmp_path / "var", client_id=f"metrics-{uuid.uuid4().hex[:8]}")
    central.start_ingest()
    assert central.ingest is not None and central.ingest.wait_connected(10)
    edge = Device(mosquitto.port)
    try:
        edge.publish(event_topic(SITE, EDGE), wire(event("k-metrics", observed_after_s=0)))
        edge.publish(event_topic(SITE, EDGE), b"{not json")
        status = EdgeStatus(site=SITE, edge=EDGE, state="online", at=datetime.now(UTC))
        edge.publish(status_topic(SITE, EDGE), status.model_dump_json(by_alias=True).encode())
        assert central.scheduler is not None
        central.scheduler.tick()
        with TestClient(central.app) as client:
            samples = wait_until(lambda: (s := _samples(client)).get(("sharpeyes_central_messages_total",
                                                                       (("kind", "status"),))) and s, 15,
                                 what="the three messages counted")
            assert samples[("sharpeyes_central_messages_total", (("kind", "event"),))] == 1
            assert samples[("sharpeyes_central_messages_total", (("kind", "dead_letter"),))] == 1
            assert samples[("sharpeyes_central_dead_letters_total", (("reason", "not_json"),))] == 1
            # The factory's event was observed at a fixed time in the past: its lag is large and counted once.
            assert samples[("sharpeyes_central_ingest_lag_seconds_count", ())] == 1
            assert samples[("sharpeyes_central_ingest_lag_seconds_sum", ())] > 60
            assert samples[("sharpeyes_central_batch_commit_seconds_count", ())] >= 1
            assert samples[("sharpeyes_central_edge_online", (("edge", EDGE), ("site", SITE)))] == 1
            assert 0 <= samples[("sharpeyes_central_edge_last_seen_seconds", (("edge", EDGE), ("site", SITE)))] < 30
            assert samples[("sharpeyes_central_scheduler_ticks_total", (("role", "leader"),))] >= 1
            assert samples[("sharpeyes_central_ingest_backlog", ())] == 0

            monkeypatch.setenv("SHARPEYES_METRICS_TOKEN", "scrape-token-1")
            assert client.get("/metrics").status_code == 401
            assert client.get("/metrics", headers={"Authorization": "Bearer scrape-token-1"}).status_code == 200
    finally:
        edge.close()
        central.close()


def test_dead_letter_reasons_fall_into_few_classes() -> None:
    assert reason_class("not JSON: Expecting value: line 1 column 1") == "not_json"
    assert reason_class("unknown schema 'x'; this central speaks 'sharpeyes.event/1'") == "unknown_schema"
    assert reason_class("unknown camera 'garage-9': not a camera of edge 'edge-1'") == "unknown_origin"
    assert reason_class("payload names site/edge a/b but arrived on the topic of c/d") == "wrong_origin"
    assert reason_class("score: Input should be less than or equal to 1") == "invalid_payload"


def test_the_grafana_dashboard_asks_only_for_metrics_that_exist(tmp_path: Path) -> None:
    """Every sharpeyes_* series the dashboard queries is one central or an edge really exports."""
    import json
    import re

    from central.reporting.metrics import CentralMetrics
    from tests.support import PROJECT_ROOT

    dashboard = json.loads((PROJECT_ROOT / "deploy/grafana/sharpeyes.json").read_text(encoding="utf-8"))
    wanted = {re.sub(r"_(bucket|total|count|sum)$", "", name) for panel in dashboard["panels"]
              for target in panel["targets"] for name in re.findall(r"sharpeyes_[a-z_]+", target["expr"])}
    central_names = {family.name for family in CentralMetrics().registry.collect()}
    central_names |= {"sharpeyes_central_edge_last_seen_seconds", "sharpeyes_central_edge_online",
                      "sharpeyes_central_edge_problems"}  # read from the database at scrape time (test above)
    edge_source = (PROJECT_ROOT / "edge/metrics.py").read_text(encoding="utf-8")
    edge_names = set(re.findall(r'"(sharpeyes_edge_[a-z_]+)"', edge_source))
    missing = sorted(n for n in wanted if n not in central_names | edge_names)
    assert missing == [], f"the dashboard asks for series nobody exports: {missing}"
