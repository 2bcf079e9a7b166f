"""Survival objectives: Efron/Breslow Cox losses against lifelines and a slow reference, and the
discrete-time logistic-hazard loss."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from lgerisk.errors import InputError
from lgerisk.objectives.survival import (
    cox_breslow_loss,
    cox_efron_loss,
    default_cuts,
    discretise,
    discretise_outcome,
    logistic_hazard_loss,
    logistic_hazard_survival,
)


def tied_cohort(n: int = 150, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Covariates on different scales, exponential times rounded so that many are tied, ~70 % events."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)) * np.array([1.0, 10.0, 0.1])
    log_hazard = 0.7 * x[:, 0] - 0.05 * x[:, 1] + 3.0 * x[:, 2]
    event_time = rng.exponential(np.exp(-log_hazard)) * 5
    censor_time = rng.exponential(10.0, size=n)
    time = np.ceil(np.minimum(event_time, censor_time))
    event = (event_time <= censor_time).astype(int)
    return x, time, event


def efron_reference(risk: np.ndarray, time: np.ndarray, event: np.ndarray, ties: str = "efron") -> float:
    """Negative partial log-likelihood by explicit loops over the distinct event times."""
    total = 0.0
    for t in np.unique(time[event == 1]):
        dead = np.flatnonzero((time == t) & (event == 1))
        at_risk = np.flatnonzero(time >= t)
        s = sum(math.exp(risk[i]) for i in at_risk)
        e = sum(math.exp(risk[i]) for i in dead)
        d = len(dead)
        for rank, i in enumerate(dead):
            total += risk[i] - math.log(s - (rank / d if ties == "efron" else 0.0) * e)
    return -total


def as_tensors(*arrays: np.ndarray, dtype: torch.dtype = torch.float64) -> list[torch.Tensor]:
    return [torch.as_tensor(np.asarray(a, dtype=float), dtype=dtype) for a in arrays]


@pytest.fixture(scope="module")
def lifelines_fit():
    from lifelines import CoxPHFitter

    x, time, event = tied_cohort()
    frame = pd.DataFrame(x, columns=["a", "b", "c"]).assign(time=time, event=event)
    # tighter than lifelines' default stop (relative log-likelihood change 1e-9), so params_ is the optimum
    cph = CoxPHFitter().fit(frame, "time", "event", fit_options={"precision": 1e-10, "r_precision": 1e-14})
    return x, time, event, cph


def test_cohort_has_ties_among_events() -> None:
    _, time, event = tied_cohort()
    event_times = time[event == 1]
    assert np.unique(event_times).size < event_times.size / 2


def test_efron_sum_equals_lifelines_log_likelihood(lifelines_fit) -> None:
    x, time, event, cph = lifelines_fit
    assert cph.baseline_estimation_method == "breslow"  # the semi-parametric (Efron) fit
    risk = x @ cph.params_.to_numpy()
    loss = cox_efron_loss(*as_tensors(risk, time, event), reduction="sum")
    assert loss.item() == pytest.approx(-cph.log_likelihood_, abs=1e-6)
    # the likelihood ignores a shift of every risk: lifelines' centred risk gives the same value
    centred = cph.predict_log_partial_hazard(pd.DataFrame(x, columns=["a", "b", "c"])).to_numpy()
    assert cox_efron_loss(*as_tensors(centred, time, event), reduction="sum").item() == pytest.approx(loss.item())


def test_efron_gradient_vanishes_at_lifelines_optimum(lifelines_fit) -> None:
    x, time, event, cph = lifelines_fit
    scale = x.std(axis=0, ddof=1)
    z = torch.as_tensor((x - x.mean(0)) / scale)
    beta = torch.as_tensor(cph.params_.to_numpy() * scale).requires_grad_(True)
    t, e = as_tensors(time, event)
    cox_efron_loss(z @ beta, t, e, reduction="sum").backward()
    assert beta.grad.abs().max().item() < 1e-4
    beta_zero = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    cox_efron_loss(z @ beta_zero, t, e, reduction="sum").backward()
    assert beta_zero.grad.abs().max().item() > 1.0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_efron_and_breslow_match_explicit_loops(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 40
    risk = rng.normal(size=n) * 2
    time = rng.integers(1, 8, size=n).astype(float)
    event = (rng.random(n) < 0.6).astype(int)
    r, t, e = as_tensors(risk, time, event)
    assert cox_efron_loss(r, t, e, "sum").item() == pytest.approx(efron_reference(risk, time, event), rel=1e-12)
    assert cox_breslow_loss(r, t, e, "sum").item() == pytest.approx(
        efron_reference(risk, time, event, ties="breslow"), rel=1e-12
    )
    assert cox_efron_loss(r, t, e).item() == pytest.approx(cox_efron_loss(r, t, e, "sum").item() / event.sum())


def test_efron_is_breslow_without_ties_and_ignores_row_order() -> None:
    rng = np.random.default_rng(4)
    risk, time, event = rng.normal(size=30), rng.permutation(30) + 1.0, rng.integers(0, 2, size=30)
    r, t, e = as_tensors(risk, time, event)
    assert cox_efron_loss(r, t, e).item() == pytest.approx(cox_breslow_loss(r, t, e).item(), rel=1e-12)
    order = torch.as_tensor(rng.permutation(30))
    time_tied = torch.as_tensor(np.round(time / 5))
    assert cox_efron_loss(r[order], time_tied[order], e[order]).item() == pytest.approx(
        cox_efron_loss(r, time_tied, e).item(), rel=1e-12
    )


def test_efron_is_stable_and_differentiable_in_float32() -> None:
    generator = torch.Generator().manual_seed(0)
    n = 256
    time = torch.randint(1, 20, (n,), generator=generator).float()
    event = (torch.rand(n, generator=generator) < 0.3).long()
    for scale in (1.0, 100.0):
        risk = (torch.randn(n, generator=generator) * scale).requires_grad_(True)
        for loss_fn in (cox_efron_loss, cox_breslow_loss):
            loss = loss_fn(risk, time, event)
            loss.backward()
            assert loss.dtype == torch.float32 and torch.isfinite(loss)
            assert torch.isfinite(risk.grad).all()
            risk.grad = None
    risk64 = torch.randn(n, generator=generator, dtype=torch.float64)
    assert cox_efron_loss(risk64.float(), time, event).item() == pytest.approx(
        cox_efron_loss(risk64, time, event).item(), rel=1e-5
    )


def test_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(5)
    risk = torch.tensor(rng.normal(size=12), requires_grad=True)
    time = torch.as_tensor(rng.integers(1, 4, size=12).astype(float))
    event = torch.as_tensor(rng.integers(0, 2, size=12))
    assert torch.autograd.gradcheck(lambda r: cox_efron_loss(r, time, event), (risk,))


def test_no_events_gives_a_zero_that_keeps_the_graph() -> None:
    risk = torch.randn(5, requires_grad=True)
    for reduction in ("mean", "sum"):
        loss = cox_efron_loss(risk, torch.arange(5.0), torch.zeros(5), reduction=reduction)
        assert loss.item() == 0.0 and loss.requires_grad
        loss.backward()
        assert torch.equal(risk.grad, torch.zeros(5))
        risk.grad = None
    empty = torch.zeros(0, requires_grad=True)
    assert cox_efron_loss(empty, torch.zeros(0), torch.zeros(0)).item() == 0.0


def test_cox_loss_rejects_bad_shapes_and_reduction() -> None:
    with pytest.raises(ValueError, match="same length"):
        cox_efron_loss(torch.zeros(3), torch.zeros(4), torch.zeros(3))
    with pytest.raises(ValueError, match="reduction"):
        cox_efron_loss(torch.zeros(3), torch.zeros(3), torch.zeros(3), reduction="none")


def logistic_hazard_reference(logits: np.ndarray, bins: np.ndarray, event: np.ndarray) -> float:
    total = 0.0
    for row, k, e in zip(logits, bins, event):
        hazard = 1 / (1 + np.exp(-row))
        total -= sum(math.log(1 - hazard[j]) for j in range(k))
        total -= math.log(hazard[k]) if e else math.log(1 - hazard[k])
    return total / len(bins)


def test_logistic_hazard_loss_matches_explicit_likelihood() -> None:
    rng = np.random.default_rng(6)
    logits = rng.normal(size=(7, 4))
    bins = np.array([0, 1, 3, 2, 0, 3, 1])
    event = np.array([1, 0, 1, 1, 0, 0, 1])
    loss = logistic_hazard_loss(torch.as_tensor(logits), torch.as_tensor(bins), torch.as_tensor(event))
    assert loss.item() == pytest.approx(logistic_hazard_reference(logits, bins, event), rel=1e-12)
    summed = logistic_hazard_loss(torch.as_tensor(logits), torch.as_tensor(bins), torch.as_tensor(event), "sum")
    assert summed.item() == pytest.approx(7 * loss.item())
    with pytest.raises(ValueError, match="bin_index"):
        logistic_hazard_loss(torch.zeros(2, 3), torch.tensor([0, 3]), torch.tensor([1, 1]))


def test_logistic_hazard_survival_is_the_product_of_interval_survivals() -> None:
    logits = torch.tensor([[0.0, 1.0, -2.0]], dtype=torch.float64)
    hazard = torch.sigmoid(logits)
    expected = torch.cumprod(1 - hazard, dim=1)
    assert torch.allclose(logistic_hazard_survival(logits), expected)
    assert torch.all(logistic_hazard_survival(torch.full((1, 5), 50.0)) >= 0)


def test_discretise_edges() -> None:
    cuts = np.array([1.0, 2.0, 4.0])
    time = np.array([0.0, 0.5, 1.0, 1.0000001, 2.0, 3.9, 4.0, 100.0])
    assert discretise(time, cuts).tolist() == [0, 0, 0, 1, 1, 2, 2, 2]
    bins, event = discretise_outcome(np.array([4.0, 4.5, 4.5]), np.array([1, 1, 0]), cuts)
    assert bins.tolist() == [2, 2, 2] and event.tolist() == [1, 0, 0]
    with pytest.raises(InputError, match="time"):
        discretise(np.array([-1.0]), cuts)
    with pytest.raises(InputError, match="time"):
        discretise(np.array([np.nan]), cuts)
    with pytest.raises(InputError, match="increasing"):
        discretise(np.array([1.0]), np.array([2.0, 1.0]))
    with pytest.raises(InputError, match="cuts"):
        discretise(np.array([1.0]), np.array([]))


def test_default_cuts_are_event_time_quantiles() -> None:
    time = np.arange(1.0, 101.0)
    event = np.ones(100, dtype=int)
    event[50:] = 0  # events at 1..50 only
    cuts = default_cuts(time, event, 5)
    assert cuts.size == 5 and cuts[-1] == 50.0
    counts = np.bincount(discretise(time[event == 1], cuts), minlength=5)
    assert counts.min() >= 9 and counts.max() <= 11
    assert default_cuts(np.array([2.0, 2.0, 2.0, 5.0]), np.array([1, 1, 1, 0]), 4).tolist() == [2.0]
    with pytest.raises(InputError, match="no events"):
        default_cuts(time, np.zeros(100), 5)
    with pytest.raises(InputError, match="bins"):
        default_cuts(time, event, 0)


def test_multitask_loss_is_the_cox_loss_at_weight_zero() -> None:
    """Fine-tuning's Cox + radiomics loss: at weight 0 the very Cox loss and gradient; above 0 the MSE term adds."""
    from lgerisk.objectives.survival import cox_efron_loss, cox_with_radiomics_loss

    generator = torch.Generator().manual_seed(0)
    time = torch.rand(12, generator=generator, dtype=torch.float64)
    event = (torch.rand(12, generator=generator) < 0.6).long()
    target = torch.randn(12, 5, generator=generator)
    gradients = []
    for weight in (0.0, 0.7):
        risk = torch.randn(12, generator=torch.Generator().manual_seed(1), dtype=torch.float64, requires_grad=True)
        predicted = torch.zeros(12, 5, requires_grad=True)
        loss, auxiliary = cox_with_radiomics_loss(risk, time, event, predicted, target, weight)
        cox = cox_efron_loss(risk, time, event)
        if weight == 0:
            assert auxiliary is None and torch.equal(loss, cox)
        else:
            assert float(auxiliary) == pytest.approx(float((target**2).mean()))
            assert float(loss) == pytest.approx(float(cox) + weight * float(auxiliary))
        loss.backward()
        gradients.append(risk.grad.clone())
        assert (predicted.grad is None) == (weight == 0)
    assert torch.equal(gradients[0], gradients[1])  # the auxiliary term does not touch the risk's gradient
