"""Feature extraction speed: `lgerisk extract-radiomics` against the pyradiomics command-line tool.

    python benchmarks/radiomics.py [--data sample_data] [--repeats 3]

Both tools run as fresh processes (as a user runs them) on the same preprocessed cases, with the
same parameter file (lgerisk's shipped default) and the same three ROIs (myocardium, scar, grey
zone), at --jobs 1 and 2. pyradiomics gets a batch CSV with one row per case and ROI and the ROI
masks written beforehand (not timed); lgerisk derives the ROI masks from the label map itself.
Prints seconds per case, cases per second and the ratio ours / theirs (<= 1.0: no slower).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[:] = [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]  # this folder's radiomics.py must not shadow pyradiomics

os.environ.setdefault("LGERISK_NO_PROGRESS", "1")
BIN = Path(sys.executable).parent


def prepare(data: Path, work: Path) -> tuple[Path, Path, int]:
    """Preprocess ``data`` and write the ROI masks and the pyradiomics batch CSV (not timed)."""
    import SimpleITK as sitk

    from lgerisk.preprocess.config import PreprocessConfig
    from lgerisk.preprocess.run import preprocess_cohort
    from lgerisk.radiomics.extract import roi_mask
    from lgerisk.radiomics.settings import ROIS

    prep = work / "prep"
    _, table = preprocess_cohort(data, prep, PreprocessConfig(), jobs=2)
    batch = work / "batch.csv"
    with batch.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ID", "Image", "Mask"])
        for case_id in table["case_id"]:
            image_path = prep / "cases" / case_id / "image.nii.gz"
            image = sitk.ReadImage(str(image_path))
            labels = sitk.GetArrayFromImage(sitk.ReadImage(str(prep / "cases" / case_id / "mask.nii.gz")))
            for roi in ROIS:
                mask_path = work / "rois" / f"{case_id}_{roi}.nii.gz"
                mask_path.parent.mkdir(exist_ok=True)
                sitk.WriteImage(roi_mask(labels, roi, image), str(mask_path))
                writer.writerow([f"{case_id}_{roi}", image_path, mask_path])
    return prep, batch, len(table)


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / "sample_data")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from lgerisk.radiomics.settings import default_params_path

    work = Path(tempfile.mkdtemp(prefix="lgerisk-bench-radiomics-"))
    try:
        prep, batch, n = prepare(args.data, work)
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores; {n} preprocessed cases x 3 ROIs; "
            f"params {default_params_path().name}"
        )
        print(
            f"{'jobs':>4} {'lgerisk s':>9} {'pyradiomics s':>13} {'ours s/case':>11} {'ours cases/s':>12} {'ratio':>6}"
        )
        for jobs in (1, 2):
            ours, theirs = [], []
            for repeat in range(args.repeats):
                out = work / f"ours-{jobs}-{repeat}.csv"
                ours.append(
                    timed(
                        [
                            str(BIN / "lgerisk"),
                            "extract-radiomics",
                            "--data",
                            str(prep),
                            "--out",
                            str(out),
                            "--jobs",
                            str(jobs),
                            "--quiet",
                        ]
                    )
                )
                theirs.append(
                    timed(
                        [
                            str(BIN / "pyradiomics"),
                            str(batch),
                            "-p",
                            str(default_params_path()),
                            "-j",
                            str(jobs),
                            "-o",
                            str(work / f"theirs-{jobs}-{repeat}.csv"),
                            "-f",
                            "csv",
                        ]
                    )
                )
            best_ours, best_theirs = min(ours), min(theirs)
            print(
                f"{jobs:>4} {best_ours:9.2f} {best_theirs:13.2f} {best_ours / n:11.3f} {n / best_ours:12.2f} "
                f"{best_ours / best_theirs:6.2f}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
