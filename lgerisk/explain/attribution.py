"""Voxel attributions of a survival model's risk score (captum): Grad-CAM and integrated gradients.

Both explain the risk, the log relative hazard ``model(image, tabular)``, of one case
``image (1, C, D, H, W)`` (channel 0 the normalised LGE image, channel 1 the myocardium mask).

* **Grad-CAM** (Selvaraju et al., ICCV 2017) on ``model.image_encoder.last_block``: the block's
  channels weighted by their mean gradient, summed, positive part (regions that *raise* the risk),
  trilinearly upsampled from the coarse feature map to ``(D, H, W)``. Smooth and coarse.
* **Integrated gradients** (Sundararajan et al., ICML 2017) with respect to the image channel only
  (the mask and any further channels are held at their values): the signed contribution of each
  voxel's intensity, relative to a baseline scan. With ``baseline="zeros"`` every intensity is
  replaced by 0, which after the ``myo-blood`` normalisation is the *remote-myocardium level*: the
  baseline is "the same heart, with no enhancement anywhere". ``baseline="blur"`` uses the image
  blurred in-plane (Gaussian, SD 4 voxels), which keeps the coarse anatomy and removes the local
  texture. Completeness: the attributions sum to ``risk(image) - risk(baseline)``; the difference is
  the convergence ``delta`` reported in :class:`Attribution`.

The model is evaluated in eval mode on its own device; its parameters are neither changed nor left
with gradients, and its train/eval mode and ``requires_grad`` flags are restored afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lgerisk.errors import InputError

BASELINES = ("zeros", "blur")
"""Integrated-gradients baselines for the image channel (see the module docstring)."""

BLUR_SIGMA = 4.0
"""In-plane Gaussian SD (voxels) of the ``blur`` baseline."""


@dataclass(frozen=True)
class Attribution:
    """Integrated-gradients attribution of one case.

    Attributes:
        values: signed attribution of the image channel, ``(D, H, W)`` float32.
        delta: convergence delta, ``values.sum() - (risk - baseline_risk)`` (0 for exact integration).
        risk: the model's risk score of the case.
        baseline_risk: the risk score of the baseline scan.
        baseline: the baseline's name (``zeros`` or ``blur``).
        steps: integration steps.
    """

    values: np.ndarray
    delta: float
    risk: float
    baseline_risk: float
    baseline: str
    steps: int

    @property
    def relative_delta(self) -> float:
        """``|delta|`` relative to ``|risk - baseline_risk|`` (NaN when the two risks are equal)."""
        difference = abs(self.risk - self.baseline_risk)
        return abs(self.delta) / difference if difference > 0 else float("nan")


class _RiskOfImage(nn.Module):
    """``image (B, C, D, H, W) -> risk (B,)`` with the tabular inputs of the case held fixed."""

    def __init__(self, model: nn.Module, tabular: torch.Tensor | None) -> None:
        super().__init__()
        self.model = model
        self.tabular = tabular

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        tabular = None if self.tabular is None else self.tabular.expand(image.shape[0], -1)
        return self.model(image, tabular)


class _RiskOfIntensity(nn.Module):
    """``channel 0 (B, 1, D, H, W) -> risk (B,)`` with the other channels (the mask) held fixed."""

    def __init__(self, model: nn.Module, rest: torch.Tensor, tabular: torch.Tensor | None) -> None:
        super().__init__()
        self.risk = _RiskOfImage(model, tabular)
        self.rest = rest

    def forward(self, intensity: torch.Tensor) -> torch.Tensor:
        rest = self.rest.expand(intensity.shape[0], *self.rest.shape[1:])
        return self.risk(torch.cat([intensity, rest], dim=1))


def _placement(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """The device and floating dtype of the model's parameters (CPU float32 if it has none)."""
    parameter = next(model.parameters(), None)
    if parameter is None or not parameter.is_floating_point():
        return torch.device("cpu"), torch.float32
    return parameter.device, parameter.dtype


def _inputs(
    model: nn.Module, image: torch.Tensor, tabular: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Check one case and move it to the model's device and dtype."""
    if not isinstance(image, torch.Tensor):
        image = torch.as_tensor(np.asarray(image))
    if image.dim() != 5 or image.shape[0] != 1:
        raise InputError(
            f"attribution needs one case shaped (1, C, D, H, W), got an image of shape {tuple(image.shape)}."
        )
    if not torch.isfinite(image).all():
        raise InputError("attribution needs a finite image, but it contains NaN or infinite values.")
    device, dtype = _placement(model)
    image = image.detach().to(device=device, dtype=dtype)
    if tabular is not None:
        if not isinstance(tabular, torch.Tensor):
            tabular = torch.as_tensor(np.asarray(tabular))
        tabular = tabular.detach().to(device=device, dtype=dtype).reshape(1, -1)
    return image, tabular


@contextmanager
def _frozen(model: nn.Module) -> Iterator[None]:
    """Eval mode and no parameter gradients for the duration; the previous state is restored."""
    was_training = model.training
    flags = [(parameter, parameter.requires_grad) for parameter in model.parameters()]
    model.eval()
    for parameter, _ in flags:
        parameter.requires_grad_(False)
    try:
        with torch.enable_grad():
            yield
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)
        model.train(was_training)


def grad_cam(model: nn.Module, image: torch.Tensor, tabular: torch.Tensor | None = None) -> np.ndarray:
    """Grad-CAM of the risk on ``model.image_encoder.last_block``, upsampled to ``(D, H, W)``.

    Non-negative (the regions that raise the risk) float32; all zeros if nothing raises it.

    Example:
        >>> from lgerisk.models.encoder import EncoderConfig
        >>> from lgerisk.models.survival import SurvivalModel, SurvivalModelConfig
        >>> model = SurvivalModel(SurvivalModelConfig(EncoderConfig(width=4, embedding_dim=8)))
        >>> grad_cam(model, torch.randn(1, 2, 6, 32, 32)).shape
        (6, 32, 32)
    """
    from captum.attr import LayerAttribution, LayerGradCam

    image, tabular = _inputs(model, image, tabular)
    layer = model.image_encoder.last_block  # type: ignore[union-attr]  # torch's Module.__getattr__: Tensor | Module
    with _frozen(model):
        cam = LayerGradCam(_RiskOfImage(model, tabular), layer)
        coarse = cam.attribute(image.clone().requires_grad_(True), relu_attributions=True)
        full = LayerAttribution.interpolate(coarse.detach(), tuple(image.shape[2:]), interpolate_mode="trilinear")
    return full[0, 0].clamp_min(0).float().cpu().numpy()


def _baseline(intensity: torch.Tensor, baseline: str) -> torch.Tensor:
    if baseline == "zeros":
        return torch.zeros_like(intensity)
    from scipy import ndimage

    blurred = ndimage.gaussian_filter(intensity[0, 0].float().cpu().numpy(), sigma=(0, BLUR_SIGMA, BLUR_SIGMA))
    return torch.as_tensor(blurred, dtype=intensity.dtype, device=intensity.device)[None, None]


def integrated_gradients_attribution(
    model: nn.Module,
    image: torch.Tensor,
    tabular: torch.Tensor | None = None,
    steps: int = 32,
    baseline: str = "zeros",
    internal_batch_size: int = 8,
) -> Attribution:
    """Integrated gradients of the risk w.r.t. the image channel, with the convergence delta.

    The mask channel (and any further channel) stays at its values along the path; ``baseline``
    is ``zeros`` (remote-myocardium intensity everywhere) or ``blur`` (see the module docstring).
    Gauss-Legendre integration with ``steps`` points, ``internal_batch_size`` scans at a time.

    Example:
        >>> from lgerisk.models.encoder import EncoderConfig
        >>> from lgerisk.models.survival import SurvivalModel, SurvivalModelConfig
        >>> model = SurvivalModel(SurvivalModelConfig(EncoderConfig(width=4, embedding_dim=8)))
        >>> result = integrated_gradients_attribution(model, torch.randn(1, 2, 6, 32, 32), steps=4)
        >>> result.values.shape, result.baseline
        ((6, 32, 32), 'zeros')
    """
    from captum.attr import IntegratedGradients

    if baseline not in BASELINES:
        raise InputError(
            f"integrated-gradients baseline {baseline!r} is unknown; choose one of {', '.join(BASELINES)}."
        )
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InputError(f"integrated-gradients steps must be a positive integer, got {steps!r}.")
    if isinstance(internal_batch_size, bool) or not isinstance(internal_batch_size, int) or internal_batch_size < 1:
        raise InputError(
            f"integrated-gradients internal_batch_size must be a positive integer, got {internal_batch_size!r}."
        )
    image, tabular = _inputs(model, image, tabular)
    if image.shape[1] < 1:
        raise InputError("attribution needs an image with at least one channel.")
    intensity, rest = image[:, :1], image[:, 1:]
    reference = _baseline(intensity, baseline)
    forward = _RiskOfIntensity(model, rest, tabular)
    with _frozen(model):
        values, delta = IntegratedGradients(forward).attribute(
            intensity,
            baselines=reference,
            n_steps=steps,
            method="gausslegendre",
            internal_batch_size=internal_batch_size,
            return_convergence_delta=True,
        )
        with torch.no_grad():
            risk = float(forward(intensity)[0])
            baseline_risk = float(forward(reference)[0])
    return Attribution(
        values=values.detach()[0, 0].float().cpu().numpy(),
        delta=float(delta.reshape(-1)[0]),
        risk=risk,
        baseline_risk=baseline_risk,
        baseline=baseline,
        steps=steps,
    )


def integrated_gradients(
    model: nn.Module, image: torch.Tensor, tabular: torch.Tensor | None = None, steps: int = 32, baseline: str = "zeros"
) -> np.ndarray:
    """The signed integrated-gradients attribution ``(D, H, W)`` of the image channel.

    Shorthand for ``integrated_gradients_attribution(...).values``; call that function for the
    convergence delta and the risks of the case and of the baseline.

    Example:
        >>> from lgerisk.models.encoder import EncoderConfig
        >>> from lgerisk.models.survival import SurvivalModel, SurvivalModelConfig
        >>> model = SurvivalModel(SurvivalModelConfig(EncoderConfig(width=4, embedding_dim=8)))
        >>> integrated_gradients(model, torch.randn(1, 2, 6, 32, 32), steps=4).dtype
        dtype('float32')
    """
    return integrated_gradients_attribution(model, image, tabular, steps=steps, baseline=baseline).values


def myocardium_concentration(attribution: np.ndarray, myocardium: np.ndarray) -> float:
    """Mean ``|attribution|`` per voxel inside the myocardium over the mean outside it.

    Above 1: the attribution concentrates in the myocardium. NaN when either region is empty or
    no voxel anywhere is attributed; ``inf`` when all of the attribution lies inside.

    Example:
        >>> attribution = np.array([[[4.0, 1.0, 1.0, 0.0]]])
        >>> myocardium_concentration(attribution, np.array([[[True, False, False, False]]]))
        6.0
    """
    attribution = np.abs(np.asarray(attribution, dtype=float))
    myocardium = np.asarray(myocardium)
    if attribution.shape != myocardium.shape:
        raise InputError(
            f"attribution of shape {attribution.shape} and myocardium mask of shape {myocardium.shape} do not match."
        )
    myocardium = myocardium.astype(bool)
    if not myocardium.any() or myocardium.all():
        return float("nan")
    inside = float(attribution[myocardium].mean())
    outside = float(attribution[~myocardium].mean())
    if outside == 0:
        return float("inf") if inside > 0 else float("nan")
    return inside / outside
