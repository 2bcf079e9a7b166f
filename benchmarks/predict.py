"""How fast is ``lgerisk predict``? One scan in a fresh process, and a batch of 100 scans.

    python benchmarks/predict.py --work bench-out/predict

1. A default-size risk model (encoder width 16, 12 x 96 x 96 input; 1 pretraining epoch and a
   2-fold probe: the weights do not matter for timing) on a SYNTHETIC cohort of 100 cases.
2. Single scan, as a user runs it: wall time of ``lgerisk predict one.nii.gz --model RUN`` in a
   fresh process, against the floor ``python -c "import torch; import SimpleITK; read the scan"``
   (the best any Python tool loading torch could do), median of --repeats runs each, run in alternation.
3. Batch: ``lgerisk predict --data COHORT --model RUN --out preds.csv`` over the 100 scans, scans/s
   (the model is loaded once), at --jobs 1 and --jobs 2, median of --batch-repeats runs, with the cores
   they keep busy on average (CPU time of the command and its workers over wall time); and whether the two
   tables are byte for byte the same.
4. With --ablations: the --jobs 2 batch again with one of its speed levers off at a time (each run as
   ``python -c`` with that lever patched out, then lgerisk's own command line), interleaved with the batch
   as it is so that every row has its own baseline, and whether each table is still the same.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path[:] = [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]  # this folder's radiomics.py must not shadow pyradiomics

BIN = Path(sys.executable).parent


ABLATIONS = {
    "freed memory returned to the system (no reuse_freed_memory)": (
        "import lgerisk.predict.run as r; r.reuse_freed_memory = lambda: False"
    ),
    "workers at the parent's priority (niceness 0)": "import lgerisk.batch as b; b.STAGE_WORKER_NICENESS = 0",
    "network at torch's default threads (not the cores the workers leave)": (
        "import lgerisk.predict.run as r; r.network_threads = lambda workers, default, cores=None: None"
    ),
    "no scans prepared ahead beyond 4 a worker (lead 0)": "import lgerisk.predict.run as r; r.PREPARED_AHEAD = 0",
}
"""Each speed lever of a prediction batch, and the patch that turns it off."""


def ablated(patch: str) -> list[str]:
    """``lgerisk`` as a ``python -c`` command line that applies ``patch`` first."""
    return [sys.executable, "-c", f"import sys; {patch}; from lgerisk.cli import main; sys.argv[0] = 'lgerisk'; main()"]


def timed(command: list[str], env: dict[str, str]) -> float:
    return timed_with_cpu(command, env)[0]


def timed_with_cpu(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and its workers, user + system)."""
    import resource

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    started, cpu_before = time.perf_counter(), cpu()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started, cpu() - cpu_before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("bench-out/predict"))
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5, help="runs of the single-scan measures (median)")
    parser.add_argument("--batch-repeats", type=int, default=3, help="runs of each batch measure (median)")
    parser.add_argument("--ablations", action="store_true", help="also the --jobs 2 batch with each lever off")
    args = parser.parse_args()
    env = {**os.environ, "LGERISK_NO_PROGRESS": "1"}
    os.environ.update(env)
    work = args.work
    cohort, risk = work / "cohort", work / "risk"
    if not (cohort / "outcomes.csv").is_file():
        subprocess.run([str(BIN / "lgerisk"), "synth", str(cohort), "--cases", str(args.cases), "--quiet"], check=True)
    if not (risk / "model.pt").is_file():
        from lgerisk.training.finetune import FinetuneConfig, run_finetune
        from lgerisk.training.pretrain import PretrainConfig, run_pretrain

        run_pretrain(cohort, work / "pretrain", PretrainConfig(epochs=1), device="cpu")
        run_finetune(
            cohort,
            risk,
            FinetuneConfig(folds=2, baselines=False, n_boot=0),
            encoder=work / "pretrain",
            features=str(work / "pretrain" / "cache" / "radiomics.csv"),
            device="cpu",
        )
    scan = work / "one" / "case.nii.gz"
    first = sorted((cohort / "images").glob("*.nii.gz"))[0]
    scan.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(first, scan)
    shutil.copy(cohort / "masks" / first.name, scan.parent / "case_seg.nii.gz")

    floor_code = (
        f"import torch, SimpleITK as s; s.GetArrayFromImage(s.ReadImage({str(scan)!r})); "
        f"s.GetArrayFromImage(s.ReadImage({str(scan.parent / 'case_seg.nii.gz')!r}))"
    )
    floor, single = [], []
    for _ in range(args.repeats):  # in alternation, so that both see the machine in the same state
        floor.append(timed([sys.executable, "-c", floor_code], env))
        single.append(timed([str(BIN / "lgerisk"), "predict", str(scan), "--model", str(risk), "--quiet"], env))
    print("SYNTHETIC scans; 2-core CPU unless stated")
    print(
        f"single scan, fresh process: lgerisk predict {statistics.median(single):.2f} s, "
        f"floor (import torch + read scan and mask) {statistics.median(floor):.2f} s, "
        f"ratio {statistics.median(single) / statistics.median(floor):.2f}"
    )
    rates = {}
    for jobs in (1, 2):
        out = work / f"batch-j{jobs}.csv"
        runs, busy = [], []
        for _ in range(args.batch_repeats):
            for stale in (out, Path(f"{out}.parts")):
                shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
            command = ["predict", "--data", str(cohort), "--model", str(risk), "--out", str(out), "--jobs", str(jobs)]
            seconds, cpu_seconds = timed_with_cpu([str(BIN / "lgerisk"), *command, "--quiet"], env)
            runs.append(seconds)
            busy.append(cpu_seconds / seconds)
        seconds = statistics.median(runs)
        rates[jobs] = args.cases / seconds
        print(
            f"batch of {args.cases} scans, --jobs {jobs}: {seconds:.1f} s, {rates[jobs]:.1f} scans/s "
            f"(median of {len(runs)}; one process start and one model load included); "
            f"{statistics.median(busy):.2f} of {os.cpu_count()} cores busy on average"
        )
    same = (work / "batch-j1.csv").read_bytes() == (work / "batch-j2.csv").read_bytes()
    print(f"--jobs 2 / --jobs 1: {rates[2] / rates[1]:.2f}x; the two tables are {'identical' if same else 'DIFFERENT'}")
    if args.ablations:
        ablations(work, cohort, risk, args.cases, args.batch_repeats, env)


def ablations(work: Path, cohort: Path, risk: Path, cases: int, repeats: int, env: dict[str, str]) -> None:
    """The --jobs 2 batch with each lever off, each against the batch as it is, run in alternation."""
    reference = (work / "batch-j1.csv").read_bytes()
    out = work / "ablation.csv"
    command = ["predict", "--data", str(cohort), "--model", str(risk), "--out", str(out), "--jobs", "2", "--quiet"]

    def run(prefix: list[str]) -> tuple[float, bool]:
        for stale in (out, Path(f"{out}.parts")):
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink(missing_ok=True)
        seconds = timed([*prefix, *command], env)
        return seconds, out.read_bytes() == reference

    print(f"--jobs 2 with one lever off ({cases} scans, median of {repeats}; 'as is' run in alternation with it):")
    for name, patch in ABLATIONS.items():
        off, on, same = [], [], True
        for _ in range(repeats):
            seconds, identical = run(ablated(patch))
            off.append(seconds)
            same &= identical
            seconds, identical = run([str(BIN / "lgerisk")])
            on.append(seconds)
            same &= identical
        print(
            f"  {name}: {cases / statistics.median(off):.1f} scans/s against {cases / statistics.median(on):.1f} "
            f"as is ({statistics.median(off) / statistics.median(on):.2f}x the time); "
            f"tables {'identical' if same else 'DIFFERENT'}"
        )


if __name__ == "__main__":
    main()
