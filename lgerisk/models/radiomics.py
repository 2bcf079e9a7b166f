"""MLP encoder of a case's standardised radiomics feature vector."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, cast

import torch
from torch import nn

from lgerisk.config import JsonConfig, require_fraction, require_int


@dataclass(frozen=True)
class RadiomicsEncoderConfig(JsonConfig):
    """Settings of :class:`RadiomicsEncoder`.

    Attributes:
        n_features: length of the (standardised) radiomics vector.
        hidden_dim: width of the hidden layers.
        embedding_dim: length of the output embedding.
        depth: number of hidden Linear-LayerNorm-GELU-Dropout layers (1-8).
        dropout: dropout after each hidden layer.

    Example:
        >>> RadiomicsEncoderConfig.from_dict(RadiomicsEncoderConfig(40).to_dict()).n_features
        40
    """

    config_name: ClassVar[str] = "radiomics encoder settings"

    n_features: int
    hidden_dim: int = 256
    embedding_dim: int = 256
    depth: int = 2
    dropout: float = 0.1

    def __post_init__(self) -> None:
        require_int(self.n_features, "radiomics n_features", 1)
        require_int(self.hidden_dim, "radiomics hidden_dim", 1)
        require_int(self.embedding_dim, "radiomics embedding_dim", 1)
        require_int(self.depth, "radiomics depth", 1, 8)
        require_fraction(self.dropout, "radiomics dropout", allow_one=False)


class RadiomicsEncoder(nn.Module):
    """``(B, n_features)`` standardised features -> ``(B, embedding_dim)``.

    ``depth`` x (Linear -> LayerNorm -> GELU -> Dropout), then a Linear to ``embedding_dim``.

    Example:
        >>> encoder = RadiomicsEncoder(RadiomicsEncoderConfig(n_features=30, embedding_dim=64))
        >>> tuple(encoder(torch.zeros(4, 30)).shape)
        (4, 64)
    """

    def __init__(self, config: RadiomicsEncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding_dim = config.embedding_dim
        layers: list[nn.Module] = []
        width = config.n_features
        for _ in range(config.depth):
            layers += [
                nn.Linear(width, config.hidden_dim),
                nn.LayerNorm(config.hidden_dim),
                nn.GELU(),
                nn.Dropout(config.dropout),
            ]
            width = config.hidden_dim
        self.hidden = nn.Sequential(*layers)
        self.out = nn.Linear(width, config.embedding_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """The embedding ``(B, embedding_dim)`` (not normalised)."""
        if features.dim() != 2 or features.shape[1] != self.config.n_features:
            raise ValueError(f"RadiomicsEncoder expects (B, {self.config.n_features}), got {tuple(features.shape)}.")
        return cast("torch.Tensor", self.out(self.hidden(features)))
