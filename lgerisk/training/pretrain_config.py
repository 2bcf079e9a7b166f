"""The settings of a pretraining run (``lgerisk pretrain``): :class:`PretrainConfig`, beside
:class:`~lgerisk.training.finetune_config.FinetuneConfig`, so that reading them imports no training code."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, TypedDict

from lgerisk.config import JsonConfig
from lgerisk.errors import InputError

__all__ = ["AUX_TARGETS", "LATER_FIELDS", "RADIOMICS_VIEWS", "RESUME_FREE", "AugmentSettings", "PretrainConfig"]

RESUME_FREE = ("epochs", "num_workers", "quiet")
"""Settings that may differ when resuming (others must match the interrupted run)."""
LATER_FIELDS = {"aux_weight": 0.0, "aux_targets": "all", "radiomics_view": "all"}
"""Settings added after the first runs that, at the values runs had before they existed, stay out of the resume
hash (a run started then resumes with ``--objective hybrid --aux-weight 0 --radiomics-view all``)."""
AUX_TARGETS = ("all", "qc")
"""What the auxiliary head regresses from the image embedding: every standardised column of the radiomics
view (``all``) or only its QC metrics (``qc``: scar %, grey-zone %, mass, volumes)."""
RADIOMICS_VIEWS = ("all", "decorrelated")
"""The radiomics vector contrasted with the image: every varying feature (``all``) or those left after
dropping columns with |r| > 0.9 against an earlier one (``decorrelated``, QC metrics first)."""


class AugmentSettings(TypedDict, total=False):
    """The keyword arguments of :class:`~lgerisk.data.augment.AugmentConfig` (``PretrainConfig.augment``)."""

    strength: float
    affine: bool
    scale: bool
    elastic: bool
    bias_field: bool
    noise: bool
    gamma: bool
    motion: bool


@dataclass(frozen=True)
class PretrainConfig(JsonConfig):
    """Everything that shapes a pretraining run (round-trips through JSON).

    Example:
        >>> PretrainConfig(epochs=2).to_dict()["objective"]["preset"]
        'radiomics'
    """

    config_name: ClassVar[str] = "pretraining settings"

    epochs: int = 30
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: int = 1
    val_fraction: float = 0.2
    seed: int = 0
    width: int = 16
    depth: int = 4
    embedding_dim: int = 256
    projection_dim: int = 128
    radiomics_dropout: float = 0.0
    objective: Mapping[str, object] = field(default_factory=lambda: {"preset": "radiomics"})  # ObjectiveConfig's
    tensor: Mapping[str, object] = field(default_factory=dict)  # TensorSpec's keywords (TensorSettings)
    augment: Mapping[str, object] = field(default_factory=dict)  # AugmentConfig's keywords (AugmentSettings)
    labels: str = "emidec"
    num_workers: int = 0
    amp: bool = True
    aux_weight: float = 1.0
    aux_targets: str = "all"
    radiomics_view: str = "decorrelated"

    def __post_init__(self) -> None:
        if not (
            isinstance(self.aux_weight, (int, float))
            and not isinstance(self.aux_weight, bool)
            and math.isfinite(self.aux_weight)
            and self.aux_weight >= 0
        ):
            raise InputError(f"aux_weight={self.aux_weight!r}: a finite number >= 0.", setting="aux_weight")
        if self.aux_targets not in AUX_TARGETS:
            raise InputError(
                f"aux_targets={self.aux_targets!r}: choose one of {', '.join(AUX_TARGETS)}.", setting="aux_targets"
            )
        if self.radiomics_view not in RADIOMICS_VIEWS:
            raise InputError(
                f"radiomics_view={self.radiomics_view!r}: choose one of {', '.join(RADIOMICS_VIEWS)}.",
                setting="radiomics_view",
            )
        if self.epochs < 1:
            raise InputError(f"epochs={self.epochs!r}: at least 1.", setting="epochs")
        if self.batch_size < 2:
            raise InputError(
                f"batch_size={self.batch_size!r}: contrastive learning needs at least 2.", setting="batch_size"
            )
        if not 0 < self.lr < 1:
            raise InputError(f"lr={self.lr!r}: must be in (0, 1).", setting="lr")
        if not 0 <= self.val_fraction < 1:
            raise InputError(f"val_fraction={self.val_fraction!r}: must be in [0, 1).", setting="val_fraction")

    def resume_hash(self) -> str:
        """Hash of the settings a resumed run must share with the interrupted one."""
        payload = {
            k: v
            for k, v in self.to_dict().items()
            if k not in RESUME_FREE and not (k in LATER_FIELDS and v == LATER_FIELDS[k])
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
