"""Scar and grey zone inside the myocardium: from labels, or derived from the image.

Definitions (documented in docs/preprocessing.md, "Scar quantification"):

* **remote reference** — the intensity statistics of myocardium *without enhancement*, never of the
  whole wall (whose statistics move with scar size). It is estimated on the myocardium eroded by one
  voxel in-plane (no partial volume with the bright blood pool), with labelled scar left out when the
  mask has scar labels, by one of ``REMOTE_METHODS``:

  - ``mixture`` (default): a two-Gaussian mixture of those intensities (EM); remote is the darker
    component. When the components are not distinct (upper mean within ``MIXTURE_MIN_SEPARATION``
    remote SDs, or upper weight below ``MIXTURE_MIN_WEIGHT``) the myocardium has no enhanced class, and
    when the darker one is too light to be remote (``MIXTURE_MIN_REMOTE_WEIGHT``: a dark artefact such as
    a device's signal void), the median / MAD statistics of all of it are used (``remote_fallback``);
  - ``iterative``: median / MAD, then repeatedly drop voxels above median + 2 SD and re-estimate,
    to convergence;
  - ``whole``: median / MAD of all of it (the reference before preprocessing ALGORITHM_VERSION 2;
    biased by scar, kept to reproduce old results and for comparison).

* derived methods (``fwhm``, ``nsd``) search the whole myocardium; ``fwhm`` searches it on an image
  smoothed *within* the myocardium (Gaussian, ``smoothing_mm`` in-plane; normalised convolution, so the
  bright blood pool never bleeds in), ``nsd`` on the raw image (n is in raw remote SDs, as readers
  measure them); the remote reference is estimated on the image searched;
* ``fwhm`` core: voxels at or above remote + 50 % of (peak - remote), where the peak is the
  ``FWHM_PEAK_PERCENTILE``-th percentile of the largest enhanced region (connected voxels above remote
  + ``ENHANCEMENT_NSD`` SD that pass the cluster rules) — not a single bright voxel; no enhanced region,
  no scar;
* ``nsd`` core: voxels at or above remote + n SD;
* cluster rules for derived regions: in-plane (8-connected) clusters smaller than
  ``MIN_CLUSTER_AREA_MM2`` are noise; clusters with less than that area deeper than ``EPICARDIAL_RIM_MM``
  from the epicardial surface are epicardial fat / partial volume, not scar;
* grey zone: myocardium outside the core brighter than remote + ``greyzone_nsd`` SD (below the core
  threshold for derived cores), against the same remote reference.

Guards of the derived methods (preprocessing ALGORITHM_VERSION 3; docs/preprocessing.md, "Scar-free hearts,
extensive scar and confidence"):

* **remote guard** (``mixture`` remote only): the remote is also taken from the darkest AHA-like sectors
  (``SECTORS_PER_SLICE`` angular sectors a slice around the blood pool; the darkest ``REMOTE_SECTOR_SHARE`` of
  them). When the mixture's darker class lies more than ``REMOTE_GUARD_SD`` sector SDs above that, or less
  than ``REMOTE_BLOOD_SHARE`` of the way from the blood pool down to it, the darker class holds enhancement
  (scar covers much of the wall) and the sector reference is used (``RemoteReference.path`` ``sectors``),
  with the ``fwhm`` core threshold at most remote + ``EXTENSIVE_NSD`` SD;
* **enhancement test**: the upper mixture class must lie at least ``ENHANCEMENT_MIN_SEPARATION`` remote SDs
  above remote; otherwise the heart has no enhancement and gets no scar and no grey zone
  (``ScarResult.enhancement`` false), rather than the brightest noise;
* **confidence** (:func:`scar_flags`, :func:`scar_confidence`): ``no_enhancement``, ``enhancement_borderline``,
  ``remote_uncertain``, ``few_slices``, ``methods_disagree``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np

from lgerisk.io.labels import BLOOD, GREYZONE, MYOCARDIUM, NOREFLOW, SCAR

if TYPE_CHECKING:
    import pandas as pd

REMOTE_METHODS = ("mixture", "iterative", "whole")
"""Ways to find the remote (non-enhanced) myocardium reference; see the module docstring."""

MIN_CLUSTER_VOXELS = 4
"""Label-method grey-zone clusters smaller than this (in-plane, 8-connected) are dropped as noise."""

MIN_CLUSTER_AREA_MM2 = 10.0
"""Derived scar or grey-zone clusters smaller than this in-plane area (8-connected) are dropped as noise."""

EPICARDIAL_RIM_MM = 2.5
"""Derived clusters with less than the minimum cluster area deeper than this from the epicardial surface are
dropped (fat, partial volume)."""

ENHANCEMENT_NSD = 4.0
"""``fwhm``: an enhanced region, whose peak sets the threshold, is above remote + this many SD."""

FWHM_PEAK_PERCENTILE = 95.0
"""``fwhm``: the peak is this percentile of the largest enhanced region (robust to single bright voxels)."""

MIXTURE_MIN_SEPARATION = 2.0
"""``mixture``: components closer than this many remote SDs are one class (no enhancement)."""

MIXTURE_MIN_WEIGHT = 0.02
"""``mixture``: an upper component lighter than this share is no enhanced class."""

MIXTURE_MIN_REMOTE_WEIGHT = 0.2
"""``mixture``: a darker component lighter than this share is not remote myocardium but a dark artefact
(e.g. an ICD-lead signal void); the robust statistics of the whole region are used instead. Remote was at
least 29 % of the searched voxels on every real development scan (expert scar up to 38 %; QC
``remote_fraction`` of ``lgerisk preprocess --data myops-dev --labels myops --scar-method fwhm``)."""

SECTORS_PER_SLICE = 6
"""Remote guard: angular sectors a slice, around the blood pool's centre (as the AHA segments of a mid slice)."""

REMOTE_SECTOR_SHARE = 1.0 / 3.0
"""Remote guard: the darkest this share of all sectors (at least two) is the sector remote reference. On the 15
development scans those sectors held at most 5.6 % expert scar (median 0 %)."""

MIN_SECTOR_VOXELS = 10
"""Remote guard: sectors with fewer searched voxels are left out."""

REMOTE_GUARD_SD = 2.0
"""Remote guard: a mixture remote more than this many sector SDs above the sector remote holds enhancement.
On the development scans and EMIDEC it was 0.2-1.6 above (median 0.5): the guard never fired there."""

REMOTE_BLOOD_SHARE = 0.7
"""Remote guard: remote myocardium lies far below the blood pool; a mixture remote less than this share of the
way from the blood pool's median down to the sector remote holds enhancement (development scans and EMIDEC:
0.82-0.98)."""

EXTENSIVE_NSD = 5.0
"""Remote guard: where it fired (remote from the darkest sectors, scar over much of the wall), the ``fwhm`` core
threshold is at most remote + this many SD: half the peak of the brightest region lies above diffuse
enhancement there. It never fired on the development scans (no evidence there either way); n = 5 is ``nsd``'s
default."""

ENHANCEMENT_MIN_SEPARATION = 2.5
"""Enhancement test: the upper mixture class at least this many remote SDs above remote, or no enhancement.
Chosen on the development scans and EMIDEC only: EMIDEC's scar-free heart 2.32; MyoPS hearts with expert scar
2.66 (3 % scar) to 10.6, EMIDEC's scar-positive 5.05."""

FEW_SLICES = 3
"""Confidence: myocardium on this many slices or fewer is ``few_slices`` (thick, sparse stacks)."""

ENHANCEMENT_BORDERLINE = 0.5
"""Confidence: a separation within this many SDs of ``ENHANCEMENT_MIN_SEPARATION`` (either side) makes the
enhancement call borderline (``enhancement_borderline``; development scans and EMIDEC: 3 of 17)."""

WEAK_BLOOD_CONTRAST_SD = 3.0
"""Confidence: a blood pool less than this many remote SDs above remote makes the remote ``remote_uncertain``
(development scans and EMIDEC: 3.6 to 19.4)."""

METHODS_DISAGREE_POINTS = 15.0
"""Confidence: the case's derived scar % and its second opinion (``nsd`` with n = ``CHECK_NSD`` for ``fwhm``,
``fwhm`` for ``nsd``) more than this many points apart (``methods_disagree``). The two differed by up to 14.1
points on the development scans, where fwhm was within 10 points of the experts on every scan."""

CHECK_NSD = 4.0
"""Confidence: n of the ``nsd`` second opinion (the n closest to ``fwhm`` on the development scans)."""

SCAR_FLAGS = ("no_enhancement", "enhancement_borderline", "remote_uncertain", "few_slices", "methods_disagree")
"""QC flags of a derived scar (see :func:`scar_flags`)."""

CHECK_FLAGS = ("enhancement_borderline", "remote_uncertain", "methods_disagree")
"""Flags that make a derived scar's confidence ``low`` (check it); ``few_slices`` alone makes it ``medium``,
``no_enhancement`` alone (a clear call) leaves it ``high``."""

MAD_TO_SD = 1.4826
"""Scale of the median absolute deviation to a normal standard deviation."""


@dataclass(frozen=True)
class ScarRules:
    """The fixed rules of the derived methods (defaults: the module constants, chosen on real scans).

    Exposed for method research (``benchmarks/scar_agreement.py --select``), not as command options.
    """

    enhancement_nsd: float = ENHANCEMENT_NSD
    peak_percentile: float = FWHM_PEAK_PERCENTILE
    epicardial_rim_mm: float = EPICARDIAL_RIM_MM
    min_cluster_area_mm2: float = MIN_CLUSTER_AREA_MM2
    peak_fraction: float = 0.5
    min_separation: float = ENHANCEMENT_MIN_SEPARATION
    remote_guard: bool = True


@dataclass(frozen=True)
class RemoteReference:
    """Statistics of remote (non-enhanced) myocardium and how they were found.

    Attributes:
        mean: remote intensity (mixture mean, or median).
        sd: remote standard deviation (mixture SD, or 1.4826 x MAD).
        method: one of ``REMOTE_METHODS``.
        fallback: ``mixture`` found no distinct enhanced class and used median / MAD of all voxels.
        voxel_count: voxels the reference was estimated from (the eroded search region).
        remote_fraction: share of those voxels that belong to remote (mixture weight, or kept share).
        path: how it was found: ``mixture``, ``mixture-fallback``, ``sectors`` (the remote guard),
            ``iterative`` or ``whole``.
    """

    mean: float
    sd: float
    method: str
    fallback: bool
    voxel_count: int
    remote_fraction: float
    path: str = ""


@dataclass(frozen=True)
class ScarResult:
    """Refined internal labels (1 blood, 2 remote, 3 core, 4 no-reflow, 5 grey zone) and the thresholds used."""

    labels: np.ndarray
    method: str
    remote: RemoteReference
    core_threshold: float | None
    greyzone_threshold: float
    peak: float | None = None
    enhancement: bool = True
    separation: float | None = None


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


def _left_to_right_sums(rows: np.ndarray) -> np.ndarray:
    """Each row's sum, added left to right (a cumulative sum's last value; ``np.sum`` adds pairwise)."""
    return np.cumsum(rows, axis=1)[:, -1]


def two_gaussian_mixture(
    values: np.ndarray, iterations: int = 300, tolerance: float = 1e-7
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Means, SDs and weights (ascending by mean) of a two-Gaussian mixture fitted by EM.

    Started from the 25th and 90th percentiles (remote is usually the larger, darker class).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> values = np.concatenate([rng.normal(100, 10, 8000), rng.normal(300, 40, 2000)])
        >>> means, sds, weights = two_gaussian_mixture(values)
        >>> [round(float(m), -1) for m in means], round(float(weights[0]), 1)
        ([100.0, 300.0], 0.8)
    """
    x = np.asarray(values, dtype=float).ravel()
    spread = float(np.std(x)) or 1.0
    means = np.percentile(x, [25.0, 90.0]).astype(float)
    sds = np.array([spread / 2, spread / 2])
    weights = np.array([0.7, 0.3])
    previous = -np.inf
    # One row per component, (2, N): each operation runs over a whole row. The sums over voxels add left to
    # right (``_left_to_right_sums``), the order the first (N, 2) version's column sums had, so the fit is the
    # same number for number (tests/preprocess checks it against that version).
    for _ in range(iterations):
        z = (x - means[:, None]) / sds[:, None]
        density = weights[:, None] * np.exp(-0.5 * z * z) / sds[:, None] + 1e-300
        total = density[0] + density[1]
        likelihood = float(np.log(total).sum())
        responsibility = density / total
        counts = _left_to_right_sums(responsibility) + 1e-12
        weights = counts / counts.sum()
        means = _left_to_right_sums(responsibility * x) / counts
        sds = np.sqrt(_left_to_right_sums(responsibility * (x - means[:, None]) ** 2) / counts) + 1e-6 * spread
        if abs(likelihood - previous) <= tolerance * abs(likelihood):
            break
        previous = likelihood
    order = np.argsort(means)
    return means[order], sds[order], weights[order]


def remote_reference(values: np.ndarray, method: str = "mixture") -> RemoteReference:
    """Remote myocardium statistics of ``values`` (intensities of the eroded search region).

    Example:
        >>> rng = np.random.default_rng(1)
        >>> wall = np.concatenate([rng.normal(100, 10, 6000), rng.normal(400, 60, 4000)])  # 40 % scar
        >>> reference = remote_reference(wall)
        >>> round(reference.mean), round(reference.sd), reference.fallback
        (100, 10, False)
        >>> round(remote_reference(wall, "whole").sd)          # the whole wall's spread is inflated by scar
        29
    """
    x = np.asarray(values, dtype=float).ravel()
    if x.size < 2:
        mean, sd = robust_statistics(x)
        fallback = method == "mixture"
        return RemoteReference(mean, sd, method, fallback, int(x.size), 1.0, "mixture-fallback" if fallback else method)
    if method == "whole":
        mean, sd = robust_statistics(x)
        return RemoteReference(mean, sd, method, False, int(x.size), 1.0, "whole")
    if method == "iterative":
        mean, sd = robust_statistics(x)
        kept = x
        for _ in range(100):
            kept = x[x <= mean + 2.0 * sd]
            new_mean, new_sd = robust_statistics(kept)
            if np.isclose(new_mean, mean, rtol=1e-9, atol=0) and np.isclose(new_sd, sd, rtol=1e-9, atol=0):
                break
            mean, sd = new_mean, new_sd
        return RemoteReference(mean, sd, method, False, int(x.size), kept.size / x.size, "iterative")
    if method == "mixture":
        means, sds, weights = two_gaussian_mixture(x)
        distinct = (
            means[1] - means[0] >= MIXTURE_MIN_SEPARATION * sds[0]
            and weights[1] >= MIXTURE_MIN_WEIGHT
            and weights[0] >= MIXTURE_MIN_REMOTE_WEIGHT
        )
        if not distinct:
            mean, sd = robust_statistics(x)
            return RemoteReference(mean, sd, method, True, int(x.size), 1.0, "mixture-fallback")
        return RemoteReference(float(means[0]), float(sds[0]), method, False, int(x.size), float(weights[0]), "mixture")
    raise ValueError(f"unknown remote method {method!r}; choose one of {', '.join(REMOTE_METHODS)}")


def sector_index(region: np.ndarray, centre: np.ndarray, sectors: int = SECTORS_PER_SLICE) -> np.ndarray:
    """Per slice, each voxel of ``region``'s angular sector (0 to ``sectors`` - 1) around the centre of
    ``centre`` (the blood pool; the region itself where a slice has none); -1 outside ``region``.

    Example:
        >>> region = np.ones((1, 3, 3), dtype=bool); region[0, 1, 1] = False
        >>> sector_index(region, ~region, 4)[0].tolist()
        [[2, 3, 3], [2, -1, 0], [1, 1, 0]]
    """
    out = np.full(region.shape, -1, dtype=np.int32)
    for k in range(region.shape[0]):
        if not region[k].any():
            continue
        middle = centre[k] if centre[k].any() else region[k]
        centre_y, centre_x = np.argwhere(middle).mean(axis=0)
        y, x = np.nonzero(region[k])
        angle = np.mod(np.arctan2(y - centre_y, x - centre_x), 2 * np.pi)
        out[k, y, x] = np.minimum((angle / (2 * np.pi) * sectors).astype(np.int32), sectors - 1)
    return out


def sector_remote(
    values: np.ndarray, region: np.ndarray, centre: np.ndarray, share: float = REMOTE_SECTOR_SHARE
) -> tuple[float, float, np.ndarray] | None:
    """Median, MAD-based SD and mask of the darkest ``share`` of the sectors of ``region`` (at least two):
    a remote reference that holds when enhancement covers most of the wall. ``None`` with under two sectors.

    Example:
        >>> region = np.ones((1, 9, 9), dtype=bool); region[0, 3:6, 3:6] = False
        >>> values = np.broadcast_to(np.where(np.arange(9) > 2, 500.0, 100.0), (1, 9, 9))  # 62 % of it bright
        >>> sector_remote(values, region, ~region)[0]
        100.0
    """
    index = sector_index(region, centre)
    medians = []
    for k in range(region.shape[0]):
        counts = np.bincount(index[k][index[k] >= 0], minlength=SECTORS_PER_SLICE)
        for sector in np.flatnonzero(counts >= MIN_SECTOR_VOXELS):
            medians.append((float(np.median(values[k][index[k] == sector])), k, int(sector)))
    if len(medians) < 2:
        return None
    medians.sort()
    keep = np.zeros(region.shape, dtype=bool)
    for _, slice_index, sector_number in medians[: max(2, int(np.ceil(share * len(medians))))]:
        keep[slice_index] |= index[slice_index] == sector_number
    mean, sd = robust_statistics(values[keep])
    return mean, sd, keep


def guarded_remote(
    values: np.ndarray, region: np.ndarray, blood: np.ndarray, reference: RemoteReference
) -> RemoteReference:
    """The remote guard: ``reference`` (a ``mixture`` remote of ``values`` in ``region``), or the darkest
    sectors' reference when the mixture's remote is too bright to be remote myocardium — more than
    ``REMOTE_GUARD_SD`` sector SDs above the darkest sectors, or less than ``REMOTE_BLOOD_SHARE`` of the way
    from the blood pool down to them (see the module docstring)."""
    sectors = sector_remote(values, region, blood)
    if sectors is None:
        return reference
    mean, sd, keep = sectors
    above = (reference.mean - mean) / sd
    blood_median = float(np.median(values[blood])) if blood.any() else None
    too_close_to_blood = (
        blood_median is not None
        and blood_median > mean
        and (blood_median - reference.mean) < REMOTE_BLOOD_SHARE * (blood_median - mean)
    )
    if above <= REMOTE_GUARD_SD and not too_close_to_blood:
        return reference
    fraction = float(keep.sum()) / max(int(region.sum()), 1)
    return RemoteReference(mean, sd, reference.method, False, int(region.sum()), fraction, "sectors")


def enhancement_separation(values: np.ndarray, reference: RemoteReference) -> float:
    """How far (in remote SDs) the upper class of a two-Gaussian mixture of ``values`` lies above the remote
    ``reference``: the enhancement test's statistic (0 when nothing lies above remote).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> flat = rng.normal(100, 10, 5000)
        >>> enhancement_separation(flat, remote_reference(flat)) < ENHANCEMENT_MIN_SEPARATION
        True
        >>> scarred = np.concatenate([flat, rng.normal(300, 30, 1000)])
        >>> enhancement_separation(scarred, remote_reference(scarred)) > 10
        True
    """
    x = np.asarray(values, dtype=float).ravel()
    if x.size < 2:
        return 0.0
    means, _, _ = two_gaussian_mixture(x)
    return max(0.0, float(means[1] - reference.mean) / max(reference.sd, 1e-6))


def remote_region(myocardium: np.ndarray, min_voxels: int = 50) -> np.ndarray:
    """The myocardium eroded by one voxel in-plane (no partial volume with blood or fat).

    Falls back to the whole myocardium when erosion would leave fewer than ``min_voxels``.
    """
    from scipy import ndimage

    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = ndimage.generate_binary_structure(2, 1)
    eroded = ndimage.binary_erosion(myocardium, structure)
    return eroded if eroded.sum() >= min_voxels else myocardium


def smooth_within(image: np.ndarray, region: np.ndarray, sigma_mm: float, spacing: tuple[float, ...]) -> np.ndarray:
    """In-plane Gaussian smoothing of ``image`` restricted to ``region`` (normalised convolution).

    Voxels outside ``region`` neither change nor contribute, so the bright blood pool does not
    bleed into the myocardium. ``spacing`` is (x, y, z) in mm, the array (z, y, x).

    Example:
        >>> image = np.zeros((1, 5, 5)); image[0, :, 3:] = 1000.0            # bright "blood" on the right
        >>> region = np.zeros((1, 5, 5), dtype=bool); region[0, :, :3] = True
        >>> float(smooth_within(image, region, 2.0, (1.0, 1.0, 10.0))[region].max())
        0.0
    """
    if sigma_mm <= 0 or not region.any():
        return image.astype(np.float32, copy=True)
    from scipy import ndimage

    sigma = (0.0, sigma_mm / float(spacing[1]), sigma_mm / float(spacing[0]))
    weight = region.astype(np.float32)
    numerator = ndimage.gaussian_filter(image.astype(np.float32) * weight, sigma=sigma, mode="nearest")
    denominator = ndimage.gaussian_filter(weight, sigma=sigma, mode="nearest")
    smoothed = np.where(region, numerator / np.maximum(denominator, 1e-6), image)
    return smoothed.astype(np.float32)


def epicardial_depth_mm(labels: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """Per slice, each voxel's in-plane distance (mm) to the outside of the LV (blood pool + myocardium)."""
    from scipy import ndimage

    left_ventricle = np.isin(labels, (BLOOD, MYOCARDIUM, SCAR, NOREFLOW, GREYZONE))
    depth = np.zeros(labels.shape, dtype=np.float32)
    for k in range(labels.shape[0]):
        if left_ventricle[k].any():
            filled = ndimage.binary_fill_holes(left_ventricle[k])
            depth[k] = ndimage.distance_transform_edt(filled, sampling=(float(spacing[1]), float(spacing[0])))
    return depth


def drop_small_clusters(region: np.ndarray, min_voxels: int = MIN_CLUSTER_VOXELS) -> np.ndarray:
    """Remove in-plane (per slice, 8-connected) clusters of ``region`` smaller than ``min_voxels``."""
    return clean_clusters(region, min_voxels)


def clean_clusters(
    region: np.ndarray, min_voxels: int, depth_mm: np.ndarray | None = None, rim_mm: float = 0.0
) -> np.ndarray:
    """Keep in-plane (per slice, 8-connected) clusters of at least ``min_voxels`` voxels and, when
    ``depth_mm`` is given, with at least ``min_voxels`` voxels deeper than ``rim_mm`` from the epicardium.

    Example:
        >>> region = np.zeros((1, 6, 6), dtype=bool); region[0, 0, :] = True; region[0, 3:5, 2:5] = True
        >>> depth = np.tile(np.minimum(np.arange(6), 5 - np.arange(6))[:, None], (1, 1, 6)).astype(float)
        >>> int(clean_clusters(region, 2, depth, rim_mm=0.5).sum())    # the row on the surface goes
        6
    """
    from scipy import ndimage

    if not region.any():
        return region
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = True  # connectivity within a slice only: LGE slices are 8-23 mm apart
    labelled, count = ndimage.label(region, structure=structure)
    if count == 0:
        return region
    keep = np.bincount(labelled.ravel(), minlength=count + 1) >= min_voxels
    if depth_mm is not None and rim_mm > 0:
        deep = np.bincount(labelled[depth_mm > rim_mm].ravel(), minlength=count + 1)
        keep &= deep >= min_voxels
    keep[0] = False
    return cast("np.ndarray", keep[labelled])


def _min_voxels(area_mm2: float, spacing: tuple[float, ...]) -> int:
    return max(1, int(round(area_mm2 / (float(spacing[0]) * float(spacing[1])))))


def fwhm_peak(smoothed: np.ndarray, candidates: np.ndarray, percentile: float = FWHM_PEAK_PERCENTILE) -> float | None:
    """The ``percentile``-th percentile of the largest region of ``candidates``.

    Regions are face-connected in 3D (a scar seen on neighbouring slices is one region), so the peak
    comes from the bulk of the enhancement rather than from one slice's bright fragment.
    """
    from scipy import ndimage

    if not candidates.any():
        return None
    labelled, _ = ndimage.label(candidates)
    sizes = np.bincount(labelled.ravel())
    sizes[0] = 0
    return float(np.percentile(smoothed[labelled == int(sizes.argmax())], percentile))


def quantify_scar(
    image: np.ndarray,
    labels: np.ndarray,
    method: str,
    nsd: float = 5.0,
    greyzone_nsd: float = 2.0,
    remote: str = "mixture",
    smoothing_mm: float = 2.5,
    spacing: tuple[float, ...] = (1.0, 1.0, 1.0),
    rules: ScarRules = ScarRules(),
) -> ScarResult:
    """Scar core and grey zone of one case.

    Args:
        image: intensities (z, y, x).
        labels: internal labels (1 blood, 2 myocardium, 3 scar, 4 no-reflow).
        method: ``label``, ``fwhm`` or ``nsd`` (``auto`` is resolved by the caller).
        nsd: core threshold of ``nsd`` in remote SDs (any positive n; at or below ``greyzone_nsd``
            there is no grey zone).
        greyzone_nsd: grey-zone threshold in remote SDs.
        remote: how the remote reference is found (``REMOTE_METHODS``).
        smoothing_mm: in-plane Gaussian SD (mm) of the smoothing within the myocardium that ``fwhm``
            searches; 0 for none.
        spacing: voxel spacing (x, y, z) in mm.
        rules: the derived methods' fixed rules (enhancement guard, peak percentile, cluster rules).

    Example:
        >>> result = quantify_scar(image, labels, "fwhm", spacing=(1.4, 1.4, 10.0))   # doctest: +SKIP
        >>> (result.labels == 3).sum(), result.remote.method                          # doctest: +SKIP
    """
    myocardium = myocardium_of(labels)
    out = labels.copy()
    if method == "label":
        scar = np.isin(labels, (SCAR, NOREFLOW))
        reference = remote_reference(image[remote_region(myocardium & ~scar)], remote)
        greyzone_threshold = reference.mean + greyzone_nsd * reference.sd
        grey = drop_small_clusters(myocardium & ~scar & (image > greyzone_threshold))
        out[grey] = GREYZONE
        return ScarResult(out, method, reference, None, greyzone_threshold)
    if method not in ("fwhm", "nsd"):
        raise ValueError(f"unknown scar method {method!r}")

    # Derived methods ignore any scar labels: the whole myocardium is the search region.
    out[myocardium] = MYOCARDIUM
    # fwhm searches an image smoothed within the myocardium; nsd thresholds the raw image, as readers do.
    smoothed = smooth_within(image, myocardium, smoothing_mm if method == "fwhm" else 0.0, spacing)
    searched = remote_region(myocardium)
    reference = remote_reference(smoothed[searched], remote)
    if remote == "mixture" and rules.remote_guard:
        reference = guarded_remote(smoothed, searched, labels == BLOOD, reference)
    greyzone_threshold = reference.mean + greyzone_nsd * reference.sd
    separation = enhancement_separation(smoothed[searched], reference)
    if separation < rules.min_separation:  # no enhanced class: a scar-free heart, no scar and no grey zone
        return ScarResult(out, method, reference, None, greyzone_threshold, None, False, separation)
    min_voxels = _min_voxels(rules.min_cluster_area_mm2, spacing)
    depth = epicardial_depth_mm(labels, spacing)

    def clean(region: np.ndarray) -> np.ndarray:
        return clean_clusters(region, min_voxels, depth, rules.epicardial_rim_mm)

    peak = None
    if method == "nsd":
        core_threshold = reference.mean + nsd * reference.sd
    else:
        guard = reference.mean + rules.enhancement_nsd * reference.sd
        peak = fwhm_peak(smoothed, clean(myocardium & (smoothed > guard)), rules.peak_percentile)
        core_threshold = (
            float("inf") if peak is None else max(reference.mean + rules.peak_fraction * (peak - reference.mean), guard)
        )
        if reference.path == "sectors":  # enhancement covers much of the wall: diffuse scar is below half the peak
            core_threshold = min(core_threshold, max(reference.mean + EXTENSIVE_NSD * reference.sd, guard))
    core = clean(myocardium & (smoothed >= core_threshold))
    grey = clean(myocardium & ~core & (smoothed > greyzone_threshold) & (smoothed < core_threshold))
    out[core] = SCAR
    out[grey] = GREYZONE
    return ScarResult(
        out,
        method,
        reference,
        None if not np.isfinite(core_threshold) else core_threshold,
        greyzone_threshold,
        peak,
        True,
        separation,
    )


def scar_flags(
    result: ScarResult,
    blood_median: float | None,
    slices_with_myocardium: int,
    scar_percent: float,
    second_opinion_percent: float | None,
    min_separation: float = ENHANCEMENT_MIN_SEPARATION,
) -> tuple[str, ...]:
    """The QC flags (``SCAR_FLAGS``) of a derived scar ``result``.

    Args:
        result: the derived scar (``fwhm`` or ``nsd``).
        blood_median: the blood pool's median on the image searched (``None``: no blood pool).
        slices_with_myocardium: slices the myocardium is labelled on.
        scar_percent: the derived scar % of LV myocardium.
        second_opinion_percent: the other derived method's scar % (``None``: not run).
        min_separation: the enhancement test's threshold the result was found with.

    Example:
        >>> reference = RemoteReference(100.0, 10.0, "mixture", False, 1000, 0.8, "sectors")
        >>> result = ScarResult(np.zeros(1), "fwhm", reference, 200.0, 120.0, 300.0, True, 6.0)
        >>> scar_flags(result, 400.0, 3, 30.0, 10.0)
        ('remote_uncertain', 'few_slices', 'methods_disagree')
    """
    flags = []
    separation = result.separation
    if not result.enhancement:
        flags.append("no_enhancement")
    if separation is not None and abs(separation - min_separation) < ENHANCEMENT_BORDERLINE:
        flags.append("enhancement_borderline")
    remote = result.remote
    weak_blood = blood_median is not None and (blood_median - remote.mean) < WEAK_BLOOD_CONTRAST_SD * remote.sd
    if remote.path in ("sectors", "mixture-fallback") or weak_blood:
        flags.append("remote_uncertain")
    if slices_with_myocardium <= FEW_SLICES:
        flags.append("few_slices")
    if second_opinion_percent is not None and abs(scar_percent - second_opinion_percent) > METHODS_DISAGREE_POINTS:
        flags.append("methods_disagree")
    return tuple(flags)


def scar_confidence(flags: tuple[str, ...] | list[str]) -> str:
    """``low`` (check the scar) with any of ``CHECK_FLAGS``, ``medium`` with ``few_slices``, else ``high``.

    Example:
        >>> scar_confidence(("few_slices",)), scar_confidence(("no_enhancement", "remote_uncertain"))
        ('medium', 'low')
    """
    if any(flag in CHECK_FLAGS for flag in flags):
        return "low"
    return "medium" if "few_slices" in flags else "high"


SCAR_CHECK_REASON = "the derived scar needs checking"
"""How a prediction's ``unreliable_reasons`` entry for a low-confidence derived scar begins."""


def scar_check_reason(qc: dict[str, object]) -> str | None:
    """The ``unreliable_reasons`` entry of a case whose derived scar has low confidence (``None`` otherwise):
    its flags, and what to do.

    Example:
        >>> scar_check_reason({"scar_confidence": "low", "scar_flags": ["remote_uncertain"], "scar_method": "fwhm"})
        'the derived scar needs checking (fwhm, scar_confidence low: remote_uncertain); review its scar mask'
        >>> scar_check_reason({"scar_confidence": "medium", "scar_flags": ["few_slices"]}) is None
        True
    """
    if qc.get("scar_confidence") != "low":
        return None
    flags = qc.get("scar_flags")
    listed = ", ".join(str(flag) for flag in flags) if isinstance(flags, (list, tuple)) and flags else "no flags"
    return f"{SCAR_CHECK_REASON} ({qc.get('scar_method')}, scar_confidence low: {listed}); review its scar mask"


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


def scar_check_sentence(table: pd.DataFrame | None) -> str | None:
    """One sentence on how many cases' derived scar to check (``scar_confidence`` low), or ``None`` when the
    table has no derived scar.

    Example:
        >>> import pandas as pd
        >>> scar_check_sentence(pd.DataFrame({"case_id": ["a", "b"], "scar_confidence": ["low", "high"]}))[:44]
        'derived scar: check 1 of 2 cases (scar_confi'
    """
    if table is None or len(table) == 0 or "scar_confidence" not in table:
        return None
    derived = table[table["scar_confidence"].notna()]
    if len(derived) == 0:
        return None
    low = derived[derived["scar_confidence"] == "low"]
    if len(low) == 0:
        return f"derived scar: none of {len(derived)} cases to check (no low scar_confidence)."
    shown = ", ".join(str(case) for case in low["case_id"].head(10)) + (", ..." if len(low) > 10 else "")
    return (
        f"derived scar: check {len(low)} of {len(derived)} cases (scar_confidence low; scar_flags in cases.csv): "
        f"{shown}."
    )
