"""Radiomics concepts behind a deep risk score: which features the risk and the embedding align with.

Over a reference cohort (the training cases), per radiomics or QC feature:

* its Pearson correlation with the model's risk score, with a 95 % confidence interval (Fisher z)
  and a p-value, and its Spearman correlation;
* how much of it the deep image embedding encodes: the cross-validated R² of predicting the
  standardised feature from the standardised embedding by ridge regression (closed form; the
  ridge penalty chosen per training fold by leave-one-out error from a log grid, unless fixed).
  Near 1: the embedding carries the feature; near 0 or below: it does not.

Each feature uses the cases where it is measured (a scar-free heart has no ``scar__`` features),
so ``n`` may differ between rows. And for one case: where it lies on each feature of the cohort
(percentiles). Correlation is not causation: a high alignment says the risk *varies with* a
feature over the cohort, not that the model computes it.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd

from lgerisk.errors import InputError
from lgerisk.io.atomic import atomic_path

ALPHA_GRID = tuple(10.0**k for k in np.arange(-2.0, 4.01, 0.5))
"""Ridge penalties searched (on a standardised embedding) when none is fixed."""

MIN_CASES = 5
"""Fewest measured cases for a feature to be analysed (the Fisher interval needs n > 3)."""

ALIGNMENT_COLUMNS = ("feature", "n", "r_risk", "r_risk_low", "r_risk_high", "p_risk", "spearman_risk")


def short_feature_name(name: str, width: int = 40) -> str:
    """A readable feature name: ``scar__original_glcm_Contrast`` -> ``scar: glcm Contrast``.

    Example:
        >>> short_feature_name("scar__original_firstorder_Mean"), short_feature_name("scar_percent")
        ('scar: firstorder Mean', 'scar_percent')
    """
    text = str(name)
    if "__" in text:
        roi, rest = text.split("__", 1)
        rest = re.sub(r"^original_", "", rest)
        text = f"{roi}: {rest.replace('_', ' ')}"
    return text if len(text) <= width else text[: width - 1] + "…"


def _numeric(features: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(features, pd.DataFrame):
        raise InputError(f"features must be a pandas DataFrame, not {type(features).__name__}.")
    numeric = features.select_dtypes(include="number").select_dtypes(exclude="bool")
    return numeric.astype(float)


def _usable(values: np.ndarray, min_cases: int) -> np.ndarray | None:
    """The mask of measured (finite) cases, or None if too few or constant."""
    finite = np.isfinite(values)
    if finite.sum() < max(min_cases, 2) or np.ptp(values[finite]) == 0:
        return None
    return cast("np.ndarray | None", finite)


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = train.mean(axis=0)
    scale = train.std(axis=0)
    scale[scale == 0] = 1.0
    return (train - mean) / scale, (test - mean) / scale


class _RidgeFolds:
    """K-fold splits of an embedding with each training fold standardised, centred and decomposed
    once (SVD), so that every feature measured in the same cases reuses them."""

    def __init__(self, embedding: np.ndarray, folds: int, seed: int) -> None:
        n = len(embedding)
        order = np.random.default_rng(seed).permutation(n)
        self.n = n
        self.folds = []
        for test in np.array_split(order, min(folds, n)):
            train = np.setdiff1d(order, test)
            x_train, x_test = _standardise(embedding[train], embedding[test])
            x_mean = x_train.mean(axis=0)
            u, s, vt = np.linalg.svd(x_train - x_mean, full_matrices=False)
            self.folds.append((train, test, x_test - x_mean, u, s, vt))

    def _coefficients(
        self, u: np.ndarray, s: np.ndarray, vt: np.ndarray, y: np.ndarray, alpha: float | None
    ) -> np.ndarray:
        """Ridge coefficients on the centred training embedding; alpha by leave-one-out error if None."""
        uty = u.T @ y
        best = float(alpha) if alpha is not None else ALPHA_GRID[0]
        if alpha is None:
            best_error = math.inf
            for candidate in ALPHA_GRID:
                shrink = s**2 / (s**2 + candidate)
                # leave-one-out residuals of a linear smoother (the intercept adds 1/n to the leverage)
                leverage = (u**2) @ shrink + 1.0 / len(y)
                residual = (y - u @ (shrink * uty)) / np.clip(1.0 - leverage, 1e-6, None)
                error = float(np.mean(residual**2))
                if error < best_error:
                    best, best_error = candidate, error
        return cast("np.ndarray", vt.T @ (s / (s**2 + best) * uty))

    def r2(self, target: np.ndarray, alpha: float | None) -> float:
        """Out-of-fold R² of ridge regression of the standardised ``target``."""
        y = (target - target.mean()) / target.std()
        predicted = np.empty(self.n)
        for train, test, x_test, u, s, vt in self.folds:
            y_mean = y[train].mean()
            predicted[test] = x_test @ self._coefficients(u, s, vt, y[train] - y_mean, alpha) + y_mean
        return float(1.0 - np.sum((y - predicted) ** 2) / np.sum((y - y.mean()) ** 2))


def concept_alignment(
    features: pd.DataFrame,
    risk: np.ndarray,
    embedding: np.ndarray | None = None,
    folds: int = 5,
    seed: int = 0,
    alpha: float | None = None,
    min_cases: int = MIN_CASES,
) -> pd.DataFrame:
    """How the risk (and the embedding) align with each numeric feature over a cohort.

    ``features`` has a row per case (non-numeric columns are ignored), ``risk`` the model's risk
    score of each case, ``embedding`` optionally its ``(cases, dim)`` image embedding. Returns a row
    per feature measured in at least ``min_cases`` cases and not constant: ``feature``, ``n``,
    ``r_risk`` with its 95 % interval ``r_risk_low``/``r_risk_high``, ``p_risk``, ``spearman_risk``
    and, with an embedding, ``embedding_r2`` (``folds``-fold cross-validated, split by ``seed``;
    ridge penalty ``alpha``, or chosen by leave-one-out error when None). Sorted by ``|r_risk|``,
    largest first; ``attrs["n_cases"]`` is the cohort size.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> risk = rng.normal(size=50)
        >>> table = pd.DataFrame({"noise": rng.normal(size=50), "scar_percent": risk + 0.1 * rng.normal(size=50)})
        >>> concept_alignment(table, risk)["feature"].tolist()
        ['scar_percent', 'noise']
    """
    from scipy import stats

    numeric = _numeric(features)
    risk = np.asarray(risk, dtype=float).reshape(-1)
    if len(risk) != len(numeric):
        raise InputError(f"risk has {len(risk)} values but the feature table has {len(numeric)} cases.")
    if not np.isfinite(risk).all():
        raise InputError("risk scores must be finite, but some are NaN or infinite.")
    if embedding is not None:
        embedding = np.asarray(embedding, dtype=float)
        if embedding.ndim != 2 or len(embedding) != len(numeric):
            raise InputError(f"embedding must be (cases, dim) with {len(numeric)} cases, got shape {embedding.shape}.")
        if not np.isfinite(embedding).all():
            raise InputError("embedding must be finite, but it contains NaN or infinite values.")
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise InputError(f"folds must be an integer of at least 2, got {folds!r}.")
    min_cases = max(int(min_cases), 4)

    rows = []
    splits: dict[bytes, _RidgeFolds] = {}
    for name in numeric.columns:
        values = numeric[name].to_numpy()
        measured = _usable(values, min_cases)
        if measured is None:
            continue
        x, y = values[measured], risk[measured]
        n = len(x)
        if np.ptp(y) == 0:
            continue
        pearson = stats.pearsonr(x, y)
        r = float(pearson.statistic)
        half_width = 1.959963984540054 / math.sqrt(n - 3)
        z = math.atanh(max(min(r, 1.0 - 1e-15), -1.0 + 1e-15))
        row = {
            "feature": str(name),
            "n": n,
            "r_risk": r,
            "r_risk_low": math.tanh(z - half_width),
            "r_risk_high": math.tanh(z + half_width),
            "p_risk": float(pearson.pvalue),
            "spearman_risk": float(stats.spearmanr(x, y).statistic),
        }
        if embedding is not None:
            key = np.packbits(measured).tobytes()
            if key not in splits:
                splits[key] = _RidgeFolds(embedding[measured], folds, seed)
            row["embedding_r2"] = splits[key].r2(x, alpha)
        rows.append(row)

    columns = list(ALIGNMENT_COLUMNS) + (["embedding_r2"] if embedding is not None else [])
    table = pd.DataFrame(rows, columns=columns)
    if len(table):
        table = table.iloc[np.argsort(-table["r_risk"].abs().to_numpy(), kind="stable")].reset_index(drop=True)
    table.attrs["n_cases"] = len(numeric)
    return table


def case_percentiles(case_features: pd.Series, reference: pd.DataFrame) -> pd.Series:
    """Percentile (0-100) of the case's value of each feature among the reference cohort.

    Features present in both, in the case's order; ties count half (a value equal to every
    reference value is at the 50th percentile). NaN where the case's value is missing or the
    feature was never measured in the reference.

    Example:
        >>> reference = pd.DataFrame({"scar_percent": [1.0, 2.0, 3.0, 4.0]})
        >>> case_percentiles(pd.Series({"scar_percent": 3.5, "case_id": "x"}), reference).tolist()
        [75.0]
    """
    if not isinstance(case_features, pd.Series):
        raise InputError(f"case features must be a pandas Series, not {type(case_features).__name__}.")
    numeric = _numeric(reference)
    names = [name for name in case_features.index if name in numeric.columns]
    values = pd.to_numeric(case_features[names], errors="coerce") if names else pd.Series(dtype=float)
    result = {}
    for name in names:
        value = float(values[name])
        cohort = numeric[name].to_numpy()
        cohort = cohort[np.isfinite(cohort)]
        if not np.isfinite(value) or cohort.size == 0:
            result[name] = float("nan")
            continue
        below = float(np.sum(cohort < value))
        equal = float(np.sum(cohort == value))
        result[name] = 100.0 * (below + 0.5 * equal) / cohort.size
    return pd.Series(result, dtype=float, name="percentile")


def principal_components(embedding: np.ndarray, components: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores ``(cases, k)`` of the first ``k <= components`` principal components of the
    standardised embedding, and each one's fraction of the variance.

    Example:
        >>> scores, explained = principal_components(np.random.default_rng(0).normal(size=(20, 5)), 3)
        >>> scores.shape, bool(explained.sum() <= 1)
        ((20, 3), True)
    """
    x = np.asarray(embedding, dtype=float)
    x, _ = _standardise(x, x[:1])
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    total = float(np.sum(s**2))
    rank = int(np.sum(s > s.max() * 1e-10)) if s.size and s.max() > 0 else 0
    keep = min(components, rank)
    explained = s[:keep] ** 2 / total if total > 0 else np.zeros(keep)
    return u[:, :keep] * s[:keep], explained


def _pairwise_r(values: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Pearson r of one feature with each score column over the cases where it is measured."""
    measured = np.isfinite(values)
    x = values[measured] - values[measured].mean()
    y = scores[measured] - scores[measured].mean(axis=0)
    denominator = np.sqrt(np.sum(x**2) * np.sum(y**2, axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, x @ y / denominator, np.nan)


def correlation_heatmap(
    features: pd.DataFrame,
    embedding: np.ndarray,
    path: str | os.PathLike[str],
    top: int = 20,
    components: int = 8,
    synthetic: bool = False,
) -> Path:
    """PNG heatmap of the Pearson r between the ``top`` features and the embedding's principal components.

    Features are those with the largest ``|r|`` with any of the first ``components`` principal
    components (of the standardised embedding); colours fixed at [-1, 1].

    Example:
        >>> rng = np.random.default_rng(0)
        >>> correlation_heatmap(pd.DataFrame({"scar_percent": rng.normal(size=30)}), rng.normal(size=(30, 4)),
        ...                     "heatmap.png", synthetic=True)  # doctest: +SKIP
        PosixPath('heatmap.png')
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from lgerisk.evaluation.plots import synthetic_title

    numeric = _numeric(features)
    embedding = np.asarray(embedding, dtype=float)
    if embedding.ndim != 2 or len(embedding) != len(numeric):
        raise InputError(f"embedding must be (cases, dim) with {len(numeric)} cases, got shape {embedding.shape}.")
    if not np.isfinite(embedding).all():
        raise InputError("embedding must be finite, but it contains NaN or infinite values.")
    for name, value in (("top", top), ("components", components)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"heatmap {name} must be a positive integer, got {value!r}.")
    scores, explained = principal_components(embedding, components)
    if scores.shape[1] == 0:
        raise InputError("the embedding is constant over the cohort: it has no principal components to show.")
    correlations = {}
    for name in numeric.columns:
        values = numeric[name].to_numpy()
        if _usable(values, min(MIN_CASES, len(values))) is not None:
            correlations[str(name)] = _pairwise_r(values, scores)
    if not correlations:
        raise InputError("no feature of the table is measured in enough cases and varies: nothing to correlate.")
    matrix = pd.DataFrame(correlations).T
    strength = matrix.abs().max(axis=1).fillna(0.0)
    matrix = matrix.loc[strength.sort_values(ascending=False, kind="stable").index[:top]]

    rows, cols = matrix.shape
    figure = Figure(figsize=(2.8 + 0.65 * cols, 1.6 + 0.32 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    image = axes.imshow(matrix.to_numpy(), cmap="RdBu_r", vmin=-1.0, vmax=1.0, aspect="auto")
    axes.set_xticks(range(cols), [f"PC{i + 1}\n{100 * share:.0f} %" for i, share in enumerate(explained)], fontsize=8)
    axes.set_yticks(range(rows), [short_feature_name(name) for name in matrix.index], fontsize=8)
    for (i, j), value in np.ndenumerate(matrix.to_numpy()):
        if np.isfinite(value):
            axes.text(
                j,
                i,
                f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=6,
                color="white" if abs(value) > 0.6 else "black",
            )
    axes.set_xlabel("principal component of the embedding (share of its variance)", fontsize=8)
    figure.colorbar(image, ax=axes, shrink=0.8).set_label("Pearson r", fontsize=8)
    axes.set_title(
        synthetic_title(f"Radiomics features vs deep embedding ({len(numeric)} cases)", synthetic), fontsize=10
    )
    final = Path(path)
    with atomic_path(final) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    return final
