"""From out-of-fold predictions to the comparison table: pooled and per-split metrics, risk groups,
calibration and Kaplan-Meier plots, for every method evaluated on the same splits.

A *prediction frame* has a row per (method, split, case, role): ``method``, ``split``,
``evaluation`` (``cv`` or ``test``), ``role`` (``train`` or ``test``), ``case_id``, ``time``,
``event``, ``risk``. Training rows supply each split's Breslow baseline hazard and risk tertiles, so
the survival curves and risk groups of test cases use nothing but their own training fold.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lgerisk.evaluation import metrics
from lgerisk.evaluation.cox import breslow_baseline, survival_at
from lgerisk.evaluation.groups import risk_groups, tertile_thresholds

if TYPE_CHECKING:
    from lgerisk.types import JSONDict


def out_of_fold(predictions: pd.DataFrame, grid: np.ndarray, horizons: tuple[float, ...]) -> pd.DataFrame:
    """Test rows of every split with their survival at ``grid`` (columns ``s@t``), at the horizons
    (``survival_<h>``) and their risk group, each computed from the split's own training rows."""
    frames = []
    for (_method, _split), rows in predictions.groupby(["method", "split"], sort=False):
        train = rows[rows["role"] == "train"]
        test = rows[rows["role"] == "test"].copy()
        if test.empty:
            continue
        # the baseline is estimated on risks centred at the training mean (numerically safer; same curves)
        centre = float(train["risk"].mean())
        times, cumhaz = breslow_baseline(
            train["time"].to_numpy(float), train["event"].to_numpy(int), train["risk"].to_numpy(float) - centre
        )
        risk = test["risk"].to_numpy(float) - centre
        test["risk"] = risk  # pooled metrics compare cases of different folds: each fold centred on its training mean
        curves = survival_at(risk, times, cumhaz, grid)
        for index, t in enumerate(grid):
            test[f"s@{t:.6g}"] = curves[:, index]
        if horizons:
            at_horizons = survival_at(risk, times, cumhaz, np.asarray(horizons, float))
            for index, horizon in enumerate(horizons):
                test[f"survival_{horizon:g}"] = at_horizons[:, index]
        test["risk_group"] = risk_groups(risk, tertile_thresholds(train["risk"].to_numpy(float) - centre))
        frames.append(test)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def comparison_table(
    oof: pd.DataFrame,
    all_time: np.ndarray,
    all_event: np.ndarray,
    grid: np.ndarray,
    horizons: tuple[float, ...],
    n_boot: int,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pooled table: a row per method and evaluation with CIs; per-split table without CIs).

    Pooled CV metrics treat the out-of-fold risks of all folds as one sample (the censoring
    distribution for Uno's C and the IBS is the whole labelled cohort's)."""
    pooled, per_split = [], []
    grid_columns = [f"s@{t:.6g}" for t in grid]
    for (method, evaluation), rows in oof.groupby(["method", "evaluation"], sort=False):
        survival = rows[grid_columns].to_numpy(float)
        row: JSONDict = {"method": method, "evaluation": evaluation}
        row.update(
            metrics.evaluate(
                all_time,
                all_event,
                rows["time"].to_numpy(float),
                rows["event"].to_numpy(int),
                rows["risk"].to_numpy(float),
                survival=survival,
                grid=grid,
                horizons=horizons,
                n_boot=n_boot,
                seed=seed,
            )
        )
        by_split = []
        for split, part in rows.groupby("split", sort=False):
            values = metrics.evaluate(
                all_time,
                all_event,
                part["time"].to_numpy(float),
                part["event"].to_numpy(int),
                part["risk"].to_numpy(float),
                horizons=(),
                n_boot=0,
                seed=seed,
            )
            per_split.append(
                {
                    "method": method,
                    "evaluation": evaluation,
                    "split": split,
                    **{k: v for k, v in values.items() if not k.endswith(("_low", "_high"))},
                }
            )
            by_split.append(values["harrell_c"])
        finite = [v for v in by_split if np.isfinite(v)]
        row["harrell_c_fold_mean"] = float(np.mean(finite)) if finite else float("nan")
        row["harrell_c_fold_sd"] = float(np.std(finite, ddof=1)) if len(finite) > 1 else float("nan")
        pooled.append(row)
    return pd.DataFrame(pooled), pd.DataFrame(per_split)


REFERENCE_METHOD = "scar-% Cox"
"""What every model's gain is measured against: the one number clinicians already have."""


def add_delta_c(
    table: pd.DataFrame,
    oof: pd.DataFrame,
    n_boot: int,
    seed: int,
    reference: str = REFERENCE_METHOD,
    extra: dict[str, pd.Series] | None = None,
) -> pd.DataFrame:
    """``table`` with ``delta_c`` (Harrell's C minus the reference method's on the same out-of-fold cases)
    and its paired bootstrap 95 % interval ``delta_c_low`` / ``delta_c_high``, per method and evaluation.

    ``extra`` maps further row names (e.g. the oracle) to a risk per case id. Rows of the reference itself
    and rows without it in the same evaluation get NaN.
    """
    out = table.copy()
    for column in ("delta_c", "delta_c_low", "delta_c_high"):
        out[column] = np.nan
    for index, row in out.iterrows():
        method, evaluation = row["method"], row["evaluation"]
        base = oof[(oof["method"] == reference) & (oof["evaluation"] == evaluation)]
        if method == reference or base.empty:
            continue
        base = base.drop_duplicates("case_id").set_index("case_id")
        if extra and method in extra:
            risk = extra[method].reindex(base.index).to_numpy(float)
        else:
            mine = oof[(oof["method"] == method) & (oof["evaluation"] == evaluation)]
            if mine.empty:
                continue
            risk = mine.drop_duplicates("case_id").set_index("case_id")["risk"].reindex(base.index).to_numpy(float)
        if not np.isfinite(risk).all():
            continue
        delta, low, high = metrics.paired_delta_c(
            base["time"].to_numpy(float), base["event"].to_numpy(int), risk, base["risk"].to_numpy(float), n_boot, seed
        )
        out.loc[index, ["delta_c", "delta_c_low", "delta_c_high"]] = [delta, low, high]
    return out


def oracle_rows(
    oof: pd.DataFrame,
    all_time: np.ndarray,
    all_event: np.ndarray,
    log_hazard: pd.Series,
    horizons: tuple[float, ...],
    n_boot: int,
    seed: int,
) -> list[JSONDict]:
    """The comparison rows of the true log-hazard of a synthetic cohort, one per evaluation, on exactly
    the cases of that evaluation (no survival curves: the truth has no baseline hazard here)."""
    rows = []
    for evaluation, part in oof.groupby("evaluation", sort=False):
        cases = part.drop_duplicates("case_id")
        risk = log_hazard.reindex(cases["case_id"]).to_numpy(float)
        if not np.isfinite(risk).all():
            continue
        values = metrics.evaluate(
            all_time,
            all_event,
            cases["time"].to_numpy(float),
            cases["event"].to_numpy(int),
            risk,
            horizons=horizons,
            n_boot=n_boot,
            seed=seed,
        )
        rows.append({"method": "oracle (true log-hazard)", "evaluation": evaluation, **values})
    return rows


def calibration(oof: pd.DataFrame, horizon: float, groups: int = 3) -> pd.DataFrame:
    """Predicted vs observed (Kaplan-Meier) event probability by ``horizon``, per method and evaluation."""
    column = f"survival_{horizon:g}"
    frames = []
    for (method, evaluation), rows in oof.groupby(["method", "evaluation"], sort=False):
        table = metrics.calibration_table(
            rows["time"].to_numpy(float),
            rows["event"].to_numpy(int),
            rows[column].to_numpy(float),
            horizon,
            groups=groups,
        )
        table.insert(0, "horizon", horizon)
        table.insert(0, "evaluation", evaluation)
        table.insert(0, "method", method)
        frames.append(table)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def km_plots(oof: pd.DataFrame, folder: Path, synthetic: bool) -> dict[str, Path]:
    """A Kaplan-Meier PNG per method (out-of-fold risk groups, thresholds from each training fold)."""
    from lgerisk.evaluation.plots import km_by_risk_group

    paths = {}
    for (method, evaluation), rows in oof.groupby(["method", "evaluation"], sort=False):
        name = f"km_{slug(method)}{'' if evaluation == 'cv' else '_' + evaluation}.png"
        where = "out-of-fold" if evaluation == "cv" else "held-out test"
        paths[f"{method} ({evaluation})"] = km_by_risk_group(
            rows["time"].to_numpy(float),
            rows["event"].to_numpy(int),
            rows["risk_group"].to_numpy(),
            folder / name,
            f"{method}: {where} risk tertiles",
            synthetic=synthetic,
        )
    return paths


def slug(name: str) -> str:
    """A file-name-safe form of a method name.

    Example:
        >>> slug("scar-% Cox")
        'scar-pct-cox'
    """
    text = name.lower().replace("%", "pct").replace("+", "plus")
    out = "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in text)
    while "--" in out:
        out = out.replace("--", "-")
    return out.strip("-")
