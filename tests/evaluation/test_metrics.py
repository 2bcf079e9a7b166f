"""Survival metrics against lifelines / scikit-survival, their NaN handling where those raise, and CIs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from lifelines.utils import concordance_index
from sksurv.metrics import concordance_index_ipcw, cumulative_dynamic_auc
from sksurv.metrics import integrated_brier_score as sksurv_ibs

from lgerisk.errors import InputError
from lgerisk.evaluation import metrics
from lgerisk.evaluation.metrics import (
    bootstrap_ci,
    brier_grid,
    calibration_table,
    evaluate,
    harrell_c,
    integrated_brier_score,
    time_dependent_auc,
    uno_c,
)

BASE_HAZARD = 0.2


def cohort(n: int, seed: int, follow_up: float = 10.0, beta: float = 1.0):
    """SYNTHETIC exponential survival with hazard 0.2 * exp(risk), uniform censoring on [0, follow_up].

    Returns time, event, risk (the true log relative hazard)."""
    rng = np.random.default_rng(seed)
    risk = beta * rng.normal(size=n)
    event_time = rng.exponential(1.0 / (BASE_HAZARD * np.exp(risk)))
    censor_time = rng.uniform(0.0, follow_up, size=n)
    return np.minimum(event_time, censor_time), (event_time <= censor_time).astype(int), risk


def surv(event, time):
    outcome = np.empty(len(time), dtype=[("event", bool), ("time", float)])
    outcome["event"], outcome["time"] = np.asarray(event, bool), time
    return outcome


def true_survival(risk: np.ndarray, times: np.ndarray) -> np.ndarray:
    return np.exp(-BASE_HAZARD * np.exp(risk)[:, None] * np.asarray(times)[None, :])


# --- Harrell's C ----------------------------------------------------------------------------------------------


def test_harrell_c_equals_lifelines():
    time, event, risk = cohort(150, seed=1)
    noisy = risk + np.random.default_rng(2).normal(size=150)
    assert harrell_c(time, event, noisy) == pytest.approx(concordance_index(time, -noisy, event))


def test_harrell_c_perfect_and_reversed():
    time = np.arange(1.0, 21.0)
    event = np.ones(20, dtype=int)
    event[::3] = 0
    assert harrell_c(time, event, -time) == 1.0
    assert harrell_c(time, event, time) == 0.0


def test_harrell_c_accepts_lists_and_series():
    time, event, risk = cohort(40, seed=3)
    expected = harrell_c(time, event, risk)
    assert harrell_c(list(time), list(event), list(risk)) == expected
    assert harrell_c(pd.Series(time), pd.Series(event), pd.Series(risk)) == expected


def test_harrell_c_nan_without_events_or_pairs():
    assert math.isnan(harrell_c([1.0, 2.0, 3.0], [0, 0, 0], [1.0, 2.0, 3.0]))
    assert math.isnan(harrell_c([1.0], [1], [1.0]))
    assert math.isnan(harrell_c([], [], []))
    # the only event is the last time: nobody outlives it
    assert math.isnan(harrell_c([1.0, 2.0, 3.0], [0, 0, 1], [1.0, 2.0, 3.0]))


# --- Uno's C --------------------------------------------------------------------------------------------------


def test_uno_c_equals_sksurv_where_sksurv_works():
    train_time, train_event, _ = cohort(300, seed=4)
    time, event, risk = cohort(120, seed=5)
    inside = time < train_time.max()
    time, event, risk = time[inside], event[inside], risk[inside]
    expected = concordance_index_ipcw(surv(train_event, train_time), surv(event, time), risk)[0]
    assert uno_c(train_time, train_event, time, event, risk) == pytest.approx(expected)
    expected_tau = concordance_index_ipcw(surv(train_event, train_time), surv(event, time), risk, tau=4.0)[0]
    assert uno_c(train_time, train_event, time, event, risk, tau=4.0) == pytest.approx(expected_tau)


def test_uno_c_finite_where_sksurv_raises_beyond_training_follow_up():
    train_time, train_event, _ = cohort(200, seed=6, follow_up=5.0)
    time, event, risk = cohort(200, seed=7, follow_up=20.0)
    late_event = event.astype(bool) & (time > train_time.max())
    assert late_event.any()  # the test set has events after the training follow-up
    with pytest.raises(ValueError):
        concordance_index_ipcw(surv(train_event, train_time), surv(event, time), risk)
    value = uno_c(train_time, train_event, time, event, risk)
    assert 0.6 < value < 1.0
    # the default tau is the largest training time; a larger tau is clipped to it
    assert uno_c(train_time, train_event, time, event, risk, tau=100.0) == value
    assert value == pytest.approx(
        concordance_index_ipcw(surv(train_event, train_time), surv(event, time), risk, tau=train_time.max())[0]
    )


def test_uno_c_finite_where_censoring_survival_reaches_zero():
    # the last training case is censored, so G(t_max) = 0; a test event at t_max makes sksurv raise
    train_time = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    train_event = np.array([1, 0, 1, 1, 0, 0])
    time = np.array([0.5, 1.5, 2.5, 6.0, 3.5])
    event = np.array([1, 1, 0, 1, 0])
    risk = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    with pytest.raises(ValueError, match="zero"):
        concordance_index_ipcw(surv(train_event, train_time), surv(event, time), risk)
    assert uno_c(train_time, train_event, time, event, risk) == 1.0


def test_uno_c_perfect_reversed_and_undefined():
    train_time, train_event, _ = cohort(200, seed=8)
    time = np.linspace(0.5, 6.0, 30)
    event = (np.arange(30) % 3 != 0).astype(int)
    assert uno_c(train_time, train_event, time, event, -time) == 1.0
    assert uno_c(train_time, train_event, time, event, time) == 0.0
    assert math.isnan(uno_c(train_time, train_event, time, np.zeros(30), -time))  # no test event
    assert math.isnan(uno_c(train_time, np.zeros(200), time, event, -time))  # no training event
    assert math.isnan(uno_c(train_time, train_event, time, event, -time, tau=0.1))  # no event before tau


# --- time-dependent AUC -----------------------------------------------------------------------------------------


def test_time_dependent_auc_equals_sksurv():
    train_time, train_event, _ = cohort(300, seed=9)
    time, event, risk = cohort(150, seed=10)
    inside = time < train_time.max()
    time, event, risk = time[inside], event[inside], risk[inside]
    horizons = [1.0, 2.5, 5.0]
    expected, _ = cumulative_dynamic_auc(surv(train_event, train_time), surv(event, time), risk, horizons)
    np.testing.assert_allclose(time_dependent_auc(train_time, train_event, time, event, risk, horizons), expected)


def test_time_dependent_auc_nan_for_horizons_not_estimable():
    train_time, train_event, _ = cohort(200, seed=11, follow_up=5.0)
    time, event, risk = cohort(200, seed=12, follow_up=20.0)
    first_event = time[event == 1].min()
    horizons = [first_event / 2, 2.0, train_time.max(), 50.0]
    with pytest.raises(ValueError):
        cumulative_dynamic_auc(surv(train_event, train_time), surv(event, time), risk, [2.0])
    auc = time_dependent_auc(train_time, train_event, time, event, risk, horizons)
    assert math.isnan(auc[0])  # no event before the horizon
    assert 0.6 < auc[1] < 1.0  # estimable although test times exceed the training follow-up
    assert math.isnan(auc[2]) and math.isnan(auc[3])  # at / beyond the training follow-up
    assert time_dependent_auc(train_time, train_event, time, event, risk, 2.0).shape == (1,)


# --- Brier score ------------------------------------------------------------------------------------------------


def test_integrated_brier_score_equals_sksurv_and_rewards_information():
    train_time, train_event, _ = cohort(400, seed=13)
    time, event, risk = cohort(300, seed=14)
    inside = time < train_time.max()
    time, event, risk = time[inside], event[inside], risk[inside]
    grid = brier_grid(train_time, train_event, time, event, n=30)
    informed = true_survival(risk, grid)
    km = KaplanMeierFitter().fit(train_time, train_event).survival_function_at_times(grid).to_numpy()
    constant = np.tile(km, (len(time), 1))
    ibs_informed = integrated_brier_score(train_time, train_event, time, event, informed, grid)
    ibs_constant = integrated_brier_score(train_time, train_event, time, event, constant, grid)
    assert ibs_informed == pytest.approx(sksurv_ibs(surv(train_event, train_time), surv(event, time), informed, grid))
    assert ibs_informed < ibs_constant < 0.25


@pytest.mark.parametrize("last_training_case", ["event", "censored"])
def test_integrated_brier_score_drops_invalid_grid_points(last_training_case):
    train_time, train_event, _ = cohort(200, seed=15, follow_up=5.0)
    train_event[np.argmax(train_time)] = int(last_training_case == "event")
    time, event, risk = cohort(200, seed=16, follow_up=20.0)
    grid = np.linspace(0.5, 15.0, 30)
    survival = true_survival(risk, grid)
    value = integrated_brier_score(train_time, train_event, time, event, survival, grid)
    valid = grid < train_time.max()
    # the test cases beyond the training follow-up are event-free controls at every valid time
    capped = surv(event.astype(bool) & (time <= train_time.max()), np.minimum(time, train_time.max()))
    assert value == pytest.approx(sksurv_ibs(surv(train_event, train_time), capped, survival[:, valid], grid[valid]))
    if last_training_case == "event":  # G > 0 at the end of training follow-up: sksurv refuses later times
        with pytest.raises(ValueError):
            sksurv_ibs(surv(train_event, train_time), surv(event, time), survival, grid)
    else:  # G = 0 after it: sksurv silently gives the controls there weight 0 (a biased score)
        raw = sksurv_ibs(surv(train_event, train_time), surv(event, time), survival, grid)
        assert abs(raw - value) > 0.01
    # fewer than two valid grid points
    late = np.array([train_time.max() + 1, train_time.max() + 2])
    assert math.isnan(integrated_brier_score(train_time, train_event, time, event, true_survival(risk, late), late))


def test_brier_grid_inside_follow_up():
    train_time, train_event, _ = cohort(200, seed=17, follow_up=5.0)
    time, event, _ = cohort(200, seed=18, follow_up=20.0)
    grid = brier_grid(train_time, train_event, time, event)
    assert grid.size == 50 and np.all(np.diff(grid) > 0)
    assert grid[0] >= np.quantile(time, 0.1) and grid[-1] < train_time.max()
    assert brier_grid([1.0, 2.0], [1, 0], [5.0, 6.0], [1, 0]).size == 0  # test starts after training ends


# --- calibration ------------------------------------------------------------------------------------------------


def test_calibration_of_a_well_calibrated_model():
    time, event, risk = cohort(2000, seed=19)
    horizon = 3.0
    predicted_survival = true_survival(risk, [horizon])[:, 0]
    table = calibration_table(time, event, predicted_survival, horizon, groups=3)
    assert list(table.columns) == ["group", "n", "events", "predicted", "observed", "observed_low", "observed_high"]
    assert table["group"].tolist() == [1, 2, 3]
    assert table["n"].sum() == 2000 and table["n"].max() - table["n"].min() <= 1
    assert table["predicted"].is_monotonic_increasing
    assert (table["observed_low"] <= table["predicted"]).all() and (table["predicted"] <= table["observed_high"]).all()
    assert (table["observed_low"] <= table["observed"]).all() and (table["observed"] <= table["observed_high"]).all()
    # a model that triples every hazard is visibly miscalibrated
    overconfident = calibration_table(time, event, predicted_survival**3, horizon, groups=3)
    assert (overconfident["predicted"] > overconfident["observed_high"]).any()


def test_calibration_observed_is_km_and_nan_beyond_follow_up():
    time, event, risk = cohort(90, seed=20)
    survival = true_survival(risk, [2.0])[:, 0]
    table = calibration_table(time, event, survival, 2.0, groups=1)
    expected = 1 - KaplanMeierFitter().fit(time, event).survival_function_at_times(2.0).iloc[0]
    assert table.loc[0, "observed"] == pytest.approx(expected)
    assert table.loc[0, "events"] == int(((event == 1) & (time <= 2.0)).sum())
    censored_late = calibration_table([1.0, 2.0, 3.0], [1, 0, 0], [0.9, 0.8, 0.7], 10.0, groups=1)
    assert math.isnan(censored_late.loc[0, "observed"])


# --- bootstrap and the summary ----------------------------------------------------------------------------------


def test_bootstrap_ci_contains_estimate_and_is_deterministic():
    time, event, risk = cohort(200, seed=21)

    def statistic(idx):
        return harrell_c(time[idx], event[idx], risk[idx])

    estimate = harrell_c(time, event, risk)
    low, high = bootstrap_ci(statistic, 200, n_boot=100, seed=3)
    assert low < estimate < high and high - low < 0.2
    assert bootstrap_ci(statistic, 200, n_boot=100, seed=3) == (low, high)
    assert bootstrap_ci(statistic, 200, n_boot=100, seed=4) != (low, high)


def test_bootstrap_ci_nan_when_too_few_finite():
    assert all(math.isnan(v) for v in bootstrap_ci(lambda idx: float("nan"), 20, n_boot=50))
    with pytest.raises(InputError, match="n_boot"):
        bootstrap_ci(lambda idx: 0.0, 20, n_boot=0)
    with pytest.raises(InputError, match="at least one case"):
        bootstrap_ci(lambda idx: 0.0, 0)


def test_evaluate_flat_dict():
    train_time, train_event, _ = cohort(200, seed=22)
    time, event, risk = cohort(120, seed=23)
    grid = brier_grid(train_time, train_event, time, event, n=20)
    result = evaluate(
        train_time,
        train_event,
        time,
        event,
        risk,
        survival=true_survival(risk, grid),
        grid=grid,
        horizons=(1, 2.5),
        n_boot=50,
        seed=1,
    )
    assert list(result) == [
        "harrell_c",
        "harrell_c_low",
        "harrell_c_high",
        "uno_c",
        "uno_c_low",
        "uno_c_high",
        "auc_1",
        "auc_2.5",
        "ibs",
        "n",
        "events",
    ]
    assert result["harrell_c"] == pytest.approx(harrell_c(time, event, risk))
    assert result["harrell_c_low"] < result["harrell_c"] < result["harrell_c_high"]
    assert result["uno_c_low"] < result["uno_c"] < result["uno_c_high"]
    assert result["n"] == 120 and result["events"] == int(event.sum())
    assert evaluate(train_time, train_event, time, event, risk, horizons=(1, 2.5), n_boot=50, seed=1) == {
        k: v for k, v in result.items() if k != "ibs"
    }
    quick = evaluate(train_time, train_event, time, event, risk, n_boot=0)
    assert math.isnan(quick["uno_c_low"]) and "ibs" not in quick


# --- bad input --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: harrell_c([1.0, 2.0], [1, 0], [0.1]), "risk has 1"),
        (lambda: harrell_c([1.0, float("nan")], [1, 0], [0.1, 0.2]), "time: 1 of 2 values are missing"),
        (lambda: harrell_c([1.0, 2.0], [1, 2], [0.1, 0.2]), "event: event indicators must be 0"),
        (lambda: harrell_c([1.0, -2.0], [1, 0], [0.1, 0.2]), "time: follow-up times must be >= 0"),
        (lambda: harrell_c([1.0, 2.0], [1, 0], ["a", "b"]), "risk: expected numbers"),
        (lambda: uno_c([1.0, 2.0], [1, 0], [1.0, 2.0], [1, 0], [np.inf, 0.0]), "risk"),
        (lambda: uno_c([1.0, 2.0], [1], [1.0, 2.0], [1, 0], [0.0, 1.0]), "train_event has 1"),
        (lambda: uno_c([1.0, 2.0], [1, 0], [1.0, 2.0], [1, 0], [0.0, 1.0], tau=-1), "tau"),
        (lambda: time_dependent_auc([1.0, 2.0], [1, 0], [1.0, 2.0], [1, 0], [0.0, 1.0], [float("nan")]), "horizons"),
        (
            lambda: integrated_brier_score([1.0, 2.0], [1, 0], [1.0, 2.0], [1, 0], [[0.5, 0.4]], [1.0, 1.5]),
            r"survival: expected shape \(2, 2\)",
        ),
        (
            lambda: integrated_brier_score([1.0, 2.0], [1, 0], [1.0, 2.0], [1, 0], [[0.5, 1.4]] * 2, [1.0, 1.5]),
            r"\[0, 1\]",
        ),
        (
            lambda: integrated_brier_score([1.0, 2.0], [1, 0], [1.0, 2.0], [1, 0], [[0.5, 0.4]] * 2, [1.5, 1.0]),
            "grid: time points must be strictly increasing",
        ),
        (lambda: calibration_table([1.0, 2.0], [1, 0], [0.5, 0.4], 1.0, groups=3), "at least 3 cases"),
        (lambda: calibration_table([1.0, 2.0], [1, 0], [0.5, 0.4], 0.0), "horizon"),
        (lambda: brier_grid([1.0, 2.0], [1, 0], [1.0, 2.0], [1, 0], n=1), "n: a Brier grid"),
        (lambda: evaluate([1.0, 2.0], [1, 0], [1.0, 2.0], [1, 0], [0.0, 1.0], grid=[1.0, 1.5]), "given together"),
    ],
)
def test_bad_input_names_the_argument(call, message):
    with pytest.raises(InputError, match=message):
        call()


def test_module_exposes_no_state():
    public = [name for name in dir(metrics) if not name.startswith("_") and name.isupper()]
    assert public == ["NAN"]


def test_pooled_delta_c_is_the_mean_of_the_groups_paired_deltas() -> None:
    from lgerisk.evaluation.metrics import harrell_c, paired_delta_c, pooled_delta_c

    rng = np.random.default_rng(3)
    groups = []
    for n in (60, 90):
        t = rng.exponential(size=n)
        e = (rng.random(n) < 0.7).astype(int)
        groups.append((t, e, -t + rng.normal(0, 0.5, n), -t + rng.normal(0, 1.5, n)))
    singles = [paired_delta_c(*g, n_boot=0)[0] for g in groups]
    delta, low, high = pooled_delta_c(groups, n_boot=100, seed=2)
    assert delta == pytest.approx(np.mean(singles), abs=1e-12)
    assert low < delta < high
    # one group: the same point as the paired delta; no reference: the mean C
    assert pooled_delta_c(groups[:1], n_boot=0)[0] == pytest.approx(singles[0], abs=1e-12)
    c_only = pooled_delta_c([(t, e, r, None) for t, e, r, _ in groups], n_boot=0)[0]
    assert c_only == pytest.approx(np.mean([harrell_c(t, e, r) for t, e, r, _ in groups]), abs=1e-12)
    # the interval of the pooled delta is narrower than a single group's (more cases)
    single = paired_delta_c(*groups[0], n_boot=100, seed=2)
    assert high - low < single[2] - single[1]
    with pytest.raises(InputError):
        pooled_delta_c([])


def test_pooled_delta_c_over_repeated_runs_holds_their_spread() -> None:
    """Two pretraining runs per cohort on the same cases: the estimate is the mean over cohorts of the mean over
    runs; identical runs give the same estimate as one run, runs that disagree widen the interval."""
    from lgerisk.evaluation.metrics import harrell_c, pooled_delta_c

    rng = np.random.default_rng(4)
    cohorts = []
    for _ in range(3):
        t = rng.exponential(size=120)
        e = np.ones(120, dtype=int)
        cohorts.append((t, e, -t + rng.normal(0, 2.0, 120)))
    runs_alike, runs_apart, expected = [], [], []
    for t, e, reference in cohorts:
        good, poor = -t + rng.normal(0, 0.3, 120), rng.normal(size=120)
        runs_alike += [(t, e, good, reference)] * 2
        runs_apart += [(t, e, good, reference), (t, e, poor, reference)]
        expected.append((harrell_c(t, e, good) + harrell_c(t, e, poor)) / 2 - harrell_c(t, e, reference))
    clusters = [0, 0, 1, 1, 2, 2]
    single = pooled_delta_c(runs_alike[::2], n_boot=200, seed=3)
    alike = pooled_delta_c(runs_alike, n_boot=200, seed=3, clusters=clusters)
    apart = pooled_delta_c(runs_apart, n_boot=200, seed=3, clusters=clusters)
    assert alike[0] == pytest.approx(single[0], abs=1e-12)
    assert apart[0] == pytest.approx(float(np.mean(expected)), abs=1e-12)
    assert apart[2] - apart[1] > 1.5 * (alike[2] - alike[1])
    with pytest.raises(InputError, match="same cases"):
        shuffled = [(t[::-1], e, r, ref) for t, e, r, ref in runs_alike[1:2]]
        pooled_delta_c([runs_alike[0], *shuffled], n_boot=10, clusters=[0, 0])
