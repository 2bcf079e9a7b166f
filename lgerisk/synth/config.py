"""The settings of a synthetic cohort (:class:`SynthConfig`): a case depends only on these and its index."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from lgerisk.errors import InputError
from lgerisk.synth.hazard import (
    DEFAULT_HAZARD_VERSION,
    HAZARD_VERSIONS,
    HazardModel,
    hazard_model,
)

if TYPE_CHECKING:  # pragma: no cover
    from lgerisk.types import JSONDict


@dataclass(frozen=True)
class SynthConfig:
    """Settings of a synthetic cohort; a case depends only on these and its index.

    ``hazard_version`` picks the outcome model and what goes with it
    (:data:`lgerisk.synth.hazard.HAZARD_VERSIONS`): 2 (default) adds the version-2 scar variation
    (border-zone extent, wall thinning, conducting channels), draws the clinical covariates apart from
    the scar and uses :data:`lgerisk.synth.hazard.HAZARD_TERMS_V2`; 1 is generator 1.0 exactly.
    ``hazard`` (``None``: the version's :func:`lgerisk.synth.hazard.hazard_model`) may replace the
    outcome model alone. The priors the cases are drawn from are :data:`lgerisk.synth.priors.PRIORS`.

    Example:
        >>> SynthConfig(n_cases=4, seed=1, small=True).to_dict()["n_cases"]
        4
    """

    n_cases: int = 32  # cases in a cohort (synth-0000 ...)
    seed: int = 0  # case k draws from np.random.default_rng([seed, k])
    small: bool = False  # small matrices and few slices (PRIORS.acquisition's *_small ranges)
    supersample_xy: int = 2  # fine-grid samples per output pixel along x and y (partial volume), 1-4
    supersample_z: int = 4  # fine-grid samples through the slice thickness, 1-8
    p_scar_free: float = 0.30  # probability of a scar-free case
    p_ischemic: float = 0.45  # probability of an ischaemic scar (the rest: non-ischaemic)
    hazard_version: int = DEFAULT_HAZARD_VERSION  # outcome model and what goes with it (HAZARD_VERSIONS)
    hazard: HazardModel = None  # type: ignore[assignment]  # None: hazard_model(hazard_version), set in __post_init__

    def __post_init__(self) -> None:
        if self.hazard_version not in HAZARD_VERSIONS or isinstance(self.hazard_version, bool):
            raise InputError(
                f"synthetic cohort: hazard version must be one of {', '.join(map(str, HAZARD_VERSIONS))}, "
                f"got {self.hazard_version!r}"
            )
        if self.hazard is None:
            object.__setattr__(self, "hazard", hazard_model(self.hazard_version))
        if not is_count(self.n_cases) or self.n_cases < 1:
            raise InputError(f"synthetic cohort: cases must be a whole number >= 1, got {self.n_cases!r}")
        if not is_count(self.seed):
            raise InputError(f"synthetic cohort: seed must be a whole number >= 0, got {self.seed!r}")
        if not (1 <= self.supersample_xy <= 4 and 1 <= self.supersample_z <= 8):
            raise InputError("synthetic cohort: supersample_xy must be 1-4 and supersample_z 1-8")
        if not (0 <= self.p_scar_free <= 1 and 0 <= self.p_ischemic <= 1 and self.p_scar_free + self.p_ischemic <= 1):
            raise InputError("synthetic cohort: p_scar_free and p_ischemic must be in [0, 1] and sum to <= 1")

    def to_dict(self) -> JSONDict:
        """Plain-dict form (JSON-serialisable)."""
        out = dataclasses.asdict(self)
        out["hazard"] = self.hazard.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> SynthConfig:
        """The config back from :meth:`to_dict`'s form (``synth.json``'s ``config``).

        A config without ``hazard_version`` was written by generator 1.0: hazard version 1.

        Example:
            >>> SynthConfig.from_dict({"n_cases": 4, "seed": 2, "small": True}).hazard_version
            1
        """
        names = {f.name for f in dataclasses.fields(cls)} - {"hazard"}
        kwargs: dict[str, Any] = {k: v for k, v in data.items() if k in names}  # __post_init__ checks them
        kwargs.setdefault("hazard_version", 1)
        if data.get("hazard") is not None:
            kwargs["hazard"] = HazardModel.from_dict(cast("Mapping[str, object]", data["hazard"]))
        return cls(**kwargs)


def is_count(value: object) -> bool:
    """A whole number >= 0 (numpy integers included, bools excluded)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and bool(value >= 0)
