"""One raw case -> one canonical, quality-checked case (image, labels, QC numbers).

Order of work: read and check -> internal labels -> canonical orientation -> scar and grey
zone on the acquired grid (no interpolation) -> QC volumes on the acquired grid -> in-plane
resampling onto an LV-centred crop -> intensity normalisation -> atomic writes, QC JSON last.

Masks are label images (NIfTI, NRRD, MHA, a DICOM label series) read through the label map, or DICOM
SEG / RTSTRUCT objects over a DICOM image series, read through its name map
(``lgerisk.io.dicom_masks``). With ``dicom_seg`` the scar and grey zone are also written as a DICOM
SEG over the source series (``lgerisk.io.dicom_seg``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np

from lgerisk.errors import CaseError
from lgerisk.io.atomic import write_image, write_json
from lgerisk.io.cohort import Case
from lgerisk.io.labels import (
    BLOOD,
    GREYZONE,
    MYOCARDIUM,
    NOREFLOW,
    SCAR,
    LabelMap,
    PartialMapWatch,
    check_map_fits,
    first_mask_labels,
    parse_label_map,
    to_internal,
)
from lgerisk.io.layout import (
    IMAGE_FILE,
    MASK_FILE,
    QC_FILE,
    case_dir,
    inputs_unchanged,
    other_source,
    source_hash,
    source_name,
)
from lgerisk.io.scans import check_same_geometry, image_array, label_array, read_volume
from lgerisk.preprocess import geometry
from lgerisk.preprocess.config import INTENSITY_SCAR_METHODS, PreprocessConfig
from lgerisk.preprocess.intensity import fit_normalisation
from lgerisk.preprocess.qc import QCRecord
from lgerisk.preprocess.scar import (
    CHECK_NSD,
    ScarResult,
    ScarRules,
    dice,
    myocardium_of,
    quantify_scar,
    scar_confidence,
    scar_flags,
    tissue_volumes_ml,
)
from lgerisk.version import __version__

if TYPE_CHECKING:  # pragma: no cover
    import SimpleITK as sitk

    from lgerisk.types import JSONDict, JSONValue

MYOCARDIAL_DENSITY_G_PER_ML = 1.05
"""Myocardial tissue density used for mass (g = ml x 1.05)."""

MIN_SLICES_WITH_MYOCARDIUM = 2
"""A case needs its myocardium labelled on at least this many slices (a short-axis stack, not one slice or a
few stray voxels): ``preprocess`` fails a case with fewer (``check_myocardium_slices``), and ``predict``, which
preprocesses each raw scan, with it."""

CROP_KEEP_WARNING = 0.99
"""Warn when less than this share of the myocardium lies inside the crop."""


@dataclass(frozen=True)
class PreprocessedCase:
    """A canonical case in memory: normalised image, labels (1-5) and QC numbers; ``source_labels``: the
    labels (1-5) on the source scan's own grid and slice order (for a DICOM SEG over a DICOM series;
    ``None`` for other scans)."""

    case_id: str
    image: sitk.Image
    labels: sitk.Image
    qc: JSONDict  # what qc.json holds (``record``: the same, typed)
    source_labels: np.ndarray | None = None

    @property
    def record(self) -> QCRecord:
        """The QC as a typed record (what ``qc.json`` holds)."""
        return QCRecord.from_qc(self.qc)


def check_one_source(case: Case, out: Path) -> None:
    """Raise ``CaseError`` when ``out`` already holds another scan under ``case``'s id (say, the same id in two
    manifests whose shards write into one folder), rather than silently replacing it."""
    folder = case_dir(out, case.case_id)
    try:
        record = json.loads((folder / QC_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    earlier = other_source(record, case) if isinstance(record, dict) else None
    if earlier is not None:
        raise CaseError(
            f"{case.image}: case id {case.case_id!r} is already preprocessed in {out} from another scan, {earlier}; "
            f"give one of them another id, preprocess it into another folder, or remove {folder} to replace it."
        )


def resolve_scar_method(method: str, label_map: LabelMap, from_names: bool = False) -> str:
    """``auto`` -> ``label`` when the map names scar labels, else ``fwhm`` (the derived method that agrees
    best with experts on real scans; docs/preprocessing.md, "Scar quantification"); ``label`` needs scar labels;
    ``calibrated`` is ``fwhm`` with a setting learnt from expert-labelled scans (``lgerisk.preprocess.calibrate``).
    ``from_names``: the masks are DICOM SEG/RTSTRUCT objects, whose scar is named by the name map."""
    named = label_map.names_scar if from_names else label_map.has_scar
    if method == "auto":
        return "label" if named else "fwhm"
    if method == "label" and not named:
        from lgerisk.errors import InputError

        what = (
            "name map names no scar structure"
            if from_names
            else f"label map '{label_map.to_spec()}' names no scar label"
        )
        raise InputError(
            f"scar_method='label': the {what}; use scar_method='nsd' or 'fwhm', or name scar in the label map.",
            setting="scar_method",
        )
    return method


def masks_from_names(label_map: LabelMap) -> bool:
    """Whether ``label_map`` can only read DICOM SEG/RTSTRUCT masks (it has ``name:`` entries and no label values)."""
    return not label_map.named_values() and bool(label_map.names)


def source_grid_labels(labels: np.ndarray, reorientation: geometry.Reorientation) -> np.ndarray:
    """Labels (z, y, x) of the canonical grid put back on the source scan's grid: ``canonical_orientation``
    undone (slices flipped back, axes permuted back), no interpolation.

    Example:
        >>> canonical = np.arange(24).reshape(2, 3, 4)
        >>> back = source_grid_labels(canonical, geometry.Reorientation((0, 2, 1), True))
        >>> back.shape, int(back[0, 0, 0]) == int(canonical[1, 0, 0])
        ((3, 2, 4), True)
    """
    array = labels[::-1] if reorientation.slices_flipped else labels
    order = list(reorientation.axis_order)
    # numpy axis j of the source array is ITK axis 2 - j, which canonical ITK axis order.index(2 - j) holds
    return np.ascontiguousarray(np.transpose(array, [2 - order.index(2 - j) for j in range(3)]))


def fill_blood_pool(labels: np.ndarray) -> np.ndarray:
    """Derive the LV blood pool as the in-plane holes of the myocardium (for maps without blood labels)."""
    from scipy import ndimage

    out = labels.copy()
    myocardium = myocardium_of(labels)
    for k in range(labels.shape[0]):
        filled = ndimage.binary_fill_holes(myocardium[k])
        out[k][filled & ~myocardium[k]] = BLOOD
    return out


@dataclass(frozen=True)
class CanonicalCase:
    """A raw case read and checked, in internal labels and canonical orientation, not yet resampled."""

    raw_image: sitk.Image
    image: sitk.Image
    labels: sitk.Image
    values: np.ndarray
    internal: np.ndarray
    reorientation: geometry.Reorientation
    mask_format: str = "label image"
    structures: dict[str, int] | None = None


def read_canonical(case: Case, label_map: LabelMap) -> CanonicalCase:
    """Read image and mask, check them, map labels to internal ones and reorient (no interpolation).

    A DICOM SEG or RTSTRUCT mask is matched to its DICOM series and rasterised onto it, its structures
    named by the map's names (``lgerisk.io.dicom_masks``). Raises ``CaseError`` naming the file on bad input.
    """
    import SimpleITK as sitk

    from lgerisk.io.dicom_masks import read_dicom_mask
    from lgerisk.io.formats import is_dicom_mask

    if case.mask is None:
        raise CaseError(
            f"{case.image}: no mask found for case {case.case_id!r} (looked in masks/, labels/, "
            "Contours/, the DICOM series folder or the manifest's mask column)."
        )
    raw_image = read_volume(case.image, "image")
    dicom_mask = is_dicom_mask(case.mask)
    raw_mask = None if dicom_mask else read_volume(case.mask, "mask")
    if raw_image.GetSize()[2] < 2 or min(raw_image.GetSize()) < 2:
        raise CaseError(
            f"{case.image}: image has size {raw_image.GetSize()}; a stack of several short-axis slices is needed."
        )
    structures = None
    if raw_mask is None:
        image_values = image_array(raw_image, case.image)
        read = read_dicom_mask(case.mask, case.image, raw_image, label_map)
        internal, has_blood, mask_format, structures = read.labels, read.has_blood, read.kind, read.structures
    else:
        check_same_geometry(raw_image, raw_mask, case.mask)
        image_values = image_array(raw_image, case.image)
        internal = to_internal(label_array(raw_mask, case.mask), label_map, str(case.mask))
        has_blood, mask_format = bool(label_map.blood), "label image"

    image = sitk.GetImageFromArray(image_values)
    image.CopyInformation(raw_image)
    labels = sitk.GetImageFromArray(internal)
    labels.CopyInformation(raw_image)
    image, labels, reorientation = geometry.canonical_orientation(image, labels)
    values = sitk.GetArrayFromImage(image)
    internal = sitk.GetArrayFromImage(labels)
    if not has_blood:  # in-plane holes: only meaningful once the slice axis is the last one
        internal = fill_blood_pool(internal)
        labels = sitk.GetImageFromArray(internal)
        labels.CopyInformation(image)

    return CanonicalCase(raw_image, image, labels, values, internal, reorientation, mask_format, structures)


def slices_with_myocardium_of(labels: np.ndarray) -> int:
    """How many slices (axis 0 of a (z, y, x) label array) hold a myocardium voxel (scar and grey zone included)."""
    return int(myocardium_of(labels).reshape(labels.shape[0], -1).any(axis=1).sum())


def check_myocardium_slices(labels: np.ndarray, mask_path: object) -> int:
    """The slices with myocardium of ``labels`` (internal, (z, y, x)); raises ``CaseError`` naming ``mask_path``
    when there are fewer than :data:`MIN_SLICES_WITH_MYOCARDIUM`.

    Example:
        >>> labels = np.zeros((4, 3, 3), np.uint8)
        >>> labels[1, 1, 1:] = MYOCARDIUM
        >>> check_myocardium_slices(labels, "masks/P01.nii.gz")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        lgerisk.errors.CaseError: masks/P01.nii.gz: the myocardium is labelled on only 1 slice (2 voxels); ...
    """
    count = slices_with_myocardium_of(labels)
    if count < MIN_SLICES_WITH_MYOCARDIUM:
        voxels = int(myocardium_of(labels).sum())
        raise CaseError(
            f"{mask_path}: the myocardium is labelled on only {count} slice{'' if count == 1 else 's'} "
            f"({voxels} voxel{'' if voxels == 1 else 's'}); a short-axis stack with the myocardium on "
            f"{MIN_SLICES_WITH_MYOCARDIUM} or more slices is needed."
        )
    return count


def check_masks_fit(
    masks: Sequence[Path | None], config: PreprocessConfig, where: str, names: bool = True
) -> PartialMapWatch | None:
    """Stop (``InputError``, one sentence) a batch whose first masks show that ``config``'s label map cannot fit
    them, before any work: label images by their labels, and with ``names`` DICOM SEG/RTSTRUCT masks by their
    structure names. The sentence names the preset that fits the masks where one does (``labels='myops'``).

    Returns the ``stop_if`` for ``run_batch`` that stops the batch once more masks show the map leaves labels
    unnamed, or ``None`` where that is allowed (scar from intensity asked for explicitly: ``scar_method`` in
    :data:`~lgerisk.preprocess.config.INTENSITY_SCAR_METHODS`).
    """
    from lgerisk.io.dicom_masks import check_names_fit, first_structure_names

    label_map = parse_label_map(config.labels)
    allow_unnamed = config.scar_method in INTENSITY_SCAR_METHODS
    check_map_fits(first_mask_labels(masks), label_map, where, allow_unnamed)
    if names:
        check_names_fit(first_structure_names(masks), label_map, where, scar_auto=config.scar_method == "auto")
    return None if allow_unnamed else PartialMapWatch(label_map, where)


def preprocess_case(case: Case, config: PreprocessConfig) -> PreprocessedCase:
    """Read one raw case and return it canonical, with QC; raises ``CaseError`` on bad input.

    Example:
        >>> result = preprocess_case(cohort.cases[0], PreprocessConfig())       # doctest: +SKIP
        >>> result.qc["scar_percent"]                                            # doctest: +SKIP
    """
    import SimpleITK as sitk

    from lgerisk.io.formats import is_dicom_mask
    from lgerisk.io.provenance import scan_is_synthetic

    label_map = parse_label_map(config.labels)
    from_names = is_dicom_mask(case.mask)
    method = resolve_scar_method(config.scar_method, label_map, from_names)
    scar_named = label_map.names_scar if from_names else label_map.has_scar
    canonical = read_canonical(case, label_map)
    raw_image, image, labels = canonical.raw_image, canonical.image, canonical.labels
    values, internal, reorientation = canonical.values, canonical.internal, canonical.reorientation
    check_myocardium_slices(internal, case.mask)

    spacing = image.GetSpacing()
    calibration = None
    rules = ScarRules()
    if method == "calibrated":
        from lgerisk.preprocess.calibration import load_calibration

        calibration = load_calibration(config.scar_calibration)
        rules = calibration.rules()
    scar = quantify_scar(
        values,
        internal,
        "fwhm" if method == "calibrated" else method,
        nsd=config.nsd,
        greyzone_nsd=config.greyzone_nsd,
        remote=config.remote_method,
        smoothing_mm=config.scar_smoothing_mm,
        spacing=spacing,
        rules=rules,
    )
    refined = sitk.GetImageFromArray(scar.labels)
    refined.CopyInformation(labels)
    volumes = tissue_volumes_ml(scar.labels, float(np.prod(spacing)))
    blood = scar.labels == BLOOD
    blood_mean = float(values[blood].mean()) if blood.any() else float("nan")

    reference = geometry.crop_grid(
        image, geometry.lv_centre_index(scar.labels), config.inplane_spacing_mm, config.crop_size
    )
    background = float(np.percentile(values, 1))
    cropped = geometry.resample_image(image, reference, default=background)
    cropped_labels = geometry.resample_labels(refined, reference, (BLOOD, MYOCARDIUM, SCAR, NOREFLOW, GREYZONE))
    crop_values = sitk.GetArrayFromImage(cropped)
    normalisation = fit_normalisation(config.normalisation, scar.remote.mean, blood_mean, crop_values, str(case.image))
    normalised = sitk.GetImageFromArray(normalisation.apply(crop_values))
    normalised.CopyInformation(reference)

    myocardium_ml = volumes["myocardium_volume_ml"]
    kept_fraction = geometry.fraction_inside(myocardium_of(scar.labels), image, reference)
    warnings = []
    if kept_fraction < CROP_KEEP_WARNING:
        warnings.append(
            f"only {100 * kept_fraction:.1f} % of the myocardium lies inside the "
            f"{config.crop_size}-voxel crop; consider a larger crop_size"
        )
    slices_with_myocardium = slices_with_myocardium_of(scar.labels)
    if slices_with_myocardium < 3:
        warnings.append(f"myocardium is labelled on only {slices_with_myocardium} slice(s)")

    label_scar = np.isin(internal, (SCAR, NOREFLOW))
    confidence = (
        None
        if method == "label"
        else derived_confidence(
            scar,
            values,
            internal,
            config,
            spacing,
            blood_median_of(values, internal),
            slices_with_myocardium,
            _percent(volumes["scar_volume_ml"], myocardium_ml),
            rules,
        )
    )
    qc: dict[str, object] = {
        "case_id": case.case_id,
        "lgerisk_version": __version__,
        "settings_hash": config.settings_hash(),
        "settings": config.to_dict(),
        "image_sha256": source_hash(case.image),
        "mask_sha256": source_hash(case.mask),
        "source_image": source_name(case.image),
        "synthetic": scan_is_synthetic(case.image),  # from the generator's own marker on the source scan
        "scar_method": method,
        "label_map": label_map.to_spec(),
        "mask_format": canonical.mask_format,
        "mask_structures": canonical.structures,
        **{key: round(value, 4) for key, value in volumes.items()},
        "myocardium_mass_g": round(myocardium_ml * MYOCARDIAL_DENSITY_G_PER_ML, 4),
        "scar_percent": _percent(volumes["scar_volume_ml"], myocardium_ml),
        "noreflow_percent": _percent(volumes["noreflow_volume_ml"], myocardium_ml),
        "greyzone_percent": _percent(volumes["greyzone_volume_ml"], myocardium_ml),
        "scar_label_dice": _rounded(dice(np.isin(scar.labels, (SCAR, NOREFLOW)), label_scar))
        if method != "label" and scar_named
        else None,
        "remote_method": scar.remote.method,
        "remote_mean": round(scar.remote.mean, 4),
        "remote_sd": round(scar.remote.sd, 4),
        "remote_fallback": scar.remote.fallback,
        "remote_fraction": round(scar.remote.remote_fraction, 4),
        "remote_voxels": scar.remote.voxel_count,
        "remote_path": scar.remote.path,
        "enhancement": scar.enhancement if method != "label" else None,
        "enhancement_separation": _rounded(scar.separation),
        "scar_confidence": None if confidence is None else confidence[0],
        "scar_flags": [] if confidence is None else list(confidence[1]),
        "second_opinion_scar_percent": None if confidence is None else confidence[2],
        "scar_calibration": None if calibration is None else calibration.summary(),
        "scar_smoothing_mm": config.scar_smoothing_mm if method in ("fwhm", "calibrated") else 0.0,
        "fwhm_peak": _rounded(scar.peak),
        "core_threshold": _rounded(scar.core_threshold),
        "greyzone_threshold": round(scar.greyzone_threshold, 4),
        "blood_pool_mean": _rounded(blood_mean),
        "normalisation": normalisation.method,
        "normalisation_offset": round(normalisation.offset, 6),
        "normalisation_scale": round(normalisation.scale, 6),
        "original_size": list(raw_image.GetSize()),
        "original_spacing_mm": [round(s, 6) for s in raw_image.GetSpacing()],
        "original_direction": [round(d, 6) for d in raw_image.GetDirection()],
        "slice_count": int(image.GetSize()[2]),
        "slice_spacing_mm": round(spacing[2], 6),
        "slices_with_myocardium": slices_with_myocardium,
        "axis_order": list(reorientation.axis_order),
        "slices_flipped": reorientation.slices_flipped,
        "crop_size": config.crop_size,
        "crop_spacing_mm": config.inplane_spacing_mm,
        "myocardium_in_crop_fraction": round(kept_fraction, 4),
        "warnings": warnings,
    }
    source = source_grid_labels(scar.labels, reorientation) if Path(case.image).is_dir() else None
    return PreprocessedCase(case.case_id, normalised, cropped_labels, cast("JSONDict", qc), source)  # JSON values


def blood_median_of(values: np.ndarray, labels: np.ndarray) -> float | None:
    """The blood pool's median intensity (``None`` without a blood pool)."""
    blood = labels == BLOOD
    return float(np.median(values[blood])) if blood.any() else None


def derived_confidence(
    scar: ScarResult,
    values: np.ndarray,
    labels: np.ndarray,
    config: PreprocessConfig,
    spacing: tuple[float, ...],
    blood_median: float | None,
    slices_with_myocardium: int,
    scar_percent: float,
    rules: ScarRules,
) -> tuple[str, tuple[str, ...], float | None]:
    """A derived scar's confidence, flags and second opinion (the other derived method's scar %: ``nsd`` with
    n = ``CHECK_NSD`` beside ``fwhm``, ``fwhm`` beside ``nsd``); see ``lgerisk.preprocess.scar.scar_flags``."""
    second_method = "nsd" if scar.method == "fwhm" else "fwhm"
    second = quantify_scar(
        values,
        labels,
        second_method,
        nsd=CHECK_NSD,
        greyzone_nsd=config.greyzone_nsd,
        remote=config.remote_method,
        smoothing_mm=config.scar_smoothing_mm,
        spacing=spacing,
    )
    myocardium = int(myocardium_of(labels).sum())
    second_percent = round(100.0 * int(np.isin(second.labels, (SCAR, NOREFLOW)).sum()) / max(myocardium, 1), 4)
    flags = scar_flags(scar, blood_median, slices_with_myocardium, scar_percent, second_percent, rules.min_separation)
    return scar_confidence(flags), flags, second_percent


def _percent(part: float, whole: float) -> float:
    return round(100.0 * part / whole, 4) if whole else 0.0


def _rounded(value: float | None) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    return round(float(value), 4)


def remove_stale_temporaries(folder: Path) -> None:
    """Delete temporary files a killed writer left in ``folder`` (names start with '.' and hold '.tmp')."""
    if folder.is_dir():
        for leftover in folder.glob(".*.tmp*"):
            leftover.unlink(missing_ok=True)


def write_case(result: PreprocessedCase, out: Path, seg_image: Path | None = None) -> Path:
    """Write image, mask, with ``seg_image`` (the case's DICOM series) the DICOM SEG of its scar and grey
    zone, then QC JSON (the completion marker), each atomically."""
    from lgerisk.io.dicom_seg import SEG_FILE, write_scar_seg

    folder = case_dir(out, result.case_id)
    remove_stale_temporaries(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / QC_FILE).unlink(missing_ok=True)  # the case is incomplete until the new QC lands
    (folder / SEG_FILE).unlink(missing_ok=True)  # never a SEG of older inputs beside new results
    write_image(folder / IMAGE_FILE, result.image)
    write_image(folder / MASK_FILE, result.labels)
    if seg_image is not None and result.source_labels is not None:
        write_scar_seg(folder / SEG_FILE, seg_image, result.source_labels, str(result.qc.get("scar_method")))
    write_json(folder / QC_FILE, result.qc)
    return folder


def is_case_done(case: Case, out: Path, config: PreprocessConfig, dicom_seg: bool = False) -> bool:
    """Whether ``out`` already holds this case from the same inputs and settings (and, with ``dicom_seg``,
    its DICOM SEG when the scan is a DICOM series)."""
    from lgerisk.batch import read_record
    from lgerisk.io.dicom_seg import SEG_FILE, has_dicom_series

    folder = case_dir(out, case.case_id)
    qc = read_record(folder / QC_FILE, config.settings_hash())
    names = (IMAGE_FILE, MASK_FILE) + ((SEG_FILE,) if dicom_seg and has_dicom_series(case.image) else ())
    return qc is not None and inputs_unchanged(qc, case) and all((folder / name).is_file() for name in names)


def run_case(case: Case, out: str | os.PathLike[str], config: PreprocessConfig, dicom_seg: bool = False) -> JSONDict:
    """Preprocess and write one case (with ``dicom_seg``, also the DICOM SEG of its scar and grey zone over
    its DICOM series; a scan that is no DICOM series gets a warning instead); returns its QC (the batch
    runner's unit of work).

    The case's old QC goes first, so a rerun that fails leaves no stale row behind; but another scan already
    preprocessed under the case's id is never replaced (``check_one_source``)."""
    from lgerisk.io.dicom_seg import NOT_DICOM_WARNING, has_dicom_series

    check_one_source(case, Path(out))
    (case_dir(Path(out), case.case_id) / QC_FILE).unlink(missing_ok=True)
    result = preprocess_case(case, config)
    seg_image = Path(case.image) if dicom_seg and has_dicom_series(case.image) else None
    if dicom_seg and seg_image is None:
        cast("list[JSONValue]", result.qc["warnings"]).append(NOT_DICOM_WARNING)
    write_case(result, Path(out), seg_image)
    return result.qc
