"""Pretraining throughput: steps and volumes per second, the cost of the data path, peak memory.

    python benchmarks/pretrain.py [--data sample_data] [--epochs 4] [--device cpu|cuda]

Runs the real training loop (``run_pretrain``: hybrid objective, default model and batch of 8,
no validation) three ways on the same preprocessed cases:

* ``pre-made``: tensors in memory, no augmentation (the floor of the data path);
* ``data path``: the real path, torchio augmentation of both views, ``--num-workers 0``;
* ``data path, 1 worker``: the same with one loader process.

Seconds per epoch are read from the run's metrics.csv, skipping the first epoch (warm-up).
Ratio = data-path speed / pre-made speed. Peak memory is the process's maximum resident set.
On CUDA, ``--device cuda`` runs the same with AMP.
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
            f"{n // batch} steps/epoch, tensors 2 x 12 x 96 x 96, hybrid objective (2 views)"
        )
        rows = []
        for name, augment, workers in (
            ("pre-made", NO_AUGMENTATION, 0),
            ("data path", {}, 0),
            ("data path, 1 worker", {}, 1),
        ):
            run = work / name.replace(" ", "_").replace(",", "")
            config = PretrainConfig(
                epochs=args.epochs, batch_size=batch, val_fraction=0.0, augment=augment, num_workers=workers
            )
            run_pretrain(prep, run, config, features=str(features), device=args.device)
            seconds = pd.read_csv(run / "metrics.csv")["seconds"].iloc[1:].mean()
            steps = n // batch
            rows.append((name, seconds / steps, steps / seconds, 2 * batch * steps / seconds))
        base = rows[0][2]
        print(f"{'path':<22} {'s/step':>7} {'steps/s':>8} {'volumes/s':>10} {'ratio':>6}")
        for name, per_step, steps_s, volumes_s in rows:
            print(f"{name:<22} {per_step:7.3f} {steps_s:8.3f} {volumes_s:10.2f} {steps_s / base:6.2f}")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"peak resident memory: {peak:.0f} MiB (main process), {children:.0f} MiB (largest loader worker)")
        if torch.cuda.is_available() and args.device.startswith("cuda"):
            print(f"peak CUDA memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
