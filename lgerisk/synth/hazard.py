"""The outcome model: Weibull proportional hazards on a case's true properties, in versions.

The log-hazard ``eta`` is a sum of :class:`HazardTerm`; each standardises one input (an image
property of the true scar, or a clinical covariate) with *fixed* reference constants, so a case's
``log_hazard`` does not depend on which other cases are in the cohort. The version
(``SynthConfig.hazard_version``, ``lgerisk synth --hazard-version``) picks the terms and the Weibull
scale (:data:`HAZARD_TERMS`, :data:`WEIBULL_SCALES`, :func:`hazard_model`) and how the clinical
covariates are drawn (:func:`draw_clinical`). Version 1 is generator 1.0's model: for ranking it is
almost a function of scar %. Version 2 (the default) adds image terms a scar-% count cannot see.
See docs/synthetic.md, "Outcome model".
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict, cast

import numpy as np
import pandas as pd

from lgerisk.errors import InputError
from lgerisk.synth.priors import PRIORS, ClinicalPriors, ClinicalPriorsV1

if TYPE_CHECKING:  # pragma: no cover
    from lgerisk.types import JSONDict

HAZARD_VERSIONS = (1, 2)
"""The outcome-model versions :class:`lgerisk.synth.config.SynthConfig` accepts (``hazard_version``)."""

DEFAULT_HAZARD_VERSION = 2
"""The hazard version of a plain ``SynthConfig()`` / ``lgerisk synth``."""

CLINICAL_COVARIATES = ("age", "sex", "lvef", "diabetes")
"""Hazard inputs that are clinical covariates; every other hazard term is an *image* term (``lp_image``)."""


class Clinical(TypedDict):
    """A case's clinical covariates (:func:`draw_clinical`)."""

    age: float
    sex: int
    lvef: float
    diabetes: int


@dataclass(frozen=True)
class HazardTerm:
    """One term of the log-hazard: ``beta * (truth[name] - center) / scale``.

    Example:
        >>> HazardTerm("age", 0.25, 60.0, 10.0).contribution(70.0)
        0.25
    """

    name: str  # the input: a ground-truth column or a clinical covariate
    beta: float  # log hazard ratio per ``scale`` units
    center: float  # fixed reference value (no contribution there)
    scale: float  # fixed reference spread, in the input's units

    def contribution(self, value: float | np.ndarray) -> float | np.ndarray:
        """``beta * (value - center) / scale`` (works on scalars and arrays)."""
        return self.beta * (value - self.center) / self.scale


HAZARD_TERMS_V1: tuple[HazardTerm, ...] = (
    # image terms: centre/scale are fixed reference constants (the mean and SD over 600 default
    # cases, 30 % scar-free included, rounded), so a case's log-hazard never depends on its cohort
    HazardTerm("scar_percent", 0.35, 6.5, 7.5),
    HazardTerm("greyzone_percent", 0.30, 5.5, 5.5),
    HazardTerm("heterogeneity", 0.20, 0.3, 0.25),
    HazardTerm("transmurality", 0.15, 0.3, 0.25),
    HazardTerm("wall_thickness_mm", 0.15, 8.5, 2.0),
    # clinical terms: age per decade, lvef per 10 points, binaries (sex 1 = male) as 0/1
    HazardTerm("age", 0.25, 60.0, 10.0),
    HazardTerm("sex", 0.15, 0.0, 1.0),
    HazardTerm("lvef", -0.25, 50.0, 10.0),
    HazardTerm("diabetes", 0.25, 0.0, 1.0),
)
"""Hazard version 1 (generator 1.0). For ranking patients it is almost a function of scar %: grey
zone and heterogeneity are made from the scar itself, LVEF is generated from scar burden, and wall
thickness enters with a + sign (thick = risky)."""

HAZARD_TERMS_V2: tuple[HazardTerm, ...] = (
    # image terms. Centre/scale: fixed reference constants, the mean and SD (rounded) over 600
    # default version-2 cases (seeds 1000 and 1001, cases 0-299; 30 % scar-free included); the
    # pattern indicator as 0/1. Rationale (LGE / sudden-cardiac-death literature): the docstring
    # below and docs/synthetic.md, "Outcome model".
    HazardTerm("scar_percent", 0.30, 5.5, 6.0),  # core burden (Klem 2012; Disertori 2016 meta-analysis)
    HazardTerm("greyzone_percent", 0.30, 6.5, 8.0),  # peri-infarct grey zone (Yan 2006; Schmidt 2007)
    HazardTerm("heterogeneity", 0.50, 0.3, 0.28),  # tissue heterogeneity / entropy (Roes 2009; Androulakis 2019)
    HazardTerm("wall_thinning", 0.55, 0.1, 0.15),  # thin, scarred wall (Komatsu 2013)
    HazardTerm("scar_islands", 0.50, 1.7, 1.5),  # separate islands split by conducting channels (Perez-David 2011)
    HazardTerm("midwall_lge", 1.00, 0.0, 1.0),  # non-ischaemic mid-wall/epicardial LGE (Gulati 2013; Halliday 2017)
    # clinical terms, drawn apart from the scar (LVEF only weakly related), as in version 1:
    # age per decade, LVEF per 10 points, binaries (sex 1 = male) as 0/1
    HazardTerm("age", 0.25, 60.0, 10.0),
    HazardTerm("sex", 0.15, 0.0, 1.0),
    HazardTerm("lvef", -0.30, 50.0, 10.0),
    HazardTerm("diabetes", 0.25, 0.0, 1.0),
)
"""Hazard version 2 (generator 2.0, the default): image terms a scar-% count cannot see.

Each image term and its rationale (hazard ratio per reference SD in brackets):

* ``scar_percent`` (1.35): scar burden predicts ventricular arrhythmia and death regardless of LVEF
  (Klem et al., JACC 2012;60:408; Disertori et al., JACC Cardiovasc Imaging 2016;9:1046, meta-analysis);
  kept, but no longer dominant;
* ``greyzone_percent`` (1.35): the peri-infarct grey zone predicts mortality and arrhythmia beyond total
  infarct size (Yan et al., Circulation 2006;114:32; Schmidt et al., Circulation 2007;115:2006; Roes et
  al., Circ Cardiovasc Imaging 2009;2:183); its extent is drawn partly apart from the core
  (``PRIORS.scar.headroom.greyzone_scale``);
* ``heterogeneity`` (1.65): heterogeneous enhancement, viable and fibrotic tissue intermixed, is the
  arrhythmic substrate (Schmidt 2007; Roes 2009; LGE entropy: Androulakis et al., Circ Cardiovasc Imaging
  2019;12:e008339);
* ``wall_thinning`` (1.73): in post-infarct scar the *thin* scarred wall holds the VT substrate (Komatsu
  et al., Circ Arrhythm Electrophysiol 2013;6:342); version 1's wall thickness with a + sign is gone;
* ``scar_islands`` (1.65): conducting channels, border-zone corridors between islands of dense scar, are
  VT isthmuses (Perez-David et al., JACC 2011;57:184); more separate islands, more channels;
* ``midwall_lge`` (2.72, present vs absent): non-ischaemic mid-wall / epicardial LGE carries SCD risk
  independent of LVEF (Gulati et al., JAMA 2013;309:896; Halliday et al., Circulation 2017;135:2106),
  even at a small burden; RV insertion-point enhancement alone is commonly read as non-specific.

Transmurality (r 0.8 with scar %) and location have no term. The clinical covariates are drawn apart
from the scar (:func:`draw_clinical`), so ``lp_clinical`` is no proxy for scar burden.
"""

HAZARD_TERMS: dict[int, tuple[HazardTerm, ...]] = {1: HAZARD_TERMS_V1, 2: HAZARD_TERMS_V2}
"""The hazard terms of each hazard version."""

DEFAULT_HAZARD_TERMS: tuple[HazardTerm, ...] = HAZARD_TERMS[DEFAULT_HAZARD_VERSION]

WEIBULL_SCALES: dict[int, float] = {1: 0.018, 2: 0.012}
"""The Weibull scale λ of each hazard version: 10-year event rates of about a third in both (version 2's
log-hazard is more dispersed, so a lower λ gives the same rate)."""


@dataclass(frozen=True)
class HazardModel:
    """Weibull proportional-hazards outcome model with administrative and random censoring.

    ``h(t | x) = lam * rho * t**(rho - 1) * exp(eta)``, ``eta = sum(term.contribution(x))``;
    true event time ``T = (-log U / (lam * exp(eta)))**(1 / rho)``, ``U ~ Uniform(0, 1)``;
    censoring ``C = min(follow_up_years, Exponential(rate=loss_rate_per_year))``;
    observed ``time = min(T, C)``, ``event = T <= C``.

    The default terms are those of the default hazard version (:data:`DEFAULT_HAZARD_TERMS`);
    :func:`hazard_model` gives the model of any version.

    Example:
        >>> hazard_model(1).linear_predictor({"scar_percent": 6.5, "greyzone_percent": 5.5,
        ...     "heterogeneity": 0.3, "transmurality": 0.3, "wall_thickness_mm": 8.5,
        ...     "age": 60.0, "sex": 0, "lvef": 50.0, "diabetes": 0})
        0.0
    """

    terms: tuple[HazardTerm, ...] = DEFAULT_HAZARD_TERMS  # the log-hazard's terms (eta)
    weibull_shape: float = 1.3  # rho: > 1, the hazard rises with time
    weibull_scale: float = WEIBULL_SCALES[DEFAULT_HAZARD_VERSION]  # lambda (per year**rho) at eta = 0
    follow_up_years: float = 10.0  # administrative censoring: the end of follow-up
    loss_rate_per_year: float = 0.03  # random censoring: loss to follow-up, an exponential rate per year

    def __post_init__(self) -> None:
        if not (
            self.weibull_shape > 0
            and self.weibull_scale > 0
            and self.follow_up_years > 0
            and self.loss_rate_per_year >= 0
        ):
            raise InputError("hazard model: Weibull shape, scale and follow-up must be > 0, the loss rate >= 0")

    def linear_predictor(self, table: Mapping[str, float] | pd.DataFrame) -> float | np.ndarray:
        """eta for one case (a mapping of scalars -> float) or a table (-> numpy array)."""
        total: float | np.ndarray = 0.0
        for term in self.terms:
            if term.name not in table:
                raise InputError(f"hazard term '{term.name}' is missing from the truth table")
            value = table[term.name]
            value = np.asarray(value, dtype=float) if isinstance(value, pd.Series) else value
            total = total + term.contribution(value)
        return float(total) if np.ndim(total) == 0 else np.asarray(total, dtype=float)

    def image_terms(self) -> tuple[HazardTerm, ...]:
        """The image terms: every term whose input is not a clinical covariate (:data:`CLINICAL_COVARIATES`)."""
        return tuple(t for t in self.terms if t.name not in CLINICAL_COVARIATES)

    def clinical_terms(self) -> tuple[HazardTerm, ...]:
        """The clinical-covariate terms (age, sex, LVEF, diabetes)."""
        return tuple(t for t in self.terms if t.name in CLINICAL_COVARIATES)

    def to_dict(self) -> JSONDict:
        """Plain-dict form (for ``synth.json``), including the model's formula in words."""
        out = dataclasses.asdict(self)
        out["formula"] = (
            "h(t|x) = weibull_scale * weibull_shape * t**(weibull_shape-1) * exp(eta); "
            "eta = sum(beta * (x - center) / scale); time in years; "
            "censoring = min(follow_up_years, Exponential(loss_rate_per_year))"
        )
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> HazardModel:
        """The model back from :meth:`to_dict`'s form (``synth.json``'s ``hazard_model``)."""
        fields = {f.name for f in dataclasses.fields(cls)} - {"terms"}
        # to_dict's form: terms of a name and three numbers, and numbers
        terms = tuple(
            HazardTerm(str(t["name"]), float(t["beta"]), float(t["center"]), float(t["scale"]))
            for t in cast("Sequence[Mapping[str, float | str]]", data["terms"])
        )
        return cls(terms=terms, **{k: float(cast("float | str", v)) for k, v in data.items() if k in fields})


def hazard_model(version: int = DEFAULT_HAZARD_VERSION) -> HazardModel:
    """The outcome model of hazard ``version`` (1: generator 1.0's, 2: with headroom over scar %).

    Example:
        >>> [t.name for t in hazard_model(2).image_terms()][:3]
        ['scar_percent', 'greyzone_percent', 'heterogeneity']
    """
    if version not in HAZARD_TERMS:
        raise InputError(
            f"synthetic cohort: hazard version must be one of {', '.join(map(str, HAZARD_VERSIONS))}, got {version!r}"
        )
    return HazardModel(terms=HAZARD_TERMS[version], weibull_scale=WEIBULL_SCALES[version])


def draw_clinical(
    rng: np.random.Generator,
    truth: Mapping[str, float | str],
    version: int = DEFAULT_HAZARD_VERSION,
    priors: ClinicalPriors = PRIORS.clinical,
    priors_v1: ClinicalPriorsV1 = PRIORS.clinical_v1,
) -> Clinical:
    """Age, sex, LVEF and diabetes of a case with ``truth``; the same four draws in the same order in every version.

    Version 1 generates them from the scar (age, sex and diabetes from the pattern, LVEF from scar
    and grey-zone burden and transmurality, r about -0.8 with scar %). Version 2 draws them apart from
    the scar: LVEF falls only weakly with scar % (0.25 points per point, r about -0.2).

    Example:
        >>> draw_clinical(np.random.default_rng(0), {"scar_percent": 10.0})
        {'age': 61.4, 'sex': 1, 'lvef': 58.3, 'diabetes': 1}
    """
    if version >= 2:
        p = priors
        age = float(np.clip(rng.normal(p.age_mean, p.age_sd), *p.age_range))
        sex = int(rng.random() < p.p_male)
        lvef = (
            p.lvef_intercept
            - p.lvef_per_scar_percent * cast("float", truth["scar_percent"])
            + rng.normal(0.0, p.lvef_sd)
        )
        lvef = float(np.clip(lvef, *p.lvef_range))
        p_dm = 1.0 / (1.0 + math.exp(-(p.diabetes_logit + p.diabetes_logit_per_year * (age - p.diabetes_age_centre))))
        diabetes = int(rng.random() < p_dm)
        return {"age": round(age, 1), "sex": sex, "lvef": round(lvef, 1), "diabetes": diabetes}
    q = priors_v1
    ischemic = truth["scar_pattern"] == "ischemic"
    p_male = {"none": q.p_male_none, "ischemic": q.p_male_ischemic, "nonischemic": q.p_male_nonischemic}[
        cast("str", truth["scar_pattern"])
    ]
    age = float(np.clip(rng.normal(q.age_mean + q.age_ischemic_shift * ischemic, q.age_sd), *q.age_range))
    sex = int(rng.random() < p_male)
    lvef = (
        q.lvef_intercept
        - q.lvef_per_scar_percent * cast("float", truth["scar_percent"])
        - q.lvef_per_greyzone_percent * cast("float", truth["greyzone_percent"])
        - q.lvef_per_transmurality * cast("float", truth["transmurality"]) * ischemic
        + rng.normal(0.0, q.lvef_sd)
    )
    lvef = float(np.clip(lvef, *q.lvef_range))
    logit = (
        q.diabetes_logit
        + q.diabetes_logit_per_year * (age - q.diabetes_age_centre)
        + q.diabetes_logit_ischemic * ischemic
    )
    p_dm = 1.0 / (1.0 + math.exp(-logit))
    diabetes = int(rng.random() < p_dm)
    return {"age": round(age, 1), "sex": sex, "lvef": round(lvef, 1), "diabetes": diabetes}


def sample_outcomes(
    truth_table: pd.DataFrame, rng: np.random.Generator, hazard: HazardModel | None = None
) -> pd.DataFrame:
    """Draw censored Weibull-PH outcomes for a table of true covariates (no images needed).

    The table needs one column per hazard term (image properties and clinical covariates).
    Returns ``log_hazard, event_time (true, uncensored), censor_time, time, event``, one row
    per input row, same index. Draw order: all event-time uniforms, then all loss-to-follow-up
    exponentials.

    Example:
        >>> t = pd.DataFrame({"scar_percent": [0.0, 30.0], "greyzone_percent": [0.0, 8.0],
        ...     "heterogeneity": [0.0, 0.8], "transmurality": [0.0, 0.9], "wall_thickness_mm": [9.0, 9.0],
        ...     "age": [60.0, 60.0], "sex": [0, 0], "lvef": [60.0, 30.0], "diabetes": [0, 0]})
        >>> out = sample_outcomes(t, np.random.default_rng(0), hazard_model(1))
        >>> bool(out.log_hazard[1] > out.log_hazard[0])
        True
    """
    hazard = hazard or HazardModel()
    eta = np.atleast_1d(np.asarray(hazard.linear_predictor(truth_table), dtype=float))
    n: int = eta.shape[0]
    u = rng.random(n)
    event_time = (-np.log1p(-u) / (hazard.weibull_scale * np.exp(eta))) ** (1.0 / hazard.weibull_shape)
    if hazard.loss_rate_per_year > 0:
        loss = rng.exponential(1.0 / hazard.loss_rate_per_year, size=n)
    else:
        loss = np.full(n, np.inf)
    censor = np.minimum(loss, hazard.follow_up_years)
    event = event_time <= censor
    time = np.where(event, event_time, censor)
    return pd.DataFrame(
        {
            "log_hazard": np.round(eta, 6),
            "event_time": np.round(event_time, 4),
            "censor_time": np.round(censor, 4),
            "time": np.round(np.maximum(time, 1e-4), 4),
            "event": event.astype(int),
        },
        index=truth_table.index if isinstance(truth_table, pd.DataFrame) else None,
    )
