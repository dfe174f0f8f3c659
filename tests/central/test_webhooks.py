"""Webhooks against a real local HTTP receiver: HMAC signature, WeCom/DingTalk bodies, retries
with backoff, the delivery log, and giving up after the configured attempts."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from broker.payloads import HazardKind
from broker.topics import event_topic
from central.store.tables import WebhookDelivery
from tests.central.conftest import make_workflow
from tests.central.factories import EDGE, SITE, event, wire

SECRET = "hook-secret"


class Receiver:
    """Answers 500 to the first ``fail_first`` requests, then 200 (or a robot's errcode body)."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((self.path, dict(self.headers), body))
                failing = len(receiver.requests) <= receiver.fail_first
                self.send_response(500 if failing else 200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"errcode": 0, "errmsg": "ok"}' if not failing else b"busy")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/robot/send?key=abc"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=2)
    yield r
    r.close()


def _dispatch_one(wf) -> int:  # type: ignore[no-untyped-def]
    # An e-bike over the auto-register score is dispatched at once: the "dispatched" notification.
    outcome = wf.ingest(event_topic(SITE, EDGE), wire(event("k-hook", score=0.9, camera="elevator-1", zone="car",
                                                            hazard=HazardKind.EBIKE_INDOOR)))
    return outcome.incident_id


def test_wecom_hook_is_signed_retried_with_backoff_and_logged(database_url: str, tmp_path: Path,
                                                             receiver: Receiver) -> None:
    hook = {"name": "wecom-duty", "url": receiver.url, "format": "wecom", "secret": SECRET, "backoff_s": 2,
            "max_attempts": 5, "events": ["dispatched"]}
    runs = make_workflow(database_url, tmp_path, webhooks=[hook])
    wf = next(runs)
    iid = _dispatch_one(wf)
    sender = wf.central.webhooks
    import httpx

    with httpx.Client() as http:
        sender._post = http.post
        assert sender.send_due() == 1  # attempt 1: HTTP 500
        assert sender.send_due() == 0  # not due before the backoff
        wf.clock.advance(2)
        assert sender.send_due() == 1  # attempt 2: 500 again, next in 4 s
        wf.clock.advance(3)
        assert sender.send_due() == 0
        wf.clock.advance(1)
        assert sender.send_due() == 1  # attempt 3: delivered
    log = wf.get("admin", "/api/v1/webhooks/deliveries").json()
    assert [(d["hook"], d["event"], d["status"], d["attempts"], d["last_status"]) for d in log] == [
        ("wecom-duty", "dispatched", "delivered", 3, 200)]
    assert len(receiver.requests) == 3
    path, headers, body = receiver.requests[-1]
    assert path == "/robot/send?key=abc"
    sent = json.loads(body)
    assert sent["msgtype"] == "markdown" and f"#{iid}" in sent["markdown"]["content"]
    assert sent["sharpeyes"]["incident_id"] == iid and sent["sharpeyes"]["worker"] == "li-qiang"
    expected = hmac.new(SECRET.encode(), headers["X-Sharpeyes-Timestamp"].encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    assert headers["X-Sharpeyes-Signature"] == f"sha256={expected}"
    # The same delivery id on every attempt lets a receiver drop repeats.
    assert len({h["X-Sharpeyes-Delivery"] for _, h, _ in receiver.requests}) == 1
    next(runs, None)


def test_hook_gives_up_after_max_attempts_and_dingtalk_gets_its_signature(database_url: str, tmp_path: Path) -> None:
    down = Receiver(fail_first=100)
    hook = {"name": "ding", "url": down.url, "format": "dingtalk", "secret": SECRET, "backoff_s": 1,
            "max_attempts": 3, "events": ["dispatched"]}
    runs = make_workflow(database_url, tmp_path, webhooks=[hook])
    wf = next(runs)
    try:
        _dispatch_one(wf)
        import httpx

        with httpx.Client() as http:
            wf.central.webhooks._post = http.post
            for _ in range(5):
                wf.central.webhooks.send_due()
                wf.clock.advance(10)
        with wf.central.ctx.sessions() as s:
            row = s.scalars(select(WebhookDelivery)).one()
            assert (row.status, row.attempts, row.last_status) == ("failed", 3, 500)
        assert len(down.requests) == 3
        query = parse_qs(urlsplit(down.requests[0][0]).query)
        assert set(query) == {"key", "timestamp", "sign"}
        body = json.loads(down.requests[0][2])
        assert body["msgtype"] == "markdown" and body["markdown"]["title"].startswith("新派遣")
    finally:
        down.close()
        next(runs, None)
