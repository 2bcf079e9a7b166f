"""DICOM test objects: MR series (pydicom) with patient identifiers, DICOM SEG (highdicom) and RTSTRUCT
(pydicom) masks of the sample cases, and checks that no identifier reached a folder of outputs.

Series carry the identifiers in ``PATIENT`` (the SimpleITK-written series of tests/io/test_dicom.py carry
``SECRETS``' values too), so no-leak checks have something to find.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from lgerisk.io.labels import BLOOD, MYOCARDIUM, NOREFLOW, SCAR
from tests.helpers import SAMPLE_DATA

PATIENT = {
    "PatientName": "Doe^Jane",
    "PatientID": "SECRET-4711",
    "PatientBirthDate": "19500101",
    "InstitutionName": "St Example",
    "PatientSex": "F",
    "AccessionNumber": "ACC-4711",
    "ReferringPhysicianName": "Dr^Secret",
    "StudyDate": "20200102",
    "StudyTime": "101010",
    "StudyID": "S4711",
}
NAMES = {BLOOD: "LV blood pool", MYOCARDIUM: "LV myocardium", SCAR: "Scar", NOREFLOW: "MVO"}
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
RT_STRUCTURE_SET = "1.2.840.10008.5.1.4.1.1.481.3"
ORIGIN = (-120.0, -95.5, 40.25)


def uid(*parts: object) -> str:
    """A deterministic UID for test objects."""
    return "2.25." + str(int(hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:30], 16))


def write_series(
    folder: Path,
    array: np.ndarray,
    spacing: tuple[float, float, float],
    *,
    key: str,
    origin: tuple[float, float, float] = ORIGIN,
    direction: np.ndarray | None = None,
    frame_uid: str | None = None,
    reverse_names: bool = False,
) -> sitk.Image:
    """Write a (z, y, x) array as an MR series (a file a slice, patient identifiers included); returns the
    empty image whose geometry the series has. ``key`` seeds the UIDs; ``reverse_names`` names the files
    apex first, so file order is not slice order."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    folder.mkdir(parents=True, exist_ok=True)
    direction = np.eye(3) if direction is None else np.asarray(direction, float)
    origin_array = np.asarray(origin, float)
    count = array.shape[0]
    for k in range(count):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = MR_IMAGE
        ds.file_meta.MediaStorageSOPInstanceUID = uid(key, "slice", k)
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        for keyword, value in PATIENT.items():
            setattr(ds, keyword, value)
        ds.SOPClassUID, ds.SOPInstanceUID = MR_IMAGE, uid(key, "slice", k)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = uid(key, "study"), uid(key, "series")
        ds.FrameOfReferenceUID = frame_uid or uid(key, "frame")
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "MR", 3, k + 1
        ds.ImageOrientationPatient = [round(float(v), 8) for v in (*direction[:, 0], *direction[:, 1])]
        position = origin_array + direction[:, 2] * spacing[2] * k
        ds.ImagePositionPatient = [round(float(v), 6) for v in position]
        ds.PixelSpacing = [spacing[1], spacing[0]]
        ds.SliceThickness = spacing[2]
        ds.Rows, ds.Columns = array.shape[1:]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = np.ascontiguousarray(array[k]).astype("<i2").tobytes()
        name = f"IM{(count - 1 - k) if reverse_names else k:04d}.dcm"
        pydicom.dcmwrite(folder / name, ds, enforce_file_format=True)
    grid = sitk.Image(array.shape[2], array.shape[1], array.shape[0], sitk.sitkUInt8)
    grid.SetSpacing(spacing)
    grid.SetOrigin(tuple(origin_array))
    grid.SetDirection(tuple(direction.ravel()))
    return grid


def series_headers(folder: Path) -> list:
    """The slice datasets of a series in the order lgerisk reads its slices (identifiers and all)."""
    import pydicom

    from lgerisk.io.scans import dicom_series_files

    return [pydicom.dcmread(f, stop_before_pixels=True) for f in dicom_series_files(folder)]


def write_seg(
    path: Path,
    series: Path,
    labels: np.ndarray,
    names: dict[int, str] = NAMES,
    frame_uid: str | None = None,
    segmentation_type: str = "BINARY",
    fraction: float = 0.8,
) -> Path:
    """A DICOM SEG (highdicom; BINARY, FRACTIONAL or LABELMAP) of ``labels`` (z, y, x, slice k = series slice
    k): a segment per label value present, named by ``names``; ``frame_uid`` overrides the frame of reference."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    sources = series_headers(series)
    values = [v for v in sorted(names) if (labels == v).any()]
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=n,
            segment_label=names[v],
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Tissue,
            algorithm_type="MANUAL",
        )
        for n, v in enumerate(values, 1)
    ]
    pixels = np.stack([labels == v for v in values], axis=-1).astype(np.uint8)
    if segmentation_type == "FRACTIONAL":
        pixels = pixels.astype(np.float32) * fraction  # a probability of ``fraction`` inside each segment
    elif segmentation_type == "LABELMAP":
        pixels = np.zeros(labels.shape, np.uint8)
        for number, value in enumerate(values, 1):
            pixels[labels == value] = number
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=pixels,
        segmentation_type=segmentation_type,
        segment_descriptions=descriptions,
        series_instance_uid=uid(path.name, "seg series"),
        series_number=50,
        sop_instance_uid=uid(path.name, "seg"),
        instance_number=1,
        manufacturer="reader",
        manufacturer_model_name="reader",
        software_versions="1",
        device_serial_number="1",
    )
    if frame_uid is not None:
        seg.FrameOfReferenceUID = frame_uid
    path.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(path, enforce_file_format=True)
    return path


def outline(mask: np.ndarray) -> list[np.ndarray]:
    """Closed outlines (x, y in voxel indices) of a 2D mask: marching squares at 0.5, through the half-voxel
    points between a voxel inside and one outside (as reading software exports label outlines)."""
    import contourpy

    padded = np.pad(mask.astype(float), 1)
    lines = contourpy.contour_generator(z=padded, line_type=contourpy.LineType.Separate).lines(0.5)
    return [line[:-1] - 1.0 for line in lines if len(line) > 3]


def outline_through_centres(mask: np.ndarray) -> list[np.ndarray]:
    """Closed outlines of a 2D mask through the centres of its boundary voxels (the other way exporters draw
    them): each vertex of ``outline`` moved onto the centre of the voxel inside it lies between."""
    lines = []
    for line in outline(mask):
        points = []
        for x, y in line:
            pair = [(np.floor(x), y), (np.ceil(x), y)] if x != np.rint(x) else [(x, np.floor(y)), (x, np.ceil(y))]
            inside = [
                (px, py)
                for px, py in pair
                if 0 <= py < mask.shape[0] and 0 <= px < mask.shape[1] and mask[int(py), int(px)]
            ]
            if not points or points[-1] != inside[0]:
                points.append(inside[0])
        while len(points) > 1 and points[0] == points[-1]:
            points.pop()
        lines.append(np.asarray(points, float))
    return lines


def write_rtstruct(
    path: Path,
    series: Path,
    labels: np.ndarray,
    grid: sitk.Image,
    names: dict[int, str] = NAMES,
    *,
    decimals: int = 1,
    reference_slices: bool = True,
    frame_uid: str | None = None,
    slice_offset: int = 0,
    extra_roi: str | None = None,
    centres: bool = False,
) -> Path:
    """An RTSTRUCT (pydicom) outlining each label of ``labels`` (z, y, x on ``grid``) on each slice: ContourData
    in patient mm rounded to ``decimals``, ContourImageSequence referencing the slice (unless
    ``reference_slices`` is false); ``slice_offset`` shifts the contours by whole slices; ``extra_roi`` adds
    an ROI of that name (a copy of the myocardium); ``centres``: outlines through the boundary voxels' centres."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian

    sources = series_headers(series)
    first = sources[0]
    frame = frame_uid or str(first.FrameOfReferenceUID)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = RT_STRUCTURE_SET
    ds.file_meta.MediaStorageSOPInstanceUID = uid(path.name, "rt")
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = RT_STRUCTURE_SET, uid(path.name, "rt"), "RTSTRUCT"
    for keyword in PATIENT:
        setattr(ds, keyword, first.get(keyword, ""))
    ds.StudyInstanceUID, ds.SeriesInstanceUID = first.StudyInstanceUID, uid(path.name, "rt series")
    ds.SeriesNumber, ds.InstanceNumber, ds.StructureSetLabel = 60, 1, "LV contours"
    reference = Dataset()
    reference.FrameOfReferenceUID = frame
    study = Dataset()
    study.ReferencedSOPClassUID, study.ReferencedSOPInstanceUID = "1.2.840.10008.3.1.2.3.1", first.StudyInstanceUID
    series_item = Dataset()
    series_item.SeriesInstanceUID = first.SeriesInstanceUID
    images = []
    for source in sources:
        item = Dataset()
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = source.SOPClassUID, source.SOPInstanceUID
        images.append(item)
    series_item.ContourImageSequence = Sequence(images)
    study.RTReferencedSeriesSequence = Sequence([series_item])
    reference.RTReferencedStudySequence = Sequence([study])
    ds.ReferencedFrameOfReferenceSequence = Sequence([reference])
    rois, contours = [], []
    entries = [(value, name) for value, name in sorted(names.items()) if (labels == value).any()]
    if extra_roi is not None:
        entries.append((MYOCARDIUM, extra_roi))
    for number, (value, name) in enumerate(entries, 1):
        roi = Dataset()
        roi.ROINumber, roi.ReferencedFrameOfReferenceUID, roi.ROIName = number, frame, name
        roi.ROIGenerationAlgorithm = "MANUAL"
        rois.append(roi)
        item = Dataset()
        item.ReferencedROINumber, item.ROIDisplayColor = number, [255, 0, 0]
        item.ContourSequence = Sequence()
        for k in range(labels.shape[0]):
            for line in (outline_through_centres if centres else outline)(labels[k] == value):
                contour = Dataset()
                target = k + slice_offset
                if reference_slices and 0 <= target < len(sources):
                    image = Dataset()
                    image.ReferencedSOPClassUID = sources[target].SOPClassUID
                    image.ReferencedSOPInstanceUID = sources[target].SOPInstanceUID
                    contour.ContourImageSequence = Sequence([image])
                contour.ContourGeometricType = "CLOSED_PLANAR"
                points = [
                    grid.TransformContinuousIndexToPhysicalPoint((float(x), float(y), float(target))) for x, y in line
                ]
                contour.NumberOfContourPoints = len(points)
                contour.ContourData = [f"{v:.{decimals}f}" for point in points for v in point]
                item.ContourSequence.append(contour)
        contours.append(item)
    point = Dataset()  # a reference point ROI (no area): read past, never needs a name
    point.ROINumber, point.ReferencedFrameOfReferenceUID, point.ROIName = len(rois) + 1, frame, "sacardialRefPoint"
    rois.append(point)
    marker = Dataset()
    marker.ReferencedROINumber = point.ROINumber
    single = Dataset()
    single.ContourGeometricType, single.NumberOfContourPoints = "POINT", 1
    single.ContourData = [f"{v:.1f}" for v in grid.TransformContinuousIndexToPhysicalPoint((10.0, 10.0, 0.0))]
    marker.ContourSequence = Sequence([single])
    contours.append(marker)
    ds.StructureSetROISequence, ds.ROIContourSequence = Sequence(rois), Sequence(contours)
    path.parent.mkdir(parents=True, exist_ok=True)
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path


def sample_arrays(case: str) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """(image, labels, spacing) of a sample_data case."""
    image = sitk.ReadImage(str(SAMPLE_DATA / "images" / f"{case}.nii.gz"))
    labels = sitk.ReadImage(str(SAMPLE_DATA / "masks" / f"{case}.nii.gz"))
    return sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(labels), image.GetSpacing()


def dicom_case(
    root: Path,
    case: str,
    kind: str,
    *,
    inside: bool = False,
    direction: np.ndarray | None = None,
    key: str | None = None,
    **options,
) -> tuple[Path, Path]:
    """A sample_data case as a DICOM series ``root/case/`` and its mask as a ``kind`` ("seg" or "rtstruct")
    object: ``root/masks/case.dcm``, or, with ``inside``, ``root/case/contours.dcm``. Returns (series, mask).
    ``key`` seeds the UIDs (default: the case id, so the same case written twice is the same scan)."""
    image, labels, spacing = sample_arrays(case)
    series = root / case
    grid = write_series(series, image, spacing, key=key or case, direction=direction)
    path = series / "contours.dcm" if inside else root / "masks" / f"{case}.dcm"
    if kind == "seg":
        write_seg(path, series, labels, **options)
    else:
        write_rtstruct(path, series, labels, grid, **options)
    return series, path


# --- identifiers in outputs --------------------------------------------------------------------------

SECRETS = (b"Doe", b"Jane", b"SECRET-4711", b"19500101", b"St Example")
"""Identifying values every test series carries (``PATIENT`` here, ``IDENTIFIERS`` of tests/io/test_dicom.py)."""
MORE_SECRETS = (b"ACC-4711", b"Dr^Secret", b"S4711", b"20200102", b"101010")
"""The other identifying values the series, SEG and RTSTRUCT written here carry (``PATIENT``)."""


def all_leaks(folder: Path) -> list[str]:
    """Every identifier found in any file under ``folder`` (``leaks`` plus ``MORE_SECRETS``)."""
    found = []
    for path in (p for p in folder.rglob("*") if p.is_file()):
        found += leaks(path)
        found += [
            f"{secret!r} in {where}" for where, data, _ in all_bytes(path) for secret in MORE_SECRETS if secret in data
        ]
    return found


def all_bytes(path: Path) -> list[tuple[str, bytes, bool]]:
    """(description, bytes, is_random) for a file, plus its gzip-decompressed content; ``is_random``: compressed or
    voxel data (PNGs, the base64 images an HTML report embeds, gzip streams, float voxels), where a short string
    turns up by chance."""
    import base64
    import re

    raw = path.read_bytes()
    if path.suffix == ".png":
        return [(str(path), raw, True)]
    if path.suffix == ".html":
        pattern = rb"data:image/[a-z+]+;base64,([A-Za-z0-9+/=]+)"
        images = [(f"{path} (embedded image)", base64.b64decode(blob), True) for blob in re.findall(pattern, raw)]
        return [(str(path), re.sub(pattern, b"data:image", raw), False), *images]
    parts = [(str(path), raw, path.name.endswith(".gz"))]
    if raw[:2] == b"\x1f\x8b":
        inner = gzip.decompress(raw)
        if path.name.endswith(".nii.gz"):
            vox_offset = int(np.frombuffer(inner[108:112], "<f4")[0])
            parts += [
                (f"{path} (NIfTI header)", inner[:vox_offset], False),
                (f"{path} (NIfTI voxels)", inner[vox_offset:], True),
            ]
        else:
            parts.append((f"{path} (decompressed)", inner, False))
    return parts


def leaks(path: Path) -> list[str]:
    """Each of ``SECRETS`` found in the file (its raw bytes, and decompressed NIfTI header and voxels)."""
    found = []
    for where, data, voxels in all_bytes(path):
        for secret in SECRETS:
            if voxels and len(secret) < 4:
                # compressed streams, images and float voxels are near-random bytes, where a given 3-byte string
                # turns up by chance about once per 16 MB (once per 260 kB of base64 text); look for the full
                # name there instead.
                secret = b"Doe^Jane"
            if secret in data:
                found.append(f"{secret!r} in {where}")
    return found


# --- reading back -------------------------------------------------------------------------------------


def seg_pixels(path: Path, series: Path) -> dict[str, np.ndarray]:
    """The segments of a SEG, by label, on the slices of ``series`` (highdicom, by source SOP Instance UID)."""
    import highdicom as hd

    seg = hd.seg.segread(str(path))
    uids = [str(h.SOPInstanceUID) for h in series_headers(series)]
    pixels = seg.get_pixels_by_source_instance(uids, assert_missing_frames_are_empty=True)
    return {seg.get_segment_description(n).segment_label: pixels[..., i] > 0 for i, n in enumerate(seg.segment_numbers)}
