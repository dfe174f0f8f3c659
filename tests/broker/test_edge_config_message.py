"""What the per-edge configuration message may and may not carry (broker/edgeconfig.py)."""

from __future__ import annotations

import json

import pytest

from broker.cameraconfig import EdgeConfig
from broker.configbase import ConfigError
from broker.edgeconfig import config_version, edge_config_message, parse_edge_config_message
from broker.siteconfig import parse_site_config

SITE = {
    "site": "s1",
    "broker": {"host": "mqtt.example", "port": 8883, "tls": True, "password_env": "CENTRAL_MQTT_PASSWORD"},
    "edges": [
        {"id": "e1", "cameras": [{"id": "lobby", "url": "rtsp://viewer:${LOBBY_PW}@10.0.0.5/ch1", "grid_cell": "g1",
                                  "zones": [{"id": "car", "kind": "indoor",
                                             "polygon": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]}]}]},
        {"id": "e2", "cameras": [{"id": "cam-of-e2-only", "url": "rtsp://admin:written-in-file@10.0.0.9/ch1"}]},
    ],
    "grid": [{"code": "g1", "name": "Grid 1", "workers": ["w1"]}],
    "workers": [{"id": "w1", "name": "王芳", "phone": "13812345678"}],
    "users": [{"username": "admin", "role": "admin", "password": "admin-password-in-file"}],
}


def test_the_message_holds_one_edge_and_nothing_of_central() -> None:
    message = edge_config_message(parse_site_config(SITE), "e1").model_dump(mode="json")
    assert set(message) == {"schema_version", "site", "version", "edge"}
    assert set(message["edge"]) == set(EdgeConfig.model_fields)  # the edge's own settings, no more
    text = json.dumps(message, ensure_ascii=False)
    for never in ("written-in-file", "admin-password-in-file", "13812345678", "王芳", "mqtt.example",
                  "CENTRAL_MQTT_PASSWORD", "cam-of-e2-only", "\"e2\"", "users", "workers"):
        assert never not in text
    assert message["edge"]["cameras"][0]["url"] == "rtsp://viewer:${LOBBY_PW}@10.0.0.5/ch1"
    assert message["version"] == config_version(parse_site_config(SITE).edge("e1"))


def test_a_received_message_is_validated_and_its_version_checked() -> None:
    message = edge_config_message(parse_site_config(SITE), "e1").model_dump(mode="json")
    assert parse_edge_config_message(message).edge.cameras[0].id == "lobby"
    altered = json.loads(json.dumps(message))
    altered["edge"]["cameras"][0]["zones"][0]["dwell_s"] = 999
    with pytest.raises(ConfigError, match="does not match the configuration's content"):
        parse_edge_config_message(altered)
    with pytest.raises(ConfigError, match="users"):
        parse_edge_config_message({**message, "users": []})
    with pytest.raises(KeyError, match="e9"):
        edge_config_message(parse_site_config(SITE), "e9")
