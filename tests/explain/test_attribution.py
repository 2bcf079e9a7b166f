"""Grad-CAM and integrated gradients of the risk score; myocardium concentration; montages."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from lgerisk.errors import InputError
from lgerisk.explain.attribution import (
    grad_cam,
    integrated_gradients,
    integrated_gradients_attribution,
    myocardium_concentration,
)
from lgerisk.explain.montage import MYOCARDIUM_COLOUR, SCAR_COLOUR, attribution_montage
from lgerisk.models.encoder import EncoderConfig
from lgerisk.models.survival import SurvivalModel, SurvivalModelConfig
from tests.helpers import assert_drawn_png, colour_share

SHAPE = (6, 32, 32)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread, and do not stall when other processes share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(n_tabular: int = 0, seed: int = 0) -> SurvivalModel:
    """A small survival model with random weights and a non-zero head (so the risk depends on the image)."""
    torch.manual_seed(seed)
    model = SurvivalModel(SurvivalModelConfig(EncoderConfig(width=4, embedding_dim=8), n_tabular=n_tabular))
    with torch.no_grad():
        model.head.weight.normal_(0.0, 1.0)
    return model


def ring(shape: tuple[int, int, int] = SHAPE) -> np.ndarray:
    """A myocardium-like ring in every slice."""
    yy, xx = np.mgrid[: shape[1], : shape[2]]
    radius = np.hypot(yy - shape[1] / 2, xx - shape[2] / 2)
    return np.broadcast_to((radius > 6) & (radius < 10), shape).copy()


def case(seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """A (1, 2, D, H, W) input (image, myocardium) and its myocardium mask."""
    rng = np.random.default_rng(seed)
    myocardium = ring()
    image = (rng.normal(0.0, 1.0, SHAPE) + 2.0 * myocardium).astype(np.float32)
    tensor = torch.from_numpy(np.stack([image, myocardium.astype(np.float32)]))[None]
    return tensor, myocardium


class RegionOnly(nn.Module):
    """A survival model that sees the image only inside ``region`` (zero elsewhere): provably no
    voxel outside the region can change its risk."""

    def __init__(self, model: SurvivalModel, region: np.ndarray) -> None:
        super().__init__()
        self.model = model
        self.image_encoder = model.image_encoder
        self.register_buffer("region", torch.from_numpy(region.astype(np.float32)))

    def forward(self, image: torch.Tensor, tabular: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(image * self.region, tabular)


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def assert_untouched(model: nn.Module, before: dict[str, torch.Tensor]) -> None:
    after = model.state_dict()
    assert before.keys() == after.keys()
    for name, value in before.items():
        assert torch.equal(value, after[name]), name
    for name, parameter in model.named_parameters():
        assert parameter.grad is None or not parameter.grad.any(), name
        assert parameter.requires_grad, name


def test_grad_cam_shape_finite_non_negative_and_model_untouched():
    model = tiny_model()
    model.train()
    image, _ = case()
    before = snapshot(model)
    cam = grad_cam(model, image)
    assert cam.shape == SHAPE and cam.dtype == np.float32
    assert np.isfinite(cam).all()
    assert (cam >= 0).all()
    assert cam.std() > 0
    assert_untouched(model, before)
    assert model.training  # the caller's mode is restored


def test_grad_cam_with_tabular_inputs():
    model = tiny_model(n_tabular=3)
    image, _ = case()
    cam = grad_cam(model, image, torch.tensor([0.5, -1.0, 2.0]))
    assert cam.shape == SHAPE and np.isfinite(cam).all() and cam.std() > 0


def test_integrated_gradients_completeness_and_model_untouched():
    """One path (no translation averaging) from the zeros baseline: the attributions add up to the risk difference."""
    model = tiny_model(n_tabular=2)
    image, _ = case()
    tabular = torch.tensor([[0.3, -0.7]])
    before = snapshot(model)
    result = integrated_gradients_attribution(model, image, tabular, steps=32, baseline="zeros", translate=False)
    assert result.translations == 1 and result.risk_translation_sd == 0.0
    assert result.values.shape == SHAPE and result.values.dtype == np.float32
    assert np.isfinite(result.values).all() and result.values.std() > 0
    with torch.no_grad():
        model.eval()
        risk = float(model(image, tabular)[0])
        baseline = image.clone()
        baseline[:, 0] = 0.0  # the mask channel stays as it is
        baseline_risk = float(model(baseline, tabular)[0])
    assert result.risk == pytest.approx(risk, abs=1e-5)
    assert result.baseline_risk == pytest.approx(baseline_risk, abs=1e-5)
    difference = risk - baseline_risk
    assert abs(difference) > 1e-4
    assert float(result.values.sum(dtype=np.float64)) == pytest.approx(difference, rel=1e-2, abs=1e-5)
    assert abs(result.delta) < 1e-2 * abs(difference) + 1e-6
    assert_untouched(model, before)


def test_integrated_gradients_array_api_and_blur_baseline():
    model = tiny_model()
    image, _ = case()
    values = integrated_gradients(model, image, steps=8)
    assert values.shape == SHAPE and np.isfinite(values).all()
    assert (values < 0).any() or (values > 0).any()
    blurred = integrated_gradients_attribution(model, image, steps=8, baseline="blur")
    assert blurred.baseline == "blur" and np.isfinite(blurred.values).all()
    with pytest.raises(InputError, match="baseline"):
        integrated_gradients(model, image, baseline="noise")
    with pytest.raises(InputError, match="one case"):
        integrated_gradients(model, image[0])


def test_model_depending_on_myocardium_only_concentrates_attribution_there():
    """On one path (a translated scan moves voxels in and out of the fixed region: see the next test)."""
    image, myocardium = case()
    model = RegionOnly(tiny_model(), myocardium)
    values = integrated_gradients(model, image, steps=16, translate=False)
    assert not values[~myocardium].any()  # provably no attribution outside
    assert values[myocardium].any()
    assert myocardium_concentration(values, myocardium) == math.inf
    # with a margin of 2 voxels around the myocardium the ratio is finite and still well above 1
    from scipy import ndimage

    margin = ndimage.binary_dilation(myocardium, np.ones((1, 5, 5), bool))
    values = integrated_gradients(RegionOnly(tiny_model(), margin), image, steps=16, translate=False)
    concentration = myocardium_concentration(values, myocardium)
    assert math.isfinite(concentration) and concentration > 1


def test_translation_averaged_attribution_adds_up_and_stays_within_a_stride_of_the_region():
    model = tiny_model(n_tabular=2)
    image, myocardium = case()
    tabular = torch.tensor([[0.3, -0.7]])
    before = snapshot(model)
    result = integrated_gradients_attribution(model, image, tabular, steps=4)
    assert result.baseline == "blur" and result.translations == 64 and result.steps == 192  # 3 points a shift
    from scipy import ndimage

    blurred = ndimage.gaussian_filter(image[0, 0].numpy(), sigma=(0, 4.0, 4.0))
    shifts = [(dy, dx) for dy in range(8) for dx in range(8)]
    with torch.no_grad():
        model.eval()
        base = image.clone()
        base[:, 0] = torch.from_numpy(blurred)
        at_scan = [float(model(torch.roll(image, s, dims=(3, 4)), tabular)[0]) for s in shifts]
        at_base = [float(model(torch.roll(base, s, dims=(3, 4)), tabular)[0]) for s in shifts]
        assert result.risk == pytest.approx(float(model(image, tabular)[0]), abs=1e-5)
    target = float(np.mean(at_scan) - np.mean(at_base))
    assert result.target == pytest.approx(target, abs=1e-5)
    assert (
        result.risk_translation_sd == pytest.approx(float(np.std(at_scan)), abs=1e-5) and result.risk_translation_sd > 0
    )
    # completeness is that of a sampled integral here (a random network's paths are rough; a smooth model's map
    # adds up within 5 %: tests/explain/test_attribution_sanity.py); the delta says how far it is
    assert result.delta == pytest.approx(float(result.values.sum(dtype=np.float64)) - target, abs=1e-5)
    assert result.relative_delta == pytest.approx(
        abs(result.values.sum(dtype=np.float64) - target) / abs(target), rel=1e-3
    )
    assert_untouched(model, before)
    # a model that reads the image only in the myocardium: attribution at most a stride (7 voxels) away from it
    values = integrated_gradients(RegionOnly(tiny_model(), myocardium), image, steps=4)
    reach = ndimage.binary_dilation(myocardium, np.ones((1, 15, 15), bool))
    assert not values[~reach].any() and values[myocardium].any()


def test_myocardium_concentration_edge_cases():
    attribution = np.zeros((1, 2, 2))
    attribution[0, 0, 0] = 3.0
    attribution[0, 1, 1] = -1.0
    mask = np.zeros((1, 2, 2), bool)
    mask[0, 0, 0] = True
    assert myocardium_concentration(attribution, mask) == pytest.approx(3.0 / (1.0 / 3.0))
    assert math.isnan(myocardium_concentration(attribution, np.zeros_like(mask)))
    assert math.isnan(myocardium_concentration(attribution, np.ones_like(mask)))
    assert math.isnan(myocardium_concentration(np.zeros((1, 2, 2)), mask))
    with pytest.raises(InputError, match="do not match"):
        myocardium_concentration(attribution, mask[:, :1])


def test_attribution_montage_writes_png_atomically(tmp_path: Path, saved_figures: list):
    image, myocardium = case()
    volume = image[0, 0].numpy()
    scar = myocardium & (volume > 2.5)
    signed = volume * myocardium  # negative and positive values
    assert (signed < 0).any() and scar.any()
    paths = [
        attribution_montage(
            volume,
            np.abs(signed),
            myocardium,
            scar,
            tmp_path / "cam.png",
            "Grad-CAM <case>",
            synthetic=True,
            label="Grad-CAM",
        ),
        attribution_montage(volume, signed, myocardium, scar, tmp_path / "ig.png", "IG", columns=4),
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cam.png", "ig.png"]  # no temporary files left
    cam, ig = (assert_drawn_png(path, min_size=(600, 250)) for path in paths)
    # a panel per slice (6 in a row; 4 and 2 in two rows), each with the myocardium and scar outlined
    for figure in saved_figures:
        panels = [axes for axes in figure.axes if axes.images]
        assert len(panels) == SHAPE[0] and all(len(axes.collections) == 2 for axes in panels)
    assert cam.shape[1] / cam.shape[0] > 3 > ig.shape[1] / ig.shape[0]
    for pixels in (cam, ig):  # the outlines, not just the legend's two short lines
        assert colour_share(pixels, MYOCARDIUM_COLOUR, 30) > 0.002 and colour_share(pixels, SCAR_COLOUR, 30) > 0.002
    # signed values are drawn red and blue (blue lowers the risk); |values| on a scale without blue
    assert colour_share(ig, "#2166ac", 40) > 0.0005 and colour_share(cam, "#2166ac", 40) < 0.0001
    with pytest.raises(InputError, match="does not match"):
        attribution_montage(volume, signed[:3], myocardium, scar, tmp_path / "bad.png", "x")
    assert not (tmp_path / "bad.png").exists()
