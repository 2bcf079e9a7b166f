"""Reports lead with what limits a prediction: out of range first, then where the scan and the model come from."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from lgerisk.explain.report import html_report, summary_text

REASON = "slice spacing 13 mm is outside the training range 8.3-12.97 mm"


def _prediction(**changes: object) -> dict:
    values = {
        "case_id": "samplePositive",
        "risk_score": 10.1,
        "risk_group": "out of range",
        "survival_1": 0.0,
        "scar_percent": 14.6,
        "warnings": [REASON],
        "scan_synthetic": False,
        "model_trained_on_synthetic": True,
        "reliable": False,
        "unreliable_reasons": [REASON, "the model was trained on synthetic data and this is a real scan"],
    }
    values.update(changes)
    return values


def _banners(html: str) -> list[str]:
    return re.findall(r'<div class="banner">(.*?)</div>', html, flags=re.S)


def test_a_real_scan_out_of_range_with_a_synthetic_model(tmp_path: Path) -> None:
    prediction = _prediction()
    text = summary_text(prediction, pd.DataFrame(), pd.Series(dtype=float))
    lines = text.splitlines()
    assert lines[0].startswith("OUT OF RANGE: this scan lies outside what the model was trained on (")
    assert REASON in lines[0] and "no risk group is given" in lines[0]
    assert lines[1] == "Model trained on SYNTHETIC data; this scan is a real scan: the risk is not meaningful for it."
    assert "Risk score 10.10 (no risk group: the scan is out of the model's range)." in text
    assert "high risk group" not in text and "generated" not in text

    html = html_report(tmp_path / "r.html", "lgerisk explanation: samplePositive", text, prediction, {}, {}).read_text(
        encoding="utf-8"
    )
    banners = _banners(html)
    assert banners[0] == lines[0] and banners[1] == lines[1] and len(banners) == 2
    assert html.index(banners[0]) < html.index("<h1>")  # the page leads with them
    assert "SYNTHETIC —" not in html and "Synthetic data." not in html  # the scan is not called synthetic
    assert html.count(lines[0]) == 1  # said once, in the banner, not again in the summary


def test_every_pair_reads_true(tmp_path: Path) -> None:
    both = _prediction(scan_synthetic=True, reliable=True, unreliable_reasons=[], risk_group="high")
    text = summary_text(both, pd.DataFrame(), pd.Series(dtype=float))
    assert text.startswith("SYNTHETIC data: a generated scan, scored by a model trained on generated cases")
    assert "OUT OF RANGE" not in text and "high risk group" in text
    html = html_report(tmp_path / "b.html", "t", text, both, {}, {}).read_text(encoding="utf-8")
    assert _banners(html) == [text.splitlines()[0]] and "<h1>SYNTHETIC — t</h1>" in html

    real = _prediction(model_trained_on_synthetic=False, reliable=True, unreliable_reasons=[], risk_group="low")
    text = summary_text(real, pd.DataFrame(), pd.Series(dtype=float))
    assert "SYNTHETIC" not in text and "OUT OF RANGE" not in text
    assert _banners(html_report(tmp_path / "r.html", "t", text, real, {}, {}).read_text(encoding="utf-8")) == []

    scan_only = _prediction(scan_synthetic=True, model_trained_on_synthetic=False)
    text = summary_text(scan_only, pd.DataFrame(), pd.Series(dtype=float))
    assert text.splitlines()[1].startswith(
        "SYNTHETIC scan: a generated case, not a patient, scored by a model trained on real scans"
    )
