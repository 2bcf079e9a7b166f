"""Derived scar against experts' scar on real LGE scans: the default, its confidence, calibration, alternatives.

    python benchmarks/scar_agreement.py --myops PATH/myops-dev --emidec PATH/emidec --out scar_agreement.csv

Scar labels are ignored and scar is derived from the image inside the experts' myocardium; scar % is of LV
myocardium; MyoPS cases use the ``myops`` label preset, EMIDEC the ``emidec`` one, and the scans of both are
pooled. Prints, for the default a user gets without scar labels (``auto`` -> ``fwhm``, exactly as
``lgerisk preprocess`` writes it):

* Pearson r and ICC(2,1) of scar % with the experts', Bland-Altman bias and 95 % limits, mean absolute error
  (r and MAE with bootstrap CIs), median Dice with the experts' scar;
* every scan with its confidence and QC flags, the worst scans, the scar-free group (expert scar < 1 %: the
  false-positive scar %) and the > 30 % group (under-call) apart, and whether every scan more than 10 points
  off carries a flag;
* calibration (``lgerisk calibrate-scar``: fwhm's peak fraction learnt from the scans) in-sample and by
  leave-one-out (the fraction chosen on all other scans, scored on the one left out);
* the same agreement for alternatives (the version-2 fwhm without the enhancement test and remote guard,
  n-SD thresholds).

Writes the default's per-case rows to --out (CSV) when given.

    python benchmarks/scar_agreement.py --myops PATH/myops-dev --emidec PATH/emidec --select

How optimistic is a default chosen on the same scans? Runs the grid the fwhm default was chosen from
(smoothing, remote reference, method, peak percentile, enhancement guard, epicardial rim; each with the
enhancement test and remote guard) and reports its best setting in-sample and a leave-one-out estimate: for
each scan, the setting with the lowest mean absolute error on the others, scored on the one left out.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path[:] = [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]  # this folder's radiomics.py must not shadow pyradiomics

import numpy as np  # noqa: E402

from lgerisk.evaluation.agreement import Agreement, agreement, bootstrap_intervals  # noqa: E402
from lgerisk.io.cohort import discover_cohort  # noqa: E402
from lgerisk.preprocess.calibrate import (  # noqa: E402
    calibration_rows,
    choose_peak_fraction,
    leave_one_out_fractions,
)
from lgerisk.preprocess.calibration import PEAK_FRACTIONS  # noqa: E402
from lgerisk.preprocess.config import PreprocessConfig  # noqa: E402
from lgerisk.preprocess.expert import (  # noqa: E402
    DerivedSetting,
    ScarComparison,
    compare_grid,
    compare_with_experts,
    leave_one_out,
    summarise,
)
from lgerisk.preprocess.scar import ScarRules  # noqa: E402

ALTERNATIVES = [
    DerivedSetting("fwhm (default)", "fwhm"),
    DerivedSetting(
        "fwhm without enhancement test and remote guard (v2)",
        "fwhm",
        rules=ScarRules(min_separation=0.0, remote_guard=False),
    ),
    DerivedSetting("nsd 3", "nsd", nsd=3.0),
    DerivedSetting("nsd 4", "nsd", nsd=4.0),
    DerivedSetting("nsd 5", "nsd", nsd=5.0),
]

SCAR_FREE_PERCENT = 1.0
"""Scans with less expert scar than this are the scar-free group."""

EXTENSIVE_PERCENT = 30.0
"""Scans with more expert scar than this are the extensive-scar group."""


def cohorts(myops: Path, emidec: Path | None) -> list[tuple[list, str]]:
    """(cases, label preset) of each cohort given."""
    out = [(discover_cohort(myops).cases, "myops")]
    if emidec is not None:
        out.append((discover_cohort(emidec).cases, "emidec"))
    return out


def scores(rows: Sequence[ScarComparison]) -> tuple[Agreement, float]:
    """Agreement of derived with expert scar % and the median Dice."""
    dices = [r.dice for r in rows if r.dice is not None]
    return (
        agreement(np.array([r.derived_scar_percent for r in rows]), np.array([r.expert_scar_percent for r in rows])),
        float(np.median(dices)) if dices else float("nan"),
    )


def line(name: str, rows: Sequence[ScarComparison], intervals: bool = True) -> str:
    """One table row: r (CI), ICC, bias, limits, MAE (CI), median Dice."""
    a, median_dice = scores(rows)
    r_ci = mae_ci = ""
    if intervals:
        ci = bootstrap_intervals(
            np.array([r.derived_scar_percent for r in rows]), np.array([r.expert_scar_percent for r in rows])
        )
        r_ci = f" ({ci['pearson_r'][0]:.2f}-{ci['pearson_r'][1]:.2f})"
        mae_ci = f" ({ci['mean_absolute_error'][0]:.1f}-{ci['mean_absolute_error'][1]:.1f})"
    return (
        f"{name:55s} r {a.pearson_r:.3f}{r_ci}  ICC {a.icc_2_1:.3f}  bias {a.bias:+.1f}  "
        f"LoA {a.loa_low:.1f} to {a.loa_high:.1f}  MAE {a.mean_absolute_error:.2f}{mae_ci}  "
        f"median Dice {median_dice:.2f}"
    )


def report_default(rows: Sequence[ScarComparison]) -> None:
    """The default's agreement, per-case confidence and flags, worst cases and the two groups."""
    print(f"Default (auto -> fwhm), {len(rows)} real scans:")
    print("  " + line("fwhm (default)", rows))
    print(f"\n  {'scan':15s} {'expert':>7s} {'derived':>8s} {'diff':>6s} {'Dice':>5s}  confidence  flags")
    for r in rows:
        dice_text = "-" if r.dice is None else f"{r.dice:.2f}"
        print(
            f"  {r.case_id:15s} {r.expert_scar_percent:7.2f} {r.derived_scar_percent:8.2f} "
            f"{r.derived_scar_percent - r.expert_scar_percent:+6.1f} {dice_text:>5s}  {str(r.confidence):10s}  "
            f"{', '.join(r.flags) or '-'}"
        )
    worst = sorted(rows, key=lambda r: -abs(r.derived_scar_percent - r.expert_scar_percent))[:5]
    print(
        "\n  worst 5: " + "; ".join(f"{r.case_id} {r.derived_scar_percent - r.expert_scar_percent:+.1f}" for r in worst)
    )
    free = [r for r in rows if r.expert_scar_percent < SCAR_FREE_PERCENT]
    extensive = [r for r in rows if r.expert_scar_percent > EXTENSIVE_PERCENT]
    if free:
        print(
            f"  scar-free group (expert < {SCAR_FREE_PERCENT:g} %, {len(free)} scan(s)): derived (false-positive) scar "
            + ", ".join(f"{r.case_id} {r.derived_scar_percent:.2f} %" for r in free)
        )
    if extensive:
        bias = np.mean([r.derived_scar_percent - r.expert_scar_percent for r in extensive])
        print(
            f"  > {EXTENSIVE_PERCENT:g} % group ({len(extensive)} scan(s)): bias {bias:+.1f} points ("
            + ", ".join(f"{r.case_id} {r.expert_scar_percent:.1f} -> {r.derived_scar_percent:.1f}" for r in extensive)
            + ")"
        )
    off = [r for r in rows if abs(r.derived_scar_percent - r.expert_scar_percent) > 10]
    unflagged = [r.case_id for r in off if not r.flags]
    counts = {level: sum(r.confidence == level for r in rows) for level in ("high", "medium", "low")}
    print(
        f"  confidence: {counts['high']} high, {counts['medium']} medium, {counts['low']} low (to check); "
        f"{len(off)} scan(s) more than 10 points off, {len(unflagged)} of them without a flag"
        + (f" ({', '.join(unflagged)})" if unflagged else "")
    )


def report_calibration(rows: Sequence[ScarComparison]) -> None:
    """Calibration's peak fraction in-sample and by leave-one-out."""
    fraction = choose_peak_fraction(rows)
    in_sample = [r for r in rows if r.setting == f"{fraction:g}"]
    chosen = leave_one_out_fractions(rows)
    held_out = [next(r for r in rows if r.case_id == c and r.setting == f"{f:g}") for c, f in chosen.items()]
    print(f"\nCalibration (lgerisk calibrate-scar; peak fraction from {', '.join(f'{f:g}' for f in PEAK_FRACTIONS)}):")
    print("  " + line(f"in-sample (all scans choose {fraction:g})", in_sample))
    print("  " + line("leave-one-out (chosen on the others)", held_out))
    counts: dict[float, int] = {}
    for value in chosen.values():
        counts[value] = counts.get(value, 0) + 1
    print("  chosen: " + "; ".join(f"{f:g} x{n}" for f, n in sorted(counts.items(), key=lambda x: -x[1])))


def selection_grid() -> list[DerivedSetting]:
    """The settings the fwhm default was chosen from (96), each with the enhancement test and remote guard."""
    grid = []
    for smoothing in (0.0, 1.5, 2.5):
        for remote in ("mixture", "iterative", "whole"):
            for rim in (0.0, 2.5):
                for percentile in (95.0, 99.0):
                    for guard in (2.0, 4.0):
                        rules = ScarRules(enhancement_nsd=guard, peak_percentile=percentile, epicardial_rim_mm=rim)
                        grid.append(
                            DerivedSetting(
                                f"fwhm s{smoothing} {remote} rim{rim} p{percentile:.0f} g{guard:.0f}",
                                "fwhm",
                                remote=remote,
                                smoothing_mm=smoothing,
                                rules=rules,
                            )
                        )
                for n in (3.0, 4.0, 5.0, 6.0):
                    if smoothing == 0.0:  # nsd thresholds the raw image: smoothing does not apply
                        grid.append(
                            DerivedSetting(
                                f"nsd {n:.0f} {remote} rim{rim}",
                                "nsd",
                                nsd=n,
                                remote=remote,
                                rules=ScarRules(epicardial_rim_mm=rim),
                            )
                        )
    return grid


def select(groups: list[tuple[list, str]]) -> None:
    """In-sample best of the grid and the leave-one-out estimate of choosing it."""
    started = time.perf_counter()
    rows = [row for cases, labels in groups for row in compare_grid(cases, labels, selection_grid())]
    summaries = summarise(rows)
    best = min(summaries, key=lambda s: s.agreement.mean_absolute_error)
    print(
        f"{len(summaries)} settings x {len({r.case_id for r in rows})} real scans "
        f"({time.perf_counter() - started:.0f} s)"
    )
    print(
        f"in-sample best: {best.setting}: r {best.agreement.pearson_r:.3f}, MAE "
        f"{best.agreement.mean_absolute_error:.2f}, median Dice {best.median_dice:.2f}"
    )
    default = next(s for s in summaries if s.setting == "fwhm s2.5 mixture rim2.5 p95 g4")
    print(
        f"the default ({default.setting}): r {default.agreement.pearson_r:.3f}, MAE "
        f"{default.agreement.mean_absolute_error:.2f}, median Dice {default.median_dice:.2f}"
    )
    loo = leave_one_out(rows)
    print(
        f"leave-one-out (choose on the others, score the one left out): r {loo.agreement.pearson_r:.3f}, ICC "
        f"{loo.agreement.icc_2_1:.3f}, bias {loo.agreement.bias:.2f}, MAE {loo.agreement.mean_absolute_error:.2f}, "
        f"median Dice {loo.median_dice:.2f}"
    )
    counts: dict[str, int] = {}
    for name in loo.chosen.values():
        counts[name] = counts.get(name, 0) + 1
    print("chosen:", "; ".join(f"{name} x{count}" for name, count in sorted(counts.items(), key=lambda x: -x[1])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--myops", type=Path, required=True, help="images/ + masks/ folder of MyoPS LGE scans")
    parser.add_argument("--emidec", type=Path, help="EMIDEC folder (ID/Images, ID/Contours)")
    parser.add_argument("--out", type=Path, help="the default's per-case rows as CSV")
    parser.add_argument("--select", action="store_true", help="the selection grid and its leave-one-out estimate")
    args = parser.parse_args()
    groups = cohorts(args.myops, args.emidec)
    if args.select:
        select(groups)
        return

    started = time.perf_counter()
    default = [
        row
        for cases, labels in groups
        for row in compare_with_experts(cases, labels, {"fwhm (default)": PreprocessConfig(scar_method="fwhm")})
    ]
    print(
        f"{len(default)} real scans with expert scar labels ({', '.join(labels for _, labels in groups)}), "
        f"{time.perf_counter() - started:.0f} s\n"
    )
    report_default(default)
    report_calibration([row for cases, labels in groups for row in calibration_rows(cases, labels)[0]])
    alternatives = [row for cases, labels in groups for row in compare_grid(cases, labels, ALTERNATIVES)]
    print("\nAlternatives (same scans; scar % and Dice on the acquired grid):")
    for setting in ALTERNATIVES:
        mine = [r for r in alternatives if r.setting == setting.name]
        print("  " + line(setting.name, mine))
        free = [r for r in mine if r.expert_scar_percent < SCAR_FREE_PERCENT]
        if free:
            print(f"  {'':55s} scar-free: " + ", ".join(f"{r.case_id} {r.derived_scar_percent:.2f} %" for r in free))
    print(f"\n{time.perf_counter() - started:.0f} s in all")
    if args.out is not None:
        import pandas as pd

        from lgerisk.io.atomic import write_csv

        frame = pd.DataFrame([r.__dict__ for r in default])
        frame["flags"] = frame["flags"].map("; ".join)
        write_csv(args.out, frame)


if __name__ == "__main__":
    main()
