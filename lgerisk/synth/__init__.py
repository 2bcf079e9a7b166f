"""Synthetic LGE cohort with known scar and known survival outcomes (``lgerisk synth``).

Every case is a short-axis LGE stack (int16, base -> apex) with an EMIDEC-style label map and
a time-to-event outcome drawn from a documented proportional-hazards model whose linear
predictor uses the case's *true* scar properties. All numbers produced here are synthetic; the
data exist to exercise and validate the pipeline, never to support a clinical claim. The design
and every range are documented in docs/synthetic.md.

Modules, in the order a case is made:

* :mod:`~lgerisk.synth.priors`: every range and constant the cases are drawn from (:data:`PRIORS`);
* :mod:`~lgerisk.synth.config`: the cohort's settings (:class:`SynthConfig`);
* :mod:`~lgerisk.synth.anatomy`: a case's design (acquisition, heart, scar), each from its own random stream;
* :mod:`~lgerisk.synth.phantom`: the heart on a fine grid (partial volume) and the ground truth measured there;
* :mod:`~lgerisk.synth.image`: image formation (body scene, coil bias, Rician noise);
* :mod:`~lgerisk.synth.hazard`: the clinical covariates and the versioned outcome model (:class:`HazardModel`);
* :mod:`~lgerisk.synth.generator`: one case (:func:`generate_case`, :func:`generate_truth`);
* :mod:`~lgerisk.synth.cohort`: a cohort folder on disk (:func:`generate_cohort`);
* :mod:`~lgerisk.io.markers`: case ids and the markers that say a scan or a cohort is synthetic.

Design points: a case depends only on ``(seed, case_index)`` (independent random streams); tissue
is rendered on a finer grid and averaged down (partial volume), labels are the majority of the fine
samples and ground-truth percentages are measured on the fine grid; the hazard standardises every
covariate with *fixed* reference constants, so a case's ``log_hazard`` does not depend on its
cohort. The outcome model is versioned (``SynthConfig.hazard_version``, ``lgerisk synth
--hazard-version``): version 2 (the default, generator 2.0) gives the image hazard terms a scar-%
count cannot see and draws the clinical covariates apart from the scar; version 1 is generator 1.0
(images, truth and outcomes byte for byte).

Example:
    >>> from lgerisk.synth import SynthConfig, generate_truth, is_synthetic_case_id
    >>> truth, clinical, outcome = generate_truth(3, SynthConfig(small=True))
    >>> truth["case_id"], is_synthetic_case_id(truth["case_id"])
    ('synth-0003', True)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lgerisk.lazy import lazy_attributes

if TYPE_CHECKING:
    from lgerisk.io.markers import (
        GENERATOR,
        MARKER_FILE,
        SCAN_MARKER,
        SYNTH_VERSION,
        SYNTHETIC_ID_PREFIX,
        SYNTHETIC_NOTICE,
        case_id_of,
        is_synthetic_case_id,
    )
    from lgerisk.synth.cohort import (
        OUTCOME_COLUMNS,
        config_of_cohort,
        generate_cohort,
        regenerate_command,
    )
    from lgerisk.synth.config import SynthConfig
    from lgerisk.synth.generator import SyntheticCase, generate_case, generate_truth
    from lgerisk.synth.hazard import (
        CLINICAL_COVARIATES,
        DEFAULT_HAZARD_VERSION,
        HAZARD_TERMS,
        HAZARD_TERMS_V1,
        HAZARD_TERMS_V2,
        HAZARD_VERSIONS,
        WEIBULL_SCALES,
        HazardModel,
        HazardTerm,
        hazard_model,
        sample_outcomes,
    )
    from lgerisk.synth.priors import PRIORS, Priors

_LAZY = {
    "CLINICAL_COVARIATES": "lgerisk.synth.hazard",
    "DEFAULT_HAZARD_VERSION": "lgerisk.synth.hazard",
    "GENERATOR": "lgerisk.io.markers",
    "HAZARD_TERMS": "lgerisk.synth.hazard",
    "HAZARD_TERMS_V1": "lgerisk.synth.hazard",
    "HAZARD_TERMS_V2": "lgerisk.synth.hazard",
    "HAZARD_VERSIONS": "lgerisk.synth.hazard",
    "HazardModel": "lgerisk.synth.hazard",
    "HazardTerm": "lgerisk.synth.hazard",
    "MARKER_FILE": "lgerisk.io.markers",
    "OUTCOME_COLUMNS": "lgerisk.synth.cohort",
    "PRIORS": "lgerisk.synth.priors",
    "Priors": "lgerisk.synth.priors",
    "SCAN_MARKER": "lgerisk.io.markers",
    "SYNTHETIC_ID_PREFIX": "lgerisk.io.markers",
    "SYNTHETIC_NOTICE": "lgerisk.io.markers",
    "SYNTH_VERSION": "lgerisk.io.markers",
    "SynthConfig": "lgerisk.synth.config",
    "SyntheticCase": "lgerisk.synth.generator",
    "WEIBULL_SCALES": "lgerisk.synth.hazard",
    "case_id_of": "lgerisk.io.markers",
    "config_of_cohort": "lgerisk.synth.cohort",
    "generate_case": "lgerisk.synth.generator",
    "generate_cohort": "lgerisk.synth.cohort",
    "generate_truth": "lgerisk.synth.generator",
    "hazard_model": "lgerisk.synth.hazard",
    "is_synthetic_case_id": "lgerisk.io.markers",
    "regenerate_command": "lgerisk.synth.cohort",
    "sample_outcomes": "lgerisk.synth.hazard",
}
"""Where each name lives: imported on first use, so that ``lgerisk.io.markers`` (which every
prediction reads) does not pull in the generator and pandas."""

__all__ = [
    "CLINICAL_COVARIATES",
    "DEFAULT_HAZARD_VERSION",
    "GENERATOR",
    "HAZARD_TERMS",
    "HAZARD_TERMS_V1",
    "HAZARD_TERMS_V2",
    "HAZARD_VERSIONS",
    "MARKER_FILE",
    "OUTCOME_COLUMNS",
    "PRIORS",
    "SCAN_MARKER",
    "SYNTHETIC_ID_PREFIX",
    "SYNTHETIC_NOTICE",
    "SYNTH_VERSION",
    "WEIBULL_SCALES",
    "HazardModel",
    "HazardTerm",
    "Priors",
    "SynthConfig",
    "SyntheticCase",
    "case_id_of",
    "config_of_cohort",
    "generate_case",
    "generate_cohort",
    "generate_truth",
    "hazard_model",
    "is_synthetic_case_id",
    "regenerate_command",
    "sample_outcomes",
]


__getattr__ = lazy_attributes(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
