"""Breslow baseline, step-function survival and the torch LinearCox against lifelines' CoxPHFitter."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lgerisk.errors import InputError
from lgerisk.evaluation.cox import HEAD_PENALTY_GRID, LinearCox, breslow_baseline, choose_penalizer, survival_at

COLUMNS = ["a", "b", "c"]
TIGHT = {"precision": 1e-10, "r_precision": 1e-14}  # lifelines' Newton-Raphson run to the optimum


def tied_cohort(n: int = 150, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Covariates on different scales (so standardisation matters), integer times with many ties."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)) * np.array([1.0, 10.0, 0.1]) + np.array([0.0, 50.0, -1.0])
    log_hazard = 0.7 * x[:, 0] - 0.05 * x[:, 1] + 3.0 * x[:, 2]
    event_time = rng.exponential(np.exp(-(log_hazard - log_hazard.mean()))) * 5
    censor_time = rng.exponential(10.0, size=n)
    time = np.ceil(np.minimum(event_time, censor_time))
    event = (event_time <= censor_time).astype(int)
    return x, time, event


def frame_of(x: np.ndarray, time: np.ndarray | None = None, event: np.ndarray | None = None) -> pd.DataFrame:
    frame = pd.DataFrame(x, columns=COLUMNS)
    return frame if time is None else frame.assign(time=time, event=event)


@pytest.fixture(scope="module")
def cohort() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tied_cohort()


@pytest.fixture(scope="module")
def lifelines_models(cohort):
    from lifelines import CoxPHFitter

    x, time, event = cohort
    return {
        p: CoxPHFitter(penalizer=p).fit(frame_of(x, time, event), "time", "event", fit_options=TIGHT)
        for p in (0.0, 0.1, 1.0)
    }


def test_breslow_matches_lifelines_baseline_and_survival(cohort, lifelines_models) -> None:
    x, time, event = cohort
    cph = lifelines_models[0.0]
    risk = cph.predict_log_partial_hazard(frame_of(x)).to_numpy()  # lifelines' centred risk
    times, cumhaz = breslow_baseline(time, event, risk)
    assert np.array_equal(times, np.unique(time[event == 1]))
    theirs = cph.baseline_cumulative_hazard_.iloc[:, 0]
    np.testing.assert_allclose(cumhaz, theirs.loc[times].to_numpy(), rtol=1e-10)
    # S(t|x) = exp(-H0(t) exp(risk)) equals lifelines' curve at its own time grid (all observed durations)
    grid = theirs.index.to_numpy()
    ours = survival_at(risk, times, cumhaz, grid)
    np.testing.assert_allclose(ours, cph.predict_survival_function(frame_of(x), times=grid).to_numpy().T, atol=1e-6)


def test_breslow_curves_do_not_depend_on_the_risk_centring(cohort) -> None:
    _, time, event = cohort
    risk = np.random.default_rng(1).normal(size=time.size)
    grid = np.array([0.0, 1.0, 3.5, 10.0, 1e6])
    curves = [survival_at(risk + shift, *breslow_baseline(time, event, risk + shift), grid) for shift in (0.0, 700.0)]
    np.testing.assert_allclose(curves[0], curves[1], rtol=1e-10)
    assert np.all(curves[0][:, 0] == 1.0) and np.all(np.diff(curves[0], axis=1) <= 0)


def test_survival_at_is_a_right_continuous_step_function() -> None:
    times, cumhaz = np.array([1.0, 2.0]), np.array([0.1, 0.3])
    curve = survival_at(np.zeros(1), times, cumhaz, np.array([0.0, 0.999, 1.0, 1.999, 2.0, 50.0]))[0]
    np.testing.assert_allclose(-np.log(curve), [0.0, 0.0, 0.1, 0.1, 0.3, 0.3], atol=1e-15)
    assert survival_at(np.zeros(2), times, cumhaz, np.array([1.5])).shape == (2, 1)


def test_breslow_rejects_bad_outcomes() -> None:
    with pytest.raises(InputError, match="no events"):
        breslow_baseline(np.array([1.0, 2.0]), np.array([0, 0]), np.zeros(2))
    with pytest.raises(InputError, match="event"):
        breslow_baseline(np.array([1.0, 2.0]), np.array([0, 2]), np.zeros(2))
    with pytest.raises(InputError, match="risk"):
        breslow_baseline(np.array([1.0, 2.0]), np.array([1, 1]), np.zeros(3))


@pytest.mark.parametrize("penalizer", [0.0, 0.1, 1.0])
def test_newton_solver_matches_lifelines_on_tied_times(cohort, lifelines_models, penalizer: float) -> None:
    """The numpy Newton solver (exact Efron Hessian) reaches lifelines' coefficients as the L-BFGS one does."""
    x, time, event = cohort
    model = LinearCox(penalizer=penalizer, solver="newton").fit(x, time, event)
    assert model.converged_
    np.testing.assert_allclose(model.coef_, lifelines_models[penalizer].params_.to_numpy(), rtol=1e-6, atol=1e-9)


def test_newton_solver_matches_lbfgs_with_penalties_far_apart() -> None:
    """Per-column penalties 1000x apart, ties and near-separable rows: the same optimum as the L-BFGS reference."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 12))
    time = np.round(rng.exponential(np.exp(-x[:, 0])), 1) + 0.1
    event = (rng.random(40) < 0.5).astype(int)
    factor = np.where(np.arange(12) < 8, 1000.0, 1.0)
    for penalizer in (0.01, 1.0):
        reference = LinearCox(penalizer).fit(x, time, event, penalty_factor=factor)
        newton = LinearCox(penalizer, solver="newton").fit(x, time, event, penalty_factor=factor)
        assert newton.converged_
        np.testing.assert_allclose(newton.coef_, reference.coef_, rtol=1e-4, atol=1e-6)
    with pytest.raises(InputError, match="solver"):
        LinearCox(0.1, solver="sgd")


def test_newton_survives_a_step_where_a_risk_set_underflows() -> None:
    """A coefficient so large that the last risk set's weights underflow gives -inf, not an error, and the
    solver from zero still converges on the same rows."""
    from lgerisk.evaluation.cox import _efron_derivatives, efron_newton

    z, time, event = np.array([[1.0], [0.0], [0.5]]), np.array([1.0, 2.0, 3.0]), np.array([1, 1, 0])
    loglik, gradient, _ = _efron_derivatives(z, time, event, np.array([2000.0]))
    assert loglik == -np.inf and np.isnan(gradient).all()
    beta, converged = efron_newton(z, time, event, 0.1, np.ones(1))
    assert converged and np.isfinite(beta).all()


def test_group_penalties_shrink_the_block_without_signal() -> None:
    """The hazard lives in the first two columns: the second block (the other eight) is penalised hardest; move the
    hazard into the second block and its relative penalty falls."""
    from lgerisk.evaluation.cox import EMBEDDING_FACTOR_GRID, choose_group_penalties

    rng = np.random.default_rng(5)
    x = rng.normal(size=(160, 10))
    block = np.arange(10) >= 2
    chosen = []
    for signal in (0, 5):
        log_hazard = 1.2 * x[:, signal] + 0.8 * x[:, signal + 1]
        time = rng.exponential(np.exp(-log_hazard))
        event = (rng.random(160) < 0.8).astype(int)
        penalizer, factor, scores = choose_group_penalties(x, time, event, block, seed=1)
        chosen.append(factor)
        assert penalizer in HEAD_PENALTY_GRID and len(scores) == len(EMBEDDING_FACTOR_GRID) * len(HEAD_PENALTY_GRID)
        assert scores[f"{factor:g}/{penalizer:g}"] == max(v for v in scores.values() if np.isfinite(v))
    assert chosen[0] >= 100 and chosen[1] <= 10, chosen


@pytest.mark.parametrize("penalizer", [0.0, 0.1, 1.0])
def test_linear_cox_matches_lifelines(cohort, lifelines_models, penalizer: float) -> None:
    x, time, event = cohort
    cph = lifelines_models[penalizer]
    model = LinearCox(penalizer=penalizer).fit(x, time, event)
    assert model.converged_ and model.n_events_ == event.sum()
    np.testing.assert_allclose(model.coef_, cph.params_.to_numpy(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(model.mean_, x.mean(0))
    np.testing.assert_allclose(
        model.predict_risk(x), cph.predict_log_partial_hazard(frame_of(x)).to_numpy(), rtol=1e-4, atol=1e-6
    )
    grid = np.unique(time)[::3]
    np.testing.assert_allclose(
        model.predict_survival(x[:20], grid),
        cph.predict_survival_function(frame_of(x[:20]), times=grid).to_numpy().T,
        atol=1e-5,
    )


def test_penalty_shrinks_the_coefficients(cohort) -> None:
    x, time, event = cohort
    norms = [np.linalg.norm(LinearCox(penalizer=p).fit(x, time, event).coef_ * x.std(0, ddof=1)) for p in (0, 0.1, 1)]
    assert norms[0] > norms[1] > norms[2] > 0


def test_constant_column_gets_a_zero_coefficient(cohort) -> None:
    x, time, event = cohort
    with_constant = np.column_stack([x[:, :2], np.full(len(x), 3.0)])
    model = LinearCox(penalizer=0.1).fit(with_constant, time, event)
    reference = LinearCox(penalizer=0.1).fit(x[:, :2], time, event)
    assert model.coef_[2] == 0.0
    np.testing.assert_allclose(model.coef_[:2], reference.coef_, rtol=1e-8)
    np.testing.assert_allclose(model.baseline_cumhaz_, reference.baseline_cumhaz_, rtol=1e-8)


def test_model_round_trips_through_json(cohort) -> None:
    x, time, event = cohort
    model = LinearCox(penalizer=0.1).fit(x, time, event)
    copy = LinearCox.from_dict(json.loads(json.dumps(model.to_dict())))
    assert copy.penalizer == 0.1 and copy.n_events_ == model.n_events_
    np.testing.assert_array_equal(copy.predict_survival(x, [1.0, 5.0]), model.predict_survival(x, [1.0, 5.0]))
    with pytest.raises(InputError, match="LinearCox"):
        LinearCox.from_dict({"coef": [1.0]})


def test_linear_cox_rejects_bad_input(cohort) -> None:
    x, time, event = cohort
    with pytest.raises(InputError, match="no events"):
        LinearCox().fit(x, time, np.zeros_like(event))
    with pytest.raises(InputError, match="x"):
        LinearCox().fit(np.where(x > 2, np.nan, x), time, event)
    with pytest.raises(InputError, match="150"):
        LinearCox().fit(x, time[:-1], event[:-1])
    with pytest.raises(InputError, match="penalizer"):
        LinearCox(penalizer=-1.0)
    with pytest.raises(InputError, match="not fitted"):
        LinearCox().predict_risk(x)
    with pytest.raises(InputError, match="columns"):
        LinearCox().fit(x, time, event).predict_risk(x[:, :2])


def test_penalty_factor_matches_lifelines_per_column_penalizer(cohort) -> None:
    """``penalty_factor`` f with penalizer p is lifelines' per-column penalizer p * f (0: unpenalised)."""
    from lifelines import CoxPHFitter

    x, time, event = cohort
    factor = np.array([0.0, 1.0, 2.0])
    cph = CoxPHFitter(penalizer=1.0 * factor).fit(frame_of(x, time, event), "time", "event", fit_options=TIGHT)
    model = LinearCox(penalizer=1.0).fit(x, time, event, penalty_factor=factor)
    np.testing.assert_allclose(model.coef_, cph.params_.to_numpy(), rtol=1e-5, atol=1e-8)
    shrunk = LinearCox(penalizer=1.0).fit(x, time, event)
    assert abs(model.coef_[0]) > abs(shrunk.coef_[0])  # the unpenalised column keeps more of its effect
    with pytest.raises(InputError, match="penalty_factor"):
        LinearCox(penalizer=1.0).fit(x, time, event, penalty_factor=[1.0, -1.0, 1.0])
    best, _ = choose_penalizer(x, time, event, penalty_factor=factor)
    assert best in HEAD_PENALTY_GRID
