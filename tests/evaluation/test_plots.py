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
from tests.helpers import assert_drawn_png


def assert_png(path: Path) -> None:
    """A PNG with something drawn on it, and no temporary file left beside it."""
    assert_drawn_png(path, min_size=(400, 250))
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp files left


@pytest.fixture
def drawn(monkeypatch) -> list[dict]:
    """What each figure the plots save shows (read off the figure just before it is saved and cleared):
    ``title``, ``legend`` entries and ``legend_title``, ``curves`` (label -> y values of each labelled line),
    ``yticks`` (tick labels, top to bottom), ``intervals`` (error bars drawn)."""
    seen: list[dict] = []
    original = plots._save

    def spy(figure, path):
        axes = figure.axes[0]
        legend = axes.get_legend()
        ticks = sorted(axes.get_yticklabels(), key=lambda tick: -tick.get_position()[1])
        seen.append(
            {
                "title": axes.get_title(),
                "legend": [text.get_text() for text in legend.get_texts()] if legend else [],
                "legend_title": legend.get_title().get_text() if legend else "",
                "curves": {
                    line.get_label(): np.asarray(line.get_ydata(), dtype=float)
                    for line in axes.get_lines()
                    if not line.get_label().startswith("_")
                },
                "yticks": [tick.get_text() for tick in ticks],
                "intervals": len(axes.containers),
            }
        )
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


def test_km_plot_is_a_png_with_a_synthetic_title(tmp_path, drawn):
    time, event, risk = cohort()
    groups = risk_groups(risk, tertile_thresholds(risk))
    out = km_by_risk_group(
        time, event, groups, tmp_path / "out" / "km.png", "CV risk tertiles", synthetic=True, time_unit="months"
    )
    assert out == tmp_path / "out" / "km.png"
    assert_png(out)
    assert "SYNTHETIC" in drawn[0]["title"] and "CV risk tertiles" in drawn[0]["title"]
    assert [entry.split(" (")[0] for entry in drawn[0]["legend"]] == ["low", "intermediate", "high"]
    km_by_risk_group(time, event, groups, out, "again")  # overwrites in place
    assert_png(out)
    assert "SYNTHETIC" not in drawn[1]["title"]


def test_km_plot_skips_empty_groups_and_handles_groups_without_events(tmp_path, drawn):
    time, event, _ = cohort(n=12)
    groups = np.array(["low"] * 6 + ["high"] * 6)
    event[:6] = 0  # no events in the low group
    high_events = int(event[6:].sum())
    assert high_events > 0
    assert_png(km_by_risk_group(time, event, groups, tmp_path / "a" / "km.png", "two groups"))
    # the empty intermediate group is not drawn: a curve and a legend entry for each group with cases
    two = drawn[0]
    assert two["legend"] == ["low (n=6, events=0)", f"high (n=6, events={high_events})"]
    assert set(two["curves"]) == set(two["legend"])
    assert two["legend_title"].startswith("log-rank p = ")
    assert np.all(two["curves"]["low (n=6, events=0)"] == 1.0)  # no events: flat at 1
    assert two["curves"][f"high (n=6, events={high_events})"].min() < 1.0
    assert_png(km_by_risk_group(time[:3], event[:3], groups[:3], tmp_path / "b" / "km.png", "one group"))
    one = drawn[1]
    assert one["legend"] == ["low (n=3, events=0)"] and list(one["curves"]) == one["legend"]
    assert one["legend_title"] == "log-rank p: n/a (one group)"
    with pytest.raises(InputError, match="must be aligned"):
        km_by_risk_group(time, event[:5], groups, tmp_path / "c.png", "bad")
    with pytest.raises(InputError, match="no cases"):
        km_by_risk_group([], [], [], tmp_path / "c.png", "empty")
    with pytest.raises(InputError, match="0 or 1"):
        km_by_risk_group(time, event + 2, groups, tmp_path / "c.png", "bad")


def test_comparison_plot_with_oracle_and_missing_intervals(tmp_path, drawn):
    table = pd.DataFrame(
        {
            "method": ["scar-% Cox", "radiomics Cox", "deep, pretrained", "oracle (true log-hazard)"],
            "evaluation": ["cv", "cv", "cv", "all"],
            "harrell_c": [0.68, 0.64, 0.72, 0.81],
            "harrell_c_low": [0.6, 0.55, np.nan, 0.75],
            "harrell_c_high": [0.76, 0.73, np.nan, 0.87],
            "uno_c": [0.66, 0.6, 0.7, 0.8],
        }
    )
    assert_png(comparison_plot(table, tmp_path / "c" / "comparison.png", synthetic=True))
    assert "SYNTHETIC" in drawn[0]["title"]
    # a row per method, in the table's order, the oracle as a reference line; intervals where the table has them
    assert drawn[0]["yticks"] == ["scar-% Cox", "radiomics Cox", "deep, pretrained"]
    assert drawn[0]["legend"] == ["chance (0.5)", "oracle (true log-hazard): 0.810"]
    assert drawn[0]["intervals"] == 2
    assert_png(comparison_plot(table, tmp_path / "u" / "uno.png", metric="uno_c"))  # no CI columns
    assert drawn[1]["yticks"] == drawn[0]["yticks"] and drawn[1]["intervals"] == 0
    assert drawn[1]["legend"] == ["chance (0.5)", "oracle (true log-hazard): 0.800"]
    with pytest.raises(InputError, match="no 'auc_2' column"):
        comparison_plot(table, tmp_path / "x.png", metric="auc_2")
    with pytest.raises(InputError, match="no method other than the oracle"):
        comparison_plot(table.iloc[[3]], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
