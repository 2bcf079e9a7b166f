"""Risk tertiles, Kaplan-Meier curves by risk group and the method comparison plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lgerisk.errors import InputError
from lgerisk.evaluation import plots
from lgerisk.evaluation.plots import (
    comparison_plot,
    km_by_risk_group,
    risk_groups,
    tertile_thresholds,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp files left


@pytest.fixture
def titles(monkeypatch):
    """The titles of the figures the plots save."""
    seen: list[str] = []
    original = plots._save

    def spy(figure, path):
        seen.append(figure.axes[0].get_title())
        return original(figure, path)

    monkeypatch.setattr(plots, "_save", spy)
    return seen


def cohort(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=n)
    event_time = rng.exponential(3.0 / np.exp(risk))
    censor = rng.uniform(1, 10, size=n)
    return np.minimum(event_time, censor), (event_time <= censor).astype(int), risk


def test_tertiles_split_the_training_risks_in_thirds():
    risk = np.arange(9, dtype=float)
    low, high = tertile_thresholds(risk)
    assert (low, high) == pytest.approx((8 / 3, 16 / 3))
    groups = risk_groups(risk, (low, high))
    assert groups.tolist() == ["low"] * 3 + ["intermediate"] * 3 + ["high"] * 3
    assert groups.dtype.kind == "U"


def test_tertile_edge_cases_ties_and_tiny_cohorts():
    assert tertile_thresholds([2.5]) == (2.5, 2.5)
    assert risk_groups([2.5, 1.0, 4.0], (2.5, 2.5)).tolist() == ["high", "low", "high"]
    low, high = tertile_thresholds([1.0, 3.0])
    assert low < high and risk_groups([1.0, 3.0], (low, high)).tolist() == ["low", "high"]
    tied = np.array([1.0, 1.0, 1.0, 1.0, 5.0, 9.0])
    t1, t2 = tertile_thresholds(tied)
    assert t1 == 1.0
    assert risk_groups(tied, (t1, t2)).tolist()[:4] == ["intermediate"] * 4  # ties never split a value
    assert set(risk_groups([0.0, 0.0, 0.0], tertile_thresholds([0.0, 0.0, 0.0]))) == {"high"}
    with pytest.raises(InputError, match="no risk scores"):
        tertile_thresholds([])
    with pytest.raises(InputError, match="NaN or infinite"):
        tertile_thresholds([1.0, np.nan])
    with pytest.raises(InputError, match="first <= the second"):
        risk_groups([1.0], (2.0, 1.0))


def test_km_plot_is_a_png_with_a_synthetic_title(tmp_path, titles):
    time, event, risk = cohort()
    groups = risk_groups(risk, tertile_thresholds(risk))
    out = km_by_risk_group(time, event, groups, tmp_path / "out" / "km.png", "CV risk tertiles", synthetic=True,
                           time_unit="months")
    assert out == tmp_path / "out" / "km.png"
    assert_png(out)
    assert "SYNTHETIC" in titles[0] and "CV risk tertiles" in titles[0]
    km_by_risk_group(time, event, groups, out, "again")  # overwrites in place
    assert_png(out)
    assert "SYNTHETIC" not in titles[1]


def test_km_plot_skips_empty_groups_and_handles_groups_without_events(tmp_path):
    time, event, _ = cohort(n=12)
    groups = np.array(["low"] * 6 + ["high"] * 6)
    event[:6] = 0  # no events in the low group
    assert_png(km_by_risk_group(time, event, groups, tmp_path / "a" / "km.png", "two groups"))
    assert_png(km_by_risk_group(time[:3], event[:3], groups[:3], tmp_path / "b" / "km.png", "one group"))
    with pytest.raises(InputError, match="must be aligned"):
        km_by_risk_group(time, event[:5], groups, tmp_path / "c.png", "bad")
    with pytest.raises(InputError, match="no cases"):
        km_by_risk_group([], [], [], tmp_path / "c.png", "empty")
    with pytest.raises(InputError, match="0 or 1"):
        km_by_risk_group(time, event + 2, groups, tmp_path / "c.png", "bad")


def test_comparison_plot_with_oracle_and_missing_intervals(tmp_path, titles):
    table = pd.DataFrame({
        "method": ["scar-% Cox", "radiomics Cox", "deep, pretrained", "oracle (true log-hazard)"],
        "evaluation": ["cv", "cv", "cv", "all"],
        "harrell_c": [0.68, 0.64, 0.72, 0.81],
        "harrell_c_low": [0.6, 0.55, np.nan, 0.75],
        "harrell_c_high": [0.76, 0.73, np.nan, 0.87],
        "uno_c": [0.66, 0.6, 0.7, 0.8],
    })
    assert_png(comparison_plot(table, tmp_path / "c" / "comparison.png", synthetic=True))
    assert "SYNTHETIC" in titles[0]
    assert_png(comparison_plot(table, tmp_path / "u" / "uno.png", metric="uno_c"))  # no CI columns
    with pytest.raises(InputError, match="no 'auc_2' column"):
        comparison_plot(table, tmp_path / "x.png", metric="auc_2")
    with pytest.raises(InputError, match="no method other than the oracle"):
        comparison_plot(table.iloc[[3]], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
