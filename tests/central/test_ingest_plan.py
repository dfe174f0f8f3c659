"""The ingest's planner on plain data: no database, no broker. What a batch of messages becomes
(incidents folded, duplicates, refusals, merged episodes, evidence links, workflow steps), given
what the store held."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from broker.payloads import EdgeStatus, Phase
from broker.topics import event_topic, evidence_topic, status_topic
from central.evidence.store import StoredBlob, sniff_content_type
from central.ingest.model import Created, Episode, FoldedIncident, MaybeRegister, StoreView
from central.ingest.parse import Message, parse_message
from central.ingest.plan import Rules, plan_batch
from central.workflow.routing import GridRouter
from tests.central.factories import EDGE, SITE, T0, event, jpeg_bytes, sha, wire

ROUTER = GridRouter(None)
NOW = T0 + timedelta(minutes=5)


def _messages(*items: tuple[str, bytes | StoredBlob]) -> list[Message]:
    return [parse_message(ROUTER, topic, payload, NOW) for topic, payload in items]


def _event(ev) -> tuple[str, bytes]:  # noqa: ANN001
    return (event_topic(SITE, EDGE), wire(ev))


def _blob(data: bytes) -> tuple[str, StoredBlob]:
    # As the receiving process hands it over: checked and written already.
    return (evidence_topic(SITE, EDGE, sha(data)), StoredBlob(sha(data), len(data), sniff_content_type(data)))


def _plan(view: StoreView, *items: tuple[str, bytes | StoredBlob], window_s: float = 600.0):  # noqa: ANN202
    if window_s > 0 and view.open_at is None:
        view.open_at = {}
    return plan_batch(_messages(*items), view, Rules(ROUTER.route, window_s, NOW))


def _stored(key: str, *, camera: str = "street-north", zone: str = "kerb-lane", state: str = "dispatched",
            last_s: float = 60.0, ended_s: float | None = None, incident_id: int = 7) -> FoldedIncident:
    return FoldedIncident(incident_key=key, site=SITE, edge=EDGE, camera=camera, hazard="fire_lane_blocked", zone=zone,
                          state=state, condition="cleared" if ended_s is not None else "active", started_at=T0,
                          last_observed_at=T0 + timedelta(seconds=last_s),
                          ended_at=T0 + timedelta(seconds=ended_s) if ended_s is not None else None, max_score=0.8,
                          event_count=3, latest_snapshot_sha256=None, episode_count=1, id=incident_id)


def test_a_batch_folds_an_episode_into_one_new_incident_with_its_steps_in_order() -> None:
    start, update, end = (event("k1", Phase.START, score=0.5), event("k1", Phase.UPDATE, seq=2, score=0.9,
                                                                      observed_after_s=10),
                          event("k1", Phase.END, seq=3, score=0.6, observed_after_s=20))
    changes = _plan(StoreView(), _event(start), _event(update), _event(end))
    [incident] = changes.new_incidents
    assert (incident.event_count, incident.max_score, incident.condition) == (3, 0.9, "cleared")
    assert incident.ended_at == end.observed_at
    assert [type(s) for s in changes.steps] == [Created, MaybeRegister, MaybeRegister]
    # The workflow sees the score as each message brought it, not the batch's best.
    assert [s.score for s in changes.steps] == [0.5, 0.9, 0.9]  # type: ignore[union-attr]
    assert [o.kind for o in changes.outcomes] == ["event"] * 3
    assert changes.outcomes[0].created_incident and not changes.outcomes[1].created_incident
    assert len(changes.events) == 3 and not changes.dead_letters


def test_a_known_event_is_a_duplicate_and_a_stolen_key_is_refused_without_costing_the_others() -> None:
    mine = event("k1")
    view = StoreView(known_events={str(mine.event_id)}, incidents={"k1": _stored("k1")})
    thief = event("k1", camera="elevator-1", zone="car", seq=2)
    fine = event("k1", Phase.UPDATE, seq=3, observed_after_s=90, score=0.95)
    changes = _plan(view, _event(mine), _event(thief), _event(fine))
    assert [o.kind for o in changes.outcomes] == ["duplicate", "dead_letter", "event"]
    assert "already belongs to demo/edge-1/street-north/fire_lane_blocked" in (changes.outcomes[1].reason or "")
    assert [m.body for m in changes.dead_letters] == [thief]
    [incident] = changes.changed_incidents
    assert (incident.event_count, incident.max_score) == (4, 0.95)
    assert incident.last_observed_at == fine.observed_at and not changes.new_incidents


def test_a_new_episode_at_an_open_incidents_place_merges_into_it() -> None:
    open_one = _stored("k-old", ended_s=60.0)
    view = StoreView(incidents={}, open_at={open_one.place: [open_one]})
    again = event("k-new", started_at=T0 + timedelta(seconds=200))
    changes = _plan(view, _event(again), _event(event("k-new", Phase.UPDATE, seq=2, started_at=again.started_at,
                                                      observed_after_s=5)))
    assert not changes.new_incidents
    assert [(key, i.incident_key) for key, i in changes.aliases] == [("k-new", "k-old")]
    assert (open_one.episode_count, open_one.condition, open_one.ended_at) == (2, "active", None)
    assert [type(s) for s in changes.steps] == [Episode]
    assert changes.changed_incidents == [open_one] and len(changes.events) == 2


def test_outside_the_merge_window_or_with_merging_off_a_new_incident_opens() -> None:
    old = _stored("k-old", last_s=0.0)
    late = event("k-new", started_at=T0 + timedelta(seconds=3600))
    assert len(_plan(StoreView(open_at={old.place: [old]}), _event(late)).new_incidents) == 1
    near = event("k-new2", started_at=T0 + timedelta(seconds=30))
    assert len(_plan(StoreView(open_at={old.place: [old]}), _event(near), window_s=0).new_incidents) == 1


@dataclass
class _Silence:
    site: str | None
    camera: str | None
    zone: str | None
    hazard: str | None
    until: datetime


def test_a_silenced_new_incident_is_no_merge_target_for_the_next_episode() -> None:
    silence = _Silence(None, "street-north", None, None, NOW + timedelta(hours=1))
    first, second = event("k1"), event("k2", started_at=T0 + timedelta(seconds=30))
    changes = _plan(StoreView(silences=[silence]), _event(first), _event(second))
    assert [i.incident_key for i in changes.new_incidents] == ["k1", "k2"] and not changes.aliases
    unsilenced = _plan(StoreView(), _event(event("k3")), _event(event("k4", started_at=T0 + timedelta(seconds=30))))
    assert [i.incident_key for i in unsilenced.new_incidents] == ["k3"]
    assert [key for key, _ in unsilenced.aliases] == ["k4"]


def test_evidence_before_or_after_its_event_gets_a_row_of_the_declared_type_and_one_link() -> None:
    photo = jpeg_bytes("plan-photo")
    ev = event("k1", snapshot=photo)
    for items in ([_blob(photo), _event(ev)], [_event(ev), _blob(photo)]):
        changes = _plan(StoreView(), *items)
        [incident] = changes.new_incidents
        assert [(b["sha256"], b["content_type"]) for b in changes.blobs] == [(sha(photo), "image/jpeg")]
        assert changes.links == [(incident, sha(photo))]
        blob_outcome = next(o for o in changes.outcomes if o.kind == "evidence")
        assert (blob_outcome, incident) in changes.incident_of
    # Stored already and linked already: a duplicate, and nothing to insert.
    view = StoreView(blobs={sha(photo): "image/jpeg"}, ref_incidents={sha(photo): [7]}, linked={(7, sha(photo))})
    changes = _plan(view, _blob(photo))
    assert [o.kind for o in changes.outcomes] == ["evidence_duplicate"]
    assert not changes.blobs and not changes.links and changes.incident_of[0][1] == 7


def test_an_older_edge_status_never_overwrites_newer_news() -> None:
    def status(at_s: float, state: str) -> tuple[str, bytes]:
        payload = EdgeStatus(site=SITE, edge=EDGE, state=state, at=T0 + timedelta(seconds=at_s), version="1",
                             cameras=[])
        return (status_topic(SITE, EDGE), payload.model_dump_json(by_alias=True).encode())

    view = StoreView(statuses={(SITE, EDGE): T0 + timedelta(seconds=100)})
    changes = _plan(view, status(50, "offline"), status(150, "online"), status(120, "offline"))
    assert [o.kind for o in changes.outcomes] == ["ignored", "status", "ignored"]
    assert changes.statuses[(SITE, EDGE)]["state"] == "online"


def test_a_malformed_message_is_refused_with_its_reason_and_the_rest_are_planned() -> None:
    good = event("k1")
    changes = _plan(StoreView(), (event_topic(SITE, EDGE), b'{"schema": "sharpeyes.event/1"'), _event(good),
                    ("sharpeyes/v1/demo/edge-1/nonsense", b"{}"))
    assert [o.kind for o in changes.outcomes] == ["dead_letter", "event", "dead_letter"]
    assert "unknown topic" in (changes.outcomes[2].reason or "")
    assert len(changes.new_incidents) == 1 and len(changes.dead_letters) == 2


def test_in_whatever_order_an_episode_arrives_its_incident_shows_the_newest_snapshot() -> None:
    """Workers on a shared subscription store an episode's events in any order: the end (no
    snapshot) first must not let the older start's snapshot win over the update's."""
    from itertools import permutations

    from central.ingest import lifecycle

    start = event("k-order", Phase.START, seq=1, snapshot=jpeg_bytes("order-start"))
    update = event("k-order", Phase.UPDATE, seq=2, observed_after_s=5, snapshot=jpeg_bytes("order-update"))
    end = event("k-order", Phase.END, seq=3, observed_after_s=9)
    for order in permutations([start, update, end]):
        first = order[0]
        folded = FoldedIncident(incident_key=first.incident_key, site=first.site, edge=first.edge, camera=first.camera,
                                hazard=first.hazard.value, zone=first.zone, state="received", condition=None,
                                started_at=first.started_at, last_observed_at=first.observed_at, ended_at=None,
                                max_score=None, event_count=0, latest_snapshot_sha256=None, episode_count=1)
        for ev in order:
            lifecycle.apply_event(folded, ev)
        assert folded.latest_snapshot_sha256 == sha(jpeg_bytes("order-update")), [e.phase for e in order]
        assert folded.latest_snapshot_observed_at == update.observed_at
