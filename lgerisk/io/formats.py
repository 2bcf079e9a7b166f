"""What kind of file a path is, told without reading it as an image: the volume suffixes lgerisk reads, and
whether a file is a DICOM SEG or RTSTRUCT object (which ``lgerisk.io.dicom_masks`` reads as a mask).

The lowest layer of ``lgerisk.io``: the scan readers, the label maps and the DICOM readers all ask it, and it
asks none of them.
"""

from __future__ import annotations

import os
from pathlib import Path

from lgerisk.errors import CaseError

SCAN_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
"""File suffixes read as single-file volumes; a folder is read as a DICOM series."""


SEG_SOP_CLASSES = ("1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.66.7")
"""Segmentation Storage and Label Map Segmentation Storage."""
RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
KIND_NAMES = {"seg": "DICOM SEG", "rtstruct": "RTSTRUCT"}


def dicom_object_kind(path: str | os.PathLike[str]) -> str | None:
    """``"seg"`` or ``"rtstruct"`` for a DICOM SEG or RTSTRUCT file, else ``None`` (label images are
    told by their suffix without being opened)."""
    path = Path(path)
    if not path.is_file() or path.name.lower().endswith(SCAN_SUFFIXES):
        return None
    try:
        with path.open("rb") as handle:
            handle.seek(128)
            magic = handle.read(4)
    except OSError:
        return None
    if magic != b"DICM" and path.suffix.lower() != ".dcm":
        return None
    import pydicom

    try:
        header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID", "Modality"])
    except Exception:  # noqa: BLE001 - not readable as DICOM: not a DICOM mask
        return None
    sop_class = str(header.get("SOPClassUID") or getattr(header.get("file_meta"), "MediaStorageSOPClassUID", ""))
    modality = str(header.get("Modality") or "").upper()
    if sop_class in SEG_SOP_CLASSES or modality == "SEG":
        return "seg"
    if sop_class == RTSTRUCT_SOP_CLASS or modality == "RTSTRUCT":
        return "rtstruct"
    return None


def dicom_mask_file(path: str | os.PathLike[str] | None) -> Path | None:
    """The DICOM SEG or RTSTRUCT file that the mask ``path`` stands for: the file itself, or the one such
    file in a folder (a mask folder, or an image series folder holding its contours); ``None`` when
    ``path`` is a label image or a folder without one.

    Example:
        >>> dicom_mask_file("masks/P01.nii.gz") is None
        True
    """
    if path is None:
        return None
    path = Path(path)
    if path.is_file():
        return path if dicom_object_kind(path) else None
    if path.is_dir():
        found = [
            item
            for item in sorted(path.iterdir())
            if item.is_file() and not item.name.startswith(".") and dicom_object_kind(item)
        ]
        if len(found) > 1:
            raise CaseError(
                f"{path}: folder holds {len(found)} DICOM SEG/RTSTRUCT objects "
                f"({', '.join(item.name for item in found[:4])}); keep one per case."
            )
        return found[0] if found else None
    return None


def is_dicom_mask(path: str | os.PathLike[str] | None) -> bool:
    """Whether the mask ``path`` is (or is a folder holding) a DICOM SEG or RTSTRUCT."""
    try:
        return dicom_mask_file(path) is not None
    except CaseError:
        return True  # several objects: a DICOM mask, refused when it is read
