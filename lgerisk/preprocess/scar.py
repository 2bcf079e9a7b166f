"""Scar and grey zone inside the myocardium: from labels, or derived from the image.

Definitions (documented in the README, "Scar quantification"):

* remote myocardium statistics are robust: median and 1.4826 x MAD of the myocardial
  intensities (normal-labelled myocardium when scar labels exist), so scar does not inflate them,
  taken on the myocardium eroded by one voxel in-plane, so partial volume with the bright blood
  pool does not either;
* scar core: the labelled scar (``label``), voxels above remote + n SD (``nsd``), or voxels at
  or above 50 % of the myocardial maximum and above the grey-zone threshold (``fwhm``; the
  maximum is taken after a 3 x 3 in-plane median filter so one noisy voxel cannot set it);
* grey zone: myocardium outside the core, brighter than remote + ``greyzone_nsd`` SD (and,
  for derived cores, below the core threshold);
* derived regions drop in-plane clusters smaller than ``MIN_CLUSTER_VOXELS`` (noise specks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lgerisk.io.labels import BLOOD, GREYZONE, MYOCARDIUM, NOREFLOW, SCAR

MIN_CLUSTER_VOXELS = 4
"""Derived scar or grey-zone clusters smaller than this (in-plane, 8-connected) are dropped as noise."""

MAD_TO_SD = 1.4826
"""Scale of the median absolute deviation to a normal standard deviation."""


@dataclass(frozen=True)
class ScarResult:
    """Refined internal labels (1 blood, 2 remote, 3 core, 4 no-reflow, 5 grey zone) and the thresholds used."""

    labels: np.ndarray
    method: str
    remote_mean: float
    remote_sd: float
    core_threshold: float | None
    greyzone_threshold: float


def myocardium_of(labels: np.ndarray) -> np.ndarray:
    """Boolean mask of the whole myocardium (normal, scar, no-reflow, grey zone)."""
    return np.isin(labels, (MYOCARDIUM, SCAR, NOREFLOW, GREYZONE))


def robust_statistics(values: np.ndarray) -> tuple[float, float]:
    """Median and MAD-based standard deviation of ``values`` (sd floored at a tiny positive number).

    Example:
        >>> robust_statistics(np.array([1.0, 2.0, 3.0, 100.0]))[0]
        2.5
    """
    if values.size == 0:
        return 0.0, 1e-6
    median = float(np.median(values))
    sd = MAD_TO_SD * float(np.median(np.abs(values - median)))
    if sd <= 0:
        sd = float(np.std(values)) or 1e-6
    return median, sd


def remote_region(myocardium: np.ndarray, min_voxels: int = 50) -> np.ndarray:
    """The myocardium eroded by one voxel in-plane (no partial volume with blood or fat).

    Falls back to the whole myocardium when erosion would leave fewer than ``min_voxels``.
    """
    from scipy import ndimage

    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = ndimage.generate_binary_structure(2, 1)
    eroded = ndimage.binary_erosion(myocardium, structure)
    return eroded if eroded.sum() >= min_voxels else myocardium


def drop_small_clusters(region: np.ndarray, min_voxels: int = MIN_CLUSTER_VOXELS) -> np.ndarray:
    """Remove in-plane (per slice, 8-connected) clusters of ``region`` smaller than ``min_voxels``."""
    from scipy import ndimage

    if min_voxels <= 1 or not region.any():
        return region
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = True  # connectivity within a slice only: LGE slices are 8-13 mm apart
    labelled, count = ndimage.label(region, structure=structure)
    if count == 0:
        return region
    sizes = np.bincount(labelled.ravel(), minlength=count + 1)
    keep = sizes >= min_voxels
    keep[0] = False
    return keep[labelled]


def quantify_scar(image: np.ndarray, labels: np.ndarray, method: str, nsd: float = 5.0,
                  greyzone_nsd: float = 2.0) -> ScarResult:
    """Scar core and grey zone of one case.

    Args:
        image: intensities (z, y, x).
        labels: internal labels (1 blood, 2 myocardium, 3 scar, 4 no-reflow).
        method: ``label``, ``nsd`` or ``fwhm`` (``auto`` is resolved by the caller).
        nsd: core threshold of ``nsd`` in remote SDs.
        greyzone_nsd: grey-zone threshold in remote SDs.

    Example:
        >>> result = quantify_scar(image, labels, "nsd")                     # doctest: +SKIP
        >>> (result.labels == 3).sum()                                       # doctest: +SKIP
    """
    myocardium = myocardium_of(labels)
    out = labels.copy()
    if method == "label":
        scar = np.isin(labels, (SCAR, NOREFLOW))
        remote_mean, remote_sd = robust_statistics(image[remote_region(myocardium & ~scar)])
        greyzone_threshold = remote_mean + greyzone_nsd * remote_sd
        grey = myocardium & ~scar & (image > greyzone_threshold)
        grey = drop_small_clusters(grey)
        out[grey] = GREYZONE
        return ScarResult(out, method, remote_mean, remote_sd, None, greyzone_threshold)

    # Derived methods ignore any scar labels: the whole myocardium is the search region.
    out[myocardium] = MYOCARDIUM
    remote_mean, remote_sd = robust_statistics(image[remote_region(myocardium)])
    greyzone_threshold = remote_mean + greyzone_nsd * remote_sd
    if method == "nsd":
        core_threshold = remote_mean + nsd * remote_sd
    elif method == "fwhm":
        from scipy import ndimage

        smoothed = ndimage.median_filter(image, size=(1, 3, 3))
        peak = float(smoothed[myocardium].max()) if myocardium.any() else 0.0
        core_threshold = max(0.5 * peak, greyzone_threshold)
    else:
        raise ValueError(f"unknown scar method {method!r}")
    core = drop_small_clusters(myocardium & (image >= core_threshold))
    grey = drop_small_clusters(myocardium & ~core & (image > greyzone_threshold))
    out[core] = SCAR
    out[grey] = GREYZONE
    return ScarResult(out, method, remote_mean, remote_sd, core_threshold, greyzone_threshold)


def dice(first: np.ndarray, second: np.ndarray) -> float | None:
    """Dice overlap of two boolean masks; ``None`` when both are empty."""
    total = int(first.sum()) + int(second.sum())
    if total == 0:
        return None
    return 2.0 * int((first & second).sum()) / total


def tissue_volumes_ml(labels: np.ndarray, voxel_volume_mm3: float) -> dict[str, float]:
    """Volumes (ml) of blood pool, myocardium, scar (core + no-reflow), no-reflow and grey zone."""
    counts = np.bincount(labels.ravel().astype(np.int64), minlength=GREYZONE + 1)
    ml = voxel_volume_mm3 / 1000.0
    return {
        "blood_pool_volume_ml": counts[BLOOD] * ml,
        "myocardium_volume_ml": counts[[MYOCARDIUM, SCAR, NOREFLOW, GREYZONE]].sum() * ml,
        "scar_volume_ml": counts[[SCAR, NOREFLOW]].sum() * ml,
        "noreflow_volume_ml": counts[NOREFLOW] * ml,
        "greyzone_volume_ml": counts[GREYZONE] * ml,
    }
