"""Provenance of a scan (the generator's own marker, never the case id) and of a model (its card), told in
words true for the pair; predictions outside the model's training ranges are flagged reliable=false.

The prediction and explanation tests reuse the risk models of tests/training/test_finetune.py (trained on
the synthetic sample_data)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from lgerisk.cards import seal_card
from lgerisk.io.provenance import (
    cases_are_synthetic,
    cohort_marker,
    cohort_sentence,
    header_marked,
    mismatch_reason,
    provenance_sentence,
    scan_is_synthetic,
)
from lgerisk.synth import MARKER_FILE, SCAN_MARKER, SynthConfig, generate_cohort
from tests.helpers import SAMPLE_DATA, phantom_arrays, write_volume

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REAL_SCAN_WITH_SYNTHETIC_MODEL = (
    "Model trained on SYNTHETIC data; this scan is a real scan: the risk is not meaningful for it."
)


@pytest.fixture(scope="module")
def synth_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "cohort"
    generate_cohort(out, SynthConfig(n_cases=2, seed=5, small=True))
    return out


def _copy_pair(source: str, folder: Path, name: str) -> Path:
    """A sample_data scan and its mask, copied to ``folder/name.nii.gz`` + ``name_seg.nii.gz``."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(SAMPLE_DATA / "images" / f"{source}.nii.gz", folder / f"{name}.nii.gz")
    shutil.copy(SAMPLE_DATA / "masks" / f"{source}.nii.gz", folder / f"{name}_seg.nii.gz")
    return folder / f"{name}.nii.gz"


def _real_pair(folder: Path, name: str) -> Path:
    """A phantom scan (not from the generator) and its mask, named as the caller likes."""
    image, labels = phantom_arrays(slices=8, size=64)
    write_volume(folder / f"{name}_seg.nii.gz", labels)
    return write_volume(folder / f"{name}.nii.gz", image)


# ------------------------------------------------------------------------------------------ the marker


def test_the_generator_marks_every_scan_and_its_cohort(synth_cohort: Path, tmp_path: Path) -> None:
    marker = cohort_marker(synth_cohort)
    assert marker is not None and marker["scan_marker"] == SCAN_MARKER
    for kind in ("images", "masks"):
        for path in sorted((synth_cohort / kind).glob("*.nii.gz")):
            assert header_marked(path), path
            reader = sitk.ImageFileReader()
            reader.SetFileName(str(path))
            reader.ReadImageInformation()
            assert reader.GetMetaData("descrip") == SCAN_MARKER
    scan = next((synth_cohort / "images").glob("*.nii.gz"))
    assert scan_is_synthetic(scan)
    renamed = tmp_path / "patient_01.nii.gz"  # copied out of its cohort under another name: still synthetic
    shutil.copy(scan, renamed)
    assert scan_is_synthetic(renamed)


def test_sample_data_carries_the_marker() -> None:
    assert cohort_marker(SAMPLE_DATA) is not None and cohort_marker(SAMPLE_DATA)["scan_marker"] == SCAN_MARKER
    images = sorted((SAMPLE_DATA / "images").glob("*.nii.gz"))
    assert len(images) == 32 and all(header_marked(p) for p in images)
    assert cases_are_synthetic(images)


def test_a_real_scan_is_never_called_synthetic(synth_cohort: Path, tmp_path: Path) -> None:
    named = _real_pair(tmp_path / "named", "synth-0001")  # an id prefix decides nothing
    assert not scan_is_synthetic(named)
    assert not cases_are_synthetic([named, synth_cohort / "images" / "synth-0000.nii.gz"])
    assert not cases_are_synthetic([])
    # a real scan dropped into a marked synthetic cohort: its header says nothing, so it is real
    mixed = tmp_path / "mixed"
    shutil.copytree(synth_cohort, mixed)
    dropped = _real_pair(mixed / "images", "P9")
    assert not scan_is_synthetic(dropped) and scan_is_synthetic(mixed / "images" / "synth-0000.nii.gz")
    # another tool's synth.json, or another description in the header, is no marker
    other = tmp_path / "other"
    _real_pair(other / "images", "A")
    (other / MARKER_FILE).write_text(json.dumps({"generator": "someone else"}))
    assert cohort_marker(other) is None and not scan_is_synthetic(other / "images" / "A.nii.gz")
    noted = sitk.ReadImage(str(named))
    noted.SetMetaData("ITK_FileNotes", "lgerisk synth was not used here")
    sitk.WriteImage(noted, str(tmp_path / "noted.nii.gz"))
    assert not header_marked(tmp_path / "noted.nii.gz")


def test_an_older_cohort_is_known_by_its_cohort_marker(tmp_path: Path) -> None:
    """Cohorts written before scans were marked: their images/ folder beside a synth.json without a scan marker."""
    legacy = tmp_path / "legacy"
    _real_pair(legacy / "images", "synth-0000")  # unmarked image, as the old generator wrote them
    (legacy / MARKER_FILE).write_text(json.dumps({"generator": "lgerisk.data.synthetic", "generator_version": "1.0"}))
    assert scan_is_synthetic(legacy / "images" / "synth-0000.nii.gz")
    loose = tmp_path / "loose"  # the same scan outside an images/ folder of the cohort
    _real_pair(loose, "synth-0000")
    (loose / MARKER_FILE).write_text((legacy / MARKER_FILE).read_text())
    assert not scan_is_synthetic(loose / "synth-0000.nii.gz")


def test_a_preprocessed_case_says_it_in_its_qc(tmp_path: Path) -> None:
    case = tmp_path / "prep" / "cases" / "A"
    case.mkdir(parents=True)
    shutil.copy(SAMPLE_DATA / "images" / "synth-0000.nii.gz", case / "image.nii.gz")  # header marked
    (case / "qc.json").write_text(json.dumps({"synthetic": False}))
    assert not scan_is_synthetic(case / "image.nii.gz")  # the preprocessing record decides
    (case / "qc.json").write_text(json.dumps({"synthetic": True}))
    assert scan_is_synthetic(case / "image.nii.gz")
    assert not scan_is_synthetic(case / "image.nii.gz", {"synthetic": False})


def test_sentences_are_true_for_each_pair() -> None:
    assert provenance_sentence(False, True) == REAL_SCAN_WITH_SYNTHETIC_MODEL
    both = provenance_sentence(True, True)
    assert both.startswith("SYNTHETIC data") and "no number here describes a real person" in both
    scan_only = provenance_sentence(True, False)
    assert scan_only.startswith("SYNTHETIC scan") and "trained on real scans" in scan_only
    assert provenance_sentence(False, False) is None
    assert cohort_sentence([False, False], True).startswith("Model trained on SYNTHETIC data; these scans are real")
    assert "some of these scans are real" in cohort_sentence([True, False], True)
    assert cohort_sentence([True, True], True).startswith("SYNTHETIC data: generated scans")
    assert cohort_sentence([False], False) is None
    assert mismatch_reason(False, True) and mismatch_reason(True, False) and mismatch_reason(True, True) is None


# ------------------------------------------------------------------------------------------ --model FILE


def test_a_model_file_is_not_a_model_folder(tmp_path: Path, cli) -> None:
    scan = _copy_pair("synth-0001", tmp_path / "in", "X")
    model = tmp_path / "risk" / "model.pt"
    model.parent.mkdir()
    model.write_bytes(b"weights")
    result = cli("predict", scan, "--model", model)
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "is a file, not a model folder" in text and "does not exist" not in text
    assert f"pass its folder, {model.parent}" in text and "Traceback" not in result.output


# ------------------------------------------------------------------------------------------ predictions


def test_synthetic_scan_and_synthetic_model_under_any_name(runs, tmp_path: Path, cli) -> None:
    scan = _copy_pair("synth-0005", tmp_path / "in", "patient_7")  # the id says nothing
    result = cli("predict", scan, "--model", runs["main"], "--format", "json", "--quiet")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)[0]
    assert record["case_id"] == "patient_7"
    assert record["scan_synthetic"] is True and record["model_trained_on_synthetic"] is True
    assert record["reliable"] is True and record["unreliable_reasons"] == []
    assert record["risk_group"] in ("low", "intermediate", "high")


def test_real_scan_named_like_a_synthetic_one(runs, tmp_path: Path, cli) -> None:
    scan = _real_pair(tmp_path / "in", "synth-0099")
    result = cli("predict", scan, "--model", runs["main"], "--format", "csv", "--quiet")
    assert result.exit_code == 0, result.output
    row = pd.read_csv(io.StringIO(result.stdout)).iloc[0]
    assert row["case_id"] == "synth-0099" and not row["scan_synthetic"] and row["model_trained_on_synthetic"]
    assert not row["reliable"] and row["risk_group"] == "out of range" and np.isfinite(row["risk_score"])
    assert "the model was trained on synthetic data and this is a real scan" in row["unreliable_reasons"]


def test_real_emidec_scans_with_the_synthetic_model(runs, emidec: Path, cli, tmp_path: Path) -> None:
    scans = [emidec / name / "Images" / f"{name}.nii.gz" for name in ("samplePositive", "sampleNegative")]
    out = tmp_path / "risk.csv"
    result = cli("predict", *scans, "--model", runs["main"], "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out).set_index("case_id")
    old = [
        "risk_score",
        "risk_group",
        "survival_1",
        "scar_percent",
        "model_method",
        "model_trained_on_synthetic",
        "warnings",
    ]
    assert set(old) <= set(table.columns)  # the columns there were, plus the new ones
    assert list(table.columns[-4:]) == ["scan_synthetic", "reliable", "unreliable_reasons", "warnings"]
    for name, row in table.iterrows():
        assert not row["scan_synthetic"] and row["model_trained_on_synthetic"], name
        assert not row["reliable"] and row["risk_group"] == "out of range" and np.isfinite(row["risk_score"])
        reasons = row["unreliable_reasons"].split("; ")
        assert "the model was trained on synthetic data and this is a real scan" in reasons
        assert any("outside the training range" in r for r in reasons)  # the range warnings are reasons
        assert all(r in row["warnings"] for r in reasons)


def test_a_model_trained_on_real_scans_and_a_synthetic_scan(runs, tmp_path: Path, cli) -> None:
    model = tmp_path / "model"
    shutil.copytree(runs["main"], model, ignore=shutil.ignore_patterns("cache", "parts"))
    card = json.loads((model / "model_card.json").read_text())
    card["data"]["synthetic"] = False  # as if trained on patients
    (model / "model_card.json").write_text(json.dumps(seal_card(card)))
    scan = _copy_pair("synth-0005", tmp_path / "in", "X")
    result = cli("predict", scan, "--model", model, "--format", "json", "--quiet")
    record = json.loads(result.stdout)[0]
    assert record["scan_synthetic"] is True and record["model_trained_on_synthetic"] is False
    assert record["reliable"] is False and record["risk_group"] == "out of range"
    assert record["unreliable_reasons"] == ["this is a synthetic scan and the model was trained on real scans"]

    report = tmp_path / "explain"
    assert cli("explain", scan, "--model", model, "--out", report, "--steps", "4").exit_code == 0
    html = (report / "X" / "report.html").read_text(encoding="utf-8")
    banners = _banners(html)
    assert banners[0].startswith("OUT OF RANGE") and banners[1].startswith("SYNTHETIC scan: a generated case")
    assert "trained on real scans" in banners[1] and "<h1>SYNTHETIC — " in html


def test_the_model_card_says_what_the_model_was_trained_on(runs) -> None:
    """Both shared runs were trained on sample_data (raw, and preprocessed): synthetic by its marker."""
    for name in ("main", "tabular"):
        card = json.loads((runs[name] / "model_card.json").read_text())
        assert card["data"]["synthetic"] is True, name


# ------------------------------------------------------------------------------------------ explain


def _banners(html: str) -> list[str]:
    import re

    return [re.sub(r"\s+", " ", b) for b in re.findall(r'<div class="banner">(.*?)</div>', html, flags=re.S)]


def test_explain_on_a_real_scan_says_what_is_true(runs, emidec: Path, cli, tmp_path: Path) -> None:
    """The real samplePositive (7 slices, stored apex first) with the synthetic model, set to 12-slice inputs:
    the report leads with out of range, never calls the scan synthetic, and draws 7 panels numbered as
    in the scan, base to apex."""
    model = tmp_path / "model"
    shutil.copytree(runs["main"], model, ignore=shutil.ignore_patterns("cache", "parts"))
    card = json.loads((model / "model_card.json").read_text())
    card["tensor_spec"]["slices"] = 12  # the encoder pools globally: any depth is a valid input
    (model / "model_card.json").write_text(json.dumps(seal_card(card)))
    scan = emidec / "samplePositive" / "Images" / "samplePositive.nii.gz"
    out = tmp_path / "explain"
    result = cli("explain", scan, "--model", model, "--out", out, "--steps", "4")
    assert result.exit_code == 0, result.output
    html = (out / "samplePositive" / "report.html").read_text(encoding="utf-8")
    banners = _banners(html)
    assert banners[0].startswith("OUT OF RANGE: this scan lies outside what the model was trained on")
    assert banners[1] == REAL_SCAN_WITH_SYNTHETIC_MODEL
    assert "generated cases, not patients" not in html and "SYNTHETIC —" not in html
    assert "no risk group" in html
    stored = json.loads((out / "samplePositive" / "prediction.json").read_text())["record"]
    assert stored["scan_synthetic"] is False and stored["reliable"] is False
    assert stored["risk_group"] == "out of range"
    assert stored["summary"].splitlines()[0].startswith("OUT OF RANGE")
    assert stored["attribution"]["slices_shown"] == [7, 6, 5, 4, 3, 2, 1]


def test_explain_on_a_synthetic_scan(runs, cli, tmp_path: Path) -> None:
    scan = _copy_pair("synth-0000", tmp_path / "in", "P")
    out = tmp_path / "explain"
    assert cli("explain", scan, "--model", runs["main"], "--out", out, "--steps", "4").exit_code == 0
    html = (out / "P" / "report.html").read_text(encoding="utf-8")
    banners = _banners(html)
    assert banners == [provenance_sentence(True, True)]  # in range: no out-of-range banner
    stored = json.loads((out / "P" / "prediction.json").read_text())["record"]
    slices = json.loads((runs["main"] / "model_card.json").read_text())["tensor_spec"]["slices"]
    from lgerisk.data.tensors import slice_indices

    assert stored["attribution"]["slices_shown"] == [i + 1 for i in slice_indices(7, slices)]  # synth-0000: 7
