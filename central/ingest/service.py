"""Turn MQTT messages into rows: events, incidents, evidence, actuations, edge and camera health.

Pure of MQTT: ``IngestService.handle_batch(items)`` is all the transport calls, and it commits
before returning, so the caller may acknowledge the messages afterwards. One message is a batch of
one; every batch takes the same four stages:

1. parse (``central.ingest.parse``): topic, schema, origin and evidence hash, per message;
2. read (``central.ingest.view``): what the store holds about what the batch names, set-wise;
3. plan (``central.ingest.plan``, pure): dedup, fold, merge, link, workflow steps, dead letters;
4. apply (``central.ingest.apply``): Core statements and the workflow's steps, then one commit.
"""

from __future__ import annotations

import logging
import random
import time
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from central.evidence.store import EvidenceBackend, StoredBlob
from central.ingest.apply import FoldConflict, apply_changes, begin_numbering, dead_letter_row, end_numbering
from central.ingest.model import Outcome
from central.ingest.parse import BlobIn, parse_batch
from central.ingest.plan import Rules, plan_batch
from central.ingest.view import read_view
from central.store.tables import DeadLetter, table_of, utcnow
from central.workflow import audit
from central.workflow.engine import WorkflowEngine
from central.workflow.routing import GridRouter

__all__ = ["IngestService", "Outcome"]

log = logging.getLogger(__name__)

Item = tuple[str, bytes | StoredBlob, datetime]

# A batch that collides with another worker's (the same event, incident or blob stored, or the
# same incident folded, meanwhile) is stored again from a fresh read this many times in all, then
# message by message, each message up to ALONE_TRIES times. A collision needs two workers writing
# the same rows in the same few milliseconds; three in a row would need a hot spot.
BATCH_TRIES = 3
ALONE_TRIES = 5
# SQLSTATEs of a transaction PostgreSQL aborted for another's sake (deadlock, serialization).
_CONCURRENT_SQLSTATES = {"40P01", "40001"}


def _concurrent(exc: Exception) -> bool:
    """Whether a database error is a collision with another transaction (worth another try),
    not an outage."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in _CONCURRENT_SQLSTATES


def _pause(attempt: int) -> None:
    """A short random wait before trying again, so that two colliding workers do not collide again."""
    time.sleep(random.uniform(0, 0.005 * attempt))


class IngestService:
    def __init__(self, session: Session, evidence: EvidenceBackend, router: GridRouter | None = None,
                 workflow: WorkflowEngine | None = None) -> None:
        self.session = session
        self.evidence = evidence
        self.router = router or GridRouter(None)
        self.workflow = workflow or self.router.default_engine()

    def handle(self, topic: str, payload: bytes | StoredBlob, received_at: datetime | None = None) -> Outcome:
        """Store what one message says (or dead-letter it) and commit: a batch of one. Only database
        outages raise."""
        return self.handle_batch([(topic, payload, received_at or utcnow())])[0]

    def handle_batch(self, items: list[Item]) -> list[Outcome]:
        """Store messages in one transaction (refused ones as dead letters with their reason); the
        caller acknowledges them all after it returns.

        Another central worker may store the same event, incident or blob meanwhile, or fold events
        of the same incident (a shared subscription gives an episode's start, update and end to
        different workers): the transaction is rolled back and the batch stored again from a fresh
        read, up to BATCH_TRIES times. Should it still fail (or fail for another reason: a bug),
        each message is stored on its own, so one message never costs the others. Database
        outages raise.
        """
        for attempt in range(1, BATCH_TRIES + 1):
            try:
                return self._store(items)
            except (OperationalError, InterfaceError) as exc:
                if not _concurrent(exc) or attempt == BATCH_TRIES:
                    raise
            except (IntegrityError, FoldConflict):
                if attempt == BATCH_TRIES:
                    break
            except Exception:  # noqa: BLE001 - a bug: settle each message alone
                break
            _pause(attempt)
        if len(items) == 1:
            return [self._store_alone(items[0], first_failed=True)]
        return [self._store_alone(item) for item in items]

    def _store(self, items: list[Item]) -> list[Outcome]:
        """Every message of ITEMS in one transaction, committed; rolled back and raised on any failure."""
        session = self.session
        try:
            audit.defer(session)
            begin_numbering(session)
            messages = parse_batch(self.router, self.evidence, items)
            now = self.workflow.clock.now()
            window = self.workflow.config.merge_window_s
            view = read_view(session, messages, window, self.workflow.silences(session, now))
            changes = plan_batch(messages, view, Rules(self.router.route, window, now))
            apply_changes(session, changes, self.workflow, self.evidence)
            for message in changes.dead_letters:
                log.warning("dead letter on %s: %s", message.topic, message.refusal)
            # The evidence bytes are durable before the rows naming them are committed.
            if any(isinstance(m.body, BlobIn) for m in messages):
                self.evidence.sync_deferred()
            session.commit()
            return changes.outcomes
        except BaseException:
            session.rollback()
            raise
        finally:
            end_numbering(session)

    def _store_alone(self, item: Item, first_failed: bool = False) -> Outcome:
        """One message in its own transaction; a failure becomes a dead letter with its reason."""
        topic, payload, received_at = item
        for attempt in range(2 if first_failed else 1, ALONE_TRIES + 1):  # handle_batch tried it alone
            try:
                return self._store([item])[0]
            except (OperationalError, InterfaceError) as exc:
                # The database is unreachable: the caller must not acknowledge the message. A
                # deadlock with another worker is tried again instead.
                if not _concurrent(exc) or attempt == ALONE_TRIES:
                    raise
            except IntegrityError as exc:
                # Another central worker stored the same event, incident or blob meanwhile; the next
                # pass sees its row and merges into it.
                if attempt == ALONE_TRIES:
                    return self._dead_letter(topic, payload, f"could not store: {exc.orig}", received_at)
            except FoldConflict as exc:
                # Another worker folded an event into the same incident meanwhile: fold again on its row.
                if attempt == ALONE_TRIES:
                    return self._dead_letter(topic, payload, f"could not store: {exc}", received_at)
            except Exception as exc:  # noqa: BLE001 - keep the payload rather than crash the ingest
                log.exception("ingest failed on %s", topic)
                return self._dead_letter(
                    topic, payload, f"central could not process it: {type(exc).__name__}: {exc}", received_at)
            _pause(attempt)
        raise AssertionError("unreachable")

    def _dead_letter(self, topic: str, payload: bytes | StoredBlob, reason: str, received_at: datetime) -> Outcome:
        log.warning("dead letter on %s: %s", topic, reason)
        self.session.execute(insert(table_of(DeadLetter)),
                             [dead_letter_row(self.evidence, topic, payload, reason, received_at)])
        self.session.commit()
        return Outcome("dead_letter", reason=reason)
