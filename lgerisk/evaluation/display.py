"""The comparison table as people read it: a rich table of method x metric with 95 % CIs."""

from __future__ import annotations

import math
from typing import Any


def _ci(row: dict[str, Any], key: str, signed: bool = False) -> str:
    """``value (low-high)``, or ``+value (+low to +high)`` for differences; ``-`` when not estimable."""
    value = row.get(key)
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    sign, joint = ("+", " to ") if signed else ("", "-")
    low, high = row.get(f"{key}_low"), row.get(f"{key}_high")
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return f"{value:{sign}.3f}"
    return f"{value:{sign}.3f} ({low:{sign}.2f}{joint}{high:{sign}.2f})"


def _plain(value: Any) -> str:
    return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.3f}"


def comparison_table(table: Any, synthetic: bool = False) -> Any:
    """A ``rich.table.Table`` of the comparison (pandas DataFrame from ``run_finetune``).

    Example:
        >>> import pandas as pd
        >>> t = comparison_table(pd.DataFrame([{"method": "m", "evaluation": "cv", "harrell_c": 0.7, "n": 10,
        ...                                     "events": 3}]))
        >>> t.row_count
        1
    """
    from rich.table import Table

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
        n = row.get("n")
        events = row.get("events")
        counts = "-" if n is None else f"{int(n)} ({int(events) if events is not None else '?'})"
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
