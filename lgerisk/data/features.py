"""Radiomics feature tables -> standardised feature vectors (the contrastive target of pretraining).

Columns (docs/commands.md, "Feature table"): the numeric radiomics features ``ROI__imagetype_class_Feature``
and the QC scar metrics. ``FeatureScaler`` is fitted on the training cases only: per column the
median and a robust scale (IQR / 1.349, else the SD, else 1), values clipped to +-5 after
standardisation. A feature that is not measurable (NaN: every ``scar__`` feature of a scar-free
heart) becomes 0, the training median, and one indicator per ROI, ``ROI__present`` (1 when that
ROI's status is ``ok``), tells the two apart.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, SupportsFloat, cast

import numpy as np

from lgerisk.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from lgerisk.types import JSONDict, TypePath

QC_METRICS = (
    "scar_percent",
    "greyzone_percent",
    "noreflow_percent",
    "myocardium_mass_g",
    "myocardium_volume_ml",
    "scar_volume_ml",
)
"""QC scar metrics of a feature table: measured for every case, so never NaN."""

PRESENT_SUFFIX = "__present"
"""``ROI__present``: the indicator column of whether a ROI was measured in a case."""

ROI_META_SUFFIXES = ("__status", "__voxel_count", "__mask_hash")
"""Per-ROI columns of a feature table that are not features."""

IQR_TO_SD = 1.349
"""IQR of a normal distribution in SDs: IQR / 1.349 estimates the SD robustly."""

SCALER_VERSION = 1


def _frame(table: pd.DataFrame | TypePath) -> tuple[pd.DataFrame, str]:
    """A feature table and the name errors use for it (its path, or ``attrs['source']``)."""
    import pandas as pd

    if isinstance(table, (str, os.PathLike)):
        path = Path(table)
        if not path.is_file():
            raise InputError(f"{path}: feature table not found.")
        try:
            frame = pd.read_csv(path, dtype={"case_id": str})
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: not a readable CSV table ({str(exc).splitlines()[0]}).") from exc
        frame.attrs["source"] = str(path)
        return frame, str(path)
    if not isinstance(table, pd.DataFrame):
        raise InputError(f"feature table: expected a DataFrame or a CSV path, not {type(table).__name__}.")
    return table, str(table.attrs.get("source", "the feature table"))


def _rows(frame: pd.DataFrame, name: str, cases: Sequence[str] | None) -> pd.DataFrame:
    """The rows of ``cases`` in that order (all rows when None), refusing missing or repeated ids."""
    if "case_id" not in frame.columns:
        raise InputError(f"{name}: has no 'case_id' column.")
    ids = frame["case_id"].astype(str)
    repeated = ids[ids.duplicated()]
    if len(repeated):
        raise InputError(f"{name}: case id {repeated.iloc[0]!r} appears more than once.")
    if cases is None:
        return frame
    indexed = frame.set_index(ids, drop=False)
    wanted = [str(c) for c in cases]
    missing = [c for c in wanted if c not in indexed.index]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise InputError(
            f"{name}: has no row for case {missing[0]!r}{more}; the feature table must cover every requested case."
        )
    return indexed.loc[wanted].reset_index(drop=True)


def roi_of(column: str) -> str | None:
    """The ROI of a radiomics column (``scar__original_glcm_Contrast`` -> ``scar``), None for others.

    Example:
        >>> roi_of("scar__original_glcm_Contrast"), roi_of("scar_percent"), roi_of("scar__status")
        ('scar', None, None)
    """
    if "__" not in column or column.endswith(ROI_META_SUFFIXES) or column.endswith(PRESENT_SUFFIX):
        return None
    return column.split("__", 1)[0]


def _numeric(frame: pd.DataFrame, column: str, name: str) -> np.ndarray:
    import pandas as pd

    try:
        values = pd.to_numeric(frame[column], errors="raise")
    except (ValueError, TypeError) as exc:
        raise InputError(f"{name}: column {column!r} holds values that are not numbers.") from exc
    return cast("np.ndarray", values.to_numpy(dtype=float))


def feature_columns(
    table: pd.DataFrame | TypePath,
    only: Sequence[str] | None = None,
    qc_metrics: bool = True,
    cases: Sequence[str] | None = None,
) -> list[str]:
    """The numeric feature columns of a feature table that vary in its (training) rows.

    Radiomics ``ROI__...`` features (not ``__status``, ``__voxel_count``, ``__mask_hash``), restricted
    to ``only`` when given (e.g. ``robust_features(stability)``), then the QC scar metrics unless
    ``qc_metrics=False``; columns constant or entirely NaN in the rows of ``cases`` (all rows when
    None) are dropped.

    Example:
        >>> columns = feature_columns("work/radiomics.csv", cases=train_ids)   # doctest: +SKIP
        >>> columns[:2]                                                         # doctest: +SKIP
        ['myocardium__original_shape_Elongation', 'myocardium__original_shape_Flatness']
    """
    import pandas as pd

    frame, name = _frame(table)
    rows = _rows(frame, name, cases)
    if only is not None:
        absent = [c for c in only if c not in frame.columns]
        if absent:
            raise InputError(f"{name}: has no column {absent[0]!r} (asked for by the feature list).")
        wanted = set(only)
    candidates = [
        c
        for c in frame.columns
        if roi_of(c) is not None
        and (only is None or c in wanted)
        and (pd.api.types.is_numeric_dtype(frame[c]) or frame[c].isna().all())
    ]
    if qc_metrics:
        absent = [c for c in QC_METRICS if c not in frame.columns]
        if absent:
            raise InputError(
                f"{name}: has no QC column {absent[0]!r}; is it a feature table from 'lgerisk extract-radiomics'?"
            )
        candidates += [c for c in frame.columns if c in QC_METRICS]
    kept = []
    for column in candidates:
        values = _numeric(rows, column, name)
        finite = values[np.isfinite(values)]
        if finite.size and finite.min() != finite.max():
            kept.append(column)
    return kept


MAX_ABS_CORRELATION = 0.9
"""``decorrelated_columns``: a column correlated beyond this with one already kept is dropped."""


def decorrelated_columns(
    table: pd.DataFrame | TypePath,
    columns: Sequence[str],
    cases: Sequence[str] | None = None,
    max_abs_r: float = MAX_ABS_CORRELATION,
) -> list[str]:
    """``columns`` less those redundant with an earlier kept one (|Pearson r| > ``max_abs_r`` over the
    rows of ``cases``, pairwise-complete); QC metrics are considered first (scar % first, in the order
    of ``QC_METRICS``), then the rest in order.

    Example:
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"case_id": list("abcd"), "scar__x": [1.0, 2, 3, 4],
        ...                       "scar__y": [2.0, 4, 6, 8.5], "scar__z": [1.0, -1, 1, -1]})
        >>> decorrelated_columns(frame, ["scar__x", "scar__y", "scar__z"])
        ['scar__x', 'scar__z']
    """
    if not 0 < max_abs_r <= 1:
        raise InputError(f"max |r| {max_abs_r}: must be in (0, 1].")
    frame, name = _frame(table)
    rows = _rows(frame, name, cases)
    order = [c for c in QC_METRICS if c in columns] + [c for c in columns if c not in QC_METRICS]
    values = np.column_stack([_numeric(rows, c, name) for c in order]) if order else np.zeros((len(rows), 0))
    import pandas as pd

    r = pd.DataFrame(values).corr(min_periods=3).abs().to_numpy()
    kept: list[int] = []
    for j in range(len(order)):
        if not any(np.isfinite(r[j, k]) and r[j, k] > max_abs_r for k in kept):
            kept.append(j)
    chosen = {order[j] for j in kept}
    return [c for c in columns if c in chosen]


@dataclass(frozen=True)
class FeatureScaler:
    """Robust standardisation of feature columns, fitted on the training cases (``FeatureScaler.fit``).

    ``transform`` gives ``(n, len(columns) + len(rois))`` float32: the standardised, clipped columns
    (NaN -> 0) then one ``ROI__present`` indicator per ROI; ``feature_names`` names them.

    Example:
        >>> scaler = FeatureScaler.fit(table, feature_columns(table, cases=train), cases=train)  # doctest: +SKIP
        >>> x = scaler.transform(table, cases=test)                                              # doctest: +SKIP
        >>> FeatureScaler.from_dict(json.loads(json.dumps(scaler.to_dict()))) == scaler          # doctest: +SKIP
        True
    """

    columns: tuple[str, ...]
    medians: tuple[float, ...]
    scales: tuple[float, ...]
    rois: tuple[str, ...]
    clip: float = 5.0

    def __post_init__(self) -> None:
        for name in ("columns", "medians", "scales", "rois"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "medians", tuple(float(v) for v in self.medians))
        object.__setattr__(self, "scales", tuple(float(v) for v in self.scales))
        n = len(self.columns)
        if len(self.medians) != n or len(self.scales) != n:
            raise InputError(
                f"feature scaler: {n} columns but {len(self.medians)} medians and {len(self.scales)} scales."
            )
        if len(set(self.columns)) != n:
            raise InputError("feature scaler: a column is named more than once.")
        bad = [
            c
            for c, m, s in zip(self.columns, self.medians, self.scales)
            if not (math.isfinite(m) and math.isfinite(s) and s > 0)
        ]
        if bad:
            raise InputError(f"feature scaler: column {bad[0]!r} has a non-finite median or a scale <= 0.")
        missing = sorted({roi for roi in map(roi_of, self.columns) if roi is not None} - set(self.rois))
        if missing:
            raise InputError(f"feature scaler: ROI {missing[0]!r} of its columns has no presence indicator.")
        if not self.clip > 0:
            raise InputError(f"feature scaler: clip {self.clip} must be positive.")

    @classmethod
    def fit(
        cls,
        table: pd.DataFrame | TypePath,
        columns: Sequence[str],
        cases: Sequence[str] | None = None,
        clip: float = 5.0,
    ) -> FeatureScaler:
        """Fit on the rows of ``cases`` (the TRAINING cases; all rows when None).

        Example:
            >>> FeatureScaler.fit("work/radiomics.csv", ["scar_percent"], cases=["P01", "P02"])  # doctest: +SKIP
        """
        frame, name = _frame(table)
        columns = list(columns)
        if not columns:
            raise InputError(f"{name}: no feature columns to fit the scaler on.")
        absent = [c for c in columns if c not in frame.columns]
        if absent:
            raise InputError(f"{name}: has no column {absent[0]!r}.")
        rows = _rows(frame, name, cases)
        medians, scales = [], []
        for column in columns:
            values = _checked(rows, column, name)
            finite = values[np.isfinite(values)]
            median = float(np.median(finite)) if finite.size else 0.0
            scale = 0.0
            if finite.size:
                q25, q75 = np.percentile(finite, [25, 75])
                scale = float(q75 - q25) / IQR_TO_SD
            tiny = 1e-12 * max(1.0, abs(median))
            if not scale > tiny and finite.size > 1:
                scale = float(np.std(finite, ddof=1))
            if not scale > tiny:
                scale = 1.0
            medians.append(median)
            scales.append(scale)
        rois = tuple(dict.fromkeys(r for r in (roi_of(c) for c in columns) if r is not None))
        return cls(tuple(columns), tuple(medians), tuple(scales), rois, clip)

    @property
    def feature_names(self) -> list[str]:
        """Names of the output columns: ``columns`` then ``ROI__present`` per ROI."""
        return [*self.columns, *(f"{roi}{PRESENT_SUFFIX}" for roi in self.rois)]

    @property
    def n_features(self) -> int:
        """Width of ``transform``'s output."""
        return len(self.columns) + len(self.rois)

    def transform(self, table: pd.DataFrame | TypePath, cases: Sequence[str] | None = None) -> np.ndarray:
        """Standardised features of the rows of ``cases`` (in that order; all rows when None).

        Example:
            >>> scaler.transform("work/radiomics.csv", cases=["P03"]).shape   # doctest: +SKIP
            (1, 120)
        """
        frame, name = _frame(table)
        absent = [c for c in self.columns if c not in frame.columns]
        if absent:
            raise InputError(f"{name}: has no column {absent[0]!r}, which the feature scaler was fitted on.")
        rows = _rows(frame, name, cases)
        out = np.zeros((len(rows), self.n_features), dtype=np.float32)
        for j, (column, median, scale) in enumerate(zip(self.columns, self.medians, self.scales)):
            values = _checked(rows, column, name)
            z = np.clip((values - median) / scale, -self.clip, self.clip)
            out[:, j] = np.where(np.isfinite(values), z, 0.0)
        for k, roi in enumerate(self.rois):
            out[:, len(self.columns) + k] = roi_present(rows, roi, [c for c in self.columns if roi_of(c) == roi], name)
        return out

    def to_dict(self) -> JSONDict:
        """Plain JSON-able dict (stored in model cards)."""
        return {
            "version": SCALER_VERSION,
            "columns": list(self.columns),
            "medians": list(self.medians),
            "scales": list(self.scales),
            "rois": list(self.rois),
            "clip": float(self.clip),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> FeatureScaler:
        """Inverse of ``to_dict``."""
        keys = {"version", "columns", "medians", "scales", "rois", "clip"}
        if set(data) != keys:
            raise InputError(f"feature scaler: expected keys {', '.join(sorted(keys))}, got {', '.join(sorted(data))}.")
        if data["version"] != SCALER_VERSION:
            raise InputError(
                f"feature scaler: version {data['version']!r} is not supported "
                f"(this lgerisk reads version {SCALER_VERSION})."
            )
        # a card's values, as written by to_dict; __post_init__ checks them
        return cls(
            tuple(cast("list[str]", data["columns"])),
            tuple(cast("list[float]", data["medians"])),
            tuple(cast("list[float]", data["scales"])),
            tuple(cast("list[str]", data["rois"])),
            float(cast("float", data["clip"])),
        )


def _checked(rows: pd.DataFrame, column: str, name: str) -> np.ndarray:
    """Numeric values of ``column``; NaN refused in QC metrics, which every case has."""
    values = _numeric(rows, column, name)
    if column in QC_METRICS:
        bad = ~np.isfinite(values)
        if bad.any():
            case = rows["case_id"].iloc[int(np.argmax(bad))]
            raise InputError(
                f"{name}: column {column!r} is empty or not finite for case {case!r}, and QC "
                "metrics are measured for every case."
            )
    return values


def head_value(row: Mapping[str, object], qc: Mapping[str, object], column: str) -> float:
    """The value of feature-table ``column`` for one scan, from its radiomics ``row`` (``feature_row``) and its
    preprocessing ``qc`` (the QC scar metrics); an ``ROI__present`` indicator from that ROI's status. NaN where
    the scan has no such value. The same numbers as the scan's row of a feature table, without pandas.

    Example:
        >>> row = {"scar__status": "empty", "scar__original_firstorder_Mean": float("nan")}
        >>> qc = {"scar_percent": 0.0}
        >>> head_value(row, qc, "scar__present"), head_value(row, qc, "scar_percent"), head_value(row, qc, "age")
        (0.0, 0.0, nan)
    """
    if column in row:
        value = row[column]
    elif column in QC_METRICS:
        value = qc.get(column)
    elif column.endswith(PRESENT_SUFFIX):
        roi = column[: -len(PRESENT_SUFFIX)]
        status = row.get(f"{roi}__status")
        if status is not None:
            return float(str(status) == "ok")
        values = [_as_float(v) for key, v in row.items() if roi_of(str(key)) == roi]
        return float(any(math.isfinite(v) for v in values))
    else:
        return float("nan")
    return _as_float(value)


def _as_float(value: object) -> float:
    try:
        return float(cast("SupportsFloat", value))  # whatever float() refuses is NaN
    except (TypeError, ValueError):
        return float("nan")


def roi_present(
    rows: pd.DataFrame, roi: str, columns: Sequence[str] | None = None, name: str = "features"
) -> np.ndarray:
    """1 where ROI ``roi`` was measured: its ``__status`` is ``ok`` (else: any of ``columns`` — by default
    every feature of that ROI in ``rows`` — is finite); 0 elsewhere (float32).

    Example:
        >>> import pandas as pd
        >>> roi_present(pd.DataFrame({"scar__original_firstorder_Mean": [1.0, np.nan]}), "scar").tolist()
        [1.0, 0.0]
    """
    status = f"{roi}__status"
    if status in rows.columns:
        return cast("np.ndarray", (rows[status].astype(str) == "ok").to_numpy(dtype=np.float32))
    columns = [c for c in rows.columns if roi_of(str(c)) == roi] if columns is None else list(columns)
    if not columns:
        return np.zeros(len(rows), dtype=np.float32)
    values = np.stack([_numeric(rows, c, name) for c in columns], axis=1)
    return cast("np.ndarray", np.isfinite(values).any(axis=1).astype(np.float32))
