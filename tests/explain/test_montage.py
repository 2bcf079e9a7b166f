"""Montages show the scan's real slices only, numbered as in the scan, and no attribution outside it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lgerisk.explain.montage import montage_figure, slice_titles
from lgerisk.explain.slices import field_of_view, tensor_view
from tests.helpers import phantom_arrays, write_volume


def _panels(figure: Figure) -> list[Axes]:
    """The montage panels that draw something (an image), in order."""
    return [axes for axes in figure.axes if axes.images]


def _pixels(figure: Figure) -> np.ndarray:
    """The figure drawn, as RGBA pixels."""
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba()).copy()


def test_a_seven_slice_scan_gives_seven_panels_numbered_by_the_scan() -> None:
    image, labels = phantom_arrays(slices=7, size=40)
    view = tensor_view(np.ones(image.shape, bool), slices=12, size=48)
    assert view.count == 7 and view.numbers == (1, 2, 3, 4, 5, 6, 7)
    assert not view.inside[7:].any()  # the 5 padding slices of the network input
    assert view.inside[:7, 4:44, 4:44].all() and not view.inside[:, :4].any()  # in-plane padding: 4 each side

    tensor = np.zeros((12, 48, 48))
    tensor[:7, 4:44, 4:44] = image
    myocardium = np.zeros(tensor.shape, bool)
    myocardium[:7, 4:44, 4:44] = labels >= 2
    real = slice(0, view.count)
    figure = montage_figure(
        tensor[real],
        np.abs(tensor[real]),
        myocardium[real],
        np.zeros_like(myocardium[real]),
        "Grad-CAM",
        slice_numbers=list(view.numbers),
        inside=view.inside[real],
    )
    panels = _panels(figure)
    assert len(panels) == 7
    assert [axes.get_title() for axes in panels] == [
        "slice 1 (base)",
        "slice 2",
        "slice 3",
        "slice 4",
        "slice 5",
        "slice 6",
        "slice 7 (apex)",
    ]
    assert not any("slice 8" in axes.get_title() or "slice 12" in axes.get_title() for axes in figure.axes)


def test_numbers_follow_the_scan_when_it_was_stored_apex_first_or_subsampled() -> None:
    flipped = tensor_view(np.ones((7, 8, 8), bool), slices=12, size=8, slices_flipped=True)
    assert flipped.numbers == (7, 6, 5, 4, 3, 2, 1)
    assert slice_titles(list(flipped.numbers))[0] == "slice 7 (base)"
    assert slice_titles(list(flipped.numbers))[-1] == "slice 1 (apex)"
    many = tensor_view(np.ones((13, 8, 8), bool), slices=5, size=8)
    assert many.count == 5 and many.numbers == (1, 4, 7, 10, 13) and many.inside.all()


def test_an_attribution_in_padding_is_not_drawn() -> None:
    rng = np.random.default_rng(0)
    volume = rng.normal(size=(3, 24, 24))
    inside = np.zeros(volume.shape, bool)
    inside[:, 4:20, 4:20] = True  # the scan; the 4-voxel frame is padding
    myocardium = np.zeros(volume.shape, bool)
    myocardium[:, 8:16, 8:16] = True
    quiet = np.zeros(volume.shape)
    hot_padding = quiet.copy()
    hot_padding[1, 0:3, 0:3] = 50.0  # a hotspot in the padding only

    drawn = montage_figure(volume, hot_padding, myocardium, np.zeros_like(myocardium), "IG", inside=inside)
    overlay = _panels(drawn)[1].images[1].get_array()
    assert overlay.shape == (24, 24, 4) and np.all(overlay[..., 3] == 0)  # fully transparent everywhere
    reference = montage_figure(volume, quiet, myocardium, np.zeros_like(myocardium), "IG", inside=inside)
    assert np.array_equal(_pixels(drawn), _pixels(reference))  # the same picture as no attribution at all

    hot_inside = quiet.copy()
    hot_inside[1, 10, 10] = 50.0  # the same hotspot inside the scan is drawn
    shown = montage_figure(volume, hot_inside + hot_padding, myocardium, np.zeros_like(myocardium), "IG", inside=inside)
    alpha = _panels(shown)[1].images[1].get_array()[..., 3]
    assert alpha[10, 10] > 0.5 and np.all(alpha[0:3, 0:3] == 0)
    # the padding is drawn flat (masked), the scan in grey
    image = _panels(shown)[1].images[0].get_array()
    assert np.ma.is_masked(image) and image.mask[0, 0] and not image.mask[10, 10]


def test_montage_rejects_slice_numbers_that_do_not_fit() -> None:
    from lgerisk.errors import InputError

    volume = np.zeros((3, 8, 8))
    with pytest.raises(InputError, match="3 slices"):
        montage_figure(volume, volume, volume > 0, volume > 0, "x", slice_numbers=[1, 2])


def test_field_of_view_of_a_crop_reaching_beyond_the_scan(tmp_path: Path) -> None:
    """A 48 x 48 scan at 1.5 mm (72 mm) in the default 96-voxel crop at 1.4 mm (134 mm): the crop's edges are
    background fill, found from the source's geometry and, without it, from the constant edge bands."""
    from lgerisk.io.cohort import Case
    from lgerisk.io.layout import IMAGE_FILE, case_dir
    from lgerisk.preprocess.config import PreprocessConfig
    from lgerisk.preprocess.pipeline import preprocess_case, write_case

    image, labels = phantom_arrays(slices=5, size=48)
    source = write_volume(tmp_path / "raw" / "P1.nii.gz", image)
    mask = write_volume(tmp_path / "raw" / "P1_seg.nii.gz", labels)
    result = preprocess_case(Case("P1", source, mask), PreprocessConfig())
    write_case(result, tmp_path / "prep")
    prepared = case_dir(tmp_path / "prep", "P1") / IMAGE_FILE

    exact = field_of_view(prepared, source)
    assert exact.shape == (5, 96, 96)
    columns = exact[2].any(axis=0).sum()
    assert abs(columns - 48 * 1.5 / 1.4) <= 1.5  # the scan's 72 mm width, in 1.4 mm voxels
    assert not exact[:, 0, :].any() and not exact[:, :, -1].any() and exact[:, 48, 48].all()
    guessed = field_of_view(prepared)  # a case given already preprocessed: the constant bands
    assert (guessed != exact).mean() < 0.05
    assert not guessed[:, 0, :].any() and guessed[:, 48, 48].all()
    # the fill really is constant there and varies inside (what the band rule relies on)
    values = sitk.GetArrayFromImage(sitk.ReadImage(str(prepared)))
    assert np.ptp(values[~exact]) == 0 and np.ptp(values[exact]) > 0
