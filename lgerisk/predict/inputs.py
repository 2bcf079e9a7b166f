"""What ``predict`` and ``explain`` are given besides the scans: the risk model's folder and the clinical covariates.

Example:
    >>> resolve_model("work/risk")
    PosixPath('work/risk')
"""

from __future__ import annotations

import os
from pathlib import Path

from lgerisk.errors import InputError
from lgerisk.types import JSONScalar

MODEL_ENV = "LGERISK_MODEL"
"""The environment variable naming the risk model when none is given."""


def resolve_model(model: str | os.PathLike[str] | None) -> Path:
    """``model``, else ``$LGERISK_MODEL``, else a clear message saying how to get one."""
    chosen = model if model is not None else os.environ.get(MODEL_ENV)
    if not chosen:
        raise InputError(
            "no risk model given: give model=RUN (a folder written by finetune) or set "
            f"{MODEL_ENV}; train one with finetune from a cohort (data=COHORT) and a pretrained encoder "
            "(encoder=PRETRAIN).",
            setting="model",
        )
    return Path(chosen)


def read_clinical(path: str | os.PathLike[str] | None) -> dict[str, dict[str, JSONScalar]]:
    """``case_id`` + covariate columns -> {case_id: {name: value}} (for models with covariates)."""
    if path is None:
        return {}
    from lgerisk.io.cohort import read_outcomes

    return {case_id: covariates for case_id, (_, _, covariates) in read_outcomes(Path(path)).items()}
