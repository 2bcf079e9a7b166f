"""A low-confidence derived scar reaches the user: preprocess's count, calibrate-scar, the report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from lgerisk.explain.report import notices
from lgerisk.preprocess.scar import SCAR_CHECK_REASON, scar_check_reason, scar_check_sentence
from tests.helpers import make_cohort

LOW_QC = {"scar_method": "fwhm", "scar_confidence": "low", "scar_flags": ["few_slices", "remote_uncertain"]}


def test_only_a_low_confidence_derived_scar_is_a_reason() -> None:
    reason = scar_check_reason(LOW_QC)
    assert reason is not None and reason.startswith(SCAR_CHECK_REASON)
    assert "few_slices, remote_uncertain" in reason and "fwhm" in reason
    assert scar_check_reason(dict(LOW_QC, scar_confidence="medium")) is None
    assert scar_check_reason({"scar_method": "label", "scar_confidence": None}) is None
    assert scar_check_reason({}) is None  # a QC record from before the confidence existed


def test_the_report_asks_to_check_the_scar_rather_than_calling_the_scan_out_of_range() -> None:
    reason = scar_check_reason(LOW_QC)
    scar_only = notices({"reliable": False, "unreliable_reasons": [reason]})
    assert scar_only[0].startswith("CHECK THE SCAR") and "remote_uncertain" in scar_only[0]
    assert not any(line.startswith("OUT OF RANGE") for line in scar_only)
    both = notices({"reliable": False, "unreliable_reasons": ["slice spacing 30 mm is outside 8-13 mm", reason]})
    assert both[0].startswith("OUT OF RANGE") and "slice spacing" in both[0] and SCAR_CHECK_REASON not in both[0]
    assert both[1].startswith("CHECK THE SCAR")
    assert notices({"reliable": False, "unreliable_reasons": []})[0].startswith("OUT OF RANGE")
    assert not any(line.startswith("CHECK") for line in notices({"reliable": True}))


def test_the_sentence_counts_the_cases_to_check() -> None:
    table = pd.DataFrame(
        {"case_id": ["a", "b", "c", "d"], "scar_confidence": ["low", "high", None, "low"]}  # c: label scar
    )
    sentence = scar_check_sentence(table)
    assert sentence is not None and "check 2 of 3 cases" in sentence and sentence.endswith("a, d.")
    calm = scar_check_sentence(table.assign(scar_confidence=["high", "medium", None, "high"]))
    assert calm is not None and calm.startswith("derived scar: none of 3")
    assert scar_check_sentence(table.assign(scar_confidence=None)) is None  # only label scar
    assert scar_check_sentence(pd.DataFrame()) is None


def test_preprocess_prints_how_many_derived_scars_to_check(cli, tmp_path: Path) -> None:
    cohort = make_cohort(tmp_path / "cohort", n=2)
    result = cli("preprocess", "--data", cohort, "--out", tmp_path / "prep", "--scar-method", "fwhm", "--jobs", "1")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "prep" / "cases.csv")
    assert {"scar_confidence", "scar_flags"} <= set(table.columns)
    assert "derived scar: " in result.output and "of 2 cases" in result.output
    labelled = cli("preprocess", "--data", cohort, "--out", tmp_path / "label", "--jobs", "1")
    assert labelled.exit_code == 0 and "derived scar" not in labelled.output


def test_calibrate_scar_then_preprocess_with_it(cli, tmp_path: Path) -> None:
    cohort = make_cohort(tmp_path / "cohort", n=3)
    result = cli("calibrate-scar", "--data", cohort, "--out", tmp_path / "calib", "--quiet")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "calib" / "scar_calibration.json").is_file()
    shown = cli("calibrate-scar", "--data", cohort, "--out", tmp_path / "calib2")
    assert "peak fraction" in shown.output and "leave-one-out" in shown.output
    prep = cli(
        "preprocess", "--data", cohort, "--out", tmp_path / "prep", "--scar-method", "calibrated",
        "--scar-calibration", tmp_path / "calib", "--quiet",
    )  # fmt: skip
    assert prep.exit_code == 0, prep.output
    assert set(pd.read_csv(tmp_path / "prep" / "cases.csv")["scar_method"]) == {"calibrated"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("calibrate-scar", "--labels", "blood=1,myocardium=2+3"), "--labels 'blood=1,myocardium=2+3' names no scar"),
        (("preprocess", "--scar-method", "calibrated"), "needs --scar-calibration"),
        (("preprocess", "--scar-method", "calibrated", "--scar-calibration", "nowhere"), "no scar calibration here"),
    ],
)
def test_bad_calibration_input_is_one_sentence_and_exit_2(cli, tmp_path: Path, args: tuple, message: str) -> None:
    cohort = make_cohort(tmp_path / "cohort", n=3)
    result = cli(*args, "--data", cohort, "--out", tmp_path / "out", "--quiet")
    assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output


@pytest.mark.usefixtures("one_torch_thread")
def test_predict_makes_a_low_confidence_derived_scar_unreliable(runs, tmp_path: Path) -> None:
    from lgerisk.inference import OUT_OF_RANGE, RiskPredictor
    from lgerisk.io.cohort import discover_cohort

    predictor = RiskPredictor.load(runs["main"], device="cpu")
    case = discover_cohort(runs["prep"]).cases[0]
    prepared, qc = predictor.prepare(case, tmp_path / "work")
    image, tabular, _ = predictor.inputs(prepared, None, qc)
    risk = predictor.risk(image, tabular)
    plain = predictor.record(case.case_id, risk, qc, image)
    assert not any(r.startswith(SCAR_CHECK_REASON) for r in plain["unreliable_reasons"])
    low_qc = dict(qc, **LOW_QC)
    low = predictor.record(case.case_id, risk, low_qc, image)
    added = [r for r in low["unreliable_reasons"] if r not in plain["unreliable_reasons"]]
    assert added == [scar_check_reason(low_qc)] and low["reliable"] is False and low["risk_group"] == OUT_OF_RANGE
    assert low["scar_confidence"] == "low" and low["risk_score"] == plain["risk_score"]
    medium = predictor.record(case.case_id, risk, dict(low_qc, scar_confidence="medium"), image)
    assert medium["unreliable_reasons"] == plain["unreliable_reasons"] and medium["risk_group"] == plain["risk_group"]
