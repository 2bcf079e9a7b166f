"""Agreement of two measurements of the same quantity (e.g. derived vs expert scar %).

Pearson's r, the intraclass correlation ICC(2,1) (two-way random effects, absolute agreement, single
measurement; Shrout & Fleiss 1979), Bland-Altman bias and 95 % limits of agreement, mean absolute error.
Pure numpy: usable on a table of per-case numbers from any source.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Agreement:
    """How well ``measured`` agrees with ``reference`` over ``n`` cases.

    Attributes:
        n: number of cases.
        pearson_r: Pearson correlation (NaN when either side is constant).
        icc_2_1: ICC(2,1), absolute agreement (NaN when undefined).
        bias: mean of measured - reference (Bland-Altman).
        loa_low: bias - 1.96 SD of the differences.
        loa_high: bias + 1.96 SD of the differences.
        mean_absolute_error: mean |measured - reference|.
    """

    n: int
    pearson_r: float
    icc_2_1: float
    bias: float
    loa_low: float
    loa_high: float
    mean_absolute_error: float

    def to_dict(self) -> dict[str, float]:
        """Plain dict (for tables)."""
        return asdict(self)


def icc_2_1(ratings: np.ndarray) -> float:
    """ICC(2,1) of an ``(n_targets, k_raters)`` array: two-way random, absolute agreement, single rater.

    Example (Shrout & Fleiss 1979, Table 2: ICC(2,1) = 0.29):
        >>> data = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])
        >>> round(icc_2_1(data), 2)
        0.29
    """
    x = np.asarray(ratings, dtype=float)
    n, k = x.shape
    if n < 2 or k < 2:
        return float("nan")
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_error = ((x - grand) ** 2).sum() - ss_rows - ss_cols
    ms_rows = ss_rows / (n - 1)
    ms_cols = ss_cols / (k - 1)
    ms_error = ss_error / ((n - 1) * (k - 1))
    denominator = ms_rows + (k - 1) * ms_error + k * (ms_cols - ms_error) / n
    return float((ms_rows - ms_error) / denominator) if denominator > 0 else float("nan")


def agreement(measured: np.ndarray, reference: np.ndarray) -> Agreement:
    """Agreement statistics of paired measurements.

    Example:
        >>> result = agreement(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 5.0]))
        >>> round(result.bias, 2), round(result.mean_absolute_error, 2), result.n
        (-0.25, 0.25, 4)
    """
    a = np.asarray(measured, dtype=float)
    b = np.asarray(reference, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"measured and reference must be 1-D of one length, got {a.shape} and {b.shape}")
    difference = a - b
    bias = float(difference.mean()) if a.size else float("nan")
    spread = float(difference.std(ddof=1)) if a.size > 1 else float("nan")
    constant = a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0
    r = float("nan") if constant else float(np.corrcoef(a, b)[0, 1])
    return Agreement(
        n=int(a.size),
        pearson_r=r,
        icc_2_1=icc_2_1(np.column_stack([a, b])),
        bias=bias,
        loa_low=bias - 1.96 * spread,
        loa_high=bias + 1.96 * spread,
        mean_absolute_error=float(np.abs(difference).mean()) if a.size else float("nan"),
    )


def bootstrap_intervals(
    measured: np.ndarray, reference: np.ndarray, resamples: int = 2000, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """Percentile 95 % bootstrap intervals (cases resampled) of Pearson r and the mean absolute error.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> truth = rng.uniform(0, 40, 30)
        >>> low, high = bootstrap_intervals(truth + rng.normal(0, 3, 30), truth)["pearson_r"]
        >>> 0.9 < low < high <= 1.0
        True
    """
    from lgerisk.evaluation.metrics import bootstrap_ci

    a = np.asarray(measured, dtype=float)
    b = np.asarray(reference, dtype=float)

    def pearson(index: np.ndarray) -> float:
        x, y = a[index], b[index]
        return float(np.corrcoef(x, y)[0, 1]) if np.ptp(x) > 0 and np.ptp(y) > 0 else float("nan")

    def mean_absolute_error(index: np.ndarray) -> float:
        return float(np.abs(a[index] - b[index]).mean())

    return {
        "pearson_r": bootstrap_ci(pearson, a.size, resamples, seed),
        "mean_absolute_error": bootstrap_ci(mean_absolute_error, a.size, resamples, seed),
    }
