"""The same case id from two manifests into one prediction output (say, two shards' manifests): the second scan
fails as its own case naming both scans, and the first scan's prediction is kept, never silently replaced."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tests.helpers import SAMPLE_DATA


def _manifest(path: Path, scan: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image, mask = SAMPLE_DATA / "images" / f"{scan}.nii.gz", SAMPLE_DATA / "masks" / f"{scan}.nii.gz"
    path.write_text(f"case_id,image,mask\nP01,{image},{mask}\n", encoding="utf-8")
    return path


def test_a_second_scan_under_a_predicted_id_fails_naming_both(runs, tmp_path: Path, cli) -> None:
    out = tmp_path / "predictions.csv"
    first = _manifest(tmp_path / "a" / "cohort.csv", "synth-0001")
    second = _manifest(tmp_path / "b" / "cohort.csv", "synth-0002")
    result = cli("predict", "--data", first, "--model", runs["main"], "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    before = pd.read_csv(out)
    again = cli("predict", "--data", second, "--model", runs["main"], "--out", out)
    assert again.exit_code == 1, again.output
    squeezed = "".join(again.output.split())  # the console folds long paths
    assert "caseid'P01'isalreadypredicted" in squeezed
    assert "synth-0002.nii.gz" in squeezed and "synth-0001.nii.gz" in squeezed
    # the same scan again (the first manifest) is still done, its prediction unchanged
    rerun = cli("predict", "--data", first, "--model", runs["main"], "--out", out)
    assert rerun.exit_code == 0 and "1 already done" in rerun.output, rerun.output
    assert pd.read_csv(out).equals(before)
