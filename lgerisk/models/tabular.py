"""The tabular inputs of a risk model's head and their standardisation: one object, fitted on the
training cases by ``lgerisk finetune``, saved with the model, and applied unchanged by ``predict``.

Inputs, in this order after the image embedding: selected radiomics features (a value a scan cannot
measure becomes the training mean, i.e. 0 after standardisation), the scar metrics (``--with-scar``),
clinical covariates.

Example:
    >>> import numpy as np
    >>> scaling = TabularScaling(scar_metrics=("scar_percent",), scar_metrics_mean=(10.0,), scar_metrics_scale=(5.0,))
    >>> scaling.transform(scar=np.array([[20.0]])).tolist()
    [[2.0]]
    >>> TabularScaling.from_dict(scaling.to_dict()) == scaling
    True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, SupportsFloat, TypedDict, cast

import numpy as np

from lgerisk.types import JSONDict

if TYPE_CHECKING:
    from typing import Unpack

    import pandas as pd
    from numpy.typing import ArrayLike, NDArray

__all__ = ["FitInputs", "FusionFields", "TabularScaling", "radiomics_values"]

_MIN_SCALE = 1e-8


class FusionFields(TypedDict, total=False):
    """How a fusion head joined radiomics and the embedding (:meth:`TabularScaling.with_penalizer`)."""

    fusion: str
    embedding_penalty_factor: float
    radiomics_coefficient: float


class FitInputs(TypedDict, total=False):
    """The keyword arguments of :meth:`TabularScaling.fit`."""

    radiomics: tuple[str, ...]
    radiomics_values: ArrayLike | None
    scar_metrics: tuple[str, ...]
    scar_values: ArrayLike | None
    covariates: tuple[str, ...]
    covariate_values: ArrayLike | None
    scar_methods: tuple[str, ...] | None


class _ScalingFields(FusionFields, total=False):
    """The keyword arguments of :class:`TabularScaling`."""

    radiomics: tuple[str, ...]
    radiomics_mean: tuple[float, ...]
    radiomics_scale: tuple[float, ...]
    covariates: tuple[str, ...]
    covariate_mean: tuple[float, ...]
    covariate_scale: tuple[float, ...]
    scar_metrics: tuple[str, ...]
    scar_metrics_mean: tuple[float, ...]
    scar_metrics_scale: tuple[float, ...]
    scar_methods: tuple[str, ...] | None
    head_penalizer: float | None


def radiomics_values(rows: pd.DataFrame, columns: tuple[str, ...]) -> NDArray[np.float64]:
    """``(n, len(columns))`` float values of ``columns`` in a feature table's ``rows`` (a DataFrame); an
    ``ROI__present`` column the table does not hold is computed from that ROI's status or features.

    Example:
        >>> import pandas as pd
        >>> rows = pd.DataFrame({"scar__original_firstorder_Mean": [2.0, np.nan]})
        >>> radiomics_values(rows, ("scar__original_firstorder_Mean", "scar__present")).tolist()
        [[2.0, 1.0], [nan, 0.0]]
    """
    from lgerisk.data.features import PRESENT_SUFFIX, roi_present

    out = np.empty((len(rows), len(columns)), dtype=float)
    for j, column in enumerate(columns):
        if column not in rows.columns and column.endswith(PRESENT_SUFFIX):
            out[:, j] = roi_present(rows, column[: -len(PRESENT_SUFFIX)])
        else:
            out[:, j] = rows[column].to_numpy(float)
    return out


def _scale(values: NDArray[np.float64]) -> tuple[float, ...]:
    return tuple(float(v) for v in np.maximum(values, _MIN_SCALE))


@dataclass(frozen=True)
class TabularScaling:
    """Names, means and scales of a head's tabular inputs (radiomics, scar metrics, covariates).

    Attributes:
        radiomics: selected radiomics feature columns; ``radiomics_mean``/``radiomics_scale`` per column.
        scar_metrics: scar metric columns (``scar_percent``, ``greyzone_percent``) the head takes, if any.
        scar_methods: how the training cases' scar % was measured (predict flags a scan measured otherwise).
        covariates: clinical covariate columns, with ``covariate_mean``/``covariate_scale``.
        head_penalizer: the head's L2 penalty (chosen by inner CV), recorded for the card.
        fusion: how radiomics and the embedding were joined (``group`` or ``stacked``; ``None``: no fusion).
        embedding_penalty_factor: ``group``: the embedding's penalty relative to the radiomics block's.
        radiomics_coefficient: ``stacked``: the coefficient of the radiomics Cox risk in the head.
    """

    radiomics: tuple[str, ...] = ()
    radiomics_mean: tuple[float, ...] = ()
    radiomics_scale: tuple[float, ...] = ()
    covariates: tuple[str, ...] = ()
    covariate_mean: tuple[float, ...] = ()
    covariate_scale: tuple[float, ...] = ()
    scar_metrics: tuple[str, ...] = ()
    scar_metrics_mean: tuple[float, ...] = ()
    scar_metrics_scale: tuple[float, ...] = ()
    scar_methods: tuple[str, ...] | None = None
    head_penalizer: float | None = None
    fusion: str | None = None
    embedding_penalty_factor: float | None = None
    radiomics_coefficient: float | None = None

    def __post_init__(self) -> None:
        for names, mean, scale in (
            (self.radiomics, self.radiomics_mean, self.radiomics_scale),
            (self.covariates, self.covariate_mean, self.covariate_scale),
            (self.scar_metrics, self.scar_metrics_mean, self.scar_metrics_scale),
        ):
            if not len(names) == len(mean) == len(scale):
                raise ValueError(f"tabular scaling of {list(names)}: {len(mean)} means and {len(scale)} scales.")

    @classmethod
    def fit(
        cls,
        radiomics: tuple[str, ...] = (),
        radiomics_values: ArrayLike | None = None,
        scar_metrics: tuple[str, ...] = (),
        scar_values: ArrayLike | None = None,
        covariates: tuple[str, ...] = (),
        covariate_values: ArrayLike | None = None,
        scar_methods: tuple[str, ...] | None = None,
    ) -> TabularScaling:
        """Means and scales from the training rows (radiomics ignore missing values; scales floored at 1e-8)."""
        fields: dict[str, object] = {"scar_methods": scar_methods}
        if radiomics:
            values = np.asarray(radiomics_values, float)
            fields.update(
                radiomics=tuple(radiomics),
                radiomics_mean=tuple(float(v) for v in np.nanmean(values, 0)),
                radiomics_scale=_scale(np.nanstd(values, axis=0)),
            )
        if scar_metrics:
            values = np.asarray(scar_values, float)
            fields.update(
                scar_metrics=tuple(scar_metrics),
                scar_metrics_mean=tuple(float(v) for v in values.mean(0)),
                scar_metrics_scale=_scale(values.std(axis=0)),
            )
        if covariates:
            values = np.asarray(covariate_values, float)
            fields.update(
                covariates=tuple(covariates),
                covariate_mean=tuple(float(v) for v in values.mean(0)),
                covariate_scale=_scale(values.std(axis=0)),
            )
        return cls(**cast("_ScalingFields", fields))

    @property
    def n_inputs(self) -> int:
        """Number of tabular inputs of the head."""
        return len(self.radiomics) + len(self.scar_metrics) + len(self.covariates)

    def with_penalizer(self, penalizer: float, **fusion: Unpack[FusionFields]) -> TabularScaling:
        """A copy recording the head's penalty (and, for a fusion head, ``fusion=``,
        ``embedding_penalty_factor=`` or ``radiomics_coefficient=``)."""
        return TabularScaling(**{**self.__dict__, "head_penalizer": float(penalizer), **fusion})

    def transform(
        self, radiomics: ArrayLike | None = None, scar: ArrayLike | None = None, covariates: ArrayLike | None = None
    ) -> NDArray[np.float32]:
        """The standardised ``(n, n_inputs)`` float32 matrix from raw ``(n, k)`` values of each part (a part
        the scaling has no columns for is ignored; a missing radiomics value -> 0, the training mean)."""
        parts, rows = [], None
        for names, values, mean, scale, fill in (
            (self.radiomics, radiomics, self.radiomics_mean, self.radiomics_scale, True),
            (self.scar_metrics, scar, self.scar_metrics_mean, self.scar_metrics_scale, False),
            (self.covariates, covariates, self.covariate_mean, self.covariate_scale, False),
        ):
            if not names:
                continue
            matrix = np.asarray(values, float).reshape(-1, len(names))
            rows = matrix.shape[0]
            standard = (matrix - np.asarray(mean)) / np.asarray(scale)
            parts.append(np.where(np.isfinite(standard), standard, 0.0) if fill else standard)
        if not parts:
            for values in (radiomics, scar, covariates):
                if values is not None:
                    rows = np.asarray(values).shape[0]
                    break
            return np.zeros((rows or 0, 0), np.float32)
        return np.hstack(parts).astype(np.float32)

    def matrix(self, features: pd.DataFrame, covariates: pd.DataFrame, ids: list[str]) -> NDArray[np.float32]:
        """:meth:`transform` of the rows ``ids`` of a feature table (radiomics, scar metrics) and a covariate
        table (pandas DataFrames indexed by case id)."""
        ids = list(ids)
        pick = features.reindex(ids)
        return (
            self.transform(
                radiomics=radiomics_values(pick, self.radiomics) if self.radiomics else None,
                scar=pick[list(self.scar_metrics)].to_numpy(float) if self.scar_metrics else None,
                covariates=covariates.reindex(ids)[list(self.covariates)].to_numpy(float) if self.covariates else None,
            )
            if self.n_inputs
            else np.zeros((len(ids), 0), np.float32)
        )

    def to_dict(self) -> JSONDict:
        """Plain JSON-able dict (the layout model files and cards have always stored)."""
        out: JSONDict = {
            "radiomics": list(self.radiomics),
            "radiomics_mean": list(self.radiomics_mean),
            "radiomics_scale": list(self.radiomics_scale),
            "covariates": list(self.covariates),
            "covariate_mean": list(self.covariate_mean),
            "covariate_scale": list(self.covariate_scale),
        }
        if self.scar_metrics:
            out.update(
                scar_metrics=list(self.scar_metrics),
                scar_metrics_mean=list(self.scar_metrics_mean),
                scar_metrics_scale=list(self.scar_metrics_scale),
            )
        if self.scar_methods is not None:
            out["scar_methods"] = list(self.scar_methods)
        if self.head_penalizer is not None:
            out["head_penalizer"] = self.head_penalizer
        for key in ("fusion", "embedding_penalty_factor", "radiomics_coefficient"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> TabularScaling:
        """Inverse of :meth:`to_dict` (unknown keys refused)."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown tabular scaling field(s): {', '.join(unknown)}")
        # a stored record (JSON): each value is narrowed to what its field holds as it is converted
        values: dict[str, object] = {}
        for key, value in data.items():
            if key in ("head_penalizer", "embedding_penalty_factor", "radiomics_coefficient"):
                values[key] = None if value is None else float(cast("SupportsFloat", value))
            elif key == "fusion":
                values[key] = None if value is None else str(value)
            elif key == "scar_methods":
                values[key] = None if value is None else tuple(str(v) for v in cast("Iterable[object]", value))
            elif key in ("radiomics", "covariates", "scar_metrics"):
                values[key] = tuple(str(v) for v in cast("Iterable[object]", value))
            else:
                values[key] = tuple(float(v) for v in cast("Iterable[SupportsFloat]", value))
        return cls(**cast("_ScalingFields", values))
