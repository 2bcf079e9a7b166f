"""Case splits for survival models: stratified K folds, a stratified hold-out, nested label subsets.

Every split is stratified by outcome, so events (rare in SCD cohorts) are spread evenly: the case ids
are sorted, then split into events and censored cases, and each stratum is shuffled with one seeded
permutation (``numpy.random.default_rng(seed)``, events first, then censored cases). A split therefore
depends only on the set of ids, their events, its parameters and the seed, not on the input order.
Outcomes are given as a dict ``{case_id: event}`` (1 = event, 0 = censored) that must cover every id;
it may hold more cases than are split. Returned id lists are sorted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from lgerisk.errors import InputError

MIN_SUBSET_EVENTS = 2
"""A label subset keeps at least this many events (all of them when fewer exist)."""

MIN_SUBSET_CASES = 4
"""A label subset keeps at least this many cases (all of them when fewer exist)."""


def _round_half_up(value: float) -> int:
    return math.floor(value + 0.5 + 1e-9)


def _whole(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name}={value!r}: must be a whole number >= {minimum}.", setting=name)
    return int(value)


def _strata(case_ids: Iterable[str], event: Mapping[str, object], seed: int) -> tuple[list[str], list[str]]:
    """Events and censored cases of ``case_ids``, each in one seeded random order of the sorted ids."""
    if isinstance(case_ids, (str, bytes, Mapping)) or not isinstance(case_ids, Iterable):
        raise InputError(f"case ids: expected a list of case ids, got {type(case_ids).__name__}.")
    if not isinstance(event, Mapping):
        raise InputError(f"event: expected a dict {{case_id: 0 or 1}}, got {type(event).__name__}.")
    ids = list(case_ids)
    not_text = [case for case in ids if not isinstance(case, str)]
    if not_text:
        raise InputError(f"case ids must be strings, got {not_text[0]!r}.")
    if len(set(ids)) != len(ids):
        repeated = sorted({case for case in ids if ids.count(case) > 1})
        raise InputError(f"case ids must be unique, but {', '.join(repeated[:5])} appear more than once.")
    missing = [case for case in ids if case not in event]
    if missing:
        raise InputError(f"no outcome (event) for {len(missing)} case(s): {', '.join(sorted(missing)[:5])}.")
    events: list[str] = []
    censored: list[str] = []
    for case in sorted(ids):
        value = event[case]
        if isinstance(value, (bool, np.bool_)) or value in (0, 1):
            (events if bool(value) else censored).append(case)
        else:
            raise InputError(f"{case}: event must be 0 (censored) or 1 (event), got {value!r}.")
    _whole(seed, "seed", 0)
    rng = np.random.default_rng(seed)
    events = [events[i] for i in rng.permutation(len(events))]
    censored = [censored[i] for i in rng.permutation(len(censored))]
    return events, censored


def stratified_folds(
    case_ids: Sequence[str], event: Mapping[str, object], k: int, seed: int = 0
) -> list[tuple[list[str], list[str]]]:
    """``k`` (train_ids, test_ids) pairs stratified by event; each case is in exactly one test fold.

    The shuffled events are dealt round-robin over the folds, then the shuffled censored cases continue
    the deal, so events per fold, censored cases per fold and fold sizes each differ by at most one.

    Example:
        >>> ids = [f"c{i}" for i in range(6)]
        >>> folds = stratified_folds(ids, {case: int(case in ("c0", "c1")) for case in ids}, k=2, seed=0)
        >>> [sum(case in ("c0", "c1") for case in test) for _, test in folds]
        [1, 1]
    """
    events, censored = _strata(case_ids, event, seed)
    n, n_events = len(events) + len(censored), len(events)
    if n == 0:
        raise InputError("no cases to split into folds.")
    k = _whole(k, "folds", 2)
    if n_events == 0:
        raise InputError(
            f"all {n} cases are censored (event = 0); cross-validation of a survival model needs cases with an event."
        )
    if k > n:
        raise InputError(
            f"{k} folds need at least {k} cases, but there are {n}; use folds={n} or fewer.", setting="folds"
        )
    if n_events < k:
        advice = f"use folds={n_events} or fewer" if n_events >= 2 else "cross-validation needs at least 2 events"
        raise InputError(
            f"{n_events} event{'s' if n_events != 1 else ''} cannot be spread over {k} folds; {advice}.",
            setting="folds",
        )
    test_folds: list[list[str]] = [[] for _ in range(k)]
    for position, case in enumerate(events + censored):
        test_folds[position % k].append(case)
    everyone = set(events) | set(censored)
    return [(sorted(everyone - set(test)), sorted(test)) for test in test_folds]


def holdout_split(
    case_ids: Sequence[str], event: Mapping[str, object], test_fraction: float, seed: int = 0
) -> tuple[list[str], list[str]]:
    """A stratified (train_ids, test_ids) split with ``test_fraction`` of the events and of the censored cases.

    Per stratum round(test_fraction * size) cases (half up) go to the test side; the events are then
    adjusted so that each side keeps at least one.

    Example:
        >>> ids = [f"c{i}" for i in range(10)]
        >>> train, test = holdout_split(ids, {case: int(case < "c4") for case in ids}, 0.3, seed=0)
        >>> len(train), len(test), sum(case < "c4" for case in test)
        (7, 3, 1)
    """
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) or not 0 < test_fraction < 1:
        raise InputError(f"test_fraction={test_fraction!r}: must be in (0, 1).", setting="test_fraction")
    events, censored = _strata(case_ids, event, seed)
    if len(events) < 2:
        raise InputError(
            f"a train/test split needs at least 2 events (one on each side), but there "
            f"{'is' if len(events) == 1 else 'are'} {len(events)} among {len(events) + len(censored)} "
            "cases."
        )
    test_events = min(max(_round_half_up(test_fraction * len(events)), 1), len(events) - 1)
    test_censored = _round_half_up(test_fraction * len(censored))
    test = events[:test_events] + censored[:test_censored]
    train = events[test_events:] + censored[test_censored:]
    return sorted(train), sorted(test)


def _nested_order(events: list[str], censored: list[str]) -> list[str]:
    """Events and censored cases merged so that every prefix is a stratified sample with enough events.

    The first ``MIN_SUBSET_EVENTS`` entries are events; after that the stratum that is furthest behind
    its share (Sainte-Lague: smallest (taken + 0.5) / size, events on a tie) goes next. Each stratum is
    consumed in its own (seeded) order, so a shorter prefix is always contained in a longer one.
    """
    taken_events = min(MIN_SUBSET_EVENTS, len(events))
    order = events[:taken_events]
    taken_censored = 0
    while taken_events < len(events) or taken_censored < len(censored):
        event_need = (taken_events + 0.5) / len(events) if taken_events < len(events) else math.inf
        censored_need = (taken_censored + 0.5) / len(censored) if taken_censored < len(censored) else math.inf
        if event_need <= censored_need:
            order.append(events[taken_events])
            taken_events += 1
        else:
            order.append(censored[taken_censored])
            taken_censored += 1
    return order


def label_subset(train_ids: Sequence[str], event: Mapping[str, object], fraction: float, seed: int = 0) -> list[str]:
    """The training cases whose outcomes are used at label fraction ``fraction`` (a stratified subsample).

    Keeps round(fraction * n) cases (half up), at least ``MIN_SUBSET_CASES`` cases and ``MIN_SUBSET_EVENTS``
    events (all when fewer exist), with events and censored cases in proportion. Subsets are nested: with
    the same ids, outcomes and seed, the subset at a smaller fraction lies inside the one at a larger
    fraction. ``fraction`` 1 keeps every case.

    Example:
        >>> ids = [f"c{i:02d}" for i in range(20)]
        >>> outcomes = {case: int(case < "c05") for case in ids}
        >>> small, large = (label_subset(ids, outcomes, f, seed=3) for f in (0.25, 0.5))
        >>> len(small), len(large), set(small) <= set(large), sum(outcomes[c] for c in small)
        (5, 10, True, 2)
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        shown = (
            f"{fraction:g}" if isinstance(fraction, (int, float)) and not isinstance(fraction, bool) else repr(fraction)
        )
        raise InputError(f"label_fraction={shown}: must be in (0, 1].", setting="label_fraction")
    events, censored = _strata(train_ids, event, seed)
    n = len(events) + len(censored)
    if fraction == 1:
        return sorted(events + censored)
    keep = max(min(MIN_SUBSET_CASES, n), _round_half_up(fraction * n))
    return sorted(_nested_order(events, censored)[:keep])
