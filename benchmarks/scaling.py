"""Does the cost per scan stay flat, and the memory stay put, as a cohort grows? (SYNTHETIC cohort)

    python benchmarks/scaling.py --work bench-out/scaling            # 250, 500, 1,000, 2,000 scans
    python benchmarks/scaling.py --work bench-out/scaling --summarise-only

1. One SYNTHETIC cohort of the largest size is generated once (``lgerisk synth --small``; reused on
   rerun), and each size takes its first N cases (a manifest).
2. At each size, each command runs afresh in its own process, as a user runs it:
   ``preprocess --jobs J``, ``extract-radiomics --jobs J`` (on that preprocessed folder),
   ``pretrain --epochs 1`` (on it, with its feature table) and ``predict --jobs J`` (the raw scans,
   with the risk model given by ``--model``, else one fine-tuned here on the smallest size).
3. For each: wall seconds, seconds per scan, and the peak resident memory of the command's own
   process and of its largest worker (``getrusage`` at exit, read by a wrapper in that process).

The table is printed and written to WORK/scaling.csv; the summary gives, per command, the spread of
s/scan across sizes (largest over smallest, minus 1), the cost of each further scan between consecutive
sizes against a straight-line fit (its slope; its intercept is the fixed start-up: process, imports, model,
worker pool), and the growth of the main process's peak memory from the smallest to the largest size.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path[:] = [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]  # this folder's radiomics.py must not shadow pyradiomics

COMMANDS = ("preprocess", "extract-radiomics", "pretrain", "predict")
WRAPPER = (
    "import atexit, json, resource, sys\n"
    "out = sys.argv[1]\n"
    "def report():\n"
    "    usage = {'main_kib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,\n"
    "             'workers_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\n"
    "    open(out, 'w').write(json.dumps(usage))\n"
    "atexit.register(report)\n"
    "sys.argv = ['lgerisk', *sys.argv[2:]]\n"
    "from lgerisk.cli import main\n"
    "main()\n"
)
"""Runs the command line in this very process and writes its peak memory at exit (``main`` runs the
``atexit`` handlers before it ends the process)."""


def run(args: list[str], usage: Path, env: dict[str, str]) -> tuple[float, dict[str, int]]:
    """Wall seconds and peak memory (KiB) of ``lgerisk ARGS`` in a fresh process."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", WRAPPER, str(usage), *args], check=True, env=env, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    return seconds, json.loads(usage.read_text())


def manifest(cohort: Path, size: int, path: Path) -> Path:
    """A manifest of the cohort's first ``size`` cases."""
    images = sorted((cohort / "images").glob("*.nii.gz"))[:size]
    if len(images) < size:
        raise SystemExit(f"{cohort}: only {len(images)} cases, {size} asked for")
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = ["case_id,image,mask"] + [
        f"{image.name.removesuffix('.nii.gz')},{image.resolve()},{(cohort / 'masks' / image.name).resolve()}"
        for image in images
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


def risk_model(work: Path, prep: Path, features: Path, encoder: Path, outcomes: Path, env: dict[str, str]) -> Path:
    """A risk model fine-tuned on the smallest size (2 folds, no baselines): timing needs a model, not a good one."""
    risk = work / "risk"
    if not (risk / "model_card.json").is_file():
        subprocess.run(
            [sys.executable, "-m", "lgerisk", "finetune", "--data", str(prep), "--features", str(features)]
            + ["--encoder", str(encoder), "--outcomes", str(outcomes), "--out", str(risk), "--folds", "2"]
            + ["--no-baselines", "--bootstrap", "0"]
            + ["--device", "cpu", "--quiet"],
            check=True,
            env=env,
        )
    return risk


def summarise(rows: list[dict[str, Any]]) -> None:
    """Print the table and, per command, the spread of s/scan and the growth of peak memory."""
    print("SYNTHETIC cohort (--small scans)")
    print(f"{'command':<18} {'scans':>6} {'seconds':>8} {'s/scan':>7} {'main MiB':>9} {'worker MiB':>10}")
    for row in rows:
        print(
            f"{row['command']!s:<18} {row['scans']!s:>6} {float(row['seconds']):8.1f} {float(row['s_per_scan']):7.3f} "
            f"{float(row['main_mib']):9.0f} {float(row['worker_mib']):10.0f}"
        )
    for command in COMMANDS:
        mine = sorted((r for r in rows if r["command"] == command), key=lambda r: int(r["scans"]))
        if len(mine) < 2:
            continue
        scans = [int(r["scans"]) for r in mine]
        seconds = [float(r["seconds"]) for r in mine]
        rates = [float(r["s_per_scan"]) for r in mine]
        # the cost of each further scan, between consecutive sizes: linear growth keeps it constant
        marginal = [(seconds[i + 1] - seconds[i]) / (scans[i + 1] - scans[i]) for i in range(len(mine) - 1)]
        slope, fixed = linear_fit(scans, seconds)
        first, last = float(mine[0]["main_mib"]), float(mine[-1]["main_mib"])
        print(
            f"{command}: s/scan {min(rates):.3f}-{max(rates):.3f} (spread {max(rates) / min(rates) - 1:+.0%}); "
            f"each further scan {', '.join(f'{m:.3f}' for m in marginal)} s ({fit_agreement(marginal, slope)}, "
            f"start-up {fixed:.1f} s); "
            f"main peak memory {first:.0f} -> {last:.0f} MiB ({last / first - 1:+.1%}) "
            f"from {scans[0]} to {scans[-1]} scans"
        )


def fit_agreement(marginal: list[float], slope: float) -> str:
    """How far the per-interval cost of a scan strays from the fitted slope, in words.

    A slope at or below zero (sizes too close for the timer's resolution) has no relative spread to give.
    """
    if slope <= 0:
        return f"the fit's slope is {slope:.3f} s: too few scans between sizes to measure a cost per scan"
    return f"within {max(abs(m / slope - 1) for m in marginal):.0%} of the fit's {slope:.3f} s"


def linear_fit(x: list[int], y: list[float]) -> tuple[float, float]:
    """Least-squares ``y = slope * x + intercept``: (slope, intercept)."""
    n = len(x)
    mean_x, mean_y = sum(x) / n, sum(y) / n
    slope = sum((a - mean_x) * (b - mean_y) for a, b in zip(x, y)) / sum((a - mean_x) ** 2 for a in x)
    return slope, mean_y - slope * mean_x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("bench-out/scaling"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[250, 500, 1000, 2000])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8, help="pretraining batch (the command's default)")
    parser.add_argument("--model", type=Path, help="risk model for predict (default: fine-tuned on the smallest size)")
    parser.add_argument("--summarise-only", action="store_true")
    parser.add_argument(
        "--commands",
        nargs="+",
        choices=COMMANDS,
        default=list(COMMANDS),
        help="rerun only these (the others' rows are kept from WORK/scaling.csv; predict then needs --model "
        "or WORK/risk from an earlier full run)",
    )
    args = parser.parse_args()
    work: Path = args.work
    table = work / "scaling.csv"
    if args.summarise_only:
        with table.open() as handle:
            summarise(list(csv.DictReader(handle)))
        return
    env = {**os.environ, "LGERISK_NO_PROGRESS": "1"}
    sizes = sorted(args.sizes)
    cohort = work / "cohort"
    if not (cohort / "outcomes.csv").is_file():
        subprocess.run(
            [sys.executable, "-m", "lgerisk", "synth", str(cohort), "--cases", str(sizes[-1]), "--small", "--quiet"],
            check=True,
            env=env,
        )
    import shutil

    every = set(args.commands) == set(COMMANDS)
    rows: list[dict[str, Any]] = []
    if not every:
        if not table.is_file():
            parser.error(f"--commands reruns part of an earlier full run; {table} is not there")
        with table.open() as handle:
            rows = [row for row in csv.DictReader(handle) if row["command"] not in args.commands]
    model = args.model if args.model is not None or every else work / "risk"
    outputs = {  # what each command writes in a size's folder: removed before it runs again
        "preprocess": ("prep",),
        "extract-radiomics": ("radiomics.csv", "radiomics.parts"),
        "pretrain": ("pretrain",),
        "predict": ("predictions.csv", "predictions.csv.parts"),
    }
    for size in sizes:
        here = work / f"n{size}"
        if every and here.exists():
            shutil.rmtree(here)
        for stale in (here / name for command in args.commands for name in outputs[command]):
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink(missing_ok=True)
        data = manifest(cohort, size, here / "manifest.csv")
        prep, features, encoder = here / "prep", here / "radiomics.csv", here / "pretrain"
        commands = {
            "preprocess": ["preprocess", "--data", str(data), "--out", str(prep), "--jobs", str(args.jobs)],
            "extract-radiomics": ["extract-radiomics", "--data", str(prep), "--out", str(features)]
            + ["--jobs", str(args.jobs)],
            "pretrain": ["pretrain", "--data", str(prep), "--features", str(features), "--out", str(encoder)]
            + ["--epochs", "1", "--batch-size", str(args.batch_size), "--device", "cpu"],
            "predict": ["predict", "--data", str(data), "--out", str(here / "predictions.csv")]
            + ["--jobs", str(args.jobs), "--device", "cpu"],
        }
        for command in (c for c in COMMANDS if c in args.commands):
            argv = commands[command]
            if command == "predict":
                if model is None:
                    model = risk_model(work, prep, features, encoder, cohort / "outcomes.csv", env)
                argv = [*argv, "--model", str(model)]
            seconds, usage = run([*argv, "--quiet"], here / f"{command}.usage.json", env)
            rows.append(
                {
                    "command": command,
                    "scans": size,
                    "seconds": round(seconds, 2),
                    "s_per_scan": round(seconds / size, 4),
                    "main_mib": round(usage["main_kib"] / 1024, 1),
                    "worker_mib": round(usage["workers_kib"] / 1024, 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    work.mkdir(parents=True, exist_ok=True)
    with table.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    summarise(rows)


if __name__ == "__main__":
    main()
