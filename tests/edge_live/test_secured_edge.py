"""A real edge node on a locked broker: TLS with the generated CA, its own password, and an ACL that
confines it to its subtree. It announces itself, streams camera health and answers central's recheck."""

from __future__ import annotations

import json
import queue
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from broker import topics
from broker.payloads import Command
from broker.siteconfig import SiteConfig
from edge.node import EdgeNode
from tests.broker.secured import SITE, Client, start_secured_broker


@pytest.mark.timeout(120)
def test_edge_over_tls_with_its_own_credentials(rtsp_server, tmp_path: Path):
    broker = start_secured_broker(tmp_path / "broker")
    central = Client(broker.broker_config("central"), "central-test")
    try:
        assert central.connect().value == 0
        central.subscribe("sharpeyes/v1/test-site/#")
        site = SiteConfig.model_validate({
            "site": SITE.site,
            "broker": broker.broker_config("edge-a").model_dump(),
            "edges": [{"id": "edge-a", "cameras": [{
                "id": "lane", "url": rtsp_server.url("street_parked_cars_720p.mp4"), "decode": "all",
                "zones": [{"id": "lane", "kind": "fire_lane",
                           "polygon": [[0.25, 0.62], [0.80, 0.60], [0.80, 0.70], [0.25, 0.72]]}],
            }]}],
        })
        node = EdgeNode(site, "edge-a", tmp_path / "var" / "outbox.db")
        node.start()
        try:
            seen: dict[str, dict] = {}
            deadline = datetime.now(UTC).timestamp() + 40
            while "health" not in seen and datetime.now(UTC).timestamp() < deadline:
                topic, payload = central.messages.get(timeout=40)
                if topic == topics.status_topic(SITE.site, "edge-a"):
                    seen["status"] = json.loads(payload)
                elif topic == topics.camera_health_topic(SITE.site, "edge-a", "lane"):
                    seen["health"] = json.loads(payload)
            assert seen["status"]["state"] == "online" and seen["health"]["state"] == "online"

            command = Command(command_id=uuid.uuid4(), name="recheck", args={"camera": "lane", "zone": "lane"},
                              sent_at=datetime.now(UTC))
            assert central.publish(topics.command_topic(SITE.site, "edge-a", "recheck"),
                                   command.model_dump_json(by_alias=True).encode()).value == 0
            while True:
                topic, payload = central.messages.get(timeout=30)
                if topic == topics.reply_topic(SITE.site, "edge-a", "recheck"):
                    reply = json.loads(payload)
                    break
            assert reply["ok"] and reply["result"]["present"] is False
        finally:
            node.stop()
    except queue.Empty:
        pytest.fail(f"nothing more arrived from the edge; broker log:\n{broker.log()[-3000:]}")
    finally:
        central.close()
        broker.stop()


def test_edge_run_refuses_a_missing_broker_password_with_the_fix(tmp_path: Path):
    import os
    import subprocess
    import sys

    import yaml

    from tests.support import PROJECT_ROOT

    config = tmp_path / "site.yaml"
    config.write_text(yaml.safe_dump({
        "site": "s", "broker": {"username": "e1", "password_env": "SHARPEYES_TEST_NO_SUCH_PASSWORD"},
        "edges": [{"id": "e1", "cameras": []}],
    }))
    env = {k: v for k, v in os.environ.items() if k != "SHARPEYES_TEST_NO_SUCH_PASSWORD"}
    done = subprocess.run([sys.executable, "-m", "sharpeyes", "edge", "run", "--config", str(config), "--edge", "e1",
                           "--outbox", str(tmp_path / "outbox.db")], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "SHARPEYES_TEST_NO_SUCH_PASSWORD" in done.stderr and "export" in done.stderr
