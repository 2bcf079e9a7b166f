"""Small numeric helpers of the generator (pure numpy): ramps, angles, smooth random fields, block sums."""

from __future__ import annotations

import math
from typing import cast

import numpy as np

from lgerisk.synth.priors import PRIORS, SmoothFieldPriors

AngularNoise = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""A smooth random field over (angle, zeta) (:func:`angular_noise`): harmonics ``k`` (around the ventricle) and
``m`` (along it), phases and amplitudes."""


def plateau(u: np.ndarray, edge: float) -> np.ndarray:
    """1 for |u| <= 1 - edge, linear ramp to 0 at |u| = 1.

    Example:
        >>> plateau(np.array([0.0, 0.75, 1.0]), 0.5).tolist()
        [1.0, 0.5, 0.0]
    """
    return cast("np.ndarray", np.clip((1.0 - np.abs(u)) / edge, 0.0, 1.0))


def angle_diff(a: np.ndarray, b: float) -> np.ndarray:
    """Signed smallest difference a - b in degrees, in [-180, 180).

    Example:
        >>> angle_diff(np.array([10.0, 350.0]), 20.0).tolist()
        [-10.0, -30.0]
    """
    return (a - b + 180.0) % 360.0 - 180.0


def normal_cdf(z: np.ndarray) -> np.ndarray:
    """Logistic approximation of the standard normal CDF (max error ~0.01)."""
    return 1.0 / (1.0 + np.exp(-1.702 * z))


def angular_noise(rng: np.random.Generator, priors: SmoothFieldPriors = PRIORS.noise) -> AngularNoise:
    """Draw a smooth random field over (angle, zeta): a unit-variance sum of low harmonics (its parameters)."""
    n = priors.terms
    k = rng.integers(priors.angular_harmonics[0], priors.angular_harmonics[1] + 1, size=n).astype(float)
    m = rng.integers(priors.long_axis_harmonics[0], priors.long_axis_harmonics[1] + 1, size=n).astype(float)
    phase = rng.uniform(0, 2 * np.pi, size=n)  # uniform on the circle
    amp = np.full(n, math.sqrt(2.0 / n))
    return k, m, phase, amp


def eval_angular_noise(params: tuple[np.ndarray, ...], theta_deg: np.ndarray, zeta: np.ndarray | float) -> np.ndarray:
    """The field of :func:`angular_noise` at anatomical angles ``theta_deg`` and long-axis positions ``zeta``."""
    k, m, phase, amp = params
    th = np.radians(theta_deg)
    out = np.zeros(np.broadcast(th, zeta).shape, dtype=np.float32)
    for kj, mj, pj, aj in zip(k, m, phase, amp):
        out += (aj * np.cos(kj * th + mj * np.pi * zeta + pj)).astype(np.float32)
    return out


def block_mean(a: np.ndarray, q: int, f: int) -> np.ndarray:
    """Mean over blocks of ``q`` x ``f`` x ``f`` fine samples (z, y, x): fine grid -> output grid."""
    nz, ny, nx = a.shape
    return cast("np.ndarray", a.reshape(nz // q, q, ny // f, f, nx // f, f).mean(axis=(1, 3, 5), dtype=np.float32))


def block_sum(a: np.ndarray, q: int, f: int) -> np.ndarray:
    """Count (int16 sum) over blocks of ``q`` x ``f`` x ``f`` fine samples (z, y, x)."""
    nz, ny, nx = a.shape
    return cast("np.ndarray", a.reshape(nz // q, q, ny // f, f, nx // f, f).sum(axis=(1, 3, 5), dtype=np.int16))
