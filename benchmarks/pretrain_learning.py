"""Does pretraining learn? Held-out retrieval and a linear probe of scar %, on a SYNTHETIC cohort.

    python benchmarks/pretrain_learning.py --cases 240 --epochs 15 --work bench-out/learning

1. ``lgerisk synth`` a cohort of ``--cases`` (default size; not committed), then
   ``lgerisk pretrain`` on it (hybrid objective, defaults otherwise; held-out 20 %).
2. On the held-out cases: cross-modal retrieval top-1 / top-5 (does a scan's image embedding find
   its own radiomics embedding among the held-out cases?) against chance.
3. Linear probe: ridge regression from the frozen image embedding (``embed_image`` of the
   un-augmented tensor) to the simulator's true scar % — fitted on the training cases, R² on the
   held-out cases — for the pretrained encoder and for the same encoder untrained (same seed,
   same initial weights).
All numbers are on synthetic data.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path[:] = [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]  # this folder's radiomics.py must not shadow pyradiomics

BIN = Path(sys.executable).parent


def ridge_r2(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> float:
    """Held-out R² of ridge regression, alpha chosen by 5-fold CV on the training rows."""
    mean, scale = train_x.mean(0), train_x.std(0) + 1e-8
    a, b = (train_x - mean) / scale, (test_x - mean) / scale
    y_mean = train_y.mean()

    def fit(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
        return np.linalg.solve(x.T @ x + alpha * np.eye(x.shape[1]), x.T @ (y - y_mean))

    folds = np.arange(len(a)) % 5
    best, best_alpha = np.inf, 1.0
    for alpha in (0.1, 1, 10, 100, 1000, 10000):
        error = 0.0
        for k in range(5):
            w = fit(a[folds != k], train_y[folds != k], alpha)
            error += float(((a[folds == k] @ w + y_mean - train_y[folds == k]) ** 2).sum())
        if error < best:
            best, best_alpha = error, alpha
    prediction = b @ fit(a, train_y, best_alpha) + y_mean
    return 1.0 - float(((prediction - test_y) ** 2).sum() / ((test_y - test_y.mean()) ** 2).sum())


def embeddings(model, tensors: list[np.ndarray]) -> np.ndarray:  # noqa: ANN001
    import torch

    with torch.no_grad():
        return np.concatenate(
            [
                model.embed_image(torch.as_tensor(np.stack(tensors[i : i + 8]))).numpy()
                for i in range(0, len(tensors), 8)
            ]
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=240)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--work", type=Path, default=Path("bench-out/learning"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--synth", type=Path, default=None, help="reuse this synthetic cohort (else WORK/synth)")
    parser.add_argument("--objective", default="hybrid")
    parser.add_argument("--queue-size", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("LGERISK_NO_PROGRESS", "1")
    import pandas as pd
    import torch

    from lgerisk.artifacts import load_encoder
    from lgerisk.data.tensors import TensorCache, TensorSpec
    from lgerisk.io.cohort import discover_cohort
    from lgerisk.models.contrastive import ContrastiveModel, ContrastiveModelConfig
    from lgerisk.training.seeding import derive_seed

    data, run = args.synth or args.work / "synth", args.work / "pretrain"
    started = time.perf_counter()
    if not (data / "ground_truth.csv").is_file():
        subprocess.run(
            [str(BIN / "lgerisk"), "synth", str(data), "--cases", str(args.cases), "--seed", str(args.seed), "--quiet"],
            check=True,
        )
    if not (run / "model.pt").is_file():
        command = [
            str(BIN / "lgerisk"),
            "pretrain",
            "--data",
            str(data),
            "--out",
            str(run),
            "--epochs",
            str(args.epochs),
            "--jobs",
            str(args.jobs),
            "--device",
            "cpu",
            "--objective",
            args.objective,
            "--queue-size",
            str(args.queue_size),
        ]
        if (run / "checkpoint" / "last.pt").is_file():
            command.append("--resume")
        subprocess.run(command, check=True)
    model, card = load_encoder(run)
    truth = pd.read_csv(data / "ground_truth.csv").set_index("case_id")
    cohort = discover_cohort(run / "cache" / "preprocessed")
    cases = {case.case_id: case for case in cohort.cases}
    spec = TensorSpec.from_dict(card.tensor_spec)
    cache = TensorCache(run / "cache" / "tensors")
    train_ids, val_ids = list(card.data.train_cases), card.data.details["val_cases"]
    train_t = [cache.get(cases[c], spec) for c in train_ids]
    val_t = [cache.get(cases[c], spec) for c in val_ids]
    y_train = truth.loc[train_ids, "scar_percent"].to_numpy()
    y_val = truth.loc[val_ids, "scar_percent"].to_numpy()

    torch.manual_seed(derive_seed(card.config["seed"], 1))  # the pretraining run's own initial weights
    untrained = ContrastiveModel(ContrastiveModelConfig.from_dict(card.model)).eval()
    r2_trained = ridge_r2(embeddings(model, train_t), y_train, embeddings(model, val_t), y_val)
    r2_untrained = ridge_r2(embeddings(untrained, train_t), y_train, embeddings(untrained, val_t), y_val)
    metrics = pd.read_csv(run / "metrics.csv")
    last = metrics.iloc[-1]
    result = {
        "synthetic": True,
        "cases": args.cases,
        "objective": args.objective,
        "queue_size": args.queue_size,
        "train_cases": len(train_ids),
        "val_cases": len(val_ids),
        "epochs": int(last["epoch"]),
        "val_top1": float(last["val_top1"]),
        "val_top5": float(last["val_top5"]),
        "chance_top1": float(last["val_chance_top1"]),
        "chance_top5": float(last["val_chance_top5"]),
        "probe_r2_scar_percent_pretrained": round(r2_trained, 3),
        "probe_r2_scar_percent_untrained": round(r2_untrained, 3),
        "val_top1_by_epoch": [round(float(v), 3) for v in metrics["val_top1"]],
        "val_uniformity_last": float(last["val_uniformity"]),
        "seconds_per_epoch": float(metrics["seconds"].mean()),
        "wall_seconds_this_call": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result, indent=2))
    (args.work / "learning.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
