"""Plain-language summary and the self-contained HTML report."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lgerisk.errors import InputError
from lgerisk.evaluation.concepts import concept_alignment
from lgerisk.explain.montage import attribution_montage
from lgerisk.explain.report import DISCLAIMER, html_report, ordinal, summary_text

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def prediction(**changes: object) -> dict:
    values = {
        "case_id": "A1",
        "risk_score": 0.8412,
        "risk_group": "high",
        "survival_5": 0.85,
        "survival_3": 0.912,
        "scar_percent": 14.63,
        "greyzone_percent": 5.21,
        "myocardium_mass_g": 112.4,
        "warnings": ["slice spacing 15 mm is outside the training range"],
        "synthetic": False,
    }
    values.update(changes)
    return values


def alignment() -> pd.DataFrame:
    table = pd.DataFrame(
        {
            "feature": [
                "scar__original_firstorder_Mean",
                "myocardium__original_glcm_Contrast",
                "scar_percent",
                "greyzone_percent",
            ],
            "n": [90, 100, 100, 100],
            "r_risk": [0.62, -0.41, 0.30, 0.05],
        }
    )
    table.attrs["n_cases"] = 100
    return table


def test_summary_text_reads_plainly():
    percentiles = pd.Series(
        {"scar__original_firstorder_Mean": 91.2, "myocardium__original_glcm_Contrast": 12.0, "scar_percent": np.nan}
    )
    text = summary_text(prediction(), alignment(), percentiles, top=3)
    assert "Risk score 0.84 (high risk group: top third of the training cohort)." in text
    assert "Estimated probability of remaining free of SCD: 91 % at 3 years, 85 % at 5 years." in text
    assert "Scar 14.6 % of LV myocardium, grey zone 5.2 % (LV myocardial mass 112 g)." in text
    assert "scar: firstorder Mean (r = 0.62; this scan: 91st percentile)" in text
    assert "myocardium: glcm Contrast (r = -0.41, higher values go with lower risk; this scan: 12th percentile)" in text
    assert "scar_percent (r = 0.30; not measured in this scan)" in text
    assert "greyzone_percent" not in text  # only the top 3
    unknown = summary_text(prediction(), alignment(), pd.Series(dtype=float), top=1)
    assert "scar: firstorder Mean (r = 0.62)." in unknown  # no percentile computed: nothing said about the scan
    assert "(100 cases)" in text
    assert "Warnings: slice spacing 15 mm is outside the training range." in text
    assert text.splitlines()[-1] == DISCLAIMER
    assert "SYNTHETIC" not in text
    assert summary_text(prediction(synthetic=True), alignment(), percentiles).startswith("SYNTHETIC")


def test_summary_text_leaves_out_what_is_missing():
    text = summary_text(
        {"case_id": "B2", "risk_score": -0.5, "survival_1": 0.9999, "warnings": []},
        pd.DataFrame(),
        pd.Series(dtype=float),
    )
    assert "Risk score -0.50." in text and "99.99" not in text and "100.0 % at 1 year." in text
    assert "Scar" not in text and "Warnings" not in text and "agrees" not in text
    assert ordinal(1) == "1st" and ordinal(11) == "11th" and ordinal(22) == "22nd" and ordinal(100) == "100th"


def test_html_report_is_self_contained_and_escaped(tmp_path: Path):
    volume = np.random.default_rng(0).normal(size=(3, 16, 16))
    mask = np.zeros(volume.shape, bool)
    mask[:, 4:12, 4:12] = True
    montage = attribution_montage(
        volume, np.abs(volume), mask, mask & (volume > 1), tmp_path / "cam.png", "Grad-CAM", synthetic=True
    )
    table = alignment().assign(p_risk=[1.23456e-9, 0.012345, 0.5, np.nan], note=["<script>", "a&b", "", "x"])
    case = prediction(case_id="<b>x</b>", synthetic=True)
    summary = summary_text(case, alignment(), pd.Series(dtype=float))
    path = html_report(
        tmp_path / "report.html",
        "Case <b>x</b>",
        summary,
        case,
        {"Grad-CAM <overlay>": montage},
        {"Radiomics alignment": table},
        synthetic=True,
    )
    text = path.read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cam.png", "report.html"]
    for external in ("http://", "https://", 'src="/', "<script", "<link", "@import", "url("):
        assert external not in text
    sources = re.findall(r'src="([^"]*)"', text)
    assert len(sources) == 1 and sources[0].startswith("data:image/png;base64,")
    assert base64.b64decode(sources[0].split(",", 1)[1]) == montage.read_bytes()
    assert "<b>x</b>" not in text and "&lt;b&gt;x&lt;/b&gt;" in text
    assert "&lt;script&gt;" in text and "a&amp;b" in text and "Grad-CAM &lt;overlay&gt;" in text
    assert "1.23e-09" in text and "0.0123" in text and "0.012345" not in text
    assert 'class="banner">SYNTHETIC data' in text
    assert "<footer>" in text and "research use only" in text.lower()


def test_html_report_without_synthetic_banner_and_bad_images(tmp_path: Path):
    path = html_report(tmp_path / "plain.html", "Case A1", "Risk score 0.84.", prediction(), {}, {})
    text = path.read_text(encoding="utf-8")
    assert "SYNTHETIC" not in text and "research use only" in text.lower()
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(InputError, match="not a PNG"):
        html_report(tmp_path / "bad.html", "t", "s", prediction(), {"x": tmp_path / "notes.txt"}, {})
    with pytest.raises(InputError, match="does not exist"):
        html_report(tmp_path / "bad.html", "t", "s", prediction(), {"x": tmp_path / "missing.png"}, {})
    assert not (tmp_path / "bad.html").exists()


def test_report_tables_from_concept_alignment(tmp_path: Path):
    rng = np.random.default_rng(0)
    risk = rng.normal(size=40)
    features = pd.DataFrame({"scar_percent": risk + rng.normal(size=40), "noise": rng.normal(size=40)})
    table = concept_alignment(features, risk, rng.normal(size=(40, 4)))
    path = html_report(tmp_path / "r.html", "t", "s", prediction(), {}, {"alignment": table})
    assert "embedding_r2" in path.read_text(encoding="utf-8")
