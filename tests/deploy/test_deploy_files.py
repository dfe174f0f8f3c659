"""What can be checked of the container files without a Docker engine (docs/deployment.md says the rest).

- the Dockerfile: its targets exist, run as a non-root user, have a HEALTHCHECK and an
  ENTRYPOINT, install only their role's extra, and copy nothing secret;
- deploy/compose.yaml: valid against the Compose Specification's JSON schema (the copy vendored
  in the check-jsonschema package), and wired the way docs/deployment.md describes;
- deploy/site.yaml: a valid site configuration that connects with TLS.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

from broker.siteconfig import load_site_config

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def _stages(dockerfile: str) -> dict[str, list[str]]:
    """Instructions of each named stage, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", dockerfile)
    stages: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.IGNORECASE)
        if match:
            current = stages.setdefault(match.group(1), [])
        elif current is not None:
            current.append(line)
    return stages


@pytest.fixture(scope="module")
def stages() -> dict[str, list[str]]:
    return _stages((REPO / "Dockerfile").read_text())


@pytest.mark.parametrize("role", ["edge", "central"])
def test_each_role_image_is_non_root_with_a_healthcheck(stages: dict[str, list[str]], role: str) -> None:
    lines = stages[role]
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), f"{role} image must end as a non-root user"
    assert any(line.startswith("HEALTHCHECK ") and " CMD " in line for line in lines)
    assert any(line.startswith("ENTRYPOINT ") for line in lines)
    # Only this role's locked dependencies are installed in the environment the image copies.
    copies = [line for line in lines if line.startswith("COPY --from=venv-")]
    assert copies == [f"COPY --from=venv-{role} /opt/venv /opt/venv"]
    installs = [line for line in stages[f"venv-{role}"] if "pip install" in line]
    assert len(installs) == 1 and f"/tmp/{role}.txt" in installs[0]  # the role's lock, nothing else
    other = "central" if role == "edge" else "edge"
    assert f"{other}.txt" not in installs[0] and "dev.txt" not in installs[0]


def test_no_stage_copies_secrets_or_sets_them(stages: dict[str, list[str]]) -> None:
    for name, lines in stages.items():
        for line in lines:
            if line.startswith(("COPY", "ADD")):
                assert not re.search(r"secret|password|\.key\b|\.env\b|deploy/", line, re.IGNORECASE), (name, line)
            if line.startswith(("ENV", "ARG")):
                assert not re.search(r"PASSWORD|SECRET|TOKEN", line), (name, line)
    ignored = (REPO / ".dockerignore").read_text().split()
    for pattern in ("deploy", "**/secrets", "**/*.password", "**/*.key", "**/.env", "var"):
        assert pattern in ignored


def test_weights_are_mounted_or_baked_by_build_argument(stages: dict[str, list[str]]) -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^ARG MODELS_FROM=no-models$", dockerfile, re.MULTILINE)
    assert "FROM ${MODELS_FROM} AS weights" in dockerfile
    assert any("COPY --from=models" in line for line in stages["baked-models"])


def _compose(name: str = "compose.yaml") -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


@pytest.mark.parametrize("name", ["compose.yaml", "city/compose.central-host.yaml"])
def test_compose_files_are_valid_against_the_compose_specification(name: str) -> None:
    schema_file = resources.files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(_compose(name)), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
    # The check has teeth: a misspelt key is caught.
    broken = _compose(name)
    service = next(iter(broken["services"].values()))
    service["commandd"] = service.pop("command", ["x"])
    assert list(validator.iter_errors(broken))


def test_city_acl_mirrors_central_subscriptions() -> None:
    from broker.topics import CENTRAL_SUBSCRIPTIONS

    acl = (DEPLOY / "city" / "acl.conf").read_text()
    for pattern in CENTRAL_SUBSCRIPTIONS:
        assert f'"{pattern}"' in acl and f'"$share/central/{pattern}"' in acl
    assert acl.rstrip().endswith("{deny, all}.")


def test_compose_topology_matches_the_demo_production_shaped() -> None:
    services = _compose()["services"]
    assert {"mosquitto", "postgres", "central-api", "central-ingest-1", "central-ingest-2", "edge-1", "rtsp"} <= set(services)
    ingest = [services[name]["command"] for name in ("central-ingest-1", "central-ingest-2")]
    assert all("--shared-group" in cmd and cmd[cmd.index("--shared-group") + 1] == "central" for cmd in ingest)
    client_ids = {cmd[cmd.index("--mqtt-client-id") + 1] for cmd in ingest}
    assert len(client_ids) == 2, "each ingest worker keeps its own persistent session"
    assert "--no-ingest" in services["central-api"]["command"]
    # The broker publishes only its TLS port, and gets no CA key or plain-text passwords.
    assert services["mosquitto"]["ports"] == ["8883:8883"]
    mounts = " ".join(services["mosquitto"]["volumes"])
    assert "ca.key" not in mounts and "secrets/" not in mounts
    # No password is written into the compose file itself.
    text = (DEPLOY / "compose.yaml").read_text()
    assert not re.search(r"(PASSWORD|password)\s*[:=]\s*['\"]?[A-Za-z0-9]{6,}(?!\})", text.replace("${", "{"))


def test_deploy_site_connects_with_tls_and_mounted_secrets() -> None:
    site = load_site_config(DEPLOY / "site.yaml")
    assert site.broker.tls and site.broker.port == 8883
    assert site.broker.ca_file == "/run/secrets/broker_ca"
    assert site.broker.password_file == "/run/secrets/mqtt_password"
    assert not site.broker.tls_insecure
    assert all(user.password is None for user in site.users), "deploy users take passwords from the environment"
    secrets = _compose()["secrets"]
    for service in ("central-api", "edge-1"):
        targets = {s if isinstance(s, str) else s["target"] for s in _compose()["services"][service]["secrets"]}
        assert {"mqtt_password", "broker_ca"} <= targets
    assert secrets["mqtt_edge_1_password"]["file"].endswith("secrets/edge-1.password")


def _pinned(image: str) -> bool:
    """An image reference that does not move with a new release: a digest, or an exact version tag."""
    if "@sha256:" in image:
        return True
    tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
    return re.match(r"^v?\d+\.\d+", tag) is not None  # major.minor at least: "2", "16-alpine" move


def test_base_and_service_images_are_pinned_to_exact_versions() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)", dockerfile, re.MULTILINE)
    assert base is not None and _pinned(base.group(1)), base
    for name in ("compose.yaml", "city/compose.central-host.yaml"):
        for service, spec in _compose(name).get("services", {}).items():
            image = spec.get("image", "")
            if "build" in spec or image.startswith("${") or "sharpeyes-" in image:
                continue  # our own images, built from this Dockerfile or tagged by the release
            assert _pinned(image), f"{name}: service {service} uses {image!r}; pin an exact version or digest"
    assert not _pinned("eclipse-mosquitto:2") and not _pinned("postgres:16-alpine") and _pinned("postgres:16.6-alpine3.20")


@pytest.mark.parametrize("role", ["edge", "central"])
def test_each_role_installs_from_its_lock_with_hashes(stages: dict[str, list[str]], role: str) -> None:
    steps = " ".join(stages[f"venv-{role}"])
    assert f"requirements/{role}.txt" in steps and "--require-hashes" in steps
    # Nothing is resolved at build time: the project wheel goes in without its dependencies.
    assert re.search(r"pip install --no-deps [^&]*sharpeyes-", steps)
    assert "requirements/build.txt" in " ".join(stages["wheel"])


def test_district_bridge_forwards_everything_central_ingests() -> None:
    """An edge behind a district broker must reach central with every kind of message it sends
    (events, actuations, evidence, status, health, replies)."""
    from broker.topics import CENTRAL_SUBSCRIPTIONS

    bridge = (DEPLOY / "city" / "mosquitto-district-bridge.conf").read_text()
    missing = [p for p in CENTRAL_SUBSCRIPTIONS if f"topic {p} out 1" not in bridge]
    assert missing == [], f"the district bridge does not forward {missing}"
