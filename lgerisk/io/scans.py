"""Reading scans and masks (NIfTI, NRRD, MHA/MHD, DICOM series) through SimpleITK.

Every reader turns a failure into one sentence naming the file (``CaseError``). DICOM
series are read without their metadata dictionaries, so no header value (patient name,
ID, dates) is carried into any image lgerisk writes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lgerisk.errors import CaseError

if TYPE_CHECKING:  # pragma: no cover
    import SimpleITK as sitk

SCAN_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
"""File suffixes read as single-file volumes; a folder is read as a DICOM series."""


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
        from lgerisk.io.dicom_masks import dicom_object_kind

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
    return image


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


def _nifti_layout(header: bytes) -> tuple[str, tuple[int, ...], int, int] | None:
    """(byte order, shape, datatype, voxel offset) of a single-file NIfTI-1 or NIfTI-2 header, or
    ``None`` for anything else (a .hdr/.img pair, an unknown layout), which nibabel then reads."""
    import struct

    for order in "<>":
        if len(header) >= 348 and struct.unpack(f"{order}i", header[:4])[0] == 348 and header[344:348] == b"n+1\0":
            dims = struct.unpack(f"{order}8h", header[40:56])
            datatype = struct.unpack(f"{order}h", header[70:72])[0]
            offset = int(struct.unpack(f"{order}f", header[108:112])[0])
        elif len(header) >= 540 and struct.unpack(f"{order}i", header[:4])[0] == 540 and header[4:7] == b"n+2":
            dims = struct.unpack(f"{order}8q", header[16:80])
            datatype = struct.unpack(f"{order}h", header[12:14])[0]
            offset = struct.unpack(f"{order}q", header[168:176])[0]
        else:
            continue
        if not 1 <= dims[0] <= 7 or any(d < 1 for d in dims[1 : dims[0] + 1]):
            return None
        return order, tuple(int(d) for d in dims[1 : dims[0] + 1]), int(datatype), max(offset, 0)
    return None


def _unreadable(path: Path, what: str, reason: str) -> CaseError:
    """The one sentence for a file that cannot be decoded, with the reader's reason (shortened)."""
    return CaseError(
        f"{path}: {what} could not be read; the file is corrupt, truncated or not a "
        f"supported format ({' '.join(reason.split())[:120]})."
    )


def check_nifti_voxels(path: Path, what: str) -> None:
    """Decode a NIfTI file's voxels completely to refuse truncated files and NaN/inf voxels.

    ITK's NIfTI reader fills a truncated file's missing voxels with zeros and turns NaN into 0,
    so neither would otherwise be noticed. Single-file NIfTI-1/2 of the usual scalar types is
    decoded here (zlib and numpy, no extra imports); anything else by nibabel.
    """
    import gzip
    import zlib

    try:
        raw = path.read_bytes()
        data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (EOFError, OSError, zlib.error) as exc:
        raise _unreadable(path, what, str(exc) or type(exc).__name__) from exc
    layout = _nifti_layout(data[:540])
    if layout is None or layout[2] not in _NIFTI_DTYPES:
        _check_nifti_with_nibabel(path, what)
        return
    order, shape, datatype, offset = layout
    dtype = np.dtype(order + _NIFTI_DTYPES[datatype])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) < offset + expected:
        raise _unreadable(path, what, f"expected {expected} bytes of voxels, got {max(len(data) - offset, 0)}")
    if dtype.kind == "f":
        voxels = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=offset)
        finite = np.isfinite(voxels)
        if not finite.all():
            raise CaseError(f"{path}: {what} has {int((~finite).sum())} NaN or infinite voxels.")


def _check_nifti_with_nibabel(path: Path, what: str) -> None:
    """``check_nifti_voxels`` for the NIfTI variants it does not decode itself."""
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


def read_volume(path: str | os.PathLike[str], what: str = "image", verify_nifti: bool = True) -> sitk.Image:
    """Read one 3D volume (a file or a DICOM folder); 2D, 4D and vector images are refused.

    ``verify_nifti=False`` skips the full nibabel decode of NIfTI files (``check_nifti_voxels``):
    only for files lgerisk wrote itself (preprocessed cases), never for a user's scans.

    Example:
        >>> image = read_volume("images/P01.nii.gz")        # doctest: +SKIP
    """
    import SimpleITK as sitk

    _quiet_itk()
    path = Path(path)
    if not path.exists():
        raise CaseError(f"{path}: {what} file does not exist.")
    if path.is_dir():
        image = read_dicom_series(path)
    else:
        if verify_nifti and path.name.lower().endswith((".nii", ".nii.gz")):
            check_nifti_voxels(path, what)
        try:
            image = sitk.ReadImage(str(path))
        except RuntimeError as exc:
            raise CaseError(
                f"{path}: {what} could not be read; the file is corrupt, truncated or not a "
                f"supported format ({_itk_reason(exc)})."
            ) from exc
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
    """Relative tolerance (fraction of the voxel spacing) and direction-cosine tolerance."""

    spacing_fraction: float = 1e-3
    direction: float = 1e-3


def check_same_geometry(
    image: sitk.Image,
    mask: sitk.Image,
    mask_path: str | os.PathLike[str],
    tolerance: GeometryTolerance = GeometryTolerance(),
) -> None:
    """Refuse a mask whose size, spacing, origin or direction differs from its image's.

    Within tolerance the mask is accepted (callers then copy the image geometry onto it).
    """
    spacing = np.asarray(image.GetSpacing())
    if image.GetSize() != mask.GetSize():
        raise CaseError(f"{mask_path}: mask size {mask.GetSize()} differs from its image's {image.GetSize()}.")
    if np.any(np.abs(spacing - np.asarray(mask.GetSpacing())) > tolerance.spacing_fraction * spacing):
        raise CaseError(
            f"{mask_path}: mask spacing {_fmt(mask.GetSpacing())} differs from its image's {_fmt(image.GetSpacing())}."
        )
    if np.any(
        np.abs(np.asarray(image.GetOrigin()) - np.asarray(mask.GetOrigin()))
        > tolerance.spacing_fraction * 10 * spacing.min()
    ):
        raise CaseError(
            f"{mask_path}: mask origin {_fmt(mask.GetOrigin())} differs from its image's {_fmt(image.GetOrigin())}."
        )
    if np.any(np.abs(np.asarray(image.GetDirection()) - np.asarray(mask.GetDirection())) > tolerance.direction):
        raise CaseError(f"{mask_path}: mask orientation (direction cosines) differs from its image's.")


def _fmt(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"
