"""Reading scans and masks (NIfTI, NRRD, MHA/MHD, DICOM series) through SimpleITK.

Every reader turns a failure into one sentence naming the file (``CaseError``). DICOM
series are read without their metadata dictionaries, so no header value (patient name,
ID, dates) is carried into any image lgerisk writes.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np

from lgerisk.errors import CaseError
from lgerisk.io.formats import SCAN_SUFFIXES

if TYPE_CHECKING:  # pragma: no cover
    import SimpleITK as sitk


def scan_stem(path: str | os.PathLike[str]) -> str:
    """File name of ``path`` without its scan suffix: ``images/P01.nii.gz`` -> ``P01``."""
    name = Path(path).name
    for suffix in SCAN_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def is_scan_file(path: Path) -> bool:
    """Whether ``path`` names a volume file lgerisk reads (by suffix)."""
    return path.is_file() and path.name.lower().endswith(SCAN_SUFFIXES)


def _quiet_itk() -> None:
    import SimpleITK as sitk

    # ITK warns on benign header quirks (e.g. EMIDEC's "unexpected scales in sform").
    sitk.ProcessObject.SetGlobalWarningDisplay(False)


def dicom_series_files(folder: Path) -> list[str]:
    """The files of the one DICOM image series in ``folder``, in the slice order the series is read in
    (slice k of the image is file k). A DICOM SEG or RTSTRUCT file beside the slices is not a series."""
    import SimpleITK as sitk

    _quiet_itk()
    series = list(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)))
    if len(series) > 1:  # a DICOM SEG (or RTSTRUCT) beside the slices is the mask, not an image series
        from lgerisk.io.formats import dicom_object_kind

        series = [
            uid
            for uid in series
            if not dicom_object_kind(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid)[0])
        ]
    if not series:
        raise CaseError(f"{folder}: folder holds no DICOM series (and no NIfTI/NRRD/MHA file was given).")
    if len(series) > 1:
        raise CaseError(f"{folder}: folder holds {len(series)} DICOM series; put one series per folder.")
    return list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series[0]))


def read_dicom_series(folder: Path) -> sitk.Image:
    """Read the one DICOM series in ``folder`` (no metadata kept)."""
    import SimpleITK as sitk

    files = dicom_series_files(folder)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOff()
    reader.LoadPrivateTagsOff()
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise CaseError(f"{folder}: DICOM series could not be read ({_itk_reason(exc)}).") from exc
    for key in image.GetMetaDataKeys():  # belt and braces: nothing from the headers travels on
        image.EraseMetaData(key)
    return cast("sitk.Image", image)


def _itk_reason(exc: Exception) -> str:
    """The informative last line of an ITK exception message."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in reversed(lines):
        if "Description:" in line:
            return line.split("Description:", 1)[1].strip()
    return lines[-1] if lines else type(exc).__name__


_NIFTI_DTYPES = {
    2: "u1",
    4: "i2",
    8: "i4",
    16: "f4",
    64: "f8",
    256: "i1",
    512: "u2",
    768: "u4",
    1024: "i8",
    1280: "u8",
}
"""NIfTI datatype codes lgerisk decodes itself (scalar integers and float32/64); others go to nibabel."""


@dataclass(frozen=True)
class NiftiLayout:
    """Where a single-file NIfTI-1/2 keeps its voxels: byte order, shape (x fastest), datatype code, voxel
    offset, intensity scaling and the header's description."""

    order: str
    shape: tuple[int, ...]
    datatype: int
    offset: int
    slope: float
    intercept: float
    description: str


def nifti_layout(header: bytes) -> NiftiLayout | None:
    """The :class:`NiftiLayout` of a single-file NIfTI-1 or NIfTI-2 header (its first 540 bytes,
    decompressed), or ``None`` for anything else (a .hdr/.img pair, an unknown layout, a voxel offset that is
    no number). An offset inside the header is read as the header's end, as NIfTI's reference library does."""
    import struct

    for order in "<>":
        if len(header) >= 348 and struct.unpack(f"{order}i", header[:4])[0] == 348 and header[344:348] == b"n+1\0":
            size = 348
            dims = struct.unpack(f"{order}8h", header[40:56])
            datatype = struct.unpack(f"{order}h", header[70:72])[0]
            offset: float = struct.unpack(f"{order}f", header[108:112])[0]
            slope, intercept = struct.unpack(f"{order}2f", header[112:120])
            description = header[148:228]
        elif len(header) >= 540 and struct.unpack(f"{order}i", header[:4])[0] == 540 and header[4:7] == b"n+2":
            size = 540
            dims = struct.unpack(f"{order}8q", header[16:80])
            datatype = struct.unpack(f"{order}h", header[12:14])[0]
            offset = struct.unpack(f"{order}q", header[168:176])[0]
            slope, intercept = struct.unpack(f"{order}2d", header[176:192])
            description = header[240:320]
        else:
            continue
        if not 1 <= dims[0] <= 7 or any(d < 1 for d in dims[1 : dims[0] + 1]) or not math.isfinite(offset):
            return None
        return NiftiLayout(
            order,
            tuple(int(d) for d in dims[1 : dims[0] + 1]),
            int(datatype),
            max(int(offset), size),  # voxels never start inside the header: NIfTI's own reader moves them on
            float(slope),
            float(intercept),
            description.split(b"\0", 1)[0].decode("latin-1"),
        )
    return None


def nifti_header(path: str | os.PathLike[str]) -> bytes:
    """The first 540 bytes of a NIfTI file, decompressed when it is gzipped (nothing more is decoded)."""
    import gzip

    with open(path, "rb") as handle:
        gzipped = handle.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    with opener(path, "rb") as handle:
        return bytes(handle.read(540))


def _unreadable(path: Path, what: str, reason: str) -> CaseError:
    """The one sentence for a file that cannot be decoded, with the reader's reason (shortened)."""
    return CaseError(
        f"{path}: {what} could not be read; the file is corrupt, truncated or not a "
        f"supported format ({' '.join(reason.split())[:120]})."
    )


def _nifti_voxels(path: Path, what: str) -> tuple[NiftiLayout, np.ndarray] | None:
    """(layout, voxels as stored, flat) of a single-file NIfTI-1/2 of the usual scalar types, decoded completely
    (zlib and numpy), or ``None`` for another variant. A truncated file is refused."""
    import gzip
    import zlib

    try:
        raw = path.read_bytes()
        data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (EOFError, OSError, zlib.error) as exc:
        raise _unreadable(path, what, str(exc) or type(exc).__name__) from exc
    layout = nifti_layout(data[:540])
    if layout is None or layout.datatype not in _NIFTI_DTYPES:
        return None
    dtype = np.dtype(layout.order + _NIFTI_DTYPES[layout.datatype])
    count = math.prod(layout.shape)
    if len(data) < layout.offset + count * dtype.itemsize:
        got = max(len(data) - layout.offset, 0)
        raise _unreadable(path, what, f"expected {count * dtype.itemsize} bytes of voxels, got {got}")
    return layout, np.frombuffer(data, dtype=dtype, count=count, offset=layout.offset)


def _refuse_non_finite(voxels: np.ndarray, path: Path, what: str) -> None:
    if voxels.dtype.kind == "f":
        finite = np.isfinite(voxels)
        if not finite.all():
            raise CaseError(f"{path}: {what} has {int((~finite).sum())} NaN or infinite voxels.")


def _check_nifti_with_nibabel(path: Path, what: str) -> None:
    """Refuse a NIfTI file of a variant lgerisk does not decode itself (a .hdr/.img pair, an unusual type) that
    is truncated or holds NaN/inf voxels: ITK's reader fills missing voxels with zeros and turns NaN into 0, so
    neither would otherwise be noticed."""
    import zlib

    import nibabel

    try:
        # nibabel's stub types load() as FileBasedImage, which lacks the dataobj its image classes have
        voxels = np.asanyarray(nibabel.load(str(path)).dataobj)  # type: ignore[attr-defined]
    except (EOFError, OSError, ValueError, zlib.error, nibabel.filebasedimages.ImageFileError) as exc:
        raise _unreadable(path, what, str(exc)) from exc
    if np.issubdtype(voxels.dtype, np.floating) and not np.isfinite(voxels).all():
        bad = int((~np.isfinite(voxels)).sum())
        raise CaseError(f"{path}: {what} has {bad} NaN or infinite voxels.")


def _itk_read(
    path: Path, what: str, decoded: tuple[NiftiLayout, np.ndarray] | None, finite: bool = False
) -> sitk.Image:
    """The image ITK reads from ``path``. Given the file's ``decoded`` voxels (a 3D scalar volume without
    intensity scaling or NaN/inf voxels, which ITK would turn into 0; ``finite``: already checked), ITK reads
    only the header (geometry, pixel type) and the voxels are not decoded a second time; the image is the same,
    voxel for voxel (tests/io compares the two on every test scan)."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        if decoded is None:
            return cast("sitk.Image", reader.Execute())
        layout, voxels = decoded
        reader.SetImageIO("NiftiImageIO")  # the file is NIfTI (decoded above): no probing of every format
        reader.ReadImageInformation()
        plain = layout.slope in (0.0, 1.0) and layout.intercept == 0.0
        if not finite and voxels.dtype.kind == "f" and not np.isfinite(voxels).all():
            plain = False
        if not (
            plain
            and len(layout.shape) == 3
            and reader.GetDimension() == 3
            and reader.GetNumberOfComponents() == 1
            and tuple(reader.GetSize()) == layout.shape
        ):
            return cast("sitk.Image", reader.Execute())
        native = voxels.astype(voxels.dtype.newbyteorder("="), copy=False)
        image = sitk.GetImageFromArray(native.reshape(layout.shape[::-1]))
        if image.GetPixelID() != reader.GetPixelID():
            return cast("sitk.Image", reader.Execute())
        image.SetOrigin(reader.GetOrigin())
        image.SetSpacing(reader.GetSpacing())
        image.SetDirection(reader.GetDirection())
        return image
    except RuntimeError as exc:
        raise CaseError(
            f"{path}: {what} could not be read; the file is corrupt, truncated or not a "
            f"supported format ({_itk_reason(exc)})."
        ) from exc


def read_volume(path: str | os.PathLike[str], what: str = "image", verify_nifti: bool = True) -> sitk.Image:
    """Read one 3D volume (a file or a DICOM folder); 2D, 4D and vector images are refused.

    A NIfTI file is decoded once, completely, so a truncated file is refused (ITK would fill the missing
    voxels with zeros); ``verify_nifti`` also refuses NaN/inf voxels (ITK would read them as 0, as it still
    does with ``verify_nifti=False``). Set it False only for files lgerisk wrote itself (preprocessed cases),
    never for a user's scans.

    Example:
        >>> image = read_volume("images/P01.nii.gz")        # doctest: +SKIP
    """
    _quiet_itk()
    path = Path(path)
    if not path.exists():
        raise CaseError(f"{path}: {what} file does not exist.")
    if path.is_dir():
        image = read_dicom_series(path)
    else:
        nifti = path.name.lower().endswith((".nii", ".nii.gz"))
        decoded = _nifti_voxels(path, what) if nifti else None
        if verify_nifti and decoded is not None:
            _refuse_non_finite(decoded[1], path, what)
        elif verify_nifti and nifti:
            _check_nifti_with_nibabel(path, what)
        image = _itk_read(path, what, decoded, finite=verify_nifti)
        for key in image.GetMetaDataKeys():
            image.EraseMetaData(key)
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise CaseError(
            f"{path}: {what} has {image.GetNumberOfComponentsPerPixel()} components per voxel; "
            "a single-channel volume is needed."
        )
    dim = image.GetDimension()
    if dim == 4:
        size = image.GetSize()
        if size[3] == 1:
            image = image[:, :, :, 0]
        else:
            raise CaseError(f"{path}: {what} is 4D (size {tuple(size)}); give one 3D phase or volume.")
    elif dim != 3:
        raise CaseError(f"{path}: {what} is {dim}D; a 3D short-axis stack is needed.")
    return image


def image_array(image: sitk.Image, path: str | os.PathLike[str], what: str = "image") -> np.ndarray:
    """Voxel array (z, y, x) as float32, refusing NaN or infinite voxels."""
    import SimpleITK as sitk

    array = sitk.GetArrayFromImage(image).astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise CaseError(f"{path}: {what} has {bad} NaN or infinite voxels.")
    return array


def label_array(image: sitk.Image, path: str | os.PathLike[str]) -> np.ndarray:
    """Integer label array (z, y, x) from a mask stored in any pixel type (EMIDEC stores float64)."""
    import SimpleITK as sitk

    array = sitk.GetArrayFromImage(image)
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise CaseError(f"{path}: mask has NaN or infinite voxels.")
        rounded = np.rint(array)
        if np.abs(array - rounded).max(initial=0.0) > 1e-3:
            raise CaseError(f"{path}: mask holds non-integer values; a label map is needed.")
        array = rounded
    return array.astype(np.int32, copy=False)


@dataclass(frozen=True)
class GeometryTolerance:
    """How far a mask's geometry may be from its image's and still be read on the image's grid.

    The defaults accept the float32 round-off of NIfTI headers and refuse any real misregistration: with
    1.25 x 1.25 x 8 mm voxels a mask's spacing may be off by 0.00125 mm in-plane and 0.008 mm through-plane,
    its origin by 0.0125 mm on each axis, and its direction cosines by 0.001 (about 0.06 degrees).
    """

    spacing_fraction: float = 1e-3
    """Each axis's spacing may differ from the image's by at most this fraction of it (0.1 %)."""
    origin_fraction: float = 1e-2
    """Each origin coordinate may differ from the image's by at most this fraction of the image's smallest voxel
    spacing (1 %: 0.0125 mm with 1.25 mm in-plane voxels), in mm."""
    direction: float = 1e-3
    """Each of the nine direction cosines may differ from the image's by at most this much (about 0.06 degrees)."""


def check_same_geometry(
    image: sitk.Image,
    mask: sitk.Image,
    mask_path: str | os.PathLike[str],
    tolerance: GeometryTolerance = GeometryTolerance(),
) -> None:
    """Refuse a mask whose size, spacing, origin or direction differs from its image's.

    Within ``tolerance`` (:class:`GeometryTolerance`) the mask is accepted (callers then copy the image
    geometry onto it); the message of a refusal says the tolerance it exceeded.
    """
    spacing = np.asarray(image.GetSpacing())
    if image.GetSize() != mask.GetSize():
        raise CaseError(f"{mask_path}: mask size {mask.GetSize()} differs from its image's {image.GetSize()}.")
    if np.any(np.abs(spacing - np.asarray(mask.GetSpacing())) > tolerance.spacing_fraction * spacing):
        raise CaseError(
            f"{mask_path}: mask spacing {_fmt(mask.GetSpacing())} differs from its image's {_fmt(image.GetSpacing())} "
            f"by more than {100 * tolerance.spacing_fraction:g} % on an axis."
        )
    origin_mm = tolerance.origin_fraction * float(spacing.min())
    if np.any(np.abs(np.asarray(image.GetOrigin()) - np.asarray(mask.GetOrigin())) > origin_mm):
        raise CaseError(
            f"{mask_path}: mask origin {_fmt(mask.GetOrigin())} differs from its image's {_fmt(image.GetOrigin())} "
            f"by more than {origin_mm:.4g} mm ({100 * tolerance.origin_fraction:g} % of a voxel) on an axis."
        )
    if np.any(np.abs(np.asarray(image.GetDirection()) - np.asarray(mask.GetDirection())) > tolerance.direction):
        raise CaseError(
            f"{mask_path}: mask orientation (direction cosines) differs from its image's by more than "
            f"{tolerance.direction:g} in a cosine."
        )


def _fmt(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"
