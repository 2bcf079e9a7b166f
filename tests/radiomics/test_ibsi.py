"""IBSI 1 digital phantom through lgerisk's extraction core, against the published reference values.

Phantom: IBSI reference manual (Zwanenburg et al., "The Image Biomarker Standardisation Initiative",
arXiv:1612.07003, chapter "Reference data sets", figure of the digital phantom) and its files in
https://github.com/theibsi/data_sets (``ibsi_1_digital_phantom``): 5 x 4 x 4 (x, y, z) voxels of
2.0 mm, grey levels 1, 3, 4, 6 in the ROI (2 and 5 absent), 74 of the 80 voxels in the ROI (excluded:
four on the outside, one on the edge of slice 2 and one internal voxel of slice 3).

Reference values: the "dig. phantom" values published with each feature definition in the IBSI 1
manual (tolerance 0 for everything but morphology), as collected in machine-readable form in
oncoray/mirp ``test/data/ibsi_1_reference_values/ibsi_1_dig_phantom.csv``. The IBSI tag of each
value is given beside it. Values are published to 3 significant digits, so each is compared within
0.5 % or the published tolerance, whichever is looser.

Settings (IBSI-comparable): no resampling, no normalisation, ``binWidth: 1`` (identity
discretisation on the integer phantom, equivalent to IBSI's "no discretisation" for it),
``force2D: false`` (the compared values are the 3D ones), ``distances: [1]`` (Chebyshev distance 1,
26-neighbourhood), ``gldm_a: 0`` (IBSI NGLDM coarseness 0), ``voxelArrayShift: 0`` (energy of the
raw intensities).

Known pyradiomics deviations, corrected inline:
  * ``firstorder_Kurtosis`` is the plain kurtosis; IBSI ``stat_kurt`` is the excess kurtosis, so
    pyradiomics' value - 3 is compared.
  * ``shape_Major/Minor/LeastAxisLength`` use the eigenvalues of a 1/N covariance of the ROI voxel
    coordinates; IBSI's use 1/(N-1), so pyradiomics' lengths are multiplied by sqrt(N / (N - 1)),
    N = 74 (+0.68 %). Elongation and flatness are ratios, unaffected.

Feature correspondences that are only a renaming: pyradiomics firstorder Entropy/Uniformity are
IBSI's intensity-histogram entropy/uniformity (bin width 1 = IBSI's histogram of the phantom);
GLCM ``SumSquares`` = joint variance, ``JointEnergy`` = angular second moment, ``ClusterTendency``
= IBSI cluster tendency (= sum variance), ``MaximumProbability`` = joint maximum, ``Id/Idn/Idm/Idmn``
= inverse difference (normalised) / inverse difference moment (normalised); GLDM with alpha 0 is
IBSI's NGLDM (dependence count = 1 + neighbours of equal grey level, IBSI's j = k + 1): small/large
dependence emphasis = low/high dependence emphasis, DependenceNonUniformity = dependence count
non-uniformity, and so on.

Aggregation: pyradiomics computes GLCM and GLRLM per direction (13 in 3D) and averages the
features, i.e. IBSI "3D, averaged" (``cm_*_3D_avg``, ``rlm_*_3D_avg``); GLSZM, NGTDM and GLDM are
computed over the whole volume with 26-connectivity, i.e. IBSI "3D" (``szm_*_3D``, ``ngt_*_3D``,
``ngl_*_3D``).

Left out, and why:
  * Not computed by pyradiomics: morphology compactness 1/2 and spherical disproportion (deprecated,
    off in pyradiomics 3), asphericity, centre-of-mass shift, AABB/OMBB/AEE/MVEE/convex-hull
    volume and area densities, integrated intensity, Moran's I, Geary's C; local intensity peaks;
    intensity statistics median absolute deviation, coefficient of variation, quartile coefficient
    of dispersion; every intensity-histogram feature except entropy and uniformity (mode, gradients,
    ...); the intensity-volume histogram; GLDZM; NGLDM grey level non-uniformity normalised
    (deprecated in pyradiomics: it equals firstorder Uniformity, compared above) and dependence
    count energy.
  * No IBSI counterpart: shape Maximum2DDiameter{Slice,Column,Row}, firstorder TotalEnergy (energy
    times voxel volume), GLCM MCC.
  * Other aggregations: the 2D, 2.5D and "merged"/"combined" IBSI values (pyradiomics averages
    per-direction features and never merges matrices; lgerisk's own LGE setting is force2D, but the
    digital phantom's 3D values are the ones that test the feature definitions here).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk

from lgerisk.radiomics.extract import extract_rois
from lgerisk.radiomics.settings import validate_params

# The IBSI 1 digital phantom, (z, y, x) = 4 slices of 4 rows of 5 voxels, 2.0 mm isotropic.
# Voxel values and ROI mask from the IBSI data set (theibsi/data_sets, ibsi_1_digital_phantom), as
# converted to text in PolusAI/nyxus tests/test_data.h (ibsi_phantom_z*_intensity / _mask, whose
# arrays list the same 80 voxels with the slice axis swapped with the row axis). The slice axis here
# was checked against IBSI's own per-slice matrices: all 16 2D grey-level co-occurrence matrices
# (4 slices x 4 directions) of theibsi/ibsi-doc docs/08_Digital_phantom_texture_matrices.rst are
# reproduced exactly. Mirroring rows or slices changes none of the 3D features compared below.
# The two ROI-excluded voxels of slices 2 and 3 hold 1 and 9 in the data set; they never enter.
PHANTOM = np.array(
    [
        [[4, 4, 6, 4, 1], [4, 1, 6, 4, 1], [1, 4, 6, 1, 1], [1, 4, 4, 1, 1]],
        [[4, 4, 6, 1, 1], [1, 1, 3, 1, 1], [1, 1, 6, 1, 1], [1, 4, 4, 1, 1]],
        [[1, 1, 6, 1, 1], [1, 1, 9, 1, 1], [1, 1, 1, 1, 1], [1, 4, 4, 1, 1]],
        [[1, 1, 6, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 4, 4, 1, 1]],
    ],
    dtype=np.float64,
)

ROI = np.array(
    [
        [[1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1]],
        [[1, 1, 1, 1, 1], [0, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1]],
        [[1, 1, 1, 1, 1], [1, 1, 0, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 0, 0]],
        [[1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 0, 0]],
    ],
    dtype=np.uint8,
)

SPACING_MM = 2.0
N_ROI = 74

PARAMS = {
    "imageType": {"Original": {}},
    "featureClass": {name: None for name in ("shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")},
    "setting": {
        "binWidth": 1,
        "force2D": False,
        "distances": [1],
        "gldm_a": 0,
        "normalize": False,
        "voxelArrayShift": 0,
        "label": 1,
        "minimumROIDimensions": 1,
    },
}

AXIS_CORRECTION = math.sqrt(N_ROI / (N_ROI - 1))
"""pyradiomics' 1/N covariance -> IBSI's 1/(N-1): axis lengths scale by sqrt(N / (N - 1))."""

# pyradiomics feature -> (IBSI tag, IBSI dig. phantom value, published tolerance, correction)
REFERENCE: dict[str, tuple[str, float, float, object]] = {
    # morphology
    "shape_MeshVolume": ("morph_volume", 556, 4, None),
    "shape_VoxelVolume": ("morph_vol_approx", 592, 4, None),
    "shape_SurfaceArea": ("morph_area_mesh", 388, 3, None),
    "shape_SurfaceVolumeRatio": ("morph_av", 0.698, 0.004, None),
    "shape_Sphericity": ("morph_sphericity", 0.843, 0.005, None),
    "shape_Maximum3DDiameter": ("morph_diam", 13.1, 0.1, None),
    "shape_MajorAxisLength": ("morph_pca_maj_axis", 11.4, 0.1, lambda v: v * AXIS_CORRECTION),
    "shape_MinorAxisLength": ("morph_pca_min_axis", 9.31, 0.06, lambda v: v * AXIS_CORRECTION),
    "shape_LeastAxisLength": ("morph_pca_least_axis", 8.54, 0.05, lambda v: v * AXIS_CORRECTION),
    "shape_Elongation": ("morph_pca_elongation", 0.816, 0.005, None),
    "shape_Flatness": ("morph_pca_flatness", 0.749, 0.005, None),
    # intensity statistics
    "firstorder_Mean": ("stat_mean", 2.15, 0, None),
    "firstorder_Variance": ("stat_var", 3.05, 0, None),
    "firstorder_Skewness": ("stat_skew", 1.08, 0, None),
    "firstorder_Kurtosis": ("stat_kurt", -0.355, 0, lambda v: v - 3),  # pyradiomics: not excess kurtosis
    "firstorder_Median": ("stat_median", 1, 0, None),
    "firstorder_Minimum": ("stat_min", 1, 0, None),
    "firstorder_10Percentile": ("stat_p10", 1, 0, None),
    "firstorder_90Percentile": ("stat_p90", 4, 0, None),
    "firstorder_Maximum": ("stat_max", 6, 0, None),
    "firstorder_InterquartileRange": ("stat_iqr", 3, 0, None),
    "firstorder_Range": ("stat_range", 5, 0, None),
    "firstorder_MeanAbsoluteDeviation": ("stat_mad", 1.55, 0, None),
    "firstorder_RobustMeanAbsoluteDeviation": ("stat_rmad", 1.11, 0, None),
    "firstorder_Energy": ("stat_energy", 567, 0, None),
    "firstorder_RootMeanSquared": ("stat_rms", 2.77, 0, None),
    # intensity histogram (bin width 1)
    "firstorder_Entropy": ("ih_entropy", 1.27, 0, None),
    "firstorder_Uniformity": ("ih_uniformity", 0.512, 0, None),
    # GLCM, 3D averaged
    "glcm_MaximumProbability": ("cm_joint_max_3D_avg", 0.503, 0, None),
    "glcm_JointAverage": ("cm_joint_avg_3D_avg", 2.14, 0, None),
    "glcm_SumSquares": ("cm_joint_var_3D_avg", 3.10, 0, None),
    "glcm_JointEntropy": ("cm_joint_entr_3D_avg", 2.40, 0, None),
    "glcm_DifferenceAverage": ("cm_diff_avg_3D_avg", 1.43, 0, None),
    "glcm_DifferenceVariance": ("cm_diff_var_3D_avg", 3.06, 0, None),
    "glcm_DifferenceEntropy": ("cm_diff_entr_3D_avg", 1.56, 0, None),
    "glcm_SumAverage": ("cm_sum_avg_3D_avg", 4.29, 0, None),
    "glcm_SumEntropy": ("cm_sum_entr_3D_avg", 1.92, 0, None),
    "glcm_JointEnergy": ("cm_energy_3D_avg", 0.303, 0, None),
    "glcm_Contrast": ("cm_contrast_3D_avg", 5.32, 0, None),
    "glcm_Id": ("cm_inv_diff_3D_avg", 0.677, 0, None),
    "glcm_Idn": ("cm_inv_diff_norm_3D_avg", 0.851, 0, None),
    "glcm_Idm": ("cm_inv_diff_mom_3D_avg", 0.618, 0, None),
    "glcm_Idmn": ("cm_inv_diff_mom_norm_3D_avg", 0.898, 0, None),
    "glcm_InverseVariance": ("cm_inv_var_3D_avg", 0.0604, 0, None),
    "glcm_Correlation": ("cm_corr_3D_avg", 0.157, 0, None),
    "glcm_Autocorrelation": ("cm_auto_corr_3D_avg", 5.06, 0, None),
    "glcm_ClusterTendency": ("cm_clust_tend_3D_avg", 7.07, 0, None),
    "glcm_ClusterShade": ("cm_clust_shade_3D_avg", 16.6, 0, None),
    "glcm_ClusterProminence": ("cm_clust_prom_3D_avg", 145, 0, None),
    "glcm_Imc1": ("cm_info_corr1_3D_avg", -0.157, 0, None),
    "glcm_Imc2": ("cm_info_corr2_3D_avg", 0.520, 0, None),
    # GLRLM, 3D averaged
    "glrlm_ShortRunEmphasis": ("rlm_sre_3D_avg", 0.705, 0, None),
    "glrlm_LongRunEmphasis": ("rlm_lre_3D_avg", 3.06, 0, None),
    "glrlm_LowGrayLevelRunEmphasis": ("rlm_lgre_3D_avg", 0.603, 0, None),
    "glrlm_HighGrayLevelRunEmphasis": ("rlm_hgre_3D_avg", 9.70, 0, None),
    "glrlm_ShortRunLowGrayLevelEmphasis": ("rlm_srlge_3D_avg", 0.352, 0, None),
    "glrlm_ShortRunHighGrayLevelEmphasis": ("rlm_srhge_3D_avg", 8.54, 0, None),
    "glrlm_LongRunLowGrayLevelEmphasis": ("rlm_lrlge_3D_avg", 2.39, 0, None),
    "glrlm_LongRunHighGrayLevelEmphasis": ("rlm_lrhge_3D_avg", 17.6, 0, None),
    "glrlm_GrayLevelNonUniformity": ("rlm_glnu_3D_avg", 21.8, 0, None),
    "glrlm_GrayLevelNonUniformityNormalized": ("rlm_glnu_norm_3D_avg", 0.430, 0, None),
    "glrlm_RunLengthNonUniformity": ("rlm_rlnu_3D_avg", 26.9, 0, None),
    "glrlm_RunLengthNonUniformityNormalized": ("rlm_rlnu_norm_3D_avg", 0.513, 0, None),
    "glrlm_RunPercentage": ("rlm_r_perc_3D_avg", 0.680, 0, None),
    "glrlm_GrayLevelVariance": ("rlm_gl_var_3D_avg", 3.46, 0, None),
    "glrlm_RunVariance": ("rlm_rl_var_3D_avg", 0.574, 0, None),
    "glrlm_RunEntropy": ("rlm_rl_entr_3D_avg", 2.43, 0, None),
    # GLSZM, 3D
    "glszm_SmallAreaEmphasis": ("szm_sze_3D", 0.255, 0, None),
    "glszm_LargeAreaEmphasis": ("szm_lze_3D", 550, 0, None),
    "glszm_LowGrayLevelZoneEmphasis": ("szm_lgze_3D", 0.253, 0, None),
    "glszm_HighGrayLevelZoneEmphasis": ("szm_hgze_3D", 15.6, 0, None),
    "glszm_SmallAreaLowGrayLevelEmphasis": ("szm_szlge_3D", 0.0256, 0, None),
    "glszm_SmallAreaHighGrayLevelEmphasis": ("szm_szhge_3D", 2.76, 0, None),
    "glszm_LargeAreaLowGrayLevelEmphasis": ("szm_lzlge_3D", 503, 0, None),
    "glszm_LargeAreaHighGrayLevelEmphasis": ("szm_lzhge_3D", 1490, 0, None),
    "glszm_GrayLevelNonUniformity": ("szm_glnu_3D", 1.40, 0, None),
    "glszm_GrayLevelNonUniformityNormalized": ("szm_glnu_norm_3D", 0.280, 0, None),
    "glszm_SizeZoneNonUniformity": ("szm_zsnu_3D", 1, 0, None),
    "glszm_SizeZoneNonUniformityNormalized": ("szm_zsnu_norm_3D", 0.200, 0, None),
    "glszm_ZonePercentage": ("szm_z_perc_3D", 0.0676, 0, None),
    "glszm_GrayLevelVariance": ("szm_gl_var_3D", 2.64, 0, None),
    "glszm_ZoneVariance": ("szm_zs_var_3D", 331, 0, None),
    "glszm_ZoneEntropy": ("szm_zs_entr_3D", 2.32, 0, None),
    # NGTDM, 3D
    "ngtdm_Coarseness": ("ngt_coarseness_3D", 0.0296, 0, None),
    "ngtdm_Contrast": ("ngt_contrast_3D", 0.584, 0, None),
    "ngtdm_Busyness": ("ngt_busyness_3D", 6.54, 0, None),
    "ngtdm_Complexity": ("ngt_complexity_3D", 13.5, 0, None),
    "ngtdm_Strength": ("ngt_strength_3D", 0.763, 0, None),
    # GLDM (alpha 0) = IBSI NGLDM, 3D
    "gldm_SmallDependenceEmphasis": ("ngl_lde_3D", 0.0450, 0, None),
    "gldm_LargeDependenceEmphasis": ("ngl_hde_3D", 109, 0, None),
    "gldm_LowGrayLevelEmphasis": ("ngl_lgce_3D", 0.693, 0, None),
    "gldm_HighGrayLevelEmphasis": ("ngl_hgce_3D", 7.66, 0, None),
    "gldm_SmallDependenceLowGrayLevelEmphasis": ("ngl_ldlge_3D", 0.00963, 0, None),
    "gldm_SmallDependenceHighGrayLevelEmphasis": ("ngl_ldhge_3D", 0.736, 0, None),
    "gldm_LargeDependenceLowGrayLevelEmphasis": ("ngl_hdlge_3D", 102, 0, None),
    "gldm_LargeDependenceHighGrayLevelEmphasis": ("ngl_hdhge_3D", 235, 0, None),
    "gldm_GrayLevelNonUniformity": ("ngl_glnu_3D", 37.9, 0, None),
    "gldm_DependenceNonUniformity": ("ngl_dcnu_3D", 4.86, 0, None),
    "gldm_DependenceNonUniformityNormalized": ("ngl_dcnu_norm_3D", 0.0657, 0, None),
    "gldm_GrayLevelVariance": ("ngl_gl_var_3D", 3.05, 0, None),
    "gldm_DependenceVariance": ("ngl_dc_var_3D", 22.1, 0, None),
    "gldm_DependenceEntropy": ("ngl_dc_entr_3D", 4.40, 0, None),
}


@pytest.fixture(scope="module")
def phantom_row() -> dict:
    """One extraction of the phantom ROI through ``extract_rois`` (ROI encoded as myocardium label 2)."""
    validate_params(PARAMS, "IBSI digital phantom parameters")
    image = sitk.GetImageFromArray(PHANTOM)
    image.SetSpacing((SPACING_MM,) * 3)
    labels = np.where(ROI == 1, 2, 0).astype(np.uint8)
    return extract_rois(image, labels, PARAMS, ("myocardium",))  # its speed: benchmarks/radiomics.py


def test_phantom_matches_its_published_description():
    assert PHANTOM.shape == ROI.shape == (4, 4, 5)  # (z, y, x): 5 x 4 x 4 (x, y, z)
    values = PHANTOM[ROI == 1]
    assert values.size == N_ROI
    assert set(np.unique(values)) == {1, 3, 4, 6}
    assert values.mean() == pytest.approx(2.15, abs=0.005)


def test_phantom_extracts(phantom_row):
    assert phantom_row["myocardium__status"] == "ok"
    assert phantom_row["myocardium__voxel_count"] == N_ROI


@pytest.mark.parametrize("feature", sorted(REFERENCE))
def test_ibsi_reference_value(phantom_row, feature):
    tag, reference, tolerance, correction = REFERENCE[feature]
    value = float(phantom_row[f"myocardium__original_{feature}"])
    if correction is not None:
        value = correction(value)
    allowed = max(0.005 * abs(reference), tolerance)
    assert value == pytest.approx(reference, abs=allowed), f"{feature} vs IBSI {tag}"
