"""Group commit bounded by latency: the ingest's writer takes a batch when it is full or when its
oldest message has waited the window since it was received, whichever comes first. The receiving
process is stood in for by putting messages on the writer's inbox as its pipe reader does (the
live ingest tests run the real one)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from broker.connectionconfig import BrokerConfig
from central.evidence.store import EvidenceStore
from central.ingest.pipe import Received
from central.ingest.writer import BATCH_MAX, IngestDeps, MqttIngest
from central.store.changes import ChangeFeed
from central.workflow.routing import GridRouter


def _writer(tmp_path, window_s: float) -> MqttIngest:  # noqa: ANN001
    deps = IngestDeps(sessions=None, evidence=EvidenceStore(tmp_path), router=GridRouter(None),  # type: ignore[arg-type]
                      feed=ChangeFeed())
    return MqttIngest(BrokerConfig(host="127.0.0.1", port=1), deps, "t", batch_window_s=window_s)


def _message(n: int, received_at: datetime | None = None) -> list[Received]:
    return [Received((1, 1), n, 1, "sharpeyes/v1/demo/edge-1/event", b"{}", received_at or datetime.now(UTC))]


def test_a_trickle_is_grouped_until_the_window_closes(tmp_path) -> None:  # noqa: ANN001
    writer = _writer(tmp_path, window_s=0.2)

    def trickle() -> None:
        for n in range(1, 40):
            writer._inbox.put(_message(n))
            time.sleep(0.01)

    writer._inbox.put(_message(0))
    feeder = threading.Thread(target=trickle)
    started = time.monotonic()
    feeder.start()
    batch = writer._next_batch()
    took = time.monotonic() - started
    feeder.join()
    assert batch is not None
    # About 0.2 s worth of a message every 10 ms: many in one commit, and no more than the window waited.
    assert 5 <= len(batch) < 40
    assert 0.15 <= took < 0.6


def test_a_message_that_waited_the_window_already_is_taken_at_once(tmp_path) -> None:  # noqa: ANN001
    writer = _writer(tmp_path, window_s=0.5)
    writer._inbox.put(_message(0, datetime.now(UTC) - timedelta(seconds=1)))
    writer._inbox.put(_message(1))
    started = time.monotonic()
    batch = writer._next_batch()
    assert batch is not None and len(batch) == 2  # what was queued comes along
    assert time.monotonic() - started < 0.1


def test_a_full_batch_never_waits_and_a_burst_is_cut_at_the_maximum(tmp_path) -> None:  # noqa: ANN001
    writer = _writer(tmp_path, window_s=5.0)
    for n in range(BATCH_MAX + 20):
        writer._inbox.put(_message(n))
    started = time.monotonic()
    first, second = writer._next_batch(), None
    assert time.monotonic() - started < 0.5
    assert first is not None and len(first) == BATCH_MAX
    writer.batch_window_s = 0.0  # without a window: what is queued, at once
    second = writer._next_batch()
    assert second is not None and len(second) == 20
