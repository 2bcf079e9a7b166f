"""The survival network: the image encoder, an embedding standardiser, and a linear Cox head.

``risk = head([standardised embedding, tabular inputs])`` — the log relative hazard. Tabular inputs
(radiomics, clinical covariates) are standardised outside the network (``FeatureScaler``) and
concatenated after the embedding. The embedding's mean and scale are buffers set from the
training cases, so the same weights serve a frozen probe (only the head is fitted) and full
fine-tuning (everything trains, the head starting from the probe's solution).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from lgerisk.config import checked_fields, require_int
from lgerisk.errors import InputError
from lgerisk.models.encoder import EncoderConfig, ImageEncoder
from lgerisk.types import JSONDict


@dataclass(frozen=True)
class SurvivalModelConfig:
    """Settings of :class:`SurvivalModel`.

    Attributes:
        encoder: the image encoder's settings (those of the pretrained encoder, if any).
        n_tabular: number of tabular inputs beside the embedding (radiomics, covariates).
        use_image: whether the image embedding enters the head (False: a tabular-only Cox model).

    Example:
        >>> config = SurvivalModelConfig(EncoderConfig(width=4), n_tabular=3)
        >>> SurvivalModelConfig.from_dict(config.to_dict()) == config
        True
    """

    encoder: EncoderConfig
    n_tabular: int = 0
    use_image: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.encoder, EncoderConfig):
            raise InputError(
                f"survival model encoder settings must be an EncoderConfig, not {type(self.encoder).__name__}."
            )
        require_int(self.n_tabular, "survival model n_tabular", 0)
        if not self.use_image and self.n_tabular == 0:
            raise InputError("a survival model without the image needs tabular inputs.")

    def to_dict(self) -> JSONDict:
        """Plain JSON-able nested dict of the settings."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> SurvivalModelConfig:
        """Inverse of :meth:`to_dict` (unknown keys refused)."""
        values = checked_fields(cls, data, "survival model settings")
        if isinstance(values.get("encoder"), dict):
            values["encoder"] = EncoderConfig.from_dict(values["encoder"])
        return cls(**values)

    @property
    def n_inputs(self) -> int:
        """Inputs of the linear head."""
        return (self.encoder.embedding_dim if self.use_image else 0) + self.n_tabular


class SurvivalModel(nn.Module):
    """``(image (B, C, D, H, W), tabular (B, n_tabular)) -> risk (B,)``, the log relative hazard.

    Example:
        >>> model = SurvivalModel(SurvivalModelConfig(EncoderConfig(width=4, embedding_dim=8), n_tabular=2))
        >>> tuple(model(torch.zeros(3, 2, 4, 32, 32), torch.zeros(3, 2)).shape)
        (3,)
    """

    embedding_mean: torch.Tensor  # buffers registered in __init__
    embedding_scale: torch.Tensor

    def __init__(self, config: SurvivalModelConfig) -> None:
        super().__init__()
        self.config = config
        self.image_encoder = ImageEncoder(config.encoder)
        dim = config.encoder.embedding_dim
        self.register_buffer("embedding_mean", torch.zeros(dim))
        self.register_buffer("embedding_scale", torch.ones(dim))
        self.head = nn.Linear(config.n_inputs, 1, bias=False)  # a Cox model has no intercept
        nn.init.zeros_(self.head.weight)

    def embed(self, image: torch.Tensor) -> torch.Tensor:
        """The standardised image embedding ``(B, embedding_dim)``."""
        return cast("torch.Tensor", (self.image_encoder(image) - self.embedding_mean) / self.embedding_scale)

    def head_inputs(self, image: torch.Tensor | None, tabular: torch.Tensor | None = None) -> torch.Tensor:
        """What the linear head sees: ``[standardised embedding, tabular]``."""
        parts = []
        if self.config.use_image:
            if image is None:
                raise ValueError("this survival model needs the image.")
            parts.append(self.embed(image))
        if self.config.n_tabular:
            if tabular is None or tabular.shape[-1] != self.config.n_tabular:
                got = None if tabular is None else tuple(tabular.shape)
                raise ValueError(f"expected {self.config.n_tabular} tabular inputs, got {got}.")
            parts.append(tabular.to(parts[0].dtype if parts else tabular.dtype))
        return torch.cat(parts, dim=1)

    def head_terms(self, image: torch.Tensor | None, tabular: torch.Tensor | None = None) -> tuple[float, list[float]]:
        """One case's risk split by the linear head: (the embedding's term, each tabular input's term); they add
        up to the risk (the head has no intercept).

        Example:
            >>> model = SurvivalModel(SurvivalModelConfig(EncoderConfig(width=4, embedding_dim=8), n_tabular=2))
            >>> model.head_terms(torch.zeros(1, 2, 4, 32, 32), torch.ones(1, 2))
            (0.0, [0.0, 0.0])
        """
        with torch.no_grad():
            products = (self.head_inputs(image, tabular)[0] * self.head.weight[0]).double().cpu()
        n_image = self.config.n_inputs - self.config.n_tabular
        return float(products[:n_image].sum()), [float(v) for v in products[n_image:]]

    def forward(self, image: torch.Tensor | None, tabular: torch.Tensor | None = None) -> torch.Tensor:
        """The risk score (log relative hazard) of each case."""
        return cast("torch.Tensor", self.head(self.head_inputs(image, tabular)).squeeze(1))

    def set_embedding_scaling(self, mean: torch.Tensor, scale: torch.Tensor) -> None:
        """Standardise the embedding with training-set statistics (scale floored at 1e-6)."""
        self.embedding_mean.copy_(mean)
        self.embedding_scale.copy_(scale.clamp_min(1e-6))
