"""Label efficiency on SYNTHETIC cohorts: does radiomics-guided pretraining beat radiomics alone, or
deep learning alone, and with how few labelled patients?

    python benchmarks/label_efficiency.py --cases 200 --seeds 0 1 --work bench-out/label-efficiency
    python benchmarks/label_efficiency.py --cases 300 --pool 300 --seeds 0 --fractions 1.0 --objectives hybrid \
        --with-scar --work bench-out/headroom-pilot          # hazard version 2, a disjoint pretraining pool

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

sys.path[:] = [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]  # this folder's radiomics.py must not shadow pyradiomics

BIN = Path(sys.executable).parent


def lgerisk(*args: str) -> None:
    """Run the command line as a user would (quiet)."""
    subprocess.run([str(BIN / "lgerisk"), *args, "--quiet"], check=True)


def predictions_from_parts(run: Path, rename: str | None = None):  # noqa: ANN201
    """The fitted (method, split) predictions of a finished run (the model's rows renamed to ``rename``),
    so that runs sharing folds can be evaluated together with the current evaluation code."""
    import pandas as pd

    parts = pd.concat(
        [
            pd.read_csv(p, dtype={"case_id": str}, float_precision="round_trip")
            for p in sorted((run / "parts").glob("*/*.csv"))
        ],
        ignore_index=True,
    )
    parts = parts.drop(columns=["settings"])
    if rename is not None:
        parts["method"] = rename
    return parts


def joint_table(
    parts,
    ground_truth: Path,
    n_boot: int,
    seed: int,
    horizons=(1.0, 3.0, 5.0),  # noqa: ANN001, ANN201
    with_oof: bool = False,
):
    """Comparison table of several runs' predictions on the same folds, with the oracle row and every
    method's paired delta C over scar-% Cox (on the same out-of-fold cases); with ``with_oof``, also
    the out-of-fold risks (oracle rows included) as a second value."""
    import pandas as pd

    from lgerisk.evaluation import compare
    from lgerisk.evaluation.metrics import brier_grid

    cases = parts[parts["role"] == "test"].drop_duplicates("case_id")
    time, event = cases["time"].to_numpy(float), cases["event"].to_numpy(int)
    grid = brier_grid(time, event, time, event)
    oof = compare.out_of_fold(parts, grid, horizons)
    table, _ = compare.comparison_table(oof, time, event, grid, horizons, n_boot, seed)
    truth = pd.read_csv(ground_truth, dtype={"case_id": str}).set_index("case_id")
    oracle = compare.oracle_rows(oof, time, event, truth["log_hazard"], horizons, n_boot, seed)
    rows = [table, pd.DataFrame(oracle)]
    extra = {"oracle (true log-hazard)": truth["log_hazard"]}
    if "lp_image" in truth.columns:
        image_only = compare.oracle_rows(oof, time, event, truth["lp_image"], horizons, n_boot, seed)
        for row in image_only:
            row["method"] = "oracle, image only (true lp_image)"
        rows.append(pd.DataFrame(image_only))
        extra["oracle, image only (true lp_image)"] = truth["lp_image"]
    table = compare.add_delta_c(pd.concat(rows, ignore_index=True), oof, n_boot, seed, extra=extra)
    if not with_oof:
        return table
    pooled = oof[oof["evaluation"] == oof["evaluation"].iloc[0]][["method", "case_id", "time", "event", "risk"]]
    base = pooled[pooled["method"] == compare.REFERENCE_METHOD]
    for name, risk in extra.items():
        rows_extra = base.assign(method=name, risk=risk.reindex(base["case_id"]).to_numpy(float))
        pooled = pd.concat([pooled, rows_extra], ignore_index=True)
    return table, pooled


def pooled_summary(oof, n_boot: int, seed: int, reference_fraction: float = 1.0):  # noqa: ANN001, ANN201
    """Per label fraction and method, over the seeds: the mean Harrell's C, its delta over scar-% Cox at the
    same fraction and over radiomics Cox with every label (``reference_fraction``), each with a 95 %
    interval from a bootstrap of cases within each seed (paired: the same out-of-fold cases)."""
    import numpy as np
    import pandas as pd

    from lgerisk.evaluation.metrics import pooled_delta_c

    def groups(frame, reference):  # noqa: ANN001, ANN202
        out, clusters = [], []
        for (seed_value, _), mine in frame.groupby(["seed", "pretrain_run"]):
            mine = mine.drop_duplicates("case_id").set_index("case_id").sort_index()
            ref = None
            if reference is not None:
                ref = reference[reference["seed"] == seed_value]
                ref = (
                    ref[ref["pretrain_run"] == ref["pretrain_run"].min()]
                    .drop_duplicates("case_id")
                    .set_index("case_id")
                )
                if ref.empty:
                    return None
                ref = ref["risk"].reindex(mine.index).to_numpy(float)
            out.append((mine["time"].to_numpy(float), mine["event"].to_numpy(int), mine["risk"].to_numpy(float), ref))
            clusters.append(seed_value)
        return out, (clusters if len(set(clusters)) < len(clusters) else None)

    def delta(paired):  # noqa: ANN001, ANN202
        found, clusters = paired
        return pooled_delta_c(found, n_boot, seed, clusters=clusters)

    if "pretrain_run" not in oof.columns:
        oof = oof.assign(pretrain_run=0)
    rows = []
    full_radiomics = oof[(oof["method"] == "radiomics Cox") & (oof["label_fraction"] == reference_fraction)]
    for (fraction, method), frame in oof.groupby(["label_fraction", "method"], sort=True):
        scar = oof[(oof["method"] == "scar-% Cox") & (oof["label_fraction"] == fraction)]
        c, c_low, c_high = delta(groups(frame, None))
        row = {
            "label_fraction": fraction,
            "method": method,
            "seeds": frame["seed"].nunique(),
            "pretrain_runs": frame["pretrain_run"].nunique(),
            "harrell_c": c,
            "harrell_c_low": c_low,
            "harrell_c_high": c_high,
        }
        for name, reference in (("scar", scar), ("radiomics100", full_radiomics)):
            itself = (
                not reference.empty
                and method == reference["method"].iloc[0]
                and fraction == reference["label_fraction"].iloc[0]
            )
            paired = None if reference.empty or itself else groups(frame, reference)
            found = delta(paired) if paired else (np.nan, np.nan, np.nan)
            row.update({f"delta_c_{name}": found[0], f"delta_c_{name}_low": found[1], f"delta_c_{name}_high": found[2]})
        rows.append(row)
    return pd.DataFrame(rows)


def plot_fractions(summary, path: Path, title: str) -> None:  # noqa: ANN001
    """C against label fraction, a line and a 95 % band per method (oracles as dashed lines)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 5.5))
    for method, frame in summary.groupby("method", sort=False):
        frame = frame.sort_values("label_fraction")
        if method.startswith("oracle"):
            axis.axhline(
                frame["harrell_c"].iloc[0],
                linestyle="--",
                linewidth=1,
                color="grey" if "image" in method else "black",
                label=method,
            )
            continue
        (line,) = axis.plot(frame["label_fraction"] * 100, frame["harrell_c"], marker="o", label=method)
        axis.fill_between(
            frame["label_fraction"] * 100,
            frame["harrell_c_low"],
            frame["harrell_c_high"],
            color=line.get_color(),
            alpha=0.12,
        )
    axis.set_xscale("log")
    axis.set_xticks([10, 25, 50, 100], ["10 %", "25 %", "50 %", "100 %"])
    axis.set_xlabel("labelled training cases (share of each training fold)")
    axis.set_ylabel("Harrell's C, out of fold (mean over seeds, 95 % band)")
    axis.set_title(title, fontsize=10)
    axis.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


LEVERS: dict[str, object] = {"aux_weight": 1.0, "radiomics_view": "decorrelated"}
"""The pretraining levers the ablation kept (benchmarks/README.md, "Pretraining ablation"): the auxiliary head
regressing the radiomics view, and the decorrelated radiomics view. Left out: every training case as a negative
(held-out retrieval collapsed) and the preserving augmentation (it lowered the embedding's R² of the image-only
hazard)."""


UNTRAINED = "untrained"
"""The control encoder that learnt nothing: the radiomics-guided encoder's architecture and settings, one epoch at
learning rate ``UNTRAINED_LR`` (its weights stay at their random initialisation; batch-norm statistics and the
card are those of a run), so that a fusion with it shows what the encoder's training adds (issue 22)."""
UNTRAINED_LR = 1e-12


def lever_settings(objective: str) -> dict[str, object]:
    """PretrainConfig settings of ``objective`` with LEVERS; image-only SimCLR has no radiomics to use them."""
    if objective == "simclr":
        return {"objective": {"preset": "simclr"}}
    if objective == UNTRAINED:
        return {**LEVERS, "objective": {"preset": "radiomics"}, "lr": UNTRAINED_LR}
    return {**LEVERS, "objective": {"preset": objective}}


def encoder_name(objective: str) -> str:
    """How the table names an encoder: ``radiomics-pretrained``, ``simclr-pretrained``, ``untrained encoder``."""
    return "untrained encoder" if objective == UNTRAINED else f"{objective}-pretrained"


def markdown_table(summary) -> str:  # noqa: ANN001
    """benchmarks/README.md's table: a row per method, a column per label fraction with the mean C and, in
    brackets, delta C over scar-% Cox at that fraction (95 % interval); last, each method at 25 % against
    radiomics Cox at 100 %. A method not run at a fraction has an empty cell."""
    fractions = sorted(summary["label_fraction"].unique())

    def rank(method: str) -> tuple[int, int, int, str]:
        baselines = ["scar-% Cox", "scar+grey Cox", "radiomics Cox", "deep, scratch (full)"]
        if method in baselines:
            return (0, baselines.index(method), 0, method)
        if method.startswith("oracle"):
            return (2, 0, 0, method)
        objective = next(
            (i for i, o in enumerate(("simclr", "radiomics", "hybrid", UNTRAINED)) if method.startswith(o)), 4
        )
        return (1, objective, ("full" in method) * 4 + ("scar" in method) + ("+ radiomics" in method) * 2, method)

    order = sorted(dict.fromkeys(summary["method"]), key=rank)
    head = ["method", *[f"{f * 100:g} %" for f in fractions], "ΔC vs radiomics Cox at 100 % (at 25 %)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method in order:
        cells = [method]
        rows = summary[summary["method"] == method].set_index("label_fraction")
        for fraction in fractions:
            if fraction not in rows.index or (method.startswith("oracle") and fraction != max(fractions)):
                cells.append("")
                continue
            r = rows.loc[fraction]
            cell = f"{r['harrell_c']:.3f}"
            if r["delta_c_scar"] == r["delta_c_scar"]:  # not NaN
                cell += f" ({r['delta_c_scar']:+.3f}; {r['delta_c_scar_low']:+.3f} to {r['delta_c_scar_high']:+.3f})"
            cells.append(cell)
        quarter = rows.loc[0.25] if 0.25 in rows.index and not method.startswith("oracle") else None
        cells.append(
            ""
            if quarter is None or quarter["delta_c_radiomics100"] != quarter["delta_c_radiomics100"]
            else f"{quarter['delta_c_radiomics100']:+.3f} ({quarter['delta_c_radiomics100_low']:+.3f} to "
            f"{quarter['delta_c_radiomics100_high']:+.3f})"
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


PAIRS = (
    ("radiomics-pretrained full", "hybrid-pretrained full"),
    ("radiomics-pretrained probe", "hybrid-pretrained probe"),
    ("radiomics-pretrained full", "radiomics-pretrained probe"),
    ("radiomics-pretrained full", "simclr-pretrained full"),
    ("radiomics-pretrained probe", "simclr-pretrained probe"),
    ("simclr-pretrained full", "deep, scratch (full)"),
    ("simclr-pretrained probe", "deep, scratch (full)"),
    ("radiomics-pretrained full", "radiomics Cox"),
    ("radiomics-pretrained probe + radiomics (group ridge)", "radiomics Cox"),
    ("radiomics-pretrained probe + radiomics (stacked)", "radiomics Cox"),
    ("radiomics-pretrained probe + radiomics (group ridge)", "simclr-pretrained probe + radiomics (group ridge)"),
    ("radiomics-pretrained probe + radiomics (stacked)", "simclr-pretrained probe + radiomics (stacked)"),
    ("radiomics-pretrained probe + radiomics (group ridge)", "radiomics-pretrained probe"),
    ("simclr-pretrained probe + radiomics (group ridge)", "radiomics Cox"),
)
"""Method pairs compared head to head (paired delta C, same out-of-fold cases, pooled over seeds)."""


def pairs_for(methods) -> list[tuple[str, str]]:  # noqa: ANN001
    """PAIRS, and for the variants a run adds: each row on other input channels (``… [channels]``) against
    radiomics Cox and against the same model on the default channels; each end-to-end row without the auxiliary
    loss against the same row with it; each untrained-encoder row against the radiomics-guided encoder's."""
    methods = list(dict.fromkeys(methods))
    pairs = list(PAIRS)
    for method in methods:
        if method.endswith("]") and " [" in method:
            plain = method[: method.rindex(" [")]
            pairs += [(method, "radiomics Cox"), (method, plain)]
        if ", no auxiliary loss" in method:
            pairs.append((method.replace(", no auxiliary loss", ""), method))
        if method.startswith(encoder_name(UNTRAINED)):  # what the encoder's training adds
            pairs.append((encoder_name("radiomics") + method.removeprefix(encoder_name(UNTRAINED)), method))
    return list(dict.fromkeys(pairs))


def paired_deltas(oof, n_boot: int, seed: int = 0) -> list[dict[str, object]]:  # noqa: ANN001
    """Delta C of each of PAIRS at each label fraction both were run at, with its 95 % interval (bootstrap of
    cases within each seed)."""
    from lgerisk.evaluation.metrics import pooled_delta_c

    if "pretrain_run" not in oof.columns:
        oof = oof.assign(pretrain_run=0)
    rows = []
    for first, second in pairs_for(oof["method"]):
        for fraction in sorted(oof["label_fraction"].unique()):
            groups, clusters = [], []
            for seed_value in sorted(oof["seed"].unique()):
                at = oof[(oof["label_fraction"] == fraction) & (oof["seed"] == seed_value)]
                runs_of = {m: set(at.loc[at["method"] == m, "pretrain_run"]) for m in (first, second)}
                runs = sorted(runs_of[first] | runs_of[second])
                everywhere = {
                    m: set(oof.loc[(oof["method"] == m) & (oof["label_fraction"] == fraction), "pretrain_run"])
                    for m in runs_of
                }
                if any(runs_of[m] != everywhere[m] or (len(r) > 1 and r != set(runs)) for m, r in runs_of.items()):
                    break  # every cohort has each method's runs, all of them: no run stands in for a missing one
                pairs_here = []
                for run in runs:  # runs of the same index paired; a method with one run pairs with every run
                    a = at[(at["method"] == first) & (at["pretrain_run"] == (run if len(runs_of[first]) > 1 else 0))]
                    b = at[(at["method"] == second) & (at["pretrain_run"] == (run if len(runs_of[second]) > 1 else 0))]
                    a = a.drop_duplicates("case_id").set_index("case_id").sort_index()
                    b = b.drop_duplicates("case_id").set_index("case_id")
                    if a.empty or b.empty:
                        break
                    pairs_here.append(
                        (
                            a["time"].to_numpy(float),
                            a["event"].to_numpy(int),
                            a["risk"].to_numpy(float),
                            b["risk"].reindex(a.index).to_numpy(float),
                        )
                    )
                if not runs or len(pairs_here) != len(runs):
                    break
                groups += pairs_here
                clusters += [seed_value] * len(pairs_here)
            else:
                if groups:
                    several = len(set(clusters)) < len(clusters)
                    delta, low, high = pooled_delta_c(groups, n_boot, seed, clusters=clusters if several else None)
                    rows.append(
                        {
                            "first": first,
                            "second": second,
                            "label_fraction": fraction,
                            "delta_c": delta,
                            "low": low,
                            "high": high,
                        }
                    )
    return rows


DOMINANT_GROUPS = {
    "wall_thinning": "wall thinning",
    "scar_islands": "scar islands",
    "midwall_lge": "mid-wall pattern",
}
"""Image hazard terms radiomics recovers poorly (issue 22): a case whose largest image term is one of these is
counted in its group; every other case in "scar, grey zone, heterogeneity"."""


def dominant_terms(truth, hazard_version: int):  # noqa: ANN001, ANN201
    """Per case (ground_truth.csv rows), the image hazard term with the largest contribution, centred on the
    cohort (the term that most sets the case apart), mapped to DOMINANT_GROUPS or "scar, grey zone, heterogeneity"."""
    import numpy as np
    import pandas as pd

    from lgerisk.synth.hazard import hazard_model

    terms = hazard_model(hazard_version).image_terms()
    contributions = pd.DataFrame(
        {t.name: t.contribution(truth[t.name].to_numpy(float)) for t in terms}, index=truth.index
    )
    centred = (contributions - contributions.mean()).abs()
    top = centred.idxmax(axis=1)
    return top.map(lambda name: DOMINANT_GROUPS.get(name, "scar, grey zone, heterogeneity")).where(
        np.isfinite(centred.max(axis=1))
    )


def gain_by_dominant_term(oof, args, methods, reference="radiomics Cox"):  # noqa: ANN001, ANN201
    """Paired ΔC of each of ``methods`` over ``reference`` at 100 % labels within the cases of each dominant
    hazard term (pooled over cohorts; pretraining runs resampled as well as cases)."""
    import pandas as pd

    from lgerisk.evaluation.metrics import pooled_delta_c

    full = oof[oof["label_fraction"] == 1.0]
    groups_of = {}
    for seed in sorted(full["seed"].unique()):
        truth = pd.read_csv(args.work / f"seed{seed}" / "synth" / "ground_truth.csv", dtype={"case_id": str})
        groups_of[seed] = dominant_terms(truth.set_index("case_id"), args.hazard_version)
    rows = []
    names = ["scar, grey zone, heterogeneity", *DOMINANT_GROUPS.values()]
    for method in methods:
        for name in names:
            found, clusters, cases = [], [], 0
            for seed, group in groups_of.items():
                at = full[full["seed"] == seed]
                ref = at[at["method"] == reference].drop_duplicates("case_id").set_index("case_id")["risk"]
                for run, mine in at[at["method"] == method].groupby("pretrain_run"):
                    mine = mine.drop_duplicates("case_id").set_index("case_id").sort_index()
                    mine = mine[group.reindex(mine.index) == name]
                    if mine["event"].sum() < 2:
                        continue
                    found.append(
                        (
                            mine["time"].to_numpy(float),
                            mine["event"].to_numpy(int),
                            mine["risk"].to_numpy(float),
                            ref.reindex(mine.index).to_numpy(float),
                        )
                    )
                    clusters.append(seed)
                    cases += len(mine) if run == mine_runs_first(at, method) else 0
            if not found:
                continue
            several = len(set(clusters)) < len(clusters)
            delta, low, high = pooled_delta_c(found, args.bootstrap, 0, clusters=clusters if several else None)
            rows.append(
                {"method": method, "dominant term": name, "cases": cases, "delta_c": delta, "low": low, "high": high}
            )
    return pd.DataFrame(rows)


def mine_runs_first(at, method):  # noqa: ANN001, ANN201
    """The first pretraining run of ``method`` in ``at`` (cases are counted once, not once per run)."""
    return at.loc[at["method"] == method, "pretrain_run"].min()


def summarise(oof, args) -> None:  # noqa: ANN001
    """Pool the out-of-fold risks over seeds, print the table, write pooled.csv and the plot."""
    summary = pooled_summary(oof, args.bootstrap, 0)
    summary.to_csv(args.work / "pooled.csv", index=False)
    print(
        f"\nSYNTHETIC: pooled over seeds {args.seeds} (mean C; delta C over scar-% Cox at the same fraction and "
        "over radiomics Cox at 100 %, bootstrap of cases within each seed)"
    )
    for record in summary.to_dict(orient="records"):
        print(
            f"  {record['label_fraction']:>5g} {record['method']:45s} C {record['harrell_c']:.3f} "
            f"({record['harrell_c_low']:.3f}-{record['harrell_c_high']:.3f})  vs scar % "
            f"{record['delta_c_scar']:+.3f} ({record['delta_c_scar_low']:+.3f} to {record['delta_c_scar_high']:+.3f})"
            f"  vs radiomics Cox 100 % {record['delta_c_radiomics100']:+.3f} "
            f"({record['delta_c_radiomics100_low']:+.3f} to {record['delta_c_radiomics100_high']:+.3f})"
        )
    print("\n" + markdown_table(summary))
    pairs = paired_deltas(oof, args.bootstrap)
    if pairs:
        print("\nSYNTHETIC: paired delta C, first minus second method, same cases (95 % interval)")
        for row in pairs:
            print(
                f"  {row['first']:28s} - {row['second']:28s} {row['label_fraction'] * 100:>4g} %: "
                f"{row['delta_c']:+.3f} ({row['low']:+.3f} to {row['high']:+.3f})"
            )
    fused = [m for m in dict.fromkeys(oof["method"]) if "+ radiomics (" in m]
    if fused and (oof["label_fraction"] == 1.0).any():
        gains = gain_by_dominant_term(oof, args, fused)
        gains.to_csv(args.work / "gain_by_term.csv", index=False)
        print("\nSYNTHETIC: where does the fusion's gain come from? ΔC over radiomics Cox at 100 % within the cases")
        print("whose largest image hazard term (centred on the cohort) is each term (95 % interval)")
        for row in gains.to_dict(orient="records"):
            print(
                f"  {row['method']:52s} {row['dominant term']:32s} n={row['cases']:4d} "
                f"{row['delta_c']:+.3f} ({row['low']:+.3f} to {row['high']:+.3f})"
            )
    plot_fractions(
        summary,
        args.work / "label_efficiency.png",
        f"SYNTHETIC cohorts (hazard version {args.hazard_version}), {len(args.seeds)} seeds x {args.cases} "
        f"labelled cases; pretraining pool {args.pool or 'the cohort itself'}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.25, 0.5, 1.0])
    parser.add_argument(
        "--objectives",
        nargs="*",
        default=["simclr", "radiomics", "hybrid"],
        help=f"encoders to pretrain; {UNTRAINED!r}: the control that learnt nothing (random weights, see UNTRAINED)",
    )
    parser.add_argument("--pretrain-epochs", type=int, default=8)
    parser.add_argument("--finetune-epochs", type=int, default=4)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--embedding-dim", type=int, default=64)
    parser.add_argument("--slices", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument(
        "--channels",
        nargs="+",
        default=["image", "myocardium"],
        help="network input channels (lgerisk.data.tensors.CHANNEL_LABELS); other than the default, the encoder and "
        "fine-tuning runs are named with -c<channels> and their rows with [<channels>]",
    )
    parser.add_argument(
        "--aux-ablation",
        action="store_true",
        help="beside each end-to-end (full) row of a radiomics-guided encoder, the same without the auxiliary "
        "radiomics loss (aux_weight=0)",
    )
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("bench-out/label-efficiency"))
    parser.add_argument("--hazard-version", type=int, default=2, help="synthetic outcome model (1: generator 1.0)")
    parser.add_argument(
        "--pool",
        type=int,
        default=0,
        help="pretrain on a separate unlabelled SYNTHETIC pool of "
        "this many scans (0: on the labelled cohort's own scans, no outcomes)",
    )
    parser.add_argument(
        "--with-scar",
        action="store_true",
        help="also each encoder's probe with scar %% and grey-zone %% beside the embedding",
    )
    parser.add_argument(
        "--head-pcs",
        type=int,
        nargs="*",
        default=[],
        help="also the --with-scar probe on the embedding's K leading principal components, for each K given",
    )
    parser.add_argument(
        "--levers",
        action="store_true",
        help="pretrain with the levers pretrain_ablation.py kept (LEVERS); without it, as before issue 11's item 4",
    )
    parser.add_argument(
        "--skip-plain-scar",
        action="store_true",
        help="with --head-pcs, leave out the --with-scar probe on the whole embedding",
    )
    parser.add_argument(
        "--full-objectives",
        nargs="*",
        default=None,
        help="fine-tune end to end only these encoders (default: every objective's)",
    )
    parser.add_argument(
        "--full-fractions",
        type=float,
        nargs="*",
        default=None,
        help="fine-tune end to end only at these label fractions (default: every fraction)",
    )
    parser.add_argument(
        "--no-full-scar",
        action="store_true",
        help="with --with-scar, leave out the end-to-end runs with scar %% in the head (the probes keep it)",
    )
    parser.add_argument(
        "--fusion",
        action="store_true",
        help="also each encoder's fusion heads with radiomics (--with-radiomics, group ridge and stacked)",
    )
    parser.add_argument(
        "--pretrain-runs",
        type=int,
        default=1,
        help="pretraining runs per encoder and cohort (pretraining seeds cohort seed + 1000 r); the pooled "
        "intervals then resample runs as well as cases",
    )
    parser.add_argument(
        "--summarise-only",
        action="store_true",
        help="only pool WORK/oof.csv (what a run has finished so far) into WORK/pooled.csv and the plot",
    )
    args = parser.parse_args()
    os.environ.setdefault("LGERISK_NO_PROGRESS", "1")
    import pandas as pd
    import torch

    if args.summarise_only:
        summarise(pd.read_csv(args.work / "oof.csv", dtype={"case_id": str}), args)
        return

    from lgerisk.training.finetune import FinetuneConfig, run_finetune
    from lgerisk.training.methods import FUSION_NAMES
    from lgerisk.training.pretrain import PretrainConfig, run_pretrain

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    tensor = {"slices": args.slices, "size": args.size, "channels": list(args.channels)}
    input_tag = "" if args.channels == ["image", "myocardium"] else "-c" + "-".join(args.channels)
    rows, oof_rows = [], []
    started = time.perf_counter()
    encoders_of, cohort_of = {}, {}
    for seed in args.seeds:  # first every seed's data and encoders, then the fine-tuning, fraction by fraction
        root = args.work / f"seed{seed}"
        synth, prep, features = root / "synth", root / "prep", root / "radiomics.csv"
        version = ["--hazard-version", str(args.hazard_version)]
        if not (synth / "outcomes.csv").is_file():
            lgerisk("synth", str(synth), "--cases", str(args.cases), "--seed", str(seed), *version)
        if not (prep / "cases.csv").is_file():
            lgerisk("preprocess", "--data", str(synth), "--out", str(prep), "--jobs", str(args.jobs))
        shutil.copy(synth / "ground_truth.csv", prep / "ground_truth.csv")  # the oracle row of the table
        if not features.is_file():
            lgerisk("extract-radiomics", "--data", str(prep), "--out", str(features), "--jobs", str(args.jobs))
        pool_prep, pool_features = prep, features
        if args.pool:  # the setting users have: pretraining scans disjoint from the labelled cohort
            pool, pool_prep, pool_features = root / "pool", root / "pool-prep", root / "pool-radiomics.csv"
            if not (pool / "outcomes.csv").is_file():
                lgerisk("synth", str(pool), "--cases", str(args.pool), "--seed", str(1000 + seed), *version)
            if not (pool_prep / "cases.csv").is_file():
                lgerisk("preprocess", "--data", str(pool), "--out", str(pool_prep), "--jobs", str(args.jobs))
            if not pool_features.is_file():
                lgerisk(
                    "extract-radiomics", "--data", str(pool_prep), "--out", str(pool_features), "--jobs", str(args.jobs)
                )
        encoders = {}
        for objective, pretrain_run in [(o, r) for r in range(args.pretrain_runs) for o in args.objectives]:
            suffix = f"-r{pretrain_run}" if pretrain_run else ""
            run = (
                root
                / f"pretrain-{objective}{'-levers' if args.levers else ''}-e{args.pretrain_epochs}{input_tag}{suffix}"
            )
            if not (run / "model.pt").is_file():
                shutil.rmtree(run, ignore_errors=True)
                t0 = time.perf_counter()
                settings = lever_settings(objective) if args.levers else {"objective": {"preset": objective}}
                run_pretrain(
                    pool_prep,
                    run,
                    PretrainConfig(
                        epochs=1 if objective == UNTRAINED else args.pretrain_epochs,
                        width=args.width,
                        embedding_dim=args.embedding_dim,
                        projection_dim=64,
                        tensor=tensor,
                        seed=seed + 1000 * pretrain_run,
                        **settings,
                    ),
                    features=str(pool_features),
                    device="cpu",
                )
                print(f"seed {seed}: pretrained {objective}{suffix} in {time.perf_counter() - t0:.0f} s", flush=True)
            encoders[(objective, pretrain_run)] = run
        encoders_of[seed], cohort_of[seed] = encoders, (root, synth, prep, features)
    for fraction in args.fractions:
        for seed in args.seeds:
            root, synth, prep, features = cohort_of[seed]
            encoders = encoders_of[seed]
            common = dict(
                folds=args.folds,
                label_fraction=fraction,
                n_boot=args.bootstrap,
                seed=seed,
                epochs=args.finetune_epochs,
                width=args.width,
                embedding_dim=args.embedding_dim,
                tensor=tensor,
            )
            runs = [("baselines", None, FinetuneConfig(mode="full", baselines=True, **common))]
            for (objective, pretrain_run), run in encoders.items():
                objective = f"{objective}@r{pretrain_run}" if pretrain_run else objective
                runs.append((f"{objective} probe", run, FinetuneConfig(mode="probe", baselines=False, **common)))
                if args.fusion:
                    for fusion in ("group", "stacked"):
                        runs.append(
                            (
                                f"{objective} probe+radiomics-{fusion}",
                                run,
                                FinetuneConfig(
                                    mode="probe", baselines=False, with_radiomics=True, fusion=fusion, **common
                                ),
                            )
                        )
                if args.with_scar and not args.skip_plain_scar:
                    runs.append(
                        (
                            f"{objective} probe+scar",
                            run,
                            FinetuneConfig(mode="probe", baselines=False, with_scar=True, **common),
                        )
                    )
                if args.with_scar:
                    for k in args.head_pcs:
                        runs.append(
                            (
                                f"{objective} probe+scar-pc{k}",
                                run,
                                FinetuneConfig(mode="probe", baselines=False, with_scar=True, head_pcs=k, **common),
                            )
                        )
                full_here = args.full_fractions is None or fraction in args.full_fractions
                if full_here and (args.full_objectives is None or objective.split("@")[0] in args.full_objectives):
                    runs.append((f"{objective} full", run, FinetuneConfig(mode="full", baselines=False, **common)))
                    if args.aux_ablation and objective.split("@")[0] != "simclr":
                        runs.append(
                            (
                                f"{objective} full-noaux",
                                run,
                                FinetuneConfig(mode="full", baselines=False, aux_weight=0.0, **common),
                            )
                        )
                    if args.with_scar and not args.no_full_scar:
                        runs.append(
                            (
                                f"{objective} full+scar",
                                run,
                                FinetuneConfig(mode="full", baselines=False, with_scar=True, **common),
                            )
                        )
            parts = []
            for label, encoder, config in runs:
                tag = (
                    f"{'-levers' if args.levers and encoder is not None else ''}-e{args.pretrain_epochs}{input_tag}"
                    if encoder is not None
                    else ""
                )
                out = root / f"finetune-{label.replace(' ', '-').replace('+', '-plus-')}{tag}-{fraction:g}"
                t0 = time.perf_counter()
                if not (out / "model_card.json").is_file():
                    run_finetune(prep, out, config, encoder=encoder, features=str(features), device="cpu")
                rename = None
                if encoder is not None:
                    objective, _, pretrain_run = label.split()[0].partition("@")
                    rename = (
                        f"{encoder_name(objective)} {config.mode}"
                        + (f" on {config.head_pcs} PCs" if config.head_pcs else "")
                        + (" + scar %" if config.with_scar else "")
                        + (f" + radiomics ({FUSION_NAMES[config.fusion]})" if config.with_radiomics else "")
                        + (", no auxiliary loss" if config.mode == "full" and config.aux_weight == 0 else "")
                        + (f" [{'+'.join(args.channels)}]" if input_tag else "")
                        + (f" @{pretrain_run}" if pretrain_run else "")
                    )
                parts.append(predictions_from_parts(out, rename))
                print(f"seed {seed} fraction {fraction:g} {label}: {time.perf_counter() - t0:.0f} s", flush=True)
            table, oof = joint_table(
                pd.concat(parts, ignore_index=True), synth / "ground_truth.csv", args.bootstrap, seed, with_oof=True
            )
            run_of = oof["method"].str.extract(r" @r(\d+)$")[0].fillna("0").astype(int)
            oof = oof.assign(method=oof["method"].str.replace(r" @r\d+$", "", regex=True), pretrain_run=run_of)
            oof_rows.append(oof.assign(seed=seed, label_fraction=fraction))
            pd.concat(oof_rows, ignore_index=True).to_csv(args.work / "oof.csv", index=False)
            for record in table.to_dict(orient="records"):
                method = record["method"]
                if method.startswith("oracle") and fraction != args.fractions[0]:
                    continue
                rows.append(
                    {
                        "seed": seed,
                        "label_fraction": fraction if not method.startswith("oracle") else float("nan"),
                        "method": method,
                        "cases": record["n"],
                        "events": record["events"],
                        "harrell_c": record["harrell_c"],
                        "harrell_c_low": record["harrell_c_low"],
                        "harrell_c_high": record["harrell_c_high"],
                        "delta_c": record.get("delta_c"),
                        "delta_c_low": record.get("delta_c_low"),
                        "delta_c_high": record.get("delta_c_high"),
                        "uno_c": record["uno_c"],
                        "ibs": record.get("ibs"),
                    }
                )
            pd.DataFrame(rows).to_csv(args.work / "label_efficiency.csv", index=False)
    table = pd.DataFrame(rows)
    table.to_csv(args.work / "label_efficiency.csv", index=False)
    wide = table.pivot_table(index="method", columns=["label_fraction", "seed"], values="harrell_c")
    delta = table[table["delta_c"].notna()]
    print("\nSYNTHETIC: delta C over scar-% Cox (paired bootstrap 95 % CI), by fraction and seed")
    for record in delta.to_dict(orient="records"):
        print(
            f"  seed {record['seed']} fraction {record['label_fraction']:g} {record['method']:45s} "
            f"{record['delta_c']:+.3f} ({record['delta_c_low']:+.3f} to {record['delta_c_high']:+.3f})"
        )
    oracle = table[table["method"].str.startswith("oracle")].set_index(["method", "seed"])["harrell_c"]
    print("\nSYNTHETIC cohorts: pooled out-of-fold Harrell's C by training-label fraction and seed")
    print(wide.round(3).to_string())
    print("oracle C:", json.dumps({f"{m} seed {k}": round(float(v), 3) for (m, k), v in oracle.items()}))
    summarise(pd.concat(oof_rows, ignore_index=True), args)
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
