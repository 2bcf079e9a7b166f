"""Intensity normalisation of LGE scans, whose units are arbitrary and differ by scanner."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lgerisk.errors import CaseError


@dataclass(frozen=True)
class Normalisation:
    """``normalised = (raw - offset) / scale``, and how offset and scale were chosen."""

    method: str
    offset: float
    scale: float

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Normalise ``values`` (float32 out)."""
        return ((values - self.offset) / self.scale).astype(np.float32)


def fit_normalisation(
    method: str, remote_mean: float, blood_mean: float, crop: np.ndarray, source: str
) -> Normalisation:
    """Choose offset and scale.

    ``myo-blood``: remote myocardium -> 0, blood pool -> 1 (needs the blood pool brighter than
    remote myocardium, as in any LGE scan with nulled myocardium); ``zscore``: mean 0, SD 1
    over the crop; ``percentile``: 1st and 99th percentiles of the crop -> 0 and 1.

    Example:
        >>> fit_normalisation("myo-blood", 100.0, 600.0, np.zeros(1), "x").apply(np.array([600.0]))
        array([1.], dtype=float32)
    """
    if method == "myo-blood":
        contrast = blood_mean - remote_mean
        if not contrast > 0:
            raise CaseError(
                f"{source}: blood pool (mean {blood_mean:.4g}) is not brighter than remote myocardium "
                f"(median {remote_mean:.4g}); not an LGE contrast — try normalisation='zscore'.",
                setting="normalisation",
            )
        return Normalisation(method, remote_mean, contrast)
    if method == "zscore":
        return Normalisation(method, float(crop.mean()), float(crop.std()) or 1.0)
    if method == "percentile":
        low, high = np.percentile(crop, [1, 99])
        return Normalisation(method, float(low), float(high - low) or 1.0)
    raise ValueError(f"unknown normalisation {method!r}")
