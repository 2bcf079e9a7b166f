"""Image formation: the scanner-like int16 LGE image of a rendered heart.

A body scene around the heart (outline, subcutaneous fat, lungs, spine, aorta, liver), the heart's
fine-grid signal averaged to the output grid (partial volume), a smooth coil bias and Rician noise
(docs/synthetic.md, "Image formation"). Draws come from the case's ``image`` stream, so the image
never changes the ground truth.
"""

from __future__ import annotations

import math

import numpy as np

from lgerisk.synth.anatomy import Acquisition, Heart
from lgerisk.synth.config import SynthConfig
from lgerisk.synth.numeric import block_mean
from lgerisk.synth.phantom import NOREFLOW, HeartRender
from lgerisk.synth.priors import PRIORS, BodyPriors, ImagePriors


def ellipse_occupancy(
    x: np.ndarray, y: np.ndarray, cx: float, cy: float, a: float, b: float, pixel: float, angle: float = 0.0
) -> np.ndarray:
    """Soft (anti-aliased) inside-ellipse fraction: ~signed distance ramped over one pixel."""
    ca, sa = math.cos(angle), math.sin(angle)
    dx, dy = x - cx, y - cy
    u = (dx * ca + dy * sa) / a
    v = (-dx * sa + dy * ca) / b
    dist = (np.sqrt(u * u + v * v) - 1.0) * min(a, b)
    return np.clip(0.5 - dist / pixel, 0.0, 1.0).astype(np.float32)


def render_image(
    acq: Acquisition,
    heart: Heart,
    render: HeartRender,
    rng: np.random.Generator,
    cfg: SynthConfig,
    priors: ImagePriors = PRIORS.image,
    body_priors: BodyPriors = PRIORS.body,
) -> tuple[np.ndarray, dict[str, float]]:
    """Scanner-like int16 LGE image: background scene + heart (partial volume) + bias + Rician noise.

    Returns the image (z, y, x) and its drawn signal-to-noise ratio, bias amplitude, blood signal and
    noise sigma (scanner units).
    """
    p, b = priors, body_priors
    s = acq.spacing_xy
    f, q = cfg.supersample_xy, cfg.supersample_z
    # intensities relative to dense scar core = 1
    blood = float(rng.uniform(*p.blood))
    remote = float(rng.uniform(*p.remote))
    fat_i = float(rng.uniform(*p.fat))
    muscle = float(rng.uniform(*p.muscle))
    lung = float(rng.uniform(*p.lung))
    liver = float(rng.uniform(*p.liver))
    spine = float(rng.uniform(*p.spine))
    mvo_i = float(rng.uniform(*p.noreflow))
    snr = float(rng.uniform(*p.snr_blood))
    bias_amp = float(rng.uniform(*p.bias_amplitude))
    scale = float(rng.uniform(*p.blood_units)) / blood  # blood in scanner units

    # background scene on the output grid (soft edges), per slice where it changes with z
    x = ((np.arange(acq.nx) * s).astype(np.float32))[None, :]
    y = ((np.arange(acq.ny) * s).astype(np.float32))[:, None]
    zc = np.arange(acq.nz) * acq.spacing_z
    bcx = heart.cx - float(rng.uniform(*b.body_left_of_heart_mm))
    bcy = heart.cy + float(rng.uniform(*b.body_below_heart_mm))
    ba, bb = float(rng.uniform(*b.body_semi_axis_x_mm)), float(rng.uniform(*b.body_semi_axis_y_mm))
    bang = math.radians(float(rng.uniform(*b.body_rotation_deg)))
    fat_layer = float(rng.uniform(*b.subcutaneous_fat_mm))
    body = ellipse_occupancy(x, y, bcx, bcy, ba, bb, s, bang)
    inner = ellipse_occupancy(x, y, bcx, bcy, ba - fat_layer, bb - fat_layer, s, bang)
    plane = fat_i * body
    plane = plane * (1 - inner) + muscle * inner
    # the tuples are evaluated, so drawn, left to right
    (lla, llb), (rla, rlb) = b.left_lung_semi_axes_mm, b.right_lung_semi_axes_mm
    lungs = [
        (
            bcx - float(rng.uniform(*b.left_lung_left_of_body_mm)),
            bcy - float(rng.uniform(*b.left_lung_above_body_mm)),
            float(rng.uniform(*lla)),
            float(rng.uniform(*llb)),
        ),
        (
            heart.cx + float(rng.uniform(*b.right_lung_right_of_heart_mm)),
            heart.cy + float(rng.uniform(*b.right_lung_below_heart_mm)),
            float(rng.uniform(*rla)),
            float(rng.uniform(*rlb)),
        ),
    ]
    for lx, ly, la, lb in lungs:
        occ = ellipse_occupancy(x, y, lx, ly, la, lb, s) * inner
        plane = plane * (1 - occ) + lung * occ
    spx = bcx + float(rng.uniform(*b.spine_right_of_body_mm))
    spy = bcy + bb - fat_layer - float(rng.uniform(*b.spine_above_back_mm))
    spr = float(rng.uniform(*b.spine_radius_mm))
    occ = ellipse_occupancy(x, y, spx, spy, spr, spr, s) * inner
    plane = plane * (1 - occ) + spine * occ
    aox = spx + float(rng.uniform(*b.aorta_right_of_spine_mm))
    aoy = spy - float(rng.uniform(*b.aorta_above_spine_mm))
    aor = float(rng.uniform(*b.aorta_radius_mm))
    occ = ellipse_occupancy(x, y, aox, aoy, aor, aor, s) * inner
    plane = plane * (1 - occ) + blood * occ
    # liver: below-left of the heart, growing towards the apex
    lvx = heart.cx - float(rng.uniform(*b.liver_left_of_heart_mm))
    lvy = heart.cy + float(rng.uniform(*b.liver_below_heart_mm))
    la, lb = float(rng.uniform(*b.liver_semi_axes_mm[0])), float(rng.uniform(*b.liver_semi_axes_mm[1]))
    length = heart.z_apex - heart.z_base
    img = np.empty((acq.nz, acq.ny, acq.nx), dtype=np.float32)
    for k in range(acq.nz):
        grow = float(np.clip(0.3 + 0.9 * (zc[k] - heart.z_base) / length, 0.3, 1.2))
        occ = ellipse_occupancy(x, y, lvx, lvy, la * grow, lb * grow, s) * inner
        img[k] = plane * (1 - occ) + liver * occ

    # heart: fine-grid signal averaged to the output grid, composited over the scene
    sig = np.zeros(render.fine_labels.shape, dtype=np.float32)
    sig[render.lv_blood] = blood
    sig[render.papillary] = remote
    sig[render.rv_blood] = blood * float(rng.uniform(*p.rv_blood_factor))
    sig[render.rv_wall] = remote
    sig[render.fat] = fat_i
    iz, iy, ix = render.myo_index
    myo_sig = remote + render.enhancement * (1.0 - remote)
    myo_sig[render.fine_labels[iz, iy, ix] == NOREFLOW] = mvo_i
    sig[iz, iy, ix] = myo_sig
    owned = (render.fine_labels > 0) | render.rv_blood | render.rv_wall | render.fat
    i0, i1, j0, j1 = render.box
    occ_h = block_mean(owned.astype(np.float32), q, f)
    sig_h = block_mean(sig, q, f)
    img[:, j0:j1, i0:i1] = img[:, j0:j1, i0:i1] * (1 - occ_h) + sig_h

    # smooth multiplicative coil bias: random quadratic, +-bias_amp over the field of view
    xn = np.linspace(-1, 1, acq.nx, dtype=np.float32)[None, None, :]
    yn = np.linspace(-1, 1, acq.ny, dtype=np.float32)[None, :, None]
    zn = np.linspace(-1, 1, acq.nz, dtype=np.float32)[:, None, None]
    c = rng.normal(size=6)
    c[1] -= p.coil_anterior_shift  # anterior surface coil: brighter towards the top of the image
    poly = (
        c[0] * xn
        + c[1] * yn
        + c[2] * xn * yn
        + c[3] * (xn**2 - 0.33)
        + c[4] * (yn**2 - 0.33)
        + p.bias_through_plane * c[5] * zn
    )
    bias = (1.0 + bias_amp * poly / max(float(np.abs(poly).max()), 1e-6)).astype(np.float32)
    # Rician noise: magnitude of the complex signal plus complex Gaussian noise
    kb = int(np.clip(round(heart.cy / s), 0, acq.ny - 1)), int(np.clip(round(heart.cx / s), 0, acq.nx - 1))
    sigma = blood * float(bias[acq.nz // 2, kb[0], kb[1]]) / snr
    real = img * bias + sigma * rng.standard_normal(img.shape, dtype=np.float32)
    imag = sigma * rng.standard_normal(img.shape, dtype=np.float32)
    mag = np.sqrt(real * real + imag * imag) * scale
    out = np.clip(np.rint(mag), 0, 32767).astype(np.int16)
    info = {
        "snr_blood": snr,
        "bias_amplitude": bias_amp,
        "blood_units": blood * scale,
        "noise_sigma_units": sigma * scale,
    }
    return out, info
