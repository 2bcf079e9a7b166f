"""pyradiomics feature extraction for the myocardium, scar and grey zone of a preprocessed case.

A ROI with no voxels gets ``status = "empty"`` and NaN features; a ROI pyradiomics refuses as too
small (fewer than ``minimumROISize`` voxels, or fewer than ``minimumROIDimensions`` dimensions)
gets ``status = "too small: <reason>"`` and NaN features. NaN means "not measurable", never zero.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np

from lgerisk.errors import CaseError, brief
from lgerisk.radiomics.settings import ROIS
from lgerisk.version import __version__

if TYPE_CHECKING:  # pragma: no cover
    import SimpleITK as sitk
    from radiomics.featureextractor import RadiomicsFeatureExtractor  # pyradiomics ships no types

    from lgerisk.types import JSONValue

QC_COLUMNS = (
    "scar_method",
    "myocardium_volume_ml",
    "myocardium_mass_g",
    "scar_volume_ml",
    "scar_percent",
    "noreflow_percent",
    "greyzone_percent",
)
"""Scar metrics copied from the case's preprocessing QC into the feature table."""


def make_extractor(params: Mapping[str, object]) -> RadiomicsFeatureExtractor:
    """A pyradiomics ``RadiomicsFeatureExtractor`` configured with ``params`` (quiet logging).

    Built once per process and parameter set: pyradiomics re-validates its schema on every
    construction (about 40 ms), and an extractor is reusable across cases. Its ``additionalInfo``
    diagnostics are switched off: ``extract_rois`` records the same provenance (versions, and the
    image and mask hashes exactly as pyradiomics computes them) once per case instead of once per ROI.
    """
    return _extractor(json.dumps(params, sort_keys=True))


@functools.lru_cache(maxsize=8)
def _extractor(params_json: str) -> RadiomicsFeatureExtractor:
    import radiomics
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    radiomics.setVerbosity(logging.ERROR)
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    extractor = RadiomicsFeatureExtractor(json.loads(params_json))
    extractor.settings["additionalInfo"] = False
    return extractor


def roi_mask(labels: np.ndarray, roi: str, reference: sitk.Image) -> sitk.Image:
    """Binary mask (label 1, uint8) of ``roi`` over preprocessed labels, on ``reference``'s grid."""
    import SimpleITK as sitk

    mask = sitk.GetImageFromArray(np.isin(labels, ROIS[roi]).astype(np.uint8))
    mask.CopyInformation(reference)
    return mask


@functools.lru_cache(maxsize=8)
def feature_names(params_json: str) -> tuple[str, ...]:
    """Feature names ``params`` produce (from a small reference phantom), so that empty ROIs still
    get every column, in pyradiomics' order."""
    import SimpleITK as sitk

    yy, xx = np.mgrid[:24, :24]
    rng = np.random.default_rng(0)
    volume = np.stack([np.hypot(yy - 12, xx - 12) + rng.normal(0, 1, (24, 24)) for _ in range(6)]).astype(np.float32)
    image = sitk.GetImageFromArray(volume / 10)
    image.SetSpacing((1.4, 1.4, 10.0))
    labels = np.zeros(volume.shape, dtype=np.uint8)
    labels[1:5, 6:18, 6:18] = 2
    result = make_extractor(json.loads(params_json)).execute(image, roi_mask(labels, "myocardium", image), label=1)
    return tuple(key for key in result if not key.startswith("diagnostics_"))


def _value(value: object) -> object:
    if isinstance(value, np.ndarray):
        value = value.item() if value.size == 1 else value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    return value


def extract_rois(
    image: sitk.Image,
    labels: np.ndarray,
    params: Mapping[str, object],
    rois: tuple[str, ...],
    extractor: RadiomicsFeatureExtractor | None = None,
) -> dict[str, object]:
    """Features of every ROI of one case: ``ROI__voxel_count``, ``ROI__status``, ``ROI__<feature>``,
    plus pyradiomics' provenance (versions, image hash) and each ROI's mask hash.

    Example:
        >>> row = extract_rois(image, labels, load_params(), ("myocardium", "scar"))  # doctest: +SKIP
        >>> row["scar__status"], row["scar__original_firstorder_Mean"]                # doctest: +SKIP
    """
    import SimpleITK as sitk

    extractor = extractor or make_extractor(params)
    names = feature_names(json.dumps(params, sort_keys=True))
    row: dict[str, object] = {}
    provenance: dict[str, str] = {}
    for roi in rois:
        mask = roi_mask(labels, roi, image)
        count = int(np.isin(labels, ROIS[roi]).sum())
        row[f"{roi}__voxel_count"] = count
        values: dict[str, object] = {}
        if count == 0:
            status = "empty"
        else:
            try:
                values = dict(extractor.execute(image, mask, label=1))
                status = "ok"
            except (ValueError, IndexError, RuntimeError) as exc:
                status = f"too small: {brief(exc)}"
        row[f"{roi}__status"] = status
        for name in names:
            value = _value(values.get(name, math.nan))
            row[f"{roi}__{name}"] = value
        # as pyradiomics' diagnostics_Mask-original_Hash: the hash of the mask cast to UInt32
        provenance[f"{roi}__mask_hash"] = sitk.Hash(sitk.Cast(mask, sitk.sitkUInt32))
    provenance = {**_versions(), "image_hash": sitk.Hash(image), **provenance}
    return {**row, "__provenance__": provenance}


@functools.lru_cache(maxsize=1)
def _versions() -> dict[str, str]:
    """Versions as pyradiomics' diagnostics report them."""
    import pywt
    import radiomics
    import SimpleITK as sitk

    return {
        "pyradiomics_version": radiomics.__version__,
        "numpy_version": np.__version__,
        "simpleitk_version": sitk.Version.VersionString(),
        "pywavelet_version": pywt.__version__,
        "python_version": platform.python_version(),
    }


def read_case(image_path: Path, mask_path: Path) -> tuple[sitk.Image, np.ndarray]:
    """A preprocessed case (written by ``lgerisk preprocess``): its image and its label array (1-5)."""
    from lgerisk.io.scans import image_array, label_array, read_volume

    image = read_volume(image_path, "image", verify_nifti=False)
    mask = read_volume(mask_path, "mask", verify_nifti=False)
    if mask.GetSize() != image.GetSize():
        raise CaseError(f"{mask_path}: mask size {mask.GetSize()} differs from its image's {image.GetSize()}.")
    image_array(image, image_path)  # refuses NaN/inf
    return image, label_array(mask, mask_path)


def case_qc(image_path: Path) -> dict[str, JSONValue]:
    """Scar metrics from the preprocessing QC beside a preprocessed image (empty if absent)."""
    qc_path = image_path.parent / "qc.json"
    if not qc_path.is_file():
        return {}
    qc = json.loads(qc_path.read_text(encoding="utf-8"))
    return {key: qc.get(key) for key in QC_COLUMNS}


def feature_row(
    case_id: str,
    image_path: Path,
    mask_path: Path,
    params: Mapping[str, object],
    rois: tuple[str, ...],
    settings_hash: str,
) -> dict[str, object]:
    """One feature-table row: ``case_id``, features, QC scar metrics, provenance columns."""
    image, labels = read_case(image_path, mask_path)
    features = extract_rois(image, labels, params, rois)
    provenance = cast("dict[str, str]", features.pop("__provenance__"))  # extract_rois's versions and hashes
    return {
        "case_id": case_id,
        **features,
        **case_qc(image_path),
        **provenance,
        "settings_hash": settings_hash,
        "lgerisk_version": __version__,
    }
