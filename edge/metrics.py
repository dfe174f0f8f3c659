"""Prometheus metrics of an edge node, read from the node's own counters at scrape time
(no second set of books to keep in step)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily

from edge.actuators.hub import ActuatorHub
from edge.camera_figures import CameraSnapshot
from edge.outbox import Outbox
from edge.publisher import OutboxPublisher

HEALTH_STATES = ("online", "offline", "tampered")


class MetricsSource(Protocol):
    """What /metrics reads from the node (``EdgeNode``) at each scrape; the node imports this
    module, not the other way round."""

    @property
    def outbox(self) -> Outbox: ...

    @property
    def publisher(self) -> OutboxPublisher: ...

    @property
    def event_counts(self) -> Counter[tuple[str, str]]: ...

    @property
    def actuators(self) -> ActuatorHub | None: ...

    def camera_snapshots(self, now: float) -> list[CameraSnapshot]: ...


class EdgeCollector:
    def __init__(self, node: MetricsSource) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        labels = ["camera"]
        frames_in = CounterMetricFamily("sharpeyes_edge_frames_in", "Encoded frames received", labels=labels)
        decoded = CounterMetricFamily("sharpeyes_edge_frames_decoded", "Frames decoded", labels=labels)
        samples = CounterMetricFamily("sharpeyes_edge_samples", "Frames sampled for the rules", labels=labels)
        detected = CounterMetricFamily("sharpeyes_edge_samples_detected", "Samples the detector ran on", labels=labels)
        gated = CounterMetricFamily("sharpeyes_edge_samples_gated",
                                    "Samples the scene gate answered with the last detections (zones unchanged)", labels=labels)
        cadence = GaugeMetricFamily("sharpeyes_edge_detect_fps", "Detect cadence achieved (samples/s since start)", labels=labels)
        decode_s = CounterMetricFamily("sharpeyes_edge_decode_seconds", "Time spent decoding", labels=labels)
        infer_s = CounterMetricFamily("sharpeyes_edge_inference_seconds", "Time spent in the detector", labels=labels)
        reconnects = CounterMetricFamily("sharpeyes_edge_reconnects", "Stream reconnects", labels=labels)
        health = GaugeMetricFamily("sharpeyes_edge_camera_health", "1 for the camera's current state", labels=["camera", "state"])
        for snap in self.node.camera_snapshots(time.monotonic()):
            cam = [snap.camera]
            frames_in.add_metric(cam, snap.frames_in)
            decoded.add_metric(cam, snap.frames_decoded)
            samples.add_metric(cam, snap.samples)
            detected.add_metric(cam, snap.detected)
            gated.add_metric(cam, snap.gated)
            cadence.add_metric(cam, snap.detect_fps)
            decode_s.add_metric(cam, snap.decode_seconds)
            infer_s.add_metric(cam, snap.inference_seconds)
            reconnects.add_metric(cam, snap.reconnects)
            for state in HEALTH_STATES:
                health.add_metric([snap.camera, state], 1.0 if state == snap.state else 0.0)
        yield from (frames_in, decoded, samples, detected, gated, cadence, decode_s, infer_s, reconnects, health)

        messages, size = self.node.outbox.depth()
        yield GaugeMetricFamily("sharpeyes_edge_outbox_messages", "Messages waiting in the outbox", value=messages)
        yield GaugeMetricFamily("sharpeyes_edge_outbox_bytes", "Bytes waiting in the outbox", value=size)
        dropped = CounterMetricFamily("sharpeyes_edge_outbox_dropped",
                                      "Messages the outbox policy dropped (bound, age or full disk), by kind", labels=["kind"])
        for kind, count in self.node.outbox.dropped.items():
            dropped.add_metric([kind], count)
        yield dropped
        events = CounterMetricFamily("sharpeyes_edge_events", "Hazard events written to the outbox", labels=["hazard", "phase"])
        for (hazard, phase), count in sorted(Counter(self.node.event_counts).items()):
            events.add_metric([hazard, phase], count)
        yield events
        yield GaugeMetricFamily("sharpeyes_edge_broker_connected", "1 while connected to the broker",
                                value=float(self.node.publisher.connected))
        publisher = self.node.publisher
        yield GaugeMetricFamily("sharpeyes_edge_publish_healthy",
                                "0 while the broker refuses this edge's messages (see the log or heartbeat for why)",
                                value=float(publisher.healthy))
        yield CounterMetricFamily("sharpeyes_edge_publish_refused", "PUBACKs that refused a message (kept, resent)",
                                  value=float(publisher.refused))
        yield GaugeMetricFamily("sharpeyes_edge_outbox_awaiting_receipt", "Messages the broker has and central has not receipted",
                                value=float(self.node.outbox.awaiting_receipt()))
        yield CounterMetricFamily("sharpeyes_edge_receipt_resends", "Resends for want of central's receipt",
                                  value=float(publisher.resends))
        yield GaugeMetricFamily("sharpeyes_edge_outbox_disk_full", "1 while the outbox's disk (or file cap) is full",
                                value=float(self.node.outbox.disk_full))
        yield GaugeMetricFamily("sharpeyes_edge_outbox_dead_letters",
                                "Messages refused too often, kept for `sharpeyes edge outbox --retry`",
                                value=float(self.node.outbox.dead_letter_count()))
        if self.node.actuators is not None:
            yield from self._actuators(self.node.actuators)

    @staticmethod
    def _actuators(hub: ActuatorHub) -> Iterator[Metric]:
        holds = CounterMetricFamily("sharpeyes_edge_actuator_holds", "Holds acknowledged by the device, per zone",
                                    labels=["actuator", "camera", "zone"])
        failures = CounterMetricFamily("sharpeyes_edge_actuator_failures", "Commands the device did not acknowledge",
                                       labels=["actuator"])
        held = GaugeMetricFamily("sharpeyes_edge_actuator_held", "1 while the actuator holds for some zone",
                                 labels=["actuator"])
        durations = SummaryMetricFamily("sharpeyes_edge_actuator_hold_seconds", "How long holds lasted (released ones)",
                                        labels=["actuator"])
        for actuator, runner in sorted(dict(hub.runners).items()):
            counts = runner.counts
            for (camera, zone), n in sorted(counts.per_zone.items()):
                holds.add_metric([actuator, camera, zone], n)
            failures.add_metric([actuator], counts.failures)
            held.add_metric([actuator], float(bool(runner.book.holds)))
            durations.add_metric([actuator], count_value=counts.released, sum_value=counts.held_seconds)
        yield from (holds, failures, held, durations)


def serve_metrics(node: MetricsSource, host: str, port: int) -> int:
    """Start the /metrics HTTP endpoint in a daemon thread; returns the bound port."""
    registry = CollectorRegistry()
    registry.register(EdgeCollector(node))
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server.server_address[1]
