"""A report of a prediction that is not reliable gives no survival figure, only why; a reliable one gives them."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from lgerisk.explain.report import html_report, summary_text, withhold_survival
from lgerisk.preprocess.scar import SCAR_CHECK_REASON

OUTSIDE = "slice spacing 15 mm is outside the training range 8-13 mm"
SCAR = f"{SCAR_CHECK_REASON} (fwhm, scar_confidence low: remote_uncertain)"
PERCENT = re.compile(r"\d+(\.\d+)? % at \d+ years?")


def _record(reliable: bool, reasons: list[str]) -> dict:
    """A record as explain passes it to the report (the record predict writes): survival_<h> fields."""
    return {
        "case_id": "A1",
        "risk_score": 3.2,
        "risk_group": "high" if reliable else "out of range",
        "survival_1": 0.523456,
        "survival_5": 0.123456,
        "scar_percent": 14.6,
        "scan_synthetic": False,
        "model_trained_on_synthetic": False,
        "reliable": reliable,
        "unreliable_reasons": reasons,
        "warnings": reasons,
    }


def _page(tmp_path: Path, record: dict) -> tuple[str, str]:
    text = summary_text(record, pd.DataFrame(), pd.Series(dtype=float))
    html = html_report(tmp_path / "r.html", "t", text, record, {}, {}).read_text(encoding="utf-8")
    return text, html


@pytest.mark.parametrize(
    ("reasons", "why"),
    [
        ([OUTSIDE], "the scan is out of the model's range"),
        ([SCAR], "its derived scar needs checking"),
        ([OUTSIDE, SCAR], "the scan is out of the model's range and its derived scar needs checking"),
    ],
)
def test_an_unreliable_prediction_reports_no_survival_figure(tmp_path: Path, reasons: list[str], why: str) -> None:
    text, html = _page(tmp_path, _record(False, reasons))
    for page in (text, html):
        assert not PERCENT.search(page), page
        assert "52 %" not in page and "12 %" not in page
        assert "0.5235" not in page and "0.1235" not in page and "0.523456" not in page
    assert f"No probability of remaining free of SCD is given: {why}" in text
    rows = dict(re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", html))
    assert rows["survival 1"] == rows["survival 5"] == f"not given: {why}".replace("'", "&#x27;")
    assert rows["risk score"] == "3.2"  # the score stays, as the banner says


def test_a_reliable_prediction_still_reports_its_survival(tmp_path: Path) -> None:
    text, html = _page(tmp_path, _record(True, []))
    assert "Estimated probability of remaining free of SCD: 52 % at 1 year, 12 % at 5 years." in text
    assert "12 % at 5 years" in html and "0.1235" in html
    assert "No probability" not in text and "not given" not in html


def test_the_cohort_table_withholds_survival_of_unreliable_rows_only() -> None:
    table = pd.DataFrame(
        {
            "case_id": ["in", "out", "scar"],
            "survival_5": [0.8, 1e-06, 0.4],
            "scar_percent": [3.0, 4.0, 5.0],
            "reliable": [True, False, False],
            "unreliable_reasons": ["", OUTSIDE, SCAR],
        }
    )
    shown = withhold_survival(table)
    assert shown["survival_5"].tolist() == [
        0.8,
        "not given: the scan is out of the model's range",
        "not given: its derived scar needs checking",
    ]
    assert shown["scar_percent"].tolist() == [3.0, 4.0, 5.0]
    assert table["survival_5"].tolist() == [0.8, 1e-06, 0.4]  # the table itself (predictions.csv) keeps them
    read_back = withhold_survival(table.astype({"reliable": str}))  # as read from a CSV
    assert read_back["survival_5"].tolist()[1].startswith("not given")
