"""Risk groups: the training cohort's risk tertiles and the group of each case (numpy only: predict
imports this without pandas or matplotlib)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from lgerisk.errors import InputError

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

RISK_GROUPS = ("low", "intermediate", "high")


def _risk(risk: ArrayLike, name: str = "risk") -> np.ndarray:
    values = np.asarray(risk, dtype=float).reshape(-1)
    if not values.size:
        raise InputError(f"{name}: no risk scores given.")
    if not np.all(np.isfinite(values)):
        raise InputError(f"{name}: {int((~np.isfinite(values)).sum())} risk score(s) are NaN or infinite.")
    return values


def tertile_thresholds(risk: ArrayLike) -> tuple[float, float]:
    """The 1/3 and 2/3 quantiles of the TRAINING risks (the cut-offs of ``risk_groups``).

    Example:
        >>> tertile_thresholds([0.0, 1.0, 2.0, 3.0])
        (1.0, 2.0)
    """
    values = _risk(risk, "tertile thresholds")
    low, high = np.quantile(values, [1 / 3, 2 / 3])
    return float(low), float(high)


def risk_groups(risk: ArrayLike, thresholds: tuple[float, float]) -> np.ndarray:
    """``"low"`` (risk < t1), ``"high"`` (risk >= t2), else ``"intermediate"``, per case.

    Example:
        >>> risk_groups([-1.0, 1.0, 2.0, 5.0], (1.0, 2.0)).tolist()
        ['low', 'intermediate', 'high', 'high']
    """
    values = _risk(risk, "risk groups")
    try:
        low, high = (float(t) for t in thresholds)
    except (TypeError, ValueError) as exc:
        raise InputError(f"risk groups: thresholds must be two numbers, not {thresholds!r}.") from exc
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise InputError(f"risk groups: thresholds ({low}, {high}) must be finite with the first <= the second.")
    groups = np.full(values.shape, "intermediate", dtype="<U12")
    groups[values < low] = "low"
    groups[values >= high] = "high"
    return groups
