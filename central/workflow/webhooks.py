"""Outgoing webhooks: bodies a WeCom or DingTalk group robot accepts, HMAC-signed, retried with backoff.

Deliveries are rows written in the same transaction as the change they announce (an outbox);
``WebhookSender`` posts the due ones, and each attempt's result stays in the row (the delivery log).

Every ``serve`` process has a sender; only the holder of the ``webhooks`` lease
(``central.store.lease``) posts, the others wait and take over when it stops or its lease runs out.
A holder that stalls past its lease may overlap its successor on a delivery, so delivery is at
least once: ``X-Sharpeyes-Delivery`` (the row id) lets a receiver drop a repeat.

Signing: every request carries ``X-Sharpeyes-Timestamp`` (unix seconds) and
``X-Sharpeyes-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>``. DingTalk
robots with 加签 additionally get ``timestamp`` and ``sign`` query parameters computed the way
DingTalk checks them (base64 HMAC-SHA256 of ``timestamp + "\\n" + secret``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from broker.redact import redact
from central.store.clock import Clock
from central.store.lease import LeaderLease
from central.store.tables import WebhookDelivery
from central.workflow.config import WebhookConfig

log = logging.getLogger(__name__)

LEASE_NAME = "webhooks"
LEASE_TTL_S = 15.0  # a follower takes over this long after the sender's process dies
LEASE_RENEW_S = 5.0  # the sender polls twice a second but writes its lease this often

EVENT_TITLES = {
    "dispatched": "新派遣 New task",
    "returned": "退回 Returned",
    "checking": "待核查 To check",
    "rework": "返工 Rework",
    "escalated": "督办 Escalated",
}


def _text(facts: dict[str, Any]) -> str:
    lines = [
        f"### {EVENT_TITLES.get(facts['event'], facts['event'])} #{facts['incident_id']}",
        f"**{facts['title']}**",
        f"> 网格 grid: {facts.get('grid_cell') or '-'}",
        f"> 处置 assignee: {facts.get('unit') or facts.get('worker') or '-'}",
    ]
    if facts.get("deadline"):
        lines.append(f"> 时限 deadline: {facts['deadline']}")
    if facts.get("reason"):
        lines.append(f"> 原因 reason: {facts['reason']}")
    return "\n".join(lines)


def render(fmt: str, facts: dict[str, Any]) -> dict[str, Any]:
    """The JSON body for a hook's format; the facts ride along under ``sharpeyes`` (robots ignore it)."""
    if fmt == "wecom":
        return {"msgtype": "markdown", "markdown": {"content": _text(facts)}, "sharpeyes": facts}
    if fmt == "dingtalk":
        title = f"{EVENT_TITLES.get(facts['event'], facts['event'])} #{facts['incident_id']}"
        return {"msgtype": "markdown", "markdown": {"title": title, "text": _text(facts)}, "sharpeyes": facts}
    return {"sharpeyes": facts}


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def dingtalk_url(url: str, secret: str, timestamp_ms: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    sign = urllib.parse.quote_plus(base64.b64encode(digest))
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}timestamp={timestamp_ms}&sign={sign}"


def backoff(hook: WebhookConfig, attempts: int) -> float:
    return hook.backoff_s * (2 ** max(attempts - 1, 0))


class WebhookSender:
    """Posts due deliveries; one per ``serve`` process, working while it holds the lease."""

    def __init__(self, sessions: sessionmaker[Session], hooks: list[WebhookConfig], clock: Clock | None = None,
                 poll_s: float = 0.5, post: Callable[..., Any] | None = None,
                 lease: LeaderLease | None = None) -> None:
        self.sessions = sessions
        self.hooks = {h.name: h for h in hooks}
        self.clock = clock or Clock()
        self.poll_s = poll_s
        self._post = post
        self.lease = lease or LeaderLease(sessions, LEASE_NAME, LEASE_TTL_S, self.clock, renew_s=LEASE_RENEW_S)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Told of every attempt (hook, delivered, final): central's /metrics counts them.
        self.on_attempt: Callable[[str, bool, bool], None] | None = None

    def start(self) -> None:
        if not self.hooks:
            return
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.lease.release()

    def _run(self) -> None:
        import httpx

        with httpx.Client() as client:
            self._post = self._post or client.post
            while not self._stop.is_set():
                try:
                    self.send_due()
                except Exception:  # noqa: BLE001 - the sender must outlive a database hiccup
                    log.exception("webhook sender failed; retrying")
                self._stop.wait(self.poll_s)

    def send_due(self, limit: int = 20) -> int:
        now = self.clock.now()
        if self._stop.is_set() or not self.lease.acquire(now):  # stopped: the lease stays handed over
            return 0
        sent = 0
        with self.sessions() as session:
            due = list(session.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
                .order_by(WebhookDelivery.id).limit(limit)
            ))
            for row in due:
                if not self.lease.acquire():  # slow robots: renewed as due, and no post once lost
                    break
                self._attempt(row, now)
                session.commit()
                sent += 1
            return sent

    def _attempt(self, row: WebhookDelivery, now: datetime) -> None:
        hook = self.hooks.get(row.hook)
        if hook is None:
            row.status, row.last_error = "failed", "hook no longer configured"
            return
        body = row.body.encode()
        ts = str(int(time.time()))
        headers = {"Content-Type": "application/json; charset=utf-8", "X-Sharpeyes-Timestamp": ts,
                   "X-Sharpeyes-Event": row.event, "X-Sharpeyes-Delivery": str(row.id)}
        url = hook.url
        secret = hook.signing_secret()
        if secret:
            headers["X-Sharpeyes-Signature"] = signature(secret, ts, body)
            if hook.format == "dingtalk":
                url = dingtalk_url(url, secret, int(time.time() * 1000))
        row.attempts += 1
        try:
            assert self._post is not None
            response = self._post(url, content=body, headers=headers, timeout=hook.timeout_s)
            row.last_status = response.status_code
            ok = 200 <= response.status_code < 300 and _robot_ok(response)
            row.last_error = None if ok else redact(f"HTTP {response.status_code}: {response.text[:200]}")
        except Exception as exc:  # noqa: BLE001 - any transport failure is retried
            # httpx names the URL in its errors: a robot's key or signature must not be stored or logged.
            ok, row.last_error = False, redact(f"{type(exc).__name__}: {exc}")
        if self.on_attempt is not None:
            self.on_attempt(hook.name, ok, ok or row.attempts >= hook.max_attempts)
        if ok:
            row.status, row.delivered_at = "delivered", now
        elif row.attempts >= hook.max_attempts:
            row.status = "failed"
            log.warning("webhook %s delivery %s failed after %d attempts: %s", hook.name, row.id, row.attempts,
                        row.last_error)
        else:
            row.next_attempt_at = now + timedelta(seconds=backoff(hook, row.attempts))


def _robot_ok(response: Any) -> bool:
    # WeCom and DingTalk answer HTTP 200 with {"errcode": N} where N != 0 is a refusal.
    try:
        data = response.json()
    except Exception:  # noqa: BLE001 - not JSON: the status code decides
        return True
    return not (isinstance(data, dict) and data.get("errcode") not in (None, 0))
