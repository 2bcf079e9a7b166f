"""The statistics of benchmarks/label_efficiency.py and benchmarks/pretrain_ablation.py: pooled delta C over
seeds, the fraction plot, and the cross-validated ridge R² the ablation reports."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lgerisk.evaluation.metrics import harrell_c, paired_delta_c
from tests.helpers import ROOT, SAMPLE_DATA


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"lgerisk_bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _oof(seeds=(0, 1), fractions=(0.25, 1.0), n=80) -> pd.DataFrame:
    rows = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        time = rng.exponential(size=n)
        event = (rng.random(n) < 0.6).astype(int)
        for fraction in fractions:
            noise = {"scar-% Cox": 1.0, "radiomics Cox": 0.8, "hybrid-pretrained probe": 0.5 / fraction}
            for method, sd in noise.items():
                risk = -time + np.random.default_rng([seed, int(fraction * 100), len(method)]).normal(0, sd, n)
                rows.append(
                    pd.DataFrame(
                        {
                            "method": method,
                            "case_id": [f"s{seed}c{i}" for i in range(n)],
                            "time": time,
                            "event": event,
                            "risk": risk,
                            "seed": seed,
                            "label_fraction": fraction,
                        }
                    )
                )
    return pd.concat(rows, ignore_index=True)


def test_pooled_summary_pairs_the_same_cases_within_each_seed(tmp_path: Path) -> None:
    bench = _load("label_efficiency")
    oof = _oof()
    summary = bench.pooled_summary(oof, n_boot=50, seed=0).set_index(["label_fraction", "method"])
    assert len(summary) == 6 and (summary["seeds"] == 2).all()

    def c(seed, fraction, method):
        rows = oof[(oof.seed == seed) & (oof.label_fraction == fraction) & (oof.method == method)]
        return rows["time"].to_numpy(), rows["event"].to_numpy(), rows["risk"].to_numpy()

    row = summary.loc[(0.25, "hybrid-pretrained probe")]
    expected_c = np.mean([harrell_c(*c(s, 0.25, "hybrid-pretrained probe")) for s in (0, 1)])
    assert row["harrell_c"] == pytest.approx(expected_c)
    # over scar % at the same fraction, and over radiomics Cox with every label (a different fraction)
    expected_scar = np.mean(
        [
            paired_delta_c(*c(s, 0.25, "hybrid-pretrained probe"), c(s, 0.25, "scar-% Cox")[2], n_boot=0)[0]
            for s in (0, 1)
        ]
    )
    expected_rad = np.mean(
        [
            paired_delta_c(*c(s, 0.25, "hybrid-pretrained probe"), c(s, 1.0, "radiomics Cox")[2], n_boot=0)[0]
            for s in (0, 1)
        ]
    )
    assert row["delta_c_scar"] == pytest.approx(expected_scar)
    assert row["delta_c_radiomics100"] == pytest.approx(expected_rad)
    assert row["delta_c_scar_low"] < row["delta_c_scar"] < row["delta_c_scar_high"]
    # a reference against itself has no delta
    assert np.isnan(summary.loc[(0.25, "scar-% Cox"), "delta_c_scar"])
    assert np.isnan(summary.loc[(1.0, "radiomics Cox"), "delta_c_radiomics100"])
    assert not np.isnan(summary.loc[(0.25, "radiomics Cox"), "delta_c_radiomics100"])
    bench.plot_fractions(summary.reset_index(), tmp_path / "plot.png", "SYNTHETIC test")
    from PIL import Image

    with Image.open(tmp_path / "plot.png") as image:
        pixels = np.asarray(image.convert("L"))
    assert pixels.shape[0] > 400 and pixels.std() > 10  # drawn, not blank


def test_ridge_cv_recovers_a_linear_signal_and_not_noise() -> None:
    ablation = _load("pretrain_ablation")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 30))
    y = x[:, 0] * 2 - x[:, 1] + rng.normal(0, 0.5, 200)
    folds = np.arange(200) % 5
    assert ablation.r_squared(y, ablation.ridge_cv_predictions(x, y, folds)) > 0.9
    noise = rng.normal(size=200)
    assert ablation.r_squared(noise, ablation.ridge_cv_predictions(x, noise, folds)) < 0.05


def test_gpu_benchmark_runs_on_the_cpu_with_the_tiny_grid(tmp_path: Path) -> None:
    """benchmarks/gpu.py is known to run before a GPU is lent: the same code on a tiny grid."""
    gpu = _load("gpu")
    gpu.main(["--device", "cpu", "--tiny", "--out", str(tmp_path / "gpu.csv")])
    table = pd.read_csv(tmp_path / "gpu.csv")
    assert list(table["task"]) == ["pretrain step", "pretrain step", "risk-model inference"] + ["pretrain step"] * 3
    assert list(table["variant"]) == ["default"] * 3 + list(gpu.VARIANTS[1:])
    assert list(table["batch"]) == [2, 4, 4, 2, 2, 2] and not table["amp"].any()
    assert (table["volumes_per_s"].dropna() > 0).all() and table["volumes_per_s"].notna().sum() == 5
    assert table.loc[2, "scans_per_s"] > 0 and (table["peak_mb"] > 0).all()
    text = gpu.markdown(table)
    assert text.count("\n") == 7 and "| risk-model inference | default | 4 | 4 | off |" in text
    assert "| pretrain step | channels-last + cudnn.benchmark | 4 | 2 | off |" in text
    import torch

    if not torch.cuda.is_available():  # asking for CUDA where there is none is one sentence
        with pytest.raises(SystemExit, match="no CUDA device"):
            gpu.run("cuda", tiny=True)


def test_gpu_benchmark_times_lgerisk_predict_end_to_end_and_checks_its_outputs(runs, tmp_path: Path) -> None:
    """The script's end-to-end part: a SYNTHETIC cohort, lgerisk predict at each --jobs, the tables compared
    byte for byte and scans predicted alone against their batch rows (on the CPU here; on a GPU, the GPU first)."""
    gpu = _load("gpu")
    work = tmp_path / "work"
    synth = gpu.start_cohort(work / "cohort", 6, small=True)
    assert synth is not None and synth.wait() == 0
    assert gpu.start_cohort(work / "cohort", 6, small=True) is None  # made once
    table, checks = gpu.predict_end_to_end(runs["main"], work / "cohort", work, ("cpu",), (1, 2), alone=2)
    assert list(table["jobs"]) == [1, 2] and list(table["scans"]) == [6, 6]
    assert table["same_bytes_as_jobs_1"].all() and (table["scans_per_s"] > 0).all()
    assert checks == ["cpu: 2/2 scans predicted alone give the batch's row byte for byte"]
    assert "| cpu | 2 | 6 |" in gpu.predict_markdown(table)


def test_two_predictions_tables_are_compared_row_by_row() -> None:
    gpu = _load("gpu")
    first = "case_id,risk_score,risk_group\na,0.5,high\nb,-0.25,low\nc,0.1,intermediate\n"
    second = "case_id,risk_score,risk_group\nc,0.1,intermediate\na,0.5001,high\nb,-0.25,intermediate\n"
    line = gpu.compare_tables(first, second)
    assert line.startswith("max |risk difference| 0.0001 ")
    assert "risk groups agree 2/3" in line and "rows byte-identical 1/3" in line
    with pytest.raises(ValueError, match="other cases"):
        gpu.compare_tables(first, "case_id,risk_score,risk_group\na,0.5,high\n")


def test_the_identity_check_finds_risks_that_depend_on_the_batch(runs, tmp_path: Path) -> None:
    """benchmarks/identity.py on lgerisk's own predictor finds nothing to report (checks 1 and 2), and on a
    network whose output depends on the other scans of its pass it reports the difference."""
    import torch

    identity = _load("identity")
    lines, failed = identity.run(runs["main"], SAMPLE_DATA, 5, 2, "cpu", tmp_path)
    assert not failed and lines[1] == "inputs: this process vs 2 workers: 0 differ"
    risks = [line for line in lines if line.startswith("risks:")]
    assert len(risks) == (7 if torch.get_num_threads() > 1 else 4)
    assert all(" 0 differ" in line for line in risks if "precision" not in line)
    assert any(line.startswith("network (contiguous): a scan takes ") for line in lines)
    precision = next(line for line in lines if "precision" in line)
    assert float(precision.rsplit(" ", 1)[1]) < 2e-5

    class Mixing(torch.nn.Module):  # a scan's output leaks its pass's mean: batch-dependent
        def forward(self, images: torch.Tensor, tabular: object = None) -> torch.Tensor:
            per_scan = images.flatten(1).mean(1)
            return per_scan + 1e-3 * per_scan.mean()

    class Fake:
        model = Mixing()

        def risks(self, images: object, tabular: object = None) -> list[float]:
            from lgerisk.inference import MODEL_BATCH

            x = torch.as_tensor(images)
            out: list[float] = []
            for i in range(0, len(x), MODEL_BATCH):
                chunk = x[i : i + MODEL_BATCH]
                padded = torch.cat([chunk, chunk.new_zeros((MODEL_BATCH - len(chunk), *chunk.shape[1:]))])
                out += self.model(padded)[: len(chunk)].tolist()
            return out

    images = np.random.default_rng(0).normal(size=(8, 1, 2, 3, 3)).astype(np.float32)
    checks = identity.network_checks(Fake(), (images, None))
    count, largest, binding = checks[f"{torch.get_num_threads()} thread(s): alone vs passes in order"]
    assert count == 8 and largest > 0 and binding and identity.broken(checks)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a process with one thread: its checks still bind
    try:
        alone_at_one = identity.network_checks(Fake(), (images, None))
    finally:
        torch.set_num_threads(threads)
    assert identity.broken(alone_at_one) and "alone at" not in " ".join(alone_at_one)

    class ThreadDependent(Fake):  # the same network, but its risks move with the thread count
        def risks(self, images: object, tabular: object = None) -> list[float]:
            return [float(np.asarray(image).mean()) + 1e-3 * torch.get_num_threads() for image in images]

    torch.set_num_threads(2)
    try:
        alone = identity.network_checks(ThreadDependent(), (images, None))  # no batch thread count: 1 informs
        batched = identity.network_checks(ThreadDependent(), (images, None), batch_threads=1)
    finally:
        torch.set_num_threads(threads)
    assert not identity.broken(alone) and alone["alone at 2 threads vs at 1"][:2] == (8, pytest.approx(1e-3))
    assert identity.broken(batched) and batched["alone at 2 threads vs at 1"][2]  # a --jobs batch runs 1 thread
    informative = {"precision: alone vs a float64 copy of the model on the CPU": (8, 0.1, False)}
    assert not identity.broken(informative)
    assert identity.report(informative)[0].endswith("8 differ, largest |difference| 0.1")


def test_the_label_efficiency_table_orders_methods_and_leaves_runs_not_made_empty() -> None:
    bench = _load("label_efficiency")
    row = {
        "seeds": 3,
        "harrell_c_low": 0.6,
        "harrell_c_high": 0.8,
        "delta_c_scar_low": -0.1,
        "delta_c_scar_high": 0.1,
        "delta_c_radiomics100_low": -0.2,
        "delta_c_radiomics100_high": 0.0,
    }
    rows = [
        {
            **row,
            "label_fraction": 1.0,
            "method": "hybrid-pretrained full",
            "harrell_c": 0.71,
            "delta_c_scar": -0.01,
            "delta_c_radiomics100": -0.03,
        },
        {
            **row,
            "label_fraction": 0.25,
            "method": "hybrid-pretrained probe",
            "harrell_c": 0.65,
            "delta_c_scar": -0.06,
            "delta_c_radiomics100": -0.09,
        },
        {
            **row,
            "label_fraction": 1.0,
            "method": "hybrid-pretrained probe",
            "harrell_c": 0.70,
            "delta_c_scar": -0.02,
            "delta_c_radiomics100": -0.04,
        },
        {
            **row,
            "label_fraction": 0.25,
            "method": "scar-% Cox",
            "harrell_c": 0.714,
            "delta_c_scar": float("nan"),
            "delta_c_radiomics100": -0.032,
        },
        {
            **row,
            "label_fraction": 1.0,
            "method": "scar-% Cox",
            "harrell_c": 0.717,
            "delta_c_scar": float("nan"),
            "delta_c_radiomics100": -0.03,
        },
    ]
    lines = bench.markdown_table(pd.DataFrame(rows)).splitlines()
    assert lines[0] == "| method | 25 % | 100 % | ΔC vs radiomics Cox at 100 % (at 25 %) |"
    assert [line.split(" | ")[0] for line in lines[2:]] == [
        "| scar-% Cox",
        "| hybrid-pretrained probe",
        "| hybrid-pretrained full",
    ]
    assert lines[2] == "| scar-% Cox | 0.714 | 0.717 | -0.032 (-0.200 to +0.000) |"
    assert lines[3] == (
        "| hybrid-pretrained probe | 0.650 (-0.060; -0.100 to +0.100) | 0.700 (-0.020; -0.100 to +0.100)"
        " | -0.090 (-0.200 to +0.000) |"
    )
    assert lines[4] == "| hybrid-pretrained full |  | 0.710 (-0.010; -0.100 to +0.100) |  |"  # not run at 25 %


def test_paired_deltas_compare_the_same_cases_and_skip_pairs_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    bench = _load("label_efficiency")
    oof = _oof(n=150)
    monkeypatch.setattr(bench, "PAIRS", (("hybrid-pretrained probe", "scar-% Cox"), ("simclr-pretrained full", "x")))
    rows = bench.paired_deltas(oof, 50)
    assert [(r["first"], r["label_fraction"]) for r in rows] == [
        ("hybrid-pretrained probe", 0.25),
        ("hybrid-pretrained probe", 1.0),
    ]
    at_all = rows[1]  # the probe's noise is half of scar %'s at 100 %: it ranks better, on the same cases
    assert at_all["low"] < at_all["delta_c"] < at_all["high"] and at_all["delta_c"] > 0.02
    assert rows[0]["delta_c"] < at_all["delta_c"]  # noisier at 25 % (noise 2.0 against 1.0)


def test_scaling_benchmark_runs_and_fits_a_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """benchmarks/scaling.py runs end to end on a tiny cohort (every command, two sizes, a CSV), and its
    straight-line fit recovers the cost of a scan and the start-up it is given."""
    scaling = _load("scaling")
    slope, fixed = scaling.linear_fit([250, 500, 1000, 2000], [2.0 + 0.05 * n for n in (250, 500, 1000, 2000)])
    assert slope == pytest.approx(0.05) and fixed == pytest.approx(2.0)
    assert scaling.fit_agreement([0.06, 0.04], 0.05) == "within 20% of the fit's 0.050 s"
    # tiny sizes can time the same to the timer's resolution: a flat or falling fit is said, not divided by
    assert "too few scans" in scaling.fit_agreement([0.0], 0.0)
    assert "too few scans" in scaling.fit_agreement([-0.01], -0.01)
    argv = ["scaling.py", "--work", str(tmp_path), "--sizes", "8", "10", "--batch-size", "4"]
    old, sys.argv = sys.argv, argv
    try:
        scaling.main()
    finally:
        sys.argv = old
    table = pd.read_csv(tmp_path / "scaling.csv")
    assert sorted(set(table["command"])) == sorted(scaling.COMMANDS) and sorted(set(table["scans"])) == [8, 10]
    assert (table["seconds"] > 0).all() and (table["main_mib"] > 50).all()
    assert (table.loc[table["command"] == "predict", "worker_mib"] > 0).all()  # --jobs 2: workers were measured
    assert (tmp_path / "n10" / "predictions.csv").is_file()
    assert "each further scan" in capsys.readouterr().out


def test_each_prediction_ablation_turns_off_a_lever_that_exists() -> None:
    """benchmarks/predict.py --ablations patches names of lgerisk's: each must be there to patch (a misspelt
    one would add a new name and switch nothing off), and the patched command line must still run."""
    import importlib
    import os
    import subprocess

    bench = _load("predict")
    assert len(bench.ABLATIONS) == 4
    for patch in bench.ABLATIONS.values():
        statement, assignment = (part.strip() for part in patch.split(";"))
        module_name, alias = statement.removeprefix("import ").split(" as ")
        target = assignment.split("=")[0].strip()
        assert target.startswith(f"{alias}.")
        assert hasattr(importlib.import_module(module_name), target.removeprefix(f"{alias}."))
        command = [*bench.ablated(patch), "predict", "--help"]
        plain = {key: value for key, value in os.environ.items() if key != "FORCE_COLOR"} | {"NO_COLOR": "1"}
        run = subprocess.run(command, capture_output=True, encoding="utf-8", errors="replace", env=plain)
        assert run.returncode == 0 and "Usage: lgerisk predict" in run.stdout, run.stderr


def test_pretraining_runs_are_paired_run_by_run_and_widen_the_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two pretraining runs of a method: paired with the single-run reference each, pooled as the mean over the
    cohort's runs; runs that disagree widen the interval; a method missing a run is not paired at all."""
    bench = _load("label_efficiency")
    oof = _oof(n=150, fractions=(1.0,))
    probe = oof[oof["method"] == "hybrid-pretrained probe"]
    worse = probe.assign(risk=np.random.default_rng(9).normal(size=len(probe)), pretrain_run=1)
    alike = pd.concat([oof.assign(pretrain_run=0), probe.assign(pretrain_run=1)], ignore_index=True)
    apart = pd.concat([oof.assign(pretrain_run=0), worse], ignore_index=True)
    monkeypatch.setattr(bench, "PAIRS", (("hybrid-pretrained probe", "scar-% Cox"),))
    single = bench.paired_deltas(oof, 100)[0]
    same = bench.paired_deltas(alike, 100)[0]
    spread = bench.paired_deltas(apart, 100)[0]
    assert same["delta_c"] == pytest.approx(single["delta_c"], abs=1e-12)
    assert spread["delta_c"] < same["delta_c"] and spread["high"] - spread["low"] > same["high"] - same["low"]
    missing = apart[~((apart["pretrain_run"] == 1) & (apart["seed"] == 1))]  # seed 1 lacks run 1
    assert bench.paired_deltas(missing, 50) == []


def test_dominant_terms_name_the_image_term_that_sets_a_case_apart() -> None:
    from lgerisk.synth.hazard import hazard_model

    bench = _load("label_efficiency")
    names = [t.name for t in hazard_model(2).image_terms()]
    truth = pd.DataFrame(
        {name: [t.center for t in hazard_model(2).image_terms() if t.name == name] * 40 for name in names}
    )
    truth.loc[0, "wall_thinning"] += 3.0  # far thinner than the rest
    truth.loc[1, "midwall_lge"] = 1.0
    truth.loc[2, "scar_percent"] += 40.0
    groups = bench.dominant_terms(truth, 2)
    assert groups.iloc[:3].tolist() == ["wall thinning", "mid-wall pattern", "scar, grey zone, heterogeneity"]


def test_the_untrained_encoder_control_learns_nothing_and_is_compared_with_the_guided_one() -> None:
    """label_efficiency.py's untrained encoder: the radiomics-guided settings at a learning rate that moves no
    weight, named apart in the table, and paired with the radiomics-guided encoder's same row."""
    import torch

    from lgerisk.training.pretrain import PretrainConfig

    bench = _load("label_efficiency")
    settings = bench.lever_settings(bench.UNTRAINED)
    config = PretrainConfig(epochs=1, **settings)  # type: ignore[arg-type]
    assert config.objective == {"preset": "radiomics"} and config.aux_weight == bench.LEVERS["aux_weight"]
    weight = torch.nn.Parameter(torch.ones(4))
    optimiser = torch.optim.AdamW([weight], lr=config.lr, weight_decay=config.weight_decay)
    weight.grad = torch.full((4,), 5.0)
    optimiser.step()  # one step of the pretraining optimiser at that rate: no float32 weight moves
    assert torch.equal(weight.detach(), torch.ones(4))
    assert bench.lever_settings("radiomics").get("lr") is None
    method = "untrained encoder probe + radiomics (stacked) [image+myocardium+scar+greyzone]"
    guided = "radiomics-pretrained probe + radiomics (stacked) [image+myocardium+scar+greyzone]"
    assert (guided, method) in bench.pairs_for([method, guided])
    assert (guided, method) not in bench.pairs_for([guided])
