"""Calibrating the derived scar on a few expert-labelled scans: the library behind ``lgerisk calibrate-scar``.

A research group often has an expert contour scar in 10-20 scans and wants the tool to do the rest. The
calibration learns the one setting of ``fwhm`` that sets how much of an enhanced region counts as scar, the
**peak fraction** (the core starts at remote + fraction x (peak - remote); ``fwhm`` proper is 0.5), by the
lowest mean absolute error of scar % against the experts over ``PEAK_FRACTIONS``; every other rule (remote
reference and its guard, enhancement test, cluster rules) stays as it is. One number from 10-20 scans
cannot overfit much; the card says how well it did in-sample and by leave-one-out (choose on all scans but
one, score that one), so the user sees the estimate for new scans before using it.

Output folder::

    OUT/scar_calibration.json    the card: the fraction, what it was learnt from (case ids, label map, inputs'
                                 hash), agreement in-sample and by leave-one-out, versions, intended use

Use it with ``PreprocessConfig(scar_method="calibrated", scar_calibration="OUT")`` (``lgerisk preprocess
--scar-method calibrated --scar-calibration OUT``). The card is plain JSON, read by :func:`load_calibration`,
which checks every field: nothing in it is executed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lgerisk.errors import CaseError, InputError
from lgerisk.reporting import SILENT, Reporter

CALIBRATION_FILE = "scar_calibration.json"
CALIBRATION_KIND = "lgerisk scar calibration"
CALIBRATION_FORMAT = 1

PEAK_FRACTIONS = (0.5, 0.45, 0.55, 0.4, 0.6, 0.35, 0.65, 0.3, 0.7)
"""The peak fractions a calibration chooses from; ties go to the earlier one (closest to ``fwhm``'s 0.5)."""

MIN_CALIBRATION_CASES = 3
"""Fewer expert-labelled scans than this cannot calibrate anything."""


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

    def rules(self) -> Any:
        """The ``ScarRules`` that apply it (``fwhm``'s rules with this peak fraction)."""
        from lgerisk.preprocess.scar import ScarRules

        return ScarRules(peak_fraction=self.peak_fraction)

    def summary(self) -> dict[str, Any]:
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

    def to_card(self) -> dict[str, Any]:
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


def _agreement_summary(
    measured: Sequence[float], reference: Sequence[float], dices: Sequence[float]
) -> dict[str, float]:
    import numpy as np

    from lgerisk.evaluation.agreement import agreement

    result = agreement(np.asarray(measured, float), np.asarray(reference, float))
    summary = {key: round(float(value), 4) for key, value in result.to_dict().items() if key != "n"}
    summary["median_dice"] = round(float(np.median(dices)), 4) if dices else float("nan")
    return {key: value for key, value in summary.items() if value == value}  # no NaN in a JSON card


def choose_peak_fraction(rows: Sequence[Any], grid: Sequence[float] = PEAK_FRACTIONS) -> float:
    """The fraction of ``grid`` with the lowest mean absolute error over ``rows`` (``ScarComparison``s whose
    ``setting`` is the fraction as text, e.g. ``"0.45"``); ties go to the earlier one.

    Example:
        >>> from lgerisk.preprocess.expert import ScarComparison
        >>> rows = [ScarComparison("a", "0.5", 10.0, 14.0, 0.0, None),
        ...         ScarComparison("a", "0.4", 10.0, 11.0, 0.0, None)]
        >>> choose_peak_fraction(rows, (0.5, 0.4))
        0.4
    """
    errors = {}
    for fraction in grid:
        mine = [abs(r.derived_scar_percent - r.expert_scar_percent) for r in rows if r.setting == f"{fraction:g}"]
        if mine:
            errors[fraction] = sum(mine) / len(mine)
    if not errors:
        raise ValueError("no rows for any fraction of the grid")
    return min(errors, key=lambda fraction: errors[fraction])


def calibration_rows(
    cases: Sequence[Any], labels: str, grid: Sequence[float] = PEAK_FRACTIONS, reporter: Reporter = SILENT
) -> tuple[list[Any], list[str]]:
    """Per case and fraction of ``grid``, the derived scar % against the experts' (``ScarComparison`` rows,
    ``setting`` the fraction as text), and the ids of cases that could not be read (skipped)."""
    from lgerisk.preprocess.expert import DerivedSetting, compare_grid
    from lgerisk.preprocess.scar import ScarRules

    settings = [DerivedSetting(f"{fraction:g}", "fwhm", rules=ScarRules(peak_fraction=fraction)) for fraction in grid]
    rows: list[Any] = []
    skipped = []
    with reporter.bar("calibrate scar", len(cases)) as advance:
        for case in cases:
            try:
                rows += compare_grid([case], labels, settings)
            except CaseError as exc:
                skipped.append(case.case_id)
                reporter.note(f"skipped {case.case_id}: {reporter.word(str(exc))}")
            advance()
    return rows, skipped


def leave_one_out_fractions(rows: Sequence[Any], grid: Sequence[float] = PEAK_FRACTIONS) -> dict[str, float]:
    """Per case, the fraction chosen on all the other cases (the leave-one-out estimate's choices)."""
    case_ids = list(dict.fromkeys(r.case_id for r in rows))
    return {held_out: choose_peak_fraction([r for r in rows if r.case_id != held_out], grid) for held_out in case_ids}


def calibrate_scar(
    data: str | os.PathLike[str],
    out: str | os.PathLike[str] | None,
    labels: str = "emidec",
    grid: Sequence[float] = PEAK_FRACTIONS,
    reporter: Reporter = SILENT,
) -> ScarCalibration:
    """Learn the derived scar's peak fraction from the expert-labelled scans of ``data`` (their scar labels,
    named by ``labels``) and write its card to ``out`` (``None``: only return it).

    Example:
        >>> calibration = calibrate_scar("labelled/", "work/calib", labels="myops")        # doctest: +SKIP
        >>> calibration.peak_fraction, calibration.leave_one_out["mean_absolute_error"]     # doctest: +SKIP
    """
    import lgerisk
    from lgerisk.io.atomic import write_json
    from lgerisk.io.cohort import discover_cohort
    from lgerisk.io.labels import parse_label_map
    from lgerisk.preprocess import ALGORITHM_VERSION
    from lgerisk.preprocess.pipeline import source_hash

    label_map = parse_label_map(labels)
    if not label_map.has_scar:
        raise InputError(
            f"labels={labels!r} names no scar label; calibrating needs scans whose masks hold the experts' scar.",
            setting="labels",
        )
    if not grid or any(not 0.05 <= fraction <= 0.95 for fraction in grid):
        raise ValueError(f"grid={tuple(grid)!r}: peak fractions must be 0.05-0.95")  # library-only argument
    cases = discover_cohort(data).cases
    rows, skipped = calibration_rows(cases, labels, grid, reporter)
    used = [case for case in cases if case.case_id not in skipped]
    if len(used) < MIN_CALIBRATION_CASES:
        raise InputError(
            f"{data}: {len(used)} readable expert-labelled scan(s); calibrating needs at least {MIN_CALIBRATION_CASES}."
        )
    fraction = choose_peak_fraction(rows, grid)
    chosen = [r for r in rows if r.setting == f"{fraction:g}"]
    held_out = leave_one_out_fractions(rows, grid)
    scored = [
        next(r for r in rows if r.case_id == case_id and r.setting == f"{f:g}") for case_id, f in held_out.items()
    ]
    digest = hashlib.sha256()
    for case in used:
        digest.update(f"{case.case_id}:{source_hash(case.image)}:{source_hash(case.mask)};".encode())
    calibration = ScarCalibration(
        peak_fraction=float(fraction),
        case_ids=tuple(case.case_id for case in used),
        labels=label_map.to_spec(),
        data_sha256=digest.hexdigest(),
        in_sample=_agreement_summary(
            [r.derived_scar_percent for r in chosen],
            [r.expert_scar_percent for r in chosen],
            [r.dice for r in chosen if r.dice is not None],
        ),
        leave_one_out=_agreement_summary(
            [r.derived_scar_percent for r in scored],
            [r.expert_scar_percent for r in scored],
            [r.dice for r in scored if r.dice is not None],
        ),
        algorithm_version=ALGORITHM_VERSION,
        lgerisk_version=lgerisk.__version__,
        grid=tuple(float(f) for f in grid),
    )
    if out is not None:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / CALIBRATION_FILE, calibration.to_card())
    return calibration


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
    agreement_block: dict[str, Any] = card["agreement"] if isinstance(card.get("agreement"), dict) else {}
    grid: list[Any] = card["grid"] if isinstance(card.get("grid"), list) else list(PEAK_FRACTIONS)
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


def calibration_sentence(calibration: ScarCalibration, out: str | os.PathLike[str]) -> str:
    """What ``lgerisk calibrate-scar`` prints: the setting, the scans and the agreement it reached.

    Example:
        >>> calibration = ScarCalibration(0.45, ("a", "b", "c"), "myops", "", {"pearson_r": 0.9,
        ...     "mean_absolute_error": 3.5, "median_dice": 0.6}, {"pearson_r": 0.88, "mean_absolute_error": 3.9})
        >>> calibration_sentence(calibration, "calib")[:60]
        'peak fraction 0.45 from 3 expert-labelled scans; in-sample r'
    """

    def numbers(block: dict[str, float]) -> str:
        parts = [f"{name} {block[key]:.2f}" for key, name in _SHOWN if key in block]
        return ", ".join(parts) or "-"

    return (
        f"peak fraction {calibration.peak_fraction:g} from {len(calibration.case_ids)} expert-labelled scans; "
        f"in-sample {numbers(calibration.in_sample)}; leave-one-out {numbers(calibration.leave_one_out)}; "
        f"wrote {Path(out) / CALIBRATION_FILE}"
    )


_SHOWN = (("pearson_r", "r"), ("mean_absolute_error", "MAE"), ("median_dice", "median Dice"))
