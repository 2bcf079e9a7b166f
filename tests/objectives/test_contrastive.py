"""Contrastive losses against slow reference loops, SCARF, the embedding queue, presets and the
hybrid objective."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from lgerisk.errors import InputError
from lgerisk.objectives import (
    EmbeddingQueue,
    HybridObjective,
    ObjectiveConfig,
    clip_loss,
    nt_xent_loss,
    scarf_corrupt,
)


def _unit(v: torch.Tensor) -> list[float]:
    v = v.double()
    return (v / v.norm()).tolist()


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b))


def ref_info_nce(query: torch.Tensor, keys: torch.Tensor, queue: torch.Tensor | None, tau: float) -> float:
    """Mean over i of -log(exp(s_ii/tau) / sum_j exp(s_ij/tau)), j over keys then queue rows."""
    candidates = [_unit(k) for k in keys] + ([list(map(float, q)) for q in queue] if queue is not None else [])
    total = 0.0
    for i, q in enumerate(query):
        q = _unit(q)
        sims = [_dot(q, c) / tau for c in candidates]
        total += -math.log(math.exp(sims[i]) / sum(math.exp(s) for s in sims))
    return total / len(query)


def ref_clip(image: torch.Tensor, radiomics: torch.Tensor, tau: float, image_queue=None, radiomics_queue=None) -> float:
    return (ref_info_nce(image, radiomics, radiomics_queue, tau) + ref_info_nce(radiomics, image, image_queue, tau)) / 2


def ref_nt_xent(z1: torch.Tensor, z2: torch.Tensor, tau: float, queue: torch.Tensor | None = None) -> float:
    n = len(z1)
    views = [_unit(v) for v in torch.cat([z1, z2])]
    extra = [list(map(float, q)) for q in queue] if queue is not None else []
    total = 0.0
    for a in range(2 * n):
        positive = (a + n) % (2 * n)
        others = [views[b] for b in range(2 * n) if b != a] + extra
        denominator = sum(math.exp(_dot(views[a], o) / tau) for o in others)
        total += -math.log(math.exp(_dot(views[a], views[positive]) / tau) / denominator)
    return total / (2 * n)


def normalised(*shape: int, seed: int) -> torch.Tensor:
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=1)


# --- losses against references ----------------------------------------------------------------


@pytest.mark.parametrize("tau", [0.07, 0.5])
@pytest.mark.parametrize("queue_rows", [0, 5])
def test_clip_loss_matches_reference(tau: float, queue_rows: int) -> None:
    g = torch.Generator().manual_seed(0)
    image, radiomics = torch.randn(6, 8, generator=g) * 3, torch.randn(6, 8, generator=g)
    image_queue = normalised(queue_rows, 8, seed=1) if queue_rows else None
    radiomics_queue = normalised(queue_rows + 2, 8, seed=2) if queue_rows else None
    loss = clip_loss(image.double(), radiomics.double(), tau, image_queue, radiomics_queue)
    assert float(loss) == pytest.approx(ref_clip(image, radiomics, tau, image_queue, radiomics_queue), rel=1e-9)
    # float32 inputs, float64 queue: the queue follows the embeddings' dtype
    assert float(clip_loss(image, radiomics, tau, image_queue, radiomics_queue)) == pytest.approx(float(loss), rel=1e-5)


@pytest.mark.parametrize("tau", [0.07, 0.5])
@pytest.mark.parametrize("queue_rows", [0, 7])
def test_nt_xent_matches_reference(tau: float, queue_rows: int) -> None:
    g = torch.Generator().manual_seed(3)
    z1, z2 = torch.randn(5, 8, generator=g, dtype=torch.float64), torch.randn(5, 8, generator=g, dtype=torch.float64)
    queue = normalised(queue_rows, 8, seed=4).double() if queue_rows else None
    assert float(nt_xent_loss(z1, z2, tau, queue)) == pytest.approx(ref_nt_xent(z1, z2, tau, queue), rel=1e-9)


def test_empty_queue_means_no_queue() -> None:
    a, b = normalised(4, 6, seed=0), normalised(4, 6, seed=1)
    empty = torch.zeros(0, 6)
    assert torch.equal(clip_loss(a, b, 0.1, empty, empty), clip_loss(a, b, 0.1))
    assert torch.equal(nt_xent_loss(a, b, 0.1, empty), nt_xent_loss(a, b, 0.1))


def test_symmetry() -> None:
    a, b = normalised(6, 10, seed=0), normalised(6, 10, seed=1)
    qa, qb = normalised(4, 10, seed=2), normalised(3, 10, seed=3)
    assert torch.allclose(clip_loss(a, b, 0.1, qa, qb), clip_loss(b, a, 0.1, qb, qa))
    assert torch.allclose(nt_xent_loss(a, b, 0.1, qa), nt_xent_loss(b, a, 0.1, qa))
    # order of pairs does not matter
    order = torch.tensor([3, 0, 5, 1, 4, 2])
    assert torch.allclose(clip_loss(a[order], b[order], 0.1), clip_loss(a, b, 0.1))
    assert torch.allclose(nt_xent_loss(a[order], b[order], 0.1), nt_xent_loss(a, b, 0.1))


def test_random_embeddings_give_about_log_n() -> None:
    n, dim = 32, 2048
    a, b, queue = normalised(n, dim, seed=0), normalised(n, dim, seed=1), normalised(64, dim, seed=2)
    assert float(clip_loss(a, b, 1.0)) == pytest.approx(math.log(n), abs=0.02)
    assert float(clip_loss(a, b, 1.0, queue, queue)) == pytest.approx(math.log(n + 64), abs=0.02)
    assert float(nt_xent_loss(a, b, 1.0)) == pytest.approx(math.log(2 * n - 1), abs=0.02)
    assert float(nt_xent_loss(a, b, 1.0, queue)) == pytest.approx(math.log(2 * n - 1 + 64), abs=0.02)


def test_aligned_embeddings_give_about_zero() -> None:
    z = torch.eye(8)[:6] * 5.0
    queue = torch.eye(8)[6:]
    assert float(clip_loss(z, z * 2, 0.02, queue, queue)) < 1e-6
    assert float(nt_xent_loss(z, z * 3, 0.02, queue)) < 1e-6
    # and far from zero at a large temperature
    assert float(clip_loss(z, z, 1.0)) > 0.5


def test_gradients_reach_both_inputs() -> None:
    a = torch.randn(5, 8, requires_grad=True)
    b = torch.randn(5, 8, requires_grad=True)
    queue = normalised(3, 8, seed=0)
    for loss in (clip_loss(a, b, 0.1, queue, queue), nt_xent_loss(a, b, 0.1, queue)):
        ga, gb = torch.autograd.grad(loss, (a, b))
        assert ga.abs().sum() > 0 and gb.abs().sum() > 0


def test_loss_input_checks() -> None:
    with pytest.raises(ValueError):
        clip_loss(torch.randn(4, 8), torch.randn(5, 8), 0.1)
    with pytest.raises(ValueError):
        nt_xent_loss(torch.randn(4, 8), torch.randn(4, 8), 0.1, queue=torch.randn(3, 7))


# --- SCARF ------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.25, 0.3, 0.5, 1.0])
def test_scarf_replaces_the_stated_share_from_the_same_column(rate: float) -> None:
    n_rows, n_features, n_bank = 40, 10, 25
    features = torch.randn(n_rows, n_features, generator=torch.Generator().manual_seed(0))
    bank = 100 + torch.arange(n_bank * n_features, dtype=torch.float32).reshape(n_bank, n_features)  # all distinct
    before = features.clone()
    out = scarf_corrupt(features, bank, rate, torch.Generator().manual_seed(1))
    assert torch.equal(features, before)  # not modified in place
    changed = out != features
    assert changed.sum(dim=1).tolist() == [round(rate * n_features)] * n_rows
    for i, j in changed.nonzero().tolist():
        assert out[i, j] in bank[:, j]  # same column of some bank row
    if 0 < rate < 1:
        assert len({tuple(row) for row in changed.tolist()}) > 1  # subsets drawn per row
        used_rows = {int(((bank[:, j] == out[i, j]).nonzero())[0]) for i, j in changed.nonzero().tolist()}
        assert len(used_rows) > 1  # random bank rows


def test_scarf_is_deterministic_under_a_seeded_generator() -> None:
    features, bank = torch.randn(16, 30), torch.randn(50, 30)
    first = scarf_corrupt(features, bank, 0.3, torch.Generator().manual_seed(7))
    again = scarf_corrupt(features, bank, 0.3, torch.Generator().manual_seed(7))
    other = scarf_corrupt(features, bank, 0.3, torch.Generator().manual_seed(8))
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_scarf_checks() -> None:
    with pytest.raises(InputError):
        scarf_corrupt(torch.randn(2, 5), torch.randn(3, 5), 1.5, torch.Generator())
    with pytest.raises(ValueError):
        scarf_corrupt(torch.randn(2, 5), torch.randn(3, 4), 0.3, torch.Generator())


# --- queue ------------------------------------------------------------------------------------


def test_queue_is_a_fifo_of_normalised_detached_embeddings() -> None:
    queue = EmbeddingQueue(dim=3, size=4)
    assert queue.tensor().shape == (0, 3) and len(queue) == 0
    batches = [torch.randn(2, 3, requires_grad=True) for _ in range(3)]
    queue.enqueue(batches[0])
    assert torch.allclose(queue.tensor(), F.normalize(batches[0].detach(), dim=1))
    queue.enqueue(batches[1])
    queue.enqueue(batches[2])
    expected = F.normalize(torch.cat([b.detach() for b in batches])[-4:], dim=1)  # oldest two dropped
    assert torch.allclose(queue.tensor(), expected) and len(queue) == 4
    assert not queue.tensor().requires_grad
    big = torch.randn(9, 3)
    queue.enqueue(big)
    assert torch.allclose(queue.tensor(), F.normalize(big[-4:], dim=1))
    with pytest.raises(ValueError):
        queue.enqueue(torch.randn(2, 4))


def test_disabled_queue() -> None:
    queue = EmbeddingQueue(dim=3, size=0)
    queue.enqueue(torch.randn(5, 3))
    assert queue.tensor().shape == (0, 3)


def test_queue_state_round_trips_through_torch_save(tmp_path) -> None:
    queue = EmbeddingQueue(dim=4, size=6)
    queue.enqueue(torch.randn(4, 4))
    path = tmp_path / "queue.pt"
    torch.save(queue.state_dict(), path)
    state = torch.load(path, weights_only=True)
    assert all(isinstance(v, (torch.Tensor, dict)) for v in state.values())
    restored = EmbeddingQueue(dim=4, size=6)
    restored.load_state_dict(state)
    assert torch.equal(restored.tensor(), queue.tensor()) and len(restored) == 4
    queue.enqueue(torch.ones(3, 4))
    restored.enqueue(torch.ones(3, 4))
    assert torch.equal(restored.tensor(), queue.tensor())
    with pytest.raises((ValueError, RuntimeError)):
        EmbeddingQueue(dim=4, size=5).load_state_dict(state)


# --- configuration ----------------------------------------------------------------------------


def test_presets() -> None:
    assert ObjectiveConfig() == ObjectiveConfig.from_preset("hybrid")
    radiomics = ObjectiveConfig.from_preset("radiomics")
    assert (radiomics.preset, radiomics.clip_weight, radiomics.simclr_weight) == ("radiomics", 1.0, 0.0)
    simclr = ObjectiveConfig.from_preset("simclr", temperature=0.2, queue_size=0)
    assert (simclr.clip_weight, simclr.simclr_weight, simclr.temperature, simclr.queue_size) == (0.0, 1.0, 0.2, 0)
    assert ObjectiveConfig.from_preset("hybrid", clip_weight=0.5).clip_weight == 0.5
    config = ObjectiveConfig.from_preset("radiomics", learn_temperature=True, scarf_rate=0.5)
    assert ObjectiveConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize(
    "build",
    [
        lambda: ObjectiveConfig.from_preset("moco"),
        lambda: ObjectiveConfig(preset="moco"),
        lambda: ObjectiveConfig(preset="radiomics"),  # simclr_weight 1 contradicts the preset
        lambda: ObjectiveConfig.from_preset("simclr", clip_weight=1.0),
        lambda: ObjectiveConfig.from_preset("hybrid", simclr_weight=0.0),
        lambda: ObjectiveConfig(temperature=0.0),
        lambda: ObjectiveConfig(temperature=0.005, learn_temperature=True),
        lambda: ObjectiveConfig(queue_size=-1),
        lambda: ObjectiveConfig(scarf_rate=1.2),
        lambda: ObjectiveConfig(clip_weight=-1.0),
        lambda: ObjectiveConfig.from_preset("hybrid", tau=0.1),
        lambda: ObjectiveConfig.from_dict({"preset": "hybrid", "weights": 1}),
    ],
)
def test_bad_objective_configuration_is_an_input_error(build) -> None:
    with pytest.raises(InputError):
        build()


# --- the hybrid objective ---------------------------------------------------------------------


def test_hybrid_objective_is_the_weighted_sum() -> None:
    z1, z2, r = normalised(6, 16, seed=0), normalised(6, 16, seed=1), normalised(6, 16, seed=2)
    config = ObjectiveConfig.from_preset("hybrid", clip_weight=0.7, simclr_weight=0.3, queue_size=0)
    out = HybridObjective(config, embedding_dim=16)(z1, z2, r)
    clip = (clip_loss(z1, r, 0.1) + clip_loss(z2, r, 0.1)) / 2
    simclr = nt_xent_loss(z1, z2, 0.1)
    assert torch.allclose(out["clip"], clip) and torch.allclose(out["simclr"], simclr)
    assert torch.allclose(out["loss"], 0.7 * clip + 0.3 * simclr)
    assert float(out["temperature"]) == pytest.approx(0.1)


def test_presets_skip_terms_and_inputs() -> None:
    z1, z2, r = normalised(4, 8, seed=0), normalised(4, 8, seed=1), normalised(4, 8, seed=2)
    radiomics = HybridObjective(ObjectiveConfig.from_preset("radiomics"), embedding_dim=8)
    out = radiomics(z1, None, r)
    assert float(out["simclr"]) == 0 and torch.allclose(out["loss"], clip_loss(z1, r, 0.1))
    simclr = HybridObjective(ObjectiveConfig.from_preset("simclr"), embedding_dim=8)
    out = simclr(z1, z2)
    assert float(out["clip"]) == 0 and torch.allclose(out["loss"], nt_xent_loss(z1, z2, 0.1))
    with pytest.raises(ValueError, match="radiomics_z"):
        HybridObjective(embedding_dim=8)(z1, z2)
    with pytest.raises(ValueError, match="image_z2"):
        simclr(z1, None, r)


def test_queues_feed_the_losses_and_round_trip(tmp_path) -> None:
    objective = HybridObjective(ObjectiveConfig(queue_size=5), embedding_dim=8)
    z1, z2, r = normalised(4, 8, seed=0), normalised(4, 8, seed=1), normalised(4, 8, seed=2)
    no_queue = objective(z1, z2, r)["loss"]
    past_image, past_radiomics = torch.randn(3, 8) * 4, torch.randn(3, 8)
    objective.update_queues(past_image, past_radiomics)
    iq, rq = F.normalize(past_image, dim=1), F.normalize(past_radiomics, dim=1)
    assert torch.allclose(objective.image_queue.tensor(), iq) and torch.allclose(objective.radiomics_queue.tensor(), rq)
    out = objective(z1, z2, r)
    clip = (clip_loss(z1, r, 0.1, iq, rq) + clip_loss(z2, r, 0.1, iq, rq)) / 2
    assert torch.allclose(out["loss"], clip + nt_xent_loss(z1, z2, 0.1, iq)) and not torch.allclose(
        out["loss"], no_queue
    )
    path = tmp_path / "objective.pt"
    torch.save(objective.state_dict(), path)
    restored = HybridObjective(ObjectiveConfig(queue_size=5), embedding_dim=8)
    restored.load_state_dict(torch.load(path, weights_only=True))
    assert torch.equal(restored(z1, z2, r)["loss"], out["loss"])


def test_learned_temperature() -> None:
    objective = HybridObjective(ObjectiveConfig(temperature=0.07, learn_temperature=True), embedding_dim=8)
    assert float(objective.log_scale.detach()) == pytest.approx(math.log(1 / 0.07))
    assert [name for name, _ in objective.named_parameters()] == ["log_scale"]
    z1 = torch.randn(4, 8, requires_grad=True)
    out = objective(z1, torch.randn(4, 8), torch.randn(4, 8))
    assert float(out["temperature"]) == pytest.approx(0.07) and not out["temperature"].requires_grad
    out["loss"].backward()
    assert objective.log_scale.grad is not None and float(objective.log_scale.grad) != 0
    assert z1.grad is not None and bool(z1.grad.abs().sum() > 0)  # the loss reaches the embeddings
    with torch.no_grad():
        objective.log_scale.fill_(10.0)  # 1/tau = e^10, beyond the cap
    assert float(objective.temperature().detach()) == pytest.approx(0.01)
    fixed = HybridObjective(ObjectiveConfig(), embedding_dim=8)
    assert list(fixed.parameters()) == []


def test_a_cases_own_queued_embeddings_are_never_its_negatives() -> None:
    """Masking own entries equals removing them from the queue, row by row (direct computation)."""
    import torch.nn.functional as F

    from lgerisk.objectives.contrastive import EmbeddingQueue

    torch.manual_seed(3)
    image, radiomics = F.normalize(torch.randn(4, 8), dim=1), F.normalize(torch.randn(4, 8), dim=1)
    queue = EmbeddingQueue(8, 6)
    queue_ids = torch.tensor([0, 9, 2, 9, 1, 7])
    queue.enqueue(torch.randn(6, 8), queue_ids)
    assert queue.case_ids().tolist() == queue_ids.tolist()
    ids = torch.tensor([0, 1, 2, 3])
    masked = clip_loss(image, radiomics, 0.1, queue.tensor(), queue.tensor(), ids, queue.case_ids(), queue.case_ids())
    expected = 0.0
    for query, keys in ((image, radiomics), (radiomics, image)):
        for i in range(4):
            others = queue.tensor()[queue.case_ids() != ids[i]]
            logits = torch.cat([query[i] @ keys.T, query[i] @ others.T]) / 0.1
            expected += -torch.log_softmax(logits, 0)[i] / 8
    assert torch.allclose(masked, expected, atol=1e-5)
    unmasked = clip_loss(image, radiomics, 0.1, queue.tensor(), queue.tensor())
    assert not torch.allclose(masked, unmasked)
    # NT-Xent alike: each view's own case left out of the queue negatives
    z1, z2 = F.normalize(torch.randn(4, 8), dim=1), F.normalize(torch.randn(4, 8), dim=1)
    masked = nt_xent_loss(z1, z2, 0.1, queue.tensor(), ids, queue.case_ids())
    views = torch.cat([z1, z2])
    expected = 0.0
    for a in range(8):
        case = ids[a % 4]
        positive = (a + 4) % 8
        others = queue.tensor()[queue.case_ids() != case]
        candidates = torch.cat([views[[b for b in range(8) if b != a]], others])
        logits = candidates @ views[a] / 0.1
        position = positive if positive < a else positive - 1
        expected += -torch.log_softmax(logits, 0)[position] / 8
    assert torch.allclose(masked, expected, atol=1e-5)
    queue.reset()
    assert queue.case_ids().numel() == 0


# --- every training case a negative, and false negatives (issue 11) ------------------------------


def test_a_bank_of_the_batch_itself_is_the_batch_loss() -> None:
    image, radiomics = normalised(5, 8, seed=1), normalised(5, 8, seed=2)
    ids = torch.tensor([3, 0, 4, 1, 2])
    bank = torch.zeros(5, 8).index_copy(0, ids, radiomics)
    assert float(clip_loss(image, radiomics, 0.1, ids=ids, bank=bank)) == pytest.approx(
        float(clip_loss(image, radiomics, 0.1)), rel=1e-6
    )


def test_bank_negatives_match_a_reference() -> None:
    """image -> radiomics picks the case's own row among all M bank rows (the batch's rows replaced by
    its SCARF view's), radiomics -> image stays within the batch."""
    image, radiomics, bank = normalised(3, 6, seed=3), normalised(3, 6, seed=4), normalised(7, 6, seed=5)
    ids = torch.tensor([5, 1, 2])
    keys = bank.clone()
    keys[ids] = radiomics
    tau = 0.2
    expected_i2r = (
        sum(
            -math.log(
                math.exp(_dot(_unit(image[i]), _unit(keys[ids[i]])) / tau)
                / sum(math.exp(_dot(_unit(image[i]), _unit(k)) / tau) for k in keys)
            )
            for i in range(3)
        )
        / 3
    )
    expected = (expected_i2r + ref_info_nce(radiomics, image, None, tau)) / 2
    assert float(clip_loss(image, radiomics, tau, ids=ids, bank=bank)) == pytest.approx(expected, rel=1e-5)
    # more negatives than the batch: the loss can only grow
    assert float(clip_loss(image, radiomics, tau, ids=ids, bank=bank)) > float(clip_loss(image, radiomics, tau))


def test_false_negatives_leave_the_softmax_and_the_positive_never_does() -> None:
    image, radiomics = normalised(4, 8, seed=6), normalised(4, 8, seed=7)
    everything = torch.ones(4, 4, dtype=torch.bool)
    # every other case similar: only the positive is left in each row, so both directions score 0
    assert float(clip_loss(image, radiomics, 0.1, similar=everything)) == pytest.approx(0.0, abs=1e-6)
    # one pair similar: exactly that pair's logits leave, in both directions
    similar = torch.zeros(4, 4, dtype=torch.bool)
    similar[0, 1] = similar[1, 0] = True
    tau = 0.1
    logits = F.normalize(image) @ F.normalize(radiomics).T / tau
    masked = logits.masked_fill(similar, float("-inf"))
    expected = (F.cross_entropy(masked, torch.arange(4)) + F.cross_entropy(masked.T, torch.arange(4))) / 2
    assert float(clip_loss(image, radiomics, tau, similar=similar)) == pytest.approx(float(expected), rel=1e-6)
    assert float(clip_loss(image, radiomics, tau, similar=similar)) < float(clip_loss(image, radiomics, tau))
    # with a bank, the mask is over bank rows and its batch columns serve radiomics -> image
    ids = torch.tensor([2, 0, 3, 1])
    bank = torch.zeros(4, 8).index_copy(0, ids, radiomics)
    over_bank = torch.zeros(4, 4, dtype=torch.bool)
    over_bank[0, ids[1]] = over_bank[1, ids[0]] = True
    assert float(clip_loss(image, radiomics, tau, ids=ids, bank=bank, similar=over_bank)) == pytest.approx(
        float(expected), rel=1e-5
    )


def test_negative_settings_are_checked() -> None:
    with pytest.raises(InputError, match="negatives='few'"):
        ObjectiveConfig(negatives="few")
    with pytest.raises(InputError, match="false_negative_similarity"):
        ObjectiveConfig(false_negative_similarity=1.5)
    config = ObjectiveConfig.from_preset("radiomics", negatives="all", false_negative_similarity=0.9)
    assert ObjectiveConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    z = normalised(3, 4, seed=8)
    with pytest.raises(ValueError, match="bank"):
        HybridObjective(config, embedding_dim=4)(z, None, z, torch.arange(3))
    with pytest.raises(ValueError, match="case ids"):
        clip_loss(z, z, 0.1, bank=z)
    with pytest.raises(ValueError, match="false-negative mask"):
        clip_loss(z, z, 0.1, similar=torch.zeros(2, 2, dtype=torch.bool))
