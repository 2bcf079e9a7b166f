"""Survival metrics with confidence intervals: Harrell's and Uno's C, time-dependent AUC, Brier score, calibration.

Thin wrappers over lifelines and scikit-survival that check their inputs, return NaN (never raise)
when a metric is not estimable from the data at hand, and add bootstrap confidence intervals.
Conventions: ``time`` is follow-up (>= 0), ``event`` is 1 for an event and 0 for censoring, ``risk`` is a
log relative hazard (higher = earlier event), ``survival`` is a predicted probability S(t | x).

The inverse-probability-of-censoring weights of Uno's C, the time-dependent AUC and the Brier score come
from the Kaplan-Meier estimate G of the *training* censoring distribution. G is only known up to the
largest training time ``t_max``: it is positive for every t < t_max and may drop to 0 at t_max (when the
last training case is censored), and scikit-survival refuses times beyond t_max. Therefore every time
point these metrics use is kept strictly below ``t_max``:

- Uno's C is truncated at ``tau`` = t_max by default (a given ``tau`` is clipped to t_max): only events
  before ``tau`` count as the earlier member of a pair; later cases still count as the later member.
- The AUC at a horizon h and the Brier score at a grid time t need G only at event times <= h (or t),
  so test cases followed beyond t_max enter as what they are there, event-free controls; horizons and
  grid times at or beyond t_max (or outside the test follow-up) are reported as NaN or dropped.

On data where scikit-survival does not raise, the results equal its own (for Uno's C: with the same tau).
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable, Hashable, Sequence
from typing import cast

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter
from lifelines.utils import concordance_index
from sksurv.exceptions import NoComparablePairException
from sksurv.metrics import concordance_index_ipcw, cumulative_dynamic_auc
from sksurv.metrics import integrated_brier_score as _sksurv_integrated_brier_score

from lgerisk.errors import InputError

if typing.TYPE_CHECKING:  # not TYPE_CHECKING itself: NAN is to be the module's one public constant
    from numpy.typing import ArrayLike

NAN = float("nan")


# --- input checks ----------------------------------------------------------------------------------------------


def _vector(values: ArrayLike, name: str, allow_scalar: bool = False) -> np.ndarray:
    """``values`` as a finite 1-D float array (lists, Series, arrays), or InputError naming ``name``."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: expected numbers, got {type(values).__name__}.") from exc
    if allow_scalar:
        array = np.atleast_1d(array)
    if array.ndim != 1:
        raise InputError(f"{name}: expected a 1-D sequence, got an array of shape {array.shape}.")
    bad = ~np.isfinite(array)
    if bad.any():
        raise InputError(
            f"{name}: {int(bad.sum())} of {array.size} values are missing or not finite "
            f"(first at position {int(np.flatnonzero(bad)[0])})."
        )
    return array


def _times(values: ArrayLike, name: str) -> np.ndarray:
    array = _vector(values, name)
    if (array < 0).any():
        raise InputError(f"{name}: follow-up times must be >= 0, found {array.min():g}.")
    return array


def _events(values: ArrayLike, name: str) -> np.ndarray:
    array = _vector(values, name)
    if not np.isin(array, (0.0, 1.0)).all():
        odd = array[~np.isin(array, (0.0, 1.0))][0]
        raise InputError(f"{name}: event indicators must be 0 (censored) or 1 (event), found {odd:g}.")
    return array.astype(bool)


def _same_length(**arrays: np.ndarray) -> int:
    lengths = {name: len(array) for name, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name} has {length}" for name, length in lengths.items())
        raise InputError(f"inputs must have one value per case, but {listed}.")
    return next(iter(lengths.values()))


def _survival_matrix(values: ArrayLike, n: int, n_times: int, name: str) -> np.ndarray:
    try:
        matrix = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: expected numbers, got {type(values).__name__}.") from exc
    if matrix.ndim == 1 and n_times == 1:
        matrix = matrix.reshape(-1, 1)
    if matrix.shape != (n, n_times):
        raise InputError(f"{name}: expected shape ({n}, {n_times}) (cases x time points), got {matrix.shape}.")
    if not np.isfinite(matrix).all():
        raise InputError(f"{name}: {int((~np.isfinite(matrix)).sum())} values are missing or not finite.")
    if (matrix < 0).any() or (matrix > 1).any():
        raise InputError(
            f"{name}: survival probabilities must lie in [0, 1], found {matrix.min():g} to {matrix.max():g}."
        )
    return matrix


def _increasing(values: ArrayLike, name: str) -> np.ndarray:
    array = _vector(values, name, allow_scalar=True)
    if array.size > 1 and (np.diff(array) <= 0).any():
        raise InputError(f"{name}: time points must be strictly increasing.")
    return array


def _train(train_time: ArrayLike, train_event: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    train_time = _times(train_time, "train_time")
    train_event = _events(train_event, "train_event")
    _same_length(train_time=train_time, train_event=train_event)
    return train_time, train_event


def _surv(event: np.ndarray, time: np.ndarray) -> np.ndarray:
    """The structured (event, time) array scikit-survival expects."""
    outcome = np.empty(len(time), dtype=[("event", bool), ("time", float)])
    outcome["event"] = event
    outcome["time"] = time
    return outcome


def _censoring_known(train_time: np.ndarray, train_event: np.ndarray) -> bool:
    """Whether scikit-survival can estimate the training censoring distribution (it needs >= 1 event)."""
    return train_time.size > 0 and bool(train_event.any())


# --- discrimination -----------------------------------------------------------------------------------------------


def harrell_c(time: ArrayLike, event: ArrayLike, risk: ArrayLike) -> float:
    """Harrell's concordance index of ``risk`` (higher = earlier event); NaN without a comparable pair.

    Computed by ``lifelines.utils.concordance_index(time, -risk, event)``.

    Example:
        >>> harrell_c([1.0, 2.0, 3.0, 4.0], [1, 1, 0, 1], [4.0, 3.0, 2.0, 1.0])
        1.0
    """
    time = _times(time, "time")
    event = _events(event, "event")
    risk = _vector(risk, "risk")
    _same_length(time=time, event=event, risk=risk)
    if time.size < 2 or not event.any():
        return NAN
    try:
        return float(concordance_index(time, -risk, event))
    except ZeroDivisionError:  # lifelines: "No admissable pairs in the dataset."
        return NAN


def uno_c(
    train_time: ArrayLike,
    train_event: ArrayLike,
    time: ArrayLike,
    event: ArrayLike,
    risk: ArrayLike,
    tau: float | None = None,
) -> float:
    """Uno's IPCW concordance index of ``risk`` on the evaluation cases, truncated at ``tau``.

    The censoring distribution is the Kaplan-Meier estimate from the training cases
    (``sksurv.metrics.concordance_index_ipcw``). ``tau`` defaults to the largest training time, and a
    larger ``tau`` is clipped to it: beyond it the censoring distribution is unknown. Only events before
    ``tau`` count as the earlier member of a pair. NaN when there is no training event, no evaluation
    event before ``tau``, or no comparable pair.

    Example:
        >>> uno_c([1, 2, 3, 4, 5, 6], [1, 0, 1, 0, 1, 0], [1.5, 2.5, 3.5, 4.5], [1, 1, 0, 1], [3.0, 2.0, 1.0, 0.0])
        1.0
    """
    train_time, train_event = _train(train_time, train_event)
    time = _times(time, "time")
    event = _events(event, "event")
    risk = _vector(risk, "risk")
    _same_length(time=time, event=event, risk=risk)
    if tau is not None and not (math.isfinite(float(tau)) and float(tau) > 0):
        raise InputError(f"tau: the truncation time must be a positive number, got {tau!r}.")
    if time.size < 2 or not _censoring_known(train_time, train_event):
        return NAN
    limit = float(train_time.max())
    tau = limit if tau is None else min(float(tau), limit)
    if not (event & (time < tau)).any():
        return NAN
    try:
        with np.errstate(invalid="ignore", divide="ignore"):
            value = concordance_index_ipcw(_surv(train_event, train_time), _surv(event, time), risk, tau=tau)[0]
    except (NoComparablePairException, ZeroDivisionError):
        return NAN
    return float(value) if np.isfinite(value) else NAN


def time_dependent_auc(
    train_time: ArrayLike,
    train_event: ArrayLike,
    time: ArrayLike,
    event: ArrayLike,
    risk: ArrayLike,
    horizons: ArrayLike,
) -> np.ndarray:
    """Cumulative/dynamic AUC of ``risk`` at each horizon (``sksurv.metrics.cumulative_dynamic_auc``).

    Cases: events at or before the horizon (IPCW-weighted with the training censoring distribution);
    controls: cases still event-free after it. NaN for a horizon without a case or a control, or at or
    beyond the largest training time (where the censoring distribution is unknown).

    Example:
        >>> time_dependent_auc([1, 2, 3, 4, 5, 6], [1, 0, 1, 0, 1, 0], [1.5, 2.5, 3.5, 4.5], [1, 1, 0, 1],
        ...                    [3.0, 2.0, 1.0, 0.0], [2.0, 9.0]).tolist()
        [1.0, nan]
    """
    train_time, train_event = _train(train_time, train_event)
    time = _times(time, "time")
    event = _events(event, "event")
    risk = _vector(risk, "risk")
    _same_length(time=time, event=event, risk=risk)
    horizons = _vector(horizons, "horizons", allow_scalar=True)
    auc = np.full(horizons.size, np.nan)
    if not _censoring_known(train_time, train_event):
        return auc
    limit = float(train_time.max())
    train = _surv(train_event, train_time)
    # beyond the training follow-up only "event-free after the horizon" matters: cap there
    capped_time = np.minimum(time, limit)
    for index, horizon in enumerate(horizons):
        cases = event & (time <= horizon)
        if not horizon < limit or not cases.any() or not (time > horizon).any():
            continue
        scores, _ = cumulative_dynamic_auc(train, _surv(cases, capped_time), risk, [horizon])
        auc[index] = float(scores[0])
    return auc


# --- Brier score ----------------------------------------------------------------------------------------------------


def _valid_grid(train_time: np.ndarray, time: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Grid points inside the test follow-up [min, max) and strictly before the largest training time."""
    if time.size == 0 or train_time.size == 0:
        return np.zeros(grid.size, dtype=bool)
    upper = min(float(time.max()), float(train_time.max()))
    return cast("np.ndarray", (grid >= time.min()) & (grid < upper))


def integrated_brier_score(
    train_time: ArrayLike,
    train_event: ArrayLike,
    time: ArrayLike,
    event: ArrayLike,
    survival: ArrayLike,
    grid: ArrayLike,
) -> float:
    """Integrated Brier score of predicted survival ``survival[i, j]`` = S(grid[j] | case i) (lower is better).

    ``sksurv.metrics.integrated_brier_score`` over the grid points that are estimable: inside the
    evaluation follow-up and before the largest training time (the other columns are dropped). NaN when
    fewer than 2 grid points remain, or no training or evaluation event lies within the training follow-up.

    Example:
        >>> grid = [2.0, 3.0, 4.0]
        >>> round(integrated_brier_score([1, 2, 3, 4, 5, 6], [1, 0, 1, 0, 1, 0], [1.5, 2.5, 3.5, 4.5],
        ...                              [1, 1, 0, 1], [[0.5] * 3] * 4, grid), 3)
        0.287
    """
    train_time, train_event = _train(train_time, train_event)
    time = _times(time, "time")
    event = _events(event, "event")
    n = _same_length(time=time, event=event)
    grid = _increasing(grid, "grid")
    survival = _survival_matrix(survival, n, grid.size, "survival")
    valid = _valid_grid(train_time, time, grid)
    if valid.sum() < 2 or not _censoring_known(train_time, train_event):
        return NAN
    limit = float(train_time.max())
    # cases followed beyond the training follow-up are controls at every valid grid time: cap them there
    capped_time = np.minimum(time, limit)
    capped_event = event & (time <= limit)
    if not capped_event.any():  # scikit-survival refuses an all-censored evaluation set
        return NAN
    return float(
        _sksurv_integrated_brier_score(
            _surv(train_event, train_time), _surv(capped_event, capped_time), survival[:, valid], grid[valid]
        )
    )


def brier_grid(
    train_time: ArrayLike, train_event: ArrayLike, time: ArrayLike, event: ArrayLike, n: int = 50
) -> np.ndarray:
    """A default grid for the integrated Brier score: ``n`` evenly spaced times (fewer when the range is empty).

    From the 10th to the 90th percentile of the evaluation times, kept inside the evaluation follow-up and
    strictly before the largest evaluation and training time (where the censoring distribution is known).

    Example:
        >>> brier_grid([1, 2, 3, 4, 5, 6], [1, 0, 1, 0, 1, 0], [1, 2, 3, 4, 5], [1, 0, 1, 1, 0], n=3).tolist()
        [1.4, 3.0, 4.6]
    """
    train_time, _ = _train(train_time, train_event)
    time = _times(time, "time")
    _same_length(time=time, event=_events(event, "event"))
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise InputError(f"n: a Brier grid needs at least 2 time points, got {n!r}.")
    if time.size == 0 or train_time.size == 0:
        return np.empty(0)
    low, high = np.quantile(time, [0.1, 0.9])
    upper = np.nextafter(min(float(time.max()), float(train_time.max())), -np.inf)
    low, high = max(float(low), float(time.min())), min(float(high), float(upper))
    if not high > low:
        return np.empty(0)
    return np.linspace(low, high, int(n))


# --- calibration ------------------------------------------------------------------------------------------------------


def calibration_table(
    time: ArrayLike, event: ArrayLike, survival_at_horizon: ArrayLike, horizon: float, groups: int = 3
) -> pd.DataFrame:
    """Predicted against observed risk of an event by ``horizon``, per group of predicted risk.

    Cases are split into ``groups`` quantile groups of predicted risk 1 - S(horizon) (group 1 lowest).
    Columns: ``group``, ``n``, ``events`` (events at or before the horizon), ``predicted`` (mean predicted
    risk), ``observed`` (1 - Kaplan-Meier survival at the horizon, lifelines) and its 95 % confidence
    interval ``observed_low``, ``observed_high``. Observed values are NaN for a group whose follow-up ends
    before the horizon with its Kaplan-Meier curve above 0.

    Example:
        >>> table = calibration_table([1, 2, 3, 4, 5, 6], [1, 0, 1, 0, 1, 0], [0.9, 0.8, 0.7, 0.6, 0.5, 0.4], 3.5,
        ...                           groups=2)
        >>> table[["group", "n", "events"]].values.tolist()
        [[1, 3, 2], [2, 3, 0]]
    """
    time = _times(time, "time")
    event = _events(event, "event")
    survival = _vector(survival_at_horizon, "survival_at_horizon")
    n = _same_length(time=time, event=event, survival_at_horizon=survival)
    if ((survival < 0) | (survival > 1)).any():
        raise InputError("survival_at_horizon: survival probabilities must lie in [0, 1].")
    if not (math.isfinite(float(horizon)) and float(horizon) > 0):
        raise InputError(f"horizon: must be a positive time, got {horizon!r}.")
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise InputError(f"groups: must be a positive whole number, got {groups!r}.")
    if n < groups:
        raise InputError(f"calibration in {groups} groups needs at least {groups} cases, got {n}.")
    horizon = float(horizon)
    predicted = 1.0 - survival
    # quantile groups of predicted risk; ties broken by position so every group gets its share
    group = pd.qcut(pd.Series(predicted).rank(method="first"), int(groups), labels=False).to_numpy() + 1
    rows = []
    for label in range(1, int(groups) + 1):
        members = group == label
        fitter = KaplanMeierFitter().fit(time[members], event[members])
        follow_up_ends = horizon > time[members].max()
        km = float(fitter.survival_function_at_times(horizon).iloc[0])
        bounds = fitter.confidence_interval_survival_function_
        bounds = bounds[bounds.index <= horizon].iloc[-1]
        if follow_up_ends and km > 0:
            observed = low = high = NAN
        else:
            observed = 1.0 - km
            low, high = 1.0 - float(bounds.iloc[1]), 1.0 - float(bounds.iloc[0])
        rows.append(
            {
                "group": label,
                "n": int(members.sum()),
                "events": int((event[members] & (time[members] <= horizon)).sum()),
                "predicted": float(predicted[members].mean()),
                "observed": observed,
                "observed_low": low,
                "observed_high": high,
            }
        )
    return pd.DataFrame(
        rows, columns=["group", "n", "events", "predicted", "observed", "observed_low", "observed_high"]
    )


# --- confidence intervals and the summary ---------------------------------------------------------------------------


def bootstrap_ci(
    statistic: Callable[[np.ndarray], float], n: int, n_boot: int = 200, seed: int = 0, alpha: float = 0.05
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(indices)`` over ``n_boot`` resamples of ``range(n)``.

    Resamples are drawn with replacement from ``numpy.random.default_rng(seed)``; resamples where the
    statistic is not finite are skipped, and (nan, nan) is returned when fewer than 10 are finite.

    Example:
        >>> values = np.arange(100.0)
        >>> low, high = bootstrap_ci(lambda idx: float(values[idx].mean()), 100, seed=1)
        >>> bool(40 < low < 49.5 < high < 59)
        True
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"n: the bootstrap needs at least one case, got {n!r}.")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise InputError(f"n_boot: must be a positive whole number of resamples, got {n_boot!r}.")
    if not 0 < alpha < 1:
        raise InputError(f"alpha: must lie in (0, 1), got {alpha!r}.")
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.integers(0, n, size=n)) for _ in range(int(n_boot))], dtype=float)
    values = values[np.isfinite(values)]
    if values.size < 10:
        return NAN, NAN
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def paired_delta_c(
    time: ArrayLike, event: ArrayLike, risk: ArrayLike, reference_risk: ArrayLike, n_boot: int = 200, seed: int = 0
) -> tuple[float, float, float]:
    """Harrell's C of ``risk`` minus that of ``reference_risk`` on the same cases, with a paired 95 %
    percentile bootstrap interval (both models scored on each resample of cases).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> t = rng.exponential(size=200); e = np.ones(200, dtype=int)
        >>> delta, low, high = paired_delta_c(t, e, -t + rng.normal(0, 0.3, 200), rng.normal(size=200), seed=1)
        >>> bool(delta > 0.3 and low > 0.2)
        True
    """
    time = _times(time, "time")
    event = _events(event, "event")
    risk = _vector(risk, "risk")
    reference_risk = _vector(reference_risk, "reference_risk")
    n = _same_length(time=time, event=event, risk=risk, reference_risk=reference_risk)

    def delta(idx: np.ndarray) -> float:
        return harrell_c(time[idx], event[idx], risk[idx]) - harrell_c(time[idx], event[idx], reference_risk[idx])

    point = delta(np.arange(n))
    low, high = bootstrap_ci(delta, n, n_boot, seed) if n > 0 and n_boot > 0 else (NAN, NAN)
    return float(point), low, high


def pooled_delta_c(
    groups: Sequence[tuple[ArrayLike, ArrayLike, ArrayLike, ArrayLike | None]],
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
    clusters: Sequence[Hashable] | None = None,
) -> tuple[float, float, float]:
    """Mean over ``groups`` (e.g. cohorts drawn with different seeds) of Harrell's C of ``risk`` minus
    that of ``reference_risk``, each group a ``(time, event, risk, reference_risk)`` of its own cases;
    a paired percentile interval from a bootstrap that resamples cases within each group. A
    ``reference_risk`` of None scores ``risk`` alone (the mean C and its interval).

    ``clusters`` (one label per group): groups with the same label are repeated trainings (e.g. pretraining
    runs) scored on the same cases of one cohort. The estimate is then the mean over clusters of the mean over
    their groups, and each bootstrap replicate resamples, per cluster, its runs (with replacement) and its cases
    (the same cases for every run drawn), so the interval holds the spread between runs as well as between cases.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> def group(n):
        ...     t = rng.exponential(size=n)
        ...     return t, np.ones(n, dtype=int), -t + rng.normal(0, 0.5, n), -t + rng.normal(0, 2.0, n)
        >>> delta, low, high = pooled_delta_c([group(150), group(150), group(150)], seed=1)
        >>> bool(0 < low < delta < high)
        True
    """
    if not groups:
        raise InputError("pooled_delta_c needs at least one group of cases.")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise InputError(f"n_boot: must be a whole number of resamples >= 0, got {n_boot!r}.")
    prepared = []
    for time, event, risk, reference_risk in groups:
        time, event, risk = _times(time, "time"), _events(event, "event"), _vector(risk, "risk")
        reference = None if reference_risk is None else _vector(reference_risk, "reference_risk")
        if reference is None:
            _same_length(time=time, event=event, risk=risk)
        else:
            _same_length(time=time, event=event, risk=risk, reference_risk=reference)
        prepared.append((time, event, risk, reference))

    def statistic(indices: Sequence[np.ndarray]) -> float:
        values = []
        for (time, event, risk, reference), idx in zip(prepared, indices):
            value = harrell_c(time[idx], event[idx], risk[idx])
            if reference is not None:
                value -= harrell_c(time[idx], event[idx], reference[idx])
            values.append(value)
        return float(np.mean(values))

    if clusters is not None:
        return _clustered_delta_c(prepared, list(clusters), int(n_boot), seed, alpha)
    point = statistic([np.arange(len(g[0])) for g in prepared])
    if n_boot == 0:
        return point, NAN, NAN
    rng = np.random.default_rng(seed)
    draws = np.array(
        [statistic([rng.integers(0, len(g[0]), size=len(g[0])) for g in prepared]) for _ in range(int(n_boot))]
    )
    draws = draws[np.isfinite(draws)]
    if draws.size < 10:
        return point, NAN, NAN
    low, high = np.quantile(draws, [alpha / 2, 1 - alpha / 2])
    return point, float(low), float(high)


def _clustered_delta_c(
    prepared: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]],
    clusters: list[Hashable],
    n_boot: int,
    seed: int,
    alpha: float,
) -> tuple[float, float, float]:
    """:func:`pooled_delta_c` over clusters of runs on shared cases (see its ``clusters``)."""
    if len(clusters) != len(prepared):
        raise InputError(f"clusters: one label per group ({len(prepared)}), got {len(clusters)}.")
    members: dict[Hashable, list[int]] = {}
    for index, label in enumerate(clusters):
        members.setdefault(label, []).append(index)
    for label, indices in members.items():
        sizes = {len(prepared[i][0]) for i in indices}
        if len(sizes) != 1 or any(not np.array_equal(prepared[i][0], prepared[indices[0]][0]) for i in indices):
            raise InputError(f"clusters: the groups of cluster {label!r} must score the same cases.")

    def value(index: int, cases: np.ndarray) -> float:
        time, event, risk, reference = prepared[index]
        c = harrell_c(time[cases], event[cases], risk[cases])
        return c - harrell_c(time[cases], event[cases], reference[cases]) if reference is not None else c

    point = float(
        np.mean([np.mean([value(i, np.arange(len(prepared[i][0]))) for i in runs]) for runs in members.values()])
    )
    if n_boot == 0:
        return point, NAN, NAN
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        per_cluster = []
        for runs in members.values():
            chosen = rng.choice(runs, size=len(runs), replace=True)
            cases = rng.integers(0, len(prepared[runs[0]][0]), size=len(prepared[runs[0]][0]))
            per_cluster.append(np.mean([value(int(i), cases) for i in chosen]))
        draws.append(float(np.mean(per_cluster)))
    finite = np.array(draws)[np.isfinite(draws)]
    if finite.size < 10:
        return point, NAN, NAN
    low, high = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    return point, float(low), float(high)


def evaluate(
    train_time: ArrayLike,
    train_event: ArrayLike,
    time: ArrayLike,
    event: ArrayLike,
    risk: ArrayLike,
    survival: ArrayLike | None = None,
    grid: ArrayLike | None = None,
    horizons: Sequence[float] = (),
    n_boot: int = 200,
    seed: int = 0,
) -> dict[str, float]:
    """All metrics of one evaluation set as a flat dict (one row of a metrics table).

    Keys: ``harrell_c``, ``uno_c`` each with ``_low`` / ``_high`` (95 % percentile bootstrap over the
    evaluation cases; the training censoring distribution stays fixed; NaN with ``n_boot=0``),
    ``auc_<h>`` per horizon (``f"auc_{h:g}"``), ``ibs`` (only when ``survival`` and ``grid`` are given),
    ``n`` and ``events`` (of the evaluation cases).

    Example:
        >>> metrics = evaluate([1, 2, 3, 4, 5, 6], [1, 0, 1, 0, 1, 0], [1.5, 2.5, 3.5, 4.5], [1, 1, 0, 1],
        ...                    [3.0, 2.0, 1.0, 0.0], horizons=[2], n_boot=0)
        >>> metrics["harrell_c"], metrics["auc_2"], metrics["n"], metrics["events"]
        (1.0, 1.0, 4, 3)
    """
    train_time, train_event = _train(train_time, train_event)
    time = _times(time, "time")
    event = _events(event, "event")
    risk = _vector(risk, "risk")
    n = _same_length(time=time, event=event, risk=risk)
    horizon_values = _vector(horizons, "horizons", allow_scalar=True)
    if (survival is None) != (grid is None):
        raise InputError("survival and grid must be given together (predicted S(t) at the grid times).")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise InputError(f"n_boot: must be a whole number of resamples >= 0, got {n_boot!r}.")

    def harrell(idx: np.ndarray) -> float:
        return harrell_c(time[idx], event[idx], risk[idx])

    def uno(idx: np.ndarray) -> float:
        return uno_c(train_time, train_event, time[idx], event[idx], risk[idx])

    result: dict[str, float] = {}
    for name, statistic in (("harrell_c", harrell), ("uno_c", uno)):
        result[name] = statistic(np.arange(n))
        low, high = bootstrap_ci(statistic, n, n_boot, seed) if n > 0 and n_boot > 0 else (NAN, NAN)
        result[f"{name}_low"], result[f"{name}_high"] = low, high
    aucs = time_dependent_auc(train_time, train_event, time, event, risk, horizon_values)
    for horizon, auc in zip(horizon_values, aucs):
        result[f"auc_{horizon:g}"] = float(auc)
    if survival is not None:
        # grid is given with survival (checked above)
        result["ibs"] = integrated_brier_score(train_time, train_event, time, event, survival, cast("ArrayLike", grid))
    result["n"] = n
    result["events"] = int(event.sum())
    return result
