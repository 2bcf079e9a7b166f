"""Stratified folds, hold-out split and nested label subsets: balance, determinism, errors."""

from __future__ import annotations

import random

import numpy as np
import pytest

from lgerisk.errors import InputError
from lgerisk.evaluation.cv import holdout_split, label_subset, stratified_folds


def outcomes(n: int, n_events: int, seed: int = 0) -> dict[str, int]:
    """SYNTHETIC outcomes: ``n`` case ids, ``n_events`` of them (chosen at random) with an event."""
    rng = np.random.default_rng(seed)
    ids = [f"case{i:03d}" for i in range(n)]
    with_event = set(rng.choice(n, size=n_events, replace=False).tolist())
    return {case: int(i in with_event) for i, case in enumerate(ids)}


# --- stratified folds -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "n_events", "k"), [(100, 23, 5), (37, 10, 10), (12, 3, 3), (50, 49, 4)])
def test_folds_stratified_disjoint_and_covering(n, n_events, k):
    event = outcomes(n, n_events)
    ids = list(event)
    folds = stratified_folds(ids, event, k, seed=7)
    assert len(folds) == k
    tests = [test for _, test in folds]
    assert sorted(case for test in tests for case in test) == sorted(ids)  # every case in one test fold
    for train, test in folds:
        assert not set(train) & set(test) and sorted(train + test) == sorted(ids)
        assert train == sorted(train) and test == sorted(test)
    events_per_fold = [sum(event[c] for c in test) for test in tests]
    censored_per_fold = [len(test) - e for test, e in zip(tests, events_per_fold)]
    assert max(events_per_fold) - min(events_per_fold) <= 1
    assert max(censored_per_fold) - min(censored_per_fold) <= 1
    assert max(map(len, tests)) - min(map(len, tests)) <= 1


def test_folds_deterministic_and_order_independent():
    event = outcomes(60, 15)
    ids = list(event)
    shuffled = ids[:]
    random.Random(1).shuffle(shuffled)
    reordered_event = {case: event[case] for case in reversed(ids)}
    folds = stratified_folds(ids, event, 5, seed=3)
    assert stratified_folds(ids, event, 5, seed=3) == folds
    assert stratified_folds(shuffled, reordered_event, 5, seed=3) == folds
    assert stratified_folds(tuple(ids), event, 5, seed=3) == folds
    assert stratified_folds(ids, event, 5, seed=4) != folds


def test_folds_event_dict_may_hold_more_cases():
    event = outcomes(30, 10)
    subset = sorted(event)[:20]
    folds = stratified_folds(subset, event, 4, seed=0)
    assert sorted(c for _, test in folds for c in test) == subset


@pytest.mark.parametrize(
    ("n", "n_events", "k", "message"),
    [
        (20, 5, 10, "5 events cannot be spread over 10 folds; use folds=5 or fewer"),
        (20, 1, 2, "1 event cannot be spread over 2 folds; cross-validation needs at least 2 events"),
        (20, 0, 5, "all 20 cases are censored"),
        (6, 6, 10, "10 folds need at least 10 cases, but there are 6; use folds=6 or fewer"),
        (20, 5, 1, "folds=1: must be a whole number >= 2"),
    ],
)
def test_fold_errors_name_the_numbers(n, n_events, k, message):
    event = outcomes(n, n_events)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")) as refused:
        stratified_folds(list(event), event, k, seed=0)
    assert refused.value.setting == (None if n_events == 0 else "folds")


def test_split_input_errors():
    event = outcomes(10, 4)
    ids = list(event)
    with pytest.raises(InputError, match="no outcome"):
        stratified_folds([*ids, "extra"], event, 2, seed=0)
    with pytest.raises(InputError, match="unique"):
        stratified_folds([*ids, ids[0]], event, 2, seed=0)
    with pytest.raises(InputError, match="event must be 0"):
        stratified_folds(ids, {**event, ids[0]: 2}, 2, seed=0)
    with pytest.raises(InputError, match="dict"):
        stratified_folds(ids, [event[c] for c in ids], 2, seed=0)
    with pytest.raises(InputError, match="seed"):
        stratified_folds(ids, event, 2, seed=-1)
    with pytest.raises(InputError, match="no cases"):
        stratified_folds([], event, 2, seed=0)


# --- hold-out ---------------------------------------------------------------------------------------------------


def test_holdout_stratified_and_deterministic():
    event = outcomes(100, 20)
    ids = list(event)
    train, test = holdout_split(ids, event, 0.25, seed=2)
    assert len(test) == 25 and not set(train) & set(test) and sorted(train + test) == sorted(ids)
    assert sum(event[c] for c in test) == 5
    assert holdout_split(list(reversed(ids)), event, 0.25, seed=2) == (train, test)
    assert holdout_split(ids, event, 0.25, seed=3) != (train, test)


def test_holdout_keeps_an_event_on_each_side():
    event = outcomes(40, 2)
    for fraction in (0.05, 0.5, 0.95):
        train, test = holdout_split(list(event), event, fraction, seed=0)
        assert sum(event[c] for c in train) == 1 and sum(event[c] for c in test) == 1


@pytest.mark.parametrize(
    ("fraction", "n_events", "message"),
    [
        (0.0, 5, r"test_fraction=0.0: must be in \(0, 1\)"),
        (1.0, 5, r"test_fraction=1.0: must be in \(0, 1\)"),
        (0.3, 1, "needs at least 2 events"),
    ],
)
def test_holdout_errors(fraction, n_events, message):
    event = outcomes(20, n_events)
    with pytest.raises(InputError, match=message):
        holdout_split(list(event), event, fraction, seed=0)


# --- label subsets ----------------------------------------------------------------------------------------------


def test_label_subset_nested_sized_and_stratified():
    event = outcomes(80, 20)
    ids = list(event)
    previous: set[str] = set()
    for fraction in (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0):
        subset = label_subset(ids, event, fraction, seed=5)
        assert subset == sorted(subset) and set(subset) <= set(ids)
        assert previous <= set(subset)  # nested: a smaller fraction lies inside a larger one
        previous = set(subset)
        assert len(subset) == max(4, int(fraction * 80 + 0.5))
        n_events = sum(event[c] for c in subset)
        assert n_events >= 2
        if len(subset) >= 20:
            assert abs(n_events - len(subset) * 20 / 80) <= 1  # events in proportion
    assert label_subset(ids, event, 1.0, seed=5) == sorted(ids)
    assert label_subset(list(reversed(ids)), event, 0.3, seed=5) == label_subset(ids, event, 0.3, seed=5)


def test_label_subset_minimum_events_and_cases():
    event = outcomes(40, 3)
    subset = label_subset(list(event), event, 0.05, seed=0)  # round(2) cases -> at least 4, 2 of them events
    assert len(subset) == 4 and sum(event[c] for c in subset) == 2
    one_event = outcomes(10, 1)
    assert sum(one_event[c] for c in label_subset(list(one_event), one_event, 0.1, seed=0)) == 1
    tiny = outcomes(3, 1)
    assert label_subset(list(tiny), tiny, 0.1, seed=0) == sorted(tiny)  # fewer than 4 cases: all


@pytest.mark.parametrize(
    ("fraction", "message"),
    [
        (1.5, r"label_fraction=1.5: must be in \(0, 1\]\."),
        (0, r"label_fraction=0: must be in \(0, 1\]\."),
        (-0.2, r"label_fraction=-0.2: must be in \(0, 1\]\."),
    ],
)
def test_label_subset_fraction_errors(fraction, message):
    event = outcomes(10, 4)
    with pytest.raises(InputError, match=message):
        label_subset(list(event), event, fraction, seed=0)
