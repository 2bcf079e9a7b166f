"""Derived scar against experts' scar on real LGE scans: every method, one table.

    python benchmarks/scar_agreement.py --myops PATH/myops-dev --emidec PATH/emidec

For each derived setting (scar labels ignored, scar found from the image inside the experts'
myocardium) and each scan: scar % of LV myocardium, and Dice with the experts' scar. Per setting:
Pearson r and ICC(2,1) of scar % with the experts', Bland-Altman bias and 95 % limits of agreement,
mean absolute error, median Dice. MyoPS cases use the ``myops`` label preset, EMIDEC the ``emidec``
one. Writes the per-case rows to --out (CSV) when given.

    python benchmarks/scar_agreement.py --myops PATH/myops-dev --select

How optimistic is a default chosen on the same scans? Runs the selection grid the default was chosen
from (smoothing, remote reference, method, peak percentile, enhancement guard, epicardial rim) and
reports the grid's best setting in-sample and a leave-one-out estimate: for each scan, the setting with
the lowest mean absolute error on the other 14, scored on the one left out.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path[:] = [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]  # this folder's radiomics.py must not shadow pyradiomics

import numpy as np  # noqa: E402

from lgerisk.evaluation.agreement import bootstrap_intervals  # noqa: E402
from lgerisk.io.cohort import discover_cohort  # noqa: E402
from lgerisk.preprocess.config import PreprocessConfig  # noqa: E402
from lgerisk.preprocess.expert import (  # noqa: E402
    DerivedSetting,
    compare_grid,
    compare_with_experts,
    leave_one_out,
    summarise,
)
from lgerisk.preprocess.scar import ScarRules  # noqa: E402

SETTINGS = {
    "fwhm (default: mixture remote, 2.5 mm smoothing)": PreprocessConfig(scar_method="fwhm"),
    "fwhm, iterative remote": PreprocessConfig(scar_method="fwhm", remote_method="iterative"),
    "fwhm, whole-wall remote": PreprocessConfig(scar_method="fwhm", remote_method="whole"),
    "fwhm, no smoothing": PreprocessConfig(scar_method="fwhm", scar_smoothing_mm=0.0),
    "nsd 2": PreprocessConfig(scar_method="nsd", nsd=2.0),
    "nsd 3": PreprocessConfig(scar_method="nsd", nsd=3.0),
    "nsd 5": PreprocessConfig(scar_method="nsd", nsd=5.0),
    "nsd 6": PreprocessConfig(scar_method="nsd", nsd=6.0),
    "nsd 5, whole-wall remote (the old default)": PreprocessConfig(scar_method="nsd", nsd=5.0, remote_method="whole"),
}


def selection_grid() -> list[DerivedSetting]:
    """The settings the default was chosen from (96)."""
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


def select(myops: Path) -> None:
    """In-sample best of the grid and the leave-one-out estimate of choosing it."""
    started = time.perf_counter()
    rows = compare_grid(discover_cohort(myops).cases, "myops", selection_grid())
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
        f"leave-one-out (choose on 14, score the 15th): r {loo.agreement.pearson_r:.3f}, ICC "
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
    parser.add_argument("--out", type=Path, help="per-case rows as CSV")
    parser.add_argument("--select", action="store_true", help="the selection grid and its leave-one-out estimate")
    args = parser.parse_args()
    if args.select:
        select(args.myops)
        return

    started = time.perf_counter()
    rows = compare_with_experts(discover_cohort(args.myops).cases, "myops", SETTINGS)
    print(
        f"MyoPS: {len({r.case_id for r in rows})} real scans with expert scar labels "
        f"({time.perf_counter() - started:.0f} s)\n"
    )
    print(
        f"{'setting':50s} {'r':>6s} {'(95 % CI)':>13s} {'ICC':>6s} {'bias':>6s} {'LoA':>15s} {'MAE':>5s} "
        f"{'(95 % CI)':>11s} {'Dice':>5s}"
    )
    for summary in summarise(rows):
        a = summary.agreement
        mine = [r for r in rows if r.setting == summary.setting]
        ci = bootstrap_intervals(
            np.array([r.derived_scar_percent for r in mine]), np.array([r.expert_scar_percent for r in mine])
        )
        print(
            f"{summary.setting:50s} {a.pearson_r:6.3f} ({ci['pearson_r'][0]:5.2f}, {ci['pearson_r'][1]:4.2f}) "
            f"{a.icc_2_1:6.3f} {a.bias:6.1f} {a.loa_low:6.1f} to {a.loa_high:5.1f} {a.mean_absolute_error:5.1f} "
            f"({ci['mean_absolute_error'][0]:4.1f}, {ci['mean_absolute_error'][1]:4.1f}) {summary.median_dice:5.2f}"
        )
    if args.emidec is not None:
        emidec_rows = compare_with_experts(discover_cohort(args.emidec).cases, "emidec", SETTINGS)
        print("\nEMIDEC (expert scar % / derived scar %, Dice):")
        for name in SETTINGS:
            cells = [
                f"{r.case_id} {r.expert_scar_percent:.2f}/{r.derived_scar_percent:.2f} "
                f"(Dice {'-' if r.dice is None else f'{r.dice:.2f}'})"
                for r in emidec_rows
                if r.setting == name
            ]
            print(f"  {name:50s} " + "; ".join(cells))
        rows += emidec_rows
    if args.out is not None:
        import pandas as pd

        from lgerisk.io.atomic import write_csv

        write_csv(args.out, pd.DataFrame([r.__dict__ for r in rows]))


if __name__ == "__main__":
    main()
