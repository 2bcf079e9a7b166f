"""Radiomics and the deep embedding in one Cox head: the fusion risk models of ``lgerisk finetune --with-radiomics``.

Two ways to join them (``FinetuneConfig.fusion``), both fitted on a training fold's rows only:

    group     a group ridge. The radiomics block — the columns radiomics Cox selects in the training fold
              (empty-ROI features imputed with the training mean, ``ROI__present`` indicators, the QC scar
              metrics), standardised exactly as radiomics Cox standardises them — beside the embedding, each
              block with its own L2 penalty; both penalties chosen by inner cross-validation on the training
              rows (:func:`lgerisk.evaluation.cox.choose_group_penalties`). At its largest embedding penalty the
              head is a radiomics Cox model again, so inner CV can refuse an embedding that adds nothing.
    stacked   radiomics Cox fitted on the training fold is the first stage; its out-of-fold risk on the
              training rows (inner cross-validation, so it is no more confident there than on new cases)
              enters unpenalised beside the penalised embedding, which is fitted to what radiomics leaves.
              The head is then ``a x`` the fold's radiomics Cox risk plus the embedding's term.

Both are linear in ``[embedding, radiomics]``, so they become the survival network's linear head and are saved,
loaded and predicted like any risk model (``predict`` extracts the scan's radiomics itself); ``explain`` splits a
scan's risk into the blocks' terms.

Example:
    >>> FUSIONS
    ('group', 'stacked')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from lgerisk.errors import InputError
from lgerisk.training.finetune_config import FUSIONS

if TYPE_CHECKING:
    import pandas as pd

    from lgerisk.evaluation.baselines import RadiomicsCox

__all__ = ["FUSIONS", "INNER_FOLDS", "fit_radiomics_block", "out_of_fold_radiomics_risk"]

INNER_FOLDS = 5
"""Inner folds of the stacked fusion's out-of-fold radiomics risk."""


def fit_radiomics_block(
    features: pd.DataFrame,
    time: np.ndarray,
    event: np.ndarray,
    max_features: int,
    seed: int,
    exclude: Sequence[str] = (),
) -> RadiomicsCox:
    """Radiomics Cox on these (training) rows as the ``radiomics Cox`` baseline fits it: imputed, with presence
    indicators and the QC scar metrics as candidates (less ``exclude``), its penalty by inner CV."""
    from lgerisk.evaluation.baselines import RadiomicsCox

    model = RadiomicsCox(max_features=max_features, penalizer="cv", qc_metrics=True, seed=seed, exclude=exclude)
    return model.fit(features, time, event)


def out_of_fold_radiomics_risk(
    features: pd.DataFrame,
    time: np.ndarray,
    event: np.ndarray,
    max_features: int,
    seed: int,
    exclude: Sequence[str] = (),
    folds: int = INNER_FOLDS,
) -> np.ndarray:
    """Each row's radiomics Cox risk from a model fitted without it (``folds``-fold CV stratified by event,
    each fold's model as :func:`fit_radiomics_block` fits it). A fold whose model cannot be fitted (no event,
    no varying column) leaves its rows at 0, the mean risk.

    Example:
        >>> risk = out_of_fold_radiomics_risk(table.loc[train], time, event, 10, seed=0)   # doctest: +SKIP
    """
    from lgerisk.evaluation.cox import inner_folds

    time = np.asarray(time, dtype=float)
    event = np.asarray(event).astype(int)
    assignment = inner_folds(event, folds, seed)
    risk = np.zeros(len(time))
    for k in range(folds):
        train, test = assignment != k, assignment == k
        if not test.any() or event[train].sum() == 0:
            continue
        try:
            model = fit_radiomics_block(features.iloc[train], time[train], event[train], max_features, seed, exclude)
        except InputError:
            continue
        risk[test] = model.predict_risk(features.iloc[test])
    return risk
