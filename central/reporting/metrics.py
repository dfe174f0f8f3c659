"""Central's Prometheus metrics (``GET /metrics``): what an operator's Prometheus needs to see that
ingest keeps up and nothing is refused or stuck. Counters live in a registry of the central's own
(a test process may run several centrals); database figures are read at scrape time.

Ingest: messages by what became of them, dead letters by a bounded reason class, ingest lag (the
edge's ``observed_at`` to the commit here), batch commit time and size, the backlog between the
broker session and the writer. Workflow: webhook deliveries and failures, scheduler ticks. Edges:
seconds since each edge was last heard from, and whether it says it is online.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import select

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker


class Outcome(Protocol):
    """What the metrics read of an ingest outcome (central.ingest.service.model.Outcome); a protocol, so that
    reporting does not import the ingest that reports to it."""

    @property
    def kind(self) -> str: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def observed_at(self) -> datetime | None: ...


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Dead-letter reasons are free text (they name ids and keys); the label is a class of them, so that
# a misbehaving edge cannot blow up the number of series.
_REASON_CLASSES = (
    ("not JSON", "not_json"),
    ("payload is not a JSON object", "not_json"),
    ("unknown schema", "unknown_schema"),
    ("unknown topic", "unknown_topic"),
    ("unknown site", "unknown_origin"),
    ("unknown edge", "unknown_origin"),
    ("unknown camera", "unknown_origin"),
    ("payload names", "wrong_origin"),
    ("incident_key", "key_conflict"),
    ("sha256 mismatch", "sha256_mismatch"),
    ("central could not process it", "central_error"),
    ("could not store", "central_error"),
)
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600)


def reason_class(reason: str | None) -> str:
    text = reason or ""
    for prefix, name in _REASON_CLASSES:
        if text.startswith(prefix) or f" {prefix}" in text[:80]:
            return name
    return "invalid_payload"  # a field that does not follow the contract (pydantic's "loc: msg")


class CentralMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages = Counter("sharpeyes_central_messages", "MQTT messages ingested, by what became of them",
                                ["kind"], registry=r)
        self.dead_letters = Counter("sharpeyes_central_dead_letters", "Messages kept as dead letters, by reason class",
                                    ["reason"], registry=r)
        self.ingest_lag = Histogram("sharpeyes_central_ingest_lag_seconds",
                                    "From the edge's observed_at to the commit here (events)", buckets=LAG_BUCKETS,
                                    registry=r)
        self.batch_seconds = Histogram("sharpeyes_central_batch_commit_seconds", "Storing and committing one batch",
                                       registry=r)
        self.batch_size = Histogram("sharpeyes_central_batch_messages", "Messages per committed batch",
                                    buckets=(1, 2, 5, 10, 50, 100, 250, 500), registry=r)
        self.store_failures = Counter("sharpeyes_central_store_failures",
                                      "Batches the database refused (redelivered after reconnecting)", registry=r)
        self.webhooks = Counter("sharpeyes_central_webhook_attempts", "Webhook delivery attempts by hook and result",
                                ["hook", "result"], registry=r)
        self.scheduler_ticks = Counter("sharpeyes_central_scheduler_ticks", "Deadline scheduler ticks, by role",
                                       ["role"], registry=r)
        self.backlog = Gauge("sharpeyes_central_ingest_backlog",
                             "Messages received from the broker and not yet committed", registry=r)
        self.backlog.set_function(lambda: 0.0)

    def follow_backlog(self, read: Callable[[], int]) -> None:
        self.backlog.set_function(lambda: float(read()))

    def follow_edges(self, sessions: sessionmaker[Session]) -> None:
        self.registry.register(_EdgeCollector(sessions))

    def batch_stored(self, outcomes: Iterable[Outcome], seconds: float, now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        count = 0
        for outcome in outcomes:
            count += 1
            self.messages.labels(outcome.kind).inc()
            if outcome.kind == "dead_letter":
                self.dead_letters.labels(reason_class(outcome.reason)).inc()
            elif outcome.kind == "event" and outcome.observed_at is not None:
                self.ingest_lag.observe(max(0.0, (now - outcome.observed_at).total_seconds()))
        self.batch_seconds.observe(seconds)
        self.batch_size.observe(count)

    def webhook_attempt(self, hook: str, ok: bool, final: bool) -> None:
        self.webhooks.labels(hook, "delivered" if ok else "failed" if final else "retry").inc()

    def scheduler_tick(self, leader: bool) -> None:
        self.scheduler_ticks.labels("leader" if leader else "standby").inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _EdgeCollector:
    """Per edge, read from the database at scrape time (any central worker may have stored it)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[Metric]:
        from central.store.tables import EdgeStatusRow

        seen = GaugeMetricFamily("sharpeyes_central_edge_last_seen_seconds",
                                 "Seconds since the edge's last status message reached central", labels=["site", "edge"])
        online = GaugeMetricFamily("sharpeyes_central_edge_online", "1 while the edge's retained status says online",
                                   labels=["site", "edge"])
        problems = GaugeMetricFamily("sharpeyes_central_edge_problems",
                                     "Problems the edge's heartbeat reports (outbox, broker, actuators)",
                                     labels=["site", "edge"])
        now = datetime.now(UTC)
        started = time.monotonic()
        with self.sessions() as session:
            for row in session.scalars(select(EdgeStatusRow)):
                labels = [row.site, row.edge]
                seen.add_metric(labels, max(0.0, (now - row.received_at).total_seconds()))
                online.add_metric(labels, 1.0 if row.state == "online" else 0.0)
                problems.add_metric(labels, float(len(row.problems or [])))
        yield from (seen, online, problems)
        yield GaugeMetricFamily("sharpeyes_central_metrics_query_seconds", "Time the scrape spent in the database",
                                value=time.monotonic() - started)
