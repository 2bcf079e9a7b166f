"""`lgerisk demo --quick` (the whole chain on sample_data) and `lgerisk explain` on its model."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from tests.helpers import SAMPLE_DATA, assert_drawn_png


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The quick demo, run once through the CLI."""
    from typer.testing import CliRunner

    from lgerisk.cli import app

    out = tmp_path_factory.mktemp("demo") / "demo"
    result = CliRunner().invoke(app, ["demo", "--quick", "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_demo_runs_the_chain_and_prints_the_comparison(demo_run):
    out, output = demo_run
    for step in (
        "1/6 preprocess",
        "2/6 extract-radiomics",
        "3/6 pretrain",
        "4/6 finetune",
        "5/6 predict",
        "6/6 explain",
    ):
        assert step in output
    assert "SYNTHETIC" in output
    for method in ("scar-% Cox", "radiomics Cox", "pretrained probe + radiomics (stacked)", "oracle"):
        assert method in output
    # the ending reads in an 80-column terminal: nothing cut, one paragraph that says what the table shows
    assert max(len(line) for line in output.splitlines()) <= 80 and "…" not in output
    words = " ".join(output.split())
    assert "What the table shows:" in words and "The model kept, pretrained probe + radiomics (stacked)," in words
    assert "deep, scratch" not in output  # the costly scratch network is not run unless asked for
    assert "lgerisk predict scan.nii.gz" in output  # next steps
    table = pd.read_csv(out / "risk" / "comparison.csv")
    assert table["synthetic"].all()
    predictions = pd.read_csv(out / "predictions.csv")
    assert list(predictions["case_id"]) == ["synth-0000", "synth-0001", "synth-0002"]
    assert (out / "explain" / "synth-0000" / "report.html").is_file()


def test_demo_rerun_reuses_finished_steps(demo_run, cli):
    out, _ = demo_run
    before = (out / "pretrain" / "model.pt").stat().st_mtime_ns
    result = cli("demo", "--quick", "--out", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert (out / "pretrain" / "model.pt").stat().st_mtime_ns == before


def test_explain_report_is_self_contained(demo_run):
    out, _ = demo_run
    folder = out / "explain" / "synth-0000"
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in html and "SYNTHETIC" in html
    assert not re.search(r"(src|href)=\"(https?:|/)", html) and "<script" not in html
    record = json.loads((folder / "prediction.json").read_text())["record"]
    assert record["risk_group"] in {"low", "intermediate", "high"}
    assert abs(record["attribution"]["ig_relative_delta"]) < 0.05  # integrated gradients complete
    features = pd.read_csv(folder / "features.csv", float_precision="round_trip")
    assert {"feature", "r_risk", "r_risk_low", "r_risk_high", "this_scan", "percentile"} <= set(features.columns)
    # each measured feature's percentile is this scan's rank among the model's training cases (ties count
    # half); a feature not measured on this scan has none
    reference = pd.read_csv(out / "risk" / "reference_features.csv", float_precision="round_trip")
    measured = features["this_scan"].notna()
    assert measured.sum() >= 3 and features.loc[~measured, "percentile"].isna().all()
    for row in features[measured].itertuples():
        cohort = reference[row.feature].dropna().to_numpy()
        below, equal = np.sum(cohort < row.this_scan), np.sum(cohort == row.this_scan)
        assert row.percentile == pytest.approx(100 * (below + 0.5 * equal) / len(cohort)), row.feature
    assert features.loc[measured, "percentile"].between(0, 100).all()
    assert features.loc[measured, "percentile"].nunique() > 1  # not one value for every feature


def test_explain_cohort_page_and_attributions(demo_run, cli, tmp_path):
    out, _ = demo_run
    rows = ["case_id,image,mask,time,event"]
    outcomes = pd.read_csv(SAMPLE_DATA / "outcomes.csv").set_index("case_id")
    cases = ("synth-0003", "synth-0004", "synth-0005", "synth-0006", "synth-0007", "synth-0008")
    for case_id in cases:
        rows.append(
            f"{case_id},{SAMPLE_DATA}/images/{case_id}.nii.gz,{SAMPLE_DATA}/masks/{case_id}.nii.gz,"
            f"{outcomes.loc[case_id, 'time']},{outcomes.loc[case_id, 'event']}"
        )
    manifest = tmp_path / "cohort.csv"
    manifest.write_text("\n".join(rows) + "\n")
    reports = tmp_path / "reports"
    result = cli("explain", "--data", manifest, "--model", out / "risk", "--out", reports, "--steps", "8")
    assert result.exit_code == 0, result.output
    cohort_page = (reports / "cohort.html").read_text(encoding="utf-8")
    assert all(case_id in cohort_page for case_id in cases) and cohort_page.count("data:image/png;base64,") == 2
    assert_drawn_png(reports / "km_risk_groups.png", min_size=(400, 300))
    assert_drawn_png(reports / "embedding_radiomics.png", min_size=(400, 200))
    assert len(pd.read_csv(reports / "predictions.csv")) == 6
    ratios = []
    for case_id in ("synth-0003", "synth-0004"):
        stored = json.loads((reports / case_id / "prediction.json").read_text())
        ratios.append(stored["record"]["attribution"]["gradcam_myocardium_ratio"])
    assert all(r is not None and np.isfinite(r) and r > 0 for r in ratios)  # non-trivial maps
    again = cli("explain", "--data", manifest, "--model", out / "risk", "--out", reports, "--steps", "8")
    assert again.exit_code == 0 and "6 already done" in again.output
