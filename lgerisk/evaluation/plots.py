"""Survival plots: Kaplan-Meier curves by risk tertile and a forest plot comparing methods.

Figures are built with matplotlib's object-oriented API on an Agg canvas (no GUI backend, no
pyplot state), written atomically as PNG; anything drawn from synthetic data says so in its title.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import pandas as pd

from lgerisk.errors import InputError
from lgerisk.evaluation.groups import RISK_GROUPS, risk_groups, tertile_thresholds  # noqa: F401 - re-exported
from lgerisk.io.atomic import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from numpy.typing import ArrayLike

GROUP_COLOURS = {"low": "#1b9e77", "intermediate": "#d95f02", "high": "#c0392b"}
DPI = 120


def synthetic_title(title: str, synthetic: bool) -> str:
    """``title`` marked ``SYNTHETIC`` when it shows synthetic data (once).

    Example:
        >>> synthetic_title("Grad-CAM", True)
        'SYNTHETIC — Grad-CAM'
    """
    if synthetic and "SYNTHETIC" not in title:
        return f"SYNTHETIC — {title}"
    return title


def _figure(width: float, height: float) -> Figure:
    """A Figure on an Agg canvas (no pyplot, no GUI backend, nothing to close globally)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: str | os.PathLike[str]) -> Path:
    final = Path(path)
    try:
        with atomic_path(final) as tmp:
            figure.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    finally:
        figure.clear()
    return final


def _title(title: str, synthetic: bool) -> str:
    return f"{title} (SYNTHETIC data)" if synthetic else title


def _group_order(labels: np.ndarray) -> list[str]:
    present = list(dict.fromkeys(labels.tolist()))
    return [g for g in RISK_GROUPS if g in present] + sorted(g for g in present if g not in RISK_GROUPS)


def km_by_risk_group(
    time: ArrayLike,
    event: ArrayLike,
    groups: ArrayLike,
    path: str | os.PathLike[str],
    title: str,
    synthetic: bool = False,
    time_unit: str = "years",
) -> Path:
    """Kaplan-Meier curves (95% CI bands) per risk group, numbers at risk below, log-rank p; PNG at ``path``.

    Groups without cases are skipped; a group without events is drawn flat at 1.

    Example:
        >>> km_by_risk_group(time, event, risk_groups(risk, tertile_thresholds(risk_train)),   # doctest: +SKIP
        ...                  "out/km.png", "Test folds", synthetic=True)
    """
    from lifelines import KaplanMeierFitter
    from lifelines.plotting import add_at_risk_counts
    from lifelines.statistics import multivariate_logrank_test

    time = np.asarray(time, dtype=float).reshape(-1)
    event = np.asarray(event).reshape(-1)
    labels = np.asarray(groups).astype(str).reshape(-1)
    if not (len(time) == len(event) == len(labels)):
        raise InputError(
            f"Kaplan-Meier plot: {len(time)} times, {len(event)} event indicators and {len(labels)} "
            "risk groups; they must be aligned."
        )
    if not len(time):
        raise InputError("Kaplan-Meier plot: no cases to plot.")
    if not np.all(np.isfinite(time)) or np.any(time < 0):
        raise InputError("Kaplan-Meier plot: follow-up times must be finite and >= 0.")
    try:
        event = event.astype(float)
    except (TypeError, ValueError) as exc:
        raise InputError("Kaplan-Meier plot: event indicators must be 0 or 1.") from exc
    if not np.all(np.isin(event, (0.0, 1.0))):
        raise InputError("Kaplan-Meier plot: event indicators must be 0 or 1.")
    event = event.astype(int)
    order = _group_order(labels)
    if len(order) > 1:
        p_value = float(multivariate_logrank_test(time, labels, event).p_value)
        p_text = f"log-rank p = {p_value:.3g}"
    else:
        p_text = "log-rank p: n/a (one group)"

    figure = _figure(7.0, 5.5)
    ax = figure.add_subplot(1, 1, 1)
    fitters = []
    for group in order:
        chosen = labels == group
        fitter = KaplanMeierFitter(label=f"{group} (n={int(chosen.sum())}, events={int(event[chosen].sum())})")
        fitter.fit(time[chosen], event[chosen])
        fitter.plot_survival_function(
            ax=ax,
            ci_show=True,
            color=GROUP_COLOURS.get(group),
            show_censors=True,
            censor_styles={"ms": 5, "marker": "|"},
        )
        fitter._label = group  # the short name labels the at-risk table
        fitters.append(fitter)
    ax.set_xlim(left=0)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(f"Time ({time_unit})")
    ax.set_ylabel("Event-free survival")
    ax.set_title(_title(title, synthetic))
    ax.legend(title=p_text, loc="best", fontsize="small")
    add_at_risk_counts(*fitters, ax=ax, fig=figure, rows_to_show=["At risk"])
    return _save(figure, path)


METRIC_LABELS = {
    "harrell_c": "Harrell's C",
    "uno_c": "Uno's C",
    "integrated_brier": "Integrated Brier score",
    "ibs": "Integrated Brier score",
}


def _metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric.replace("_", " "))


def comparison_plot(
    table: pd.DataFrame, path: str | os.PathLike[str], metric: str = "harrell_c", synthetic: bool = False
) -> Path:
    """Forest plot of each method's ``metric`` with its CI (``metric_low``, ``metric_high``); PNG at ``path``.

    ``table`` has a ``method`` column and ``metric`` (CI columns optional, NaN allowed), optionally
    ``evaluation`` (e.g. ``cv``, ``test``: shown beside the method when it varies). A row whose
    method starts with ``oracle`` is drawn as a dashed reference line rather than a point; C-index
    and AUC metrics get a dotted chance line at 0.5.

    Example:
        >>> comparison_plot(summary, "out/comparison.png", synthetic=True)   # doctest: +SKIP
    """
    if not isinstance(table, pd.DataFrame):
        raise InputError(f"comparison plot: expected a DataFrame, not {type(table).__name__}.")
    for column in ("method", metric):
        if column not in table.columns:
            raise InputError(f"comparison plot: the table has no {column!r} column.")
    missing = pd.Series(np.nan, index=table.index)

    def numbers(column: str) -> np.ndarray:
        return cast("np.ndarray", pd.to_numeric(table.get(column, missing), errors="coerce").to_numpy(dtype=float))

    methods = table["method"].astype(str).to_numpy()
    values, low, high = numbers(metric), numbers(f"{metric}_low"), numbers(f"{metric}_high")
    is_oracle = np.char.startswith(np.char.lower(methods.astype(str)), "oracle")
    shown = np.flatnonzero(~is_oracle & np.isfinite(values))
    if not shown.size:
        raise InputError(f"comparison plot: no method other than the oracle has a finite {metric!r}.")
    labels = methods.copy().astype(object)
    if "evaluation" in table.columns:
        evaluation = table["evaluation"].astype(str).to_numpy()
        if len(set(evaluation[shown])) > 1:
            labels = np.array([f"{m} [{e}]" for m, e in zip(methods, evaluation)], dtype=object)

    figure = _figure(7.0, 1.6 + 0.45 * len(shown))
    ax = figure.add_subplot(1, 1, 1)
    y = np.arange(len(shown))[::-1]
    for yi, i in zip(y, shown):
        if np.isfinite(low[i]) and np.isfinite(high[i]):
            ax.errorbar(
                values[i],
                yi,
                xerr=[[max(values[i] - low[i], 0.0)], [max(high[i] - values[i], 0.0)]],
                fmt="o",
                color="#2c3e50",
                ecolor="#2c3e50",
                capsize=3,
            )
            text = f"{values[i]:.3f} ({low[i]:.3f}-{high[i]:.3f})"
        else:
            ax.plot(values[i], yi, "o", color="#2c3e50")
            text = f"{values[i]:.3f}"
        ax.annotate(
            text,
            (1.0, yi),
            xycoords=("axes fraction", "data"),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize="small",
        )
    if metric.endswith(("_c", "auc")) or "c_index" in metric or metric.startswith("auc"):
        ax.axvline(0.5, color="grey", linestyle=":", linewidth=1, label="chance (0.5)")
    oracle = np.flatnonzero(is_oracle & np.isfinite(values))
    if oracle.size:
        ax.axvline(
            values[oracle[0]],
            color="#8e44ad",
            linestyle="--",
            linewidth=1.2,
            label=f"{methods[oracle[0]]}: {values[oracle[0]]:.3f}",
        )
    ax.set_yticks(y)
    ax.set_yticklabels(labels[shown])
    ax.set_ylim(-0.7, len(shown) - 0.3)
    ax.set_xlabel(_metric_label(metric) + " (95% CI)")
    ax.set_title(_title(f"{_metric_label(metric)} by method", synthetic))
    ax.grid(axis="x", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        axes_inches = ax.get_position().height * figure.get_figheight()  # legend 0.55 in below the axes
        ax.legend(
            loc="upper center", bbox_to_anchor=(0.5, -0.55 / axes_inches), ncol=2, fontsize="small", frameon=False
        )
    return _save(figure, path)
