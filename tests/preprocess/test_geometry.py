"""Canonical orientation and in-plane resampling onto the LV crop."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from lgerisk.preprocess import geometry
from tests.helpers import phantom_arrays


def _images(image: np.ndarray, labels: np.ndarray, spacing=(1.5, 1.5, 10.0)):
    img, lab = sitk.GetImageFromArray(image), sitk.GetImageFromArray(labels)
    img.SetSpacing(spacing)
    lab.SetSpacing(spacing)
    return img, lab


def test_slice_axis_is_coarsest() -> None:
    assert geometry.slice_axis((1.4, 1.4, 10.0)) == 2
    assert geometry.slice_axis((10.0, 1.4, 1.4)) == 0
    assert geometry.slice_axis((1.0, 1.0, 1.0)) == 2


def test_apex_first_stack_is_flipped_to_base_first() -> None:
    image, labels = phantom_arrays()
    img, lab = _images(image[::-1].copy(), labels[::-1].copy())
    out_img, out_lab, how = geometry.canonical_orientation(img, lab)
    assert how.slices_flipped and how.axis_order == (0, 1, 2)
    assert np.array_equal(sitk.GetArrayFromImage(out_lab), labels)
    # every voxel keeps its physical position
    assert np.allclose(out_lab.TransformIndexToPhysicalPoint((3, 4, 0)), lab.TransformIndexToPhysicalPoint((3, 4, 5)))


def test_slice_axis_moved_last() -> None:
    image, labels = phantom_arrays()
    # store the stack with slices along x: array (x', y, z') -> transpose so sitk x axis is the slice axis
    img, lab = _images(
        np.ascontiguousarray(image.transpose(1, 2, 0)),
        np.ascontiguousarray(labels.transpose(1, 2, 0)),
        spacing=(10.0, 1.5, 1.5),
    )
    out_img, out_lab, how = geometry.canonical_orientation(img, lab)
    assert how.axis_order == (1, 2, 0)
    assert out_lab.GetSpacing() == (1.5, 1.5, 10.0)
    assert out_lab.GetSize()[2] == labels.shape[0]


def test_crop_is_centred_on_lv_and_keeps_slices() -> None:
    image, labels = phantom_arrays()
    img, lab = _images(image, labels)
    reference = geometry.crop_grid(img, geometry.lv_centre_index(labels), 1.0, 96)
    assert reference.GetSize() == (96, 96, labels.shape[0])
    assert reference.GetSpacing() == (1.0, 1.0, 10.0)
    out = geometry.resample_labels(lab, reference, (1, 2, 3))
    array = sitk.GetArrayFromImage(out)
    zyx = np.argwhere(array > 0).mean(axis=0)
    assert abs(zyx[1] - 47.5) < 1.5 and abs(zyx[2] - 47.5) < 1.5
    # volumes are kept through resampling (partial-volume-aware labels)
    before = (labels == 2).sum() * 1.5 * 1.5
    after = (array == 2).sum() * 1.0 * 1.0
    assert abs(after - before) / before < 0.05
    resampled = sitk.GetArrayFromImage(geometry.resample_image(img, reference))
    assert abs(resampled[array == 1].mean() - 600) < 20


def test_fraction_inside_and_crop_warning(tmp_path) -> None:
    from lgerisk.io.cohort import discover_cohort
    from lgerisk.preprocess.config import PreprocessConfig
    from lgerisk.preprocess.pipeline import preprocess_case
    from tests.helpers import make_cohort

    image, labels = phantom_arrays()
    img, _ = _images(image, labels)
    centre = geometry.lv_centre_index(labels)
    assert geometry.fraction_inside(labels == 2, img, geometry.crop_grid(img, centre, 1.0, 96)) == 1.0
    assert geometry.fraction_inside(labels == 2, img, geometry.crop_grid(img, centre, 1.0, 24)) < 0.5
    case = discover_cohort(make_cohort(tmp_path / "c", n=1)).cases[0]
    assert preprocess_case(case, PreprocessConfig()).qc["warnings"] == []
    small = preprocess_case(case, PreprocessConfig(crop_size=16)).qc
    assert small["myocardium_in_crop_fraction"] < 0.5 and "crop_size" in small["warnings"][0]


def test_blood_pool_is_derived_in_plane_even_when_slices_are_stored_along_x(tmp_path) -> None:
    """A map without blood labels: the blood pool is filled within each short-axis slice, after the
    slice axis has been moved last, and matches the phantom's true blood pool."""
    import SimpleITK as sitk

    from lgerisk.io.cohort import discover_cohort
    from lgerisk.preprocess.config import PreprocessConfig
    from lgerisk.preprocess.pipeline import preprocess_case
    from tests.helpers import write_volume

    image, labels = phantom_arrays()
    myocardium_only = np.where(labels >= 2, 2, 0).astype(np.uint8)  # blood pool unlabelled
    # store with slices along the x axis (array (x', y, z') -> slices are the last numpy axis)
    write_volume(
        tmp_path / "c" / "images" / "p.nii.gz", np.ascontiguousarray(image.transpose(1, 2, 0)), (10.0, 1.5, 1.5)
    )
    write_volume(
        tmp_path / "c" / "masks" / "p.nii.gz",
        np.ascontiguousarray(myocardium_only.transpose(1, 2, 0)),
        (10.0, 1.5, 1.5),
    )
    case = discover_cohort(tmp_path / "c").cases[0]
    result = preprocess_case(case, PreprocessConfig(labels="myocardium=2", scar_method="nsd"))
    expected_ml = (labels == 1).sum() * 1.5 * 1.5 * 10.0 / 1000
    assert abs(result.qc["blood_pool_volume_ml"] - expected_ml) < 0.01 * expected_ml
    assert sitk.GetArrayFromImage(result.labels).max() >= 1


def _every_label_resampled(labels: sitk.Image, reference: sitk.Image, values: tuple[int, ...]) -> np.ndarray:
    """resample_labels as it was before absent labels were skipped: every listed label's indicator resampled."""
    array = sitk.GetArrayViewFromImage(labels)
    weights = []
    for value in (0, *values):
        indicator = sitk.GetImageFromArray((array == value).astype(np.float32))
        indicator.CopyInformation(labels)
        resampled = sitk.Resample(
            indicator, reference, sitk.Transform(), sitk.sitkLinear, 1.0 if value == 0 else 0.0, sitk.sitkFloat32
        )
        weights.append(sitk.GetArrayFromImage(resampled))
    return np.asarray((0, *values), dtype=np.uint8)[np.argmax(np.stack(weights), axis=0)]


def test_labels_absent_from_the_mask_do_not_change_the_resampled_labels() -> None:
    """Skipping the indicators of absent labels (listed first, in the middle, last) gives the same voxels as
    resampling every one, at a crop that reaches outside the scan and at an oblique, finer grid."""
    image, labels = phantom_arrays()
    img, lab = _images(image, labels.astype(np.uint8))
    assert set(np.unique(labels)) == {0, 1, 2, 3}
    centre = geometry.lv_centre_index(labels)
    for spacing, size in ((1.0, 96), (0.7, 160), (2.3, 64)):
        reference = geometry.crop_grid(img, (centre[0] + 9.5, centre[1] - 4.0), spacing, size)
        for values in ((1, 2, 3, 4, 5), (4, 1, 2, 5, 3), (7, 8, 1, 2, 3)):
            ours = sitk.GetArrayFromImage(geometry.resample_labels(lab, reference, values))
            np.testing.assert_array_equal(ours, _every_label_resampled(lab, reference, values))
