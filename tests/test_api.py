"""The public Python API (``import lgerisk``): light to import, typed results equal to what the commands write,
typed errors with their cause, and the example script's whole chain."""

from __future__ import annotations

import io
import json
import pydoc
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import lgerisk
from tests.helpers import ROOT, SAMPLE_DATA, check_ok, run_cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_import_is_light_and_every_public_name_resolves() -> None:
    code = (
        "import sys, lgerisk; heavy = sorted(m for m in ('torch', 'numpy', 'pandas', 'SimpleITK', 'radiomics') "
        "if m in sys.modules); print(heavy)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.strip() == "[]"
    for name in lgerisk.__all__:
        assert getattr(lgerisk, name) is not None, name
    assert lgerisk.PretrainConfig().epochs > 0 and issubclass(lgerisk.InputError, ValueError)
    page = pydoc.render_doc(lgerisk)
    for name in ("predict_scan", "explain_scan", "FinetuneConfig", "read_cohort"):
        assert name in page


def test_preprocess_case_gives_the_qc_that_preprocess_writes(runs: dict[str, Path]) -> None:
    case = lgerisk.read_cohort(SAMPLE_DATA).cases[3]
    qc = lgerisk.preprocess_case(case.image, case.mask)
    written = json.loads((runs["prep"] / "cases" / case.case_id / "qc.json").read_text(encoding="utf-8"))
    assert qc.case_id == case.case_id == written["case_id"]
    assert (qc.scar_percent, qc.greyzone_percent, qc.myocardium_mass_g) == (
        written["scar_percent"],
        written["greyzone_percent"],
        written["myocardium_mass_g"],
    )
    assert qc.synthetic is True and qc.values["settings_hash"] == written["settings_hash"]


def test_predictions_equal_the_command_lines(runs: dict[str, Path], tmp_path: Path) -> None:
    cases = lgerisk.read_cohort(SAMPLE_DATA).cases[:4]
    model = lgerisk.load_model(runs["main"])
    one = lgerisk.predict_scan(model, cases[0].image, cases[0].mask)
    result = run_cli("predict", cases[0].image, "--model", runs["main"], "--format", "json")
    check_ok(result, "predict")
    record = json.loads(result.stdout)[0]
    assert one == lgerisk.Prediction.from_record(record)  # every typed field, survival by horizon included
    assert one.risk_score == record["risk_score"] and one.survival[3.0] == record["survival_3"]
    assert one.scan_synthetic and one.model_trained_on_synthetic and one.reliable

    cohort = tmp_path / "cohort"
    (cohort / "images").mkdir(parents=True)
    (cohort / "masks").mkdir()
    for case in cases:
        (cohort / "images" / case.image.name).symlink_to(case.image)
        (cohort / "masks" / case.mask.name).symlink_to(case.mask)
    (cohort / "images" / "broken.nii.gz").write_bytes(b"not a scan")  # one case fails, the others go on
    (cohort / "masks" / "broken.nii.gz").write_bytes(b"not a mask")
    batch = lgerisk.predict_cohort(model, cohort, out=tmp_path / "predictions.csv")
    table = batch.table
    assert list(table["case_id"]) == [c.case_id for c in cases]
    assert table.loc[0, "risk_score"] == one.risk_score
    assert list(batch.errors["case_id"]) == ["broken"] and "broken.nii.gz" in batch.errors.loc[0, "error"]
    written = pd.read_csv(tmp_path / "predictions.csv", dtype={"case_id": str})
    cli = run_cli("predict", "--data", cohort, "--model", runs["main"], "--format", "csv")
    assert cli.exit_code == 1  # a case failed
    from_cli = pd.read_csv(io.StringIO(cli.stdout), dtype={"case_id": str})
    assert written["risk_score"].tolist() == table["risk_score"].tolist() == from_cli["risk_score"].tolist()


def test_explain_scan_returns_the_report_and_the_concepts(runs: dict[str, Path], tmp_path: Path) -> None:
    case = lgerisk.read_cohort(SAMPLE_DATA).cases[1]
    explanation = lgerisk.explain_scan(runs["main"], case.image, tmp_path / "explain", case.mask)
    assert explanation.out == tmp_path / "explain" / case.case_id
    assert {"report.html", "features.csv", "prediction.json"} <= set(explanation.files)
    assert explanation.prediction.risk_score == lgerisk.predict_scan(runs["main"], case.image, case.mask).risk_score
    assert len(explanation.features) > 0 and explanation.features["percentile"].between(0, 100).all()


def test_finetune_without_an_encoder_trains_the_network_from_scratch(runs: dict[str, Path], tmp_path: Path) -> None:
    config = lgerisk.FinetuneConfig(
        mode="full",
        folds=3,
        epochs=1,
        n_boot=20,
        width=4,
        embedding_dim=16,
        tensor={"slices": 4, "size": 32},
        baselines=False,
    )
    result = lgerisk.finetune(runs["prep"], tmp_path / "risk", config, features=runs["features"])
    assert result.model == "deep, scratch (full)" and list(result.table["method"])[:1] == [result.model]
    with pytest.raises(lgerisk.InputError, match="needs encoder="):
        lgerisk.finetune(runs["prep"], tmp_path / "probe", lgerisk.FinetuneConfig(mode="probe"))


def test_finetune_defaults_follow_the_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No config: a probe on an encoder, the network from scratch without one; given labels are kept."""
    from lgerisk.training import finetune

    seen = []

    def capture(data, out, config, **kwargs):  # noqa: ANN001, ANN202, ANN003
        seen.append((config.mode, kwargs["encoder"], config.labels))
        return {"run": out, "model": "m", "table": pd.DataFrame(), "cases": 1, "events": 1, "synthetic": True}

    monkeypatch.setattr(finetune, "run_finetune", capture)
    lgerisk.finetune("data", tmp_path / "a")
    lgerisk.finetune("data", tmp_path / "b", encoder="enc")
    lgerisk.finetune("data", tmp_path / "c", lgerisk.FinetuneConfig(mode="full", labels="myops"))
    assert seen == [("full", None, None), ("probe", "enc", None), ("full", None, "myops")]


def test_library_errors_are_value_errors_with_their_cause(tmp_path: Path) -> None:
    run = tmp_path / "risk"
    run.mkdir()
    (run / "model.pt").write_bytes(b"not a model")
    (run / "model_card.json").write_text("{}")
    with pytest.raises(ValueError, match="not a loadable lgerisk model") as caught:
        lgerisk.load_model(run)
    assert isinstance(caught.value, lgerisk.InputError) and caught.value.__cause__ is not None


def test_the_example_script_runs_the_whole_chain_on_sample_data(tmp_path: Path) -> None:
    """examples/python_api.py, public API only: preprocess -> radiomics -> pretrain -> finetune -> predict ->
    explain on the SYNTHETIC sample_data (tiny network)."""
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "python_api.py"),
            "--work",
            str(tmp_path / "work"),
            "--epochs",
            "1",
            "--quick",
            "--jobs",
            "2",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (
        "32 cases (images+masks)" in done.stdout and "SYNTHETIC cross-validated Harrell's C (32 cases)" in done.stdout
    )
    assert "scar-% Cox" in done.stdout and "explained synth-0000" in done.stdout
    assert "0 scan(s) could not be predicted" in done.stdout
    predictions = pd.read_csv(tmp_path / "work" / "predictions.csv", dtype={"case_id": str})
    assert len(predictions) == 32 and predictions["risk_score"].notna().all()
    assert (tmp_path / "work" / "explain" / "synth-0000" / "report.html").is_file()


def test_a_batch_result_says_what_the_run_did(runs: dict[str, Path], tmp_path: Path) -> None:
    """predict_cohort on a list of scans: typed predictions equal to the table and the text `predict` prints; a
    rerun resumes (skipped, nothing done); without `out` the text is the output."""
    cases = lgerisk.read_cohort(SAMPLE_DATA).cases[:2]
    scans = [case.image for case in cases]
    out = tmp_path / "predictions.csv"
    first = lgerisk.predict_cohort(runs["main"], scans, out)
    assert first.done == tuple(case.case_id for case in cases) and first.skipped == 0 and first.exit_code == 0
    assert [p.case_id for p in first.predictions] == list(first.table["case_id"])
    assert [p.risk_score for p in first.predictions] == first.table["risk_score"].tolist()
    assert pd.read_csv(io.StringIO(first.text))["risk_score"].tolist() == first.table["risk_score"].tolist()
    assert first.summary() == f"2 done, 0 already done, 0 failed -> {out}" and first.errors.empty
    again = lgerisk.predict_cohort(runs["main"], scans, out)
    assert again.done == () and again.skipped == 2
    assert again.table["risk_score"].tolist() == first.table["risk_score"].tolist()
    printed = lgerisk.predict_cohort(runs["main"], scans[:1], fmt="json")
    assert printed.out is None and json.loads(printed.text)[0]["case_id"] == cases[0].case_id
    assert printed.summary() == "1 done, 0 already done, 0 failed"


def test_explain_cohort_writes_a_report_per_scan(runs: dict[str, Path], tmp_path: Path) -> None:
    case = lgerisk.read_cohort(SAMPLE_DATA).cases[2]
    result = lgerisk.explain_cohort(runs["main"], [case.image], tmp_path / "explain", steps=8, sanity_check=False)
    assert result.exit_code == 0 and list(result.pages) == [case.case_id] and result.cohort_page is None
    assert result.pages[case.case_id] == tmp_path / "explain" / case.case_id / "report.html"
    assert result.pages[case.case_id].is_file() and list(result.table["case_id"]) == [case.case_id]


def test_synth_cohort_is_known_as_synthetic_by_its_marker(tmp_path: Path) -> None:
    import shutil

    truth = lgerisk.synth_cohort(tmp_path / "synth", lgerisk.SynthConfig(n_cases=2, seed=3, small=True))
    cohort = lgerisk.read_cohort(tmp_path / "synth")
    assert list(truth["case_id"]) == [case.case_id for case in cohort.cases] and cohort.synthetic
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "synth", copy)
    (copy / "synth.json").unlink()  # the same scans without the cohort marker: not known as a synthetic cohort
    assert not lgerisk.read_cohort(copy).synthetic


def test_the_settings_the_command_line_parses_are_checked_by_the_library() -> None:
    from lgerisk.data.augment import augment_preset
    from lgerisk.training.finetune_config import parse_numbers

    with pytest.raises(lgerisk.InputError, match="horizons='1,x'") as caught:
        parse_numbers("1,x", "horizons")
    assert caught.value.setting == "horizons"
    with pytest.raises(lgerisk.InputError, match="augment='gentle': choose one of default, preserving"):
        augment_preset("gentle")
    assert augment_preset("preserving") is not augment_preset("preserving")  # a copy each time
    result = run_cli("finetune", "--data", "nowhere", "--out", "x", "--horizons", "1,x")
    assert result.exit_code == 2 and "--horizons '1,x'" in result.output
