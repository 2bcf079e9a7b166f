"""Training objectives: multimodal (image⇄radiomics) and image⇄image contrastive losses.

Example:
    >>> from lgerisk.objectives import HybridObjective, ObjectiveConfig
    >>> HybridObjective(ObjectiveConfig.from_preset("radiomics")).config.simclr_weight
    0.0
"""

from __future__ import annotations

from lgerisk.objectives.contrastive import (
    PRESETS,
    EmbeddingQueue,
    HybridObjective,
    ObjectiveConfig,
    clip_loss,
    nt_xent_loss,
    scarf_corrupt,
)

__all__ = [
    "PRESETS",
    "EmbeddingQueue",
    "HybridObjective",
    "ObjectiveConfig",
    "clip_loss",
    "nt_xent_loss",
    "scarf_corrupt",
]
