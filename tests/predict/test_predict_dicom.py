"""predict and explain on DICOM series with RTSTRUCT / SEG masks: the numbers of the NIfTI route, a DICOM SEG
over each series with --dicom-seg, one-sentence errors, and no identifier in any output. Reuses the risk
model of tests/training/test_finetune.py; the DICOM objects are written from sample_data
(tests.io.test_dicom_masks)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lgerisk.io.labels import NOREFLOW, SCAR
from tests.helpers import SAMPLE_DATA
from tests.helpers.dicom import MORE_SECRETS, SECRETS, all_leaks, dicom_case, sample_arrays, seg_pixels, uid

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py

CASES = ("synth-0001", "synth-0006")
NUMBERS = (
    "risk_score",
    "survival_1",
    "survival_3",
    "survival_5",
    "scar_percent",
    "greyzone_percent",
    "myocardium_mass_g",
    "myocardium_volume_ml",
    "scar_volume_ml",
)


@pytest.fixture(scope="module")
def dicom_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two sample cases as DICOM series: an RTSTRUCT in masks/, a SEG inside the series folder."""
    root = tmp_path_factory.mktemp("predict-dicom") / "cohort"
    dicom_case(root, CASES[0], "rtstruct")
    dicom_case(root, CASES[1], "seg", inside=True)
    return root


def _text(result) -> str:
    return " ".join(result.output.split())


def test_dicom_cohort_predicts_the_numbers_of_the_nifti_route(runs, dicom_cohort: Path, tmp_path: Path, cli) -> None:
    manifest = tmp_path / "nifti.csv"
    manifest.write_text(
        "case_id,image,mask\n"
        + "".join(f"{case},{SAMPLE_DATA}/images/{case}.nii.gz,{SAMPLE_DATA}/masks/{case}.nii.gz\n" for case in CASES)
    )
    nifti = cli("predict", "--data", manifest, "--model", runs["main"], "--out", tmp_path / "nifti-out.csv")
    assert nifti.exit_code == 0, nifti.output
    out = tmp_path / "dicom.csv"
    dicom = cli("predict", "--data", dicom_cohort, "--model", runs["main"], "--out", out, "--dicom-seg")
    assert dicom.exit_code == 0, dicom.output
    expected = pd.read_csv(tmp_path / "nifti-out.csv", dtype={"case_id": str}).set_index("case_id")
    got = pd.read_csv(out, dtype={"case_id": str}).set_index("case_id")
    assert list(got.index) == list(CASES)
    for case in CASES:
        for column in NUMBERS:
            assert got.loc[case, column] == pytest.approx(expected.loc[case, column], rel=1e-5, abs=1e-6), (
                case,
                column,
            )
        # the DICOM series carry no synthetic-generator marker: real scans to lgerisk, so the synthetic model
        # flags them (the numbers stay), while the marked NIfTI scans are not flagged for that
        assert not got.loc[case, "scan_synthetic"] and expected.loc[case, "scan_synthetic"]
        _, labels, _ = sample_arrays(case)
        segments = seg_pixels(Path(f"{out}.seg") / f"{case}.dcm", dicom_cohort / case)
        np.testing.assert_array_equal(segments["Scar"], np.isin(labels, (SCAR, NOREFLOW)))
        assert segments["Scar"].any()
    again = cli("predict", "--data", dicom_cohort, "--model", runs["main"], "--out", out, "--dicom-seg")
    assert again.exit_code == 0 and "0 done, 2 already done" in again.output
    assert not all_leaks(tmp_path)
    for secret in SECRETS + MORE_SECRETS:
        assert secret.decode() not in dicom.output


def test_one_dicom_scan_and_its_bad_masks(runs, tmp_path: Path, cli) -> None:
    series, mask = dicom_case(tmp_path / "good", "synth-0001", "rtstruct")
    result = cli("predict", series, "--mask", mask, "--model", runs["main"], "--format", "json")
    assert result.exit_code == 0, result.output
    (record,) = json.loads(result.output[result.output.index("[") :])
    assert record["case_id"] == "synth-0001" and record["scar_percent"] > 0

    other, other_mask = dicom_case(
        tmp_path / "frame", "synth-0001", "seg", frame_uid=uid("other frame"), key="another scan"
    )
    names, names_mask = dicom_case(
        tmp_path / "names", "synth-0001", "rtstruct", names={1: "LV blood pool", 2: "Muscle", 3: "Scar"}
    )
    cases = [
        (other, other_mask, r"the frame of reference of the DICOM SEG differs from that of the image series"),
        (
            names,
            names_mask,
            (
                r"RTSTRUCT structure name\(s\) 'Muscle' are not in the name map \(names found: "
                r"'LV blood pool', 'Muscle', 'Scar'\)"
            ),
        ),
        (other, mask, r"the RTSTRUCT refers to another image series, not .*frame/synth-0001"),
        (SAMPLE_DATA / "images" / "synth-0001.nii.gz", mask, r"is matched to its DICOM image series by UIDs"),
    ]
    for scan, bad, message in cases:
        failed = cli("predict", scan, "--mask", bad, "--model", runs["main"])
        assert failed.exit_code == 2, failed.output
        assert failed.output.count("error:") == 1 and re.search(message, _text(failed)), _text(failed)
    fixed = cli("predict", names, "--mask", names_mask, "--model", runs["main"], "--labels", "myocardium=name:Muscle")
    assert fixed.exit_code == 0, fixed.output
    nifti = (SAMPLE_DATA / "images" / "synth-0001.nii.gz", "--mask", SAMPLE_DATA / "masks" / "synth-0001.nii.gz")
    for args, message in (
        ((series, "--mask", mask, "--dicom-seg"), "--dicom-seg needs an output file, --out FILE"),
        (
            (series, "--mask", mask, "--dicom-seg", "--anonymise", "--out", tmp_path / "p.csv"),
            "--anonymise writes no DICOM at all",
        ),
        ((*nifti, "--dicom-seg", "--out", tmp_path / "q.csv"), "no scan here is a DICOM series"),
    ):
        refused = cli("predict", *args, "--model", runs["main"])
        assert refused.exit_code == 2 and message in _text(refused), _text(refused)


def test_explain_writes_the_seg_and_no_identifier(runs, tmp_path: Path, cli) -> None:
    series, mask = dicom_case(tmp_path / "in", "synth-0006", "seg")
    out = tmp_path / "report"
    result = cli(
        "explain", series, "--mask", mask, "--model", runs["main"], "--out", out, "--steps", "4", "--dicom-seg"
    )
    assert result.exit_code == 0, result.output
    assert (out / "synth-0006" / "report.html").is_file()
    segments = seg_pixels(out / "synth-0006" / "scar_seg.dcm", series)
    np.testing.assert_array_equal(segments["Scar"], np.isin(sample_arrays("synth-0006")[1], (SCAR, NOREFLOW)))
    assert not all_leaks(out)
    plain = cli(
        "explain",
        series,
        "--mask",
        mask,
        "--model",
        runs["main"],
        "--out",
        tmp_path / "plain",
        "--steps",
        "4",
        "--anonymise",
    )
    assert plain.exit_code == 0 and not list((tmp_path / "plain").rglob("*.dcm"))
