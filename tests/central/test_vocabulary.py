"""The domain's words are the database's: a state, role or outcome the vocabulary lacks is refused
by the database itself, on SQLite and PostgreSQL."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError

from central.store.tables import Incident, User
from central.workflow import vocabulary
from tests.central.conftest import Store

NOW = datetime(2026, 12, 5, tzinfo=UTC)


def test_the_migration_enforces_exactly_the_vocabulary() -> None:
    migration = importlib.import_module("central.store.migrations.versions.0008_vocabulary_checks")
    assert {(t, c): tuple(w) for t, c, w, _ in vocabulary.CONSTRAINED} == {
        key: tuple(words) for key, words in migration.WORDS.items()}


def _incident(**extra: object) -> dict[str, object]:
    return dict(incident_key="k-voc", hazard="fire_lane_blocked", site="demo", state="received", condition="active",
                started_at=NOW, last_observed_at=NOW, created_at=NOW, updated_at=NOW, **extra)


@pytest.mark.parametrize(("column", "word"), [("state", "resolved"), ("close_reason", "bored"), ("condition", "maybe")])
def test_a_word_outside_the_vocabulary_is_refused_on_insert_and_update(store: Store, column: str, word: str) -> None:
    with store.sessions() as s:
        with pytest.raises(IntegrityError):
            s.execute(insert(Incident).values(**{**_incident(), column: word}))
        s.rollback()
        s.execute(insert(Incident).values(**_incident(close_reason=None)))
        s.commit()
        with pytest.raises(IntegrityError):
            s.execute(update(Incident).where(Incident.incident_key == "k-voc").values(**{column: word}))
        s.rollback()
        s.execute(update(Incident).where(Incident.incident_key == "k-voc").values(state=vocabulary.State.CLOSED,
                                                                               close_reason=vocabulary.CloseReason.FIXED))
        s.commit()


def test_a_role_outside_the_vocabulary_is_refused(store: Store) -> None:
    with store.sessions() as s:
        s.execute(insert(User).values(username="ok", password_hash="h", role=vocabulary.Role.MONITOR))
        s.commit()
        with pytest.raises(IntegrityError, match="role"):
            s.execute(insert(User).values(username="x", password_hash="h", role="superuser"))


def test_the_site_file_and_the_workflow_speak_the_same_words() -> None:
    from typing import get_args

    from broker.siteconfig import UserConfig
    from central.workflow.handlers import CLOSE_REASONS
    from central.workflow.rules import ACTIONS, STATES, SYSTEM_STEPS

    assert set(get_args(UserConfig.model_fields["role"].annotation)) == set(vocabulary.Role)
    assert set(STATES) == set(vocabulary.State) and set(CLOSE_REASONS) == set(vocabulary.CloseReason)
    assert set(ACTIONS) | set(SYSTEM_STEPS) == set(vocabulary.Action)
    for transition in [*ACTIONS.values(), *SYSTEM_STEPS.values()]:
        assert transition.sources <= set(vocabulary.State)
        assert transition.target is None or transition.target in set(vocabulary.State)
