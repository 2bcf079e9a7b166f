"""Outputs a clinician's viewer loads: lgerisk's scar and grey zone as a DICOM SEG over the source series.

The SEG (BINARY, written with highdicom) has two segments on the slices of the scan's own DICOM series:
1 ``Scar`` (scar core and no-reflow: what ``scar_percent`` counts) and 2 ``Grey zone``. Its frames
reference their source slices by SOP Instance UID, so a viewer (3D Slicer, OHIF, a PACS) overlays it on
the series it came from.

What the SEG keeps from the source series (``KEPT_ATTRIBUTES``), and nothing else: the Study Instance UID
(so the SEG joins the scan's study), the Series Instance UID, the SOP Class and SOP Instance UIDs of every
slice (the references), the Frame of Reference UID, and the slice geometry (orientation, positions, pixel
spacing, slice thickness, rows, columns). The patient and study attributes a SEG must carry are written
empty (``EMPTIED_ATTRIBUTES``): patient name, ID, birth date and sex, study date and time, study ID,
accession number, referring physician. The headers are read through a whitelist
(``lgerisk.io.dicom_series.SERIES_TAGS``), so no other source attribute can be copied. New in the SEG:
its own Series and SOP Instance UIDs (derived from the source series UID and the segmentation, so the
same result gets the same UIDs), content date and time (when it was written), ``Manufacturer`` lgerisk
and its version, the series description and the segment descriptions. ``anonymise=True`` writes no DICOM.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lgerisk.errors import CaseError, InputError
from lgerisk.io.atomic import atomic_path
from lgerisk.io.labels import GREYZONE, NOREFLOW, SCAR
from lgerisk.version import __version__

if TYPE_CHECKING:  # pragma: no cover
    import highdicom as hd
    from highdicom.sr import CodedConcept
    from pydicom.dataset import Dataset
    from pydicom.sr.coding import Code

SEG_FILE = "scar_seg.dcm"
"""Name of the SEG in a case's output folder (preprocess, explain)."""

SEGMENTS = (("Scar", (SCAR, NOREFLOW)), ("Grey zone", (GREYZONE,)))
"""The SEG's segments (numbered from 1) and the internal labels each holds."""

KEPT_ATTRIBUTES = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPClassUID",
    "SOPInstanceUID",
    "FrameOfReferenceUID",
    "ImageOrientationPatient",
    "ImagePositionPatient",
    "PixelSpacing",
    "SliceThickness",
    "Rows",
    "Columns",
)
"""Source-series attributes a written SEG carries (as references or geometry)."""

EMPTIED_ATTRIBUTES = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
)
"""Attributes a SEG must have (DICOM type 2) that lgerisk writes empty."""

SERIES_NUMBER = 9901
SERIES_DESCRIPTION = "lgerisk scar and grey zone (research use, not for diagnosis)"


def dicom_seg_wanted(dicom_seg: bool, anonymise: bool) -> bool:
    """Whether to write DICOM SEGs: ``dicom_seg``, refused together with ``anonymise`` (which writes no
    DICOM at all).

    Example:
        >>> dicom_seg_wanted(True, False), dicom_seg_wanted(False, True)
        (True, False)
    """
    if dicom_seg and anonymise:
        raise InputError(
            "anonymise=True writes no DICOM at all, so it cannot go with dicom_seg=True; drop one of them.",
            setting="dicom_seg",
        )
    return dicom_seg


def has_dicom_series(image: str | os.PathLike[str]) -> bool:
    """Whether a case's image is a DICOM series folder (what a SEG can reference)."""
    return Path(image).is_dir()


def check_seg_sources(images: Sequence[str | os.PathLike[str]], where: str) -> None:
    """``InputError`` when ``dicom_seg`` is asked for and no image is a DICOM series (nothing to reference)."""
    if images and not any(has_dicom_series(image) for image in images):
        raise InputError(
            f"{where}: dicom_seg=True writes a DICOM SEG over the DICOM series of each scan, and no scan here "
            "is a DICOM series folder (NIfTI/NRRD/MHA scans have none); drop dicom_seg=True.",
            setting="dicom_seg",
        )


NOT_DICOM_WARNING = "no DICOM SEG written: the scan is not a DICOM series"
PREPROCESSED_WARNING = "no DICOM SEG written: the scan was given preprocessed; give its DICOM series and mask"


def _codes() -> tuple[Code, Code, CodedConcept]:
    """(category, scar type, grey-zone type) coded concepts."""
    from highdicom.sr import CodedConcept
    from pydicom.sr.codedict import codes

    category = codes.SCT.MorphologicallyAbnormalStructure
    greyzone = CodedConcept(value="GREYZONE", scheme_designator="99LGERISK", meaning="Peri-infarct grey zone")
    return category, codes.SCT.Scar, greyzone


def _descriptions(scar_method: str) -> list[hd.seg.SegmentDescription]:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    category, scar_type, greyzone_type = _codes()
    version = __version__
    thresholds = hd.AlgorithmIdentificationSequence(
        name="lgerisk scar quantification",
        version=version,
        family=codes.cid7162.HistogramAnalysis,
        parameters={"scar_method": scar_method},
    )
    manual = scar_method == "label"  # the scar is the reader's own, from the input mask
    scar = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label=SEGMENTS[0][0],
        segmented_property_category=category,
        segmented_property_type=scar_type,
        algorithm_type="MANUAL" if manual else "AUTOMATIC",
        algorithm_identification=None if manual else thresholds,
    )
    greyzone = hd.seg.SegmentDescription(
        segment_number=2,
        segment_label=SEGMENTS[1][0],
        segmented_property_category=category,
        segmented_property_type=greyzone_type,
        algorithm_type="AUTOMATIC",
        algorithm_identification=thresholds,
    )
    return [scar, greyzone]


def _uid(*parts: str) -> str:
    """A deterministic UID: ``2.25.`` and a 128-bit hash of ``parts`` as a decimal (the UUID-derived form).

    Example:
        >>> _uid("a", "b") == _uid("a", "b") != _uid("a", "c")
        True
    """
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]
    return f"2.25.{int(digest, 16)}"


def _source_datasets(headers: Sequence[Dataset]) -> list[Dataset]:
    """Whitelisted copies of the slice headers, patient and study attributes empty."""
    from pydicom.dataset import Dataset

    sources = []
    for header in headers:
        source = Dataset()
        for keyword in KEPT_ATTRIBUTES + ("Modality",):
            if keyword in header:
                setattr(source, keyword, header[keyword].value)
        for keyword in EMPTIED_ATTRIBUTES:
            setattr(source, keyword, "")
        sources.append(source)
    return sources


def scar_seg(image: str | os.PathLike[str], labels: np.ndarray, scar_method: str) -> hd.seg.Segmentation:
    """The DICOM SEG (a highdicom ``Segmentation``) of ``labels`` (internal labels 1-5, z, y, x, on the grid
    of the DICOM series folder ``image``, slice k = the series' slice k).

    Example:
        >>> scar_seg("cohort/P01", source_labels, "label").NumberOfFrames     # doctest: +SKIP
    """
    import highdicom as hd

    from lgerisk.io.dicom_series import read_series_reference

    series = read_series_reference(image)
    expected = (len(series.sop_instance_uids), int(series.headers[0].Rows), int(series.headers[0].Columns))
    if labels.shape != expected:
        raise CaseError(f"{image}: the labels ({labels.shape}) do not fit the DICOM series ({expected}).")
    if not series.frame_of_reference_uid:
        raise CaseError(
            f"{image}: the DICOM series has no Frame of Reference UID, which a DICOM SEG must reference; "
            "no SEG can be written for it (rerun without dicom_seg=True).",
            setting="dicom_seg",
        )
    pixels = np.stack([np.isin(labels, values) for _, values in SEGMENTS], axis=-1).astype(np.uint8)
    digest = hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest()
    try:
        return hd.seg.Segmentation(
            source_images=_source_datasets(series.headers),
            pixel_array=pixels,
            segmentation_type="BINARY",
            segment_descriptions=_descriptions(scar_method),
            series_instance_uid=_uid("lgerisk-seg-series", series.series_uid, scar_method, digest),
            series_number=SERIES_NUMBER,
            sop_instance_uid=_uid("lgerisk-seg-instance", series.series_uid, scar_method, digest),
            instance_number=1,
            manufacturer="lgerisk",
            manufacturer_model_name="lgerisk",
            software_versions=__version__,
            device_serial_number="none",
            series_description=SERIES_DESCRIPTION,
            content_label="LGERISK_SCAR",
            content_description=f"scar ({scar_method}) and grey zone by lgerisk",
            omit_empty_frames=bool(pixels.any()),
        )  # no scar and no grey zone: every (empty) frame is kept
    except (ValueError, TypeError, AttributeError) as exc:
        raise CaseError(
            f"{image}: no DICOM SEG could be made over this series ({' '.join(str(exc).split())[:120]})."
        ) from exc


def write_scar_seg(
    path: str | os.PathLike[str], image: str | os.PathLike[str], labels: np.ndarray, scar_method: str
) -> Path:
    """Write the scar / grey-zone SEG of ``labels`` over the series ``image`` to ``path`` atomically."""
    dataset = scar_seg(image, labels, scar_method)
    with atomic_path(path) as tmp:
        dataset.save_as(tmp, enforce_file_format=True)
    return Path(path)
