"""95 % Wilson intervals (models/intervals.py), the figures' counts in `models eval`, and the pooling
of `models eval-seeds` (models/seeds.py), as pure functions."""

from __future__ import annotations

import math

import pytest

from models.evaluation import ClassFigures, Evaluation, HazardFigures
from models.intervals import Share, interval_text, pooled, wilson
from models.seeds import HeldOutFigures, SeedsReport, figures_of, parse_seeds, pool


@pytest.mark.parametrize(("k", "n", "low", "high"), [
    # Reference values: Wilson's score interval at z = 1.96 (e.g. R's binom::binom.wilson, statsmodels'
    # proportion_confint(method="wilson")).
    (4, 6, 0.3000, 0.9032),
    (6, 6, 0.6097, 1.0),
    (0, 10, 0.0, 0.2775),
    (11, 19, 0.3628, 0.7686),
    (50, 100, 0.4038, 0.5962),
    (1, 2, 0.0945, 0.9055),
])
def test_wilson_matches_known_values(k: int, n: int, low: float, high: float) -> None:
    got = wilson(k, n)
    assert got is not None
    assert got[0] == pytest.approx(low, abs=5e-4) and got[1] == pytest.approx(high, abs=5e-4)


def test_wilson_is_symmetric_stays_in_range_and_narrows_with_trials() -> None:
    for n in (1, 5, 13, 200):
        for k in range(n + 1):
            low, high = wilson(k, n) or (math.nan, math.nan)
            mirror = wilson(n - k, n) or (math.nan, math.nan)
            assert 0.0 <= low <= k / n <= high <= 1.0
            assert low == pytest.approx(1 - mirror[1]) and high == pytest.approx(1 - mirror[0])
    assert (wilson(60, 60) or (0, 0))[0] > (wilson(6, 6) or (0, 0))[0]


def test_wilson_without_trials_is_none_and_impossible_counts_are_refused() -> None:
    assert wilson(0, 0) is None and interval_text(0, 0) == "—" and Share(0, 0).text() == "— (0/0)"
    with pytest.raises(ValueError, match="between 0 and trials"):
        wilson(7, 6)


def test_shares_pool_by_adding_their_counts() -> None:
    total = pooled([Share(4, 6), Share(7, 7), Share(5, 6)])
    assert (total.successes, total.trials, total.value) == (16, 19, 0.842)
    assert total.to_json() == {"successes": 16, "trials": 19, "value": 0.842, "ci95": [0.624, 0.945]}
    assert Share(4, 6).text() == "0.667 [0.300, 0.903] (4/6)"


def _evaluation(model: str, found: int, labelled: int, tp: int, predicted: int, hit: int, with_object: int,
                false_boxes: int, images: int) -> Evaluation:
    ev = Evaluation(model=model, dataset="d", images=images, conf=0.35, cpu_ms_per_image=1.0)
    ev.classes = [ClassFigures("ebike", labelled, None, None, None, None, true_positives=tp, predicted=predicted)]
    ev.hazards = [HazardFigures("ebike", ["motorcycle"], labelled, found, None, false_boxes / images, with_object,
                                None, images_hit=hit, false_boxes=false_boxes)]
    return ev


def test_seed_rows_pool_into_one_figure_with_its_interval() -> None:
    report = SeedsReport(conf=0.35, epochs=1)
    for seed, (b, t) in enumerate([((4, 6, 4, 5, 3, 5, 1, 5), (6, 6, 6, 6, 5, 5, 0, 5)),
                                   ((5, 7, 5, 7, 4, 6, 2, 7), (7, 7, 7, 7, 6, 6, 0, 7))]):
        report.base.append(figures_of(seed, _evaluation("yolov8n", *b)))
        report.trained.append(figures_of(seed, _evaluation(f"m-s{seed}", *t)))
    base, trained = report.pooled()
    assert (base.recall, base.precision, base.image_hits) == (Share(9, 13), Share(9, 12), Share(7, 11))
    assert (base.pictures, base.false_boxes, base.false_boxes_per_image) == (12, 3, 0.25)
    assert trained.recall == Share(13, 13) and trained.seed is None and trained.model == "trained"
    doc = report.to_json()
    assert doc["pooled"]["trained"]["recall"]["ci95"] == [0.772, 1.0]
    assert [r["seed"] for r in doc["base"]] == [0, 1]
    assert pool([], "none") == HeldOutFigures(None, "none", 0, Share(0, 0), Share(0, 0), Share(0, 0), 0)


def test_seeds_are_read_as_a_list_or_a_range() -> None:
    assert parse_seeds("0,1,2") == [0, 1, 2] and parse_seeds("0-2") == [0, 1, 2] and parse_seeds("3, 1,3") == [3, 1]
    for bad in ("", "a", "1,x"):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad)
