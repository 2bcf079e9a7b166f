"""Feature extraction: identical to the pyradiomics command-line tool, empty ROIs, settings."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import SimpleITK as sitk

from lgerisk.errors import InputError
from lgerisk.preprocess.config import PreprocessConfig
from lgerisk.preprocess.run import preprocess_cohort
from lgerisk.radiomics.extract import extract_rois, feature_names, roi_mask
from lgerisk.radiomics.run import extract_cohort
from lgerisk.radiomics.settings import default_params_path, load_params, parse_image_types, parse_rois
from tests.helpers import phantom_arrays


def test_emidec_features_equal_pyradiomics_cli(emidec: Path, tmp_path: Path) -> None:
    """Same preprocessed image and ROI mask, same parameter file: our table == `pyradiomics` CLI output."""
    preprocess_cohort(emidec, tmp_path / "prep", PreprocessConfig())
    report, table, _ = extract_cohort(tmp_path / "prep", tmp_path / "radiomics.csv")
    assert report.exit_code == 0
    ours = table.set_index("case_id").loc["samplePositive"]
    image_path = tmp_path / "prep/cases/samplePositive/image.nii.gz"
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "prep/cases/samplePositive/mask.nii.gz")))
    image = sitk.ReadImage(str(image_path))
    cli = Path(sys.executable).with_name("pyradiomics")
    for roi in ("myocardium", "scar", "greyzone"):
        mask_path = tmp_path / f"{roi}.nii.gz"
        sitk.WriteImage(roi_mask(labels, roi, image), str(mask_path))
        out = tmp_path / f"{roi}.csv"
        subprocess.run(
            [str(cli), str(image_path), str(mask_path), "-p", str(default_params_path()), "-o", str(out), "-f", "csv"],
            check=True,
            capture_output=True,
        )
        with out.open() as handle:
            theirs = next(csv.DictReader(handle))
        compared = 0
        for key, value in theirs.items():
            if key.startswith("original_"):
                assert float(ours[f"{roi}__{key}"]) == pytest.approx(float(value), rel=1e-9, abs=1e-12), (roi, key)
                compared += 1
        assert compared > 90  # shape, first order and five texture classes
        assert ours[f"{roi}__mask_hash"] == theirs["diagnostics_Mask-original_Hash"]
    assert ours["image_hash"] == theirs["diagnostics_Image-original_Hash"]
    for column, key in (
        ("pyradiomics_version", "PyRadiomics"),
        ("numpy_version", "Numpy"),
        ("simpleitk_version", "SimpleITK"),
        ("pywavelet_version", "PyWavelet"),
        ("python_version", "Python"),
    ):
        assert str(ours[column]) == theirs[f"diagnostics_Versions_{key}"], column


def _case(scar: bool = True):
    image, labels = phantom_arrays(scar=scar)
    labels = labels.copy()
    labels[(labels == 2) & (image > 130)] = 5  # a little grey zone
    sitk_image = sitk.GetImageFromArray(image / 500.0)
    sitk_image.SetSpacing((1.4, 1.4, 10.0))
    return sitk_image, labels


def test_empty_roi_is_nan_with_status() -> None:
    image, labels = _case(scar=False)
    params = load_params()
    row = extract_rois(image, labels, params, ("myocardium", "scar"))
    assert row["scar__status"] == "empty" and row["scar__voxel_count"] == 0
    names = feature_names(__import__("json").dumps(params, sort_keys=True))
    assert all(math.isnan(row[f"scar__{name}"]) for name in names)
    assert row["myocardium__status"] == "ok" and not math.isnan(row["myocardium__original_firstorder_Mean"])


def test_too_small_roi_is_reported_not_raised() -> None:
    image, labels = _case()
    labels[labels == 3] = 2
    labels[2, 10, 40] = 3  # a single scar voxel: below pyradiomics' minimum ROI size
    row = extract_rois(image, labels, load_params(), ("scar",))
    assert row["scar__status"].startswith("too small") and math.isnan(row["scar__original_firstorder_Mean"])


def test_image_types_and_rois() -> None:
    assert parse_rois("scar, myocardium") == ("scar", "myocardium")
    assert parse_image_types("original,wavelet") == ("original", "wavelet")
    with pytest.raises(InputError, match="unknown ROI"):
        parse_rois("scar,liver")
    with pytest.raises(InputError, match="unknown image type"):
        parse_image_types("gabor")
    params = load_params(image_types=("original", "log", "wavelet"))
    assert set(params["imageType"]) == {"Original", "LoG", "Wavelet"}
    image, labels = _case()
    row = extract_rois(image, labels, params, ("myocardium",))
    assert any(k.startswith("myocardium__wavelet-") for k in row)
    assert any(k.startswith("myocardium__log-sigma-") for k in row)


def test_user_params_validated(tmp_path: Path) -> None:
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("setting: [\n")
    with pytest.raises(InputError, match="not a YAML file"):
        load_params(bad_yaml)
    rejected = tmp_path / "rejected.yaml"
    rejected.write_text("setting:\n  binWidth: wide\n")
    with pytest.raises(InputError, match="pyradiomics rejects"):
        load_params(rejected)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(InputError, match="YAML mapping"):
        load_params(scalar)
    with pytest.raises(InputError, match="does not exist"):
        load_params(tmp_path / "missing.yaml")
    good = tmp_path / "good.yaml"
    good.write_text("featureClass:\n  firstorder:\nsetting:\n  binCount: 32\n  force2D: true\n")
    assert load_params(good)["setting"]["binCount"] == 32


def test_feature_table_layout(cohort: Path, tmp_path: Path) -> None:
    report, table, _ = extract_cohort(cohort, tmp_path / "out" / "features.csv")
    assert report.exit_code == 0
    read = pd.read_csv(tmp_path / "out" / "features.csv")
    columns = list(read.columns)
    assert columns[0] == "case_id" and list(read["case_id"]) == ["case0", "case1", "case2"]
    first_qc = columns.index("scar_method")
    first_provenance = columns.index("pyradiomics_version")
    assert all("__" in c for c in columns[1:first_qc])  # features first, ROI__imagetype_class_Feature
    assert "myocardium__original_glcm_Contrast" in columns[1:first_qc]
    assert first_qc < first_provenance
    assert {"scar_percent", "greyzone_percent", "settings_hash", "image_hash", "scar__mask_hash"} <= set(columns)
    assert read.loc[read["case_id"] == "case1", "scar__status"].item() == "empty"
    # a raw cohort was preprocessed with the same code, into the cache beside the table
    assert (tmp_path / "out" / "features.parts" / "preprocessed" / "cases.csv").is_file()
