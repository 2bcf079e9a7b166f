"""The generator's priors: every range and constant a synthetic case is drawn from, in one place.

A pair ``(lo, hi)`` is a uniform range ``rng.uniform(lo, hi)`` unless its comment says otherwise
(``int``: whole numbers ``lo..hi`` inclusive; ``log``: log-uniform). Lengths are in mm, angles in
degrees ("anatomical angle": counter-clockwise from the LV centre, 0 = lateral, 90 = anterior,
180 = septum, 270 = inferior), intensities relative to dense scar core = 1, ``zeta`` the position
along the LV long axis (0 base .. 1 apex) and ``w`` the position through the wall (0 endocardium ..
1 epicardium). The documented tables are in docs/synthetic.md ("Acquisition (drawn per case)",
"Anatomy", "Image formation", "Scar patterns", "Clinical covariates").

:data:`PRIORS` is what the generator draws from. Changing a value changes the data a seed gives:
bump :data:`lgerisk.io.markers.SYNTH_VERSION` if you do. The share of scar-free, ischaemic and
non-ischaemic cases is part of :class:`lgerisk.synth.config.SynthConfig` (``p_scar_free``,
``p_ischemic``), and the outcome model's constants are in :mod:`lgerisk.synth.hazard`.

Example:
    >>> PRIORS.acquisition.pixel_spacing_mm
    (1.2, 1.8)
    >>> PRIORS.scar.headroom.channel_probs
    (0.35, 0.3, 0.2, 0.15)
"""

from __future__ import annotations

from dataclasses import dataclass, field

Range = tuple[float, float]
"""``(lo, hi)``: a uniform range unless the field's comment says otherwise."""

IntRange = tuple[int, int]
"""``(lo, hi)``: whole numbers from ``lo`` to ``hi``, both included."""


@dataclass(frozen=True)
class AcquisitionPriors:
    """Scan geometry: matrix, slices, spacing (docs/synthetic.md, "Acquisition (drawn per case)")."""

    matrix: IntRange = (160, 256)  # int: image columns (x), a multiple of matrix_step
    matrix_small: IntRange = (128, 160)  # int: image columns with --small
    matrix_step: int = 8  # columns and rows are multiples of this (pixels)
    aspect: Range = (0.8, 1.0)  # rows / columns, rounded to matrix_step and kept within the matrix range
    slices: IntRange = (6, 16)  # int: number of short-axis slices
    slices_small: IntRange = (6, 9)  # int: number of slices with --small
    slice_spacing_mm: Range = (8.0, 13.0)  # slice centre to centre, narrowed so the stack covers lv_coverage_mm
    lv_coverage_mm: Range = (70.0, 135.0)  # slices x slice spacing
    max_slice_gap_mm: float = 2.5  # slice thickness = spacing - uniform(0, gap), the gap at most this
    min_slice_thickness_mm: float = 6.0  # ... and the thickness at least this
    pixel_spacing_mm: Range = (1.2, 1.8)  # in-plane, isotropic; narrowed so the field of view is field_of_view_mm
    field_of_view_mm: Range = (220.0, 400.0)  # columns x pixel spacing


@dataclass(frozen=True)
class SmoothFieldPriors:
    """Smooth random fields over (angle, zeta): wall-thickness and fat variation, ischaemic scar borders."""

    terms: int = 4  # harmonics summed (unit variance overall)
    angular_harmonics: IntRange = (1, 4)  # int: cycles around the ventricle
    long_axis_harmonics: IntRange = (0, 2)  # int: half-cycles base -> apex


@dataclass(frozen=True)
class HeartPriors:
    """LV (truncated ellipsoid shell), RV crescent, epicardial fat, papillary muscles (docs/synthetic.md, "Anatomy")."""

    # long axis (mm unless said)
    p_slice_beyond_apex: float = 0.3  # probability that the last slice lies beyond the apex
    min_slices_beyond_apex: int = 7  # ... only for stacks of at least this many slices
    apex_beyond_last_slice: Range = (0.1, 0.45)  # apex beyond the last LV slice centre, in slice spacings
    base_above_first_slice_mm: Range = (0.0, 4.0)  # base above the first slice's upper edge
    centre_above_base: Range = (0.1, 0.25)  # ellipsoid centre above the base, fraction of LV length
    # wall thickness at the base (mm)
    p_hypertrophic: float = 0.15  # probability of a hypertrophic heart
    p_asymmetric_septal: float = 0.6  # hypertrophic: asymmetric septal (else concentric)
    asymmetric_septal_mm: Range = (15.0, 20.0)  # asymmetric hypertrophy: septal wall
    asymmetric_lateral_mm: Range = (10.0, 13.0)  # asymmetric hypertrophy: lateral wall
    concentric_septal_mm: Range = (13.0, 17.0)  # concentric hypertrophy: septal wall
    concentric_lateral_ratio: Range = (0.85, 1.0)  # concentric hypertrophy: lateral / septal wall
    wall_mean_mm: Range = (6.5, 11.0)  # normal heart: mean of septal and lateral wall
    septal_lateral_ratio: Range = (0.95, 1.25)  # normal heart: septal / lateral wall
    wall_angular_variation: float = 0.05  # relative wall-thickness variation around the ventricle (smooth field)
    apex_wall_factor: float = 0.7  # apical wall / the thinner of septal and lateral wall ...
    apex_wall_jitter: Range = (0.85, 1.15)  # ... times this factor
    min_apex_wall_mm: float = 4.0  # apical wall at least this
    # cavity and position
    endo_radius_base_mm: Range = (20.0, 30.0)  # endocardial radius at the base
    rotation_deg: Range = (-15.0, 15.0)  # image angle of the anatomical 0 (lateral)
    centre_offset_x: Range = (0.02, 0.12)  # LV centre right of the image centre, fraction of the field of view
    centre_offset_y: Range = (-0.1, 0.05)  # LV centre below (+) the image centre, fraction of the field of view
    ellipticity: Range = (0.0, 0.07)  # relative endocardial radius change with angle (cos 2 theta)
    ellipticity_phase_deg: Range = (0.0, 180.0)  # anatomical angle of the long in-plane axis
    # right ventricle
    rv_offset: Range = (0.3, 0.6)  # RV ellipse centre past the LV centre (septal axis), fraction of epicardial radius
    rv_depth_mm: Range = (18.0, 34.0)  # RV cavity depth beyond the septum at the base
    rv_insertion_deg: Range = (55.0, 70.0)  # RV insertion points, angle from the septal axis
    rv_wall_mm: Range = (2.5, 4.0)  # RV free-wall thickness
    rv_length: Range = (0.7, 0.9)  # RV long-axis extent, fraction of the LV's
    # epicardial fat and papillary muscles
    fat_mean_mm: Range = (0.5, 3.0)  # mean epicardial fat thickness (patchy, smooth field)
    papillary_angles_deg: tuple[Range, Range] = ((20.0, 60.0), (260.0, 300.0))  # anterolateral, posteromedial
    papillary_radius_mm: Range = (3.0, 5.0)  # papillary muscle radius


@dataclass(frozen=True)
class BodyPriors:
    """The scene around the heart: body outline, subcutaneous fat, lungs, spine, aorta, liver (mm).

    Offsets are between centres, along the image axes ("left"/"right"/"up"/"down" on the image).
    """

    body_left_of_heart_mm: Range = (15.0, 45.0)  # body ellipse centre left of the LV centre
    body_below_heart_mm: Range = (15.0, 40.0)  # body ellipse centre below the LV centre
    body_semi_axis_x_mm: Range = (140.0, 185.0)  # body ellipse, horizontal semi-axis
    body_semi_axis_y_mm: Range = (95.0, 130.0)  # body ellipse, vertical semi-axis
    body_rotation_deg: Range = (-8.0, 8.0)  # body ellipse rotation
    subcutaneous_fat_mm: Range = (6.0, 22.0)  # fat layer under the body outline
    left_lung_left_of_body_mm: Range = (50.0, 80.0)  # image-left lung: left of the body centre
    left_lung_above_body_mm: Range = (0.0, 25.0)  # ... above the body centre
    left_lung_semi_axes_mm: tuple[Range, Range] = ((40.0, 60.0), (55.0, 80.0))  # ... semi-axes (x, y)
    right_lung_right_of_heart_mm: Range = (50.0, 70.0)  # image-right lung: right of the LV centre
    right_lung_below_heart_mm: Range = (0.0, 25.0)  # ... below the LV centre
    right_lung_semi_axes_mm: tuple[Range, Range] = ((30.0, 45.0), (50.0, 75.0))  # ... semi-axes (x, y)
    spine_right_of_body_mm: Range = (-5.0, 5.0)  # vertebra: right of the body centre
    spine_above_back_mm: Range = (25.0, 35.0)  # ... above the inner edge of the back's fat layer
    spine_radius_mm: Range = (15.0, 20.0)  # ... radius
    aorta_right_of_spine_mm: Range = (20.0, 35.0)  # descending aorta: right of the vertebra
    aorta_above_spine_mm: Range = (20.0, 30.0)  # ... above the vertebra
    aorta_radius_mm: Range = (10.0, 13.0)  # ... radius
    liver_left_of_heart_mm: Range = (20.0, 50.0)  # liver ellipse centre left of the LV centre
    liver_below_heart_mm: Range = (60.0, 90.0)  # ... below the LV centre
    liver_semi_axes_mm: tuple[Range, Range] = ((60.0, 90.0), (40.0, 60.0))  # ... semi-axes (x, y) at full size


@dataclass(frozen=True)
class ImagePriors:
    """Signal intensities, coil bias, noise and scanner scale (docs/synthetic.md, "Image formation")."""

    blood: Range = (0.6, 0.9)  # LV and aortic blood pool, relative to dense scar core = 1
    remote: Range = (0.02, 0.06)  # nulled remote myocardium (also RV wall and papillary muscles)
    fat: Range = (0.5, 0.85)  # epicardial and subcutaneous fat
    muscle: Range = (0.06, 0.14)  # chest wall / body interior
    lung: Range = (0.01, 0.04)  # lung
    liver: Range = (0.2, 0.35)  # liver
    spine: Range = (0.25, 0.45)  # vertebra
    noreflow: Range = (0.02, 0.1)  # microvascular obstruction (dark core)
    rv_blood_factor: Range = (0.9, 1.0)  # RV blood / LV blood
    snr_blood: Range = (15.0, 40.0)  # blood signal / Rician noise sigma at the heart
    bias_amplitude: Range = (0.2, 0.4)  # multiplicative coil bias, +- this over the field of view
    coil_anterior_shift: float = 0.8  # bias polynomial's y coefficient shifted by this: brighter towards the top
    bias_through_plane: float = 0.3  # weight of the bias polynomial's z term
    blood_units: Range = (700.0, 1300.0)  # scanner units of the blood pool (int16 image)


@dataclass(frozen=True)
class IschemicScarPriors:
    """Ischaemic scar: subendocardial to transmural in a coronary territory (zeta 0 base .. 1 apex)."""

    territories: tuple[str, ...] = ("LAD", "RCA", "LCX")  # coronary territories ...
    territory_probs: tuple[float, ...] = (0.5, 0.3, 0.2)  # ... and their probabilities
    lad_centre_deg: Range = (80.0, 150.0)  # LAD scar centre (anterior / anteroseptal)
    lad_p_apical: float = 0.6  # probability that an LAD scar reaches the apex ...
    lad_apical_z_hi: float = 1.05  # ... its apical end (zeta) then
    lad_z_hi: Range = (0.65, 0.9)  # apical end otherwise
    lad_z_length: Range = (0.45, 0.85)  # long-axis extent (zeta)
    lad_p_wrap: float = 0.6  # probability that an apical LAD scar wraps around the apex
    rca_centre_deg: Range = (215.0, 280.0)  # RCA scar centre (inferoseptal / inferior)
    lcx_centre_deg: Range = (320.0, 380.0)  # LCX scar centre (lateral), taken modulo 360
    z_mid: Range = (0.25, 0.65)  # RCA / LCX: long-axis centre (zeta)
    z_half: Range = (0.25, 0.45)  # RCA / LCX: long-axis half extent (zeta)
    depth_beta: Range = (2.5, 1.2)  # Beta(a, b): the core's maximum depth through the wall (tau) ...
    depth_clip: Range = (0.25, 1.0)  # ... clipped to this
    half_width_deg: Range = (45.0, 100.0)  # angular half width
    large_depth: float = 0.7  # a scar deeper than this ...
    large_half_width_deg: float = 60.0  # ... and wider than this is large: it may have no-reflow
    greyzone_margin_deg: Range = (5.0, 12.0)  # grey-zone border beyond the core, angular
    greyzone_margin_z: Range = (0.03, 0.08)  # ... along the long axis (zeta)
    greyzone_depth: Range = (0.05, 0.18)  # ... through the wall (w)
    greyzone_level: Range = (0.35, 0.48)  # grey-zone enhancement fraction (0 remote .. 1 dense scar)
    p_noreflow: float = 0.4  # probability of no-reflow in a large scar
    noreflow_depth: Range = (0.3, 0.6)  # no-reflow depth, fraction of the core's depth
    heterogeneity: Range = (0.05, 0.9)  # texture strength inside the core (0 uniform .. 1 patchy)


@dataclass(frozen=True)
class NonischemicScarPriors:
    """Non-ischaemic scar: any of a mid-wall septal stripe, patchy foci, RV insertion-point enhancement."""

    component_probs: tuple[float, float, float] = (0.6, 0.5, 0.5)  # stripe, foci, RV insertion; redrawn until one
    stripe_z_lo: Range = (0.0, 0.35)  # stripe: basal end (zeta)
    stripe_z_length: Range = (0.35, 0.7)  # stripe: long-axis extent (zeta)
    stripe_centre_deg: Range = (160.0, 200.0)  # stripe: centre (septum)
    stripe_half_width_deg: Range = (30.0, 60.0)  # stripe: angular half width
    stripe_wall_mid: Range = (0.38, 0.62)  # stripe: centre through the wall (w)
    stripe_wall_half: Range = (0.2, 0.35)  # stripe: half thickness through the wall (w)
    stripe_amplitude: Range = (0.75, 1.0)  # stripe: peak enhancement fraction
    foci: IntRange = (1, 4)  # int: number of patchy foci
    p_focus_lateral: float = 0.6  # probability that a focus lies in the (infero)lateral wall ...
    focus_lateral_deg: Range = (-60.0, 30.0)  # ... its angle then (modulo 360)
    focus_any_deg: Range = (0.0, 360.0)  # ... its angle otherwise
    focus_zeta: Range = (0.1, 0.8)  # focus: long-axis position
    focus_wall: Range = (0.45, 0.95)  # focus: position through the wall (mid-wall to epicardial)
    focus_radius_mm: Range = (5.0, 10.0)  # focus: in-plane radius
    focus_z_radius_mm: Range = (6.0, 16.0)  # focus: long-axis radius
    focus_amplitude: Range = (0.75, 1.0)  # focus: peak enhancement fraction
    rvip_sides: tuple[tuple[int, ...], ...] = ((1,), (-1,), (1, -1))  # insertion points enhanced (equally likely)
    rvip_angle_factor: Range = (0.85, 1.0)  # RV insertion enhancement: fraction of the insertion angle
    rvip_zeta: Range = (0.15, 0.5)  # ... long-axis position
    rvip_wall: Range = (0.5, 0.85)  # ... position through the wall
    rvip_radius_mm: Range = (4.0, 7.0)  # ... in-plane radius
    rvip_z_radius_mm: Range = (8.0, 20.0)  # ... long-axis radius
    rvip_amplitude: Range = (0.7, 0.95)  # ... peak enhancement fraction
    heterogeneity: Range = (0.05, 0.6)  # texture strength (0 uniform .. 1 patchy)


@dataclass(frozen=True)
class HeadroomPriors:
    """Hazard version 2's ischaemic-scar variation (its own random stream; version 1 never draws it)."""

    greyzone_scale: Range = (0.35, 3.0)  # log: factor on the grey-zone margins (width, length, depth)
    thinning: Range = (0.0, 0.6)  # largest fraction of the wall lost under the scar (at its centre)
    channel_probs: tuple[float, ...] = (0.35, 0.30, 0.20, 0.15)  # probabilities of 0, 1, 2, 3 conducting channels
    channel_offset: Range = (-0.65, 0.65)  # channel angle from the scar centre, fraction of its half width
    channel_width_mm: Range = (3.0, 6.0)  # channel width (a transmural grey-zone corridor along the long axis)
    island_min_ml: float = 0.1  # a separate piece of core counts as an island (scar_islands) from this volume


@dataclass(frozen=True)
class ScarPriors:
    """Scar patterns (docs/synthetic.md, "Scar patterns"); the pattern shares are in ``SynthConfig``."""

    texture_waves: int = 8  # plane waves summed into the heterogeneity texture
    texture_wavelength_mm: Range = (4.0, 12.0)  # their wavelengths
    ischemic: IschemicScarPriors = field(default_factory=IschemicScarPriors)
    nonischemic: NonischemicScarPriors = field(default_factory=NonischemicScarPriors)
    headroom: HeadroomPriors = field(default_factory=HeadroomPriors)


@dataclass(frozen=True)
class ClinicalPriors:
    """Hazard version 2's clinical covariates, drawn apart from the scar (docs/synthetic.md, "Clinical covariates")."""

    age_mean: float = 60.0  # years, normal ...
    age_sd: float = 11.0  # ... with this SD
    age_range: Range = (25.0, 90.0)  # ... clipped to this
    p_male: float = 0.65  # probability of sex = 1 (male)
    lvef_intercept: float = 55.0  # LVEF (%) = intercept - slope x scar % + normal(0, SD) ...
    lvef_per_scar_percent: float = 0.25  # ... slope (points per scar-% point)
    lvef_sd: float = 9.0  # ... SD
    lvef_range: Range = (15.0, 75.0)  # ... clipped to this
    diabetes_logit: float = -1.3  # P(diabetes) = logistic(logit + per_year x (age - centre))
    diabetes_logit_per_year: float = 0.035
    diabetes_age_centre: float = 60.0


@dataclass(frozen=True)
class ClinicalPriorsV1:
    """Hazard version 1's clinical covariates (generator 1.0), generated from the scar."""

    p_male_none: float = 0.5  # probability of sex = 1 (male), scar-free ...
    p_male_ischemic: float = 0.78  # ... ischaemic scar
    p_male_nonischemic: float = 0.62  # ... non-ischaemic scar
    age_mean: float = 58.0  # years, normal ...
    age_ischemic_shift: float = 5.0  # ... plus this with an ischaemic scar ...
    age_sd: float = 11.0  # ... with this SD
    age_range: Range = (25.0, 90.0)  # ... clipped to this
    lvef_intercept: float = 60.0  # LVEF (%) = intercept - a x scar % - b x grey zone % - c x transmurality (ischaemic)
    lvef_per_scar_percent: float = 0.75  # a
    lvef_per_greyzone_percent: float = 0.35  # b
    lvef_per_transmurality: float = 4.0  # c (ischaemic scars only)
    lvef_sd: float = 6.0  # ... + normal(0, SD)
    lvef_range: Range = (15.0, 75.0)  # ... clipped to this
    diabetes_logit: float = -1.5  # P(diabetes) = logistic(logit + per_year x (age - centre) + ischaemic term)
    diabetes_logit_per_year: float = 0.035
    diabetes_age_centre: float = 60.0
    diabetes_logit_ischemic: float = 0.6


@dataclass(frozen=True)
class Priors:
    """Every prior of the generator, by group."""

    acquisition: AcquisitionPriors = field(default_factory=AcquisitionPriors)
    heart: HeartPriors = field(default_factory=HeartPriors)
    body: BodyPriors = field(default_factory=BodyPriors)
    image: ImagePriors = field(default_factory=ImagePriors)
    noise: SmoothFieldPriors = field(default_factory=SmoothFieldPriors)
    scar: ScarPriors = field(default_factory=ScarPriors)
    clinical: ClinicalPriors = field(default_factory=ClinicalPriors)
    clinical_v1: ClinicalPriorsV1 = field(default_factory=ClinicalPriorsV1)


PRIORS = Priors()
"""The priors the generator draws from."""
