"""Neural networks: the 3D image encoder, the radiomics encoder, projection heads and the
contrastive model combining them.

Example:
    >>> from lgerisk.models import ContrastiveModel, ContrastiveModelConfig, EncoderConfig, RadiomicsEncoderConfig
    >>> model = ContrastiveModel(ContrastiveModelConfig(EncoderConfig(), RadiomicsEncoderConfig(n_features=100)))
    >>> parameter_count(model.image_encoder)
    893376
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lgerisk.lazy import lazy_attributes

if TYPE_CHECKING:
    from torch import nn

    from lgerisk.models.contrastive import ContrastiveModel, ContrastiveModelConfig
    from lgerisk.models.encoder import EncoderConfig, ImageEncoder, ResidualBlock3d
    from lgerisk.models.heads import ProjectionHead
    from lgerisk.models.radiomics import RadiomicsEncoder, RadiomicsEncoderConfig

_LAZY = {
    "ContrastiveModel": "lgerisk.models.contrastive",
    "ContrastiveModelConfig": "lgerisk.models.contrastive",
    "EncoderConfig": "lgerisk.models.encoder",
    "ImageEncoder": "lgerisk.models.encoder",
    "ResidualBlock3d": "lgerisk.models.encoder",
    "ProjectionHead": "lgerisk.models.heads",
    "RadiomicsEncoder": "lgerisk.models.radiomics",
    "RadiomicsEncoderConfig": "lgerisk.models.radiomics",
}
"""Imported on first use: ``lgerisk.models.tabular`` (which prediction workers unpickle) needs no torch."""

__all__ = [
    "ContrastiveModel",
    "ContrastiveModelConfig",
    "EncoderConfig",
    "ImageEncoder",
    "ProjectionHead",
    "RadiomicsEncoder",
    "RadiomicsEncoderConfig",
    "ResidualBlock3d",
    "describe",
    "parameter_count",
]


def parameter_count(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``module`` (only those with ``requires_grad`` if ``trainable_only``).

    Example:
        >>> from torch import nn
        >>> parameter_count(nn.Linear(3, 2))
        8
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def describe(model: nn.Module) -> str:
    """One line per direct part of ``model`` with its parameter count, then the total.

    Example:
        >>> from torch import nn
        >>> print(describe(nn.Sequential(nn.Linear(3, 2), nn.ReLU())))
        0 (Linear)  8 parameters
        1 (ReLU)    0 parameters
        total       8 parameters
    """
    rows = [(f"{name} ({type(child).__name__})", parameter_count(child)) for name, child in model.named_children()]
    total = parameter_count(model)
    rows.append(("total", total))
    trainable = parameter_count(model, trainable_only=True)
    if trainable != total:
        rows.append(("trainable", trainable))
    label_width = max(len(label) for label, _ in rows)
    number_width = max(len(f"{count:,}") for _, count in rows)
    return "\n".join(f"{label:<{label_width}}  {count:>{number_width},} parameters" for label, count in rows)


__getattr__ = lazy_attributes(__name__, _LAZY, globals())
