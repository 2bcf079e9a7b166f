"""3D residual CNN for anisotropic short-axis LGE stacks ``(B, C, D, H, W)``.

Short-axis stacks have few, thick slices (D ~ 12 slices, 8-13 mm apart) and fine in-plane
pixels (H = W = 96 at 1.4 mm). The network therefore starts in-plane only (kernels (1, 3, 3),
downsampling stride (1, 2, 2)) until the in-plane pixels are coarse enough to be comparable with
the slice spacing, then switches to 3D blocks (kernels (3, 3, 3)); only the last stage halves
the depth, so D is kept at full resolution for all but one stage.

Layout for ``depth`` stages (``depth // 2`` in-plane, the rest 3D), channels ``width * 2**i``::

    stem   conv (1,3,3) in_channels -> width                      (full resolution)
    stage 0  residual block, stride 1
    stage i  residual block, stride (1,2,2); the last stage (if i > 0) stride (2,2,2)
    global average pooling -> dropout -> linear -> embedding_dim

GroupNorm everywhere (batches of 3D volumes are tiny and DDP must behave like one process).
At 96 x 96 x 12 with the default ``depth=4`` the feature map is ``(8 * width, 6, 12, 12)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, cast

import torch
from torch import nn

from lgerisk.config import JsonConfig, require_fraction, require_int
from lgerisk.errors import InputError


@dataclass(frozen=True)
class EncoderConfig(JsonConfig):
    """Settings of :class:`ImageEncoder`.

    Attributes:
        in_channels: input channels (e.g. 2: the LGE image and a myocardium/scar mask).
        width: channels of the first stage; doubled at every further stage.
        depth: number of stages (1-6); ``depth // 2`` in-plane stages, then 3D ones.
        embedding_dim: length of the output embedding.
        dropout: dropout before the final linear layer.

    Example:
        >>> EncoderConfig.from_dict(EncoderConfig(width=32).to_dict()) == EncoderConfig(width=32)
        True
    """

    config_name: ClassVar[str] = "encoder settings"

    in_channels: int = 2
    width: int = 16
    depth: int = 4
    embedding_dim: int = 256
    dropout: float = 0.0

    def __post_init__(self) -> None:
        require_int(self.in_channels, "encoder in_channels", 1)
        require_int(self.width, "encoder width", 1, 1024, setting="width")
        require_int(self.depth, "encoder depth", 1, 6)
        require_int(self.embedding_dim, "encoder embedding_dim", 1)
        require_fraction(self.dropout, "encoder dropout", allow_one=False)
        if self.width * 2 ** (self.depth - 1) > 4096:
            raise InputError(
                f"encoder width {self.width} with depth {self.depth}: the last stage would have "
                f"{self.width * 2 ** (self.depth - 1)} channels (at most 4096)."
            )


def _groups(channels: int) -> int:
    """Largest divisor of ``channels`` that is at most 8 (GroupNorm groups).

    Example:
        >>> _groups(64), _groups(12), _groups(3)
        (8, 6, 3)
    """
    return max(g for g in range(1, min(8, channels) + 1) if channels % g == 0)


def _conv(in_ch: int, out_ch: int, kernel: tuple[int, int, int], stride: tuple[int, int, int] = (1, 1, 1)) -> nn.Conv3d:
    """A bias-free 'same'-padded 3D convolution (a GroupNorm follows it)."""
    padding = cast("tuple[int, int, int]", tuple(k // 2 for k in kernel))
    return nn.Conv3d(in_ch, out_ch, kernel, stride=stride, padding=padding, bias=False)


class ResidualBlock3d(nn.Module):
    """conv-GN-SiLU-conv-GN plus a (projected) shortcut, then SiLU.

    ``kernel`` (1, 3, 3) makes an in-plane block, (3, 3, 3) a 3D one; ``stride`` applies to the
    first convolution and to the 1x1x1 shortcut projection.

    Example:
        >>> block = ResidualBlock3d(4, 8, kernel=(3, 3, 3), stride=(1, 2, 2))
        >>> tuple(block(torch.zeros(1, 4, 5, 16, 16)).shape)
        (1, 8, 5, 8, 8)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int, int],
        stride: tuple[int, int, int] = (1, 1, 1),
    ) -> None:
        super().__init__()
        self.kernel = kernel
        self.stride = stride
        self.conv1 = _conv(in_channels, out_channels, kernel, stride)
        self.norm1 = nn.GroupNorm(_groups(out_channels), out_channels)
        self.conv2 = _conv(out_channels, out_channels, kernel)
        self.norm2 = nn.GroupNorm(_groups(out_channels), out_channels)
        self.act = nn.SiLU()
        self.shortcut: nn.Module
        if in_channels != out_channels or stride != (1, 1, 1):
            self.shortcut = nn.Sequential(
                nn.Conv3d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.GroupNorm(_groups(out_channels), out_channels),
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        out = self.act(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return cast("torch.Tensor", self.act(out + self.shortcut(x)))


class ImageEncoder(nn.Module):
    """3D residual CNN: ``(B, in_channels, D, H, W)`` -> ``(B, embedding_dim)``.

    Works for any D >= 1 and H, W >= 16 (smaller sizes run too, at a 1-voxel feature map).
    ``last_block`` is the last 3D residual block (hook it for Grad-CAM) and
    ``feature_channels`` the channels of :meth:`forward_features`.

    Example:
        >>> encoder = ImageEncoder(EncoderConfig(width=8))
        >>> tuple(encoder(torch.zeros(2, 2, 12, 96, 96)).shape)
        (2, 256)
        >>> tuple(encoder.forward_features(torch.zeros(1, 2, 12, 96, 96)).shape)
        (1, 64, 6, 12, 12)
    """

    def __init__(self, config: EncoderConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else EncoderConfig()
        cfg = self.config
        self.embedding_dim = cfg.embedding_dim
        n_inplane = cfg.depth // 2
        self.stem = nn.Sequential(
            _conv(cfg.in_channels, cfg.width, (1, 3, 3)),
            nn.GroupNorm(_groups(cfg.width), cfg.width),
            nn.SiLU(),
        )
        stages: list[nn.Module] = []
        channels = cfg.width
        for index in range(cfg.depth):
            out_channels = cfg.width * 2**index
            kernel = (1, 3, 3) if index < n_inplane else (3, 3, 3)
            if index == 0:
                stride = (1, 1, 1)
            elif index == cfg.depth - 1:
                stride = (2, 2, 2)
            else:
                stride = (1, 2, 2)
            stages.append(ResidualBlock3d(channels, out_channels, kernel, stride))
            channels = out_channels
        self.stages = nn.Sequential(*stages)
        self.feature_channels = channels
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(channels, cfg.embedding_dim)
        self._init_weights()

    @property
    def last_block(self) -> ResidualBlock3d:
        """The last 3D residual block (its output is :meth:`forward_features`)."""
        return cast(ResidualBlock3d, self.stages[-1])  # stages holds ResidualBlock3d only

    def _init_weights(self) -> None:
        """Kaiming-normal convolutions; the last GroupNorm of each block starts at zero so every
        block starts as (nearly) the identity, which keeps small-batch training stable."""
        for module in self.modules():
            if isinstance(module, nn.Conv3d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=1.0 / math.sqrt(module.in_features))
                nn.init.zeros_(module.bias)
        for block in cast("Iterable[ResidualBlock3d]", self.stages):
            # A small (not zero) scale: zero would give the block's convolutions no gradient at step 0.
            nn.init.constant_(block.norm2.weight, 0.1)

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 5 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"ImageEncoder expects (B, {self.config.in_channels}, D, H, W), got {tuple(x.shape)}.")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The pre-pooling feature map ``(B, feature_channels, D', H', W')``."""
        self._check(x)
        return cast("torch.Tensor", self.stages(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding ``(B, embedding_dim)`` (not normalised)."""
        features = self.forward_features(x)
        return cast("torch.Tensor", self.fc(self.dropout(self.pool(features).flatten(1))))
