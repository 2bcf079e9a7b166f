"""Survival objectives: the Cox partial likelihood (Efron or Breslow ties) and the discrete-time
logistic-hazard likelihood, all in torch.

Conventions: ``risk`` is the log relative hazard (higher = earlier event), ``time`` the follow-up
time, ``event`` 1 for an event and 0 for censoring. The Cox losses are vectorised (one sort, a
reverse cumulative log-sum-exp for the risk sets, a scatter for the tied events), stable in
float32 and float64, differentiable, and run on the device of ``risk``. They need no host sync,
so they can sit inside a compiled or CUDA-graph training step.

The logistic-hazard model (Gensheimer & Narasimhan, PeerJ 2019; pycox ``LogisticHazard``, Kvamme
et al., JMLR 2019) splits follow-up into intervals ``(cuts[k-1], cuts[k]]`` (``cuts[-1] = 0``) and
predicts one logit of the conditional hazard per interval.

Shape mistakes in the tensors are programming errors and raise ``ValueError`` (as in
``lgerisk.objectives.contrastive``); bad user data handed to the numpy helpers raises
``InputError``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from lgerisk.errors import InputError

REDUCTIONS = ("mean", "sum")


def _check_cox(risk: torch.Tensor, time: torch.Tensor, event: torch.Tensor, reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}.")
    if risk.dim() != 1 or time.shape != risk.shape or event.shape != risk.shape:
        raise ValueError(
            "risk, time and event must be three 1-D tensors of the same length, got "
            f"{tuple(risk.shape)}, {tuple(time.shape)} and {tuple(event.shape)}."
        )
    if not risk.is_floating_point():
        raise ValueError(f"risk must be a floating-point tensor, got {risk.dtype}.")


def _sorted_risk_sets(
    risk: torch.Tensor, time: torch.Tensor, event: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sort by time; return the sorted risk, the sorted event (in risk's dtype), the tie group of each
    row, the first row of each tie group, and per row the log risk-set sum ``log sum_{T_j >= T_i} exp(risk_j)``."""
    time = time.to(risk.device)
    order = torch.argsort(time, stable=True)
    r = risk[order]
    e = (event.to(device=risk.device)[order] != 0).to(risk.dtype)
    _, group, counts = torch.unique_consecutive(time[order], return_inverse=True, return_counts=True)
    first = torch.cumsum(counts, 0) - counts
    # log of the sum over the rows at or after each row; every row of a tie group shares its first row's set
    log_tail = torch.logcumsumexp(r.flip(0), 0).flip(0)
    log_risk_set = log_tail[first][group]
    return r, e, group, first, log_risk_set


def _reduce(total_log_lik: torch.Tensor, n_events: torch.Tensor, reduction: str) -> torch.Tensor:
    loss = -total_log_lik
    if reduction == "mean":
        loss = loss / n_events.clamp_min(1)
    return loss


def cox_efron_loss(
    risk: torch.Tensor, time: torch.Tensor, event: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """Negative Cox partial log-likelihood with Efron's approximation for tied event times.

    For each distinct event time with ``d`` events ``D``, risk set ``R``, ``S = sum_R exp(risk)`` and
    ``E = sum_D exp(risk)``, the log-likelihood gains ``sum_D risk - sum_{l<d} log(S - l/d E)``; computed
    as ``log S + log1p(-(l/d) E/S)``, stable for any scale of ``risk``. Without ties this is the plain
    (Breslow) partial likelihood. ``reduction="mean"`` divides by the number of events, ``"sum"`` does
    not (then it equals ``-CoxPHFitter.log_likelihood_`` of lifelines at the same coefficients). With no
    events the loss is a zero that is still attached to ``risk``'s graph.

    Args:
        risk: ``(n,)`` log relative hazard.
        time: ``(n,)`` follow-up times (any real dtype; ties are exact equality).
        event: ``(n,)`` 1 for an event, 0 for censoring (bool, int or float; any non-zero is an event).
        reduction: ``"mean"`` (per event) or ``"sum"``.

    Example:
        >>> risk = torch.tensor([0.5, -0.2, 0.1, 0.0], requires_grad=True)
        >>> time = torch.tensor([1.0, 2.0, 2.0, 3.0])
        >>> event = torch.tensor([1, 1, 1, 0])
        >>> loss = cox_efron_loss(risk, time, event, reduction="sum")
        >>> round(loss.item(), 4)
        2.8669
        >>> loss.backward(); bool(torch.isfinite(risk.grad).all())
        True
    """
    _check_cox(risk, time, event, reduction)
    if risk.numel() == 0:
        return risk.sum() * 0
    r, e, group, first, log_risk_set = _sorted_risk_sets(risk, time, event)
    n_groups = first.shape[0]
    is_event = e > 0
    zeros = torch.zeros(n_groups, dtype=r.dtype, device=r.device)
    n_tied = zeros.index_add(0, group, e)  # d per tie group
    # log E per group: a log-sum-exp over the group's events, shifted by their (detached) maximum
    neg_inf = torch.full_like(r, float("-inf"))
    shift = torch.full((n_groups,), float("-inf"), dtype=r.dtype, device=r.device).scatter_reduce(
        0, group, torch.where(is_event, r.detach(), neg_inf), reduce="amax", include_self=True
    )
    shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
    row_shift = shift[group]
    # rows that are not events contribute exp(0) * 0: no overflow, no NaN gradient
    scaled = torch.exp(torch.where(is_event, r, row_shift) - row_shift) * e
    sum_exp = zeros.index_add(0, group, scaled)
    log_tied = shift + torch.log(torch.where(n_tied > 0, sum_exp, torch.ones_like(sum_exp)))
    # Efron fraction l/d of each event within its tie group (l = 0, 1, ..., d-1)
    # (an integer cumsum: exact, and allowed on CUDA under torch.use_deterministic_algorithms)
    cum_events = torch.cumsum(is_event.long(), 0)
    before = (cum_events[first] - is_event[first].long())[group]
    rank = (cum_events - before - 1).to(r.dtype)
    fraction = torch.where(is_event, rank / n_tied[group].clamp_min(1), torch.zeros_like(e))
    ratio = torch.exp(torch.where(is_event, log_tied[group] - log_risk_set, neg_inf))  # E / S <= 1
    log_denominator = log_risk_set + torch.log1p(-fraction * ratio)
    total = (e * (r - log_denominator)).sum()
    return _reduce(total, e.sum(), reduction)


def cox_with_radiomics_loss(
    risk: torch.Tensor,
    time: torch.Tensor,
    event: torch.Tensor,
    predicted: torch.Tensor | None,
    target: torch.Tensor | None,
    weight: float,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Fine-tuning's multi-task loss: the Efron Cox loss (mean per event) plus ``weight`` times the mean squared
    error of the auxiliary head's ``predicted`` standardised radiomics against ``target`` — the guidance of
    radiomics-guided pretraining kept while the encoder learns the risk. Returns (loss, the auxiliary term or
    ``None``); at ``weight`` 0 (or without a head) the loss is the Cox loss itself.

    Example:
        >>> risk, time, event = torch.tensor([0.3, -0.1, 0.2]), torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1, 0, 1])
        >>> cox = cox_efron_loss(risk, time, event)
        >>> loss, aux = cox_with_radiomics_loss(risk, time, event, torch.zeros(3, 2), torch.ones(3, 2), 0.5)
        >>> round(float(loss - cox), 6), float(aux)
        (0.5, 1.0)
    """
    cox = cox_efron_loss(risk, time, event)
    if weight == 0 or predicted is None or target is None:
        return cox, None
    auxiliary = F.mse_loss(predicted.float(), target.float())
    return cox + weight * auxiliary, auxiliary


def cox_breslow_loss(
    risk: torch.Tensor, time: torch.Tensor, event: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """Negative Cox partial log-likelihood with Breslow's handling of ties (every tied event sees the
    full risk set). Same arguments and conventions as :func:`cox_efron_loss`; the two agree when no
    event times are tied.

    Example:
        >>> risk = torch.tensor([0.5, -0.2, 0.1, 0.0])
        >>> time = torch.tensor([1.0, 2.0, 3.0, 4.0]); event = torch.tensor([1, 1, 0, 1])
        >>> bool(torch.isclose(cox_breslow_loss(risk, time, event), cox_efron_loss(risk, time, event)))
        True
    """
    _check_cox(risk, time, event, reduction)
    if risk.numel() == 0:
        return risk.sum() * 0
    r, e, _, _, log_risk_set = _sorted_risk_sets(risk, time, event)
    total = (e * (r - log_risk_set)).sum()
    return _reduce(total, e.sum(), reduction)


def logistic_hazard_loss(
    logits: torch.Tensor, bin_index: torch.Tensor, event: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """Negative log-likelihood of the discrete-time logistic-hazard model (pycox ``LogisticHazard``).

    Case ``i`` in interval ``k`` contributes the binary cross-entropy of every interval ``j <= k``:
    target 0 ("survived") for ``j < k`` and ``event_i`` for ``j = k``. A censored case therefore
    counts as having survived its own interval (the pycox convention). ``"mean"`` averages over
    cases, ``"sum"`` adds them.

    Args:
        logits: ``(n, bins)`` logits of the conditional hazard of each interval.
        bin_index: ``(n,)`` integer interval of each case (see :func:`discretise`).
        event: ``(n,)`` 1 for an event, 0 for censoring.
        reduction: ``"mean"`` or ``"sum"``.

    Example:
        >>> logits = torch.zeros(2, 3)
        >>> loss = logistic_hazard_loss(logits, torch.tensor([1, 2]), torch.tensor([1, 0]))
        >>> round(loss.item(), 4)  # (2 + 3) intervals at p = 0.5, averaged over 2 cases: 2.5 log 2
        1.7329
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}.")
    if logits.dim() != 2 or bin_index.shape != logits.shape[:1] or event.shape != logits.shape[:1]:
        raise ValueError(
            "logits must be (n, bins) with bin_index and event (n,), got "
            f"{tuple(logits.shape)}, {tuple(bin_index.shape)} and {tuple(event.shape)}."
        )
    if bin_index.is_floating_point() or bin_index.is_complex():
        raise ValueError(f"bin_index must be an integer tensor, got {bin_index.dtype}.")
    bins = logits.shape[1]
    index = bin_index.to(device=logits.device, dtype=torch.long)
    if index.numel() == 0:
        return logits.sum() * 0
    if bool(index.min() < 0) or bool(index.max() >= bins):
        raise ValueError(f"bin_index must lie in [0, {bins - 1}] for {bins} intervals.")
    target = torch.zeros_like(logits).scatter(
        1, index[:, None], event.to(device=logits.device, dtype=logits.dtype)[:, None]
    )
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    at_risk = torch.arange(bins, device=logits.device)[None, :] <= index[:, None]
    per_case = (bce * at_risk).sum(1)
    return per_case.mean() if reduction == "mean" else per_case.sum()


def logistic_hazard_survival(logits: torch.Tensor) -> torch.Tensor:
    """Survival probability at the end of each interval, ``S(cuts[k]) = prod_{j<=k} (1 - sigmoid(logit_j))``
    (computed as a cumulative sum of log-sigmoids, so it never underflows to exactly 0 early).

    Args:
        logits: ``(..., bins)`` logits of the conditional hazard of each interval.

    Returns:
        ``(..., bins)`` survival at ``cuts``; non-increasing along the last axis.

    Example:
        >>> logistic_hazard_survival(torch.zeros(1, 3))
        tensor([[0.5000, 0.2500, 0.1250]])
    """
    return torch.exp(torch.cumsum(F.logsigmoid(-logits), dim=-1))


def _check_cuts(cuts: np.ndarray) -> np.ndarray:
    cuts = np.asarray(cuts, dtype=float)
    if cuts.ndim != 1 or cuts.size == 0:
        raise InputError("cuts: expected a non-empty 1-D array of interval end times.")
    if not np.all(np.isfinite(cuts)) or cuts[0] <= 0 or np.any(np.diff(cuts) <= 0):
        raise InputError("cuts: interval end times must be finite, positive and strictly increasing.")
    return cuts


def _check_time(time: np.ndarray) -> np.ndarray:
    time = np.asarray(time, dtype=float)
    if time.ndim != 1:
        raise InputError(f"time: expected a 1-D array, got shape {time.shape}.")
    if not np.all(np.isfinite(time)) or np.any(time < 0):
        raise InputError("time: follow-up times must be finite and not negative.")
    return time


def discretise(time: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Interval index of each time: ``k`` with ``cuts[k-1] < time <= cuts[k]`` (interval 0 starts at 0
    and includes it). Times after the last cut are put in the last interval; for an *event* after the
    last cut that overstates the hazard, so censor those cases (or use :func:`discretise_outcome`).

    Example:
        >>> discretise(np.array([0.0, 1.0, 1.5, 2.0, 9.0]), np.array([1.0, 2.0, 3.0]))
        array([0, 0, 1, 1, 2])
    """
    time = _check_time(time)
    cuts = _check_cuts(cuts)
    return np.minimum(np.searchsorted(cuts, time, side="left"), cuts.size - 1).astype(np.int64)


def discretise_outcome(time: np.ndarray, event: np.ndarray, cuts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Interval index and event indicator for the logistic-hazard loss: as :func:`discretise`, and an
    event after the last cut becomes censored at the last interval (the case survived every modelled
    interval).

    Example:
        >>> discretise_outcome(np.array([0.5, 5.0]), np.array([1, 1]), np.array([1.0, 2.0]))
        (array([0, 1]), array([1, 0]))
    """
    cuts = _check_cuts(cuts)
    bins = discretise(time, cuts)
    event = np.asarray(event)
    if event.shape != bins.shape:
        raise InputError(f"event: expected {bins.size} values like time, got shape {event.shape}.")
    event = (event.astype(float) > 0) & (np.asarray(time, dtype=float) <= cuts[-1])
    return bins, event.astype(np.int64)


def default_cuts(time: np.ndarray, event: np.ndarray, bins: int) -> np.ndarray:
    """Interval end times at the ``1/bins, 2/bins, ..., 1`` quantiles of the event times, so that each
    interval holds about as many events; the last cut is the last event time. Heavily tied event
    times can give fewer than ``bins`` distinct cuts: size the model by ``len(cuts)``.

    Example:
        >>> default_cuts(np.array([1.0, 2.0, 3.0, 4.0, 10.0]), np.array([1, 1, 1, 1, 0]), 2)
        array([2.5, 4. ])
    """
    time = _check_time(time)
    event = np.asarray(event)
    if event.shape != time.shape:
        raise InputError(f"event: expected {time.size} values like time, got shape {event.shape}.")
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise InputError(f"bins: expected a positive whole number of intervals, got {bins!r}.")
    event_times = time[event.astype(float) > 0]
    if event_times.size == 0:
        raise InputError("event: no events, so the interval cuts cannot be placed at event-time quantiles.")
    cuts = np.unique(np.quantile(event_times, np.arange(1, bins + 1) / bins))
    cuts = cuts[cuts > 0]
    if cuts.size == 0:  # every event at time 0
        raise InputError("time: every event is at time 0, so no interval can be formed.")
    return cuts
