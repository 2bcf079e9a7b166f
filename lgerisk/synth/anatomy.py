"""A case's design, drawn from :data:`~lgerisk.synth.priors.PRIORS`: acquisition, heart and scar.

Each ``draw_*`` function takes its own random stream (:func:`lgerisk.synth.generator.case_streams`)
and draws in a fixed order: the order is part of the data a seed gives, so a new draw goes at the end
of a stream, or into a new stream (as version 2's :func:`draw_headroom`), never between two others.

Conventions: lengths in mm; "anatomical angle" in degrees counter-clockwise on the image from the LV
centre, 0 = lateral (image right), 90 = anterior (image up), 180 = septum (image left, towards the
RV), 270 = inferior, each heart rotated by a small random angle; ``zeta`` runs along the LV long
axis (0 base .. 1 apex) and ``w`` through the wall (0 endocardium .. 1 epicardium).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal, TypedDict, cast

import numpy as np

from lgerisk.synth.config import SynthConfig
from lgerisk.synth.numeric import AngularNoise, angular_noise, eval_angular_noise
from lgerisk.synth.priors import (
    PRIORS,
    AcquisitionPriors,
    HeadroomPriors,
    HeartPriors,
    NonischemicScarPriors,
    ScarPriors,
)

SCAR_PATTERNS = ("none", "ischemic", "nonischemic")
"""The scar patterns (``ground_truth.csv``'s ``scar_pattern``)."""

TERRITORIES = PRIORS.scar.ischemic.territories
"""The coronary territories of an ischaemic scar (``ground_truth.csv``'s ``territory``)."""


@dataclass(frozen=True)
class Acquisition:
    """Scan geometry of a case: matrix (x, y), slices, in-plane and slice spacing, slice thickness (mm)."""

    nx: int
    ny: int
    nz: int
    spacing_xy: float
    spacing_z: float
    thickness: float


def draw_acquisition(
    rng: np.random.Generator, small: bool, priors: AcquisitionPriors = PRIORS.acquisition
) -> Acquisition:
    """Draw the scan geometry (``small``: the compact ranges)."""
    p = priors
    lo, hi = p.matrix_small if small else p.matrix
    step = p.matrix_step
    nx = int(rng.integers(lo // step, hi // step + 1)) * step
    ny = int(np.clip(step * round(nx * rng.uniform(*p.aspect) / step), lo, nx))
    slices_lo, slices_hi = p.slices_small if small else p.slices
    nz = int(rng.integers(slices_lo, slices_hi + 1))
    # slice spacing, with the stack covering a plausible LV length
    (sz_lo, sz_hi), (cover_lo, cover_hi) = p.slice_spacing_mm, p.lv_coverage_mm
    sz = float(rng.uniform(max(sz_lo, cover_lo / nz), min(sz_hi, cover_hi / nz)))
    thickness = sz - float(rng.uniform(0.0, min(p.max_slice_gap_mm, sz - p.min_slice_thickness_mm)))
    # in-plane spacing with a plausible field of view
    (sxy_lo, sxy_hi), (fov_lo, fov_hi) = p.pixel_spacing_mm, p.field_of_view_mm
    sxy = float(rng.uniform(max(sxy_lo, fov_lo / nx), min(sxy_hi, fov_hi / nx)))
    return Acquisition(nx, ny, nz, round(sxy, 4), round(sz, 3), round(thickness, 3))


@dataclass(frozen=True)
class Heart:
    """The heart of a case: LV truncated ellipsoid shell, RV crescent, epicardial fat, papillary muscles.

    Positions are in mm on the image (``cx``, ``cy``) and along the stack (``z_*``, slice 0 at 0).
    """

    cx: float  # LV centre on the image, x (mm)
    cy: float  # LV centre on the image, y (mm)
    rot: float  # deg, image angle of the anatomical 0
    z_base: float  # LV base along the stack (mm; slice 0's centre at 0)
    z_apex: float  # LV apex (epicardial) along the stack (mm)
    z_centre: float  # ellipsoid centre (above the base)
    c_ep: float  # epicardial ellipsoid semi-axis along the long axis (mm)
    c_en: float  # endocardial ellipsoid semi-axis along the long axis (mm)
    r_en_base: float  # endocardial radius at the base (mm)
    ellipticity: float  # relative endocardial radius change with angle (cos 2 theta)
    ell_phase: float  # deg, anatomical angle of the long in-plane axis
    t_septal: float  # septal wall thickness at the base (mm)
    t_lateral: float  # lateral wall thickness at the base (mm)
    t_noise: AngularNoise  # smooth variation of the wall thickness around the ventricle ...
    t_variation: float  # ... its relative amplitude
    hypertrophic: bool
    beyond_apex: bool  # the last slice lies beyond the apex
    rv_d: float  # fraction of local epicardial radius
    rv_depth: float  # mm beyond the septum at the base
    rv_insertion: float  # deg from the septal axis
    rv_wall: float  # RV free-wall thickness (mm)
    rv_length: float  # fraction of LV length
    fat_mean: float  # mean epicardial fat thickness (mm)
    fat_noise: AngularNoise  # its smooth variation around the heart
    pap_angles: tuple[float, float]  # deg, anatomical angles of the papillary muscles
    pap_radius: float  # papillary muscle radius (mm)

    def s_ep(self, z: np.ndarray) -> np.ndarray:
        """Epicardial radius at ``z`` relative to the equator's (0 above the base and beyond the apex)."""
        s = np.sqrt(np.clip(1.0 - ((z - self.z_centre) / self.c_ep) ** 2, 0.0, 1.0))
        return np.where(z >= self.z_base, s, 0.0)

    def s_en(self, z: np.ndarray) -> np.ndarray:
        """Endocardial radius at ``z`` relative to the equator's (0 where there is no cavity)."""
        s = np.sqrt(np.clip(1.0 - ((z - self.z_centre) / self.c_en) ** 2, 0.0, 1.0))
        return np.where(z >= self.z_base, s, 0.0)

    def thickness_base(self, theta_anat: np.ndarray) -> np.ndarray:
        """Wall thickness (mm) at the base by anatomical angle: septal <-> lateral blend + noise."""
        septal_weight = 0.5 * (1.0 + np.cos(np.radians(theta_anat - 180.0)))
        t = self.t_lateral + (self.t_septal - self.t_lateral) * septal_weight
        return t * (1.0 + self.t_variation * eval_angular_noise(self.t_noise, theta_anat, 0.0))

    def radii_eq(self, theta_anat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Endo- and epicardial radius at the ellipsoid equator by anatomical angle."""
        zb = np.array(self.z_base)
        se_b, sp_b = float(self.s_en(zb)), float(self.s_ep(zb))
        r_en_b = self.r_en_base * (1.0 + self.ellipticity * np.cos(2 * np.radians(theta_anat - self.ell_phase)))
        r_en_eq = r_en_b / se_b
        r_ep_eq = (r_en_b + self.thickness_base(theta_anat)) / sp_b
        return r_en_eq, r_ep_eq


def draw_heart(rng: np.random.Generator, acq: Acquisition, priors: HeartPriors = PRIORS.heart) -> Heart:
    """Draw the heart of a scan with geometry ``acq``."""
    p = priors
    sz = acq.spacing_z
    beyond = bool(acq.nz >= p.min_slices_beyond_apex and rng.random() < p.p_slice_beyond_apex)
    n_lv = acq.nz - int(beyond)
    z_apex = (n_lv - 1) * sz + float(rng.uniform(*p.apex_beyond_last_slice)) * sz
    z_base = -0.5 * sz - float(rng.uniform(*p.base_above_first_slice_mm))
    length = z_apex - z_base
    z_centre = z_base - float(rng.uniform(*p.centre_above_base)) * length
    c_ep = z_apex - z_centre
    hyper = bool(rng.random() < p.p_hypertrophic)
    if hyper:
        if rng.random() < p.p_asymmetric_septal:
            t_sep, t_lat = float(rng.uniform(*p.asymmetric_septal_mm)), float(rng.uniform(*p.asymmetric_lateral_mm))
        else:  # concentric
            t_sep = float(rng.uniform(*p.concentric_septal_mm))
            t_lat = t_sep * float(rng.uniform(*p.concentric_lateral_ratio))
    else:
        t_mean = float(rng.uniform(*p.wall_mean_mm))
        ratio = float(rng.uniform(*p.septal_lateral_ratio))  # septum / lateral
        t_lat = 2 * t_mean / (1 + ratio)
        t_sep = t_lat * ratio
    t_apex = max(p.min_apex_wall_mm, p.apex_wall_factor * min(t_sep, t_lat) * float(rng.uniform(*p.apex_wall_jitter)))
    c_en = c_ep - t_apex
    r_en_base = float(rng.uniform(*p.endo_radius_base_mm))
    r_ep_base = r_en_base + max(t_sep, t_lat)
    rot = float(rng.uniform(*p.rotation_deg))
    # LV centre off the image centre, the heart box kept inside the field of view
    margin = r_ep_base * 2.1 + 12.0
    fov_x, fov_y = acq.nx * acq.spacing_xy, acq.ny * acq.spacing_xy
    cx = float(np.clip(fov_x / 2 + rng.uniform(*p.centre_offset_x) * fov_x, margin, fov_x - margin))
    cy = float(np.clip(fov_y / 2 + rng.uniform(*p.centre_offset_y) * fov_y, margin, fov_y - margin))
    # the keyword arguments below are evaluated, so drawn, in this order
    return Heart(
        cx=cx,
        cy=cy,
        rot=rot,
        z_base=z_base,
        z_apex=z_apex,
        z_centre=z_centre,
        c_ep=c_ep,
        c_en=c_en,
        r_en_base=r_en_base,
        ellipticity=float(rng.uniform(*p.ellipticity)),
        ell_phase=float(rng.uniform(*p.ellipticity_phase_deg)),
        t_septal=t_sep,
        t_lateral=t_lat,
        t_noise=angular_noise(rng),
        t_variation=p.wall_angular_variation,
        hypertrophic=hyper,
        beyond_apex=beyond,
        rv_d=float(rng.uniform(*p.rv_offset)),
        rv_depth=float(rng.uniform(*p.rv_depth_mm)),
        rv_insertion=float(rng.uniform(*p.rv_insertion_deg)),
        rv_wall=float(rng.uniform(*p.rv_wall_mm)),
        rv_length=float(rng.uniform(*p.rv_length)),
        fat_mean=float(rng.uniform(*p.fat_mean_mm)),
        fat_noise=angular_noise(rng),
        pap_angles=(float(rng.uniform(*p.papillary_angles_deg[0])), float(rng.uniform(*p.papillary_angles_deg[1]))),
        pap_radius=float(rng.uniform(*p.papillary_radius_mm)),
    )


class ScarParams(TypedDict, total=False):
    """The layout of a scar (``Scar.params``): an ischaemic scar's territory, core and border zone (version 2
    adds ``gz_scale``, ``thinning`` and ``channels``), or a non-ischaemic scar's components."""

    centre: float  # ischaemic: the territory's centre (anatomical degrees), half width, long-axis extent
    half_width: float
    z_lo: float
    z_hi: float
    wrap: bool  # an LAD scar wrapping around the apex
    tau: float  # the core's depth through the wall
    gz_margin_deg: float
    gz_margin_z: float
    gz_depth: float
    gz_level: float
    mvo: bool  # no-reflow, and its depth
    mvo_fraction: float
    noise: tuple[AngularNoise, AngularNoise, AngularNoise]
    gz_scale: float  # version 2 (draw_headroom)
    thinning: float
    channels: list[dict[str, float]]
    stripe: dict[str, float]  # non-ischaemic components
    foci: list[dict[str, float]]
    rvip: list[dict[str, float]]


@dataclass(frozen=True)
class Scar:
    """The scar of a case: its pattern, its layout parameters and its heterogeneity texture."""

    pattern: str
    territory: str  # LAD/RCA/LCX, or "none"
    components: str  # non-ischemic components joined by "+", or the ischemic description
    heterogeneity: float
    params: ScarParams
    texture: tuple[np.ndarray, np.ndarray]  # wave vectors (K, 3) rad/mm, phases (K,)


def draw_texture(rng: np.random.Generator, priors: ScarPriors = PRIORS.scar) -> tuple[np.ndarray, np.ndarray]:
    """Draw the heterogeneity texture: random plane waves (wave vectors in rad/mm, phases)."""
    k = priors.texture_waves
    direction = rng.normal(size=(k, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    wavelength = rng.uniform(*priors.texture_wavelength_mm, size=k)
    return direction * (2 * np.pi / wavelength)[:, None], rng.uniform(0, 2 * np.pi, size=k)


def draw_scar(rng: np.random.Generator, heart: Heart, cfg: SynthConfig, priors: ScarPriors = PRIORS.scar) -> Scar:
    """Draw the scar: none (``cfg.p_scar_free``), ischaemic (``cfg.p_ischemic``) or non-ischaemic."""
    u = rng.random()
    texture = draw_texture(rng, priors)
    if u < cfg.p_scar_free:
        return Scar("none", "none", "none", 0.0, {}, texture)
    if u < cfg.p_scar_free + cfg.p_ischemic:
        return _draw_ischemic(rng, texture, priors)
    return _draw_nonischemic(rng, heart, texture, priors)


def _draw_ischemic(rng: np.random.Generator, texture: tuple[np.ndarray, np.ndarray], priors: ScarPriors) -> Scar:
    """An ischaemic scar in a coronary territory (the draws after the pattern and the texture)."""
    p = priors.ischemic
    territory = p.territories[int(rng.choice(len(p.territories), p=list(p.territory_probs)))]
    if territory == "LAD":
        centre = float(rng.uniform(*p.lad_centre_deg))
        z_hi = p.lad_apical_z_hi if rng.random() < p.lad_p_apical else float(rng.uniform(*p.lad_z_hi))
        z_lo = max(0.0, z_hi - float(rng.uniform(*p.lad_z_length)))
        wrap = bool(z_hi > 1.0 and rng.random() < p.lad_p_wrap)
    elif territory == "RCA":
        centre = float(rng.uniform(*p.rca_centre_deg))
        mid, half = float(rng.uniform(*p.z_mid)), float(rng.uniform(*p.z_half))
        z_lo, z_hi, wrap = mid - half, mid + half, False
    else:
        centre = float(rng.uniform(*p.lcx_centre_deg)) % 360.0
        mid, half = float(rng.uniform(*p.z_mid)), float(rng.uniform(*p.z_half))
        z_lo, z_hi, wrap = mid - half, mid + half, False
    tau = float(np.clip(rng.beta(*p.depth_beta), *p.depth_clip))
    half_width = float(rng.uniform(*p.half_width_deg))
    large = tau > p.large_depth and half_width > p.large_half_width_deg
    # the dict's values are evaluated, so drawn, in this order
    params: ScarParams = {
        "centre": centre,
        "half_width": half_width,
        "z_lo": z_lo,
        "z_hi": z_hi,
        "wrap": wrap,
        "tau": tau,
        "gz_margin_deg": float(rng.uniform(*p.greyzone_margin_deg)),
        "gz_margin_z": float(rng.uniform(*p.greyzone_margin_z)),
        "gz_depth": float(rng.uniform(*p.greyzone_depth)),
        "gz_level": float(rng.uniform(*p.greyzone_level)),
        "mvo": bool(large and rng.random() < p.p_noreflow),
        "mvo_fraction": float(rng.uniform(*p.noreflow_depth)),
        "noise": (angular_noise(rng), angular_noise(rng), angular_noise(rng)),
    }
    het = float(rng.uniform(*p.heterogeneity))
    depth = "transmural" if tau >= 0.9 else "subendocardial"
    desc = f"{territory} {depth}" + (" with no-reflow" if params["mvo"] else "")
    return Scar("ischemic", territory, desc, het, params, texture)


def _draw_nonischemic(
    rng: np.random.Generator, heart: Heart, texture: tuple[np.ndarray, np.ndarray], priors: ScarPriors
) -> Scar:
    """A non-ischaemic scar: mid-wall septal stripe, patchy foci, RV insertion-point enhancement (one or more)."""
    p = priors.nonischemic
    while True:
        flags = rng.random(len(p.component_probs)) < np.array(p.component_probs)
        if flags.any():
            break
    params: ScarParams = {}
    names = []
    if flags[0]:
        names.append("midwall_septal")
        z_lo = float(rng.uniform(*p.stripe_z_lo))
        z_hi = z_lo + float(rng.uniform(*p.stripe_z_length))
        params["stripe"] = {
            "centre": float(rng.uniform(*p.stripe_centre_deg)),
            "half_width": float(rng.uniform(*p.stripe_half_width_deg)),
            "z_mid": 0.5 * (z_lo + z_hi),
            "z_half": 0.5 * (z_hi - z_lo),
            "w_mid": float(rng.uniform(*p.stripe_wall_mid)),
            "w_half": float(rng.uniform(*p.stripe_wall_half)),
            "amplitude": float(rng.uniform(*p.stripe_amplitude)),
        }
    if flags[1]:
        names.append("patchy")
        n = int(rng.integers(p.foci[0], p.foci[1] + 1))
        params["foci"] = [_draw_focus(rng, p) for _ in range(n)]
    if flags[2]:
        names.append("rv_insertion")
        sides = p.rvip_sides[int(rng.integers(0, len(p.rvip_sides)))]
        params["rvip"] = [_draw_rv_insertion(rng, p, side * heart.rv_insertion) for side in sides]
    het = float(rng.uniform(*p.heterogeneity))
    return Scar("nonischemic", "none", "+".join(names), het, params, texture)


def _draw_focus(rng: np.random.Generator, p: NonischemicScarPriors) -> dict[str, float]:
    """One patchy focus: mostly in the (infero)lateral wall, as in myocarditis; some anywhere."""
    lateral = rng.random() < p.p_focus_lateral
    angle = float(rng.uniform(*p.focus_lateral_deg) if lateral else rng.uniform(*p.focus_any_deg)) % 360.0
    return {
        "angle": angle,
        "zeta": float(rng.uniform(*p.focus_zeta)),
        "w": float(rng.uniform(*p.focus_wall)),
        "radius": float(rng.uniform(*p.focus_radius_mm)),
        "z_radius": float(rng.uniform(*p.focus_z_radius_mm)),
        "amplitude": float(rng.uniform(*p.focus_amplitude)),
    }


def _draw_rv_insertion(rng: np.random.Generator, p: NonischemicScarPriors, insertion: float) -> dict[str, float]:
    """Enhancement at one RV insertion point, ``insertion`` degrees from the septal axis (signed: the side)."""
    return {
        "angle": (180.0 + insertion * float(rng.uniform(*p.rvip_angle_factor))) % 360.0,
        "zeta": float(rng.uniform(*p.rvip_zeta)),
        "w": float(rng.uniform(*p.rvip_wall)),
        "radius": float(rng.uniform(*p.rvip_radius_mm)),
        "z_radius": float(rng.uniform(*p.rvip_z_radius_mm)),
        "amplitude": float(rng.uniform(*p.rvip_amplitude)),
    }


def draw_headroom(rng: np.random.Generator, scar: Scar, priors: HeadroomPriors = PRIORS.scar.headroom) -> Scar:
    """Hazard version 2's scar variation, drawn from its own stream (version 1's draws stay as they were).

    Ischaemic scars get, each drawn independently of the core's size and depth: a border-zone
    factor on the grey-zone margins (log-uniform ``greyzone_scale``), so grey-zone extent is only
    partly tied to the core; wall thinning under the scar (``thinning``: the largest fraction of
    the wall lost, at the territory's centre); and 0-3 conducting channels (``channel_probs``):
    transmural grey-zone corridors 3-6 mm wide, along the long axis, through the core, which split
    it into separate islands. A fixed number of values is drawn whatever the pattern. Non-ischaemic
    and scar-free cases are returned unchanged.
    """
    p = priors
    lo, hi = p.greyzone_scale
    gz_scale = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    thinning = float(rng.uniform(*p.thinning))
    n_channels = int(rng.choice(len(p.channel_probs), p=p.channel_probs))
    max_channels = len(p.channel_probs) - 1
    offsets = rng.uniform(*p.channel_offset, size=max_channels)
    widths = rng.uniform(*p.channel_width_mm, size=max_channels)
    if scar.pattern != "ischemic":
        return scar
    params = cast("ScarParams", dict(scar.params))
    key: Literal["gz_margin_deg", "gz_margin_z", "gz_depth"]
    for key in ("gz_margin_deg", "gz_margin_z", "gz_depth"):
        params[key] = params[key] * gz_scale
    params["gz_scale"] = gz_scale
    params["thinning"] = thinning
    params["channels"] = [
        {"offset": float(o), "width_mm": float(wd)} for o, wd in zip(offsets[:n_channels], widths[:n_channels])
    ]
    return dataclasses.replace(scar, params=params)
