"""lgerisk explain end to end: an out-of-range real scan's report gives no survival figure, an in-range one does;
the integrated-gradients map has no stride grid; every report states the attribution sanity check."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from tests.helpers import SAMPLE_DATA

SURVIVAL_PERCENT = re.compile(r"\d+(\.\d+)? % at \d+ years?")


def _report(out: Path, case_id: str) -> tuple[str, dict]:
    html = (out / case_id / "report.html").read_text(encoding="utf-8")
    return html, json.loads((out / case_id / "prediction.json").read_text(encoding="utf-8"))["record"]


def test_an_out_of_range_real_scan_gets_no_survival_figure(runs, emidec: Path, cli, tmp_path: Path) -> None:
    scan = emidec / "samplePositive" / "Images" / "samplePositive.nii.gz"
    out = tmp_path / "explain"
    result = cli("explain", scan, "--model", runs["main"], "--out", out, "--steps", "4")
    assert result.exit_code == 0, result.output
    html, record = _report(out, "samplePositive")
    assert record["reliable"] is False and record["risk_group"] == "out of range"
    survival = {k: v for k, v in record.items() if k.startswith("survival_")}
    assert survival and all(isinstance(v, float) for v in survival.values())  # the machine record keeps them
    assert not SURVIVAL_PERCENT.search(html) and not SURVIVAL_PERCENT.search(record["summary"])
    for value in survival.values():
        assert f"<td>{value:.4g}</td>" not in html
    assert "No probability of remaining free of SCD is given: the scan is out of the model&#x27;s range" in html
    attribution = record["attribution"]
    # the plain map of this scan and model was 51 % dot grid (stride_grid_share, stride 8); white noise is ~6 %
    assert attribution["encoder_stride"] == 8 and attribution["ig_translations"] == 64
    assert attribution["ig_grid_share"] < 0.1
    assert attribution["sanity_check"] == "run" and attribution["sanity_scan"] == "samplePositive"
    assert attribution["gradcam_sanity"] in ("passed", "failed") and attribution["ig_sanity"] in ("passed", "failed")
    assert "Attribution sanity check (model-parameter randomisation" in html
    stored = json.loads((out / "attribution_check.json").read_text(encoding="utf-8"))
    assert stored["case_id"] == "samplePositive"
    assert stored["check"]["integrated_gradients"]["spearman"] == attribution["ig_sanity_spearman"]


def test_an_in_range_scan_keeps_its_survival_and_the_check_is_reused(runs, cli, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(SAMPLE_DATA / "images" / "synth-0000.nii.gz", folder / "P.nii.gz")
    shutil.copy(SAMPLE_DATA / "masks" / "synth-0000.nii.gz", folder / "P_seg.nii.gz")
    out = tmp_path / "explain"
    assert cli("explain", folder / "P.nii.gz", "--model", runs["main"], "--out", out, "--steps", "4").exit_code == 0
    html, record = _report(out, "P")
    assert record["reliable"] is True
    assert SURVIVAL_PERCENT.search(html) and "not given" not in html
    check = out / "attribution_check.json"
    before = check.stat().st_mtime_ns
    (out / "P" / "prediction.json").unlink()  # the case is redone, the check is not
    assert cli("explain", folder / "P.nii.gz", "--model", runs["main"], "--out", out, "--steps", "4").exit_code == 0
    assert check.stat().st_mtime_ns == before
    assert _report(out, "P")[1]["attribution"]["ig_sanity_spearman"] == record["attribution"]["ig_sanity_spearman"]
