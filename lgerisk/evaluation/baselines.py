"""Classic survival baselines with one vocabulary: scar-% Cox and penalised radiomics Cox (lifelines).

Every model follows ``RiskModel``: ``fit(features, time, event)`` on the TRAINING rows only,
``predict_risk(features)`` -> log relative hazard (higher = worse), ``to_dict()`` (JSON-safe: what was
selected and the coefficients) and ``name``. ``features`` is a feature table (a row a case, from
``lgerisk extract-radiomics``); ``time`` and ``event`` are aligned with its rows.

``RadiomicsCox`` does all of its feature selection inside ``fit`` on the rows it is given, so that
in cross-validation nothing of a test fold reaches the model. A feature that is not measurable in a
case (every ``scar__`` feature of a scar-free heart) is imputed with the training mean of the cases
where it is, and one indicator per such ROI, ``ROI__present``, joins the candidates, so no column is
lost because a training fold holds a scar-free case (columns measured in fewer than
``min_present`` of the training rows, or (nearly) constant, are dropped). Optionally the QC scar
metrics (scar %, grey-zone %, mass, ...) are candidates too. The candidates are standardised
(training mean and SD) and ranked by the Cox score-test statistic at beta = 0, ``U^2 / I`` (Breslow
ties; the log-rank-like chi-square of each column, computed for all columns at once with numpy); the
top-ranked are kept greedily, skipping any with ``|Pearson r| > correlation_threshold`` to one
already kept, up to ``max_features``; a penalised ``CoxPHFitter`` is fitted on those, its penalty
fixed or chosen by inner cross-validation on the training rows (``penalizer="cv"``).

``ClinicalCox`` is an unpenalised Cox model on a few named columns: ``scar_percent`` and
``greyzone_percent`` make the clinician's two-number model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, TypedDict, cast, runtime_checkable

import numpy as np
import pandas as pd

from lgerisk.errors import InputError

if TYPE_CHECKING:
    from lifelines import CoxPHFitter
    from numpy.typing import ArrayLike

    from lgerisk.types import JSONDict

NEAR_ZERO_SD = 1e-8
"""A column whose training SD is at most this times max(1, |mean|) counts as constant."""


@runtime_checkable
class RiskModel(Protocol):
    """What every survival model in lgerisk offers (baselines and the deep risk model alike).

    Example:
        >>> isinstance(ScarCox(), RiskModel)
        True
    """

    name: str

    def fit(self, features: pd.DataFrame, time: np.ndarray, event: np.ndarray) -> RiskModel:
        """Fit on the training rows of ``features`` with their outcomes; returns self."""
        ...

    def predict_risk(self, features: pd.DataFrame) -> np.ndarray:
        """Log relative hazard of each row (higher = worse)."""
        ...

    def to_dict(self) -> JSONDict:
        """JSON-safe description: what was selected and the coefficients."""
        ...


def _outcomes(time: ArrayLike, event: ArrayLike, n_rows: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``time`` (finite, >= 0) and ``event`` (0/1) arrays for ``n_rows`` training rows."""
    time = np.asarray(time, dtype=float).reshape(-1)
    event_raw = np.asarray(event).reshape(-1)
    if time.shape[0] != n_rows or event_raw.shape[0] != n_rows:
        raise InputError(
            f"{name}: {n_rows} feature rows but {time.shape[0]} times and {event_raw.shape[0]} "
            "event indicators; they must be aligned."
        )
    if n_rows < 2:
        raise InputError(f"{name}: needs at least 2 training cases, got {n_rows}.")
    if not np.all(np.isfinite(time)) or np.any(time < 0):
        raise InputError(f"{name}: follow-up times must be finite and >= 0.")
    try:
        event_float = event_raw.astype(float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: event indicators must be 0 or 1.") from exc
    if not np.all(np.isin(event_float, (0.0, 1.0))):
        raise InputError(f"{name}: event indicators must be 0 or 1.")
    events = event_float.astype(int)
    if events.sum() == 0:
        raise InputError(f"{name}: no events among the {n_rows} training cases; a Cox model cannot be fitted.")
    return time, events


def _frame(features: object, name: str) -> pd.DataFrame:
    if not isinstance(features, pd.DataFrame):
        raise InputError(f"{name}: features must be a pandas DataFrame, not {type(features).__name__}.")
    return features


def _values(frame: pd.DataFrame, columns: Sequence[str], name: str) -> np.ndarray:
    """``(n, len(columns))`` float array of ``columns`` (non-numbers refused, missing columns named)."""
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        more = f" and {len(absent) - 1} more" if len(absent) > 1 else ""
        raise InputError(f"{name}: the features have no column {absent[0]!r}{more}.")
    out = np.empty((len(frame), len(columns)), dtype=float)
    for j, column in enumerate(columns):
        try:
            out[:, j] = pd.to_numeric(frame[column], errors="raise").to_numpy(dtype=float)
        except (ValueError, TypeError) as exc:
            raise InputError(f"{name}: column {column!r} holds values that are not numbers.") from exc
    return out


def _with_case_id(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with a ``case_id`` column (taken from the index when it has none)."""
    if "case_id" in frame.columns:
        return frame
    return frame.assign(case_id=frame.index.astype(str))


def case_ids(features: pd.DataFrame) -> np.ndarray:
    """The case ids of a feature table's rows: its ``case_id`` column, else its index (as strings).

    Example:
        >>> case_ids(pd.DataFrame({"x": [1.0, 2.0]}, index=["P1", "P2"])).tolist()
        ['P1', 'P2']
    """
    ids = features["case_id"] if "case_id" in features.columns else pd.Series(features.index)
    return cast("np.ndarray", ids.astype(str).to_numpy())


def _fit_cox(
    design: pd.DataFrame, time: np.ndarray, event: np.ndarray, penalizer: float, l1_ratio: float, name: str
) -> CoxPHFitter:
    """A lifelines CoxPHFitter on ``design`` (Efron ties), convergence failures as one sentence."""
    from lifelines import CoxPHFitter
    from lifelines.exceptions import ConvergenceError

    data = design.assign(_time=time, _event=event)
    model = CoxPHFitter(penalizer=penalizer, l1_ratio=l1_ratio)
    try:
        model.fit(data, duration_col="_time", event_col="_event")
    except ConvergenceError as exc:
        raise InputError(
            f"{name}: the Cox fit on {design.shape[1]} column(s) and {len(design)} cases "
            f"({int(event.sum())} events) did not converge; try a larger penalizer."
        ) from exc
    return model


class _ScarCoxDict(TypedDict, total=False):
    """The JSON layout of :meth:`ScarCox.to_dict`, as :meth:`ScarCox.from_dict` reads it."""

    model: str
    name: str
    column: str
    mean: float
    coefficient: float
    hazard_ratio: float
    standard_error: float
    p_value: float
    n_train: int
    n_events: int


class _ClinicalCoxDict(TypedDict, total=False):
    """The JSON layout of :meth:`ClinicalCox.to_dict`, as :meth:`ClinicalCox.from_dict` reads it."""

    model: str
    name: str
    columns: list[str]
    means: list[float]
    coefficients: list[float]
    hazard_ratios: list[float]
    n_train: int
    n_events: int


class _RadiomicsCoxDict(TypedDict, total=False):
    """The JSON layout of :meth:`RadiomicsCox.to_dict`, as :meth:`RadiomicsCox.from_dict` reads it."""

    model: str
    name: str
    max_features: int
    penalizer: float | str
    penalizer_used: float | None
    cv_scores: dict[str, float]
    l1_ratio: float
    qc_metrics: bool
    impute: bool
    min_present: float
    correlation_threshold: float
    selection: str
    columns: list[str]
    means: list[float]
    stds: list[float]
    coefficients: list[float]
    score_statistics: list[float]
    skipped_correlated: list[str]
    n_candidates: int
    dropped_not_finite: int
    dropped_constant: int
    n_train: int
    n_events: int
    exclude: list[str]


class ScarCox:
    """Univariate Cox model on one feature-table column (the clinical scar-burden baseline).

    Example:
        >>> table = pd.DataFrame({"scar_percent": [0.0, 5.0, 12.0, 20.0, 31.0, 2.0]})
        >>> model = ScarCox().fit(table, np.array([9.0, 2.5, 3.0, 4.0, 1.0, 8.0]), np.array([0, 1, 1, 0, 1, 1]))
        >>> bool(model.predict_risk(pd.DataFrame({"scar_percent": [30.0]}))[0] > 0)
        True
    """

    def __init__(self, column: str = "scar_percent") -> None:
        if not isinstance(column, str) or not column:
            raise InputError("ScarCox: column must be a non-empty column name.")
        self.column = column
        self.name = "scar_cox" if column == "scar_percent" else f"cox_{column}"
        self.mean_: float | None = None
        self.coefficient_: float | None = None
        self.standard_error_: float | None = None
        self.p_value_: float | None = None
        self.n_train_ = 0
        self.n_events_ = 0

    def fit(self, features: pd.DataFrame, time: np.ndarray, event: np.ndarray) -> ScarCox:
        """Fit ``h(t|x) = h0(t) exp(beta * x)`` on the training rows; refuses NaN in ``column``."""
        frame = _frame(features, self.name)
        time, event = _outcomes(time, event, len(frame), self.name)
        x = _values(frame, [self.column], self.name)[:, 0]
        bad = ~np.isfinite(x)
        if bad.any():
            raise InputError(
                f"{self.name}: column {self.column!r} is missing or not finite for {int(bad.sum())} "
                f"of the {len(x)} training cases."
            )
        if np.std(x) <= NEAR_ZERO_SD * max(1.0, abs(float(np.mean(x)))):
            raise InputError(f"{self.name}: column {self.column!r} is constant over the {len(x)} training cases.")
        model = _fit_cox(pd.DataFrame({self.column: x}), time, event, 0.0, 0.0, self.name)
        summary = model.summary.loc[self.column]
        self.mean_ = float(np.mean(x))
        self.coefficient_ = float(summary["coef"])
        self.standard_error_ = float(summary["se(coef)"])
        self.p_value_ = float(summary["p"])
        self.n_train_, self.n_events_ = len(x), int(event.sum())
        return self

    def predict_risk(self, features: pd.DataFrame) -> np.ndarray:
        """``beta * (x - training mean)`` for each row; NaN in ``column`` is refused."""
        if self.coefficient_ is None or self.mean_ is None:
            raise InputError(f"{self.name}: not fitted; call fit() first.")
        frame = _frame(features, self.name)
        x = _values(frame, [self.column], self.name)[:, 0]
        bad = ~np.isfinite(x)
        if bad.any():
            raise InputError(
                f"{self.name}: column {self.column!r} is missing or not finite for {int(bad.sum())} "
                f"of the {len(x)} cases to predict."
            )
        return self.coefficient_ * (x - self.mean_)

    def to_dict(self) -> JSONDict:
        """JSON-safe description (column, coefficient, hazard ratio per unit, SE, p, training mean)."""
        if self.coefficient_ is None:
            raise InputError(f"{self.name}: not fitted; call fit() first.")
        return {
            "model": "ScarCox",
            "name": self.name,
            "column": self.column,
            "mean": self.mean_,
            "coefficient": self.coefficient_,
            "hazard_ratio": math.exp(self.coefficient_),
            "standard_error": self.standard_error_,
            "p_value": self.p_value_,
            "n_train": self.n_train_,
            "n_events": self.n_events_,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> ScarCox:
        """Inverse of ``to_dict`` (a fitted model that predicts without refitting)."""
        data = cast("_ScarCoxDict", data)  # to_dict's layout; a key or value amiss fails below
        try:
            model = cls(str(data["column"]))
            model.name = str(data["name"])
            model.mean_, model.coefficient_ = float(data["mean"]), float(data["coefficient"])
            model.standard_error_, model.p_value_ = float(data["standard_error"]), float(data["p_value"])
            model.n_train_, model.n_events_ = int(data["n_train"]), int(data["n_events"])
        except InputError:
            raise  # the constructor's own sentence
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"ScarCox: not a ScarCox description ({exc!r}).") from exc
        return model


class ClinicalCox:
    """Cox model on a few named feature-table columns (default: scar % and grey-zone %), unpenalised.

    Example:
        >>> table = pd.DataFrame({"scar_percent": [0.0, 5.0, 12.0, 20.0, 31.0, 2.0, 8.0, 15.0],
        ...                       "greyzone_percent": [1.0, 6.0, 3.0, 9.0, 4.0, 0.5, 7.0, 2.0]})
        >>> time = np.array([9.0, 2.5, 3.0, 1.0, 1.5, 8.0, 2.0, 4.0]); event = np.array([0, 1, 1, 1, 1, 0, 1, 0])
        >>> model = ClinicalCox().fit(table, time, event)
        >>> model.name, len(model.predict_risk(table))
        ('scar_grey_cox', 8)
    """

    def __init__(
        self, columns: Sequence[str] = ("scar_percent", "greyzone_percent"), name: str = "scar_grey_cox"
    ) -> None:
        if isinstance(columns, str) or not len(columns):
            raise InputError("ClinicalCox: columns must be a non-empty list of column names.")
        self.columns = [str(c) for c in columns]
        self.name = name
        self.means_: np.ndarray | None = None
        self.coefficients_: np.ndarray | None = None
        self.n_train_ = 0
        self.n_events_ = 0

    def _matrix(self, features: pd.DataFrame, which: str) -> np.ndarray:
        x = _values(_frame(features, self.name), self.columns, self.name)
        bad = ~np.isfinite(x)
        if bad.any():
            column = self.columns[int(np.argmax(bad.any(axis=0)))]
            raise InputError(
                f"{self.name}: column {column!r} is missing or not finite for "
                f"{int(bad.any(axis=1).sum())} of the {len(x)} {which} cases."
            )
        return x

    def fit(self, features: pd.DataFrame, time: np.ndarray, event: np.ndarray) -> ClinicalCox:
        """Fit ``h(t|x) = h0(t) exp(beta . x)`` on the training rows."""
        x = self._matrix(features, "training")
        time, event = _outcomes(time, event, len(x), self.name)
        constant = [
            c for c, sd, m in zip(self.columns, x.std(axis=0), x.mean(axis=0)) if sd <= NEAR_ZERO_SD * max(1.0, abs(m))
        ]
        if constant:
            raise InputError(f"{self.name}: column {constant[0]!r} is constant over the {len(x)} training cases.")
        model = _fit_cox(pd.DataFrame(x, columns=self.columns), time, event, 0.0, 0.0, self.name)
        self.means_ = x.mean(axis=0)
        self.coefficients_ = model.params_.loc[self.columns].to_numpy(dtype=float)
        self.n_train_, self.n_events_ = len(x), int(event.sum())
        return self

    def predict_risk(self, features: pd.DataFrame) -> np.ndarray:
        """``beta . (x - training mean)`` for each row."""
        if self.coefficients_ is None or self.means_ is None:
            raise InputError(f"{self.name}: not fitted; call fit() first.")
        return cast("np.ndarray", (self._matrix(features, "") - self.means_) @ self.coefficients_)

    def to_dict(self) -> JSONDict:
        """JSON-safe description (columns, training means, coefficients, hazard ratios per unit)."""
        if self.coefficients_ is None or self.means_ is None:
            raise InputError(f"{self.name}: not fitted; call fit() first.")
        return {
            "model": "ClinicalCox",
            "name": self.name,
            "columns": list(self.columns),
            "means": [float(v) for v in self.means_],
            "coefficients": [float(v) for v in self.coefficients_],
            "hazard_ratios": [math.exp(v) for v in self.coefficients_],
            "n_train": self.n_train_,
            "n_events": self.n_events_,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> ClinicalCox:
        """Inverse of ``to_dict``."""
        data = cast("_ClinicalCoxDict", data)  # to_dict's layout; a key or value amiss fails below
        try:
            model = cls([str(c) for c in data["columns"]], str(data["name"]))
            model.means_ = np.asarray(data["means"], dtype=float)
            model.coefficients_ = np.asarray(data["coefficients"], dtype=float)
            model.n_train_, model.n_events_ = int(data["n_train"]), int(data["n_events"])
        except InputError:
            raise  # the constructor's own sentence
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"ClinicalCox: not a ClinicalCox description ({exc!r}).") from exc
        if not len(model.means_) == len(model.coefficients_) == len(model.columns):
            raise InputError("ClinicalCox: columns, means and coefficients differ in length.")
        return model


def score_statistics(x: np.ndarray, time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """Univariate Cox score-test chi-square at beta = 0 (``U^2 / I``, Breslow ties) of every column of ``x``.

    ``U = sum over events (x_i - mean of x over the risk set)``, ``I`` the sum of the risk-set
    variances; large = strongly associated with the hazard (either sign). O(n p) with cumulative sums.

    Example:
        >>> t = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
        >>> x = np.stack([-t, np.array([0.3, -1.0, 0.8, 0.1, -0.5, 0.2])], axis=1)
        >>> stats = score_statistics(x, t, np.ones(6, dtype=int))
        >>> bool(stats[0] > stats[1])
        True
    """
    x = np.asarray(x, dtype=float)
    time = np.asarray(time, dtype=float)
    event = np.asarray(event).astype(bool)
    order = np.argsort(time, kind="stable")
    t_sorted, x_sorted, e_sorted = time[order], x[order], event[order]
    n = len(t_sorted)
    # risk set of the k-th sorted case: every case from the first one with the same time onwards
    first = np.searchsorted(t_sorted, t_sorted, side="left")
    at_risk = (n - np.arange(n))[first]
    s1 = np.cumsum(x_sorted[::-1], axis=0)[::-1][first]
    s2 = np.cumsum((x_sorted**2)[::-1], axis=0)[::-1][first]
    mean = s1 / at_risk[:, None]
    variance = np.maximum(s2 / at_risk[:, None] - mean**2, 0.0)
    u = (x_sorted - mean)[e_sorted].sum(axis=0)
    info = variance[e_sorted].sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        stats = np.where(info > 0, u**2 / info, 0.0)
    return stats


PENALTY_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
"""Penalties ``RadiomicsCox(penalizer="cv")`` chooses from by inner cross-validation."""


class RadiomicsCox:
    """Penalised Cox model on radiomics features, selected on the training rows only.

    ``columns``: the candidate columns (default: ``feature_columns(table, qc_metrics=qc_metrics)`` of
    the training rows). ``penalizer``: a number, or ``"cv"`` to choose it from ``PENALTY_GRID`` by
    ``inner_folds``-fold cross-validation on the training rows (Harrell's C). ``exclude``: columns never
    candidates (e.g. the scar metrics a fusion head takes on their own). ``impute``: keep features
    that are not measurable in some training rows (training-mean imputation plus ``ROI__present``
    candidates); otherwise such columns are dropped. ``min_present``: the share of training rows a
    feature must be measured in. After ``fit``: ``selected_`` (in rank order; may include
    ``ROI__present``), ``means_``, ``stds_``, ``coefficients_`` (per training-SD), ``scores_``,
    ``penalizer_`` (the one used) and ``cv_scores_`` (penalty -> inner-CV C); after ``predict_risk``:
    ``imputed_``, the number of rows with a non-measurable selected value.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> names = [f"scar__original_firstorder_F{i}" for i in range(3)]
        >>> table = pd.DataFrame(rng.normal(size=(60, 3)), columns=names)
        >>> time = rng.exponential(np.exp(-table.iloc[:, 1].to_numpy()))
        >>> model = RadiomicsCox(max_features=1).fit(table, time, np.ones(60, dtype=int))
        >>> model.selected_
        ['scar__original_firstorder_F1']
    """

    name = "radiomics_cox"

    def __init__(
        self,
        max_features: int = 10,
        penalizer: float | str = 0.1,
        l1_ratio: float = 0.0,
        correlation_threshold: float = 0.9,
        columns: Sequence[str] | None = None,
        qc_metrics: bool = False,
        impute: bool = True,
        min_present: float = 0.2,
        inner_folds: int = 5,
        seed: int = 0,
        exclude: Sequence[str] = (),
    ) -> None:
        if isinstance(max_features, bool) or not isinstance(max_features, (int, np.integer)) or max_features < 1:
            raise InputError(f"RadiomicsCox: max_features must be an integer >= 1, not {max_features!r}.")
        if penalizer != "cv" and not (
            isinstance(penalizer, (int, float)) and math.isfinite(penalizer) and penalizer >= 0
        ):
            raise InputError(f"RadiomicsCox: penalizer must be a finite number >= 0 or 'cv', not {penalizer!r}.")
        if not (isinstance(l1_ratio, (int, float)) and 0.0 <= l1_ratio <= 1.0):
            raise InputError(f"RadiomicsCox: l1_ratio must lie in [0, 1], not {l1_ratio!r}.")
        if not (isinstance(correlation_threshold, (int, float)) and 0.0 < correlation_threshold <= 1.0):
            raise InputError(f"RadiomicsCox: correlation_threshold must lie in (0, 1], not {correlation_threshold!r}.")
        if columns is not None and (isinstance(columns, str) or not len(columns)):
            raise InputError("RadiomicsCox: columns must be a non-empty list of column names.")
        if not 0.0 < min_present <= 1.0:
            raise InputError(f"RadiomicsCox: min_present must lie in (0, 1], not {min_present!r}.")
        if not (isinstance(inner_folds, int) and inner_folds >= 2):
            raise InputError(f"RadiomicsCox: inner_folds must be an integer >= 2, not {inner_folds!r}.")
        self.max_features = int(max_features)
        self.penalizer: float | str = penalizer if penalizer == "cv" else float(penalizer)
        self.l1_ratio = float(l1_ratio)
        self.correlation_threshold = float(correlation_threshold)
        self.columns = None if columns is None else [str(c) for c in columns]
        self.qc_metrics = bool(qc_metrics)
        self.impute = bool(impute)
        self.min_present = float(min_present)
        self.inner_folds = int(inner_folds)
        self.seed = int(seed)
        self.exclude = tuple(str(c) for c in exclude)
        self.selected_: list[str] | None = None
        self.means_: np.ndarray | None = None
        self.stds_: np.ndarray | None = None
        self.coefficients_: np.ndarray | None = None
        self.scores_: np.ndarray | None = None
        self.penalizer_: float | None = None
        self.cv_scores_: dict[str, float] = {}
        self.imputed_ = 0
        self.n_train_ = 0
        self.n_events_ = 0
        self.n_candidates_ = 0
        self.dropped_not_finite_ = 0
        self.dropped_constant_ = 0
        self.skipped_correlated_: list[str] = []

    def _candidates(self, frame: pd.DataFrame) -> list[str]:
        if self.columns is not None:
            return list(self.columns)
        from lgerisk.data.features import feature_columns

        candidates = [
            c for c in feature_columns(_with_case_id(frame), qc_metrics=self.qc_metrics) if c not in self.exclude
        ]
        if not candidates:
            raise InputError(
                f"{self.name}: the training rows have no varying radiomics column (named ROI__imagetype_class_Feature)."
            )
        return candidates

    @staticmethod
    def _matrix(frame: pd.DataFrame, columns: Sequence[str], name: str) -> np.ndarray:
        """Values of ``columns``; ``ROI__present`` columns computed from the ROI's status or features."""
        from lgerisk.data.features import PRESENT_SUFFIX, roi_present

        plain = [c for c in columns if not c.endswith(PRESENT_SUFFIX)]
        values = dict(zip(plain, _values(frame, plain, name).T)) if plain else {}
        out = np.empty((len(frame), len(columns)), dtype=float)
        for j, column in enumerate(columns):
            roi = column[: -len(PRESENT_SUFFIX)]
            out[:, j] = roi_present(frame, roi, name=name) if column.endswith(PRESENT_SUFFIX) else values[column]
        return out

    def _design(self, frame: pd.DataFrame, name: str) -> tuple[list[str], np.ndarray]:
        """Candidate columns (with presence indicators for partly measured ROIs) and their values."""
        from lgerisk.data.features import PRESENT_SUFFIX, roi_of

        candidates = self._candidates(frame)
        x = _values(frame, candidates, name)
        if self.impute:
            partly = sorted(
                {
                    roi
                    for c, col in zip(candidates, x.T)
                    if (roi := roi_of(c)) is not None and not np.isfinite(col).all()
                }
            )
            extra = [f"{roi}{PRESENT_SUFFIX}" for roi in partly if f"{roi}{PRESENT_SUFFIX}" not in candidates]
            if extra:
                candidates = candidates + extra
                x = np.hstack([x, self._matrix(frame, extra, name)])
        return candidates, x

    def fit(self, features: pd.DataFrame, time: np.ndarray, event: np.ndarray) -> RadiomicsCox:
        """Select columns and fit the penalised Cox model, all on these (training) rows."""
        frame = _frame(features, self.name)
        time, event = _outcomes(time, event, len(frame), self.name)
        # dtypes from the training rows alone (a text cell in a test row must not change what is a candidate)
        frame = frame.infer_objects()
        candidates, x = self._design(frame, self.name)
        measured = np.isfinite(x)
        share = measured.mean(axis=0)
        usable_rows = share >= (self.min_present if self.impute else 1.0)
        with np.errstate(invalid="ignore"):
            means = np.array([float(x[measured[:, j], j].mean()) if usable_rows[j] else 0.0 for j in range(x.shape[1])])
            stds = np.array(
                [
                    float(x[measured[:, j], j].std(ddof=1)) if usable_rows[j] and measured[:, j].sum() > 1 else 0.0
                    for j in range(x.shape[1])
                ]
            )
        varying = usable_rows & (stds > NEAR_ZERO_SD * np.maximum(1.0, np.abs(means)))
        self.n_candidates_ = len(candidates)
        self.dropped_not_finite_ = int((~usable_rows).sum())
        self.dropped_constant_ = int((usable_rows & ~varying).sum())
        usable = np.flatnonzero(varying)
        if not usable.size:
            raise InputError(
                f"{self.name}: none of the {len(candidates)} candidate columns is measured and varying "
                f"over the {len(frame)} training cases."
            )
        z = np.where(measured[:, usable], (x[:, usable] - means[usable]) / stds[usable], 0.0)
        stats = score_statistics(z, time, event)
        ranked = np.argsort(-stats, kind="stable")
        kept: list[int] = []
        skipped: list[str] = []
        n = len(z)
        for j in ranked:
            if len(kept) >= self.max_features:
                break
            if kept:
                r = z[:, kept].T @ z[:, j] / (n - 1)
                if np.max(np.abs(r)) > self.correlation_threshold:
                    skipped.append(candidates[usable[j]])
                    continue
            kept.append(int(j))
        names = [candidates[usable[j]] for j in kept]
        design = pd.DataFrame(z[:, kept], columns=names)
        penalizer = self._choose_penalizer(design, time, event) if self.penalizer == "cv" else float(self.penalizer)
        model = _fit_cox(design, time, event, penalizer, self.l1_ratio, self.name)
        self.penalizer_ = penalizer
        self.selected_ = names
        self.means_ = means[usable[kept]]
        self.stds_ = stds[usable[kept]]
        self.coefficients_ = model.params_.loc[names].to_numpy(dtype=float)
        self.scores_ = stats[kept]
        self.skipped_correlated_ = skipped
        self.n_train_, self.n_events_ = n, int(event.sum())
        return self

    def _choose_penalizer(self, design: pd.DataFrame, time: np.ndarray, event: np.ndarray) -> float:
        """The penalty of ``PENALTY_GRID`` with the best inner-CV Harrell's C on these training rows
        (``lgerisk.evaluation.cox.choose_penalizer``: the same penalised likelihood as lifelines').

        The selected columns are fixed (chosen on all training rows), so the inner CV compares penalties only.
        """
        from lgerisk.evaluation.cox import choose_penalizer

        penalizer, self.cv_scores_ = choose_penalizer(
            design.to_numpy(dtype=float), time, event, PENALTY_GRID, self.inner_folds, self.seed
        )
        return penalizer

    def predict_risk(self, features: pd.DataFrame) -> np.ndarray:
        """Standardised selected columns times the coefficients; non-measurable values take the training mean."""
        if self.selected_ is None or self.means_ is None or self.stds_ is None or self.coefficients_ is None:
            raise InputError(f"{self.name}: not fitted; call fit() first.")
        frame = _frame(features, self.name)
        x = self._matrix(frame, self.selected_, self.name)
        bad = ~np.isfinite(x)
        self.imputed_ = int(bad.any(axis=1).sum())
        x = np.where(bad, self.means_, x)
        z = (x - self.means_) / self.stds_
        return cast("np.ndarray", z @ self.coefficients_)

    def to_dict(self) -> JSONDict:
        """JSON-safe description: settings, selected columns with mean, SD, coefficient, score."""
        if self.selected_ is None or self.means_ is None or self.stds_ is None or self.coefficients_ is None:
            raise InputError(f"{self.name}: not fitted; call fit() first.")
        scores = self.scores_ if self.scores_ is not None else np.full(len(self.selected_), np.nan)
        return {
            "model": "RadiomicsCox",
            "name": self.name,
            "max_features": self.max_features,
            "penalizer": self.penalizer,
            "penalizer_used": self.penalizer_,
            "cv_scores": dict(self.cv_scores_),
            "l1_ratio": self.l1_ratio,
            "qc_metrics": self.qc_metrics,
            "impute": self.impute,
            "min_present": self.min_present,
            "correlation_threshold": self.correlation_threshold,
            "selection": "univariate Cox score test (U^2/I at beta=0) on training-standardised columns "
            "(non-measurable values imputed with the training mean, ROI__present indicators), "
            "greedy skip of |r| > correlation_threshold",
            "columns": list(self.selected_),
            "means": [float(v) for v in self.means_],
            "stds": [float(v) for v in self.stds_],
            "coefficients": [float(v) for v in self.coefficients_],
            "score_statistics": [float(v) for v in scores],
            "skipped_correlated": list(self.skipped_correlated_),
            "n_candidates": self.n_candidates_,
            "dropped_not_finite": self.dropped_not_finite_,
            "dropped_constant": self.dropped_constant_,
            "n_train": self.n_train_,
            "n_events": self.n_events_,
            **({"exclude": list(self.exclude)} if self.exclude else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> RadiomicsCox:
        """Inverse of ``to_dict`` (a fitted model that predicts without refitting)."""
        data = cast("_RadiomicsCoxDict", data)  # to_dict's layout; a key or value amiss fails below
        try:
            penalizer = data["penalizer"] if data["penalizer"] == "cv" else float(data["penalizer"])
            model = cls(
                int(data["max_features"]),
                penalizer,
                float(data["l1_ratio"]),
                float(data["correlation_threshold"]),
                qc_metrics=bool(data.get("qc_metrics", False)),
                impute=bool(data.get("impute", False)),
                min_present=float(data.get("min_present", 1.0)),
                exclude=tuple(str(c) for c in data.get("exclude") or ()),
            )
            model.name = str(data["name"])
            used = data.get("penalizer_used")
            model.penalizer_ = None if used is None else float(used)
            model.cv_scores_ = {str(k): float(v) for k, v in (data.get("cv_scores") or {}).items()}
            model.selected_ = [str(c) for c in data["columns"]]
            model.means_ = np.asarray(data["means"], dtype=float)
            model.stds_ = np.asarray(data["stds"], dtype=float)
            model.coefficients_ = np.asarray(data["coefficients"], dtype=float)
            model.scores_ = np.asarray(data["score_statistics"], dtype=float)
            model.skipped_correlated_ = [str(c) for c in data["skipped_correlated"]]
            model.n_candidates_, model.n_train_ = int(data["n_candidates"]), int(data["n_train"])
            model.n_events_ = int(data["n_events"])
            model.dropped_not_finite_ = int(data["dropped_not_finite"])
            model.dropped_constant_ = int(data["dropped_constant"])
        except InputError:
            raise  # the constructor's own sentence
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"RadiomicsCox: not a RadiomicsCox description ({exc!r}).") from exc
        n = len(model.selected_)
        if not (len(model.means_) == len(model.stds_) == len(model.coefficients_) == n) or np.any(model.stds_ <= 0):
            raise InputError("RadiomicsCox: columns, means, stds and coefficients differ in length, or an SD <= 0.")
        return model


def _positions(ids: np.ndarray, wanted: Sequence[str], which: str) -> np.ndarray:
    lookup: dict[str, int] = {}
    for i, case in enumerate(ids):
        if case in lookup:
            raise InputError(f"features: case id {case!r} appears more than once.")
        lookup[case] = i
    wanted = [str(c) for c in wanted]
    missing = [c for c in wanted if c not in lookup]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise InputError(f"features: no row for {which} case {missing[0]!r}{more}.")
    if len(set(wanted)) != len(wanted):
        raise InputError(f"{which} cases: a case id is listed more than once.")
    return np.array([lookup[c] for c in wanted], dtype=int)


def fit_predict(
    model: RiskModel,
    features: pd.DataFrame,
    time: np.ndarray,
    event: np.ndarray,
    train_ids: Sequence[str],
    test_ids: Sequence[str],
) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``model`` on the ``train_ids`` rows only; return (risk of train rows, risk of test rows).

    ``time`` and ``event`` are aligned with the rows of ``features``; cases are found by its
    ``case_id`` column, else its index. A case in both lists is refused (it would leak).

    Example:
        >>> risk_train, risk_test = fit_predict(RadiomicsCox(), table, time, event, train, test)  # doctest: +SKIP
    """
    frame = _frame(features, getattr(model, "name", "model"))
    time = np.asarray(time)
    event = np.asarray(event)
    if len(time) != len(frame) or len(event) != len(frame):
        raise InputError(
            f"features: {len(frame)} rows but {len(time)} times and {len(event)} event indicators; "
            "they must be aligned."
        )
    ids = case_ids(frame)
    train = _positions(ids, train_ids, "training")
    test = _positions(ids, test_ids, "test")
    overlap = np.intersect1d(train, test)
    if overlap.size:
        raise InputError(f"case {ids[overlap[0]]!r} is in both the training and the test cases.")
    train_rows = frame.iloc[train]
    model.fit(train_rows, time[train], event[train])
    return model.predict_risk(train_rows), model.predict_risk(frame.iloc[test])
