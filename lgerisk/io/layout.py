"""Where a preprocessed case lies and what it was made from: the file names of a case folder, the folder of a
case id, and the SHA-256 of the source scan and mask that ``qc.json`` records (so that a changed input is
redone and another scan under the same id is refused). Every stage that reads or writes a case folder asks
this module; it imports no stage.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Mapping

    from lgerisk.io.cohort import Case
    from lgerisk.types import JSONDict

IMAGE_FILE, MASK_FILE, QC_FILE = "image.nii.gz", "mask.nii.gz", "qc.json"
"""A case folder's image, label mask and QC record (the last written: the case's completion marker)."""


def case_dir(out: Path, case_id: str) -> Path:
    """Folder of one preprocessed case."""
    return out / "cases" / case_id


def source_hash(path: Path | None) -> str | None:
    """SHA-256 of a file's bytes, or of a DICOM folder's sorted file names and bytes."""
    if path is None:
        return None
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def source_name(path: str | os.PathLike[str]) -> str:
    """The absolute path of a case's source scan, as ``qc.json``'s ``source_image`` records it."""
    return os.path.abspath(path)


def other_source(record: Mapping[str, object], case: Case) -> str | None:
    """The scan a case's record (``qc.json``) was made from when that is another scan than ``case``'s under the
    same id (another path and other bytes), else ``None`` (the same scan, perhaps moved; or a record that does
    not say)."""
    earlier = record.get("source_image")
    if not isinstance(earlier, str) or earlier == source_name(case.image):
        return None
    try:
        if record.get("image_sha256") == source_hash(Path(case.image)):
            return None
    except OSError:
        pass
    return earlier


def inputs_unchanged(record: Mapping[str, object], case: Case) -> bool:
    """Whether ``record`` was made from the case's current image and mask (by SHA-256); a vanished
    input counts as changed (the case is then redone and the error names the file)."""
    try:
        return record.get("image_sha256") == source_hash(case.image) and record.get("mask_sha256") == source_hash(
            case.mask
        )
    except OSError:
        return False


def read_case_qc(image: str | os.PathLike[str]) -> JSONDict | None:
    """The QC record (``qc.json``) beside a preprocessed case's ``image.nii.gz``; None for any other image, or
    where the record is missing or unreadable."""
    image = Path(image)
    if image.name != IMAGE_FILE:
        return None
    try:
        qc = json.loads((image.parent / QC_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return qc if isinstance(qc, dict) else None
