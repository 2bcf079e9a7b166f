"""Projection heads mapping encoder embeddings into the contrastive space."""

from __future__ import annotations

from typing import cast

import torch
from torch import nn


class ProjectionHead(nn.Module):
    """Linear -> GELU -> Linear; the output is NOT normalised (the losses normalise).

    Example:
        >>> head = ProjectionHead(256, 256, out_dim=128)
        >>> tuple(head(torch.zeros(3, 256)).shape)
        (3, 128)
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int = 128) -> None:
        super().__init__()
        for name, value in (("in_dim", in_dim), ("hidden_dim", hidden_dim), ("out_dim", out_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ProjectionHead {name} must be a positive integer, got {value!r}.")
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.net = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Project ``(B, in_dim)`` -> ``(B, out_dim)``."""
        return cast("torch.Tensor", self.net(x))
