"""Slice montages of an attribution map over the LGE image, with myocardium and scar outlines.

One panel per short-axis slice, base (slice 1) to apex. The image is shown in grey with a robust
window (1st-99th percentile of the whole volume). The attribution is drawn on top with one colour
scale for the whole volume (so slices are comparable) and an opacity that grows with its magnitude
(zero attribution is transparent): a sequential map for a non-negative attribution (Grad-CAM), a
diverging one centred on 0 for a signed attribution (integrated gradients: red raises the risk,
blue lowers it). The scale's end is the 99.5th percentile of ``|attribution|`` (a few extreme
voxels do not wash out the rest). Outlines: myocardium in green, scar in magenta.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from lgerisk.errors import InputError
from lgerisk.io.atomic import atomic_path

MYOCARDIUM_COLOUR = "#39d353"
SCAR_COLOUR = "#ff2bd6"
MAX_OPACITY = 0.85
SCALE_PERCENTILE = 99.5


def synthetic_title(title: str, synthetic: bool) -> str:
    """``title`` marked ``SYNTHETIC`` when it shows synthetic data (once).

    Example:
        >>> synthetic_title("Grad-CAM", True)
        'SYNTHETIC — Grad-CAM'
    """
    if synthetic and "SYNTHETIC" not in title:
        return f"SYNTHETIC — {title}"
    return title


def _window(image: np.ndarray) -> tuple[float, float]:
    finite = image[np.isfinite(image)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = (float(v) for v in np.percentile(finite, [1, 99]))
    if not high > low:
        high = low + 1.0
    return low, high


def _scale(attribution: np.ndarray) -> float:
    magnitude = np.abs(attribution[np.isfinite(attribution)])
    if magnitude.size == 0:
        return 1.0
    scale = float(np.percentile(magnitude, SCALE_PERCENTILE))
    if not scale > 0:
        scale = float(magnitude.max())
    return scale if scale > 0 else 1.0


def _outline(axes: Any, mask: np.ndarray, colour: str) -> None:
    if mask.any() and not mask.all():
        axes.contour(mask.astype(float), levels=[0.5], colors=[colour], linewidths=0.9)


def attribution_montage(image: np.ndarray, attribution: np.ndarray, myocardium: np.ndarray, scar: np.ndarray,
                        path: str | os.PathLike[str], title: str, synthetic: bool = False, columns: int = 6,
                        label: str = "attribution") -> Path:
    """Write a PNG montage of ``attribution`` over ``image``, all ``(D, H, W)``; returns the path.

    ``label`` names the attribution in the colour bar (e.g. ``Grad-CAM``). Call once per method
    for several montages of the same case.

    Example:
        >>> volume = np.random.default_rng(0).normal(size=(4, 32, 32))
        >>> ring = np.zeros((4, 32, 32), bool); ring[:, 8:24, 8:24] = True
        >>> attribution_montage(volume, volume ** 2, ring, ring & (volume > 1), "cam.png",
        ...                     "Grad-CAM", synthetic=True)  # doctest: +SKIP
        PosixPath('cam.png')
    """
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    arrays = {"image": np.asarray(image, dtype=float), "attribution": np.asarray(attribution, dtype=float),
              "myocardium": np.asarray(myocardium).astype(bool), "scar": np.asarray(scar).astype(bool)}
    for name, array in arrays.items():
        if array.ndim != 3:
            raise InputError(f"montage {name} must be a (D, H, W) volume, got shape {array.shape}.")
        if array.shape != arrays["image"].shape:
            raise InputError(f"montage {name} of shape {array.shape} does not match the image of shape "
                             f"{arrays['image'].shape}.")
    if isinstance(columns, bool) or not isinstance(columns, int) or columns < 1:
        raise InputError(f"montage columns must be a positive integer, got {columns!r}.")
    volume, values = arrays["image"], np.nan_to_num(arrays["attribution"], nan=0.0, posinf=0.0, neginf=0.0)
    slices = volume.shape[0]
    if slices == 0:
        raise InputError("montage image has no slices.")
    columns = min(columns, slices)
    rows = math.ceil(slices / columns)

    low, high = _window(volume)
    scale = _scale(values)
    signed = bool((values < 0).any())
    colormap = colormaps["RdBu_r" if signed else "inferno"]
    norm = Normalize(vmin=-scale if signed else 0.0, vmax=scale)

    figure = Figure(figsize=(2.1 * columns + 1.2, 2.2 * rows + 0.9), layout="constrained")
    FigureCanvasAgg(figure)
    grid = figure.subplots(rows, columns, squeeze=False)
    for index, axes in enumerate(grid.ravel()):
        axes.set_axis_off()
        if index >= slices:
            continue
        axes.imshow(volume[index], cmap="gray", vmin=low, vmax=high, interpolation="nearest")
        overlay = colormap(norm(values[index]))
        overlay[..., 3] = np.clip(np.abs(values[index]) / scale, 0.0, 1.0) * MAX_OPACITY
        axes.imshow(overlay, interpolation="nearest")
        _outline(axes, arrays["myocardium"][index], MYOCARDIUM_COLOUR)
        _outline(axes, arrays["scar"][index], SCAR_COLOUR)
        where = " (base)" if index == 0 and slices > 1 else " (apex)" if index == slices - 1 and slices > 1 else ""
        axes.set_title(f"slice {index + 1}{where}", fontsize=9)

    mappable = ScalarMappable(norm=norm, cmap=colormap)
    colorbar = figure.colorbar(mappable, ax=grid.ravel().tolist(), shrink=0.8, pad=0.02)
    direction = " (red raises, blue lowers the risk)" if signed else ""
    colorbar.set_label(f"{label}{direction}\none scale for the whole volume; opacity ∝ |value|", fontsize=8)
    handles = [Line2D([], [], color=MYOCARDIUM_COLOUR, label="myocardium"),
               Line2D([], [], color=SCAR_COLOUR, label="scar")]
    figure.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    figure.suptitle(synthetic_title(title, synthetic), fontsize=11)

    final = Path(path)
    with atomic_path(final) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    return final
