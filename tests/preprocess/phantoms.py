"""Phantoms of the scar tests (shared by the test modules of tests/preprocess)."""

from __future__ import annotations

import numpy as np

SPACING = (1.4, 1.4, 10.0)


def ring_phantom(
    scar_fraction: float,
    seed: int = 0,
    size: int = 64,
    slices: int = 6,
    wall: float = 7.0,
    scar: float = 350.0,
    noise: float = 35.0,
) -> tuple[np.ndarray, np.ndarray]:
    """A ring phantom (z, y, x) whose scar is one transmural sector covering ``scar_fraction`` of the wall.

    Remote myocardium 100, scar ``scar``, blood 600, background 50, Gaussian noise SD ``noise``: a
    contrast-to-noise like real LGE's, where a scar-inflated reference misses scar.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(float)
    radius = np.hypot(yy - size / 2, xx - size / 2)
    angle = np.arctan2(yy - size / 2, xx - size / 2)  # -pi..pi
    labels = np.zeros((slices, size, size), dtype=np.uint8)
    for k in range(slices):
        labels[k][radius < 12 + wall] = 2
        labels[k][radius < 12] = 1
        labels[k][(labels[k] == 2) & (angle < -np.pi + 2 * np.pi * scar_fraction)] = 3
    image = np.choose(labels, [50.0, 600.0, 100.0, scar]) + rng.normal(0, noise, labels.shape)
    return image.astype(np.float32), labels
