"""Where a scan's segmentation lies when no ``mask`` is given, and the ``Case`` of a lone scan.

Conventions, tried in order for a scan ``DIR/X.ext`` (``.nii.gz``, ``.nii``, ``.nrrd``, ``.mha``, ...):

1. ``DIR/X_seg.ext``, ``DIR/X_mask.ext``, ``DIR/X_label.ext``, ``DIR/X_labels.ext`` (any supported extension,
   or ``.dcm``: a DICOM SEG or RTSTRUCT);
2. EMIDEC: ``ID/Images/ID.nii.gz`` -> ``ID/Contours/ID.nii.gz``;
3. the cohort layout: ``images/X.ext`` -> ``masks/X.*`` or ``labels/X.*`` (or a folder ``masks/X/``);
4. a DICOM series folder ``X/``: the one DICOM SEG or RTSTRUCT file inside it.
"""

from __future__ import annotations

import os
from pathlib import Path

from lgerisk.errors import CaseError, InputError
from lgerisk.io.cohort import Case, check_case_id, mask_stem
from lgerisk.io.scans import scan_stem

SUFFIXES = ("_seg", "_mask", "_label", "_labels")
EXTENSIONS = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd", ".dcm")


def find_mask(scan: str | Path) -> Path | None:
    """The segmentation beside ``scan`` by the conventions above, or ``None``.

    Example:
        >>> find_mask("cohort/P01.nii.gz")          # doctest: +SKIP
        PosixPath('cohort/P01_seg.nii.gz')
    """
    scan = Path(scan)
    stem, folder = scan_stem(scan), scan.parent
    for suffix in SUFFIXES:
        for extension in EXTENSIONS:
            candidate = folder / f"{stem}{suffix}{extension}"
            if candidate.is_file():
                return candidate
    if folder.name == "Images":
        candidate = folder.parent / "Contours" / scan.name
        if candidate.is_file():
            return candidate
    if folder.name == "images":
        for name in ("masks", "labels"):
            other = folder.parent / name
            if other.is_dir():
                for candidate in sorted(other.glob(f"{stem}.*")):
                    if mask_stem(candidate) == stem and candidate.is_file():
                        return candidate
                if (other / stem).is_dir():
                    return other / stem
    if scan.is_dir():
        from lgerisk.io.formats import dicom_mask_file

        try:
            return dicom_mask_file(scan)
        except CaseError:
            return scan  # several SEG/RTSTRUCT objects in it: reading the mask says so
    return None


def scan_case(scan: str | os.PathLike[str], mask: str | os.PathLike[str] | None = None) -> Case:
    """The ``Case`` of one scan: its id is the file's stem (never the path), its mask given or found."""
    scan = Path(scan)
    if not scan.exists():
        raise InputError(f"{scan}: no such file or folder.")
    if scan.is_dir() and not any(scan.iterdir()):
        raise InputError(f"{scan}: folder is empty.")
    found = Path(mask) if mask is not None else find_mask(scan)
    if found is None:
        raise InputError(
            f"{scan}: no segmentation found; give it as mask=FILE, or put it beside the scan as "
            f"{scan_stem(scan)}_seg.nii.gz (see docs/commands.md, 'Masks').",
            setting="mask",
        )
    if not found.exists():
        raise InputError(f"{found}: mask file does not exist.")
    stem = scan_stem(scan) if scan.is_file() else scan.name
    case_id = check_case_id("".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in stem), str(scan))
    return Case(case_id, scan, found)


def cases_to_score(
    scans: list[Path] | None, data: str | os.PathLike[str] | None, mask: str | os.PathLike[str] | None = None
) -> list[Case]:
    """The cases ``predict`` or ``explain`` is given: scan files (``mask`` with a single one; else each mask
    found beside its scan) or a cohort ``data``, one of the two; ``InputError`` for both, neither, a mask
    with several scans, or two scans under one case id.

    Example:
        >>> [c.case_id for c in cases_to_score([Path("sample_data/images/synth-0001.nii.gz")], None)]
        ['synth-0001']
    """
    if bool(scans) == (data is not None):
        raise InputError("give scan files or data=COHORT (one of the two).", setting="data")
    if data is not None:
        from lgerisk.io.cohort import discover_cohort

        return list(discover_cohort(data).cases)
    assert scans is not None  # bool(scans) is True here (checked above)
    if mask is not None and len(scans) != 1:
        raise InputError("mask= goes with a single scan; for several, put each mask beside its scan.", setting="mask")
    cases = [scan_case(scan, mask) for scan in scans]
    seen: dict[str, Path] = {}
    for case in cases:
        if case.case_id in seen:
            raise InputError(f"{case.image}: same case id {case.case_id!r} as {seen[case.case_id]}; rename one.")
        seen[case.case_id] = Path(case.image)
    return cases
