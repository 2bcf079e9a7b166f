"""Slice montages of an attribution map over the LGE image, with myocardium and scar outlines.

One panel per short-axis slice of the scan, base to apex, each titled with the scan's own slice number
(padding slices of a network input are never passed in: see :func:`lgerisk.explain.slices.tensor_view`).
The image is shown in grey with a robust window (1st-99th percentile of the voxels inside the scan's field
of view); voxels outside it (``inside`` False: padding, or background fill where the crop reaches beyond
the scan) are drawn flat light grey and carry no attribution. The attribution is drawn on top with one
colour scale for the whole volume (so slices are comparable) and an opacity that grows with its magnitude
(zero attribution is transparent): a sequential map for a non-negative attribution (Grad-CAM), a
diverging one centred on 0 for a signed attribution (integrated gradients: red raises the risk,
blue lowers it). The scale's end is the 99.5th percentile of ``|attribution|`` inside the field of view
(a few extreme voxels do not wash out the rest). Outlines: myocardium in green, scar in magenta.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lgerisk.errors import InputError
from lgerisk.evaluation.plots import synthetic_title
from lgerisk.io.atomic import atomic_path

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MYOCARDIUM_COLOUR = "#39d353"
SCAR_COLOUR = "#ff2bd6"
OUTSIDE_COLOUR = "#d9d9d9"
MAX_OPACITY = 0.85
SCALE_PERCENTILE = 99.5


def provenance_title(title: str, scan_synthetic: bool, model_synthetic: bool) -> str:
    r"""``title`` with what is true of the pictured scan and the model that scored it.

    Example:
        >>> provenance_title("Grad-CAM", True, True)
        'SYNTHETIC — Grad-CAM'
        >>> provenance_title("Grad-CAM", False, True)
        'Grad-CAM\nmodel trained on SYNTHETIC data; real scan: the risk is not meaningful for it'
        >>> provenance_title("Grad-CAM", False, False)
        'Grad-CAM'
    """
    if scan_synthetic and model_synthetic:
        return synthetic_title(title, True)
    if scan_synthetic:
        return f"SYNTHETIC scan — {title}"
    if model_synthetic:
        return f"{title}\nmodel trained on SYNTHETIC data; real scan: the risk is not meaningful for it"
    return title


def slice_titles(numbers: list[int]) -> list[str]:
    """Panel titles: the scan's own slice numbers, listed base first, the first and last named.

    Example:
        >>> slice_titles([7, 6, 5])
        ['slice 7 (base)', 'slice 6', 'slice 5 (apex)']
    """
    titles = [f"slice {number}" for number in numbers]
    if len(titles) > 1:
        titles[0] += " (base)"
        titles[-1] += " (apex)"
    return titles


def _window(image: np.ndarray, inside: np.ndarray) -> tuple[float, float]:
    finite = image[np.isfinite(image) & inside]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = (float(v) for v in np.percentile(finite, [1, 99]))
    if not high > low:
        high = low + 1.0
    return low, high


def _scale(attribution: np.ndarray, inside: np.ndarray) -> float:
    magnitude = np.abs(attribution[np.isfinite(attribution) & inside])
    if magnitude.size == 0:
        return 1.0
    scale = float(np.percentile(magnitude, SCALE_PERCENTILE))
    if not scale > 0:
        scale = float(magnitude.max())
    return scale if scale > 0 else 1.0


def _outline(axes: Axes, mask: np.ndarray, colour: str) -> None:
    if mask.any() and not mask.all():
        axes.contour(mask.astype(float), levels=[0.5], colors=[colour], linewidths=0.9)


def montage_figure(
    image: np.ndarray,
    attribution: np.ndarray,
    myocardium: np.ndarray,
    scar: np.ndarray,
    title: str,
    synthetic: bool = False,
    columns: int = 6,
    label: str = "attribution",
    slice_numbers: list[int] | None = None,
    inside: np.ndarray | None = None,
    model_synthetic: bool = False,
) -> Figure:
    """The matplotlib ``Figure`` of :func:`attribution_montage` (same arguments, no file)."""
    from matplotlib import colormaps
    from matplotlib.artist import Artist
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    arrays = {
        "image": np.asarray(image, dtype=float),
        "attribution": np.asarray(attribution, dtype=float),
        "myocardium": np.asarray(myocardium).astype(bool),
        "scar": np.asarray(scar).astype(bool),
    }
    if inside is not None:
        arrays["inside"] = np.asarray(inside).astype(bool)
    for name, array in arrays.items():
        if array.ndim != 3:
            raise InputError(f"montage {name} must be a (D, H, W) volume, got shape {array.shape}.")
        if array.shape != arrays["image"].shape:
            raise InputError(
                f"montage {name} of shape {array.shape} does not match the image of shape {arrays['image'].shape}."
            )
    if isinstance(columns, bool) or not isinstance(columns, int) or columns < 1:
        raise InputError(f"montage columns must be a positive integer, got {columns!r}.")
    volume = arrays["image"]
    slices = volume.shape[0]
    if slices == 0:
        raise InputError("montage image has no slices.")
    numbers = list(range(1, slices + 1)) if slice_numbers is None else [int(n) for n in slice_numbers]
    if len(numbers) != slices:
        raise InputError(f"montage: {len(numbers)} slice numbers for {slices} slices.")
    within = arrays.get("inside", np.ones(volume.shape, dtype=bool))
    values = np.where(within, np.nan_to_num(arrays["attribution"], nan=0.0, posinf=0.0, neginf=0.0), 0.0)
    columns = min(columns, slices)
    rows = math.ceil(slices / columns)

    low, high = _window(volume, within)
    scale = _scale(values, within)
    signed = bool((values < 0).any())
    colormap = colormaps["RdBu_r" if signed else "inferno"]
    norm = Normalize(vmin=-scale if signed else 0.0, vmax=scale)
    grey = colormaps["gray"].with_extremes(bad=OUTSIDE_COLOUR)

    figure = Figure(
        figsize=(2.1 * columns + 1.2, 2.2 * rows + 0.9 + (0.3 if "\n" in title else 0.0)), layout="constrained"
    )
    FigureCanvasAgg(figure)
    grid = figure.subplots(rows, columns, squeeze=False)
    for index, (axes, heading) in enumerate(zip(grid.ravel(), slice_titles(numbers))):
        axes.imshow(
            np.ma.masked_where(~within[index], volume[index]), cmap=grey, vmin=low, vmax=high, interpolation="nearest"
        )
        overlay = colormap(norm(values[index]))
        overlay[..., 3] = np.clip(np.abs(values[index]) / scale, 0.0, 1.0) * MAX_OPACITY
        axes.imshow(overlay, interpolation="nearest")
        _outline(axes, arrays["myocardium"][index], MYOCARDIUM_COLOUR)
        _outline(axes, arrays["scar"][index], SCAR_COLOUR)
        axes.set_title(heading, fontsize=9)
    for axes in grid.ravel():
        axes.set_axis_off()

    mappable = ScalarMappable(norm=norm, cmap=colormap)
    colorbar = figure.colorbar(mappable, ax=grid.ravel().tolist(), shrink=0.8, pad=0.02)
    direction = "\nred raises, blue lowers the risk" if signed else ""  # short lines: a one-row montage is low
    colorbar.set_label(f"{label}{direction}\none scale for the whole volume\nopacity ∝ |value|", fontsize=8)
    handles: list[Artist] = [
        Line2D([], [], color=MYOCARDIUM_COLOUR, label="myocardium"),
        Line2D([], [], color=SCAR_COLOUR, label="scar"),
    ]
    if not within.all():
        from matplotlib.patches import Patch

        handles.append(Patch(color=OUTSIDE_COLOUR, label="outside the scan (no attribution shown)"))
    figure.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False)
    figure.suptitle(provenance_title(title, synthetic, model_synthetic), fontsize=11)
    return figure


def attribution_montage(
    image: np.ndarray,
    attribution: np.ndarray,
    myocardium: np.ndarray,
    scar: np.ndarray,
    path: str | os.PathLike[str],
    title: str,
    synthetic: bool = False,
    columns: int = 6,
    label: str = "attribution",
    slice_numbers: list[int] | None = None,
    inside: np.ndarray | None = None,
    model_synthetic: bool = False,
) -> Path:
    """Write a PNG montage of ``attribution`` over ``image``, all ``(D, H, W)``; returns the path.

    One panel per slice given (pass the scan's real slices only). ``slice_numbers``: the scan's own
    number of each slice (default 1..D). ``inside``: ``(D, H, W)`` bool, False where a voxel is not the
    scan (padding, background fill): drawn flat grey, its attribution not shown and not scaled on.
    ``synthetic``: the scan is synthetic; ``model_synthetic``: the model was trained on synthetic data
    (the title says what is true of the pair). ``label`` names the attribution in the colour bar (e.g.
    ``Grad-CAM``). Call once per method for several montages of the same case.

    Example:
        >>> volume = np.random.default_rng(0).normal(size=(4, 32, 32))
        >>> ring = np.zeros((4, 32, 32), bool); ring[:, 8:24, 8:24] = True
        >>> attribution_montage(volume, volume ** 2, ring, ring & (volume > 1), "cam.png",
        ...                     "Grad-CAM", synthetic=True)  # doctest: +SKIP
        PosixPath('cam.png')
    """
    figure = montage_figure(
        image,
        attribution,
        myocardium,
        scar,
        title,
        synthetic=synthetic,
        columns=columns,
        label=label,
        slice_numbers=slice_numbers,
        inside=inside,
        model_synthetic=model_synthetic,
    )
    final = Path(path)
    with atomic_path(final) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    return final
