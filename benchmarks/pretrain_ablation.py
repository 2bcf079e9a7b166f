"""Which pretraining levers make the image embedding carry what scar % misses? An ablation on a SYNTHETIC
cohort with headroom (generator 2.0, hazard version 2).

    python benchmarks/pretrain_ablation.py --work bench-out/le2 --seed 0 --epochs 8

Expects ``WORK/seed{S}`` as ``label_efficiency.py --pool`` leaves it (``prep`` + ``radiomics.csv``:
the labelled cohort; ``pool-prep`` + ``pool-radiomics.csv``: the disjoint unlabelled pool), and makes
it when absent. For each variant: pretrain on the pool, embed the labelled cohort with the frozen
encoder and measure, by 5-fold cross-validation on the labelled cases (never seen in pretraining):

* R² of the true image-only log-hazard (``lp_image`` of ground_truth.csv) from the embedding (ridge,
  penalty by inner leave-one-out), and from scar % + embedding against scar % alone: the share of
  what scar % misses that the embedding carries. Outcome-free, so far less noisy than a C-index;
* the frozen probe's pooled out-of-fold Harrell's C from ``run_finetune`` for each head of HEADS
  (the embedding alone; with scar % and grey-zone %, penalised like the embedding or not, on the
  embedding's 8 leading PCs or all of it), and its paired delta C over scar-% Cox with its
  bootstrap 95 % CI.

All numbers are on synthetic data. The table is printed and written to ``WORK/ablation-seed{S}.csv``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

VARIANTS: dict[str, dict[str, Any]] = {
    "hybrid, as before": {},
    "+ aux head (all)": {"aux_weight": 1.0},
    "+ aux head (QC only)": {"aux_weight": 1.0, "aux_targets": "qc"},
    "+ every training case a negative": {"objective": {"negatives": "all"}},
    "+ false negatives (cos >= 0.7)": {"objective": {"negatives": "all", "false_negative_similarity": 0.7}},
    "+ decorrelated radiomics view": {"radiomics_view": "decorrelated"},
    "+ preserving augmentation": {"augment": "preserving"},
    "all levers": {
        "aux_weight": 1.0,
        "radiomics_view": "decorrelated",
        "augment": "preserving",
        "objective": {"negatives": "all", "false_negative_similarity": 0.7},
    },
    "simclr, as before": {"objective": {"preset": "simclr"}},
    "simclr + preserving augmentation": {"objective": {"preset": "simclr"}, "augment": "preserving"},
}
"""Variant name -> PretrainConfig overrides (``augment`` by preset name; ``objective`` merged into the
hybrid preset)."""


HEADS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "probe": ("probe", "finetune-probe", {}),
    "probe_scar": ("probe + scar % (8 PCs)", "finetune-probe-scar", {"with_scar": True, "head_pcs": 8}),
    "probe_scar_free": (
        "probe + unpenalised scar % (8 PCs)",
        "finetune-probe-scar-free",
        {"with_scar": True, "head_pcs": 8, "scar_penalty_factor": 0.0},
    ),
    "probe_scar_free_all": (
        "probe + unpenalised scar % (whole embedding)",
        "finetune-probe-scar-free-all",
        {"with_scar": True, "scar_penalty_factor": 0.0},
    ),
}
"""Risk heads scored on each frozen encoder: key -> (row name, run folder, FinetuneConfig settings)."""


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ridge_cv_predictions(x: Any, y: Any, folds: Any, alphas: Any = None) -> Any:
    """Out-of-fold ridge predictions of ``y`` from ``x`` (columns standardised on each training fold;
    the penalty chosen on the training fold by exact leave-one-out error)."""
    import numpy as np

    alphas = np.logspace(-3, 4, 15) if alphas is None else np.asarray(alphas)
    out = np.full(len(y), np.nan)
    for fold in np.unique(folds):
        train, test = folds != fold, folds == fold
        mean, sd = x[train].mean(axis=0), x[train].std(axis=0)
        sd[sd == 0] = 1
        xt, xs = (x[train] - mean) / sd, (x[test] - mean) / sd
        y_mean = y[train].mean()
        yt = y[train] - y_mean
        u, s, vt = np.linalg.svd(xt, full_matrices=False)
        uty = u.T @ yt
        best, best_alpha = np.inf, alphas[0]
        for alpha in alphas:
            shrink = s**2 / (s**2 + alpha)
            fitted = u @ (shrink * uty)
            leverage = (u**2 * shrink).sum(axis=1)
            loo = np.mean(((yt - fitted) / (1 - leverage + 1 / len(yt))) ** 2)
            if loo < best:
                best, best_alpha = loo, alpha
        coef = vt.T @ (s / (s**2 + best_alpha) * uty)
        out[test] = xs @ coef + y_mean
    return out


def r_squared(y: Any, predicted: Any) -> float:
    """1 - SSE / SST."""
    import numpy as np

    return float(1 - np.sum((y - predicted) ** 2) / np.sum((y - y.mean()) ** 2))


def embedding_metrics(
    encoder: Path, prep: Path, features: Path, truth: Path, cache: Path, seed: int
) -> dict[str, float]:
    """R² of the true image-only log-hazard from the frozen embedding (and beside scar %), 5-fold CV."""
    import numpy as np
    import pandas as pd

    from lgerisk.artifacts import load_encoder
    from lgerisk.data.tensors import TensorCache, TensorSpec
    from lgerisk.training.data import prepare_data
    from lgerisk.training.survival_fit import embed

    model, card = load_encoder(encoder)
    spec = TensorSpec(**card.tensor_spec)
    prepared = prepare_data(prep, cache, features=str(features))
    tensors = TensorCache(cache / "tensors")
    z = embed(model, [tensors.get(case, spec) for case in prepared.cases], "cpu")
    ids = prepared.case_ids
    lp = pd.read_csv(truth, dtype={"case_id": str}).set_index("case_id").loc[ids, "lp_image"].to_numpy(float)
    scar = prepared.features.loc[ids, "scar_percent"].to_numpy(float)[:, None]
    folds = np.random.default_rng([seed, 5]).permutation(len(ids)) % 5
    scar_only = r_squared(lp, ridge_cv_predictions(scar, lp, folds))
    return {
        "r2_lp_image_embedding": r_squared(lp, ridge_cv_predictions(z, lp, folds)),
        "r2_lp_image_scar": scar_only,
        "r2_lp_image_scar_embedding": r_squared(lp, ridge_cv_predictions(np.hstack([scar, z]), lp, folds)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("bench-out/le2"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--pool", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--embedding-dim", type=int, default=64)
    parser.add_argument("--slices", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), help="names from VARIANTS")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("LGERISK_NO_PROGRESS", "1")
    import pandas as pd
    import torch

    from lgerisk.data.augment import AUGMENT_PRESETS
    from lgerisk.training.finetune import FinetuneConfig, run_finetune
    from lgerisk.training.pretrain import PretrainConfig, run_pretrain

    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant {unknown[0]!r}; choose from: {', '.join(VARIANTS)}")
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    label_efficiency = _load("label_efficiency")
    root = args.work / f"seed{args.seed}"
    prep, features, truth = root / "prep", root / "radiomics.csv", root / "synth" / "ground_truth.csv"
    pool_prep, pool_features = root / "pool-prep", root / "pool-radiomics.csv"
    if not pool_features.is_file() or not features.is_file():
        lgerisk = label_efficiency.lgerisk
        for folder, out, cases, seed in (
            (root / "synth", prep, args.cases, args.seed),
            (root / "pool", pool_prep, args.pool, 1000 + args.seed),
        ):
            if not (folder / "outcomes.csv").is_file():
                lgerisk("synth", str(folder), "--cases", str(cases), "--seed", str(seed), "--hazard-version", "2")
            if not (out / "cases.csv").is_file():
                lgerisk("preprocess", "--data", str(folder), "--out", str(out), "--jobs", str(args.jobs))
            table = out.parent / ("radiomics.csv" if out == prep else "pool-radiomics.csv")
            if not table.is_file():
                lgerisk("extract-radiomics", "--data", str(out), "--out", str(table), "--jobs", str(args.jobs))
    tensor = {"slices": args.slices, "size": args.size}
    common = dict(
        folds=5,
        label_fraction=1.0,
        n_boot=args.bootstrap,
        seed=args.seed,
        epochs=4,
        width=args.width,
        embedding_dim=args.embedding_dim,
        tensor=tensor,
    )
    baselines = root / "finetune-baselines-1"
    if not (baselines / "model_card.json").is_file():
        run_finetune(
            prep,
            baselines,
            FinetuneConfig(mode="full", baselines=True, **common),
            features=str(features),
            device="cpu",
        )
    reference = label_efficiency.predictions_from_parts(baselines)
    reference = reference[reference["method"].isin(["scar-% Cox", "radiomics Cox"])]
    rows = []
    for name in args.variants:
        overrides = dict(VARIANTS[name])
        objective = {"preset": "hybrid", **overrides.pop("objective", {})}
        augment = dict(AUGMENT_PRESETS[overrides.pop("augment", "default")])
        slug = "".join(ch if ch.isalnum() else "-" for ch in name).strip("-")
        run = root / f"ablation-e{args.epochs}-{slug}"
        started = time.perf_counter()
        if not (run / "model.pt").is_file():
            shutil.rmtree(run, ignore_errors=True)
            run_pretrain(
                pool_prep,
                run,
                PretrainConfig(
                    epochs=args.epochs,
                    width=args.width,
                    embedding_dim=args.embedding_dim,
                    projection_dim=64,
                    objective=objective,
                    augment=augment,
                    tensor=tensor,
                    seed=args.seed,
                    **overrides,
                ),
                features=str(pool_features),
                device="cpu",
            )
        seconds = time.perf_counter() - started
        history = pd.read_csv(run / "metrics.csv").iloc[-1]
        record: dict[str, Any] = {
            "variant": name,
            "pretrain_s": round(seconds),
            "val_top1": history.get("val_top1"),
            "val_aux_r2": history.get("val_aux_r2"),
        }
        record.update(embedding_metrics(run, prep, features, truth, root / "ablation-cache", args.seed))
        parts = [reference]
        for _key, (label, folder, config) in HEADS.items():
            out = run / folder
            if not (out / "model_card.json").is_file():
                run_finetune(
                    prep,
                    out,
                    FinetuneConfig(mode="probe", baselines=False, **config, **common),
                    encoder=run,
                    features=str(features),
                    device="cpu",
                )
            parts.append(label_efficiency.predictions_from_parts(out, label))
        table = label_efficiency.joint_table(pd.concat(parts, ignore_index=True), truth, args.bootstrap, args.seed)
        table = table.set_index("method")
        for key, (label, _, _) in HEADS.items():
            record[f"c_{key}"] = table.loc[label, "harrell_c"]
            for part in ("delta_c", "delta_c_low", "delta_c_high"):
                record[f"{part}_{key}"] = table.loc[label, part]
        record["c_scar_cox"] = table.loc["scar-% Cox", "harrell_c"]
        record["c_radiomics_cox"] = table.loc["radiomics Cox", "harrell_c"]
        rows.append(record)
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in record.items()}), flush=True)
        pd.DataFrame(rows).to_csv(args.work / f"ablation-seed{args.seed}-e{args.epochs}.csv", index=False)
    frame = pd.DataFrame(rows)
    print("\nSYNTHETIC (hazard version 2): pretraining ablation, seed", args.seed)
    print(
        frame[
            [
                "variant",
                "pretrain_s",
                "val_top1",
                "val_aux_r2",
                "r2_lp_image_embedding",
                "r2_lp_image_scar_embedding",
                "r2_lp_image_scar",
            ]
            + [f"c_{k}" for k in HEADS]
            + [f"delta_c_{k}" for k in HEADS]
        ]
        .round(3)
        .to_string(index=False)
    )


if __name__ == "__main__":
    main()
