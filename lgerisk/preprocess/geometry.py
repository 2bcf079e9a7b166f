"""Geometry: canonical orientation, and in-plane resampling onto an LV-centred crop.

Canonical orientation (no interpolation): the slice axis (the coarsest spacing) is made the
last axis, and slices are ordered base -> apex, judged from the mask (the LV cross-section
shrinks towards the apex). In-plane axes keep their acquired order. Resampling is in-plane
only: LGE slices are 8-23 mm apart and are never interpolated between.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import SimpleITK as sitk


@dataclass(frozen=True)
class Reorientation:
    """What ``canonical_orientation`` did: the axis order applied and whether slices were flipped."""

    axis_order: tuple[int, int, int]
    slices_flipped: bool


def slice_axis(spacing: tuple[float, ...]) -> int:
    """Index (x=0, y=1, z=2) of the slice axis: the coarsest spacing, z on ties."""
    spacing_array = np.asarray(spacing, dtype=float)
    coarsest = np.flatnonzero(np.isclose(spacing_array, spacing_array.max(), rtol=1e-3))
    return 2 if 2 in coarsest else int(coarsest[-1])


def apex_first(lv_area_per_slice: np.ndarray) -> bool:
    """Whether slices run apex -> base: the LV cross-section grows along the stack.

    Judged by the least-squares slope of the LV (blood pool + myocardium) area over the
    slices that contain LV.

    Example:
        >>> apex_first(np.array([10, 40, 90, 120]))
        True
    """
    index = np.flatnonzero(lv_area_per_slice > 0)
    if index.size < 2:
        return False
    slope = np.polyfit(index.astype(float), lv_area_per_slice[index].astype(float), 1)[0]
    return bool(slope > 0)


def canonical_orientation(image: sitk.Image, labels: sitk.Image) -> tuple[sitk.Image, sitk.Image, Reorientation]:
    """Permute the slice axis last and order slices base -> apex (image and labels alike)."""
    import SimpleITK as sitk

    axis = slice_axis(image.GetSpacing())
    order = cast("tuple[int, int, int]", tuple(a for a in (0, 1, 2) if a != axis) + (axis,))  # axis in 0..2
    if order != (0, 1, 2):
        image = sitk.PermuteAxes(image, list(order))
        labels = sitk.PermuteAxes(labels, list(order))
    label_values = sitk.GetArrayViewFromImage(labels)
    area = (label_values > 0).reshape(label_values.shape[0], -1).sum(axis=1)
    flipped = apex_first(area)
    if flipped:
        image = sitk.Flip(image, [False, False, True])
        labels = sitk.Flip(labels, [False, False, True])
    return image, labels, Reorientation(order, flipped)


def lv_centre_index(labels: np.ndarray) -> tuple[float, float]:
    """In-plane (x, y) continuous index of the LV centroid (blood pool + myocardium voxels)."""
    zyx = np.argwhere(labels > 0)
    centre = zyx.mean(axis=0)
    return float(centre[2]), float(centre[1])


def crop_grid(image: sitk.Image, centre_xy: tuple[float, float], spacing_mm: float, size: int) -> sitk.Image:
    """An empty reference image: ``size`` x ``size`` in-plane at ``spacing_mm``, centred on ``centre_xy``,
    with the input's slices (positions, spacing, direction) kept."""
    import SimpleITK as sitk

    in_spacing = image.GetSpacing()
    half = (size - 1) / 2.0
    start = (centre_xy[0] - half * spacing_mm / in_spacing[0], centre_xy[1] - half * spacing_mm / in_spacing[1], 0.0)
    reference = sitk.Image([size, size, image.GetSize()[2]], sitk.sitkFloat32)
    reference.SetSpacing((spacing_mm, spacing_mm, in_spacing[2]))
    reference.SetDirection(image.GetDirection())
    reference.SetOrigin(image.TransformContinuousIndexToPhysicalPoint(start))
    return reference


def fraction_inside(region: np.ndarray, image: sitk.Image, reference: sitk.Image) -> float:
    """Share of ``region``'s voxels (on ``image``'s grid) whose centres fall inside ``reference``'s grid."""
    zyx = np.argwhere(region)
    if zyx.size == 0:
        return 1.0
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    points = np.asarray(image.GetOrigin()) + (zyx[:, ::-1] * np.asarray(image.GetSpacing())) @ direction.T
    ref_direction = np.asarray(reference.GetDirection()).reshape(3, 3)
    index = ((points - np.asarray(reference.GetOrigin())) @ ref_direction) / np.asarray(reference.GetSpacing())
    size = np.asarray(reference.GetSize())
    inside = np.all((index >= -0.5) & (index <= size - 0.5), axis=1)
    return float(inside.mean())


def resample_image(image: sitk.Image, reference: sitk.Image, default: float = 0.0) -> sitk.Image:
    """Linear resampling of intensities onto ``reference`` (outside the scan: ``default``)."""
    import SimpleITK as sitk

    return sitk.Resample(
        sitk.Cast(image, sitk.sitkFloat32), reference, sitk.Transform(), sitk.sitkLinear, default, sitk.sitkFloat32
    )


def resample_labels(labels: sitk.Image, reference: sitk.Image, values: tuple[int, ...]) -> sitk.Image:
    """Partial-volume-aware label resampling: each label's indicator is resampled linearly and
    every output voxel takes the label of largest weight (background included). A label absent from
    ``labels`` is not resampled: its weight would be 0 everywhere, and every output voxel has a label of
    positive weight (the weights are interpolated from indicators that sum to 1; outside, background is 1)."""
    import SimpleITK as sitk

    array = sitk.GetArrayViewFromImage(labels)
    kept: list[int] = []
    weights = []
    for value in (0, *values):
        where = array == value
        if value != 0 and not where.any():
            continue
        kept.append(value)
        indicator = sitk.GetImageFromArray(where.astype(np.float32))
        indicator.CopyInformation(labels)
        resampled = sitk.Resample(
            indicator, reference, sitk.Transform(), sitk.sitkLinear, 1.0 if value == 0 else 0.0, sitk.sitkFloat32
        )
        weights.append(sitk.GetArrayFromImage(resampled))
    winner = np.asarray(kept, dtype=np.uint8)[np.argmax(np.stack(weights), axis=0)]
    out = sitk.GetImageFromArray(winner)
    out.CopyInformation(reference)
    return out
