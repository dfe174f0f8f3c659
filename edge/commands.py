"""Commands from central on ``cmd/{name}``, answered on ``cmd/{name}/reply`` through the outbox:

- ``recheck`` {camera, zone}: is the hazard present now? Replies with the answer and a fresh
  annotated snapshot (published as evidence first), so central can verify a reported fix.
- ``release`` {camera?, zone?, actuator?, by, reason?}: let go of the matching actuator holds now
  (a false door hold released from the console); replies with what was released.
- ``config`` {edge_config: {...}}: this edge's own configuration (``broker.edgeconfig``); validated,
  its camera URLs' ``${VAR}`` references checked against this edge's environment, models it lacks
  fetched from central (edge/model_fetch.py), and applied without a restart; replies with the
  applied version or the validation errors. Central keeps the newest one retained on the broker (the
  edge's desired state, broker/desiredstate.py), so it comes again on every connect: applied only
  when its content differs from what runs, and its number or refusal reported in the heartbeat.

A command that cannot be parsed is answered with ok=false and the reason, never ignored silently
(when it carries no command_id to answer, it is logged)."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from broker import topics
from broker.cameraconfig import EdgeConfig
from broker.configbase import ConfigError
from broker.desiredstate import desired_version_of, needs_apply
from broker.edgeconfig import parse_edge_config_message
from broker.payloads import Command, CommandReply
from broker.siteconfig import SiteConfig
from edge.actuators.hub import ActuatorHub
from edge.camera_worker import CameraWorker
from edge.config_state import ConfigState
from edge.evidence import Annotation, EvidenceBlob, annotated_snapshot
from edge.model_fetch import bring_models
from edge.outbox import Outbox, OutboxMessage
from edge.recheck import hazard_present

log = logging.getLogger(__name__)


class CommandHost(Protocol):
    """What the commands need from the node that runs them (``EdgeNode``): written against this
    rather than the node, so that the node imports the commands and not the other way round."""

    @property
    def site(self) -> SiteConfig: ...

    @property
    def edge_id(self) -> str: ...

    @property
    def outbox(self) -> Outbox: ...

    @property
    def workers(self) -> list[CameraWorker]: ...

    @property
    def actuators(self) -> ActuatorHub | None: ...

    def worker(self, camera_id: str) -> CameraWorker | None: ...

    def apply_config(self, edge: EdgeConfig) -> str: ...

    @property
    def config_version(self) -> str: ...

    @property
    def config_state(self) -> ConfigState: ...


class CommandHandler:
    def __init__(self, node: CommandHost) -> None:
        self.node = node
        self._config_lock = threading.Lock()

    def on_message(self, topic: str, payload: bytes) -> None:
        parts = topics.parse_topic(topic)
        if parts is None or parts.kind != "command" or not payload:
            return  # an empty payload clears a retained command: nothing to do
        try:
            command = Command.model_validate_json(payload)
        except ValidationError as exc:
            command_id = _command_id(payload)
            log.warning("malformed %s command: %s", parts.command, exc.errors()[:3])
            if command_id is not None:
                self._reply(parts.command or "unknown", command_id, ok=False, errors=[f"malformed command: {exc.errors()[0]['msg']}"])
            return
        # Commands may take seconds (a detection, restarting cameras): never block paho's thread.
        threading.Thread(target=self._run, args=(parts.command, command), daemon=True).start()

    def _run(self, name: str | None, command: Command) -> None:
        handlers = {"recheck": self._recheck, "config": self._config, "release": self._release}
        handler = handlers.get(command.name if name is None else name)
        if handler is None:
            self._reply(name or command.name, command.command_id, ok=False, errors=[f"unknown command {name!r}; known: {sorted(handlers)}"])
            return
        try:
            handler(command)
        except Exception as exc:  # noqa: BLE001 - the caller must hear about it
            log.exception("command %s failed", name)
            self._reply(name or command.name, command.command_id, ok=False, errors=[f"{type(exc).__name__}: {exc}"])

    def _reply(self, name: str, command_id: uuid.UUID, *, ok: bool, result: dict[str, Any] | None = None,
               errors: list[str] | None = None, blobs: list[EvidenceBlob] | None = None) -> None:
        reply = CommandReply(command_id=command_id, ok=ok, result=result or {}, errors=errors or [],
                             replied_at=datetime.now(UTC))
        node = self.node
        messages = [
            OutboxMessage(topics.evidence_topic(node.site.site, node.edge_id, b.sha256), b.data, kind="snapshot", key=b.sha256)
            for b in blobs or []
        ]
        # A reply has no key: central does not receipt it, the broker's PUBACK is enough.
        messages.append(OutboxMessage(topics.reply_topic(node.site.site, node.edge_id, name),
                                      reply.to_wire(), kind="event", key=None))
        node.outbox.put_many(messages)

    def _recheck(self, command: Command) -> None:
        camera_id, zone_id = command.args.get("camera"), command.args.get("zone")
        worker = self.node.worker(str(camera_id))
        if worker is None:
            self._reply("recheck", command.command_id, ok=False, errors=[f"camera {camera_id!r} is not on this edge"])
            return
        zone = next((z for z in worker.camera.zones if z.id == zone_id), None)
        if zone is None:
            known = [z.id for z in worker.camera.zones]
            self._reply("recheck", command.command_id, ok=False,
                        errors=[f"zone {zone_id!r} is not on camera {camera_id!r} (zones: {known})"])
            return
        frame = worker.latest_frame(timeout=10.0)
        if frame is None:
            self._reply("recheck", command.command_id, ok=False, errors=[f"camera {camera_id!r} has no frame: {worker.reader.cause}"])
            return
        height, width = frame.image.shape[:2]
        zone = zone.for_model(worker.detector.class_names)
        result = hazard_present(zone, worker.detector.detect(frame.image, worker.camera.detect_width), width, height)
        verdict = "present" if result.present else "clear"
        snapshot = annotated_snapshot(
            frame.image, zone.polygon, [Annotation(box, f"{label} {score:.2f}") for label, score, box in result.objects],
            title=f"recheck {camera_id}/{zone_id}: {zone.hazard.value} {verdict} {frame.wall:%Y-%m-%d %H:%M:%S}Z",
        )
        self._reply(
            "recheck", command.command_id, ok=True, blobs=[snapshot],
            result={
                "camera": camera_id, "zone": zone_id, "hazard": zone.hazard.value, "present": result.present,
                "observed_at": frame.wall.isoformat().replace("+00:00", "Z"),
                "objects": [{"label": label, "score": round(score, 3), "box": list(box)} for label, score, box in result.objects],
                "snapshot_sha256": snapshot.sha256,
            },
        )
        log.info("recheck %s/%s: %s", camera_id, zone_id, verdict)

    def _release(self, command: Command) -> None:
        args = command.args
        hub = self.node.actuators
        by = str(args.get("by") or "central")
        wanted = {k: args.get(k) for k in ("camera", "zone", "actuator")}
        if any(v is not None and not isinstance(v, str) for v in wanted.values()):
            self._reply("release", command.command_id, ok=False, errors=["camera, zone and actuator must be ids"])
            return
        known = set(hub.runners) if hub is not None else set()
        if wanted["actuator"] is not None and wanted["actuator"] not in known:
            self._reply("release", command.command_id, ok=False,
                        errors=[f"actuator {wanted['actuator']!r} is not on this edge (actuators: {sorted(known)})"])
            return
        released = hub.release(by, camera=wanted["camera"], zone=wanted["zone"], actuator=wanted["actuator"]) if hub else []
        log.info("release by %s (%s): %d hold(s) let go", by, args.get("reason") or "no reason", len(released))
        self._reply("release", command.command_id, ok=True, result={"released": released})

    def _config(self, command: Command) -> None:
        # One at a time: on connecting, the retained configuration and a live push can come together.
        with self._config_lock:
            self._apply_config(command)

    def _apply_config(self, command: Command) -> None:
        number = desired_version_of(command.args)  # central's number for it (broker/desiredstate.py)
        data = command.args.get("edge_config")
        if not isinstance(data, dict):
            self._refuse(command, None, number,
                         ["args.edge_config must be this edge's configuration message (broker.edgeconfig)"])
            return
        try:
            message = parse_edge_config_message(data, source="cmd/config")
        except ConfigError as exc:
            self._refuse(command, None, number, exc.problems)
            return
        node = self.node
        if (message.site, message.edge.id) != (node.site.site, node.edge_id):
            self._refuse(command, message.version, number,
                         [f"configuration is for {message.site}/{message.edge.id}, this edge is {node.site.site}/{node.edge_id}"])
            return
        node.config_state.offered(message.version, number)
        if not needs_apply(node.config_version, message.version):
            # Already running it: the retained configuration again after a reconnect, or a site file
            # that had it. Nothing is restarted; the command is answered once.
            if node.config_state.answered(str(command.command_id)):
                self._reply("config", command.command_id, ok=True,
                            result={"version": message.version, "cameras": [w.camera.id for w in node.workers]})
            return
        try:
            message.edge.check_environment("cmd/config")
        except ConfigError as exc:
            self._refuse(command, message.version, number, exc.problems)
            return
        # A model not in this edge's store comes from central first (edge/model_fetch.py); what still
        # cannot be loaded refuses the whole configuration.
        if missing := bring_models(node.site, message.edge) or _unloadable_models(message.edge):
            self._refuse(command, message.version, number, missing)
            return
        version = node.apply_config(message.edge)
        node.config_state.answered(str(command.command_id))
        self._reply("config", command.command_id, ok=True,
                    result={"version": version, "cameras": [w.camera.id for w in node.workers]})

    def _refuse(self, command: Command, config_hash: str | None, number: int | None, problems: list[str]) -> None:
        """Keep the configuration running, report the refusal in the heartbeat and answer (once: a
        retained configuration is refused again at every reconnect until central changes it)."""
        self.node.config_state.refused(config_hash, number, problems)
        if self.node.config_state.answered(str(command.command_id)):
            self._reply("config", command.command_id, ok=False, errors=problems)


def _unloadable_models(edge: EdgeConfig) -> list[str]:
    """A problem per camera whose model this edge cannot load (not registered here, file missing or
    changed): refused before anything is stopped, so the cameras keep their running model."""
    from models.registry import ChecksumMismatch, ModelNotFound, resolve_model

    problems = []
    for name in sorted({c.model for c in edge.cameras}):
        try:
            resolve_model(name)
        except (ModelNotFound, ChecksumMismatch, ValueError) as exc:
            cameras = ", ".join(c.id for c in edge.cameras if c.model == name)
            problems.append(f"cameras {cameras}: model {name}: {exc}")
    return problems


def _command_id(payload: bytes) -> uuid.UUID | None:
    try:
        return uuid.UUID(json.loads(payload)["command_id"])
    except (ValueError, KeyError, TypeError):
        return None
