"""Calibrating the derived scar on expert-labelled scans (issue 23, item 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lgerisk.errors import InputError
from lgerisk.preprocess.calibrate import calibrate_scar, choose_peak_fraction, leave_one_out_fractions
from lgerisk.preprocess.calibration import CALIBRATION_FILE, PEAK_FRACTIONS, load_calibration
from lgerisk.preprocess.config import PreprocessConfig
from lgerisk.preprocess.expert import ScarComparison
from tests.helpers import make_cohort


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A phantom cohort (2 scarred, 2 scar-free, labels with scar) and its calibration folder."""
    root = tmp_path_factory.mktemp("calibrate")
    cohort = make_cohort(root / "cohort", n=4)
    calibrate_scar(cohort, root / "calib", labels="emidec")
    return cohort, root / "calib"


def test_a_calibration_is_written_with_its_card_and_reads_back(calibrated: tuple[Path, Path]) -> None:
    _, folder = calibrated
    card = json.loads((folder / CALIBRATION_FILE).read_text())
    assert card["kind"] == "lgerisk scar calibration" and card["method"] == "fwhm"
    assert card["peak_fraction"] in PEAK_FRACTIONS
    assert card["trained_on"]["case_ids"] == ["case0", "case1", "case2", "case3"]
    assert len(card["trained_on"]["data_sha256"]) == 64 and "Research only" in card["intended_use"]
    assert card["agreement"]["in_sample"]["mean_absolute_error"] < 2.0  # phantom scar is easy
    assert "mean_absolute_error" in card["agreement"]["leave_one_out"]
    loaded = load_calibration(folder)
    assert loaded.peak_fraction == card["peak_fraction"] and loaded.case_ids == ("case0", "case1", "case2", "case3")
    assert load_calibration(folder / CALIBRATION_FILE) == loaded


def test_preprocess_applies_a_calibration(calibrated: tuple[Path, Path], tmp_path: Path) -> None:
    from lgerisk.io.cohort import discover_cohort
    from lgerisk.preprocess.pipeline import preprocess_case

    cohort, folder = calibrated
    config = PreprocessConfig(scar_method="calibrated", scar_calibration=str(folder))
    case = discover_cohort(cohort).cases[0]
    qc = preprocess_case(case, config).qc
    assert qc["scar_method"] == "calibrated" and qc["scar_calibration"]["case_count"] == 4
    assert qc["scar_confidence"] in ("high", "medium", "low") and qc["scar_smoothing_mm"] == 2.5
    fwhm = preprocess_case(case, PreprocessConfig(scar_method="fwhm")).qc
    assert qc["scar_percent"] > 0 and abs(qc["scar_percent"] - fwhm["scar_percent"]) < 3

    # the settings hash follows what the calibration says, not where it lies
    card = json.loads((folder / CALIBRATION_FILE).read_text())
    other = tmp_path / "other"
    other.mkdir()
    (other / CALIBRATION_FILE).write_text(json.dumps(card))
    same = PreprocessConfig(scar_method="calibrated", scar_calibration=str(other))
    assert same.settings_hash() == config.settings_hash()
    card["peak_fraction"] = 0.3 if card["peak_fraction"] != 0.3 else 0.7
    (other / CALIBRATION_FILE).write_text(json.dumps(card))
    assert same.settings_hash() != config.settings_hash()


def test_the_fraction_with_the_lowest_error_is_chosen_and_ties_go_to_the_earlier() -> None:
    rows = [
        ScarComparison(case, f"{fraction:g}", 20.0, 20.0 + offset, 0.0, None)
        for case in ("a", "b")
        for fraction, offset in ((0.5, 4.0), (0.4, 1.0), (0.3, -1.0))
    ]
    assert choose_peak_fraction(rows, (0.5, 0.4, 0.3)) == 0.4  # earlier of the tie 0.4 / 0.3
    rows.append(ScarComparison("c", "0.3", 20.0, 20.0, 0.0, None))
    rows.append(ScarComparison("c", "0.4", 20.0, 30.0, 0.0, None))
    rows.append(ScarComparison("c", "0.5", 20.0, 30.0, 0.0, None))
    assert leave_one_out_fractions(rows, (0.5, 0.4, 0.3)) == {"a": 0.3, "b": 0.3, "c": 0.4}


def test_calibrating_needs_scar_labels(tmp_path: Path) -> None:
    cohort = make_cohort(tmp_path / "cohort", n=3)
    with pytest.raises(InputError, match="names no scar label") as caught:
        calibrate_scar(cohort, tmp_path / "calib", labels="blood=1,myocardium=2+3")
    assert caught.value.setting == "labels"
    with pytest.raises(InputError, match="at least 3"):
        calibrate_scar(make_cohort(tmp_path / "two", n=2), None, labels="emidec")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no scar calibration here"),
        ("{not json", "not a readable JSON"),
        ('{"kind": "model card"}', "not an lgerisk scar calibration card"),
        ("PEAK 1.5", "peak_fraction 1.5 is not 0.05-0.95"),
        ("PEAK true", "peak_fraction True"),
        ("VERSION 1", "calibrated with preprocessing version 1"),
        ("FORMAT 9", "scar calibration format 9"),
    ],
)
def test_a_bad_calibration_is_refused_naming_the_file(
    calibrated: tuple[Path, Path], tmp_path: Path, content: str | None, message: str
) -> None:
    card = json.loads((calibrated[1] / CALIBRATION_FILE).read_text())
    path = tmp_path / CALIBRATION_FILE
    if content is not None and content.startswith(("PEAK", "VERSION", "FORMAT")):
        key, value = content.split()
        field = {"PEAK": "peak_fraction", "VERSION": "algorithm_version", "FORMAT": "format"}[key]
        card[field] = json.loads(value)
        path.write_text(json.dumps(card))
    elif content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=message) as caught:
        load_calibration(tmp_path)
    assert str(path) in str(caught.value) and caught.value.setting == "scar_calibration"


def test_the_config_wants_a_calibration_exactly_with_the_calibrated_method() -> None:
    with pytest.raises(InputError, match="needs scar_calibration"):
        PreprocessConfig(scar_method="calibrated")
    with pytest.raises(InputError, match="only used with scar_method='calibrated'"):
        PreprocessConfig(scar_method="fwhm", scar_calibration="calib")
    for other in ({"remote_method": "iterative"}, {"scar_smoothing_mm": 1.5}):  # not what the calibration learnt
        with pytest.raises(InputError, match="learnt with remote_method='mixture' and scar_smoothing_mm=2.5"):
            PreprocessConfig(scar_method="calibrated", scar_calibration="calib", **other)
