"""Actuators in the site file: validated at load with the file, key and fix; secrets stay names."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from broker.configbase import ConfigError
from broker.edgeconfig import edge_config_message
from broker.siteconfig import load_site_config

ZONE = {"id": "car", "kind": "indoor", "polygon": [[0.2, 0.6], [0.7, 0.6], [0.7, 0.9]]}


def _write(tmp_path: Path, actuators: list[dict], zone_actuators: list[str]) -> Path:
    site = {"site": "s", "edges": [{"id": "e1", "actuators": actuators, "cameras": [
        {"id": "lift", "url": "rtsp://127.0.0.1/lift", "zones": [{**ZONE, "actuators": zone_actuators}]}]}]}
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(site))
    return path


def _problems(path: Path) -> str:
    with pytest.raises(ConfigError) as err:
        load_site_config(path)
    assert str(path) in str(err.value)
    return "\n".join(err.value.problems)


def test_a_zone_naming_an_unknown_actuator_says_which_and_where_to_add_it(tmp_path: Path) -> None:
    problems = _problems(_write(tmp_path, [], ["lift-door"]))
    assert "zone 'car' drives actuator 'lift-door'" in problems and "add it under actuators:" in problems


def test_a_relay_without_its_watchdog_is_refused(tmp_path: Path) -> None:
    problems = _problems(_write(tmp_path, [{"id": "door", "kind": "modbus_tcp", "host": "10.0.0.5", "coil": 0}], ["door"]))
    assert "edges[0].actuators[0].modbus_tcp.watchdog_s: Field required (fix: add this key)" in problems


def test_unknown_kind_and_credentials_in_the_url_are_refused(tmp_path: Path) -> None:
    problems = _problems(_write(tmp_path, [{"id": "a", "kind": "gpio"}], []))
    assert "edges[0].actuators[0]" in problems and "modbus_tcp" in problems
    problems = _problems(_write(tmp_path, [{"id": "cam-out", "kind": "hikvision_isapi", "url": "http://admin:pw@10.0.0.64",
                                            "username": "admin", "password_env": "CAM_PW", "pulse_s": 5}], []))
    assert "actuators[0].hikvision_isapi.url" in problems


def test_secrets_travel_as_names_and_the_edge_checks_its_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("LIFT_SPEAKER_KEY", raising=False)
    site = load_site_config(_write(tmp_path, [
        {"id": "speaker", "kind": "http", "url": "http://10.0.0.9/play", "secret_env": "LIFT_SPEAKER_KEY"},
        {"id": "voice", "kind": "audio", "file": str(tmp_path / "missing.wav")},
    ], ["speaker", "voice"]))
    message = edge_config_message(site, "e1").model_dump_json()
    assert "LIFT_SPEAKER_KEY" in message and "secret-value" not in message
    with pytest.raises(ConfigError) as err:
        site.edge("e1").check_environment("site.yaml")
    problems = "\n".join(err.value.problems)
    assert "edges[e1].actuators[0].secret_env: environment variable LIFT_SPEAKER_KEY is not set" in problems
    assert "edges[e1].actuators[1].file:" in problems and "missing.wav is not a file on this edge" in problems
    monkeypatch.setenv("LIFT_SPEAKER_KEY", "secret-value")
    (tmp_path / "missing.wav").write_bytes(b"RIFF")
    site.edge("e1").check_environment("site.yaml")


def test_renewals_come_well_inside_the_device_timing(tmp_path: Path) -> None:
    site = load_site_config(_write(tmp_path, [{"id": "door", "kind": "modbus_tcp", "host": "h", "coil": 3, "watchdog_s": 6}],
                                   ["door"]))
    (door,) = site.edge("e1").actuators
    assert door.hold_window_s() == 6 and door.rearm_s() == 2 and door.max_hold_s == 90
