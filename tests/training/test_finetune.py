"""lgerisk finetune: the run folder end to end, determinism, resume, label fraction, covariates and
radiomics inputs, bad input, and no leakage of test-fold rows into a fold's fit.

Everything reuses one tiny pretrained encoder and one finetune run on sample_data (built once per
test session on disk, see ``tests.helpers.shared_runs``; tests/predict reuses the same risk models).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lgerisk.cards import seal_card
from lgerisk.errors import InputError
from tests.helpers import FINETUNE_TINY, SAMPLE_DATA, run_cli
from tests.helpers import check_ok as _check

METHODS = ["scar-% Cox", "scar+grey Cox", "radiomics Cox", "pretrained probe"]
ORACLE = "oracle (true log-hazard)"

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def _outcomes_copy(folder: Path, edit) -> Path:
    table = pd.read_csv(SAMPLE_DATA / "outcomes.csv", dtype={"case_id": str})
    path = folder / "outcomes.csv"
    folder.mkdir(parents=True, exist_ok=True)
    edit(table).to_csv(path, index=False)
    return path


LEFT_OUT = ["synth-0004", "synth-0011", "synth-0020"]


@pytest.fixture(scope="module")
def small_run(runs, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A probe run without baselines at label fraction 0.5, with outcomes lacking three cases."""
    root = tmp_path_factory.mktemp("finetune-small")
    outcomes = _outcomes_copy(root, lambda t: t[~t["case_id"].isin(LEFT_OUT)])
    args = [
        "finetune",
        "--data",
        runs["prep"],
        "--features",
        runs["features"],
        "--encoder",
        runs["encoder"],
        "--outcomes",
        outcomes,
        "--no-baselines",
        "--label-fraction",
        "0.5",
        *FINETUNE_TINY,
    ]
    _check(run_cli(*args, "--out", root / "run"), "the label-fraction run")
    return root / "run", args


# ------------------------------------------------------------------------------------------ the run folder


def test_finetune_writes_a_complete_run(runs) -> None:
    run = runs["main"]
    state = torch.load(run / "model.pt", weights_only=True)
    assert state["format"] == "lgerisk-survival-1" and isinstance(state["model"], dict)

    card = json.loads((run / "model_card.json").read_text())
    assert card["format"] == "lgerisk-survival-1" and card["method"] == "pretrained probe"
    assert card["data"]["synthetic"] is True and card["data"]["cases"] == 32 and card["data"]["left_out"] == {}
    survival = card["survival"]
    times, cumhaz = np.array(survival["baseline_times"]), np.array(survival["baseline_cumhaz"])
    assert len(times) == len(cumhaz) > 0 and np.all(np.diff(times) > 0) and np.all(np.diff(cumhaz) > 0)
    low, high = survival["risk_thresholds"]
    assert low < high
    assert survival["horizons"] == [1.0, 3.0, 5.0]
    assert {"slice_spacing_mm", "image_p99", "scar_percent"} <= set(card["training_ranges"])
    assert all(a <= b for a, b in card["training_ranges"].values())
    assert card["labels"] == "emidec" and card["preprocessing"]["settings_hash"]
    assert card["tabular"]["radiomics"] == [] and card["tabular"]["covariates"] == []
    assert card["concepts"] and "not" in card["intended_use"]
    assert card["evaluation"]["methods"] == METHODS
    assert [s["name"] for s in card["evaluation"]["splits"]] == ["fold1", "fold2", "fold3"]
    assert {row["method"] for row in card["evaluation"]["metrics"]} == {*METHODS, ORACLE}
    assert card["evaluation"]["model_metrics"][0]["method"] == "pretrained probe"

    table = pd.read_csv(run / "comparison.csv")
    assert list(table["method"]) == [*METHODS, ORACLE]
    assert set(table.loc[table["method"] != ORACLE, "evaluation"]) == {"cv"}
    assert table["synthetic"].all()
    for column in ("harrell_c", "harrell_c_low", "harrell_c_high", "uno_c", "auc_1", "auc_3", "auc_5", "ibs"):
        assert column in table.columns, column
    for name in ("harrell_c", "uno_c"):
        rows = table[np.isfinite(table[f"{name}_low"])]
        assert len(rows) == len(table)
        assert (rows[f"{name}_low"] <= rows[name] + 1e-12).all() and (rows[name] <= rows[f"{name}_high"] + 1e-12).all()
        assert table[name].between(0, 1).all()
    assert table.loc[table["method"] != ORACLE, "ibs"].between(0, 1).all()
    assert np.isnan(table.loc[table["method"] == ORACLE, "ibs"]).all()  # no survival curves for the oracle
    assert (table["n"] == 32).all() and (table["events"] == 14).all()
    assert json.loads((run / "comparison.json").read_text())["synthetic"] is True
    # what each model adds over scar %: a paired delta C with its interval, none for scar % itself
    by_method = table.set_index("method")
    assert np.isnan(by_method.loc["scar-% Cox", "delta_c"])
    for method in [m for m in METHODS if m != "scar-% Cox"] + [ORACLE]:
        row = by_method.loc[method]
        assert row["delta_c"] == pytest.approx(row["harrell_c"] - by_method.loc["scar-% Cox", "harrell_c"], abs=1e-9)
        assert row["delta_c_low"] <= row["delta_c"] + 1e-12 <= row["delta_c_high"] + 2e-12, method

    predictions = pd.read_csv(run / "predictions.csv", dtype={"case_id": str})
    assert not [c for c in predictions.columns if c.startswith("s@")]
    assert {"survival_1", "survival_3", "survival_5", "risk_group", "risk"} <= set(predictions.columns)
    cv = predictions[predictions["evaluation"] == "cv"]
    assert set(cv["role"]) == {"test"}
    for method in METHODS:
        counts = cv.loc[cv["method"] == method, "case_id"].value_counts()
        assert len(counts) == 32 and (counts == 1).all(), method
    assert set(cv["risk_group"]) <= {"low", "intermediate", "high"}
    survival_columns = cv[["survival_1", "survival_3", "survival_5"]].to_numpy()
    assert ((survival_columns >= 0) & (survival_columns <= 1)).all()
    assert (np.diff(survival_columns, axis=1) <= 1e-12).all()

    for method in ("scar-pct-cox", "radiomics-cox", "pretrained-probe"):
        assert (run / f"km_{method}.png").read_bytes()[:4] == b"\x89PNG"
    assert not (run / "km_deep-scratch-full.png").exists()  # the costly scratch network only when asked for
    assert (run / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    assert len(pd.read_csv(run / "metrics_by_split.csv")) == 3 * len(METHODS)
    assert len(list((run / "parts").glob("fold*/*.csv"))) == 3 * len(METHODS)


def test_same_config_same_results(runs, tmp_path: Path) -> None:
    """A second run of the same configuration into another folder (no shared parts) matches."""
    again = tmp_path / "again"
    _check(
        run_cli(
            "finetune",
            "--data",
            SAMPLE_DATA,
            "--features",
            runs["features"],
            "--encoder",
            runs["encoder"],
            "--out",
            again,
            "--jobs",
            "2",
            *FINETUNE_TINY,
        ),
        "the repeated run",
    )
    for name in ("comparison.csv", "predictions.csv", "metrics_by_split.csv"):
        assert (again / name).read_text() == (runs["main"] / name).read_text(), name
    first = torch.load(runs["main"] / "model.pt", weights_only=True)["model"]
    second = torch.load(again / "model.pt", weights_only=True)["model"]
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_the_scratch_baseline_runs_when_asked_for_and_says_how_long_first(runs, tmp_path: Path) -> None:
    """scratch_baseline=True adds the network from random weights in every fold; before its end-to-end
    training runs, one line says how many fits, epochs and steps it has and about how long they take."""
    from lgerisk.reporting import Reporter
    from lgerisk.training.finetune import FinetuneConfig, run_finetune

    notes: list[str] = []
    summary = run_finetune(
        runs["prep"],
        tmp_path / "run",
        FinetuneConfig(folds=2, n_boot=10, epochs=2, batch_size=8, scratch_baseline=True, label_fraction=0.5),
        encoder=runs["encoder"],
        features=str(runs["features"]),
        device="cpu",
        reporter=Reporter(progress=False, say=notes.append),
    )
    assert list(summary.table["method"])[:5] == [*METHODS[:3], "deep, scratch (full)", "pretrained probe"]
    estimates = [n for n in notes if n.startswith("end-to-end training:")]
    # two folds of the scratch network (8 training cases at half the labels: 1 step of 8), the probe none
    assert len(estimates) == 1 and "2 fit(s) x 2 epoch(s) x 1 step(s), about " in estimates[0], notes
    first_fit = next(i for i, n in enumerate(notes) if n.lstrip().startswith("deep, scratch (full)"))
    assert notes.index(estimates[0]) < first_fit  # said while the first fit trains, before any has finished


# ------------------------------------------------------------------------------------------ resume


def test_rerun_reuses_parts_and_changed_settings_refit(small_run, tmp_path: Path, monkeypatch) -> None:
    from lgerisk.training import finetune

    source, args = small_run
    run = tmp_path / "run"
    shutil.copytree(source, run)
    parts = sorted((run / "parts").glob("fold*/*.csv"))
    assert len(parts) == 3
    stamps = {p: p.stat().st_mtime_ns for p in parts}
    calls: list[str] = []
    original = finetune.fit_method

    def counting(name, workspace, train, seed, say=None):
        calls.append(name)
        return original(name, workspace, train, seed, say)

    monkeypatch.setattr(finetune, "fit_method", counting)
    _check(run_cli(*args, "--out", run), "the rerun")
    assert len(calls) == 1  # the final model only: every (method, fold) fit was reused
    assert {p: p.stat().st_mtime_ns for p in parts} == stamps
    assert (run / "predictions.csv").read_text() == (source / "predictions.csv").read_text()

    calls.clear()
    _check(
        run_cli(*args, "--out", run, "--head-penalty", "fixed", "--penalizer", "0.5"),
        "the rerun with a fixed head penalty",
    )  # 0.5 is not in the inner-CV grid: the probes must move
    assert len(calls) == 4  # three folds and the final model
    assert all(p.stat().st_mtime_ns != stamps[p] for p in parts)
    assert (run / "predictions.csv").read_text() != (source / "predictions.csv").read_text()


def test_changed_outcomes_are_not_served_from_stale_parts(small_run, tmp_path: Path) -> None:
    """Same settings, other outcomes for the same cases: the parts must be refitted, not reused."""
    source, args = small_run
    run = tmp_path / "run"
    shutil.copytree(source, run)
    changed = _outcomes_copy(
        tmp_path / "other", lambda t: t[~t["case_id"].isin(LEFT_OUT)].assign(time=lambda f: f["time"] * 1.5)
    )
    at = args.index("--outcomes")
    result = run_cli(*args[: at + 1], changed, *args[at + 2 :], "--out", run)
    _check(result, "the run with changed outcomes")
    predictions = pd.read_csv(run / "predictions.csv", dtype={"case_id": str})
    original = pd.read_csv(SAMPLE_DATA / "outcomes.csv", dtype={"case_id": str}).set_index("case_id")["time"]
    assert np.allclose(predictions["time"], original.loc[predictions["case_id"]].to_numpy() * 1.5)


# ------------------------------------------------------------------------------------------ label fraction, cases


def test_label_fraction_halves_each_training_fold(small_run) -> None:
    from lgerisk.training.finetune import FinetuneConfig, make_splits

    run, _ = small_run
    outcomes = pd.read_csv(SAMPLE_DATA / "outcomes.csv", dtype={"case_id": str})
    outcomes = outcomes[~outcomes["case_id"].isin(LEFT_OUT)]
    event = dict(zip(outcomes["case_id"], outcomes["event"].astype(int)))
    whole = make_splits(sorted(event), event, FinetuneConfig(folds=3))
    for split in whole:
        part = pd.read_csv(run / "parts" / split.name / "pretrained-probe.csv", dtype={"case_id": str})
        train = set(part.loc[part["role"] == "train", "case_id"])
        test = set(part.loc[part["role"] == "test", "case_id"])
        assert test == set(split.test)  # the evaluation cases do not change with the label fraction
        assert train < set(split.train)
        assert abs(len(train) - len(split.train) / 2) <= 1
        assert sum(event[c] for c in train) >= 2
    card = json.loads((run / "model_card.json").read_text())
    assert card["config"]["label_fraction"] == 0.5
    assert [s["train"] for s in card["evaluation"]["splits"]] == [round(len(s.train) / 2 + 1e-9) for s in whole]


def test_cases_without_outcome_are_left_out_and_listed(small_run) -> None:
    run, _ = small_run
    card = json.loads((run / "model_card.json").read_text())
    assert sorted(card["data"]["left_out"]) == LEFT_OUT
    assert all("outcome" in why for why in card["data"]["left_out"].values())
    assert card["data"]["labelled_cases"] == 29 and card["data"]["cases"] == 29
    predictions = pd.read_csv(run / "predictions.csv", dtype={"case_id": str})
    assert not set(LEFT_OUT) & set(predictions["case_id"])


def test_outcomes_with_only_time_and_event(runs, tmp_path: Path) -> None:
    """An outcomes table without any covariate column is the commonest kind."""
    outcomes = _outcomes_copy(tmp_path, lambda t: t[["case_id", "time", "event"]])
    from lgerisk.training.data import prepare_data
    from lgerisk.training.outcomes import labelled_cases

    prepared = prepare_data(runs["prep"], tmp_path / "cache", features=runs["features"])
    ids, _, _, covariates, skipped = labelled_cases(prepared, outcomes, ())
    assert len(ids) == 32 and not skipped and covariates.shape == (32, 0)


# ------------------------------------------------------------------------------------------ tabular inputs


def test_covariates_and_radiomics_are_in_the_model(runs) -> None:
    card = json.loads((runs["tabular"] / "model_card.json").read_text())
    tabular = card["tabular"]
    assert tabular["covariates"] == ["age", "lvef"] and len(tabular["covariate_mean"]) == 2
    assert tabular["radiomics"] and len(tabular["radiomics"]) <= 10
    assert len(tabular["radiomics_mean"]) == len(tabular["radiomics_scale"]) == len(tabular["radiomics"])
    assert tabular["fusion"] == "group" and tabular["embedding_penalty_factor"] in (1.0, 10.0, 100.0, 1000.0)
    assert card["method"] == "pretrained probe + radiomics (group ridge) + age,lvef"
    assert card["model"]["n_tabular"] == len(tabular["radiomics"]) + 2
    assert card["evaluation"]["methods"] == ["pretrained probe + radiomics (group ridge) + age,lvef"]


def test_a_fusion_head_checks_how_the_scans_scar_was_found(runs, tmp_path: Path) -> None:
    """The radiomics block reads the scar ROI and scar metrics: a scan whose scar is found another way than the
    training cases' (derived for labelled) is not reliable; one found the same way is."""
    from lgerisk.inference import RiskPredictor
    from lgerisk.io.cohort import discover_cohort

    predictor = RiskPredictor.load(runs["tabular"], device="cpu")
    assert predictor.tabular.scar_methods == ("label",) and not predictor.tabular.scar_metrics
    case = discover_cohort(runs["prep"]).cases[0]
    prepared, qc = predictor.prepare(case, tmp_path / "work")
    image, tab, _ = predictor.inputs(prepared, {"age": 50.0, "lvef": 40.0}, qc)
    risk = predictor.risk(image, tab)
    assert not any("measured by" in r for r in predictor.record(case.case_id, risk, qc, image)["unreliable_reasons"])
    derived = predictor.record(case.case_id, risk, dict(qc, scar_method="fwhm"), image)
    assert derived["reliable"] is False and any("measured by fwhm" in r for r in derived["unreliable_reasons"])


def test_the_fusion_block_is_what_radiomics_cox_selects(runs) -> None:
    """The radiomics block of a fusion head is the radiomics Cox baseline's selection on the same rows (imputed,
    with presence indicators and the QC metrics as candidates), standardised with that model's means and SDs."""
    from lgerisk.evaluation.baselines import RadiomicsCox
    from lgerisk.training.seeding import derive_seed

    card = json.loads((runs["tabular"] / "model_card.json").read_text())
    table = pd.read_csv(runs["features"], dtype={"case_id": str}, low_memory=False).set_index("case_id", drop=False)
    outcomes = pd.read_csv(SAMPLE_DATA / "outcomes.csv", dtype={"case_id": str}).set_index("case_id")
    ids = sorted(outcomes.index)  # the final model: every labelled case
    baseline = RadiomicsCox(max_features=10, penalizer="cv", qc_metrics=True, seed=derive_seed(0, 99)).fit(
        table.loc[ids], outcomes.loc[ids, "time"].to_numpy(), outcomes.loc[ids, "event"].to_numpy()
    )
    assert card["tabular"]["radiomics"] == baseline.selected_
    np.testing.assert_allclose(card["tabular"]["radiomics_mean"], baseline.means_, rtol=1e-12)
    np.testing.assert_allclose(card["tabular"]["radiomics_scale"], baseline.stds_, rtol=1e-12)


def test_settings_hash_follows_what_changes_a_fit() -> None:
    from lgerisk.training.finetune import FinetuneConfig

    base = FinetuneConfig()
    assert FinetuneConfig(fusion="stacked").settings_hash() == base.settings_hash()  # no radiomics: no fusion
    assert FinetuneConfig(aux_weight=0.0).settings_hash() == base.settings_hash()  # a probe trains no encoder
    fused = FinetuneConfig(with_radiomics=True)
    assert FinetuneConfig(with_radiomics=True, fusion="stacked").settings_hash() != fused.settings_hash()
    full = FinetuneConfig(mode="full")
    assert FinetuneConfig(mode="full", aux_weight=0.0).settings_hash() != full.settings_hash()
    with pytest.raises(InputError, match="fusion="):
        FinetuneConfig(fusion="late")
    with pytest.raises(InputError, match="aux_weight="):
        FinetuneConfig(aux_weight=-1.0)


def test_covariate_errors(runs, tmp_path: Path, cli) -> None:
    base = [
        "finetune",
        "--data",
        runs["prep"],
        "--features",
        runs["features"],
        "--encoder",
        runs["encoder"],
        "--no-baselines",
        *FINETUNE_TINY,
    ]
    result = cli(
        *base, "--out", tmp_path / "a", "--covariates", "age,weight", "--outcomes", SAMPLE_DATA / "outcomes.csv"
    )
    assert result.exit_code == 2
    assert "'weight'" in result.output and "not in the outcomes table" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) <= 2
    text = _outcomes_copy(tmp_path / "text", lambda t: t.assign(nyha=["II" if i % 2 else "III" for i in range(len(t))]))
    result = cli(*base, "--out", tmp_path / "b", "--covariates", "age,nyha", "--outcomes", text)
    assert result.exit_code == 2 and "'nyha'" in result.output and "not numeric" in result.output


# ------------------------------------------------------------------------------------------ bad input


def test_bad_input(runs, tmp_path: Path, cli) -> None:
    base = [
        "finetune",
        "--data",
        runs["prep"],
        "--features",
        runs["features"],
        "--encoder",
        runs["encoder"],
        "--no-baselines",
        *FINETUNE_TINY,
    ]
    censored = _outcomes_copy(tmp_path / "censored", lambda t: t.assign(event=0))
    result = cli(*base, "--out", tmp_path / "r1", "--outcomes", censored)
    assert result.exit_code == 2 and "all 32" in result.output and "censored" in result.output

    result = cli(*base, "--out", tmp_path / "r2", "--folds", "20")
    assert result.exit_code == 2 and "14 events" in result.output and "20 folds" in result.output

    for fraction in ("0", "1.5"):
        result = cli(*base, "--out", tmp_path / "r3", "--label-fraction", fraction)
        assert result.exit_code == 2 and "--label-fraction" in result.output, fraction

    result = cli(
        "finetune",
        "--data",
        runs["prep"],
        "--features",
        runs["features"],
        "--encoder",
        runs["prep"],
        "--out",
        tmp_path / "r4",
        *FINETUNE_TINY,
    )
    assert result.exit_code == 2 and "not a pretraining run" in result.output

    result = cli(
        "finetune",
        "--data",
        runs["prep"],
        "--features",
        runs["features"],
        "--mode",
        "probe",
        "--out",
        tmp_path / "r5",
        *FINETUNE_TINY,
    )
    assert result.exit_code == 2 and "--encoder" in result.output

    other = tmp_path / "other-encoder"
    shutil.copytree(runs["encoder"], other, ignore=shutil.ignore_patterns("cache", "checkpoint"))
    card = json.loads((other / "model_card.json").read_text())
    card["preprocessing"]["settings_hash"] = "0123456789abcdef"
    (other / "model_card.json").write_text(json.dumps(seal_card(card)))
    result = cli(
        "finetune",
        "--data",
        runs["prep"],
        "--features",
        runs["features"],
        "--encoder",
        other,
        "--out",
        tmp_path / "r6",
        *FINETUNE_TINY,
    )
    assert result.exit_code == 2 and "other settings" in result.output
    for r in ("r1", "r2", "r3", "r4", "r5", "r6"):
        assert not (tmp_path / r / "model.pt").exists()
    assert "Traceback" not in result.output


# ------------------------------------------------------------------------------------------ leakage


def _fold1_risks(part: Path, role: str) -> pd.Series:
    table = pd.read_csv(part, dtype={"case_id": str}, float_precision="round_trip")
    return table[table["role"] == role].set_index("case_id")["risk"]


def test_poisoned_test_rows_do_not_reach_the_training_fit(runs, tmp_path: Path, monkeypatch) -> None:
    """Test-fold rows of the feature table set to a perfect function of the outcome leave that fold's
    training risks unchanged, for the radiomics Cox baseline and for the model with radiomics inputs
    (selection, scaling and fit see training rows only), while the test rows' risks do move."""
    from lgerisk.evaluation.baselines import RadiomicsCox
    from lgerisk.training import finetune

    baseline = runs["main"] / "parts" / "fold1" / "radiomics-cox.csv"
    model = runs["tabular"] / "parts" / "fold1" / "pretrained-probe-plus-radiomics-group-ridge-plus-age-lvef.csv"
    train_ids = list(_fold1_risks(baseline, "train").index)
    test_ids = list(_fold1_risks(baseline, "test").index)
    assert list(_fold1_risks(model, "test").index) == test_ids  # the same folds in both runs
    table = pd.read_csv(runs["features"], dtype={"case_id": str}, low_memory=False).set_index("case_id", drop=False)
    outcomes = pd.read_csv(SAMPLE_DATA / "outcomes.csv", dtype={"case_id": str}).set_index("case_id")
    time, event = outcomes.loc[train_ids, "time"].to_numpy(), outcomes.loc[train_ids, "event"].to_numpy()
    baseline_columns = (
        RadiomicsCox(max_features=10, penalizer="cv", qc_metrics=True).fit(table.loc[train_ids], time, event).selected_
    )  # as the radiomics Cox baseline and the fusion head's radiomics block select
    # poison a feature both of the fold's models use, so that their test risks must move
    column = next(c for c in baseline_columns if "__" in c and not c.endswith("__present"))
    rows = table["case_id"].isin(test_ids)
    ours = outcomes.loc[table.loc[rows, "case_id"]]
    table.loc[rows, column] = (-np.log(ours["time"]) + 3 * ours["event"]).to_numpy() * 100
    poisoned = tmp_path / "poisoned.csv"
    table.to_csv(poisoned, index=False)

    # only the two methods this needs (the last one is the model the run saves)
    from lgerisk.training.methods import methods_for

    def two(config, pretrained):  # noqa: ANN001, ANN202
        return [m for m in methods_for(config, pretrained) if m.key in ("radiomics_cox", "model")]

    monkeypatch.setattr(finetune, "methods_for", two)
    _check(
        run_cli(
            "finetune",
            "--data",
            runs["prep"],
            "--features",
            poisoned,
            "--encoder",
            runs["encoder"],
            "--out",
            tmp_path / "run",
            "--with-radiomics",
            "--covariates",
            "age,lvef",
            *FINETUNE_TINY,
        ),
        "the poisoned run",
    )
    for before in (baseline, model):
        after = tmp_path / "run" / "parts" / "fold1" / before.name
        pd.testing.assert_series_equal(_fold1_risks(after, "train"), _fold1_risks(before, "train"), rtol=0, atol=1e-9)
        moved = _fold1_risks(after, "test") - _fold1_risks(before, "test")
        assert moved.abs().max() > 1e-3, before.name


def test_held_out_split_with_and_without_folds(runs, tmp_path: Path) -> None:
    tiny = [a for a in FINETUNE_TINY if a not in ("--folds", "3")]
    base = [
        "finetune",
        "--data",
        runs["prep"],
        "--features",
        runs["features"],
        "--encoder",
        runs["encoder"],
        "--no-baselines",
        *tiny,
    ]
    _check(run_cli(*base, "--folds", "0", "--test-fraction", "0.25", "--out", tmp_path / "test-only"), "test only")
    table = pd.read_csv(tmp_path / "test-only" / "comparison.csv")
    assert list(table["evaluation"]) == ["test"]
    card = json.loads((tmp_path / "test-only" / "model_card.json").read_text())
    test_cases = card["evaluation"]["splits"][0]["test"]
    assert 7 <= test_cases <= 9 and card["data"]["cases"] == 32 - test_cases  # the final model never sees it
    _check(
        run_cli(*base, "--folds", "2", "--test-fraction", "0.25", "--mode", "full", "--out", tmp_path / "both"),
        "test split and folds, full fine-tuning",
    )
    table = pd.read_csv(tmp_path / "both" / "comparison.csv")
    assert set(table["evaluation"]) == {"cv", "test"} and set(table["method"]) == {"pretrained full"}
    metrics = pd.read_csv(tmp_path / "both" / "metrics.csv")
    assert list(metrics["stage"]) == ["probe", "full"] and metrics["loss"].notna().all()


def test_labels_conflicting_with_the_encoder_are_refused(runs, tmp_path: Path, cli) -> None:
    result = cli(
        "finetune",
        "--data",
        SAMPLE_DATA,
        "--encoder",
        runs["encoder"],
        "--out",
        tmp_path / "r",
        "--labels",
        "acdc",
        *FINETUNE_TINY,
    )
    assert result.exit_code == 2 and "labels emidec vs acdc" in result.output


def test_out_must_not_be_the_encoder_folder(runs, cli) -> None:
    result = cli(
        "finetune",
        "--data",
        runs["prep"],
        "--features",
        runs["features"],
        "--encoder",
        runs["encoder"],
        "--out",
        runs["encoder"],
        *FINETUNE_TINY,
    )
    assert result.exit_code == 2 and "encoder's folder" in result.output
    assert json.loads((runs["encoder"] / "model_card.json").read_text())["kind"] == "lgerisk pretrained encoder"


def test_a_raw_cohort_is_preprocessed_like_the_encoders_data(runs, tmp_path: Path) -> None:
    from lgerisk.preprocess.config import PreprocessConfig

    encoder = tmp_path / "encoder"
    shutil.copytree(runs["encoder"], encoder, ignore=shutil.ignore_patterns("cache", "checkpoint"))
    card = json.loads((encoder / "model_card.json").read_text())
    settings = {**card["preprocessing"]["settings"], "nsd": 3.0}  # as if pretrained with preprocess --nsd 3
    card["preprocessing"] = {
        **card["preprocessing"],
        "settings": settings,
        "settings_hash": PreprocessConfig.from_dict(settings).settings_hash(),
    }
    (encoder / "model_card.json").write_text(json.dumps(seal_card(card)))
    out = tmp_path / "risk"
    _check(
        run_cli(
            "finetune",
            "--data",
            SAMPLE_DATA,
            "--features",
            runs["features"],
            "--encoder",
            encoder,
            "--out",
            out,
            "--no-baselines",
            *FINETUNE_TINY,
        ),
        "finetune on a raw cohort",
    )
    used = json.loads((out / "cache" / "preprocessed" / "preprocess.json").read_text())
    assert used["settings"]["nsd"] == 3.0


def test_a_head_with_scar_metrics_and_an_inner_cv_penalty(runs, tmp_path: Path) -> None:
    """Issue 11: Cox on [embedding + scar % + grey-zone %], its penalty chosen by inner CV on each training fold;
    predict feeds the scan's own QC scar metrics to the head."""
    from lgerisk.evaluation.cox import HEAD_PENALTY_GRID
    from lgerisk.inference import RiskPredictor
    from lgerisk.io.cohort import discover_cohort

    run = tmp_path / "scar-head"
    _check(
        run_cli(
            "finetune",
            "--data",
            runs["prep"],
            "--features",
            runs["features"],
            "--encoder",
            runs["encoder"],
            "--out",
            run,
            "--no-baselines",
            "--with-scar",
            *FINETUNE_TINY,
        ),
        "the --with-scar run",
    )
    card = json.loads((run / "model_card.json").read_text())
    assert card["method"] == "pretrained probe + scar %"
    tabular = card["tabular"]
    assert tabular["scar_metrics"] == ["scar_percent", "greyzone_percent"]
    assert card["model"]["n_tabular"] == 2 and tabular["head_penalizer"] in HEAD_PENALTY_GRID
    probe = pd.read_csv(run / "metrics.csv").iloc[0]
    assert probe["penalizer"] == tabular["head_penalizer"]
    cv_columns = [c for c in probe.index if c.startswith("inner_cv_c@")]
    assert len(cv_columns) == len(HEAD_PENALTY_GRID)
    assert probe[f"inner_cv_c@{tabular['head_penalizer']:g}"] == max(probe[c] for c in cv_columns)

    predictor = RiskPredictor.load(run, device="cpu")
    case = discover_cohort(runs["prep"]).cases[0]
    prepared, qc = predictor.prepare(case, tmp_path / "work")
    image, tab, _ = predictor.inputs(prepared, None, qc)
    expected = (np.array([qc["scar_percent"], qc["greyzone_percent"]]) - tabular["scar_metrics_mean"]) / np.array(
        tabular["scar_metrics_scale"]
    )
    assert np.allclose(tab.cpu().numpy()[0], expected, atol=1e-5)
    more_scar = dict(qc, scar_percent=qc["scar_percent"] + 20.0)
    assert predictor.risk(image, predictor.inputs(prepared, None, more_scar)[1]) != predictor.risk(image, tab)
    # scar % measured another way than in training (e.g. derived, for a mask without scar labels): not reliable
    assert tabular["scar_methods"] == ["label"]
    risk = predictor.risk(image, tab)
    assert not any("measured by" in r for r in predictor.record(case.case_id, risk, qc, image)["unreliable_reasons"])
    derived = predictor.record(case.case_id, risk, dict(qc, scar_method="fwhm"), image)
    assert derived["reliable"] is False and any("measured by fwhm" in r for r in derived["unreliable_reasons"])


def test_fixed_head_penalty_is_the_penalizer(small_run) -> None:
    from lgerisk.training.finetune import FinetuneConfig

    assert FinetuneConfig().head_penalty == "cv"
    with pytest.raises(Exception, match="head_penalty="):
        FinetuneConfig(head_penalty="aic")


def test_leading_components_are_the_top_variance_directions() -> None:
    from lgerisk.training.survival_fit import leading_components

    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 6)) * np.array([5.0, 3.0, 0.1, 0.1, 0.1, 0.1])
    components = leading_components(x - x.mean(axis=0), 2)
    assert components.shape == (6, 2) and np.allclose(components.T @ components, np.eye(2), atol=1e-9)
    assert np.abs(components[2:]).max() < 0.05  # the two high-variance axes, not the noise
    assert leading_components(x[:3], 10).shape == (6, 2)  # at most n - 1 components


def test_head_on_leading_components_folds_into_the_head(runs, tmp_path: Path) -> None:
    """--head-pcs K: the probe is fitted on K principal components and folded back into the head's
    weights on the whole embedding, which then lie in the span of those K directions."""
    run = tmp_path / "pcs"
    _check(
        run_cli(
            "finetune",
            "--data",
            runs["prep"],
            "--features",
            runs["features"],
            "--encoder",
            runs["encoder"],
            "--out",
            run,
            "--no-baselines",
            "--with-scar",
            "--head-pcs",
            "1",
            *FINETUNE_TINY,
        ),
        "--head-pcs",
    )
    card = json.loads((run / "model_card.json").read_text())
    assert card["config"]["head_pcs"] == 1
    state = torch.load(run / "model.pt", weights_only=True)["model"]
    weight = state["head.weight"][0].numpy()
    embedding_weight = weight[:-2]  # the last two inputs are scar % and grey-zone %
    # the final model's training cases: their standardised embeddings' leading direction is the head's
    from lgerisk.artifacts import load_risk_model
    from lgerisk.data.tensors import TensorSpec, case_tensor
    from lgerisk.io.cohort import discover_cohort

    model, _, card = load_risk_model(run)
    spec = TensorSpec.from_dict(card.tensor_spec)
    cases = {c.case_id: c for c in discover_cohort(runs["prep"]).cases}
    with torch.no_grad():
        z = torch.cat(
            [
                model.embed(torch.from_numpy(case_tensor(cases[c].image, cases[c].mask, spec))[None].float())
                for c in card.data.train_cases
            ]
        ).numpy()
    _, _, vt = np.linalg.svd(z - z.mean(axis=0), full_matrices=False)
    cosine = abs(float(vt[0] @ embedding_weight)) / np.linalg.norm(embedding_weight)
    assert cosine > 0.999
