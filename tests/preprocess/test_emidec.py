"""Preprocess on the two real EMIDEC scans: QC scar % against a direct count of the label voxels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from lgerisk.io.cohort import discover_cohort
from lgerisk.preprocess.config import PreprocessConfig
from lgerisk.preprocess.run import preprocess_cohort


def direct_scar_percent(emidec: Path, case: str) -> float:
    """Scar (3+4) share of myocardium (2+3+4) by voxel count on the raw labels."""
    labels = np.rint(sitk.GetArrayFromImage(sitk.ReadImage(str(emidec / case / "Contours" / f"{case}.nii.gz"))))
    return 100.0 * np.isin(labels, (3, 4)).sum() / np.isin(labels, (2, 3, 4)).sum()


def test_emidec_label_scar_matches_direct_count(emidec: Path, tmp_path: Path) -> None:
    report, table = preprocess_cohort(emidec, tmp_path / "prep", PreprocessConfig(labels="emidec"))
    assert report.exit_code == 0 and sorted(report.done) == ["sampleNegative", "samplePositive"]
    table = table.set_index("case_id")
    positive = direct_scar_percent(emidec, "samplePositive")
    assert abs(positive - 14.61) < 0.01  # the README's figure: 788 of 5394 voxels
    assert abs(table.loc["samplePositive", "scar_percent"] - positive) < 0.01  # same grid: exact
    assert table.loc["sampleNegative", "scar_percent"] == 0.0
    # after in-plane resampling to 1.4 mm the written mask keeps the scar share within resampling error
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "prep/cases/samplePositive/mask.nii.gz")))
    resampled = 100.0 * np.isin(mask, (3, 4)).sum() / np.isin(mask, (2, 3, 4, 5)).sum()
    assert abs(resampled - positive) < 1.0
    qc = json.loads((tmp_path / "prep/cases/samplePositive/qc.json").read_text())
    assert qc["scar_method"] == "label"
    assert qc["original_spacing_mm"] == [1.40625, 1.40625, 13.0]
    assert 100 < qc["myocardium_mass_g"] < 200  # 5394 voxels x 25.7 mm3 x 1.05 g/ml = 145.6 g
    assert abs(qc["myocardium_mass_g"] - 5394 * 1.40625**2 * 13.0 / 1000 * 1.05) < 0.01
    assert pd.read_csv(tmp_path / "prep/cases.csv").shape[0] == 2


def test_emidec_nsd_scar_overlaps_labelled_scar(emidec: Path, tmp_path: Path) -> None:
    cohort = discover_cohort(emidec)
    assert cohort.layout == "emidec"
    report, table = preprocess_cohort(emidec, tmp_path / "prep", PreprocessConfig(labels="emidec", scar_method="nsd"))
    assert report.exit_code == 0
    positive = table.set_index("case_id").loc["samplePositive"]
    assert positive["scar_method"] == "nsd"
    assert positive["scar_percent"] > 0
    assert (
        positive["scar_label_dice"] > 0.05
    )  # derived scar overlaps the expert's (0.75 at 5 SD, 0.66 at 3 SD against the mixture remote reference)
    _, lenient = preprocess_cohort(
        emidec, tmp_path / "prep3", PreprocessConfig(labels="emidec", scar_method="nsd", nsd=3)
    )
    assert lenient.set_index("case_id").loc["samplePositive", "scar_label_dice"] > 0.5


def test_preprocessed_folder_is_a_cohort(emidec: Path, tmp_path: Path) -> None:
    preprocess_cohort(emidec, tmp_path / "prep", PreprocessConfig())
    cohort = discover_cohort(tmp_path / "prep")
    assert cohort.layout == "preprocessed"
    assert [c.case_id for c in cohort.cases] == ["sampleNegative", "samplePositive"]
    assert all(c.image.is_file() and c.mask.is_file() for c in cohort.cases)


def test_preprocessed_cases_csv_is_a_preprocessed_cohort(emidec: Path, tmp_path: Path) -> None:
    preprocess_cohort(emidec, tmp_path / "prep", PreprocessConfig())
    assert discover_cohort(tmp_path / "prep" / "cases.csv").layout == "preprocessed"
