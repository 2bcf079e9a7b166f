"""A scar calibration card: what ``lgerisk calibrate-scar`` learnt (:class:`ScarCalibration`) and reading it
back (:func:`load_calibration`). Preprocessing settings and the pipeline read cards through this module; the
fitting lives in :mod:`lgerisk.preprocess.calibrate`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lgerisk.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from lgerisk.preprocess.scar import ScarRules
    from lgerisk.types import JSONDict

CALIBRATION_FILE = "scar_calibration.json"
CALIBRATION_KIND = "lgerisk scar calibration"
CALIBRATION_FORMAT = 1

PEAK_FRACTIONS = (0.5, 0.45, 0.55, 0.4, 0.6, 0.35, 0.65, 0.3, 0.7)
"""The peak fractions a calibration chooses from; ties go to the earlier one (closest to ``fwhm``'s 0.5)."""


@dataclass(frozen=True)
class ScarCalibration:
    """A learnt derived-scar setting and where it came from (the JSON card).

    Attributes:
        peak_fraction: ``fwhm``'s core threshold as a fraction of the enhanced region's peak above remote.
        case_ids: the expert-labelled scans it was learnt from.
        labels: their label map.
        data_sha256: hash of the scans' image and mask hashes.
        in_sample: agreement with the experts on those scans (``pearson_r``, ``mean_absolute_error``,
            ``median_dice``, ...).
        leave_one_out: the same, each scan scored with the fraction chosen on the others.
        algorithm_version: preprocessing ``ALGORITHM_VERSION`` the fraction was learnt with.
        lgerisk_version: the package version that learnt it.
        grid: the fractions it chose from.
    """

    peak_fraction: float
    case_ids: tuple[str, ...]
    labels: str
    data_sha256: str
    in_sample: dict[str, float] = field(default_factory=dict)
    leave_one_out: dict[str, float] = field(default_factory=dict)
    algorithm_version: int = 0
    lgerisk_version: str = ""
    grid: tuple[float, ...] = PEAK_FRACTIONS

    def rules(self) -> ScarRules:
        """The ``ScarRules`` that apply it (``fwhm``'s rules with this peak fraction)."""
        from lgerisk.preprocess.scar import ScarRules

        return ScarRules(peak_fraction=self.peak_fraction)

    def summary(self) -> JSONDict:
        """What QC records about it: the fraction, the case count and the hash of what changes the output.

        Example:
            >>> calibration = ScarCalibration(0.45, ("a", "b", "c"), "myops", "0" * 64, algorithm_version=3)
            >>> calibration.summary()["peak_fraction"]
            0.45
        """
        payload = json.dumps(
            {"peak_fraction": self.peak_fraction, "algorithm_version": self.algorithm_version}, sort_keys=True
        )
        return {
            "peak_fraction": self.peak_fraction,
            "case_count": len(self.case_ids),
            "sha256": hashlib.sha256(payload.encode()).hexdigest()[:16],
        }

    def to_card(self) -> dict[str, object]:
        """The JSON card."""
        from lgerisk.cards import INTENDED_USE

        return {
            "kind": CALIBRATION_KIND,
            "format": CALIBRATION_FORMAT,
            "method": "fwhm",
            "peak_fraction": self.peak_fraction,
            "grid": list(self.grid),
            "trained_on": {
                "case_count": len(self.case_ids),
                "case_ids": list(self.case_ids),
                "labels": self.labels,
                "data_sha256": self.data_sha256,
            },
            "agreement": {"in_sample": self.in_sample, "leave_one_out": self.leave_one_out},
            "algorithm_version": self.algorithm_version,
            "lgerisk_version": self.lgerisk_version,
            "intended_use": INTENDED_USE,
        }


def _card_path(path: str | os.PathLike[str]) -> Path:
    candidate = Path(path)
    return candidate / CALIBRATION_FILE if candidate.is_dir() else candidate


def load_calibration(path: str | os.PathLike[str]) -> ScarCalibration:
    """Read and check a calibration card (its folder or the JSON file); ``InputError`` naming the file when it
    is missing, not a card, of another format or preprocessing version, or holds an impossible value.

    Example:
        >>> load_calibration("work/calib").peak_fraction                                   # doctest: +SKIP
        0.45
    """
    from lgerisk.preprocess import ALGORITHM_VERSION

    card_path = _card_path(path)
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(
            f"{card_path}: no scar calibration here; write one with calibrate_scar.", setting="scar_calibration"
        ) from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(
            f"{card_path}: not a readable JSON scar calibration ({exc}).", setting="scar_calibration"
        ) from exc
    if not isinstance(card, dict) or card.get("kind") != CALIBRATION_KIND:
        raise InputError(f"{card_path}: not an lgerisk scar calibration card.", setting="scar_calibration")
    if card.get("format") != CALIBRATION_FORMAT or card.get("method") != "fwhm":
        raise InputError(
            f"{card_path}: scar calibration format {card.get('format')!r} of method {card.get('method')!r}; this "
            f"lgerisk reads format {CALIBRATION_FORMAT} of fwhm.",
            setting="scar_calibration",
        )
    if card.get("algorithm_version") != ALGORITHM_VERSION:
        raise InputError(
            f"{card_path}: calibrated with preprocessing version {card.get('algorithm_version')!r}, now "
            f"{ALGORITHM_VERSION}; calibrate again.",
            setting="scar_calibration",
        )
    fraction = card.get("peak_fraction")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.05 <= fraction <= 0.95:
        raise InputError(f"{card_path}: peak_fraction {fraction!r} is not 0.05-0.95.", setting="scar_calibration")
    trained = card.get("trained_on")
    if not isinstance(trained, dict) or not isinstance(trained.get("case_ids"), list):
        raise InputError(f"{card_path}: the card does not say what it was learnt from.", setting="scar_calibration")
    agreement_block: Mapping[str, Mapping[str, float]] = (
        card["agreement"] if isinstance(card.get("agreement"), dict) else {}
    )
    grid: list[object] = card["grid"] if isinstance(card.get("grid"), list) else list(PEAK_FRACTIONS)
    return ScarCalibration(
        peak_fraction=float(fraction),
        case_ids=tuple(str(c) for c in trained["case_ids"]),
        labels=str(trained.get("labels", "")),
        data_sha256=str(trained.get("data_sha256", "")),
        in_sample=dict(agreement_block.get("in_sample") or {}),
        leave_one_out=dict(agreement_block.get("leave_one_out") or {}),
        algorithm_version=int(card["algorithm_version"]),
        lgerisk_version=str(card.get("lgerisk_version", "")),
        grid=tuple(float(f) for f in grid if isinstance(f, (int, float)) and not isinstance(f, bool)),
    )
