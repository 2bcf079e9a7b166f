"""Every risk model ``lgerisk finetune`` compares, behind one registry keyed by stable names.

    key             shown as                 what it is
    scar_cox        scar-% Cox               univariate Cox on the QC scar percentage
    scar_grey_cox   scar+grey Cox            Cox on scar % and grey-zone %: the clinician's two-number model
    radiomics_cox   radiomics Cox            penalised Cox on radiomics and the QC scar metrics (inner-CV penalty)
    deep_scratch    deep, scratch (full)     the survival network from random weights, end to end (beside an
                                             encoder only with scratch_baseline=True: the costly row)
    model           e.g. pretrained probe    the run's own model: the pretrained encoder with a Cox head (probe or
                                             full; with --with-scar, --covariates, and --with-radiomics: the
                                             fusion of radiomics and the embedding, lgerisk.training.fusion)

The tabular baselines follow lifelines' vocabulary (:class:`~lgerisk.evaluation.baselines.RiskModel`:
``fit(features, time, event)``, ``predict_risk(features)`` -> log relative hazard, ``to_dict``); a new one is a
factory in :data:`TABULAR`.
The names shown are what tables, plots and ``predictions.csv`` call the methods.

Example:
    >>> from lgerisk.training.finetune_config import FinetuneConfig
    >>> [m.key for m in methods_for(FinetuneConfig(), pretrained=True)]
    ['scar_cox', 'scar_grey_cox', 'radiomics_cox', 'model']
    >>> [m.key for m in methods_for(FinetuneConfig(scratch_baseline=True), pretrained=True)][-2:]
    ['deep_scratch', 'model']
    >>> methods_for(FinetuneConfig(with_scar=True), pretrained=True)[-1].name
    'pretrained probe + scar %'
    >>> model_name(FinetuneConfig(with_radiomics=True), pretrained=True)
    'pretrained probe + radiomics (group ridge)'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lgerisk.training.survival_fit import FittedDeep, Workspace, fit_deep, predict_fitted_deep

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from lgerisk.evaluation.baselines import RiskModel
    from lgerisk.training.finetune_config import FinetuneConfig

__all__ = [
    "FUSION_NAMES",
    "SCAR_COLUMN",
    "TABULAR",
    "Method",
    "fit_method",
    "trains_end_to_end",
    "method_names",
    "methods_for",
    "model_name",
    "predict_risk",
]

SCAR_COLUMN = "scar_percent"

FUSION_NAMES = {"group": "group ridge", "stacked": "stacked"}
"""How tables name the fusion heads of ``--with-radiomics`` (``lgerisk.training.fusion``)."""


@dataclass(frozen=True)
class Method:
    """One method of a run: its stable ``key`` and the ``name`` tables show."""

    key: str
    name: str


def _scar_cox(config: FinetuneConfig, seed: int) -> RiskModel:
    from lgerisk.evaluation.baselines import ScarCox

    return ScarCox(SCAR_COLUMN)


def _scar_grey_cox(config: FinetuneConfig, seed: int) -> RiskModel:
    from lgerisk.evaluation.baselines import ClinicalCox

    return ClinicalCox((SCAR_COLUMN, "greyzone_percent"))


def _radiomics_cox(config: FinetuneConfig, seed: int) -> RiskModel:
    from lgerisk.evaluation.baselines import RadiomicsCox

    return RadiomicsCox(max_features=config.radiomics_features, penalizer="cv", qc_metrics=True, seed=seed)


TABULAR: dict[str, tuple[str, Callable[[FinetuneConfig, int], RiskModel]]] = {
    "scar_cox": ("scar-% Cox", _scar_cox),
    "scar_grey_cox": ("scar+grey Cox", _scar_grey_cox),
    "radiomics_cox": ("radiomics Cox", _radiomics_cox),
}
"""The tabular baselines by key: (the name shown, a factory of an unfitted model from the run's settings and a
seed)."""
SCRATCH = Method("deep_scratch", "deep, scratch (full)")


def model_name(config: FinetuneConfig, pretrained: bool) -> str:
    """The name shown for the requested model, e.g. ``pretrained probe + radiomics``."""
    name = f"pretrained {config.mode}" if pretrained else SCRATCH.name
    if config.with_scar:
        name += " + scar %"
    if config.with_radiomics:
        name += f" + radiomics ({FUSION_NAMES[config.fusion]})"
    if config.covariates:
        name += " + " + ",".join(config.covariates)
    return name


def methods_for(config: FinetuneConfig, pretrained: bool) -> list[Method]:
    """The methods of a run, the model itself last (``key`` ``model``)."""
    methods = []
    if config.baselines:
        methods += [Method(key, name) for key, (name, _) in TABULAR.items()]
        if pretrained and config.scratch_baseline:
            methods.append(SCRATCH)
    return [*methods, Method("model", model_name(config, pretrained))]


def method_names(config: FinetuneConfig, pretrained: bool) -> list[str]:
    """The names of :func:`methods_for`."""
    return [method.name for method in methods_for(config, pretrained)]


@dataclass
class FittedTabular:
    """A fitted tabular baseline on the workspace's feature table."""

    model: RiskModel
    workspace: Workspace

    def predict_risk(self, ids: list[str]) -> NDArray[np.float64]:
        return self.model.predict_risk(self.workspace.features.loc[list(ids)])


def trains_end_to_end(method: Method, config: FinetuneConfig, pretrained: bool) -> bool:
    """Whether :func:`fit_method` trains a network end to end for ``method``: the scratch network, or the run's
    model in full mode or without an encoder (a probe on a pretrained encoder trains only its head)."""
    return method.key == SCRATCH.key or (method.key == "model" and (config.mode == "full" or not pretrained))


def fit_method(
    method: Method, workspace: Workspace, train: list[str], seed: int, say: Callable[[str], None] | None = None
) -> FittedTabular | FittedDeep:
    """Fit ``method`` on the ``train`` ids; returns a :class:`FittedTabular` or a
    :class:`~lgerisk.training.survival_fit.FittedDeep` (both go to :func:`predict_risk`)."""
    if method.key in TABULAR:
        time, event = workspace.outcome(train)
        model = TABULAR[method.key][1](workspace.config, seed)
        return FittedTabular(model.fit(workspace.features.loc[train], time, event), workspace)
    if method.key not in ("model", SCRATCH.key):
        raise KeyError(f"unknown method {method.key!r}")
    config = workspace.config
    pretrained = method.key == "model" and workspace.encoder_state is not None
    extras = method.key == "model"  # the run's own model takes the requested tabular inputs
    return fit_deep(
        workspace,
        train,
        seed,
        pretrained=pretrained,
        mode=config.mode if pretrained else "full",
        with_radiomics=config.with_radiomics and extras,
        covariates=config.covariates if extras else (),
        say=say,
        with_scar=config.with_scar and extras,
        aux_weight=config.aux_weight if pretrained and workspace.encoder_guided else 0.0,  # guidance to keep
    )


def predict_risk(fitted: FittedTabular | FittedDeep, workspace: Workspace, ids: list[str]) -> NDArray[np.float64]:
    """Risk scores of ``ids`` from any fitted method."""
    if isinstance(fitted, FittedDeep):
        return predict_fitted_deep(fitted, workspace, ids)
    return fitted.predict_risk(list(ids))
