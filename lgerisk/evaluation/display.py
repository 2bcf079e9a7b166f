"""The comparison table as people read it: a rich table of method x metric with 95 % CIs."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    import pandas as pd
    from rich.table import Table


def _ci(row: Mapping[str, object], key: str, signed: bool = False) -> str:
    """``value (low-high)``, or ``+value (+low to +high)`` for differences; ``-`` when not estimable."""
    value = row.get(key)
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    sign, joint = ("+", " to ") if signed else ("", "-")
    # a metric's interval bounds are numbers (or missing)
    low, high = cast("float | None", row.get(f"{key}_low")), cast("float | None", row.get(f"{key}_high"))
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return f"{value:{sign}.3f}"
    return f"{value:{sign}.3f} ({low:{sign}.2f}{joint}{high:{sign}.2f})"


def _counts(row: Mapping[str, object]) -> str:
    """``cases (events)`` of a row, ``-`` when unknown."""
    # counts are numbers (or missing)
    n, events = cast("float | None", row.get("n")), cast("float | None", row.get("events"))
    return "-" if n is None else f"{int(n)} ({int(events) if events is not None else '?'})"


def _plain(value: object) -> str:
    return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.3f}"


def comparison_table(table: pd.DataFrame, synthetic: bool = False, wide: bool = True) -> Table:
    """A ``rich.table.Table`` of the comparison (pandas DataFrame from ``run_finetune``); ``wide=False``: only
    Harrell's C and ΔC over scar %, each 95 % interval on a second line, so that it fits an 80-column terminal.

    Example:
        >>> import pandas as pd
        >>> t = comparison_table(pd.DataFrame([{"method": "m", "evaluation": "cv", "harrell_c": 0.7, "n": 10,
        ...                                     "events": 3}]))
        >>> t.row_count
        1
    """
    from rich.table import Table

    if not wide:
        return _narrow_table(table, synthetic)
    records = table.to_dict(orient="records")
    aucs = [k for k in (records[0] if records else {}) if k.startswith("auc_") and not k.endswith(("_low", "_high"))]
    title = "Survival model comparison" + (" — SYNTHETIC data" if synthetic else "")
    delta = any("delta_c" in record for record in records)
    out = Table(
        title=title,
        caption="95 % bootstrap CIs in brackets; cv = pooled out-of-fold predictions"
        + ("; ΔC vs scar-% Cox: paired bootstrap on the same cases" if delta else ""),
    )
    for name in (
        "method",
        "eval",
        "n (events)",
        "Harrell C",
        *(["ΔC vs scar %"] if delta else []),
        "Uno C",
        *[f"AUC@{k[4:]}" for k in aucs],
        "IBS",
    ):
        out.add_column(name, justify="left" if name == "method" else "right")
    for row in records:
        counts = _counts(row)
        out.add_row(
            str(row.get("method")),
            str(row.get("evaluation", "")),
            counts,
            _ci(row, "harrell_c"),
            *([_ci(row, "delta_c", signed=True)] if delta else []),
            _ci(row, "uno_c"),
            *[_plain(row.get(k)) for k in aucs],
            _plain(row.get("ibs")),
        )
    return out


def _two_lines(row: Mapping[str, object], key: str, signed: bool = False) -> str:
    """``value`` over ``(low to high)``: a cell two lines high and narrow."""
    text = _ci(row, key, signed)
    value, _, interval = text.partition(" ")
    return f"{value}\n{interval}" if interval else value


def _narrow_table(table: pd.DataFrame, synthetic: bool) -> Table:
    """The comparison in 80 columns: method, events, Harrell's C and ΔC over scar %, intervals below."""
    from rich.table import Table

    records = table.to_dict(orient="records")
    delta = any("delta_c" in record for record in records)
    out = Table(
        title="Survival model comparison" + (" — SYNTHETIC data" if synthetic else ""),
        caption="Out-of-fold Harrell's C, 95 % bootstrap CI below"
        + ("; ΔC: paired, the same cases" if delta else "")
        + ". Every metric: comparison.csv",
    )
    for name in ("method", "n (events)", "Harrell C", *(["ΔC vs scar %"] if delta else [])):
        out.add_column(name, justify="left" if name == "method" else "right", overflow="fold")
    for row in records:
        counts = _counts(row)
        out.add_row(
            str(row.get("method")),
            counts,
            _two_lines(row, "harrell_c"),
            *([_two_lines(row, "delta_c", signed=True)] if delta else []),
        )
    return out


def comparison_summary(table: pd.DataFrame, model: str, synthetic: bool = False) -> str:
    """One plain-language paragraph on what a comparison table shows: the best model in CV, where the run's own
    model stands against scar % alone, and how far an interval lets anyone read the differences.

    Example:
        >>> import pandas as pd
        >>> rows = [{"method": "scar-% Cox", "harrell_c": 0.70, "n": 32, "events": 14},
        ...         {"method": "m", "harrell_c": 0.74, "delta_c": 0.04, "delta_c_low": -0.02, "delta_c_high": 0.10,
        ...          "n": 32, "events": 14}]
        >>> print(comparison_summary(pd.DataFrame(rows), "m"))  # doctest: +NORMALIZE_WHITESPACE
        What the table shows: how well each model ranks the 32 cases (14 events) by risk when each case is
        predicted by a model that never saw it (C 0.5: chance, 1: perfect). The best is m (C 0.740). The model
        kept, m, scores 0.04 above scar % alone, 95 % interval -0.02 to +0.10: it spans 0, so with this few
        events the two cannot be told apart.
    """
    import math

    records = [r for r in table.to_dict(orient="records") if not str(r.get("method", "")).startswith("oracle")]
    if not records:
        return ""
    scored = [r for r in records if isinstance(r.get("harrell_c"), float) and math.isfinite(r["harrell_c"])]
    first = records[0]
    kind = "SYNTHETIC " if synthetic else ""
    text = (
        f"What the table shows: how well each model ranks the {int(first.get('n') or 0)} {kind}cases "
        f"({int(first.get('events') or 0)} events) by risk when each case is predicted by a model that never saw "
        "it (C 0.5: chance, 1: perfect)."
    )
    if scored:
        best = max(scored, key=lambda r: r["harrell_c"])
        text += f" The best is {best['method']} (C {best['harrell_c']:.3f})."
    mine = next((r for r in records if r.get("method") == model), None)
    low, high, value = (mine or {}).get("delta_c_low"), (mine or {}).get("delta_c_high"), (mine or {}).get("delta_c")
    if mine is not None and all(isinstance(v, float) and math.isfinite(v) for v in (low, high, value)):
        assert isinstance(value, float) and isinstance(low, float) and isinstance(high, float)  # checked above
        side = "above" if value >= 0 else "below"
        if low > 0:
            verdict = "it lies above 0: the model ranks better than scar % alone"
        elif high < 0:
            verdict = "it lies below 0: the model ranks worse than scar % alone"
        else:
            verdict = "it spans 0, so with this few events the two cannot be told apart"
        text += (
            f" The model kept, {model}, scores {abs(value):.2f} {side} scar % alone, 95 % interval "
            f"{low:+.2f} to {high:+.2f}: {verdict}."
        )
    if any(str(r.get("method", "")).startswith("oracle") for r in table.to_dict(orient="records")):
        text += " The oracle rows rank by the generator's true hazard: the ceiling, in expectation, for any model."
    return text
