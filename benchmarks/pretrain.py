"""Pretraining throughput: steps and volumes per second, the cost of the data path, peak memory.

    python benchmarks/pretrain.py [--data sample_data] [--epochs 4] [--device cpu|cuda]

Runs the real training loop (``run_pretrain``: the default radiomics-guided objective, one augmented
view a case, default model and batch of 8, no validation) on the same preprocessed cases, in two regimes:

No spare core (training uses every core, as by default):

* ``pre-made``: the cached tensors, no augmentation (model-bound: the floor of the data path);
* ``data path``: the real path, torchio augmentation of each view, ``--num-workers 0``;
* ``data path, 1 worker``: the same with one loader process.

A spare core (training on all cores but one, ``--spare 1``; the loader worker on the spare one), the
regime of any machine with more cores than training uses (every GPU machine):

* ``pre-made, N-1 threads`` and ``data path, N-1 threads + 1 worker``.

Seconds per epoch are read from the run's metrics.csv, skipping the first epoch (warm-up).
Ratio = data-path speed / pre-made speed in the same regime. Peak memory is the process's maximum
resident set. On CUDA, ``--device cuda`` runs the same with AMP.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import sys
import tempfile
from pathlib import Path

sys.path[:] = [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]  # this folder's radiomics.py must not shadow pyradiomics

os.environ.setdefault("LGERISK_NO_PROGRESS", "1")

NO_AUGMENTATION = {
    "affine": False,
    "elastic": False,
    "bias_field": False,
    "noise": False,
    "gamma": False,
    "motion": False,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / "sample_data")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--spare", type=int, default=1, help="cores left to the loader worker in the second regime")
    args = parser.parse_args()
    import pandas as pd
    import torch

    from lgerisk.training.data import prepare_data
    from lgerisk.training.pretrain import PretrainConfig, run_pretrain

    work = Path(tempfile.mkdtemp(prefix="lgerisk-bench-pretrain-"))
    try:
        prepared = prepare_data(args.data, work / "cache", jobs=2)
        features = work / "cache" / "radiomics.csv"
        prep = work / "cache" / "preprocessed"
        n = len(prepared.cases)
        batch = 8
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), device {args.device}; {n} cases, batch {batch}, "
            f"{n // batch} steps/epoch, tensors 2 x 12 x 96 x 96, default objective"
        )
        threads = torch.get_num_threads()
        spare = max(threads - args.spare, 1)
        regimes = [
            (
                f"no spare core ({threads} training threads)",
                threads,
                (("pre-made", NO_AUGMENTATION, 0), ("data path", {}, 0), ("data path, 1 worker", {}, 1)),
            ),
            (
                f"a spare core ({spare} training thread(s), the worker on the spare core)",
                spare,
                ((f"pre-made, {spare} thread(s)", NO_AUGMENTATION, 0), (f"data path, {spare} + 1 worker", {}, 1)),
            ),
        ]
        for title, count, variants in regimes:
            torch.set_num_threads(count)
            rows = []
            for name, augment, workers in variants:
                run = work / name.replace(" ", "_").replace(",", "").replace("(", "").replace(")", "")
                config = PretrainConfig(
                    epochs=args.epochs, batch_size=batch, val_fraction=0.0, augment=augment, num_workers=workers
                )
                run_pretrain(prep, run, config, features=str(features), device=args.device)
                seconds = pd.read_csv(run / "metrics.csv")["seconds"].iloc[1:].mean()
                steps = n // batch
                views = 2 if config.objective.get("preset") in ("hybrid", "simclr") else 1
                rows.append((name, seconds / steps, steps / seconds, views * batch * steps / seconds))
            base = rows[0][2]
            print(f"\n{title}")
            print(f"{'path':<28} {'s/step':>7} {'steps/s':>8} {'volumes/s':>10} {'ratio':>6}")
            for name, per_step, steps_s, volumes_s in rows:
                print(f"{name:<28} {per_step:7.3f} {steps_s:8.3f} {volumes_s:10.2f} {steps_s / base:6.2f}")
        torch.set_num_threads(threads)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"peak resident memory: {peak:.0f} MiB (main process), {children:.0f} MiB (largest loader worker)")
        if torch.cuda.is_available() and args.device.startswith("cuda"):
            print(f"peak CUDA memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
