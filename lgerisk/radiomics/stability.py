"""Feature stability under segmentation perturbations: ICC across perturbed masks.

Perturbations of every ROI mask, all in-plane (slices are 8-23 mm apart): the original, eroded
by one voxel, dilated by one voxel, and ``n_random`` contour randomisations (the signed distance
to the contour shifted by a smooth random field of about one voxel, after Zwanenburg et al.,
Sci Rep 2019). Per feature, the ICC over cases (targets) x perturbations (raters):
ICC(1,1) (one-way, absolute agreement; the primary, since erosion and dilation shift features
systematically) and ICC(3,1) (two-way, consistency). Robust: ICC(1,1) >= 0.75; excellent: >= 0.9
(Koo & Li, 2016).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, cast

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import SimpleITK as sitk

ROBUST_ICC = 0.75
EXCELLENT_ICC = 0.9
PERTURBATION_NAMES = ("original", "eroded", "dilated")


def icc(ratings: np.ndarray) -> tuple[float, float]:
    """ICC(1,1) and ICC(3,1) of an ``(n_targets, k_raters)`` array (Shrout & Fleiss, 1979).

    Example:
        >>> icc(np.array([[1.0, 1.1], [2.0, 2.1], [3.0, 2.9]]))[0] > 0.98
        True
    """
    ratings = np.asarray(ratings, dtype=float)
    n, k = ratings.shape
    if n < 2 or k < 2:
        return float("nan"), float("nan")
    grand = ratings.mean()
    row_means = ratings.mean(axis=1)
    col_means = ratings.mean(axis=0)
    ss_rows = k * ((row_means - grand) ** 2).sum()
    ss_cols = n * ((col_means - grand) ** 2).sum()
    ss_total = ((ratings - grand) ** 2).sum()
    ss_within = ss_total - ss_rows
    ss_error = ss_within - ss_cols
    ms_rows = ss_rows / (n - 1)
    ms_within = ss_within / (n * (k - 1))
    ms_error = ss_error / ((n - 1) * (k - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        icc11 = (ms_rows - ms_within) / (ms_rows + (k - 1) * ms_within)
        icc31 = (ms_rows - ms_error) / (ms_rows + (k - 1) * ms_error)
    return float(icc11), float(icc31)


def _in_plane_structure() -> np.ndarray:
    from scipy import ndimage

    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = ndimage.generate_binary_structure(2, 1)
    return structure


def randomise_contour(
    mask: np.ndarray, rng: np.random.Generator, amplitude: float = 1.0, smoothness: float = 2.0
) -> np.ndarray:
    """Shift the contour of ``mask`` in-plane by a smooth random field (SD about ``amplitude`` voxels)."""
    from scipy import ndimage

    if not mask.any():
        return mask.copy()
    inside = np.stack([ndimage.distance_transform_edt(s) for s in mask])
    # an empty slice stays empty (its distance to a contour is infinite, not measured from a corner)
    outside = np.stack([ndimage.distance_transform_edt(~s) if s.any() else np.full(s.shape, np.inf) for s in mask])
    signed = inside - outside  # > 0 inside, <= 0 outside, in voxels
    field = ndimage.gaussian_filter(rng.normal(size=mask.shape), sigma=(0, smoothness, smoothness))
    field *= amplitude / (field.std() or 1.0)
    return cast("np.ndarray", signed + field > 0.5)


def perturbed_masks(mask: np.ndarray, n_random: int, seed: int) -> dict[str, np.ndarray]:
    """The perturbations of one binary mask, by name (``original``, ``eroded``, ``dilated``, ``random1``...)."""
    from scipy import ndimage

    structure = _in_plane_structure()
    masks = {
        "original": mask,
        "eroded": ndimage.binary_erosion(mask, structure),
        "dilated": ndimage.binary_dilation(mask, structure),
    }
    rng = np.random.default_rng(seed)
    for index in range(1, n_random + 1):
        masks[f"random{index}"] = randomise_contour(mask, rng)
    return masks


def perturbation_rows(
    image: sitk.Image,
    labels: np.ndarray,
    params: Mapping[str, object],
    rois: tuple[str, ...],
    n_random: int = 2,
    seed: int = 0,
) -> dict[str, dict[str, object]]:
    """Feature rows of one case under every perturbation: {perturbation: {column: value}}."""
    from lgerisk.radiomics.extract import extract_rois, make_extractor
    from lgerisk.radiomics.settings import ROIS

    extractor = make_extractor(params)
    rows: dict[str, dict[str, object]] = {}
    for roi in rois:
        roi_labels = np.isin(labels, ROIS[roi])
        for name, mask in perturbed_masks(roi_labels, n_random, seed + list(ROIS).index(roi)).items():
            # encode the perturbed ROI as the first label of its definition so extract_rois finds it
            perturbed = np.where(mask, ROIS[roi][0], 0).astype(np.uint8)
            features = extract_rois(image, perturbed, params, (roi,), extractor=extractor)
            features.pop("__provenance__")
            rows.setdefault(name, {}).update(features)
    return rows


def stability_table(rows_by_case: Mapping[str, Mapping[str, Mapping[str, object]]]) -> pd.DataFrame:
    """Per feature: ICC(1,1), ICC(3,1), cases used, robust and excellent flags (a DataFrame).

    ``rows_by_case`` is {case_id: {perturbation: {column: value}}}; a case enters a feature's ICC
    only when every perturbation gave a finite value.
    """
    import pandas as pd

    records = []
    columns: list[str] = []
    for perturbations in rows_by_case.values():
        for row in perturbations.values():
            columns.extend(c for c in row if c not in columns)
    features = [c for c in columns if "__" in c and not c.endswith(("__status", "__voxel_count"))]
    perturbation_names = sorted({name for p in rows_by_case.values() for name in p})
    for column in features:
        ratings = []
        for perturbations in rows_by_case.values():
            values = [perturbations.get(name, {}).get(column) for name in perturbation_names]
            try:
                array = np.asarray(values, dtype=float)
            except (TypeError, ValueError):
                array = np.full(len(values), np.nan)
            if np.isfinite(array).all():
                ratings.append(array)
        icc11, icc31 = icc(np.asarray(ratings)) if len(ratings) >= 2 else (float("nan"), float("nan"))
        roi, feature = column.split("__", 1)
        records.append(
            {
                "feature": column,
                "roi": roi,
                "name": feature,
                "icc_1_1": icc11,
                "icc_3_1": icc31,
                "n_cases": len(ratings),
                "robust": bool(icc11 >= ROBUST_ICC),
                "excellent": bool(icc11 >= EXCELLENT_ICC),
            }
        )
    return pd.DataFrame(
        records, columns=["feature", "roi", "name", "icc_1_1", "icc_3_1", "n_cases", "robust", "excellent"]
    )


def robust_features(stability: pd.DataFrame, min_icc: float = ROBUST_ICC) -> list[str]:
    """Feature columns whose ICC(1,1) reaches ``min_icc`` (for later commands' ``--robust-only``)."""
    return list(stability.loc[stability["icc_1_1"] >= min_icc, "feature"])
