"""What shapes a fine-tuning run (:class:`FinetuneConfig`, round-trips through JSON) and one of its splits
(:class:`Split`): beside ``PretrainConfig``, below the modules that fit, describe and run a risk model, so that
they can all name the settings without importing the run (``lgerisk.training.finetune``).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, TypedDict

from lgerisk.config import JsonConfig
from lgerisk.errors import InputError

FUSIONS = ("group", "stacked")
"""How ``with_radiomics`` joins radiomics and the embedding (``lgerisk.training.fusion``)."""

MODES = ("probe", "full")


HEAD_PENALTIES = ("cv", "fixed")
"""How the Cox head's L2 penalty is set: chosen by inner CV on each training fold, or ``--penalizer``."""


BASELINES_VERSION = 4
"""2: radiomics Cox keeps empty-ROI features (imputed, with presence indicators), may use the QC metrics and
chooses its penalty by inner CV; scar+grey Cox added. 3: inner-CV risks centred per fold. 4: that inner CV is
``lgerisk.evaluation.cox.choose_penalizer``. Finished parts of older runs are refitted, not reused."""


AUX_WEIGHT = 1.0
"""Default weight of the auxiliary radiomics loss in end-to-end fine-tuning: the pretraining's own default
(``PretrainConfig.aux_weight``), so the guidance the encoder learnt keeps the same pull while it is fine-tuned."""


DEFAULT_LABELS = "emidec"
"""The label map of a raw cohort when neither the settings, the encoder nor the data name one."""


class TensorSettings(TypedDict, total=False):
    """The keyword arguments of :class:`~lgerisk.data.tensors.TensorSpec`: what a run's ``tensor=`` setting
    (``FinetuneConfig.tensor``, ``PretrainConfig.tensor``) may hold."""

    slices: int
    size: int
    channels: tuple[str, ...]


@dataclass(frozen=True)
class FinetuneConfig(JsonConfig):
    """Everything that shapes a fine-tuning run (round-trips through JSON).

    Example:
        >>> FinetuneConfig(mode="full", covariates=("age",)).covariates
        ('age',)
    """

    config_name: ClassVar[str] = "fine-tuning settings"

    mode: str = "probe"
    with_radiomics: bool = False
    with_scar: bool = False
    covariates: tuple[str, ...] = ()
    folds: int = 5
    test_fraction: float = 0.0
    label_fraction: float = 1.0
    baselines: bool = True
    """Scar-% Cox, scar+grey Cox and radiomics Cox in the same folds (cheap: seconds)."""
    scratch_baseline: bool = False
    """With an encoder: also the same network trained from random weights, end to end, in every fold (with
    ``baselines``). The costly row — most of a run's time on a CPU — so it runs only when asked for."""
    horizons: tuple[float, ...] = (1.0, 3.0, 5.0)
    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-4
    head_lr: float = 1e-3
    weight_decay: float = 1e-4
    penalizer: float = 0.1
    head_penalty: str = "cv"
    head_pcs: int = 0
    scar_penalty_factor: float = 1.0
    radiomics_features: int = 10
    width: int = 16
    embedding_dim: int = 256
    n_boot: int = 200
    seed: int = 0
    labels: str | None = None
    """Label preset or map of the masks; ``None``: a preprocessed folder's own map, else (a raw cohort)
    the encoder's, else ``DEFAULT_LABELS``. A map given here must agree with a preprocessed folder's."""
    amp: bool = True
    tensor: Mapping[str, object] = field(default_factory=dict)  # TensorSpec's keywords (TensorSettings)
    fusion: str = "group"
    """With ``with_radiomics``: how radiomics and the embedding are joined (``lgerisk.training.fusion``)."""
    aux_weight: float = AUX_WEIGHT
    """``full`` mode with a radiomics-guided encoder: weight of the auxiliary radiomics regression beside the Cox
    loss (0: Cox only). A SimCLR encoder and the scratch network have no radiomics guidance to keep: Cox only."""

    @staticmethod
    def default_mode(pretrained: bool) -> str:
        """The mode a run gets unless it names one: a frozen ``probe`` on a pretrained encoder, else the network
        trained in ``full`` from scratch (the command line and ``lgerisk.finetune`` both ask here).

        Example:
            >>> FinetuneConfig.default_mode(pretrained=True), FinetuneConfig.default_mode(pretrained=False)
            ('probe', 'full')
        """
        return "probe" if pretrained else "full"

    def __post_init__(self) -> None:
        object.__setattr__(self, "covariates", tuple(self.covariates))
        object.__setattr__(self, "horizons", tuple(float(h) for h in self.horizons))
        if self.mode not in MODES:
            raise InputError(f"mode={self.mode!r}: choose probe or full.", setting="mode")
        if not 0 < self.label_fraction <= 1:
            raise InputError(f"label_fraction={self.label_fraction!r}: must be in (0, 1].", setting="label_fraction")
        if not 0 <= self.test_fraction < 1:
            raise InputError(f"test_fraction={self.test_fraction!r}: must be in [0, 1).", setting="test_fraction")
        if self.head_pcs < 0:
            raise InputError(f"head_pcs={self.head_pcs!r}: must be >= 0 (0: the whole embedding).", setting="head_pcs")
        if not (
            isinstance(self.scar_penalty_factor, (int, float))
            and not isinstance(self.scar_penalty_factor, bool)
            and math.isfinite(self.scar_penalty_factor)
            and self.scar_penalty_factor >= 0
        ):
            raise InputError(
                f"scar_penalty_factor={self.scar_penalty_factor!r}: a finite number >= 0 (0: scar % "
                "and grey-zone % unpenalised, 1: penalised like the embedding).",
                setting="scar_penalty_factor",
            )
        if self.head_penalty not in HEAD_PENALTIES:
            raise InputError(f"head_penalty={self.head_penalty!r}: choose cv or fixed.", setting="head_penalty")
        if self.folds == 1 or self.folds < 0:
            raise InputError(f"folds={self.folds!r}: use 2 or more, or 0 for no cross-validation.", setting="folds")
        if self.folds == 0 and self.test_fraction == 0:
            raise InputError("folds=0 needs a held-out split (test_fraction=) to evaluate on.", setting="folds")
        if any(not h > 0 for h in self.horizons) or not self.horizons:
            shown = ",".join(f"{h:g}" for h in self.horizons)
            raise InputError(f"horizons={shown!r}: need positive times.", setting="horizons")
        if self.epochs < 1 or self.batch_size < 2:
            raise InputError(
                f"epochs={self.epochs!r}, batch_size={self.batch_size!r}: need at least 1 epoch and batches "
                "of at least 2.",
                setting="epochs" if self.epochs < 1 else "batch_size",
            )
        if self.penalizer < 0:
            raise InputError(f"penalizer={self.penalizer!r}: must be >= 0.", setting="penalizer")
        if self.fusion not in FUSIONS:
            raise InputError(f"fusion={self.fusion!r}: choose one of {', '.join(FUSIONS)}.", setting="fusion")
        if not (
            isinstance(self.aux_weight, (int, float))
            and not isinstance(self.aux_weight, bool)
            and math.isfinite(self.aux_weight)
            and self.aux_weight >= 0
        ):
            raise InputError(
                f"aux_weight={self.aux_weight!r}: a finite number >= 0 (0: Cox loss only).", setting="aux_weight"
            )

    def settings_hash(self) -> str:
        """Hash of everything that changes a fit (finished parts are reused only under the same hash)."""
        payload = {
            k: v
            for k, v in self.to_dict().items()
            if k not in ("n_boot",)
            and not (k == "scar_penalty_factor" and v == 1.0)
            and not (k == "fusion" and not self.with_radiomics)
            and not (k == "aux_weight" and self.mode == "probe")
            and k != "scratch_baseline"  # which methods run, not how any is fitted: parts are per method
        }  # added later: where they change nothing, old runs resume
        payload["labels"] = self.labels or DEFAULT_LABELS  # as hashed when None was spelled "emidec"
        payload["baselines_version"] = BASELINES_VERSION
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Split:
    """A training/evaluation split: ``cv`` folds or the held-out ``test`` split."""

    name: str
    evaluation: str
    train: tuple[str, ...]
    test: tuple[str, ...]


# ---------------------------------------------------------------- data


def parse_numbers(text: str, setting: str) -> tuple[float, ...]:
    """Comma-separated numbers, as a setting such as ``horizons`` is written on the command line.

    Example:
        >>> parse_numbers("1, 3,5", "horizons")
        (1.0, 3.0, 5.0)
    """
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise InputError(f"{setting}={text!r}: give comma-separated numbers, e.g. 1,3,5.", setting=setting) from None
