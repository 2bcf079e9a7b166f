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
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lgerisk.errors import CaseError, InputError
from lgerisk.preprocess.calibration import (
    CALIBRATION_FILE,
    PEAK_FRACTIONS,
    ScarCalibration,
)
from lgerisk.reporting import SILENT, Reporter

if TYPE_CHECKING:  # pragma: no cover
    from lgerisk.io.cohort import Case
    from lgerisk.preprocess.expert import ScarComparison

MIN_CALIBRATION_CASES = 3
"""Fewer expert-labelled scans than this cannot calibrate anything."""


def _agreement_summary(
    measured: Sequence[float], reference: Sequence[float], dices: Sequence[float]
) -> dict[str, float]:
    import numpy as np

    from lgerisk.evaluation.agreement import agreement

    result = agreement(np.asarray(measured, float), np.asarray(reference, float))
    summary = {key: round(float(value), 4) for key, value in result.to_dict().items() if key != "n"}
    summary["median_dice"] = round(float(np.median(dices)), 4) if dices else float("nan")
    return {key: value for key, value in summary.items() if value == value}  # no NaN in a JSON card


def choose_peak_fraction(rows: Sequence[ScarComparison], grid: Sequence[float] = PEAK_FRACTIONS) -> float:
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
    cases: Sequence[Case], labels: str, grid: Sequence[float] = PEAK_FRACTIONS, reporter: Reporter = SILENT
) -> tuple[list[ScarComparison], list[str]]:
    """Per case and fraction of ``grid``, the derived scar % against the experts' (``ScarComparison`` rows,
    ``setting`` the fraction as text), and the ids of cases that could not be read (skipped)."""
    from lgerisk.preprocess.expert import DerivedSetting, compare_grid
    from lgerisk.preprocess.scar import ScarRules

    settings = [DerivedSetting(f"{fraction:g}", "fwhm", rules=ScarRules(peak_fraction=fraction)) for fraction in grid]
    rows: list[ScarComparison] = []
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


def leave_one_out_fractions(rows: Sequence[ScarComparison], grid: Sequence[float] = PEAK_FRACTIONS) -> dict[str, float]:
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
    from lgerisk.io.atomic import write_json
    from lgerisk.io.cohort import discover_cohort
    from lgerisk.io.labels import parse_label_map
    from lgerisk.io.layout import source_hash
    from lgerisk.preprocess import ALGORITHM_VERSION
    from lgerisk.version import __version__

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
        lgerisk_version=__version__,
        grid=tuple(float(f) for f in grid),
    )
    if out is not None:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / CALIBRATION_FILE, calibration.to_card())
    return calibration


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
