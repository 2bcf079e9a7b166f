"""lgerisk: cardiac scar analysis of LGE MRI and sudden-cardiac-death risk prediction.

Research software, not a medical device.

The public API (each is what the command of the same name runs; see :mod:`lgerisk.api`)::

    read_cohort(data)                                  -> Cohort
    preprocess_case(image, mask)                       -> QCRecord
    synth_cohort(out, SynthConfig(...))                -> DataFrame (the SYNTHETIC cohort's ground truth)
    calibrate_scar(data, out)                          -> ScarCalibration
    preprocess_cohort(data, out)                       -> BatchResult
    extract_features(data, out_csv)                    -> FeatureBatch
    pretrain(data, out, PretrainConfig(...))           -> PretrainResult
    finetune(data, out, FinetuneConfig(...), encoder)  -> FinetuneResult
    load_model(run)                                    -> RiskPredictor
    predict_scan(model, image, mask)                   -> Prediction
    predict_cohort(model, data)                        -> PredictionBatch
    explain_scan(model, image, out, mask)              -> Explanation
    explain_cohort(model, data, out)                   -> ExplanationBatch

Settings: ``SynthConfig``, ``PreprocessConfig``, ``PretrainConfig``, ``FinetuneConfig``; a batch's bars, notes and
error wording: ``Reporter``; a slice of a cohort (a SLURM array task): ``Shard``. Errors: ``InputError`` (bad input
for a whole run) and ``CaseError`` (one case), both ``ValueError`` subclasses of ``LgeriskError``. Model files:
:mod:`lgerisk.artifacts`. The synthetic generator: :mod:`lgerisk.synth`.

Example:
    >>> import lgerisk
    >>> lgerisk.read_cohort("sample_data").layout
    'images+masks'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lgerisk import api
from lgerisk.api import *  # noqa: F403 - the public API, listed in lgerisk.api.__all__
from lgerisk.errors import CaseError, InputError, LgeriskError
from lgerisk.lazy import lazy_attributes

if TYPE_CHECKING:
    from lgerisk.cards import EncoderCard as EncoderCard
    from lgerisk.cards import RiskModelCard as RiskModelCard
    from lgerisk.inference import RiskPredictor as RiskPredictor
    from lgerisk.io.cohort import Case as Case
    from lgerisk.io.cohort import Cohort as Cohort
    from lgerisk.models.tabular import TabularScaling as TabularScaling
    from lgerisk.preprocess.calibration import ScarCalibration as ScarCalibration
    from lgerisk.preprocess.config import PreprocessConfig as PreprocessConfig
    from lgerisk.reporting import Reporter as Reporter
    from lgerisk.synth import SynthConfig as SynthConfig
    from lgerisk.training.finetune import FinetuneResult as FinetuneResult
    from lgerisk.training.finetune_config import FinetuneConfig as FinetuneConfig
    from lgerisk.training.pretrain import PretrainResult as PretrainResult
    from lgerisk.training.pretrain_config import PretrainConfig as PretrainConfig

from lgerisk.version import __version__ as __version__

_LAZY = {
    "Case": "lgerisk.io.cohort",
    "EncoderCard": "lgerisk.cards",
    "RiskModelCard": "lgerisk.cards",
    "Cohort": "lgerisk.io.cohort",
    "RiskPredictor": "lgerisk.inference",
    "TabularScaling": "lgerisk.models.tabular",
    "PreprocessConfig": "lgerisk.preprocess.config",
    "Reporter": "lgerisk.reporting",
    "ScarCalibration": "lgerisk.preprocess.calibration",
    "Shard": "lgerisk.batch",
    "SynthConfig": "lgerisk.synth",
    "PretrainConfig": "lgerisk.training.pretrain_config",
    "FinetuneConfig": "lgerisk.training.finetune_config",
    "PretrainResult": "lgerisk.training.pretrain",
    "FinetuneResult": "lgerisk.training.finetune",
}
"""Names imported on first use, so that ``import lgerisk`` (and ``lgerisk --help``) stays instant."""

__all__ = [
    *api.__all__,
    *_LAZY,
    "CaseError",
    "InputError",
    "LgeriskError",
    "__version__",
]


__getattr__ = lazy_attributes(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
