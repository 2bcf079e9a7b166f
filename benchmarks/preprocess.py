"""Preprocessing throughput on sample_data, and the share of time spent decoding files.

    python benchmarks/preprocess.py [--data sample_data] [--repeats 3]

Prints cases per second at --jobs 1 and 2 (fresh output folder each run, so nothing is
skipped), and the decode floor: the time to read every image and mask with SimpleITK and
cast them to arrays, the least any preprocessing must spend, as a share of the --jobs 1 time.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path[:] = [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]  # this folder's radiomics.py must not shadow pyradiomics

os.environ.setdefault("LGERISK_NO_PROGRESS", "1")


def decode_seconds(data: Path) -> float:
    """Seconds to read and array-ify every image and mask of the cohort (the floor)."""
    import SimpleITK as sitk

    from lgerisk.io.cohort import discover_cohort

    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    start = time.perf_counter()
    for case in discover_cohort(data).cases:
        for path in (case.image, case.mask):
            sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    return time.perf_counter() - start


def preprocess_seconds(data: Path, jobs: int) -> float:
    """Seconds for a full preprocess of the cohort into a fresh folder."""
    from lgerisk.preprocess.config import PreprocessConfig
    from lgerisk.preprocess.run import preprocess_cohort

    out = Path(tempfile.mkdtemp(prefix="lgerisk-bench-"))
    try:
        start = time.perf_counter()
        report, _ = preprocess_cohort(data, out, PreprocessConfig(), jobs=jobs)
        elapsed = time.perf_counter() - start
        assert not report.failed, report.failed
        return elapsed
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / "sample_data")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from lgerisk.io.cohort import discover_cohort

    n = len(discover_cohort(args.data).cases)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; cohort {args.data} ({n} cases)"
    )
    floor = min(decode_seconds(args.data) for _ in range(args.repeats))
    rows = []
    for jobs in (1, 2):
        seconds = min(preprocess_seconds(args.data, jobs) for _ in range(args.repeats))
        rows.append((jobs, seconds))
    print(f"{'jobs':>4} {'seconds':>8} {'cases/s':>8} {'s/case':>7} {'decode share':>13}")
    for jobs, seconds in rows:
        share = f"{100 * floor / seconds:.0f} %" if jobs == 1 else "-"
        print(f"{jobs:>4} {seconds:8.2f} {n / seconds:8.2f} {seconds / n:7.3f} {share:>13}")
    print(f"decode floor: {floor:.2f} s ({n / floor:.1f} cases/s); speed-up at 2 jobs: {rows[0][1] / rows[1][1]:.2f}x")


if __name__ == "__main__":
    main()
