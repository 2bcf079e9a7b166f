"""The Cox model outside the network: Breslow baseline hazard, survival curves, and a penalised
linear Cox model fitted in torch that reproduces lifelines' ``CoxPHFitter`` (numpy in, numpy out).

Centring. ``breslow_baseline`` takes ``risk`` as given: it estimates the cumulative baseline hazard
``H0`` of ``exp(risk)``, so ``S(t | x) = exp(-H0(t) exp(risk))`` for the same ``risk`` scale. Shifting
every risk by ``c`` scales ``H0`` by ``exp(-c)`` and leaves the curves unchanged; risks centred near 0
are numerically safer. ``LinearCox`` centres like lifelines: ``risk = (x - mean_) . coef_``.

Penalty (lifelines 0.30, ``CoxPHFitter._newton_raphson_for_efron_model``, ``fitters/coxph_fitter.py``)::

    elastic_net_penalty = lambda beta, a: n * (self.penalizer * (self.l1_ratio * soft_abs(beta, a)
                                                                 + 0.5 * (1 - self.l1_ratio) * beta**2)).sum()
    ...
    ll_ -= elastic_net_penalty(beta, 1.3**i)

where ``n`` is the number of rows and ``beta`` the coefficients of the *standardised* covariates
(lifelines fits on ``(X - X.mean(0)) / X.std(0)``, pandas' ``std`` with ``ddof=1``, and returns
``params_ = beta / std``). So for ``l1_ratio = 0`` lifelines maximises
``loglik_Efron(Z beta) - n * penalizer / 2 * ||beta||^2`` over standardised ``beta``; ``LinearCox``
minimises exactly that objective (divided by ``n``), by L-BFGS in float64.

Survival curves are right-continuous step functions (``H0`` of the last event time ``<= t``, 0
before the first event). lifelines' ``predict_survival_function(times=...)`` instead interpolates
``H0`` linearly between the observed durations; the two agree at the observed durations.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypedDict, cast

import numpy as np
import torch

from lgerisk.errors import InputError
from lgerisk.objectives.survival import cox_efron_loss

if TYPE_CHECKING:
    from lgerisk.types import JSONDict

GRADIENT_TOLERANCE = 1e-9
"""L-BFGS stops when every partial derivative of the per-row objective is below this."""


def _outcome(time: np.ndarray, event: np.ndarray, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    time = np.asarray(time, dtype=float)
    event = np.asarray(event)
    if time.ndim != 1 or event.shape != time.shape:
        raise InputError(
            f"time and event: expected two 1-D arrays of the same length, got shapes {time.shape} and {event.shape}."
        )
    if n is not None and time.size != n:
        raise InputError(f"time and event: expected {n} values (one per row of the covariates), got {time.size}.")
    if not np.all(np.isfinite(time)):
        raise InputError("time: follow-up times must be finite numbers.")
    try:
        event_float = event.astype(float)
    except (TypeError, ValueError) as exc:
        raise InputError("event: expected 0 (censored) or 1 (event) values.") from exc
    if not np.all((event_float == 0) | (event_float == 1)):
        raise InputError("event: expected 0 (censored) or 1 (event) values only.")
    return time, event_float.astype(np.int64)


def _risk(risk: np.ndarray, n: int) -> np.ndarray:
    risk = np.asarray(risk, dtype=float)
    if risk.shape != (n,):
        raise InputError(f"risk: expected {n} values (one per case), got shape {risk.shape}.")
    if not np.all(np.isfinite(risk)):
        raise InputError("risk: risk scores must be finite numbers.")
    return risk


def breslow_baseline(time: np.ndarray, event: np.ndarray, risk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Breslow estimate of the cumulative baseline hazard of ``exp(risk)`` at the distinct event times.

    ``H0(t) = sum_{event times t_j <= t} d_j / sum_{i: T_i >= t_j} exp(risk_i)`` (``d_j`` events at
    ``t_j``); ``risk`` is used as given, so ``S(t | x) = exp(-H0(t) exp(risk(x)))``. With ``risk``
    lifelines' ``predict_log_partial_hazard`` of the training data this is its
    ``baseline_cumulative_hazard_`` at the event times. Computed in log space (any risk scale).

    Returns:
        ``(event_times, cumulative_hazard)``, both increasing, one value per distinct event time.

    Example:
        >>> breslow_baseline(np.array([1.0, 2.0, 2.0, 3.0]), np.array([1, 1, 0, 0]), np.zeros(4))
        (array([1., 2.]), array([0.25      , 0.58333333]))
    """
    time, event = _outcome(time, event)
    risk = _risk(risk, time.size)
    if not event.any():
        raise InputError("event: no events, so the baseline hazard cannot be estimated.")
    order = np.argsort(time, kind="stable")
    time, event, risk = time[order], event[order], risk[order]
    unique_times, first = np.unique(time, return_index=True)
    log_tail = np.logaddexp.accumulate(risk[::-1])[::-1]  # log sum over rows at or after each row
    events_at = np.add.reduceat(event, first)
    keep = events_at > 0
    increments = events_at[keep] * np.exp(-log_tail[first[keep]])
    return unique_times[keep], np.cumsum(increments)


def survival_at(
    risk: np.ndarray, baseline_times: np.ndarray, baseline_cumhaz: np.ndarray, at: np.ndarray
) -> np.ndarray:
    """Survival probability of each case at each time: ``exp(-H0(t) exp(risk))``, with ``H0`` the
    step function of the baseline (its value at the last event time ``<= t``, 0 before the first).

    Args:
        risk: ``(n,)`` risks on the scale the baseline was estimated for.
        baseline_times: increasing event times from :func:`breslow_baseline`.
        baseline_cumhaz: cumulative baseline hazard at those times.
        at: ``(m,)`` times to evaluate.

    Returns:
        ``(n, m)`` survival probabilities.

    Example:
        >>> survival_at(np.array([0.0, math.log(2)]), np.array([1.0, 2.0]), np.array([0.1, 0.3]),
        ...             np.array([0.5, 1.0, 1.5, 5.0])).round(4)
        array([[1.    , 0.9048, 0.9048, 0.7408],
               [1.    , 0.8187, 0.8187, 0.5488]])
    """
    risk = np.asarray(risk, dtype=float)
    if risk.ndim != 1:
        raise InputError(f"risk: expected a 1-D array of risk scores, got shape {risk.shape}.")
    baseline_times = np.asarray(baseline_times, dtype=float)
    baseline_cumhaz = np.asarray(baseline_cumhaz, dtype=float)
    if baseline_times.ndim != 1 or baseline_cumhaz.shape != baseline_times.shape:
        raise InputError("baseline: expected event times and cumulative hazards of the same length.")
    if baseline_times.size > 1 and np.any(np.diff(baseline_times) <= 0):
        raise InputError("baseline: event times must be strictly increasing.")
    at = np.atleast_1d(np.asarray(at, dtype=float))
    if at.ndim != 1 or np.any(np.isnan(at)):
        raise InputError("at: expected a 1-D array of times without NaN.")
    index = np.searchsorted(baseline_times, at, side="right") - 1
    cumhaz = np.where(index >= 0, baseline_cumhaz[np.clip(index, 0, None)] if baseline_cumhaz.size else 0.0, 0.0)
    return np.exp(-np.outer(np.exp(risk), cumhaz))


def _efron_derivatives(
    z: np.ndarray, time: np.ndarray, event: np.ndarray, beta: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """The Efron partial log-likelihood of ``z @ beta``, its gradient and its Hessian (numpy, float64).

    Per distinct event time with tied events ``D`` (``d`` of them) and risk set ``R``, the terms
    ``l = 0..d-1`` have ``phi_l = S0_R - l/d S0_D`` (``S0``: sums of ``exp(eta)``, ``S1``: of
    ``exp(eta) z``, ``S2``: of ``exp(eta) z z^T``); the log-likelihood is ``sum_D eta - sum_l log phi_l``,
    the gradient ``sum_D z - sum_l S1_l / phi_l`` and the Hessian
    ``-sum_l (S2_l / phi_l - S1_l S1_l^T / phi_l^2)``, built as ``-(z^T diag(c) z - V^T V)`` without any
    per-time ``p x p`` sum (``c``: each row's weight summed over the terms whose sets hold it; ``V``: a row
    ``S1_l / phi_l`` per term)."""
    eta = z @ beta
    top = float(eta.max())
    weight = np.exp(eta - top)
    order = np.argsort(time, kind="stable")
    t, zs, ws, es, etas = time[order], z[order], weight[order], event[order].astype(bool), eta[order]
    tail0 = np.cumsum(ws[::-1])[::-1]
    tail1 = np.cumsum((ws[:, None] * zs)[::-1], axis=0)[::-1]
    event_times = np.unique(t[es])
    loglik = float(etas[es].sum())
    gradient = zs[es].sum(axis=0)
    row_coefficient = np.zeros(len(t))
    per_time = np.zeros(len(event_times))  # sum over the time's terms of 1/phi_l
    vectors = []
    for k, when in enumerate(event_times):
        first = int(np.searchsorted(t, when, side="left"))
        tied = np.flatnonzero((t == when) & es)
        d = tied.size
        s0_d, s1_d = float(ws[tied].sum()), (ws[tied, None] * zs[tied]).sum(axis=0)
        for term in range(d):
            share = term / d
            phi = tail0[first] - share * s0_d
            if not phi > 0:  # every weight of the risk set underflowed: a step far outside the data
                return -math.inf, np.full(z.shape[1], np.nan), np.full((z.shape[1],) * 2, np.nan)
            s1 = tail1[first] - share * s1_d
            loglik -= math.log(phi) + top
            gradient = gradient - s1 / phi
            per_time[k] += 1.0 / phi
            row_coefficient[tied] -= share / phi  # the tied rows' share taken out of the term's set
            vectors.append(s1 / phi)
    # every row is in the sets of the event times at or before its own time
    row_coefficient += np.concatenate([[0.0], np.cumsum(per_time)])[np.searchsorted(event_times, t, side="right")]
    row_coefficient *= ws
    v = np.asarray(vectors)
    hessian = -(zs.T @ (row_coefficient[:, None] * zs) - v.T @ v)
    return loglik, gradient, hessian


def efron_newton(
    z: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    penalizer: float,
    factor: np.ndarray,
    max_iter: int = 100,
) -> tuple[np.ndarray, bool]:
    """Standardised coefficients minimising ``(-loglik_Efron + n p / 2 sum_j f_j beta_j^2) / n`` by Newton's
    method with step halving (the objective of :class:`LinearCox`); converged when every partial derivative of
    that per-row objective is below ``GRADIENT_TOLERANCE``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> z = rng.normal(size=(50, 2)); time = rng.exponential(np.exp(-z[:, 0])); event = np.ones(50)
        >>> beta, converged = efron_newton(z, time, event, 0.1, np.ones(2))
        >>> converged, bool(beta[0] > 0.3)
        (True, True)
    """
    n, p = z.shape
    if p == 0:
        return np.zeros(0), True
    ridge = penalizer * np.asarray(factor, dtype=float)

    def objective(beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        loglik, gradient, hessian = _efron_derivatives(z, time, event, beta)
        value = (-loglik + 0.5 * n * float((ridge * beta * beta).sum())) / n
        return value, (-gradient + n * ridge * beta) / n, (-hessian + n * np.diag(ridge)) / n

    beta = np.zeros(p)
    value, gradient, hessian = objective(beta)
    for _ in range(max_iter):
        if float(np.abs(gradient).max()) <= GRADIENT_TOLERANCE:
            return beta, True
        try:
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(hessian, gradient, rcond=None)[0]
        if not np.all(np.isfinite(step)):
            return beta, False
        size = 1.0
        for _ in range(40):  # step halving until the objective does not rise
            trial = beta - size * step
            trial_value, trial_gradient, trial_hessian = objective(trial)
            if np.isfinite(trial_value) and trial_value <= value + 1e-12 * abs(value):
                break
            size /= 2
        else:
            return beta, False
        if abs(value - trial_value) <= 1e-15 * max(1.0, abs(value)) and size < 1:
            beta, value, gradient, hessian = trial, trial_value, trial_gradient, trial_hessian
            break
        beta, value, gradient, hessian = trial, trial_value, trial_gradient, trial_hessian
    return beta, bool(np.all(np.isfinite(beta)) and float(np.abs(gradient).max()) <= 1e-6)


def _covariates(x: np.ndarray, n_columns: int | None = None) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim != 2:
        raise InputError(f"x: expected a 2-D (cases, covariates) array, got shape {x.shape}.")
    if n_columns is not None and x.shape[1] != n_columns:
        raise InputError(f"x: expected {n_columns} covariate columns as in training, got {x.shape[1]}.")
    if not np.all(np.isfinite(x)):
        raise InputError("x: covariates must be finite numbers (impute missing values first).")
    return x


class _LinearCoxDict(TypedDict, total=False):
    """The JSON layout of :meth:`LinearCox.to_dict`, as :meth:`LinearCox.from_dict` reads it."""

    model: str
    penalizer: float
    coef: list[float]
    mean: list[float]
    scale: list[float]
    baseline_times: list[float]
    baseline_cumhaz: list[float]
    n_events: int
    n_samples: int
    converged: bool


@dataclass(eq=False)
class LinearCox:
    """Linear Cox proportional-hazards model with lifelines' L2 penalty, fitted by L-BFGS in torch.

    The objective is lifelines' ``CoxPHFitter(penalizer=p, l1_ratio=0)`` one (see the module
    docstring): the Efron partial likelihood of the standardised covariates ``Z = (x - mean) / sd``
    (``sd`` with ``ddof=1``) minus ``n * p / 2 * ||beta||^2`` on the *standardised* coefficients; the
    reported ``coef_ = beta / sd`` is on the original scale and matches lifelines' ``params_``.
    A constant column carries no information for a Cox model (the partial likelihood ignores
    shifts), where lifelines would divide by a zero SD: it gets a zero coefficient instead.

    Attributes (after ``fit``): ``coef_`` (p,), ``mean_`` (p,) column means, ``scale_`` (p,) column SDs
    (1 for constant columns), ``baseline_times_`` and ``baseline_cumhaz_`` (Breslow, on the centred
    training risk), ``n_events_``, ``n_samples_``, ``converged_``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(60, 2)); time = rng.exponential(np.exp(-x[:, 0])); event = np.ones(60)
        >>> model = LinearCox(penalizer=0.1).fit(x, time, event)
        >>> bool(model.coef_[0] > 0.3), model.predict_survival(x[:2], [0.0]).tolist()
        (True, [[1.0], [1.0]])
    """

    penalizer: float = 0.0
    solver: str = "lbfgs"
    """``lbfgs`` (torch, the reference that matches lifelines) or ``newton`` (:func:`efron_newton`: numpy, exact
    Hessian, robust where per-column penalties differ by orders of magnitude; what the fusion heads use)."""
    coef_: np.ndarray | None = field(default=None, init=False, repr=False)
    mean_: np.ndarray | None = field(default=None, init=False, repr=False)
    scale_: np.ndarray | None = field(default=None, init=False, repr=False)
    baseline_times_: np.ndarray | None = field(default=None, init=False, repr=False)
    baseline_cumhaz_: np.ndarray | None = field(default=None, init=False, repr=False)
    n_events_: int = field(default=0, init=False)
    n_samples_: int = field(default=0, init=False)
    converged_: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        penalizer = self.penalizer
        if (
            isinstance(penalizer, bool)
            or not isinstance(penalizer, (int, float))
            or not math.isfinite(penalizer)
            or penalizer < 0
        ):
            raise InputError(f"penalizer: expected a finite number >= 0, got {penalizer!r}.")
        self.penalizer = float(penalizer)
        if self.solver not in ("lbfgs", "newton"):
            raise InputError(f"solver: expected lbfgs or newton, got {self.solver!r}.")

    def fit(
        self,
        x: np.ndarray,
        time: np.ndarray,
        event: np.ndarray,
        max_iter: int = 500,
        penalty_factor: np.ndarray | None = None,
    ) -> LinearCox:
        """Fit on ``(n, p)`` covariates and outcomes; returns ``self``. ``penalty_factor`` ``(p,)`` scales the
        penalty column by column (glmnet's name: 0 leaves a column unpenalised; default all 1). Raises
        ``InputError`` on no events, fewer than 2 rows, or non-finite values."""
        x = _covariates(x)
        n, p = x.shape
        factor = np.ones(p) if penalty_factor is None else np.asarray(penalty_factor, dtype=float).reshape(-1)
        if factor.shape != (p,) or not np.isfinite(factor).all() or (factor < 0).any():
            raise InputError(f"penalty_factor: expected {p} finite numbers >= 0, got {factor.tolist()!r}.")
        time, event = _outcome(time, event, n)
        if n < 2:
            raise InputError(f"x: a Cox model needs at least 2 cases, got {n}.")
        if not event.any():
            raise InputError("event: no events, so a Cox model cannot be fitted.")
        mean = x.mean(axis=0)
        scale = x.std(axis=0, ddof=1)
        varying = np.ptp(x, axis=0) > 0
        scale = np.where(varying, scale, 1.0)
        z = (x[:, varying] - mean[varying]) / scale[varying]
        if self.solver == "newton":
            beta, converged = efron_newton(z, time, event, self.penalizer, factor[varying])
        else:
            beta, converged = self._minimise(z, time, event, max_iter, factor[varying])
        coef = np.zeros(p)
        coef[varying] = beta / scale[varying]
        self.coef_, self.mean_, self.scale_ = coef, mean, scale
        self.baseline_times_, self.baseline_cumhaz_ = breslow_baseline(time, event, (x - mean) @ coef)
        self.n_events_, self.n_samples_, self.converged_ = int(event.sum()), int(n), bool(converged)
        return self

    def _minimise(
        self, z: np.ndarray, time: np.ndarray, event: np.ndarray, max_iter: int, factor: np.ndarray | None = None
    ) -> tuple[np.ndarray, bool]:
        """Standardised coefficients minimising ``(-loglik_Efron + n p / 2 sum_j f_j beta_j^2) / n``."""
        n, p = z.shape
        if p == 0:
            return np.zeros(0), True
        weights = torch.as_tensor(np.ones(p) if factor is None else factor, dtype=torch.float64)
        z_t = torch.as_tensor(z, dtype=torch.float64)
        time_t = torch.as_tensor(time, dtype=torch.float64)
        event_t = torch.as_tensor(event, dtype=torch.float64)
        beta = torch.zeros(p, dtype=torch.float64, requires_grad=True)
        optimiser = torch.optim.LBFGS(
            [beta],
            lr=1.0,
            max_iter=max_iter,
            max_eval=2 * max_iter,
            history_size=20,
            tolerance_grad=GRADIENT_TOLERANCE,
            tolerance_change=1e-15,
            line_search_fn="strong_wolfe",
        )

        def objective() -> torch.Tensor:
            optimiser.zero_grad()
            loss = (
                cox_efron_loss(z_t @ beta, time_t, event_t, reduction="sum") / n
                + 0.5 * self.penalizer * (weights * beta * beta).sum()
            )
            loss.backward()
            return cast("torch.Tensor", loss)

        for _ in range(3):  # a restart clears a stale curvature history if the first run stalls
            optimiser.step(objective)
            objective()
            assert beta.grad is not None  # objective() ran backward on a loss of beta
            if float(beta.grad.abs().max()) <= GRADIENT_TOLERANCE * 10:
                break
            optimiser.state.clear()
        objective()
        assert beta.grad is not None
        converged = bool(torch.isfinite(beta).all()) and float(beta.grad.abs().max()) <= 1e-6
        return beta.detach().numpy().copy(), converged

    def _check_fitted(self) -> None:
        if self.coef_ is None:
            raise InputError("LinearCox: the model is not fitted yet (call fit first).")

    def predict_risk(self, x: np.ndarray) -> np.ndarray:
        """Log partial hazard ``(x - mean_) . coef_`` (lifelines' ``predict_log_partial_hazard``)."""
        self._check_fitted()
        assert self.coef_ is not None and self.mean_ is not None  # fit and from_dict set them all
        x = _covariates(x, self.coef_.size)
        return cast("np.ndarray", (x - self.mean_) @ self.coef_)

    def predict_survival(self, x: np.ndarray, at: np.ndarray) -> np.ndarray:
        """``(n, len(at))`` survival probabilities ``exp(-H0(t) exp(predict_risk(x)))`` (step function)."""
        self._check_fitted()
        assert self.baseline_times_ is not None and self.baseline_cumhaz_ is not None  # set with coef_
        return survival_at(self.predict_risk(x), self.baseline_times_, self.baseline_cumhaz_, np.asarray(at))

    def to_dict(self) -> JSONDict:
        """JSON-safe description of the fitted model (for a model card); :meth:`from_dict` reads it back.

        Example:
            >>> model = LinearCox().fit(np.array([[0.0], [1.0], [2.0]]), np.array([3.0, 2.0, 1.0]), np.array([1, 1, 1]))
            >>> LinearCox.from_dict(model.to_dict()).predict_risk(np.array([[1.0]])).tolist()
            [0.0]
        """
        self._check_fitted()
        assert self.coef_ is not None and self.mean_ is not None and self.scale_ is not None  # set with coef_
        assert self.baseline_times_ is not None and self.baseline_cumhaz_ is not None
        return {
            "model": "LinearCox",
            "penalizer": self.penalizer,
            "coef": self.coef_.tolist(),
            "mean": self.mean_.tolist(),
            "scale": self.scale_.tolist(),
            "baseline_times": self.baseline_times_.tolist(),
            "baseline_cumhaz": self.baseline_cumhaz_.tolist(),
            "n_events": self.n_events_,
            "n_samples": self.n_samples_,
            "converged": self.converged_,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> LinearCox:
        """A fitted model from :meth:`to_dict`'s output."""
        required = ("penalizer", "coef", "mean", "baseline_times", "baseline_cumhaz")
        if (
            not isinstance(data, dict)
            or data.get("model", "LinearCox") != "LinearCox"
            or any(key not in data for key in required)
        ):
            raise InputError(f"LinearCox: expected a dictionary with keys {', '.join(required)}.")
        data = cast("_LinearCoxDict", data)  # a dict with to_dict's keys: read as its layout
        model = cls(penalizer=data["penalizer"])
        try:
            coef = np.asarray(data["coef"], dtype=float)
            mean = np.asarray(data["mean"], dtype=float)
            scale = np.asarray(data.get("scale", np.ones_like(coef)), dtype=float)
            times = np.asarray(data["baseline_times"], dtype=float)
            cumhaz = np.asarray(data["baseline_cumhaz"], dtype=float)
        except (TypeError, ValueError) as exc:
            raise InputError("LinearCox: coefficients and baseline must be lists of numbers.") from exc
        if (
            coef.ndim != 1
            or mean.shape != coef.shape
            or scale.shape != coef.shape
            or times.ndim != 1
            or cumhaz.shape != times.shape
        ):
            raise InputError(
                "LinearCox: coef, mean and scale must have one value per covariate, and the "
                "baseline one cumulative hazard per event time."
            )
        model.coef_, model.mean_, model.scale_ = coef, mean, scale
        model.baseline_times_, model.baseline_cumhaz_ = times, cumhaz
        model.n_events_ = int(data.get("n_events", 0))
        model.n_samples_ = int(data.get("n_samples", 0))
        model.converged_ = bool(data.get("converged", True))
        return model


HEAD_PENALTY_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)
"""Penalties ``choose_penalizer`` compares (lifelines' scale: the L2 term is n * p / 2 * ||beta||^2)."""


def inner_folds(event: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The inner fold (0..folds-1) of each training row, stratified by event: each class shuffled with ``seed``
    and dealt round the folds.

    Example:
        >>> folds = inner_folds(np.array([1, 1, 0, 0, 1, 0, 1, 0]), 2, seed=0)
        >>> sorted(folds.tolist()), int(folds[[0, 1, 4, 6]].sum())       # two events in each fold
        ([0, 0, 0, 0, 1, 1, 1, 1], 2)
    """
    event = np.asarray(event).astype(int)
    rng = np.random.default_rng(seed)
    assignment = np.empty(len(event), dtype=int)
    for label in (0, 1):
        index = rng.permutation(np.flatnonzero(event == label))
        assignment[index] = np.arange(index.size) % folds
    return assignment


def choose_penalizer(
    x: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    grid: tuple[float, ...] = HEAD_PENALTY_GRID,
    folds: int = 5,
    seed: int = 0,
    penalty_factor: np.ndarray | None = None,
    solver: str = "lbfgs",
) -> tuple[float, dict[str, float]]:
    """The L2 penalty of ``grid`` whose ``LinearCox`` has the best inner cross-validated Harrell's C on
    these (training) rows; ties go to the larger penalty. Returns (penalty, {penalty: C}).
    ``penalty_factor`` and ``solver`` are passed to every fit (:class:`LinearCox`).

    Folds are stratified by event; the pooled out-of-fold risks are scored (each fold's risks centred
    on its training mean, as the outer evaluation does).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(80, 3)); time = rng.exponential(np.exp(-x[:, 0])); event = np.ones(80)
        >>> best, scores = choose_penalizer(x, time, event)
        >>> best in HEAD_PENALTY_GRID and scores[f"{best:g}"] == max(scores.values())
        True
    """
    from lgerisk.evaluation.metrics import harrell_c

    x = np.asarray(x, dtype=float)
    time = np.asarray(time, dtype=float)
    event = np.asarray(event).astype(int)
    assignment = inner_folds(event, folds, seed)
    scores: dict[str, float] = {}
    for penalizer in grid:
        risk = np.full(len(x), np.nan)
        for k in range(folds):
            train, test = assignment != k, assignment == k
            if not test.any() or event[train].sum() == 0:
                continue
            try:
                model = LinearCox(penalizer=penalizer, solver=solver).fit(
                    x[train], time[train], event[train], penalty_factor=penalty_factor
                )
            except InputError:
                continue
            risk[test] = (x[test] - x[train].mean(axis=0)) @ model.coef_
        done = np.isfinite(risk)
        scores[f"{penalizer:g}"] = (
            float(harrell_c(time[done], event[done], risk[done]))
            if done.sum() > 1 and event[done].sum() > 0
            else float("nan")
        )
    finite = [(value, float(key)) for key, value in scores.items() if np.isfinite(value)]
    return (max(finite)[1] if finite else float(grid[len(grid) // 2])), scores


EMBEDDING_FACTOR_GRID = (1.0, 10.0, 100.0, 1000.0)
"""Penalty factors of the second block relative to the first that ``choose_group_penalties`` compares: from the
plain ridge (1, the same penalty on every column) to the second block all but left out (1000: the model reverts
to the first block alone). Never below 1: the second block is the many-column one (the embedding), and a
smaller penalty there than on a handful of selected radiomics columns only fits noise (and is slow to fit)."""


def choose_group_penalties(
    x: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    block: np.ndarray,
    grid: tuple[float, ...] = HEAD_PENALTY_GRID,
    factors: tuple[float, ...] = EMBEDDING_FACTOR_GRID,
    folds: int = 5,
    seed: int = 0,
    penalty_factor: np.ndarray | None = None,
) -> tuple[float, float, dict[str, float]]:
    """A group ridge's two penalties by inner cross-validation on these (training) rows.

    The columns where ``block`` is true (e.g. the image embedding) are penalised ``factor`` times as much as
    the others (e.g. the radiomics): every ``(factor, penalizer)`` of ``factors`` x ``grid`` is scored by
    :func:`choose_penalizer` on the same folds (Newton fits); the best inner Harrell's C wins, ties going to the larger
    factor (the simpler model) and then the larger penalty. ``penalty_factor`` (per column) multiplies both.
    Returns (penalizer, factor, {"factor/penalizer": C}).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(120, 4)); time = rng.exponential(np.exp(-x[:, 0])); event = np.ones(120)
        >>> penalizer, factor, scores = choose_group_penalties(x, time, event, np.array([False, True, True, True]))
        >>> factor >= 10    # the signal is in the first block: the second one is shrunk harder
        True
    """
    block = np.asarray(block, dtype=bool).reshape(-1)
    base = np.ones(block.size) if penalty_factor is None else np.asarray(penalty_factor, dtype=float).reshape(-1)
    scores: dict[str, float] = {}
    candidates = []
    for factor in factors:
        best, inner = choose_penalizer(
            x,
            time,
            event,
            grid,
            folds,
            seed,
            penalty_factor=base * np.where(block, factor, 1.0),
            solver="newton",
        )
        for key, value in inner.items():
            scores[f"{factor:g}/{key}"] = value
        if np.isfinite(inner[f"{best:g}"]):
            candidates.append((inner[f"{best:g}"], factor, best))
    if not candidates:
        return float(grid[len(grid) // 2]), 1.0, scores
    _, factor, best = max(candidates)
    return float(best), float(factor), scores
