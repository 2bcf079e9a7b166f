"""Random augmentation of LGE short-axis stacks ``(C, D, H, W)`` with torchio, reproducible by seed.

Suited to 2D multi-slice LGE, whose slices are 8-13 mm apart against 1.4 mm in-plane:

* spatial transforms are **in-plane only**: RandomAffine rotates about the slice axis (+-15 deg), scales
  0.9-1.1 and translates (+-4 voxels) in-plane, never across slices; RandomElasticDeformation is mild
  and has no displacement along the slice axis; **no flips** (the septum stays on its side);
* intensity transforms (RandomBiasField, RandomGamma, RandomGhosting, RandomNoise) touch the ``image``
  channel only: the binary channels (``myocardium``, ``scar``) are a torchio ``LabelMap``, so they
  are only moved, identically to the image, with nearest-neighbour interpolation;
* motion is simulated as in-plane ghosting (a periodic k-space modulation along one in-plane axis,
  as cardiac and respiratory motion produce in each 2D slice); torchio's RandomMotion is not used:
  it mixes k-space across slices, as in a 3D acquisition.

Slices that are entirely zero in every channel (``case_tensor``'s padding past the apex) stay zero.

The tensor becomes a ``tio.Subject`` with torchio's spatial axes ``(W, H, D)``, voxel size 1 (so
parameters are in voxels: 1 voxel = 1.4 mm in-plane for preprocessed cases) and back.
``augment(tensor, seed)`` seeds torch's RNG locally (``torch.random.fork_rng``), so the same seed
gives the same result in any process, and the caller's RNG stream is left untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, cast

import numpy as np

from lgerisk.config import JsonConfig
from lgerisk.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import torch
    import torchio as tio

DEFAULT_CHANNELS = ("image", "myocardium")

AUGMENT_PRESETS: dict[str, dict[str, bool]] = {
    "default": {},
    "preserving": {"scale": False, "elastic": False, "gamma": False, "bias_field": False},
}
"""Named augmentation settings (``lgerisk pretrain --augment``): ``default`` (everything below) and
``preserving`` (rotation, translation, ghosting and noise only: no in-plane scaling or elastic warp,
which change wall thickness, and no gamma or bias field, which change enhancement relative to
remote myocardium)."""


def augment_preset(name: str) -> dict[str, bool]:
    """The augmentation settings of the preset ``name`` (a copy of ``AUGMENT_PRESETS[name]``).

    Example:
        >>> augment_preset("preserving")["elastic"], augment_preset("default")
        (False, {})
    """
    if name not in AUGMENT_PRESETS:
        raise InputError(f"augment={name!r}: choose one of {', '.join(AUGMENT_PRESETS)}.", setting="augment")
    return dict(AUGMENT_PRESETS[name])


@dataclass(frozen=True)
class AugmentConfig(JsonConfig):
    """Which augmentations run, and how strongly (``strength`` scales every magnitude; 0 = none;
    ``scale=False`` keeps the affine's rotation and translation without in-plane scaling).

    Example:
        >>> AugmentConfig.from_dict(AugmentConfig(elastic=False).to_dict()) == AugmentConfig(elastic=False)
        True
    """

    config_name: ClassVar[str] = "augmentation settings"

    strength: float = 1.0
    affine: bool = True
    scale: bool = True
    elastic: bool = True
    bias_field: bool = True
    noise: bool = True
    gamma: bool = True
    motion: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.strength) <= 2.0:
            raise InputError(f"augmentation strength {self.strength}: must be 0-2.")


def make_augmentation(config: AugmentConfig = AugmentConfig()) -> tio.Compose:
    """The torchio pipeline of ``config``: spatial (in-plane) transforms first, then intensity ones.

    Example:
        >>> [type(t).__name__ for t in make_augmentation(AugmentConfig(elastic=False, motion=False))]
        ['RandomAffine', 'RandomBiasField', 'RandomGamma', 'RandomNoise']
    """
    import torchio as tio

    s = float(config.strength)
    z = s if config.scale else 0.0  # no scaling keeps wall thickness in millimetres
    transforms: list[tio.Transform] = []
    if config.affine:
        transforms.append(
            tio.RandomAffine(
                scales=(1 - 0.1 * z, 1 + 0.1 * z, 1 - 0.1 * z, 1 + 0.1 * z, 1, 1),  # in-plane only
                degrees=(0, 0, 0, 0, -15 * s, 15 * s),  # about the slice axis
                translation=(-4 * s, 4 * s, -4 * s, 4 * s, 0, 0),  # voxels, in-plane
                default_pad_value=0.0,
                image_interpolation="linear",
                label_interpolation="nearest",
                p=0.8,
            )
        )
    if config.elastic:
        transforms.append(
            tio.RandomElasticDeformation(
                num_control_points=(7, 7, 5),
                max_displacement=(3 * s, 3 * s, 0),
                locked_borders=2,
                image_interpolation="linear",
                label_interpolation="nearest",
                p=0.3,
            )
        )
    if config.bias_field:
        transforms.append(tio.RandomBiasField(coefficients=0.3 * s, order=3, p=0.3))
    if config.gamma:
        transforms.append(tio.RandomGamma(log_gamma=(-0.2 * s, 0.2 * s), p=0.5))
    if config.motion:
        transforms.append(tio.RandomGhosting(num_ghosts=(2, 6), axes=(0, 1), intensity=(0.1 * s, 0.5 * s), p=0.1))
    if config.noise:
        transforms.append(tio.RandomNoise(std=(0.0, 0.05 * s), p=0.5))
    return tio.Compose(transforms)


def _label_flags(channels: Sequence[str]) -> list[bool]:
    from lgerisk.data.tensors import CHANNEL_LABELS

    unknown = [c for c in channels if c not in CHANNEL_LABELS]
    if unknown:
        raise InputError(f"augmentation channels: {unknown[0]!r} is not one of {', '.join(CHANNEL_LABELS)}.")
    return [CHANNEL_LABELS[c] is not None for c in channels]


def to_subject(tensor: np.ndarray | torch.Tensor, channels: Sequence[str] = DEFAULT_CHANNELS) -> tio.Subject:
    """``(C, D, H, W)`` -> ``tio.Subject`` with ``image`` (ScalarImage) and ``labels`` (LabelMap), axes ``(W, H, D)``.

    Example:
        >>> to_subject(np.zeros((2, 4, 8, 8), np.float32))["labels"].shape
        (1, 8, 8, 4)
    """
    import torch
    import torchio as tio

    data = torch.as_tensor(
        np.asarray(tensor, dtype=np.float32) if not torch.is_tensor(tensor) else tensor, dtype=torch.float32
    )
    if data.ndim != 4 or data.shape[0] != len(channels):
        raise InputError(f"augmentation input has shape {tuple(data.shape)}; expected (C={len(channels)}, D, H, W).")
    flags = _label_flags(channels)
    spatial = data.permute(0, 3, 2, 1)  # (C, D, H, W) -> torchio's (C, W, H, D)
    images: dict[str, tio.Image] = {}
    intensity = [i for i, f in enumerate(flags) if not f]
    labels = [i for i, f in enumerate(flags) if f]
    if intensity:
        images["image"] = tio.ScalarImage(tensor=spatial[intensity].contiguous())
    if labels:
        images["labels"] = tio.LabelMap(tensor=spatial[labels].contiguous())
    return tio.Subject(**images)


def from_subject(subject: tio.Subject, channels: Sequence[str] = DEFAULT_CHANNELS) -> torch.Tensor:
    """Inverse of ``to_subject``: a ``(C, D, H, W)`` float32 torch tensor in the order of ``channels``."""
    import torch

    flags = _label_flags(channels)
    parts = {
        False: iter(cast("tio.Image", subject["image"]).data) if not all(flags) else iter(()),
        True: iter(cast("tio.Image", subject["labels"]).data) if any(flags) else iter(()),
    }
    stacked = torch.stack([next(parts[f]) for f in flags]).to(torch.float32)
    return stacked.permute(0, 3, 2, 1).contiguous()


def augment(
    tensor: np.ndarray | torch.Tensor,
    seed: int,
    config: AugmentConfig = AugmentConfig(),
    channels: Sequence[str] = DEFAULT_CHANNELS,
    transform: tio.Compose | None = None,
) -> torch.Tensor:
    """One random augmentation of a ``(C, D, H, W)`` tensor, the same for the same ``seed``.

    ``transform`` (a ``make_augmentation`` result) saves rebuilding the pipeline from ``config``.

    Example:
        >>> x = np.random.default_rng(0).normal(size=(2, 12, 96, 96)).astype(np.float32)
        >>> x[1] = x[1] > 1
        >>> bool((augment(x, seed=3) == augment(x, seed=3)).all())
        True
    """
    import torch

    transform = make_augmentation(config) if transform is None else transform
    data = torch.as_tensor(tensor if torch.is_tensor(tensor) else np.asarray(tensor), dtype=torch.float32)
    subject = to_subject(data, channels)
    padding = ~data.flatten(2).any(dim=2).any(dim=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        transformed = transform(subject)
    out = from_subject(transformed, channels)
    out[:, padding] = 0  # zero slices past the apex stay zero: no noise, ghosts or bias in the padding
    return out


@dataclass(frozen=True)
class Augmenter:
    """``augment`` as a picklable callable ``(tensor, seed) -> tensor`` for ``PretrainDataset``.

    Example:
        >>> view = Augmenter(AugmentConfig(strength=0.5))(np.zeros((2, 12, 96, 96), np.float32), seed=1)
        >>> tuple(view.shape)
        (2, 12, 96, 96)
    """

    config: AugmentConfig = AugmentConfig()
    channels: tuple[str, ...] = DEFAULT_CHANNELS
    _transform: tio.Compose | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(self.channels))
        _label_flags(self.channels)
        object.__setattr__(self, "_transform", make_augmentation(self.config))

    def __call__(self, tensor: np.ndarray | torch.Tensor, seed: int) -> torch.Tensor:
        return augment(tensor, seed, self.config, self.channels, self._transform)
