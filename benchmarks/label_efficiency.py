"""Label efficiency on SYNTHETIC cohorts: does radiomics-guided pretraining beat radiomics alone, or
deep learning alone, and with how few labelled patients?

    python benchmarks/label_efficiency.py --cases 200 --seeds 0 1 --work bench-out/label-efficiency

Per seed: ``lgerisk synth`` a cohort (not committed), preprocess it and extract its radiomics once,
pretrain three encoders on all its scans (no outcomes are used in pretraining): ``simclr`` (image
only), ``radiomics`` (image <-> radiomics only) and ``hybrid`` (both). Then, for each label fraction
(0.1, 0.25, 1.0 of every training fold), ``run_finetune`` with 5-fold stratified cross-validation,
the same folds for every method: scar-% Cox, radiomics Cox, the network from scratch (full), and
each encoder as a frozen probe and fine-tuned (full). The table gives the pooled out-of-fold
Harrell's C with its bootstrap 95 % CI and, beside it, the oracle C of the true log-hazard from
ground_truth.csv. Small settings so that it fits a 2-core CPU (see --help); a GPU run can raise them.
All numbers are on synthetic data.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]  # this folder's radiomics.py must not shadow pyradiomics

BIN = Path(sys.executable).parent


def lgerisk(*args: str) -> None:
    """Run the command line as a user would (quiet)."""
    subprocess.run([str(BIN / "lgerisk"), *args, "--quiet"], check=True)


def table_from_parts(run: Path, ground_truth: Path, n_boot: int, seed: int, horizons=(1.0, 3.0, 5.0)):  # noqa: ANN001, ANN201
    """The comparison table of a finished run, recomputed from its fitted (method, split) parts with the
    current evaluation code (so a change to the evaluation needs no refitting)."""
    import pandas as pd

    from lgerisk.evaluation import compare
    from lgerisk.evaluation.metrics import brier_grid

    parts = pd.concat([pd.read_csv(p, dtype={"case_id": str}, float_precision="round_trip")
                       for p in sorted((run / "parts").glob("*/*.csv"))], ignore_index=True)
    parts = parts.drop(columns=["settings"])
    cases = parts[parts["role"] == "test"].drop_duplicates("case_id")
    time, event = cases["time"].to_numpy(float), cases["event"].to_numpy(int)
    grid = brier_grid(time, event, time, event)
    oof = compare.out_of_fold(parts, grid, horizons)
    table, _ = compare.comparison_table(oof, time, event, grid, horizons, n_boot, seed)
    truth = pd.read_csv(ground_truth, dtype={"case_id": str}).set_index("case_id")["log_hazard"]
    oracle = compare.oracle_rows(oof, time, event, truth, horizons, n_boot, seed)
    return pd.concat([table, pd.DataFrame(oracle)], ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.25, 1.0])
    parser.add_argument("--objectives", nargs="+", default=["simclr", "radiomics", "hybrid"])
    parser.add_argument("--pretrain-epochs", type=int, default=8)
    parser.add_argument("--finetune-epochs", type=int, default=4)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--embedding-dim", type=int, default=64)
    parser.add_argument("--slices", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("bench-out/label-efficiency"))
    args = parser.parse_args()
    os.environ.setdefault("LGERISK_NO_PROGRESS", "1")
    import pandas as pd
    import torch

    from lgerisk.training.finetune import FinetuneConfig, run_finetune
    from lgerisk.training.pretrain import PretrainConfig, run_pretrain

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    tensor = {"slices": args.slices, "size": args.size}
    rows = []
    started = time.perf_counter()
    for seed in args.seeds:
        root = args.work / f"seed{seed}"
        synth, prep, features = root / "synth", root / "prep", root / "radiomics.csv"
        if not (synth / "outcomes.csv").is_file():
            lgerisk("synth", str(synth), "--cases", str(args.cases), "--seed", str(seed))
        if not (prep / "cases.csv").is_file():
            lgerisk("preprocess", "--data", str(synth), "--out", str(prep), "--jobs", str(args.jobs))
        shutil.copy(synth / "ground_truth.csv", prep / "ground_truth.csv")  # the oracle row of the table
        if not features.is_file():
            lgerisk("extract-radiomics", "--data", str(prep), "--out", str(features), "--jobs", str(args.jobs))
        encoders = {}
        for objective in args.objectives:
            run = root / f"pretrain-{objective}"
            if not (run / "model.pt").is_file():
                shutil.rmtree(run, ignore_errors=True)
                t0 = time.perf_counter()
                run_pretrain(prep, run, PretrainConfig(epochs=args.pretrain_epochs, width=args.width,
                                                       embedding_dim=args.embedding_dim, projection_dim=64,
                                                       objective={"preset": objective}, tensor=tensor, seed=seed),
                             features=str(features), device="cpu", quiet=True)
                print(f"seed {seed}: pretrained {objective} in {time.perf_counter() - t0:.0f} s", flush=True)
            encoders[objective] = run
        for fraction in args.fractions:
            common = dict(folds=args.folds, label_fraction=fraction, n_boot=args.bootstrap, seed=seed,
                          epochs=args.finetune_epochs, width=args.width, embedding_dim=args.embedding_dim,
                          tensor=tensor)
            runs = [("baselines", None, FinetuneConfig(mode="full", baselines=True, **common))]
            for objective, run in encoders.items():
                runs.append((f"{objective} probe", run, FinetuneConfig(mode="probe", baselines=False, **common)))
                runs.append((f"{objective} full", run, FinetuneConfig(mode="full", baselines=False, **common)))
            for label, encoder, config in runs:
                out = root / f"finetune-{label.replace(' ', '-')}-{fraction:g}"
                t0 = time.perf_counter()
                if not (out / "model_card.json").is_file():
                    run_finetune(prep, out, config, encoder=encoder, features=str(features), device="cpu", quiet=True)
                table = table_from_parts(out, synth / "ground_truth.csv", args.bootstrap, seed)
                for record in table.to_dict(orient="records"):
                    method = record["method"]
                    if encoder is not None:
                        if method.startswith("oracle"):
                            continue
                        method = f"{label.split()[0]}-pretrained {config.mode}"
                    elif method.startswith("oracle") and fraction != args.fractions[0]:
                        continue
                    rows.append({"seed": seed, "label_fraction": fraction if not method.startswith("oracle")
                                 else float("nan"), "method": method, "cases": record["n"],
                                 "events": record["events"], "harrell_c": record["harrell_c"],
                                 "harrell_c_low": record["harrell_c_low"], "harrell_c_high": record["harrell_c_high"],
                                 "uno_c": record["uno_c"], "ibs": record.get("ibs")})
                print(f"seed {seed} fraction {fraction:g} {label}: {time.perf_counter() - t0:.0f} s", flush=True)
                pd.DataFrame(rows).to_csv(args.work / "label_efficiency.csv", index=False)
    table = pd.DataFrame(rows)
    table.to_csv(args.work / "label_efficiency.csv", index=False)
    wide = table.pivot_table(index="method", columns=["label_fraction", "seed"], values="harrell_c")
    oracle = table[table["method"].str.startswith("oracle")].set_index("seed")["harrell_c"]
    print("\nSYNTHETIC cohorts: pooled out-of-fold Harrell's C by training-label fraction and seed")
    print(wide.round(3).to_string())
    print("oracle C by seed:", json.dumps({int(k): round(float(v), 3) for k, v in oracle.items()}))
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
