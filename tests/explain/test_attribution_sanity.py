"""The stride's dot grid is gone from the integrated-gradients map (a number), and the model-parameter randomisation
sanity check (Adebayo et al., 2018) passes for maps that depend on what a model learnt, fails for maps that do not."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from lgerisk.explain.attribution import (
    SANITY_THRESHOLD,
    grad_cam,
    inplane_stride,
    integrated_gradients,
    integrated_gradients_attribution,
    parameter_randomisation_check,
    randomised_model,
    stride_grid_share,
    translations,
)
from lgerisk.models.encoder import EncoderConfig
from lgerisk.models.survival import SurvivalModel, SurvivalModelConfig

SHAPE = (6, 32, 32)
STEPS = 60
"""Training steps of the toy model."""


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def ring() -> np.ndarray:
    yy, xx = np.mgrid[: SHAPE[1], : SHAPE[2]]
    radius = np.hypot(yy - SHAPE[1] / 2, xx - SHAPE[2] / 2)
    return np.broadcast_to((radius > 6) & (radius < 10), SHAPE).copy()


def scan(seed: int = 0, scar: float = 1.5) -> torch.Tensor:
    """(1, 2, D, H, W): a noisy ring (myocardium) with a brighter sector (scar), and the ring as the mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: SHAPE[1], : SHAPE[2]]
    angle = np.arctan2(yy - SHAPE[1] / 2, xx - SHAPE[2] / 2)
    sector = ring() & np.broadcast_to((angle > 0.3) & (angle < 1.6), SHAPE)
    image = rng.normal(0.0, 1.0, SHAPE) + 2.0 * ring() + scar * sector
    return torch.tensor(np.stack([image, ring()]), dtype=torch.float32)[None]


class StridedFeatures(nn.Module):
    """A 1x1 convolution of in-plane stride 8: what the encoder's three 1x1 stride-2 shortcuts compose to."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(2, 4, 1, stride=(1, 8, 8))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class StrideReader(nn.Module):
    """Reads the scan only through ``StridedFeatures``: its gradient is non-zero on one voxel in 64 (a dot grid)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.image_encoder = StridedFeatures()

    def forward(self, image: torch.Tensor, tabular: torch.Tensor | None = None) -> torch.Tensor:
        return torch.tanh(self.image_encoder.forward_features(image)).mean(dim=(1, 2, 3, 4))


class InputTimesScale(nn.Module):
    """risk = w * sum(image): its attribution is the scan times a constant, whatever the weight."""

    def __init__(self) -> None:
        super().__init__()
        self.image_encoder = nn.Linear(1, 1)
        with torch.no_grad():
            self.image_encoder.weight.fill_(0.7)

    def forward(self, image: torch.Tensor, tabular: torch.Tensor | None = None) -> torch.Tensor:
        return self.image_encoder.weight[0, 0] * image[:, 0].sum(dim=(1, 2, 3)) + self.image_encoder.bias[0]


class EdgeEnergy(nn.Module):
    """risk = w * mean(Laplacian(image)**2), a fixed edge detector: its map is the scan's edges, whatever w."""

    def __init__(self) -> None:
        super().__init__()
        self.image_encoder = nn.Linear(1, 1)
        kernel = torch.zeros(1, 1, 1, 3, 3)
        kernel[0, 0, 0] = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
        self.register_buffer("kernel", kernel)

    def forward(self, image: torch.Tensor, tabular: torch.Tensor | None = None) -> torch.Tensor:
        edges = nn.functional.conv3d(image[:, :1], self.kernel, padding=(0, 1, 1))
        return self.image_encoder.weight[0, 0] * (edges**2).mean(dim=(1, 2, 3, 4))


def trained_toy() -> SurvivalModel:
    """A tiny survival model trained a few steps to read the scar sector's brightness (correlation > 0.6)."""
    torch.manual_seed(3)
    model = SurvivalModel(SurvivalModelConfig(EncoderConfig(width=4, embedding_dim=8)))
    with torch.no_grad():
        model.head.weight.normal_(0.0, 1.0)
    optimiser = torch.optim.Adam(model.parameters(), 3e-3)
    rng = np.random.default_rng(0)

    def batch(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        levels = rng.uniform(0.0, 3.0, n)
        images = torch.cat([scan(int(rng.integers(1 << 30)), float(level)) for level in levels])
        return images, torch.tensor(levels, dtype=torch.float32)

    for _ in range(STEPS):
        images, target = batch(8)
        loss = ((model(images) - target) ** 2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    images, target = batch(16)
    with torch.no_grad():
        assert np.corrcoef(model(images).numpy(), target.numpy())[0, 1] > 0.6  # it learnt something
    return model


def test_stride_grid_share_measures_a_dot_grid() -> None:
    dots = np.zeros(SHAPE)
    dots[:, 3::8, 5::8] = np.random.default_rng(0).choice([-1.0, 1.0], size=dots[:, 3::8, 5::8].shape)  # signs vary
    assert stride_grid_share(dots, 8) == pytest.approx(1.0)
    smooth = np.broadcast_to(np.hanning(32)[None, :, None] * np.hanning(32)[None, None, :], SHAPE)
    assert stride_grid_share(smooth, 8) < 0.05
    noise = np.random.default_rng(1).normal(size=SHAPE)
    assert stride_grid_share(noise, 8) == pytest.approx(64 / (32 * 32), abs=0.03)  # white noise: period**2 / (H W)
    assert math.isnan(stride_grid_share(np.ones(SHAPE), 8))


def test_translations_cover_every_phase_of_the_stride() -> None:
    assert translations(8) == [(dy, dx) for dy in range(8) for dx in range(8)]
    drawn = translations(16)
    assert len(drawn) == len(set(drawn)) == 64 and drawn == translations(16)  # a fixed draw
    assert inplane_stride(StrideReader(), scan()) == 8
    assert inplane_stride(SurvivalModel(SurvivalModelConfig(EncoderConfig(width=4, depth=3))), scan()) == 4
    assert inplane_stride(InputTimesScale(), scan()) == 1  # no encoder with a feature map: no translation


def test_translation_averaging_removes_the_stride_grid() -> None:
    """Plain integrated gradients of a model that reads the scan through a stride-8 convolution is a dot grid
    (blurred baseline or not); averaged over the 64 sub-stride translations the grid is down to white-noise level."""
    model, image = StrideReader(), scan()
    for baseline in ("zeros", "blur"):
        plain = integrated_gradients(model, image, steps=8, baseline=baseline, translate=False)
        assert np.count_nonzero(plain) <= plain.size // 64  # the dots
        assert stride_grid_share(plain, 8) > 0.6, baseline
        averaged = integrated_gradients_attribution(model, image, steps=8, baseline=baseline)
        assert averaged.translations == 64
        assert np.count_nonzero(averaged.values) > averaged.values.size // 2  # every voxel read, under some shift
        assert stride_grid_share(averaged.values, 8) < 0.1, baseline
        assert averaged.relative_delta < 0.05  # smooth paths: the averaged map adds up to the averaged risk change


def test_randomised_model_is_a_fresh_copy() -> None:
    model = trained_toy()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = torch.get_rng_state()
    copy = randomised_model(model, 20180)
    assert torch.equal(state, torch.get_rng_state())  # torch's random state untouched
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the model untouched
    changed = [
        k for k, v in copy.state_dict().items() if k.startswith("image_encoder.") and not torch.equal(v, before[k])
    ]
    assert any("conv" in k or "stem" in k for k in changed)
    assert torch.equal(copy.head.weight, model.head.weight)  # the head kept
    again = randomised_model(model, 20180)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in copy.state_dict().items())  # seeded
    scale = randomised_model(InputTimesScale(), 20180).image_encoder.weight  # no own initialiser... reset_parameters
    assert float(scale.detach()) != pytest.approx(0.7)


def test_a_trained_model_passes_the_sanity_check() -> None:
    model, image = trained_toy(), scan(7)
    for method, attribute in (
        ("integrated gradients", lambda m: integrated_gradients(m, image, steps=4)),
        ("Grad-CAM", lambda m: grad_cam(m, image)),
    ):
        check = parameter_randomisation_check(attribute, model, method)
        assert check.status == "passed", check
        assert abs(check.spearman) < SANITY_THRESHOLD and check.randomisations == 2
        assert check.as_dict()["status"] == "passed"


@pytest.mark.parametrize("model", [InputTimesScale(), EdgeEnergy()], ids=["input-times-scale", "edge-detector"])
def test_a_map_that_does_not_depend_on_the_weights_fails(model: nn.Module) -> None:
    image = scan(7)
    check = parameter_randomisation_check(lambda m: integrated_gradients(m, image, steps=8), model, "ig")
    assert check.status == "failed", check
    assert abs(check.spearman) > 0.99  # the same map up to its scale (and sign)


def test_the_check_compares_the_voxels_asked_for_and_says_when_it_cannot_measure() -> None:
    image = scan(7)
    region = ring()
    seen: list[tuple[int, ...]] = []

    def attribute(m: nn.Module) -> np.ndarray:
        values = integrated_gradients(m, image, steps=8)
        seen.append(values.shape)
        return values

    check = parameter_randomisation_check(attribute, InputTimesScale(), "ig", region=region, seeds=(5,))
    assert check.randomisations == 1 and len(seen) == 2 and check.status == "failed"
    flat = parameter_randomisation_check(lambda m: np.zeros(SHAPE), InputTimesScale(), "flat")
    assert flat.status == "not measurable" and flat.as_dict()["spearman"] is None
