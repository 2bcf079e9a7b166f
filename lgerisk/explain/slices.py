"""Which voxels of a network input show the scan: its real slices and its field of view.

A network input ``(C, D, H, W)`` (:mod:`lgerisk.data.tensors`) is a preprocessed case fitted to a fixed
shape: zero slices appended after the apex when the scan has fewer than ``D``, in-plane zero padding when
the crop is smaller than ``H x W``. Preprocessing itself resamples the scan onto a crop centred on the LV;
where the crop reaches beyond the scan's own field of view it is filled with a background value. None of
these voxels is the patient: an attribution there is not signal, and a montage should not draw it.

:func:`field_of_view` finds the preprocessed voxels inside the scan's field of view, from the source scan's
geometry when it is at hand (exact), else from the constant background bands at the crop's edges.
:func:`tensor_view` carries that through the same fitting as the network input and says which input
slices are real and which slice of the scan each one is (the scan's own numbering, listed base to apex).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from lgerisk.io.cohort import Case


@dataclass(frozen=True)
class TensorView:
    """The real part of a network input ``(D, H, W)``.

    Attributes:
        count: how many input slices are real (the first ``count``; the rest is padding).
        numbers: the scan's own slice number (1-based, as in the source file) of each real input slice,
            base first.
        inside: ``(D, H, W)`` bool, True where the input shows the scan (not slice padding, in-plane
            padding, or background fill outside the scan's field of view).
    """

    count: int
    numbers: tuple[int, ...]
    inside: np.ndarray


def _edge_bands(values: np.ndarray) -> np.ndarray:
    """``(D, H, W)`` bool: False in the rows and columns at the in-plane edges that hold one constant value
    on every slice (the fill of a crop reaching beyond the scan), True elsewhere.

    Example:
        >>> volume = np.arange(40.0).reshape(2, 4, 5); volume[:, :, :2] = -3.0
        >>> _edge_bands(volume)[0].astype(int).tolist()[0]
        [0, 0, 1, 1, 1]
    """
    inside = np.ones(values.shape, dtype=bool)
    if values.size == 0:
        return inside
    for axis in (1, 2):
        count = values.shape[axis]
        for order in (range(count), range(count - 1, -1, -1)):
            fill = np.take(values, order[0], axis=axis).flat[0]
            for index in order:
                if not np.all(np.take(values, index, axis=axis) == fill):
                    break
                where: list[slice | int] = [slice(None)] * 3
                where[axis] = index
                inside[tuple(where)] = False
    return inside


def field_of_view(
    prepared_image: str | os.PathLike[str], source_image: str | os.PathLike[str] | None = None
) -> np.ndarray:
    """``(D, H, W)`` bool on the preprocessed image's grid: True where the voxel lies inside the source
    scan's field of view.

    With ``source_image`` (the raw scan the case was preprocessed from), a mask of ones on the source's
    grid is resampled onto the preprocessed grid (nearest neighbour, 0 outside), exactly as the
    intensities were. Without it (a case given already preprocessed), the constant bands at the crop's
    in-plane edges are taken as outside.

    Example:
        >>> inside = field_of_view("prep/cases/P01/image.nii.gz", "cohort/images/P01.nii.gz")  # doctest: +SKIP
        >>> inside.shape                                                                          # doctest: +SKIP
        (7, 96, 96)
    """
    import SimpleITK as sitk

    from lgerisk.errors import CaseError, InputError
    from lgerisk.io.scans import read_volume

    prepared = read_volume(prepared_image, "image", verify_nifti=False)
    values = sitk.GetArrayFromImage(prepared)
    if source_image is not None:
        try:
            source = read_volume(source_image, "image", verify_nifti=False)
        except (CaseError, InputError):
            source = None
        if source is not None and source.GetDimension() == 3:
            ones = sitk.Image(source.GetSize(), sitk.sitkUInt8) + 1
            ones.CopyInformation(source)
            inside = sitk.Resample(ones, prepared, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
            return sitk.GetArrayFromImage(inside).astype(bool)
    return _edge_bands(values)


def tensor_view(inside: np.ndarray, slices: int, size: int, slices_flipped: bool = False) -> TensorView:
    """The real slices and voxels of the network input made (``slices`` x ``size`` x ``size``) from a
    preprocessed case whose field of view is ``inside`` ``(D0, H0, W0)``.

    ``slices_flipped``: preprocessing reversed the scan's slices (it was stored apex first; ``qc.json``'s
    ``slices_flipped``), so the scan's own numbers run backwards from the base.

    Example:
        >>> view = tensor_view(np.ones((7, 64, 64), bool), slices=12, size=96)
        >>> view.count, view.numbers[:3], view.inside.shape, bool(view.inside[7:].any())
        (7, (1, 2, 3), (12, 96, 96), False)
    """
    from lgerisk.data.tensors import fit_plane, fit_slices, slice_indices

    inside = np.asarray(inside, dtype=bool)
    depth = inside.shape[0]
    kept = slice_indices(depth, slices)
    numbers = tuple((depth - index) if slices_flipped else (index + 1) for index in kept)
    fitted = fit_plane(fit_slices(inside.astype(np.float32), slices), size) > 0.5
    return TensorView(count=len(kept), numbers=numbers, inside=fitted)


def source_of(case: Case, prepared: Case) -> Path | None:
    """The raw scan ``prepared`` was made from, or None when the case was given already preprocessed."""
    return None if Path(case.image) == Path(prepared.image) else Path(case.image)
