"""Masks from DICOM SEG and RTSTRUCT objects: matched to the image series, rasterised onto its grid.

A DICOM SEG (label maps, read with highdicom) or RTSTRUCT (polygons in patient mm, read with pydicom)
is accepted wherever a mask is: a file ``masks/ID.dcm``, a folder ``masks/ID/`` holding one such file,
the one SEG/RTSTRUCT file inside the series folder itself, a manifest's ``mask`` column, a scan's ``mask``.
Its image must be the DICOM series folder it was drawn on:

* **matching**: the object must reference the image series (its Series Instance UID, or the SOP
  Instance UIDs of its slices) and share its Frame of Reference UID;
* **SEG**: frames are placed by the SOP Instance UID of their source slice; a SEG whose frames do not
  reference source slices is placed by plane position, which must then fall on the image's grid;
* **RTSTRUCT**: each CLOSED_PLANAR contour is placed on its referenced slice (or, without a reference,
  the slice whose plane it lies in, within ``PLANE_TOLERANCE`` of the slice spacing) and rasterised:
  a voxel belongs to the ROI when its centre lies inside its contours by the even-odd rule (so an inner
  contour is a hole: a myocardial ring drawn as epicardial + endocardial contour), or on a contour line
  (within ``EDGE_TOLERANCE`` voxel; the line belongs to the ROI, also a hole's, as exporters that draw
  contours through the centres of the boundary voxels mean it). POINT and OPEN_PLANAR contours
  (reference points) carry no area and are skipped;
* **names**: segment labels / ROI names go through the label map's name map (``LabelMap.name_classes``:
  ``DEFAULT_NAMES`` plus the ``name:`` entries of ``labels``). Structures are painted in the order
  epicardium, myocardium, endocardium, blood pool, scar, no-reflow (a later one wins where they
  overlap), so scar drawn inside the myocardium stays scar. Structures with no voxels are not checked.

Every failure is one sentence naming the file (``CaseError``): no matching series, a differing frame of
reference, structure names the map does not know (listing the names found), contours on slices the
series lacks.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from lgerisk.errors import CaseError, InputError
from lgerisk.io.formats import (
    KIND_NAMES,
    dicom_mask_file,
    dicom_object_kind,
)
from lgerisk.io.labels import (
    BLOOD,
    MYOCARDIUM,
    NOREFLOW,
    SCAR,
    LabelMap,
    name_map_error,
    normalise_name,
    quoted_names,
)

if TYPE_CHECKING:  # pragma: no cover
    import highdicom as hd
    import SimpleITK as sitk
    from pydicom.dataset import Dataset, FileDataset

    from lgerisk.io.dicom_series import SeriesReference

PLANE_TOLERANCE = 0.25
"""A contour (or SEG frame) lies on a slice when it is within this fraction of the slice spacing of its plane."""
EDGE_TOLERANCE = 0.1
"""Voxel centres within this many voxels of a contour line lie on it (a contour drawn through voxel centres
and written at 0.1 mm lies within 0.05 mm of them; one outlining the voxels passes 0.35 voxel or more away)."""
GRID_TOLERANCE = 1e-3
"""Relative tolerance on orientation cosines and pixel spacing when SEG frames are placed by position."""

PAINT_ORDER = (
    ("epicardium", MYOCARDIUM),
    ("myocardium", MYOCARDIUM),
    ("endocardium", BLOOD),
    ("blood", BLOOD),
    ("scar", SCAR),
    ("noreflow", NOREFLOW),
)
"""Classes in the order they are painted (later wins); ``ignore`` is not painted."""


@dataclass(frozen=True)
class Structure:
    """One segment or ROI: its name and its voxels on the image grid (z, y, x)."""

    name: str
    voxels: np.ndarray


@dataclass(frozen=True)
class DicomMask:
    """A DICOM mask in internal labels on the image grid, and what it held."""

    labels: np.ndarray
    kind: str
    has_blood: bool
    structures: dict[str, int]


class NameMapMismatch(CaseError):
    """A DICOM mask whose structure names the name map does not fit; ``details`` hold the names, for
    batches that judge the map across cases (``lgerisk.io.labels.PartialMapWatch``)."""

    def __init__(self, message: str, mask: str, names: Sequence[str], unnamed: Sequence[str], fit: str) -> None:
        super().__init__(message, setting="labels")
        self.details = {"kind": "name_map", "fit": fit, "mask": mask, "names": list(names), "unnamed": list(unnamed)}


# ------------------------------------------------------------------------------------------------ finding


# ------------------------------------------------------------------------------------------------ reading


def read_dicom_mask(
    mask: str | os.PathLike[str], image: str | os.PathLike[str], grid: sitk.Image, label_map: LabelMap
) -> DicomMask:
    """The DICOM SEG or RTSTRUCT ``mask`` in internal labels (uint8, z, y, x) on the grid of ``image``
    (its DICOM series folder, read as ``grid``); ``CaseError`` in one sentence on any mismatch.

    Example:
        >>> read_dicom_mask("masks/P01.dcm", "P01", read_volume("P01"), PRESETS["emidec"])  # doctest: +SKIP
    """
    from lgerisk.io.dicom_series import read_series_reference

    file = dicom_mask_file(mask)
    if file is None:
        raise CaseError(f"{mask}: mask is not a DICOM SEG or RTSTRUCT.")
    kind = dicom_object_kind(file)
    assert kind is not None
    what = KIND_NAMES[kind]
    image = Path(image)
    if not image.is_dir():
        raise CaseError(
            f"{file}: a {what} mask is matched to its DICOM image series by UIDs, and the image "
            f"{image} is not a DICOM series folder; give the series folder, or a label-image mask."
        )
    series = read_series_reference(image)
    if len(series.sop_instance_uids) != grid.GetSize()[2]:
        raise CaseError(
            f"{image}: the series has {len(series.sop_instance_uids)} slices and the image read "
            f"from it {grid.GetSize()[2]}; put one series per folder."
        )
    try:
        if kind == "seg":
            structures = _seg_structures(file, series, grid)
        else:
            structures = _rtstruct_structures(file, series, grid)
    except CaseError:
        raise
    except (AttributeError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise CaseError(
            f"{file}: the {what} is malformed ({type(exc).__name__}: {' '.join(str(exc).split())[:100]})."
        ) from exc
    return paint(structures, label_map, file, what)


def paint(
    structures: Sequence[Structure], label_map: LabelMap, file: str | os.PathLike[str], what: str = "DICOM mask"
) -> DicomMask:
    """Structures -> internal labels by the map's names, in ``PAINT_ORDER``; refuses names the map does
    not know and a mask without myocardium (``NameMapMismatch``).

    Example:
        >>> ring = Structure("LV Myocardium", np.array([[[0, 1, 1]]], bool))
        >>> paint([ring], LabelMap(myocardium=(2,)), "rt.dcm").labels.tolist()
        [[[0, 2, 2]]]
    """
    classes = label_map.name_classes()
    present = [s for s in structures if s.voxels.any()]
    names = [s.name for s in present]
    unnamed = [name for name in names if normalise_name(name) not in classes]
    if unnamed:
        raise NameMapMismatch(
            f"{file}: {what} structure name(s) {quoted_names(unnamed)} are not in the name map (names found: "
            f"{quoted_names(names)}); map them in the label map, e.g. labels={'ignore=name:' + unnamed[0]!r} or "
            f"{'scar=name:' + unnamed[0]!r} (see docs/dicom.md).",
            str(file),
            names,
            unnamed,
            "partial",
        )
    if not structures:
        raise CaseError(f"{file}: {what} holds no segment or ROI.")
    shape = structures[0].voxels.shape
    out = np.zeros(shape, dtype=np.uint8)
    counts: dict[str, int] = {}
    for cls, value in PAINT_ORDER:
        for structure in present:
            if classes[normalise_name(structure.name)] == cls:
                out[structure.voxels] = value
                counts[cls] = counts.get(cls, 0) + 1
    for structure in present:
        cls = classes[normalise_name(structure.name)]
        if cls == "ignore":
            counts["ignore"] = counts.get("ignore", 0) + 1
    if not (out == MYOCARDIUM).any():
        raise NameMapMismatch(
            f"{file}: {what} has no myocardium: none of its structures with voxels ({quoted_names(names) or 'none'}) "
            "is named as myocardium or epicardium by the name map; name it in the label map, e.g. "
            "labels='myocardium=name:...'.",
            str(file),
            names,
            [],
            "misfit",
        )
    has_blood = bool(counts.get("blood") or counts.get("endocardium"))
    if counts.get("epicardium") and not has_blood and not counts.get("myocardium"):
        raise NameMapMismatch(
            f"{file}: {what} has an epicardial border but no endocardium, blood pool or myocardium structure, so "
            "the myocardium cannot be told from the cavity; add the endocardial contour (or name it in the label map, "
            "e.g. labels='endocardium=name:...').",
            str(file),
            names,
            [],
            "misfit",
        )
    return DicomMask(labels=out, kind=what, has_blood=has_blood, structures=dict(sorted(counts.items())))


def _geometry(grid: sitk.Image) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(origin, direction matrix with the axis directions as columns, spacing) of a SimpleITK image."""
    return (
        np.asarray(grid.GetOrigin(), float),
        np.asarray(grid.GetDirection(), float).reshape(3, 3),
        np.asarray(grid.GetSpacing(), float),
    )


def to_index(points: np.ndarray, grid: sitk.Image) -> np.ndarray:
    """Patient coordinates (n, 3; mm, LPS as DICOM stores them) -> continuous (x, y, z) voxel indices of ``grid``.

    Example:
        >>> import SimpleITK as sitk
        >>> grid = sitk.Image(4, 4, 2, sitk.sitkUInt8); grid.SetSpacing((2.0, 2.0, 10.0))
        >>> to_index(np.array([[2.0, 4.0, 10.0]]), grid).tolist()
        [[1.0, 2.0, 1.0]]
    """
    origin, direction, spacing = _geometry(grid)
    return cast("np.ndarray", ((np.asarray(points, float) - origin) @ direction) / spacing)


# ------------------------------------------------------------------------------------------------ RTSTRUCT


def polygon_inside(points_xy: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(interior, line) of the closed polygon ``points_xy`` (continuous x, y indices) on a ``shape`` slice
    (y, x): the voxels whose centres lie inside it, and those within ``EDGE_TOLERANCE`` voxel of its line
    (a polygon of one or two points is a line only).

    Example:
        >>> interior, line = polygon_inside(np.array([[0.5, 0.5], [2.5, 0.5], [2.5, 2.5], [0.5, 2.5]]), (4, 4))
        >>> interior.astype(int).tolist(), bool(line.any())
        ([[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]], False)
    """
    from matplotlib.path import Path as PolygonPath

    interior, line = np.zeros(shape, dtype=bool), np.zeros(shape, dtype=bool)
    points = np.asarray(points_xy, float).reshape(-1, 2)
    limit = np.array(shape[::-1]) - 1
    starts, ends = points, np.roll(points, -1, axis=0)
    for start, end in zip(starts, ends):  # centres near the line: only those in each segment's own box
        low = np.maximum(np.ceil(np.minimum(start, end) - EDGE_TOLERANCE).astype(int), 0)
        high = np.minimum(np.floor(np.maximum(start, end) + EDGE_TOLERANCE).astype(int), limit)
        if np.any(high < low):
            continue
        yy, xx = np.mgrid[low[1] : high[1] + 1, low[0] : high[0] + 1]
        centres = np.column_stack([xx.ravel(), yy.ravel()]).astype(float)
        step = end - start
        length = float(step @ step)
        t = np.clip((centres - start) @ step / length, 0.0, 1.0) if length else np.zeros(len(centres))
        near = np.hypot(*(centres - (start + t[:, None] * step)).T) <= EDGE_TOLERANCE
        line[yy.ravel()[near], xx.ravel()[near]] = True
    if len(np.unique(points, axis=0)) < 3:
        return interior, line
    low = np.maximum(np.floor(points.min(axis=0)).astype(int), 0)
    high = np.minimum(np.ceil(points.max(axis=0)).astype(int), limit)
    if np.any(high < low):
        return interior, line
    yy, xx = np.mgrid[low[1] : high[1] + 1, low[0] : high[0] + 1]
    centres = np.column_stack([xx.ravel(), yy.ravel()]).astype(float)
    inside = PolygonPath(points).contains_points(centres)  # centres on the line count by ``line`` instead
    interior[low[1] : high[1] + 1, low[0] : high[0] + 1] = inside.reshape(yy.shape)
    return interior, line


def rasterise(polygons: Sequence[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """The voxels (y, x) of one ROI's contours on a slice: interiors by the even-odd rule, plus every
    contour line.

    Example:
        >>> outer = np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0]])  # through voxel centres
        >>> ring = rasterise([outer, (outer + 2.0) / 2.0], (5, 5))              # a hole through (1, 1)-(3, 3)
        >>> int(ring.sum()), bool(ring[2, 2]), bool(ring[1, 2])
        (24, False, True)
    """
    interior, lines = np.zeros(shape, dtype=bool), np.zeros(shape, dtype=bool)
    for points in polygons:
        inside, line = polygon_inside(points, shape)
        interior ^= inside
        lines |= line
    return interior | lines


def _read_dataset(file: Path, what: str) -> FileDataset:
    import pydicom

    try:
        return pydicom.dcmread(file)
    except Exception as exc:  # noqa: BLE001 - any decoding failure is this file's problem
        raise CaseError(f"{file}: {what} could not be read ({' '.join(str(exc).split())[:120]}).") from exc


def _rtstruct_structures(file: Path, series: SeriesReference, grid: sitk.Image) -> list[Structure]:
    """The ROIs of an RTSTRUCT rasterised onto ``grid`` (checked against ``series``)."""
    ds = _read_dataset(file, "RTSTRUCT")
    image = series.folder
    rois = {
        int(item.ROINumber): (
            str(item.get("ROIName") or f"ROI {item.ROINumber}"),
            str(item.get("ReferencedFrameOfReferenceUID") or ""),
        )
        for item in ds.get("StructureSetROISequence", [])
    }
    frames = [
        str(item.FrameOfReferenceUID)
        for item in ds.get("ReferencedFrameOfReferenceSequence", [])
        if item.get("FrameOfReferenceUID")
    ]
    referenced_series = {
        str(s.SeriesInstanceUID)
        for fr in ds.get("ReferencedFrameOfReferenceSequence", [])
        for st in fr.get("RTReferencedStudySequence", [])
        for s in st.get("RTReferencedSeriesSequence", [])
        if s.get("SeriesInstanceUID")
    }
    contours: dict[int, list[tuple[str | None, np.ndarray]]] = {}
    for item in ds.get("ROIContourSequence", []):
        number = int(item.ReferencedROINumber)
        for contour in item.get("ContourSequence", []):
            if str(contour.get("ContourGeometricType") or "").upper() != "CLOSED_PLANAR":
                continue
            points = np.asarray(contour.get("ContourData") or [], float)
            if points.size < 3 or points.size % 3:  # one or two points: a line through voxel centres
                continue
            images = contour.get("ContourImageSequence") or []
            sop = (
                str(images[0].ReferencedSOPInstanceUID)
                if images and images[0].get("ReferencedSOPInstanceUID")
                else None
            )
            contours.setdefault(number, []).append((sop, points.reshape(-1, 3)))

    sops = {sop for items in contours.values() for sop, _ in items if sop}
    ours = series.slice_index()
    if (referenced_series or sops) and series.series_uid not in referenced_series and not sops & ours.keys():
        raise CaseError(
            f"{file}: the RTSTRUCT refers to another image series, not {image} (none of the "
            f"{len(sops)} slice(s) its contours are drawn on is in that series)."
        )
    for number in contours:
        frame = rois.get(number, ("", ""))[1] or (frames[0] if frames else "")
        _check_frame(file, "RTSTRUCT", frame, series)

    origin_shape = grid.GetSize()
    nx, ny, nz = origin_shape
    spacing = grid.GetSpacing()[2]
    structures = []
    for number, (name, _) in sorted(rois.items()):
        voxels = np.zeros((nz, ny, nx), dtype=bool)
        on_slice: dict[int, list[np.ndarray]] = {}
        for sop, points in contours.get(number, []):
            index = to_index(points, grid)
            k = int(np.rint(np.median(index[:, 2])))
            off = float(np.abs(index[:, 2] - k).max()) if 0 <= k < nz else float("inf")
            if sop is not None and sop not in ours:
                raise CaseError(
                    f"{file}: ROI {name!r} has contours on slices that the image series {image} lacks "
                    "(the slices they reference are not in it)."
                )
            if sop is not None and ours[sop] != k:
                distance = abs(float(np.median(index[:, 2])) - ours[sop]) * spacing
                raise CaseError(
                    f"{file}: a contour of ROI {name!r} lies {distance:.1f} mm from the plane of the slice "
                    f"it references in {image}; the contours do not fit this series' geometry."
                )
            if off > PLANE_TOLERANCE:
                where = np.median(index[:, 2])
                raise CaseError(
                    f"{file}: ROI {name!r} has contours on slices that the image series {image} lacks "
                    f"(a contour lies at slice position {where:.2f} of 0-{nz - 1})."
                )
            on_slice.setdefault(k, []).append(index[:, :2])
        for k, polygons in on_slice.items():
            voxels[k] = rasterise(polygons, (ny, nx))
        structures.append(Structure(name, voxels))
    return structures


def _check_frame(file: Path, what: str, frame: str, series: SeriesReference) -> None:
    """Refuse an object whose Frame of Reference UID is not the series' (or a series without one)."""
    if not series.frame_of_reference_uid:
        raise CaseError(
            f"{series.folder}: the DICOM series has no Frame of Reference UID, so the {what} "
            f"{Path(file).name} cannot be matched to it."
        )
    if not frame:
        raise CaseError(
            f"{file}: the {what} names no Frame of Reference UID, so it cannot be matched to the image "
            f"series {series.folder}."
        )
    if frame != series.frame_of_reference_uid:
        raise CaseError(
            f"{file}: the frame of reference of the {what} differs from that of the image series "
            f"{series.folder}; it was drawn on another scan (or another registration of it)."
        )


# ------------------------------------------------------------------------------------------------ SEG


def _seg_structures(file: Path, series: SeriesReference, grid: sitk.Image) -> list[Structure]:
    """The segments of a DICOM SEG on ``grid`` (frames placed by source SOP Instance UID, else by position)."""
    import highdicom as hd

    try:
        seg = hd.seg.segread(str(file))
    except Exception as exc:  # noqa: BLE001 - any decoding failure is this file's problem
        raise CaseError(f"{file}: could not be read as a DICOM SEG ({' '.join(str(exc).split())[:120]}).") from exc
    image = series.folder
    ours = set(series.sop_instance_uids)
    references = seg.get_source_image_uids()
    referenced_series = {str(s) for _, s, _ in references}
    referenced = {str(i) for _, _, i in references}
    frame_sources = [
        [
            str(source.ReferencedSOPInstanceUID)
            for derivation in item.get("DerivationImageSequence", [])
            for source in derivation.get("SourceImageSequence", [])
        ]
        for item in seg.get("PerFrameFunctionalGroupsSequence", [])
    ]
    referenced |= {uid for uids in frame_sources for uid in uids}
    if (referenced_series or referenced) and series.series_uid not in referenced_series and not referenced & ours:
        raise CaseError(
            f"{file}: the DICOM SEG refers to another image series, not {image} (none of the "
            f"{len(referenced)} source slice(s) it references is in that series)."
        )
    _check_frame(file, "DICOM SEG", str(seg.get("FrameOfReferenceUID") or ""), series)
    missing = {uid for uids in frame_sources for uid in uids} - ours
    if missing:
        raise CaseError(
            f"{file}: the DICOM SEG has segments on {len(missing)} slice(s) that the image series {image} lacks."
        )
    numbers = [int(n) for n in seg.segment_numbers]
    nx, ny, _ = grid.GetSize()
    if (int(seg.Rows), int(seg.Columns)) != (ny, nx):
        raise CaseError(
            f"{file}: the DICOM SEG's frames are {seg.Rows} x {seg.Columns} pixels and the slices of "
            f"{image} {ny} x {nx}; it was not drawn on this series."
        )
    if frame_sources and all(frame_sources):
        try:
            pixels = seg.get_pixels_by_source_instance(
                list(series.sop_instance_uids),
                segment_numbers=numbers,
                ignore_spatial_locations=True,
                assert_missing_frames_are_empty=True,
                skip_overlap_checks=True,
            )
        except (ValueError, RuntimeError, KeyError) as exc:
            raise CaseError(
                f"{file}: the DICOM SEG's frames could not be placed on the slices of {image} "
                f"({' '.join(str(exc).split())[:120]})."
            ) from exc
    else:
        pixels = _seg_pixels_by_position(seg, numbers, file, series, grid)
    structures = []
    for position, number in enumerate(numbers):
        description = seg.get_segment_description(number)
        name = str(description.segment_label or "") or str(description.segmented_property_type.meaning)
        structures.append(Structure(name, np.asarray(pixels[..., position]) >= 0.5))
    return structures


def _frame_value(item: Dataset, shared: Dataset | None, sequence: str, keyword: str) -> Any:
    """A functional-group attribute of one frame (per-frame first, then shared), or None (a pydicom element's
    value, whose type depends on the attribute: left untyped)."""
    for group in (item, shared):
        if group is not None and sequence in group and len(group[sequence].value):
            value = group[sequence].value[0].get(keyword)
            if value is not None:
                return value
    return None


def _seg_pixels_by_position(
    seg: hd.seg.Segmentation, numbers: list[int], file: Path, series: SeriesReference, grid: sitk.Image
) -> np.ndarray:
    """(z, y, x, segment) pixels of a SEG whose frames do not reference source slices, placed by plane
    position; every frame must lie on the image grid (same orientation, spacing and in-plane origin)."""
    _, direction, spacing = _geometry(grid)
    nx, ny, nz = grid.GetSize()
    shared = seg.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in seg else None
    frames = np.asarray(seg.pixel_array)
    frames = frames.reshape((-1, *frames.shape[-2:]))
    scale = float(seg.get("MaximumFractionalValue") or 1) if str(seg.SegmentationType) == "FRACTIONAL" else 1.0
    out = np.zeros((nz, ny, nx, len(numbers)), dtype=np.float32)
    off_grid = f"{file}: the DICOM SEG's frames do not lie on the slices of the image series {series.folder}"
    for index, item in enumerate(seg.PerFrameFunctionalGroupsSequence):
        number = _frame_value(item, shared, "SegmentIdentificationSequence", "ReferencedSegmentNumber")
        position = _frame_value(item, shared, "PlanePositionSequence", "ImagePositionPatient")
        orientation = _frame_value(item, shared, "PlaneOrientationSequence", "ImageOrientationPatient")
        pixel = _frame_value(item, shared, "PixelMeasuresSequence", "PixelSpacing")
        if number is None or position is None or orientation is None or pixel is None:
            raise CaseError(
                f"{file}: the DICOM SEG's frames reference no source slice and lack plane positions, so "
                f"they cannot be placed on {series.folder}."
            )
        orientation = np.asarray(orientation, float)
        if (
            not np.allclose(orientation[:3], direction[:, 0], atol=GRID_TOLERANCE)
            or not np.allclose(orientation[3:], direction[:, 1], atol=GRID_TOLERANCE)
            or not np.allclose([float(pixel[1]), float(pixel[0])], spacing[:2], rtol=GRID_TOLERANCE)
        ):
            raise CaseError(f"{off_grid} (other orientation or pixel spacing).")
        where = to_index(np.asarray(position, float)[None], grid)[0]
        k = int(np.rint(where[2]))
        if np.abs(where[:2]).max() > PLANE_TOLERANCE or abs(where[2] - k) > PLANE_TOLERANCE:
            raise CaseError(f"{off_grid} (a frame is shifted off the image grid).")
        if not 0 <= k < nz:
            raise CaseError(
                f"{file}: the DICOM SEG has segments on slices that the image series {series.folder} lacks."
            )
        if int(number) in numbers:
            channel = numbers.index(int(number))
            out[k, :, :, channel] = np.maximum(out[k, :, :, channel], frames[index] / scale)
    return out


# ------------------------------------------------------------------------------------------------ a cohort's names


def structure_names(file: str | os.PathLike[str]) -> list[str]:
    """The names of the structures of a SEG (segment labels) or RTSTRUCT (ROIs with closed contours),
    read from the header alone; ``CaseError`` if unreadable."""
    import pydicom

    file = Path(file)
    kind = dicom_object_kind(file)
    try:
        ds = pydicom.dcmread(file, stop_before_pixels=True)
    except Exception as exc:  # noqa: BLE001
        raise CaseError(f"{file}: could not be read ({exc}).") from exc
    if kind == "seg":
        return [str(item.get("SegmentLabel") or "") for item in ds.get("SegmentSequence", [])]
    with_area = {
        int(item.ReferencedROINumber)
        for item in ds.get("ROIContourSequence", [])
        if any(
            str(c.get("ContourGeometricType") or "").upper() == "CLOSED_PLANAR" for c in item.get("ContourSequence", [])
        )
    }
    return [
        str(item.get("ROIName") or "")
        for item in ds.get("StructureSetROISequence", [])
        if int(item.ROINumber) in with_area
    ]


def first_structure_names(masks: Iterable[Path | None], count: int = 3, tries: int = 9) -> list[tuple[Path, list[str]]]:
    """The structure names of the first ``count`` readable DICOM SEG/RTSTRUCT masks among the first
    ``tries`` masks (label images and broken masks are left to their cases)."""
    samples: list[tuple[Path, list[str]]] = []
    for mask in list(masks)[:tries]:
        try:
            file = dicom_mask_file(mask)
            if file is None:
                continue
            samples.append((file, structure_names(file)))
        except CaseError:
            continue
        if len(samples) == count:
            break
    return samples


def check_names_fit(
    samples: Sequence[tuple[Path, list[str]]], label_map: LabelMap, where: str, scar_auto: bool = False
) -> None:
    """Stop a cohort whose first DICOM masks show the name map cannot fit it (``InputError``): structure
    names it does not know in most of them, or no myocardium name in any; with ``scar_auto``
    (``scar_method='auto'``, which reads scar from the masks' scar structures) also when none of them has
    a scar structure, which would make every heart scar-free. One odd mask among fitting ones is left to
    its own case."""
    if not samples:
        return
    classes = label_map.name_classes()
    unfit = [
        (str(file), names) for file, names in samples if any(normalise_name(name) not in classes for name in names)
    ]
    if unfit and 2 * len(unfit) > len(samples):
        raise name_map_error(where, label_map, unfit)
    if not any(
        classes.get(normalise_name(name)) in ("myocardium", "epicardium") for _, names in samples for name in names
    ):
        found = list(dict.fromkeys(name for _, names in samples for name in names))
        raise InputError(
            f"{where}: none of the first {len(samples)} DICOM mask(s) "
            f"({', '.join(file.name for file, _ in samples)}) has a structure the name map reads as "
            f"myocardium (names found: {quoted_names(found) or 'none'}); name it in the label map, e.g. "
            "labels='myocardium=name:...' (see docs/dicom.md).",
            setting="labels",
        )
    if scar_auto and not any(
        classes.get(normalise_name(name)) in ("scar", "noreflow") for _, names in samples for name in names
    ):
        raise InputError(
            f"{where}: none of the first {len(samples)} DICOM mask(s) "
            f"({', '.join(file.name for file, _ in samples)}) has a scar structure, so scar_method='auto' "
            "would read every heart as scar-free; pass scar_method='fwhm' to derive scar from intensity, "
            "scar_method='label' to accept scar-free hearts, or name the scar in the label map, e.g. "
            "labels='scar=name:...'.",
            setting="scar_method",
        )
