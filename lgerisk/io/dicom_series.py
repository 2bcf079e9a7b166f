"""What lgerisk reads from a DICOM image series' headers: the UIDs and geometry that match masks to it.

Only the attributes in ``SERIES_TAGS`` are read (pydicom, pixel data skipped): the study, series,
instance and frame-of-reference UIDs and the slice geometry. They are used in memory to match a DICOM
SEG or RTSTRUCT mask to its series, and to reference the series from a SEG lgerisk writes
(``lgerisk.io.dicom_seg``); no patient attribute (name, ID, birth date, sex, dates, institution) is
ever read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lgerisk.errors import CaseError
from lgerisk.io.scans import dicom_series_files

if TYPE_CHECKING:  # pragma: no cover
    from pydicom.dataset import Dataset

SERIES_TAGS = (
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "FrameOfReferenceUID",
    "Modality",
    "Rows",
    "Columns",
    "PixelSpacing",
    "ImageOrientationPatient",
    "ImagePositionPatient",
    "SliceThickness",
    "InstanceNumber",
)
"""The only header attributes read from the slices of an image series."""


@dataclass(frozen=True)
class SeriesReference:
    """The identity of one DICOM image series: slice ``k`` of the image read by ``read_volume`` is
    ``sop_instance_uids[k]``; ``headers`` hold nothing but ``SERIES_TAGS`` (pydicom datasets)."""

    folder: Path
    study_uid: str
    series_uid: str
    frame_of_reference_uid: str | None
    sop_class_uids: tuple[str, ...]
    sop_instance_uids: tuple[str, ...]
    headers: tuple[Dataset, ...]

    def slice_index(self) -> dict[str, int]:
        """SOP Instance UID -> slice index."""
        return {uid: k for k, uid in enumerate(self.sop_instance_uids)}


def read_series_reference(folder: str | os.PathLike[str]) -> SeriesReference:
    """The UIDs of the image series in ``folder`` (slice order as ``read_volume`` reads it).

    Example:
        >>> reference = read_series_reference("cohort/P01")          # doctest: +SKIP
        >>> len(reference.sop_instance_uids)                          # doctest: +SKIP
        12
    """
    import pydicom
    from pydicom.dataset import Dataset

    folder = Path(folder)
    headers = []
    for file in dicom_series_files(folder):
        try:
            raw = pydicom.dcmread(file, stop_before_pixels=True, specific_tags=list(SERIES_TAGS))
        except (OSError, pydicom.errors.InvalidDicomError) as exc:
            raise CaseError(f"{folder}: DICOM header of {Path(file).name} could not be read ({exc}).") from exc
        kept = Dataset()
        for keyword in SERIES_TAGS:
            if keyword in raw:
                setattr(kept, keyword, raw[keyword].value)
        headers.append(kept)
    first = headers[0]
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        if not all(str(h.get(keyword) or "") for h in headers):
            raise CaseError(f"{folder}: a slice of the DICOM series has no {keyword}.")
    frame = str(first.get("FrameOfReferenceUID") or "") or None
    return SeriesReference(
        folder=folder,
        study_uid=str(first.StudyInstanceUID),
        series_uid=str(first.SeriesInstanceUID),
        frame_of_reference_uid=frame,
        sop_class_uids=tuple(str(h.get("SOPClassUID") or "") for h in headers),
        sop_instance_uids=tuple(str(h.SOPInstanceUID) for h in headers),
        headers=tuple(headers),
    )
