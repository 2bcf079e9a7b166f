"""Voxel attributions of a survival model's risk score (captum): Grad-CAM and integrated gradients.

Both explain the risk, the log relative hazard ``model(image, tabular)``, of one case
``image (1, C, D, H, W)`` (channel 0 the normalised LGE image, channel 1 the myocardium mask).

* **Grad-CAM** (Selvaraju et al., ICCV 2017) on ``model.image_encoder.last_block``: the block's
  channels weighted by their mean gradient, summed, positive part (regions that *raise* the risk),
  trilinearly upsampled from the coarse feature map to ``(D, H, W)``. Smooth and coarse.
* **Integrated gradients** (Sundararajan et al., ICML 2017) with respect to the image channel only
  (the mask and any further channels are held at their values): the signed contribution of each
  voxel's intensity, relative to a baseline scan. ``baseline="blur"`` (the default) uses the image
  blurred in-plane (Gaussian, SD 4 voxels), which keeps the coarse anatomy and removes the local
  texture: flat regions (blood pool, background) get little attribution, and the path is short enough
  for the translation averaging below to integrate well with 3 points a translation. With
  ``baseline="zeros"`` every intensity is replaced by 0, which after the ``myo-blood`` normalisation is
  the *remote-myocardium level*: the baseline is "the same heart, with no enhancement anywhere" (a long
  path: translation-averaged with 3 points, half the risk difference was left unexplained on a real scan;
  give it many more steps, or ``translate=False``). Completeness: the
  attributions sum to ``risk(image) - risk(baseline)``; the difference is the convergence ``delta``
  reported in :class:`Attribution`.
* **Translation averaging** (the default of :func:`integrated_gradients_attribution`): the encoder's
  strided convolutions (in-plane stride ``p``, 8 for ``depth=4``; its 1x1 stride-2 shortcuts read one
  voxel in four) make the gradient, and so a plain integrated-gradients map, a regular dot grid of
  period ``p`` over the whole crop, blood pool and background included (a property of the architecture,
  not of the scan). The path integral
  is therefore averaged over the ``p x p`` in-plane translations of the scan (image and mask rolled
  together; every phase, at most 64, drawn with a fixed seed when there are more): the map of the
  model made translation-averaged. It adds up to the risk difference averaged over those translations
  (``Attribution.target``); how much the risk itself moves under them is ``risk_translation_sd``.
  Neither a blurred baseline nor SmoothGrad (Gaussian input noise, captum's ``NoiseTunnel``) removes
  the grid: it is a property of the gradient's position, not of the input (see
  :func:`stride_grid_share`, the measured share of the map that is the grid).
* **Sanity check** (Adebayo et al., NeurIPS 2018, "Sanity checks for saliency maps"): the
  model-parameter randomisation test, :func:`parameter_randomisation_check`. The image encoder's
  weights are re-initialised all at once (its own initialisation, fixed seeds; the head kept) and the
  Spearman rank correlation between the trained and the randomised model's map is measured over the
  voxels that show the scan. A map that hardly changes (``|rho| >= SANITY_THRESHOLD``) shows the
  architecture or the scan, not what the model learnt, and fails.

The model is evaluated in eval mode on its own device; its parameters are neither changed nor left
with gradients, and its train/eval mode and ``requires_grad`` flags are restored afterwards.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from torch import nn

from lgerisk.errors import InputError

BASELINES = ("zeros", "blur")
"""Integrated-gradients baselines for the image channel (see the module docstring)."""

BLUR_SIGMA = 4.0
"""In-plane Gaussian SD (voxels) of the ``blur`` baseline."""

MAX_TRANSLATIONS = 64
"""At most this many in-plane translations are averaged (all ``p x p`` of them for an in-plane stride ``p <= 8``)."""

TRANSLATION_SEED = 0
"""Seed of the draw of translations when the stride has more than ``MAX_TRANSLATIONS`` of them."""

MIN_POINTS = 3
"""Gauss-Legendre points per translation at least. With the ``blur`` baseline the map added up to its risk
difference within 0.6 % on a real EMIDEC scan (2 points: 3.3 %; 4: 0.5 %) and within 2.4 % on the demo's
model (2 points: 15 %); the ``zeros`` baseline's long path needs many more."""

SANITY_THRESHOLD = 0.5
"""A map fails the randomisation sanity check when ``|Spearman rho|`` between the trained and a randomised
model's map reaches this (a convention: Adebayo et al. give no threshold)."""

SANITY_SEEDS = (20180, 20181)
"""Seeds of the randomised models (not 0 or 1, which a model's own training may have used to initialise the very
same weights); the check reports the correlation farthest from 0 over them."""


@dataclass(frozen=True)
class Attribution:
    """Integrated-gradients attribution of one case.

    Attributes:
        values: signed attribution of the image channel, ``(D, H, W)`` float32.
        delta: convergence delta, ``values.sum() - explained`` (0 for exact integration).
        risk: the model's risk score of the case (as given, not translated).
        baseline_risk: the risk score of the baseline scan.
        baseline: the baseline's name (``zeros`` or ``blur``).
        steps: gradient evaluations (integration points over all translations).
        translations: in-plane translations averaged (1: a single path, no averaging).
        target: the risk difference ``risk - baseline_risk`` averaged over the translations (None: one path).
        risk_translation_sd: SD of the scan's risk over the translations (0 for one path): how much the
            model's risk moves when the scan is moved by less than its stride.
    """

    values: np.ndarray
    delta: float
    risk: float
    baseline_risk: float
    baseline: str
    steps: int
    translations: int = 1
    target: float | None = None
    risk_translation_sd: float = 0.0

    @property
    def explained(self) -> float:
        """What the attributions add up to, exactly integrated: ``target`` (the risk difference averaged over
        the translations), else ``risk - baseline_risk``."""
        return self.target if self.target is not None else self.risk - self.baseline_risk

    @property
    def relative_delta(self) -> float:
        """``|delta|`` relative to ``|explained|`` (NaN when that is 0)."""
        difference = abs(self.explained)
        return abs(self.delta) / difference if difference > 0 else float("nan")


class _RiskOfImage(nn.Module):
    """``image (B, C, D, H, W) -> risk (B,)`` with the tabular inputs of the case held fixed."""

    def __init__(self, model: nn.Module, tabular: torch.Tensor | None) -> None:
        super().__init__()
        self.model = model
        self.tabular = tabular

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        tabular = None if self.tabular is None else self.tabular.expand(image.shape[0], -1)
        return cast("torch.Tensor", self.model(image, tabular))


class _RiskOfIntensity(nn.Module):
    """``channel 0 (B, 1, D, H, W) -> risk (B,)`` with the other channels (the mask) held fixed."""

    def __init__(self, model: nn.Module, rest: torch.Tensor, tabular: torch.Tensor | None) -> None:
        super().__init__()
        self.risk = _RiskOfImage(model, tabular)
        self.rest = rest

    def forward(self, intensity: torch.Tensor) -> torch.Tensor:
        rest = self.rest.expand(intensity.shape[0], *self.rest.shape[1:])
        return cast("torch.Tensor", self.risk(torch.cat([intensity, rest], dim=1)))


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
    return cast("np.ndarray", full[0, 0].clamp_min(0).float().cpu().numpy())


def _baseline(intensity: torch.Tensor, baseline: str) -> torch.Tensor:
    if baseline == "zeros":
        return torch.zeros_like(intensity)
    from scipy import ndimage

    blurred = ndimage.gaussian_filter(intensity[0, 0].float().cpu().numpy(), sigma=(0, BLUR_SIGMA, BLUR_SIGMA))
    return torch.as_tensor(blurred, dtype=intensity.dtype, device=intensity.device)[None, None]


def inplane_stride(model: nn.Module, image: torch.Tensor) -> int:
    """The in-plane stride of ``model.image_encoder`` for ``image`` ``(1, C, D, H, W)``: ``H`` over the height
    of its feature map (1 for a model without an encoder that has ``forward_features``).

    Example:
        >>> from lgerisk.models.encoder import EncoderConfig
        >>> from lgerisk.models.survival import SurvivalModel, SurvivalModelConfig
        >>> inplane_stride(SurvivalModel(SurvivalModelConfig(EncoderConfig(width=4))), torch.zeros(1, 2, 6, 32, 32))
        8
    """
    encoder = getattr(model, "image_encoder", None)
    features = getattr(encoder, "forward_features", None)
    if not callable(features):
        return 1
    image, _ = _inputs(model, image, None)
    with _frozen(model), torch.no_grad():
        height = int(features(image).shape[-2])
    return max(1, image.shape[-2] // max(height, 1))


def translations(stride: int, limit: int = MAX_TRANSLATIONS, seed: int = TRANSLATION_SEED) -> list[tuple[int, int]]:
    """The in-plane translations ``(dy, dx)`` averaged for an encoder of in-plane ``stride``: every one of the
    ``stride**2`` phases, or ``limit`` of them drawn with ``seed`` when there are more.

    Example:
        >>> translations(2)
        [(0, 0), (0, 1), (1, 0), (1, 1)]
        >>> len(translations(16))
        64
    """
    every = [(dy, dx) for dy in range(stride) for dx in range(stride)]
    if len(every) <= limit:
        return every
    chosen = np.random.default_rng(seed).choice(len(every), size=limit, replace=False)
    return [every[i] for i in sorted(chosen)]


def _checked_ig_settings(steps: int, baseline: str, internal_batch_size: int) -> None:
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


def _translated_risks(
    risk: _RiskOfImage, scans: torch.Tensor, shifts: list[tuple[int, int]], batch: int
) -> torch.Tensor:
    """``risk`` of ``scans[i]`` rolled in-plane by ``shifts[i]`` (``scans (N, C, D, H, W)``), ``batch`` at a time."""
    out = []
    for start in range(0, len(shifts), batch):
        chunk = [torch.roll(scans[i], shifts[i], dims=(2, 3)) for i in range(start, min(start + batch, len(shifts)))]
        out.append(risk(torch.stack(chunk)))
    return torch.cat(out)


def _translation_averaged(
    model: nn.Module,
    image: torch.Tensor,
    tabular: torch.Tensor | None,
    reference: torch.Tensor,
    steps: int,
    baseline: str,
    batch: int,
) -> Attribution:
    """Integrated gradients of the image channel averaged over the encoder's in-plane translations."""
    shifts = translations(inplane_stride(model, image))
    points = max(MIN_POINTS, steps // len(shifts))
    nodes, weights = np.polynomial.legendre.leggauss(points)  # the same points on every translation's path
    pairs = [
        (shift, float(node + 1.0) / 2.0, float(weight) / 2.0 / len(shifts))
        for shift in shifts
        for node, weight in zip(nodes, weights)
    ]
    intensity, rest = image[:, :1], image[:, 1:]
    risk = _RiskOfImage(model, tabular)
    gradient = torch.zeros_like(intensity)
    with _frozen(model):
        for start in range(0, len(pairs), batch):
            chunk = pairs[start : start + batch]
            alpha = intensity.new_tensor([a for _, a, _ in chunk]).view(-1, 1, 1, 1, 1)
            scale = intensity.new_tensor([w for _, _, w in chunk]).view(-1, 1, 1, 1, 1)
            path = (reference + alpha * (intensity - reference)).requires_grad_(True)
            scans = torch.cat([path, rest.expand(len(chunk), *rest.shape[1:])], dim=1)
            (grad,) = torch.autograd.grad(_translated_risks(risk, scans, [s for s, _, _ in chunk], batch).sum(), path)
            gradient += (scale * grad).sum(dim=0, keepdim=True).detach()
        with torch.no_grad():
            at_scan = _translated_risks(risk, image.expand(len(shifts), *image.shape[1:]), shifts, batch)
            at_base = _translated_risks(
                risk, torch.cat([reference, rest], dim=1).expand(len(shifts), *image.shape[1:]), shifts, batch
            )
            scan_risk = float(risk(image)[0])
            baseline_risk = float(risk(torch.cat([reference, rest], dim=1))[0])
    values = (gradient * (intensity - reference))[0, 0].float().cpu().numpy()
    target = float((at_scan - at_base).double().mean())
    return Attribution(
        values=values,
        delta=float(values.sum(dtype=np.float64)) - target,
        risk=scan_risk,
        baseline_risk=baseline_risk,
        baseline=baseline,
        steps=len(pairs),
        translations=len(shifts),
        target=target,
        risk_translation_sd=float(at_scan.double().std(unbiased=False)) if len(shifts) > 1 else 0.0,
    )


def integrated_gradients_attribution(
    model: nn.Module,
    image: torch.Tensor,
    tabular: torch.Tensor | None = None,
    steps: int = 32,
    baseline: str = "blur",
    internal_batch_size: int = 8,
    translate: bool = True,
) -> Attribution:
    """Integrated gradients of the risk w.r.t. the image channel, with the convergence delta.

    The mask channel (and any further channel) stays at its values along the path; ``baseline``
    is ``blur`` (the scan blurred in-plane) or ``zeros`` (remote-myocardium intensity everywhere; see the
    module docstring). ``translate`` (default): averaged over the encoder's in-plane translations (see the
    module docstring), every translation's path with the same ``max(MIN_POINTS, steps // translations)``
    Gauss-Legendre points, so ``steps`` is the budget of gradient evaluations, raised to ``MIN_POINTS`` a
    translation (192 for a stride of 8).
    ``translate=False``: one path with ``steps`` Gauss-Legendre points (captum), which shows the stride's
    dot grid. ``internal_batch_size`` scans at a time.

    Example:
        >>> from lgerisk.models.encoder import EncoderConfig
        >>> from lgerisk.models.survival import SurvivalModel, SurvivalModelConfig
        >>> model = SurvivalModel(SurvivalModelConfig(EncoderConfig(width=4, embedding_dim=8)))
        >>> result = integrated_gradients_attribution(model, torch.randn(1, 2, 6, 32, 32), steps=4)
        >>> result.values.shape, result.baseline, result.translations, result.steps
        ((6, 32, 32), 'blur', 64, 192)
    """
    from captum.attr import IntegratedGradients

    _checked_ig_settings(steps, baseline, internal_batch_size)
    image, tabular = _inputs(model, image, tabular)
    if image.shape[1] < 1:
        raise InputError("attribution needs an image with at least one channel.")
    intensity, rest = image[:, :1], image[:, 1:]
    reference = _baseline(intensity, baseline)
    if translate:
        return _translation_averaged(model, image, tabular, reference, steps, baseline, internal_batch_size)
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
    model: nn.Module,
    image: torch.Tensor,
    tabular: torch.Tensor | None = None,
    steps: int = 32,
    baseline: str = "blur",
    translate: bool = True,
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
    return integrated_gradients_attribution(
        model, image, tabular, steps=steps, baseline=baseline, translate=translate
    ).values


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


def stride_grid_share(attribution: np.ndarray, period: int) -> float:
    """The share of a map's in-plane variation that is a grid of ``period`` voxels (the encoder's stride).

    Of ``|attribution|`` (a dot grid whatever the dots' signs), each slice about its mean: the grid is the
    slice's average over its ``period x period`` cells (cropped to whole cells), repeated; its energy over the
    slice's. 1 for a pure grid of equal dots, about ``period**2 / (H * W)`` for white noise, near 0 for a map
    smooth over ``period`` voxels. NaN for a constant map.

    Example:
        >>> dots = np.zeros((1, 16, 16))
        >>> dots[:, ::8, ::8] = 1.0
        >>> round(stride_grid_share(dots, 8), 3), round(stride_grid_share(np.ones((1, 16, 16)), 8), 3)
        (1.0, nan)
    """
    values = np.abs(np.asarray(attribution, dtype=float))
    if values.ndim != 3 or isinstance(period, bool) or not isinstance(period, int) or period < 1:
        raise InputError(
            f"grid share needs a (D, H, W) map and a positive integer period, got {values.shape}, {period!r}."
        )
    rows, cols = values.shape[1] // period, values.shape[2] // period
    if rows == 0 or cols == 0:
        return float("nan")
    values = values[:, : rows * period, : cols * period]
    values = values - values.mean(axis=(1, 2), keepdims=True)
    total = float((values**2).sum())
    if total == 0:
        return float("nan")
    cell = values.reshape(values.shape[0], rows, period, cols, period).mean(axis=(1, 3))
    return float((cell**2).sum() * rows * cols / total)


def randomised_model(model: nn.Module, seed: int) -> nn.Module:
    """A copy of ``model`` whose image encoder (the whole model if it has none) is re-initialised: each layer's
    own ``reset_parameters``, then the encoder's own initialisation (``_init_weights``) where it has one, then
    every parameter still as trained drawn anew (normal, the trained values' SD). Torch's random state is left
    as it was.

    Example:
        >>> from lgerisk.models.encoder import EncoderConfig
        >>> from lgerisk.models.survival import SurvivalModel, SurvivalModelConfig
        >>> model = SurvivalModel(SurvivalModelConfig(EncoderConfig(width=4)))
        >>> copy_ = randomised_model(model, 0)
        >>> torch.equal(copy_.image_encoder.stem[0].weight, model.image_encoder.stem[0].weight)
        False
    """
    randomised = copy.deepcopy(model)
    target = getattr(randomised, "image_encoder", randomised)
    if not isinstance(target, nn.Module):
        target = randomised
    before = {name: value.detach().clone() for name, value in target.named_parameters()}
    devices = [p.device for p in target.parameters() if p.device.type == "cuda"]
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(seed)
        for module in target.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
        initialise = getattr(target, "_init_weights", None)
        if callable(initialise):
            initialise()
        for name, parameter in target.named_parameters():
            if torch.equal(parameter, before[name]):  # no initialiser touched it
                spread = float(parameter.float().std()) if parameter.numel() > 1 else 0.0
                parameter.normal_(0.0, spread if spread > 0 else 1.0)
    return randomised


@dataclass(frozen=True)
class SanityCheck:
    """The model-parameter randomisation test of one attribution method (Adebayo et al., 2018).

    Attributes:
        method: the attribution method's name.
        spearman: Spearman rank correlation between the trained and a randomised model's map (signed, as
            drawn), the one farthest from 0 over the randomisations; NaN when a map is constant.
        spearman_abs: the same for ``|attribution|`` (where the map is strong, whichever its sign).
        randomisations: how many randomised models were compared.
        threshold: ``|spearman|`` at which the map fails.
    """

    method: str
    spearman: float
    spearman_abs: float
    randomisations: int
    threshold: float = SANITY_THRESHOLD

    @property
    def status(self) -> str:
        """``passed`` (the map changes with the weights), ``failed`` (it hardly does) or ``not measurable``."""
        if not math.isfinite(self.spearman):
            return "not measurable"
        return "failed" if abs(self.spearman) >= self.threshold else "passed"

    def as_dict(self) -> dict[str, object]:
        """A JSON-able record (NaN as None)."""
        finite = {
            k: (v if math.isfinite(v) else None)
            for k, v in (("spearman", self.spearman), ("spearman_abs", self.spearman_abs))
        }
        return {
            "method": self.method,
            "status": self.status,
            **finite,
            "randomisations": self.randomisations,
            "threshold": self.threshold,
        }


def _spearman(first: np.ndarray, second: np.ndarray) -> float:
    from scipy import stats

    if np.ptp(first) == 0 or np.ptp(second) == 0:
        return float("nan")
    return float(stats.spearmanr(first, second)[0])


def parameter_randomisation_check(
    attribute: Callable[[nn.Module], np.ndarray],
    model: nn.Module,
    method: str,
    region: np.ndarray | None = None,
    trained: np.ndarray | None = None,
    seeds: tuple[int, ...] = SANITY_SEEDS,
    threshold: float = SANITY_THRESHOLD,
) -> SanityCheck:
    """Adebayo et al.'s model-parameter randomisation test of ``attribute(model) -> map``.

    The map of ``model`` (``trained``, if already computed) against the maps of :func:`randomised_model` for
    each seed, compared by Spearman rank correlation over the voxels in ``region`` (all if None). A map that
    hardly changes when the weights are replaced by random ones does not show what the model learnt.

    Example:
        >>> from lgerisk.models.encoder import EncoderConfig
        >>> from lgerisk.models.survival import SurvivalModel, SurvivalModelConfig
        >>> model = SurvivalModel(SurvivalModelConfig(EncoderConfig(width=4)))
        >>> _ = model.head.weight.data.normal_()
        >>> image = torch.randn(1, 2, 6, 32, 32)
        >>> attribute = lambda m: integrated_gradients(m, image, steps=4, translate=False)
        >>> check = parameter_randomisation_check(attribute, model, "integrated gradients")
        >>> check.randomisations, -1 <= check.spearman <= 1
        (2, True)
    """
    if not seeds:
        raise InputError("the randomisation check needs at least one seed.")
    first = np.asarray(trained if trained is not None else attribute(model), dtype=float)
    where = np.ones(first.shape, bool) if region is None else np.asarray(region, bool)
    if where.shape != first.shape:
        raise InputError(f"region of shape {where.shape} does not match the map's {first.shape}.")
    signed, absolute = [], []
    for seed in seeds:
        other = np.asarray(attribute(randomised_model(model, seed)), dtype=float)
        signed.append(_spearman(first[where], other[where]))
        absolute.append(_spearman(np.abs(first[where]), np.abs(other[where])))

    def farthest(values: list[float]) -> float:
        finite = [v for v in values if math.isfinite(v)]
        return max(finite, key=abs) if len(finite) == len(values) else float("nan")

    return SanityCheck(method, farthest(signed), farthest(absolute), len(seeds), threshold)
