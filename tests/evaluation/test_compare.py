"""lgerisk.evaluation.compare: out-of-fold survival and risk groups from each split's training rows only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lgerisk.evaluation import compare
from lgerisk.evaluation.cox import breslow_baseline, survival_at
from lgerisk.evaluation.plots import risk_groups, tertile_thresholds


def _frame(seed: int = 0) -> pd.DataFrame:
    """Two methods x two folds of 12 cases: 8 training rows, 4 test rows per split."""
    rng = np.random.default_rng(seed)
    ids = [f"c{i:02d}" for i in range(12)]
    time = rng.uniform(0.5, 8.0, 12).round(3)
    event = (np.arange(12) % 3 != 0).astype(int)
    rows = []
    for method in ("a", "b"):
        risk = rng.normal(size=12)
        for split, test in (("fold1", set(ids[:4])), ("fold2", set(ids[4:8]))):
            for i, case in enumerate(ids):
                if split == "fold2" and case in ids[8:]:
                    continue  # fold2 trains on fewer cases
                rows.append(
                    {
                        "method": method,
                        "split": split,
                        "evaluation": "cv",
                        "role": "test" if case in test else "train",
                        "case_id": case,
                        "time": time[i],
                        "event": event[i],
                        "risk": risk[i],
                    }
                )
    return pd.DataFrame(rows)


GRID = np.array([1.0, 2.0, 4.0])
HORIZONS = (1.0, 3.0)


def test_out_of_fold_keeps_only_test_rows_with_their_curves() -> None:
    predictions = _frame()
    oof = compare.out_of_fold(predictions, GRID, HORIZONS)
    assert set(oof["role"]) == {"test"} and len(oof) == 2 * 8
    assert [c for c in oof.columns if c.startswith("s@")] == ["s@1", "s@2", "s@4"]
    assert {"survival_1", "survival_3", "risk_group"} <= set(oof.columns)
    # the survival of a test row is the Breslow curve of its split's training rows
    rows = predictions[(predictions["method"] == "a") & (predictions["split"] == "fold2")]
    train, test = rows[rows["role"] == "train"], rows[rows["role"] == "test"]
    times, cumhaz = breslow_baseline(train["time"].to_numpy(), train["event"].to_numpy(), train["risk"].to_numpy())
    expected = survival_at(test["risk"].to_numpy(), times, cumhaz, np.array(HORIZONS))
    got = oof[(oof["method"] == "a") & (oof["split"] == "fold2")]
    np.testing.assert_allclose(got[["survival_1", "survival_3"]].to_numpy(), expected, rtol=1e-9)
    groups = risk_groups(test["risk"].to_numpy(), tertile_thresholds(train["risk"].to_numpy()))
    assert list(got["risk_group"]) == list(groups)


def test_test_rows_outcomes_do_not_change_their_predictions() -> None:
    predictions = _frame()
    before = compare.out_of_fold(predictions, GRID, HORIZONS)
    changed = predictions.copy()
    test = changed["role"] == "test"
    changed.loc[test, "time"] = changed.loc[test, "time"][::-1].to_numpy() * 3.0
    changed.loc[test, "event"] = 1 - changed.loc[test, "event"]
    after = compare.out_of_fold(changed, GRID, HORIZONS)
    columns = ["s@1", "s@2", "s@4", "survival_1", "survival_3", "risk_group", "risk"]
    pd.testing.assert_frame_equal(before[columns], after[columns])
    # while the training rows' outcomes do change them
    train = changed["role"] == "train"
    changed.loc[train, "time"] = changed.loc[train, "time"] * 0.5
    assert not np.allclose(compare.out_of_fold(changed, GRID, HORIZONS)["survival_3"], after["survival_3"])


def test_comparison_table_and_calibration() -> None:
    predictions = _frame()
    oof = compare.out_of_fold(predictions, GRID, HORIZONS)
    everyone = predictions.drop_duplicates("case_id")
    table, per_split = compare.comparison_table(
        oof, everyone["time"].to_numpy(), everyone["event"].to_numpy(), GRID, HORIZONS, n_boot=10, seed=0
    )
    assert list(table["method"]) == ["a", "b"] and set(table["evaluation"]) == {"cv"}
    assert {
        "harrell_c",
        "harrell_c_low",
        "harrell_c_high",
        "uno_c",
        "auc_1",
        "auc_3",
        "ibs",
        "harrell_c_fold_mean",
    } <= set(table.columns)
    assert (table["n"] == 8).all()
    assert len(per_split) == 4 and not [c for c in per_split.columns if c.endswith(("_low", "_high"))]
    calibration = compare.calibration(oof, 3.0)
    assert set(calibration["method"]) == {"a", "b"} and (calibration["horizon"] == 3.0).all()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("scar-% Cox", "scar-pct-cox"),
        ("pretrained probe + radiomics + age,lvef", "pretrained-probe-plus-radiomics-plus-age-lvef"),
        ("pretrained probe + radiomics (group ridge)", "pretrained-probe-plus-radiomics-group-ridge"),
        ("deep, scratch (full)", "deep-scratch-full"),
    ],
)
def test_slug(name: str, expected: str) -> None:
    assert compare.slug(name) == expected
