"""The heart on a fine grid: tissue classes, enhancement and the ground truth measured there.

Tissue is rendered on a finer grid than the image (``SynthConfig.supersample_xy`` x in-plane,
``supersample_z`` samples through the slice thickness): :func:`render_heart` labels every fine
sample (blood, myocardium, grey zone, scar core, no-reflow) and gives each myocardial sample its
enhancement fraction e (0 remote .. 1 dense scar); the ground-truth percentages are measured on
that grid (:func:`truth_from_fine`, :func:`headroom_truth`); the output labels are the majority of
the fine samples of each voxel (:func:`majority_labels`). Conventions: :mod:`lgerisk.synth.anatomy`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import numpy as np

from lgerisk.synth.anatomy import Acquisition, Heart, Scar, ScarParams
from lgerisk.synth.config import SynthConfig
from lgerisk.synth.numeric import (
    angle_diff,
    block_sum,
    eval_angular_noise,
    normal_cdf,
    plateau,
)
from lgerisk.synth.priors import PRIORS

# labels (EMIDEC convention) and the internal fine-grid grey-zone class
BACKGROUND, BLOOD, MYOCARDIUM, SCAR, NOREFLOW = 0, 1, 2, 3, 4
FINE_GREYZONE = 5
"""The fine grid's grey-zone class (output masks label grey zone as myocardium, 2)."""

CORE_THRESHOLD = 0.6
"""Enhancement fraction e (0 remote .. 1 dense scar) at or above which a myocardial sample is scar core."""
GREYZONE_THRESHOLD = 0.25
"""Enhancement fraction at or above which (and below ``CORE_THRESHOLD``) a sample is grey zone."""


def territory_profile(p: ScarParams, th: np.ndarray, zeta: np.ndarray) -> np.ndarray:
    """Smooth 0..1 extent of an ischaemic territory (its core's shape without the border noise)."""
    dth = np.abs(angle_diff(th, p["centre"])).astype(np.float32)
    half = np.float32(p["half_width"])
    if p["wrap"]:
        half = half + (np.float32(180.0) - half) * np.clip(
            (zeta - np.float32(0.8)) / np.float32(0.15), 0.0, 1.0
        ).astype(np.float32)
    z_mid, z_half = 0.5 * (p["z_lo"] + p["z_hi"]), 0.5 * (p["z_hi"] - p["z_lo"])
    zdist = (np.abs(zeta - np.float32(z_mid)) / np.float32(z_half)).astype(np.float32)
    return cast(
        "np.ndarray", np.sqrt(np.clip(1 - (dth / half) ** 4, 0, 1) * np.clip(1 - zdist**4, 0, 1)).astype(np.float32)
    )


def thinning_fraction(scar: Scar, th: np.ndarray, zeta: np.ndarray) -> np.ndarray | None:
    """Fraction of the wall lost to thinning (version 2, ischaemic), ``None`` when there is none."""
    thin = scar.params.get("thinning", 0.0) if scar.pattern == "ischemic" else 0.0
    if thin <= 0.0:
        return None
    return cast(
        "np.ndarray | None", (np.float32(thin) * np.sqrt(territory_profile(scar.params, th, zeta))).astype(np.float32)
    )


@dataclass
class HeartRender:
    """The heart on the fine grid of its box: labels, enhancement, tissue masks and the fine-grid truth."""

    box: tuple[int, int, int, int]  # coarse i0, i1, j0, j1 (x, y)
    fine_labels: np.ndarray  # (nz*Q, nyb*F, nxb*F) uint8: 0..4 and 5 = grey zone
    enhancement: np.ndarray  # float32 e per myocardial fine sample (flat, myocardium order)
    myo_index: tuple[np.ndarray, np.ndarray, np.ndarray]
    lv_blood: np.ndarray
    papillary: np.ndarray
    rv_blood: np.ndarray
    rv_wall: np.ndarray
    fat: np.ndarray
    truth: dict[str, float | str]


def heart_box(acq: Acquisition, heart: Heart) -> tuple[int, int, int, int]:
    """The output-grid box (i0, i1, j0, j1 along x, y) that holds the LV, the RV and the fat around them."""
    r_ep = heart.r_en_base * (1 + heart.ellipticity) + max(heart.t_septal, heart.t_lateral)
    reach = r_ep * 1.1 + heart.rv_depth + heart.rv_wall + 8.0  # towards the RV
    side = r_ep * 1.3 + 10.0
    # the RV points along image angle 180 + rot: mostly -x
    x_lo, x_hi = heart.cx - reach, heart.cx + side
    y_lo, y_hi = heart.cy - max(side, 0.8 * reach), heart.cy + max(side, 0.8 * reach)
    s = acq.spacing_xy
    i0, i1 = max(0, int(x_lo / s)), min(acq.nx, math.ceil(x_hi / s) + 1)
    j0, j1 = max(0, int(y_lo / s)), min(acq.ny, math.ceil(y_hi / s) + 1)
    return i0, i1, j0, j1


def render_heart(acq: Acquisition, heart: Heart, scar: Scar, cfg: SynthConfig) -> HeartRender:
    """Label every fine sample of the heart box (LV, RV, fat, papillary muscles, scar) and measure the truth."""
    f, q = cfg.supersample_xy, cfg.supersample_z
    i0, i1, j0, j1 = heart_box(acq, heart)
    s = acq.spacing_xy
    xs = ((np.arange(i0 * f, i1 * f) + 0.5) / f - 0.5) * s
    ys = ((np.arange(j0 * f, j1 * f) + 0.5) / f - 0.5) * s
    sub = ((np.arange(q) + 0.5) / q - 0.5) * acq.thickness
    zs = (np.arange(acq.nz)[:, None] * acq.spacing_z + sub[None, :]).ravel()
    xa = (xs - heart.cx).astype(np.float32)[None, :]
    ya = (heart.cy - ys).astype(np.float32)[:, None]  # anterior positive
    rho = np.hypot(xa, ya)
    theta_img = np.degrees(np.arctan2(ya, xa)) % 360.0
    theta = (theta_img - heart.rot) % 360.0  # anatomical angle, 2-D
    s_en = heart.s_en(zs).astype(np.float32)
    s_ep = heart.s_ep(zs).astype(np.float32)
    r_en_eq, r_ep_eq = heart.radii_eq(theta)
    r_en = r_en_eq.astype(np.float32)[None] * s_en[:, None, None]
    r_ep = r_ep_eq.astype(np.float32)[None] * s_ep[:, None, None]
    length = heart.z_apex - heart.z_base
    zeta = ((zs - heart.z_base) / length).astype(np.float32)
    thinning = thinning_fraction(scar, theta[None], zeta[:, None, None])
    if thinning is not None:  # version 2: the endocardium moves out under an ischaemic scar
        r_en = r_ep - (r_ep - r_en) * (np.float32(1.0) - thinning)
    inside_ep = rho[None] < r_ep
    lv_blood = rho[None] < r_en
    myo = inside_ep & ~lv_blood

    # papillary muscles: inside the cavity, mid-ventricle, labelled as blood pool (EMIDEC)
    r_en_mean = heart.r_en_base * s_en / max(float(heart.s_en(np.array(heart.z_base))), 1e-6)
    papillary = np.zeros_like(lv_blood)
    zsel = (zeta > 0.3) & (zeta < 0.75)
    if zsel.any():
        for angle in heart.pap_angles:
            a = math.radians(angle + heart.rot)
            pr = 0.55 * r_en_mean[zsel]
            px, py = (pr * math.cos(a))[:, None, None], (pr * math.sin(a))[:, None, None]
            d2 = (xa[None] - px) ** 2 + (ya[None] - py) ** 2
            papillary[zsel] |= d2 < heart.pap_radius**2
        papillary &= lv_blood

    # RV: crescent = ellipse (centre on the septal axis) minus the LV, tapering towards the apex
    a_s = math.radians(180.0 + heart.rot)
    u = xa * math.cos(a_s) + ya * math.sin(a_s)
    v = -xa * math.sin(a_s) + ya * math.cos(a_s)
    r_loc = (
        (heart.r_en_base + 0.5 * (heart.t_septal + heart.t_lateral))
        * s_ep
        / max(float(heart.s_ep(np.array(heart.z_base))), 1e-6)
    )
    rv_c = heart.z_centre + heart.rv_length * heart.c_ep
    half_rv = rv_c - heart.z_centre
    rv_s = np.sqrt(np.clip(1.0 - ((zs - heart.z_centre) / half_rv) ** 2, 0.0, 1.0))
    rv_s_base = math.sqrt(max(1.0 - ((heart.z_base - heart.z_centre) / half_rv) ** 2, 1e-6))
    depth = np.where(zs >= heart.z_base, heart.rv_depth * rv_s / rv_s_base, 0.0)
    d = heart.rv_d * r_loc
    a_ax = np.maximum(r_loc - d + depth, 1e-3)
    phi = math.radians(heart.rv_insertion)
    ratio = np.clip((r_loc * math.cos(phi) - d) / a_ax, -0.95, 0.95)
    b_ax = np.maximum(r_loc * math.sin(phi) / np.sqrt(1.0 - ratio**2), 1e-3)
    present = (depth > 1.5)[:, None, None]
    t = heart.rv_wall

    def ellipse(extra: float | np.ndarray) -> np.ndarray:
        """Inside the RV ellipse grown by ``extra`` mm (a number, or a 2-D in-plane map)."""
        ex = np.asarray(extra, dtype=np.float32)[None] if np.ndim(extra) else np.float32(extra)
        aa = a_ax.astype(np.float32)[:, None, None] + ex
        bb = b_ax.astype(np.float32)[:, None, None] + ex
        dd = d.astype(np.float32)[:, None, None]
        return cast("np.ndarray", (((u[None] - dd) / aa) ** 2 + (v[None] / bb) ** 2 < 1.0) & present)

    rv_cav = ellipse(0.0) & ~inside_ep
    rv_outer = ellipse(t) & ~inside_ep
    rv_wall = rv_outer & ~rv_cav
    # epicardial fat: a patchy layer around the LV and the RV free wall
    fat_t = np.clip(heart.fat_mean * 1.6 * (0.2 + eval_angular_noise(heart.fat_noise, theta, 0.0)), 0.0, 7.0).astype(
        np.float32
    )
    around_lv = (rho[None] < r_ep + fat_t[None]) & (s_ep[:, None, None] > 0.05)
    around_rv = ellipse(t + fat_t)
    fat = (around_lv | around_rv) & ~inside_ep & ~rv_outer
    rv_blood = rv_cav

    # scar on the myocardial samples
    iz, iy, ix = np.nonzero(myo)
    th_m = theta[iy, ix]
    ren_m, rep_m = r_en[iz, iy, ix], r_ep[iz, iy, ix]
    w = (rho[iy, ix] - ren_m) / np.maximum(rep_m - ren_m, 1e-3)
    zeta_m = zeta[iz]
    e, mvo, macro = enhancement(scar, heart, th_m, zeta_m, w, xs[ix], ys[iy], zs[iz])
    cls = np.full(e.shape, MYOCARDIUM, dtype=np.uint8)
    cls[e >= GREYZONE_THRESHOLD] = FINE_GREYZONE
    cls[e >= CORE_THRESHOLD] = SCAR
    cls[mvo] = NOREFLOW
    labels = np.zeros(myo.shape, dtype=np.uint8)
    labels[lv_blood] = BLOOD
    labels[iz, iy, ix] = cls

    truth = truth_from_fine(acq, heart, scar, cfg, cls, iz, th_m, zs)
    if cfg.hazard_version >= 2:
        thin_m = None if thinning is None else thinning[iz, iy, ix]
        truth.update(headroom_truth(acq, scar, cfg, cls, macro, myo.shape, (iz, iy, ix), thin_m))
    return HeartRender((i0, i1, j0, j1), labels, e, (iz, iy, ix), lv_blood, papillary, rv_blood, rv_wall, fat, truth)


def enhancement(
    scar: Scar,
    heart: Heart,
    th: np.ndarray,
    zeta: np.ndarray,
    w: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Enhancement fraction e (0 remote .. 1 dense scar), no-reflow flag and macroscopic core per myocardial sample.

    The macroscopic core is the scar core before the heterogeneity texture lowers e (the layout of
    the scar: its islands, channels and separate foci).
    """
    n = th.shape[0]
    e = np.zeros(n, dtype=np.float32)
    mvo = np.zeros(n, dtype=bool)
    if scar.pattern == "none" or n == 0:
        return e, mvo, np.zeros(n, dtype=bool)
    kvec, kphase = scar.texture
    px, py, pz = (np.asarray(c, dtype=np.float32) for c in (x, y, z))
    texture = np.zeros(n, dtype=np.float32)
    for kv, ph in zip(kvec, kphase):
        k = np.asarray(kv, dtype=np.float32)
        # the dot product written out, not ``pts @ k``: BLAS kernels differ by CPU (an AVX-512 sgemv rounds
        # otherwise), and a cohort must be the same bytes on every machine; this is the order they had before
        phase = (px * k[0] + py * k[1]) + pz * k[2]
        texture += np.cos(phase + np.float32(ph))
    texture = normal_cdf(texture * np.float32(math.sqrt(2.0 / len(kphase)))).astype(np.float32)
    p = scar.params
    if scar.pattern == "ischemic":
        n1, n2, n3 = (eval_angular_noise(prm, th, zeta) for prm in p["noise"])
        dth = np.abs(angle_diff(th, p["centre"]))
        half: np.ndarray = np.full(n, p["half_width"], dtype=np.float32)
        if p["wrap"]:  # LAD wrapping around the apex: the apical cap enhances all round
            half = half + (180.0 - half) * np.clip((zeta - 0.8) / 0.15, 0.0, 1.0)
        half = half * (1.0 + 0.15 * n1)
        z_mid, z_half = 0.5 * (p["z_lo"] + p["z_hi"]), 0.5 * (p["z_hi"] - p["z_lo"])
        zdist = np.abs(zeta - z_mid) / (z_half * (1.0 + 0.12 * n2))
        a_core = np.sqrt(np.clip(1 - (dth / half) ** 4, 0, 1) * np.clip(1 - zdist**4, 0, 1))
        core_depth = np.clip(p["tau"] * np.sqrt(a_core) * (1.0 + 0.1 * n3), 0.0, 1.0)
        core = (a_core > 0) & (w < core_depth)
        zdist_gz = np.abs(zeta - z_mid) / (z_half * (1.0 + 0.12 * n2) + p["gz_margin_z"])
        a_gz = np.sqrt(np.clip(1 - (dth / (half + p["gz_margin_deg"])) ** 4, 0, 1) * np.clip(1 - zdist_gz**4, 0, 1))
        border = (a_gz > 0) & (w < p["tau"] * np.sqrt(a_gz) + p["gz_depth"]) & ~core
        if p.get("channels"):  # version 2: grey-zone corridors through the core, along the long axis
            r = np.hypot(x - heart.cx, heart.cy - y)
            in_channel = np.zeros(n, dtype=bool)
            for ch in p["channels"]:
                angle = p["centre"] + ch["offset"] * p["half_width"]
                in_channel |= np.abs(angle_diff(th, angle)) * (np.pi / 180.0) * r < 0.5 * ch["width_mm"]
            border = border | (core & in_channel)
            core = core & ~in_channel
        e[core] = 1.0 - 0.9 * scar.heterogeneity * texture[core]
        e[border] = p["gz_level"] * (0.8 + 0.4 * texture[border])
        if p["mvo"]:
            mvo = core & (a_core > 0.55) & (w < core_depth * p["mvo_fraction"])
        return e, mvo, core
    # non-ischemic: maximum of the components, then the heterogeneity texture
    if "stripe" in p:
        sp = p["stripe"]
        e = np.maximum(
            e,
            sp["amplitude"]
            * plateau(angle_diff(th, sp["centre"]) / sp["half_width"], 0.35)
            * plateau((zeta - sp["z_mid"]) / sp["z_half"], 0.3)
            * plateau((w - sp["w_mid"]) / sp["w_half"], 0.45),
        )
    length = heart.z_apex - heart.z_base
    for blob in p.get("foci", []) + p.get("rvip", []):
        zb = heart.z_base + blob["zeta"] * length
        s_en_b, s_ep_b = float(heart.s_en(np.array(zb))), float(heart.s_ep(np.array(zb)))
        r_en_eq, r_ep_eq = heart.radii_eq(np.array(blob["angle"]))
        rb = float(r_en_eq * s_en_b + blob["w"] * (r_ep_eq * s_ep_b - r_en_eq * s_en_b))
        ang = math.radians(blob["angle"] + heart.rot)
        bx, by = heart.cx + rb * math.cos(ang), heart.cy - rb * math.sin(ang)
        dist = np.sqrt(((x - bx) ** 2 + (y - by) ** 2) / blob["radius"] ** 2 + ((z - zb) / blob["z_radius"]) ** 2)
        e = np.maximum(e, (blob["amplitude"] * plateau(dist, 0.5)).astype(np.float32))
    macro = e >= CORE_THRESHOLD
    e = e * (1.0 - 0.9 * scar.heterogeneity * texture)
    return e.astype(np.float32), mvo, macro


def truth_from_fine(
    acq: Acquisition,
    heart: Heart,
    scar: Scar,
    cfg: SynthConfig,
    cls: np.ndarray,
    iz: np.ndarray,
    th_m: np.ndarray,
    zs: np.ndarray,
) -> dict[str, float | str]:
    """Ground truth measured on the fine grid: scar, grey-zone, no-reflow %, transmurality, wall thickness, volumes."""
    f, q = cfg.supersample_xy, cfg.supersample_z
    voxel_ml = (acq.spacing_xy / f) ** 2 * (acq.spacing_z / q) / 1000.0
    n_myo = int(cls.size)
    n_core = int(np.count_nonzero(cls == SCAR))
    n_mvo = int(np.count_nonzero(cls == NOREFLOW))
    n_gz = int(np.count_nonzero(cls == FINE_GREYZONE))
    n_scar = n_core + n_mvo
    # transmurality: sectors = (fine z sample, 5-degree angle bin); share of scar in each sector,
    # averaged over the sectors that contain scar
    sector = iz * 72 + (th_m // 5.0).astype(np.int64)
    n_sectors = len(zs) * 72
    tot = np.bincount(sector, minlength=n_sectors)
    scarred = np.bincount(sector, weights=(cls == SCAR) | (cls == NOREFLOW), minlength=n_sectors)
    has = scarred > 0
    transmurality = float(np.mean(scarred[has] / tot[has])) if has.any() else 0.0
    # wall thickness: radial epi - endo at slice centres where the cavity exists, 72 angles
    angles = np.arange(72) * 5.0 + 2.5
    r_en_eq, r_ep_eq = heart.radii_eq(angles)
    zc = np.arange(acq.nz) * acq.spacing_z
    s_en, s_ep = heart.s_en(zc), heart.s_ep(zc)
    cav = s_en > 0
    thick = r_ep_eq[None, :] * s_ep[cav, None] - r_en_eq[None, :] * s_en[cav, None]
    zeta_c = ((zc[cav] - heart.z_base) / (heart.z_apex - heart.z_base)).astype(np.float32)
    thinning = thinning_fraction(scar, angles[None, :].astype(np.float32), zeta_c[:, None])
    if thinning is not None:  # version 2: the wall as thinned under an ischaemic scar
        thick = thick * (1.0 - thinning.astype(np.float64))
    return {
        "scar_pattern": scar.pattern,
        "territory": scar.territory,
        "scar_description": scar.components,
        "scar_percent": 100.0 * n_scar / n_myo,
        "greyzone_percent": 100.0 * n_gz / n_myo,
        "noreflow_percent": 100.0 * n_mvo / n_myo,
        "heterogeneity": scar.heterogeneity if n_scar + n_gz > 0 else 0.0,
        "transmurality": transmurality,
        "wall_thickness_mm": float(thick.mean()),
        "max_wall_thickness_mm": float(thick.max()),
        "hypertrophic": int(heart.hypertrophic),
        "lv_myocardium_ml": n_myo * voxel_ml,
        "scar_ml": n_scar * voxel_ml,
        "greyzone_ml": n_gz * voxel_ml,
        "endo_radius_base_mm": heart.r_en_base,
        "lv_length_mm": heart.z_apex - heart.z_base,
        "slices_beyond_apex": int(heart.beyond_apex),
    }


def headroom_truth(
    acq: Acquisition,
    scar: Scar,
    cfg: SynthConfig,
    cls: np.ndarray,
    macro: np.ndarray,
    shape: tuple[int, ...],
    index: tuple[np.ndarray, np.ndarray, np.ndarray],
    thinning: np.ndarray | None,
) -> dict[str, float]:
    """Version 2's extra ground truth, measured on the fine grid.

    * ``wall_thinning``: the mean, over scar (core + no-reflow) samples, of the fraction of the
      wall lost to thinning there (0 without scar or thinning);
    * ``scar_islands``: the number of separate pieces (6-connected on the fine grid, at least
      ``PRIORS.scar.headroom.island_min_ml``) of the macroscopic scar core, i.e. before the heterogeneity texture;
    * ``midwall_lge``: 1 for a non-ischaemic scar with a mid-wall (septal stripe) or
      mid-wall/epicardial (patchy foci) component, 0 otherwise (RV insertion-point enhancement alone: 0);
    * ``conducting_channels``: the number of grey-zone channels drawn through an ischaemic core;
    * ``greyzone_scale``: the drawn factor on an ischaemic border zone's margins (1 otherwise).
    """
    from scipy import ndimage

    f, q = cfg.supersample_xy, cfg.supersample_z
    voxel_ml = (acq.spacing_xy / f) ** 2 * (acq.spacing_z / q) / 1000.0
    scarred = (cls == SCAR) | (cls == NOREFLOW)
    thin = float(np.mean(thinning[scarred])) if thinning is not None and scarred.any() else 0.0
    islands = 0
    if macro.any():
        grid = np.zeros(shape, dtype=bool)
        grid[index] = macro
        labelled, count = ndimage.label(grid)
        sizes = np.bincount(labelled.ravel(), minlength=count + 1)[1:]
        islands = int(np.count_nonzero(sizes * voxel_ml >= PRIORS.scar.headroom.island_min_ml))
    parts = scar.components.split("+")
    midwall = int(scar.pattern == "nonischemic" and ("midwall_septal" in parts or "patchy" in parts))
    return {
        "wall_thinning": thin,
        "scar_islands": islands,
        "midwall_lge": midwall,
        "conducting_channels": len(scar.params.get("channels", [])),
        "greyzone_scale": float(scar.params.get("gz_scale", 1.0)),
    }


def majority_labels(fine: np.ndarray, q: int, f: int) -> tuple[np.ndarray, np.ndarray]:
    """Output labels from the fine samples of each output voxel, in two steps.

    1. tissue: the majority of background / blood / myocardium (all myocardial classes
       together); ties go to myocardium, then blood, so the thin wall is not eroded by ties;
    2. inside myocardium: scar when scar (core + no-reflow) samples are at least half of the
       voxel's myocardial samples (no-reflow when those are mostly no-reflow), otherwise
       myocardium; the grey-zone flag marks myocardium voxels whose non-scar myocardial samples
       are at least half grey zone.

    The 50 % partial-volume threshold keeps the labelled scar volume an unbiased estimate of the
    fine-grid scar volume (a plurality vote over scar / grey zone / remote would inflate it).
    """
    counts = [block_sum(fine == lab, q, f) for lab in range(6)]
    myo = counts[MYOCARDIUM] + counts[SCAR] + counts[NOREFLOW] + counts[FINE_GREYZONE]
    scar = counts[SCAR] + counts[NOREFLOW]
    labels = np.where(
        myo >= np.maximum(counts[BACKGROUND], counts[BLOOD]),
        MYOCARDIUM,
        np.where(counts[BLOOD] >= counts[BACKGROUND], BLOOD, BACKGROUND),
    ).astype(np.uint8)
    is_myo = labels == MYOCARDIUM
    is_scar = is_myo & (2 * scar >= myo) & (scar > 0)
    labels[is_scar] = SCAR
    labels[is_scar & (counts[NOREFLOW] > counts[SCAR])] = NOREFLOW
    greyzone = is_myo & ~is_scar & (2 * counts[FINE_GREYZONE] >= myo - scar) & (counts[FINE_GREYZONE] > 0)
    return labels, greyzone.astype(np.uint8)
