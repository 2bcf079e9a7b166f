"""The fusion risk models (radiomics and the embedding in one Cox head, ``finetune --with-radiomics``): the stacked
head is the fold's radiomics Cox scaled plus the embedding, no test-fold row reaches a fit, the saved model predicts
the same alone and in a batch and on a scan without scar, explain splits the risk into the blocks' terms, and the
auxiliary radiomics loss trains beside the Cox loss in full fine-tuning.

The group-ridge head is covered by tests/training/test_finetune.py (the shared ``tabular`` run) and its penalty
choice by tests/evaluation/test_cox.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch

from tests.helpers import FINETUNE_TINY, SAMPLE_DATA, run_cli
from tests.helpers import check_ok as _check

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py

STACKED = "pretrained probe + radiomics (stacked)"


def _finetune(runs, out: Path, *extra: object, features: Path | None = None) -> Path:
    _check(
        run_cli(
            "finetune",
            "--data",
            runs["prep"],
            "--features",
            features or runs["features"],
            "--encoder",
            runs["encoder"],
            "--out",
            out,
            "--no-baselines",
            *extra,
            *FINETUNE_TINY,
        ),
        f"finetune {' '.join(map(str, extra))}",
    )
    return out


@pytest.fixture(scope="module")
def stacked(runs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _finetune(runs, tmp_path_factory.mktemp("fusion") / "stacked", "--with-radiomics", "--fusion", "stacked")


def _risks(path: Path, role: str) -> pd.Series:
    frame = pd.read_csv(path, dtype={"case_id": str}, float_precision="round_trip")
    return frame[frame["role"] == role].set_index("case_id")["risk"].sort_index()


def test_stacked_head_is_the_folds_radiomics_cox_plus_the_embedding(runs, stacked: Path) -> None:
    from lgerisk.artifacts import load_risk_model
    from lgerisk.evaluation.baselines import RadiomicsCox
    from lgerisk.training.seeding import derive_seed

    card = json.loads((stacked / "model_card.json").read_text())
    assert card["method"] == STACKED
    tabular = card["tabular"]
    coefficient = tabular["radiomics_coefficient"]
    assert tabular["fusion"] == "stacked" and np.isfinite(coefficient) and coefficient != 0
    table = pd.read_csv(runs["features"], dtype={"case_id": str}, low_memory=False).set_index("case_id", drop=False)
    outcomes = pd.read_csv(SAMPLE_DATA / "outcomes.csv", dtype={"case_id": str}).set_index("case_id")
    ids = sorted(outcomes.index)
    baseline = RadiomicsCox(max_features=10, penalizer="cv", qc_metrics=True, seed=derive_seed(0, 99)).fit(
        table.loc[ids], outcomes.loc[ids, "time"].to_numpy(), outcomes.loc[ids, "event"].to_numpy()
    )
    assert tabular["radiomics"] == baseline.selected_
    model, scaling, _ = load_risk_model(stacked)
    assert scaling.fusion == "stacked" and scaling.radiomics_coefficient == coefficient
    weights = model.head.weight[0].detach().double().numpy()
    radiomics = weights[model.config.encoder.embedding_dim :]
    np.testing.assert_allclose(radiomics, coefficient * baseline.coefficients_, rtol=1e-5, atol=1e-7)
    history = pd.read_csv(stacked / "metrics.csv")
    assert history.loc[0, "fusion"] == "stacked"


def test_no_test_fold_row_reaches_the_stacked_fit(runs, stacked: Path, tmp_path: Path) -> None:
    """Test-fold rows of a column radiomics Cox selects, poisoned with a function of the outcome: the fold's
    training risks stay the same (the inner out-of-fold radiomics risk uses training rows only), test risks move."""
    name = f"{STACKED.replace(' + ', '-plus-').replace(' ', '-').replace('(', '').replace(')', '')}.csv"
    before = stacked / "parts" / "fold1" / name
    test_ids = list(_risks(before, "test").index)
    table = pd.read_csv(runs["features"], dtype={"case_id": str}, low_memory=False)
    outcomes = pd.read_csv(SAMPLE_DATA / "outcomes.csv", dtype={"case_id": str}).set_index("case_id")
    card = json.loads((stacked / "model_card.json").read_text())
    column = next(c for c in card["tabular"]["radiomics"] if "__" in c and not c.endswith("__present"))
    rows = table["case_id"].isin(test_ids)
    ours = outcomes.loc[table.loc[rows, "case_id"]]
    table.loc[rows, column] = (-np.log(ours["time"]) + 3 * ours["event"]).to_numpy() * 100
    poisoned = tmp_path / "poisoned.csv"
    table.to_csv(poisoned, index=False)
    after_run = _finetune(runs, tmp_path / "run", "--with-radiomics", "--fusion", "stacked", features=poisoned)
    after = after_run / "parts" / "fold1" / name
    pd.testing.assert_series_equal(_risks(after, "train"), _risks(before, "train"), rtol=0, atol=1e-9)
    assert (_risks(after, "test") - _risks(before, "test")).abs().max() > 1e-3


def _scan(folder: Path, case: str, name: str, scar_free: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(SAMPLE_DATA / "images" / f"{case}.nii.gz", folder / f"{name}.nii.gz")
    mask = nib.load(SAMPLE_DATA / "masks" / f"{case}.nii.gz")
    labels = np.asarray(mask.dataobj).copy()
    if scar_free:
        labels[np.isin(labels, (3, 4))] = 2  # scar and no-reflow become normal myocardium
    nib.save(nib.Nifti1Image(labels, mask.affine, mask.header), folder / f"{name}_seg.nii.gz")
    return folder / f"{name}.nii.gz"


def test_fusion_predicts_alike_alone_and_in_a_batch_and_without_scar(stacked: Path, tmp_path: Path) -> None:
    first = _scan(tmp_path / "in", "synth-0002", "A")  # 25 % scar
    second = _scan(tmp_path / "in", "synth-0005", "B")
    alone = run_cli("predict", first, "--model", stacked, "--format", "json", "--quiet")
    both = run_cli("predict", first, second, "--model", stacked, "--format", "json", "--quiet")
    assert alone.exit_code == 0 and both.exit_code == 0, alone.output + both.output
    one, two = json.loads(alone.stdout)[0], {r["case_id"]: r for r in json.loads(both.stdout)}
    assert one["risk_score"] == two["A"]["risk_score"] and one["model_method"] == STACKED
    free = _scan(tmp_path / "free", "synth-0002", "F", scar_free=True)
    result = run_cli("predict", free, "--model", stacked, "--format", "json", "--quiet")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)[0]
    assert record["scar_percent"] == 0 and np.isfinite(record["risk_score"])
    assert record["risk_score"] != one["risk_score"]  # the scar's features and presence are read, not constants


def test_explain_splits_the_risk_into_the_blocks_terms(runs, tmp_path: Path) -> None:
    from lgerisk.explain.run import risk_terms
    from lgerisk.inference import RiskPredictor
    from lgerisk.predict.masks import scan_case

    predictor = RiskPredictor.load(runs["tabular"])
    case = scan_case(_scan(tmp_path / "in", "synth-0007", "P7"))
    prepared, qc = predictor.prepare(case, tmp_path / "work")
    image, tabular, _ = predictor.inputs(prepared, {"age": 50.0, "lvef": 40.0}, qc)
    risk = predictor.risk(image, tabular)
    terms = risk_terms(predictor.model, predictor.tabular, image, tabular)
    assert set(terms) == {"image", "radiomics", "covariates", "inputs"}
    assert terms["image"] + terms["radiomics"] + terms["covariates"] == pytest.approx(risk, abs=1e-5)
    rows = terms["inputs"]
    assert len(rows) == 1 + len(predictor.tabular.radiomics) + 2
    radiomics = [abs(term) for block, _, term in rows if block == "radiomics"]
    assert radiomics == sorted(radiomics, reverse=True)  # the leading radiomics features first


def test_full_fine_tuning_keeps_the_radiomics_guidance(runs, tmp_path: Path) -> None:
    """--aux-weight > 0 trains an auxiliary radiomics head beside the Cox loss (its loss logged a row an epoch);
    at 0 the loss is the Cox loss alone and no auxiliary head is made."""
    guided = _finetune(runs, tmp_path / "guided", "--mode", "full", "--aux-weight", "1", "--folds", "2")
    plain = _finetune(runs, tmp_path / "plain", "--mode", "full", "--aux-weight", "0", "--folds", "2")
    with_aux, without = pd.read_csv(guided / "metrics.csv"), pd.read_csv(plain / "metrics.csv")
    full = with_aux[with_aux["stage"] == "full"]
    assert len(full) == 1 and np.isfinite(full["aux_loss"]).all() and full["aux_loss"].iloc[0] > 0
    assert "aux_loss" not in without.columns
    final = [torch.load(run / "model.pt", weights_only=True) for run in (guided, plain)]
    encoder = [k for k in final[0]["model"] if k.startswith("image_encoder.")]
    assert any(not torch.equal(final[0]["model"][k], final[1]["model"][k]) for k in encoder)  # the loss moved them


def test_explain_of_a_cohort_tabulates_the_blocks_terms(runs, tmp_path: Path) -> None:
    """predictions.csv of explain --data holds a column a block of the head's terms; they add up to the risk."""
    ids = ["synth-0002", "synth-0003"]
    manifest = tmp_path / "cohort.csv"
    manifest.write_text(
        "case_id,image,mask\n"
        + "".join(f"{c},{SAMPLE_DATA}/images/{c}.nii.gz,{SAMPLE_DATA}/masks/{c}.nii.gz\n" for c in ids)
    )
    clinical = tmp_path / "clinical.csv"
    clinical.write_text("case_id,age,lvef\n" + "".join(f"{c},60,40\n" for c in ids))
    out = tmp_path / "explain"
    args = ("--data", manifest, "--model", runs["tabular"], "--out", out, "--clinical", clinical, "--steps", "4")
    _check(run_cli("explain", *args, "--quiet"), "explain of the fusion model")
    table = pd.read_csv(out / "predictions.csv")
    terms = table[["risk_term_image", "risk_term_radiomics", "risk_term_covariates"]].sum(axis=1)
    np.testing.assert_allclose(terms, table["risk_score"], atol=1e-4)
