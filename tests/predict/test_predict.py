"""lgerisk predict: one scan (mask by convention), a cohort (resumable), covariate and radiomics models,
the real EMIDEC scans, and bad input. Reuses the risk models of tests/training/test_finetune.py."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import torch

from lgerisk.cards import seal_card
from lgerisk.inference import out_of_range_warnings
from lgerisk.predict.masks import find_mask, scan_case
from tests.helpers import SAMPLE_DATA

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py

HORIZONS = ("survival_1", "survival_3", "survival_5")


@pytest.fixture
def no_model_env(monkeypatch) -> None:
    monkeypatch.delenv("LGERISK_MODEL", raising=False)


def _scan_pair(folder: Path, case: str, name: str = "X") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(SAMPLE_DATA / "images" / f"{case}.nii.gz", folder / f"{name}.nii.gz")
    shutil.copy(SAMPLE_DATA / "masks" / f"{case}.nii.gz", folder / f"{name}_seg.nii.gz")
    return folder / f"{name}.nii.gz"


def _check_record(record: dict) -> None:
    if record["reliable"]:
        assert record["risk_group"] in ("low", "intermediate", "high") and not record["unreliable_reasons"]
    else:  # the group is withheld, the numbers stay
        assert record["risk_group"] == "out of range" and record["unreliable_reasons"]
    assert np.isfinite(record["risk_score"])
    survival = [record[h] for h in HORIZONS]
    assert all(0 <= s <= 1 for s in survival) and survival == sorted(survival, reverse=True)
    assert isinstance(record["warnings"], list)


# ------------------------------------------------------------------------------------------ mask conventions


def test_find_mask_conventions(tmp_path: Path) -> None:
    for suffix in ("_seg.nii.gz", "_mask.nrrd", "_labels.nii"):
        folder = tmp_path / suffix.strip("._")
        folder.mkdir()
        (folder / "P1.nii.gz").write_bytes(b"x")
        (folder / f"P1{suffix}").write_bytes(b"x")
        assert find_mask(folder / "P1.nii.gz") == folder / f"P1{suffix}"
    emidec = tmp_path / "Case_P1"
    (emidec / "Images").mkdir(parents=True)
    (emidec / "Contours").mkdir()
    (emidec / "Images" / "Case_P1.nii.gz").write_bytes(b"x")
    (emidec / "Contours" / "Case_P1.nii.gz").write_bytes(b"x")
    assert find_mask(emidec / "Images" / "Case_P1.nii.gz") == emidec / "Contours" / "Case_P1.nii.gz"
    cohort = tmp_path / "cohort"
    (cohort / "images").mkdir(parents=True)
    (cohort / "labels").mkdir()
    (cohort / "images" / "A.nii.gz").write_bytes(b"x")
    (cohort / "labels" / "A.nii.gz").write_bytes(b"x")
    (cohort / "labels" / "A2.nii.gz").write_bytes(b"x")
    assert find_mask(cohort / "images" / "A.nii.gz") == cohort / "labels" / "A.nii.gz"
    assert find_mask(cohort / "images" / "B.nii.gz") is None
    case = scan_case(cohort / "images" / "A.nii.gz")
    assert case.case_id == "A" and case.mask == cohort / "labels" / "A.nii.gz"


def test_out_of_range_warnings_name_the_quantity() -> None:
    ranges = {"slice_spacing_mm": [8.314, 12.975], "inplane_spacing_mm": [1.4117, 1.7955], "image_p99": [1.1, 1.5]}
    warnings = out_of_range_warnings(
        {"slice_spacing_mm": 13.0, "original_spacing_mm": [1.406, 1.406, 13.0]}, 1.2, ranges
    )
    assert len(warnings) == 2
    # the value and the violated bound must read differently (not "13 mm is outside 8.31-13 mm")
    assert warnings[0] == "slice spacing 13 mm is outside the training range 8.314-12.97 mm"
    assert "1.406" in warnings[1] and "1.412" in warnings[1]
    assert out_of_range_warnings({"slice_spacing_mm": 10.0}, 1.2, ranges) == []


# ------------------------------------------------------------------------------------------ one scan


def test_single_scan_with_mask_by_convention(runs, tmp_path: Path, cli) -> None:
    scan = _scan_pair(tmp_path / "in", "synth-0003")
    result = cli("predict", scan, "--model", runs["main"], "--format", "json", "--quiet")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert len(records) == 1
    record = records[0]
    assert record["case_id"] == "X"
    _check_record(record)
    qc = json.loads((runs["prep"] / "cases" / "synth-0003" / "qc.json").read_text())
    assert record["scar_percent"] == qc["scar_percent"]
    assert record["model_trained_on_synthetic"] is True and record["model_method"] == "pretrained probe"

    result = cli("predict", scan, "--model", runs["main"], "--format", "csv", "--quiet")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(io.StringIO(result.stdout))
    assert list(table["case_id"]) == ["X"] and table.loc[0, "risk_score"] == pytest.approx(record["risk_score"])
    assert {"risk_group", *HORIZONS, "scar_percent", "warnings"} <= set(table.columns)


def test_cohort_to_a_file_resumes(runs, tmp_path: Path, cli) -> None:
    out = tmp_path / "risk.csv"
    result = cli("predict", "--data", SAMPLE_DATA, "--model", runs["main"], "--out", out, "--jobs", "1")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out, dtype={"case_id": str})
    assert len(table) == 32 and table["case_id"].is_unique
    assert set(table["risk_group"]) <= {"low", "intermediate", "high"}
    first = out.read_text()
    result = cli("predict", "--data", SAMPLE_DATA, "--model", runs["main"], "--out", out, "--jobs", "1")
    assert result.exit_code == 0 and "32 already done" in result.output
    assert out.read_text() == first
    assert not Path(f"{out}.errors.csv").exists()

    # the same cohort, already preprocessed (lgerisk preprocess output): used as it is, same predictions
    result = cli("predict", "--data", runs["prep"], "--model", runs["main"], "--out", tmp_path / "prep.csv")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "prep.csv").read_text() == first


def test_a_case_preprocessed_with_other_settings_is_refused(runs, tmp_path: Path, cli) -> None:
    case = tmp_path / "cases" / "synth-0001"
    shutil.copytree(runs["prep"] / "cases" / "synth-0001", case)
    qc = json.loads((case / "qc.json").read_text())
    (case / "qc.json").write_text(json.dumps({**qc, "settings_hash": "0123456789abcdef"}))
    result = cli("predict", case / "image.nii.gz", "--mask", case / "mask.nii.gz", "--model", runs["main"])
    assert result.exit_code == 2 and "other settings" in result.output and "raw scan" in result.output


# ------------------------------------------------------------------------------------------ tabular models


def test_covariate_and_radiomics_model(runs, tmp_path: Path, cli) -> None:
    scan = _scan_pair(tmp_path / "in", "synth-0007", name="P7")
    result = cli("predict", scan, "--model", runs["tabular"], "--format", "json")
    assert result.exit_code == 2  # a lone scan the model cannot score: bad input
    assert "P7" in result.output and "covariate" in result.output and "age" in result.output
    assert "--clinical" in result.output
    clinical = tmp_path / "clinical.csv"
    clinical.write_text("case_id,age,lvef\nP7,61.5,42.0\n")
    result = cli("predict", scan, "--model", runs["tabular"], "--format", "json", "--clinical", clinical, "--quiet")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)[0]
    _check_record(record)
    assert record["model_method"] == "pretrained probe + radiomics (group ridge) + age,lvef"
    # other covariate values, other risk (the values are used, not just required)
    clinical.write_text("case_id,age,lvef\nP7,81.5,22.0\n")
    result = cli("predict", scan, "--model", runs["tabular"], "--format", "json", "--clinical", clinical, "--quiet")
    assert result.exit_code == 0 and json.loads(result.stdout)[0]["risk_score"] != record["risk_score"]


def test_changed_clinical_values_are_not_served_from_the_resume_cache(runs, tmp_path: Path, cli) -> None:
    scan = _scan_pair(tmp_path / "in", "synth-0007", name="P7")
    clinical, out = tmp_path / "clinical.csv", tmp_path / "out.csv"
    risks = []
    for age in (61.5, 81.5):
        clinical.write_text(f"case_id,age,lvef\nP7,{age},42.0\n")
        result = cli("predict", scan, "--model", runs["tabular"], "--clinical", clinical, "--out", out)
        assert result.exit_code == 0, result.output
        risks.append(pd.read_csv(out)["risk_score"].iloc[0])
    assert risks[0] != risks[1]


def test_a_training_scan_gets_the_inputs_it_was_trained_with(runs, tmp_path: Path) -> None:
    """No train/serve skew: predict's tensor and radiomics of a training scan equal the finetune run's."""
    import torch

    from lgerisk.inference import RiskPredictor

    predictor = RiskPredictor.load(runs["tabular"])
    case = scan_case(_scan_pair(tmp_path / "in", "synth-0007", name="P7"))
    prepared, qc = predictor.prepare(case, tmp_path / "work")
    image, tabular, row = predictor.inputs(prepared, {"age": 50.0, "lvef": 40.0}, qc)
    cached = np.load(next((runs["tabular"] / "cache" / "tensors").glob("synth-0007-*.npy")))
    assert torch.equal(image[0], torch.from_numpy(cached))
    table = pd.read_csv(runs["features"], dtype={"case_id": str}, float_precision="round_trip").set_index("case_id")
    names = list(predictor.tabular.radiomics)
    plain = [c for c in names if c in row]
    np.testing.assert_allclose([row[c] for c in plain], table.loc["synth-0007", plain].to_numpy(float), rtol=1e-12)
    assert tabular.shape == (1, len(names) + 2)
    # every head input (radiomics, presence indicators, QC metrics, covariates) as the training fit saw it
    covariates = pd.DataFrame({"age": [50.0], "lvef": [40.0]}, index=["synth-0007"])
    trained = predictor.tabular.matrix(table, covariates, ["synth-0007"])
    np.testing.assert_allclose(tabular.numpy(), trained, rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------------------------------ bad input


def test_bad_input(runs, tmp_path: Path, cli, no_model_env) -> None:
    lone = tmp_path / "lone" / "Y.nii.gz"
    lone.parent.mkdir()
    shutil.copy(SAMPLE_DATA / "images" / "synth-0001.nii.gz", lone)
    result = cli("predict", lone, "--model", runs["main"])
    assert result.exit_code == 2 and str(lone) in result.output and "--mask" in result.output

    scan = _scan_pair(tmp_path / "in", "synth-0001")
    result = cli("predict", scan)
    assert result.exit_code == 2 and "--model RUN" in result.output and "finetune" in result.output
    assert "(--encoder PRETRAIN)" in result.output

    result = cli("predict", scan, "--model", runs["encoder"])
    assert result.exit_code == 2 and "pretraining run" in result.output

    result = cli("predict", scan, "--model", tmp_path / "nowhere")
    assert result.exit_code == 2 and "does not exist" in result.output
    assert "Traceback" not in result.output


def test_model_from_the_environment(runs, tmp_path: Path, cli, monkeypatch) -> None:
    monkeypatch.setenv("LGERISK_MODEL", str(runs["main"]))
    result = cli("predict", _scan_pair(tmp_path / "in", "synth-0001"), "--quiet")
    assert result.exit_code == 0, result.output
    assert pd.read_csv(io.StringIO(result.stdout))["case_id"].tolist() == ["X"]


def test_single_slice_scan_is_a_clear_case_failure(runs, tmp_path: Path, cli) -> None:
    folder = tmp_path / "slice"
    folder.mkdir()
    for kind, name in (("images", "S.nii.gz"), ("masks", "S_seg.nii.gz")):
        volume = sitk.ReadImage(str(SAMPLE_DATA / kind / "synth-0002.nii.gz"))
        middle = volume.GetSize()[2] // 2
        sitk.WriteImage(volume[:, :, middle : middle + 1], str(folder / name))
    result = cli("predict", folder / "S.nii.gz", "--model", runs["main"])
    assert result.exit_code == 2  # a lone scan the model cannot take is bad input
    assert "S.nii.gz" in result.output and "slice" in result.output
    both = cli("predict", folder / "S.nii.gz", SAMPLE_DATA / "images" / "synth-0001.nii.gz", "--model", runs["main"])
    assert both.exit_code == 1 and "synth-0001" in both.stdout  # in a batch: a per-case failure
    assert result.stdout == ""  # no records, no stray CSV line
    assert "Traceback" not in result.output and "unexpected" not in result.output


# ------------------------------------------------------------------------------------------ real scans


def test_real_emidec_scans(runs, emidec: Path, cli) -> None:
    scans = [emidec / name / "Images" / f"{name}.nii.gz" for name in ("samplePositive", "sampleNegative")]
    result = cli("predict", *scans, "--model", runs["main"], "--format", "json", "--quiet")
    assert result.exit_code == 0, result.output
    records = {r["case_id"]: r for r in json.loads(result.stdout)}
    assert set(records) == {"samplePositive", "sampleNegative"}
    for name, record in records.items():
        _check_record(record)
        labels = np.rint(sitk.GetArrayFromImage(sitk.ReadImage(str(emidec / name / "Contours" / f"{name}.nii.gz"))))
        direct = 100 * np.isin(labels, (3, 4)).sum() / np.isin(labels, (2, 3, 4)).sum()
        assert record["scar_percent"] == pytest.approx(direct, abs=0.5), name
    # real scans differ from the synthetic training cohort, and the records say so
    assert all(r["warnings"] for r in records.values())
    assert not any(r["reliable"] or r["scan_synthetic"] for r in records.values())
    assert any("intensity" in w for r in records.values() for w in r["warnings"])
    assert str(emidec) not in result.stdout and "/" not in "".join(records)


def test_a_model_folder_with_mismatched_files_is_refused(runs, tmp_path: Path, cli) -> None:
    model = tmp_path / "model"
    shutil.copytree(runs["main"], model, ignore=shutil.ignore_patterns("cache", "parts"))
    other = torch.load(model / "model.pt", weights_only=True)
    other["model"]["head.weight"] = other["model"]["head.weight"] + 1.0  # another run's weights, same card
    torch.save(other, model / "model.pt")
    scan = _scan_pair(tmp_path / "scan", "synth-0001")
    result = cli("predict", scan, "--model", model)
    assert result.exit_code == 2 and "do not belong together" in result.output


def test_a_radiomics_model_from_other_extraction_settings_is_refused(runs, tmp_path: Path, cli) -> None:
    model = tmp_path / "model"
    shutil.copytree(runs["tabular"], model, ignore=shutil.ignore_patterns("cache", "parts"))
    card = json.loads((model / "model_card.json").read_text())
    card["radiomics"]["settings_hash"] = "0123456789abcdef"  # as if extracted with --params my.yaml
    (model / "model_card.json").write_text(json.dumps(seal_card(card)))
    result = cli(
        "predict",
        _scan_pair(tmp_path / "scan", "synth-0001"),
        "--model",
        model,
        "--clinical",
        SAMPLE_DATA / "outcomes.csv",
    )
    assert result.exit_code == 2 and "other settings" in result.output


def test_explain_redoes_a_case_whose_mask_changed(runs, tmp_path: Path, cli) -> None:
    scan = _scan_pair(tmp_path / "scan", "synth-0002")
    out = tmp_path / "explain"
    assert cli("explain", scan, "--model", runs["main"], "--out", out, "--steps", "4").exit_code == 0
    again = cli("explain", scan, "--model", runs["main"], "--out", out, "--steps", "4")
    assert "1 already done" in again.output
    shutil.copy(SAMPLE_DATA / "masks" / "synth-0003.nii.gz", scan.parent / "X_seg.nii.gz")  # a corrected mask
    image = sitk.ReadImage(str(SAMPLE_DATA / "images" / "synth-0003.nii.gz"))
    sitk.WriteImage(image, str(scan))
    redone = cli("explain", scan, "--model", runs["main"], "--out", out, "--steps", "4")
    assert redone.exit_code == 0 and "1 done, 0 already done" in redone.output


def test_parallel_predictions_equal_serial_ones(runs, tmp_path: Path, cli) -> None:
    """--jobs 2 starts fresh workers (a forked torch parent makes workers hang) and gives the same rows."""
    rows = ["case_id,image,mask"] + [
        f"synth-000{i},{SAMPLE_DATA}/images/synth-000{i}.nii.gz,{SAMPLE_DATA}/masks/synth-000{i}.nii.gz"
        for i in range(4)
    ]
    manifest = tmp_path / "cohort.csv"
    manifest.write_text("\n".join(rows) + "\n")
    for jobs in ("1", "2"):
        result = cli(
            "predict", "--data", manifest, "--model", runs["main"], "--out", tmp_path / f"j{jobs}.csv", "--jobs", jobs
        )
        assert result.exit_code == 0, result.output
    serial, parallel = (pd.read_csv(tmp_path / f"j{j}.csv") for j in ("1", "2"))
    pd.testing.assert_frame_equal(serial, parallel)


def test_a_risk_beyond_the_training_range_is_flagged(runs, tmp_path: Path, cli) -> None:
    model = tmp_path / "model"
    shutil.copytree(runs["main"], model, ignore=shutil.ignore_patterns("cache", "parts"))
    card = json.loads((model / "model_card.json").read_text())
    card["survival"]["training_risk_range"] = [100.0, 200.0]  # no scan of ours scores there
    (model / "model_card.json").write_text(json.dumps(seal_card(card)))
    result = cli("predict", _scan_pair(tmp_path / "scan", "synth-0001"), "--model", model, "--format", "json")
    warnings = json.loads(result.stdout)[0]["warnings"]
    assert any("extrapolated" in w for w in warnings)


def test_a_model_from_an_earlier_preprocessing_version_is_flagged(runs, tmp_path: Path, cli) -> None:
    """A model whose training scans were preprocessed by an earlier algorithm (e.g. the old whole-wall remote
    reference, which moved the normalisation) gets reliable=false with the reason, not a silent skew."""
    scan = _scan_pair(tmp_path / "scan", "synth-0001")
    current = json.loads(cli("predict", scan, "--model", runs["main"], "--format", "json").stdout)[0]
    assert not any("earlier version" in reason for reason in current["unreliable_reasons"])
    model = tmp_path / "model"
    shutil.copytree(runs["main"], model, ignore=shutil.ignore_patterns("cache", "parts"))
    card = json.loads((model / "model_card.json").read_text())
    card["preprocessing"]["settings_hash"] = "0123456789abcdef"  # what an ALGORITHM_VERSION 1 run recorded
    (model / "model_card.json").write_text(json.dumps(seal_card(card)))
    result = cli("predict", scan, "--model", model, "--format", "json")
    record = json.loads(result.stdout)[0]
    assert record["reliable"] is False and record["risk_group"] == "out of range"
    assert any("earlier version of lgerisk's preprocessing" in reason for reason in record["unreliable_reasons"])


def test_a_batch_predicts_each_scan_exactly_as_alone(runs, tmp_path: Path, cli) -> None:
    """Batched through the network (and through workers with --jobs 2), every row is byte for byte the row
    of that scan predicted alone: the network always runs on MODEL_BATCH scans, padded with zeros."""
    from lgerisk.inference import MODEL_BATCH

    ids = [f"synth-00{i:02d}" for i in range(2 * MODEL_BATCH + 1)]  # an odd count: the last batch is padded
    rows = ["case_id,image,mask"] + [f"{c},{SAMPLE_DATA}/images/{c}.nii.gz,{SAMPLE_DATA}/masks/{c}.nii.gz" for c in ids]
    manifest = tmp_path / "cohort.csv"
    manifest.write_text("\n".join(rows) + "\n")
    clinical = tmp_path / "clinical.csv"  # the tabular model's covariates
    clinical.write_text("case_id,age,lvef\n" + "".join(f"{c},{50 + i},{35 + i}\n" for i, c in enumerate(ids)))
    batches = {}
    for model in ("main", "tabular"):
        for jobs in ("1", "2"):
            out = tmp_path / f"{model}-j{jobs}.csv"
            args = ("--data", manifest, "--model", runs[model], "--out", out, "--jobs", jobs, "--quiet")
            result = cli("predict", *args, *(("--clinical", clinical) if model == "tabular" else ()))
            assert result.exit_code == 0, result.output
            batches[model, jobs] = out.read_bytes().decode().splitlines()
        assert batches[model, "1"] == batches[model, "2"]
        header, *lines = batches[model, "1"]
        assert [line.split(",")[0] for line in lines] == ids
        for case_id, line in zip(ids, lines):
            alone = tmp_path / f"{model}-{case_id}.csv"
            result = cli(
                "predict",
                SAMPLE_DATA / "images" / f"{case_id}.nii.gz",
                "--mask",
                SAMPLE_DATA / "masks" / f"{case_id}.nii.gz",
                "--model",
                runs[model],
                "--out",
                alone,
                "--quiet",
                *(("--clinical", clinical) if model == "tabular" else ()),
            )
            assert result.exit_code == 0, result.output
            assert alone.read_bytes().decode().splitlines() == [header, line]


def test_inputs_made_in_memory_equal_those_read_back_from_files(runs, tmp_path: Path) -> None:
    """The tensor a raw scan gets without writing its preprocessed files is the files' tensor, value for value."""
    from lgerisk.data.tensors import case_tensor
    from lgerisk.inference import RiskPredictor

    predictor = RiskPredictor.load(runs["main"])
    for case_id in ("synth-0000", "synth-0005"):
        case = scan_case(SAMPLE_DATA / "images" / f"{case_id}.nii.gz", SAMPLE_DATA / "masks" / f"{case_id}.nii.gz")
        scan = predictor.preparer.scan(case, tmp_path / "unused")
        assert not (tmp_path / "unused").exists()  # nothing written for a model without radiomics
        prepared, qc = predictor.prepare(case, tmp_path / "work")
        assert np.array_equal(scan.tensor, case_tensor(prepared.image, prepared.mask, predictor.spec))
        assert scan.qc == qc and scan.tensor.dtype == np.float32


def test_risks_agree_with_a_float64_copy_of_the_model(runs, tmp_path: Path) -> None:
    """Float32 rounding, not a lossy kernel: the risks lgerisk predicts are within 2e-5 of a float64 forward pass.
    (Channels-last tensors, used before, gave 5.5e-5 on this model and 0.017 on the default-size one: torch's
    CPU kernels on channels-last tensors lose precision, and their results depended on the thread count.)"""
    import copy

    from lgerisk.inference import RiskPredictor

    predictor = RiskPredictor.load(runs["main"])
    cases = [
        scan_case(SAMPLE_DATA / "images" / f"synth-{i:04d}.nii.gz", SAMPLE_DATA / "masks" / f"synth-{i:04d}.nii.gz")
        for i in range(8)
    ]
    images = np.stack([predictor.preparer.scan(case, tmp_path / case.case_id).tensor for case in cases])
    reference = copy.deepcopy(predictor.model).to(torch.float64)
    with torch.no_grad():
        exact = reference(torch.from_numpy(images).double(), None).numpy().ravel()
    risks = np.array(predictor.risks(images))
    assert np.ptp(exact) > 0.5  # the cases differ: the check is not on a constant
    assert np.abs(risks - exact).max() < 2e-5


def test_full_float32_turns_tf32_off_on_cuda_only_and_restores_the_settings() -> None:
    """Inference on a GPU in IEEE float32 (cuDNN's default TF32 moved risks by 0.07 against the CPU on an
    H200); the settings are put back after, also after an error, and the CPU path changes nothing."""
    from types import SimpleNamespace

    from lgerisk.runtime import full_float32

    cudnn = torch.backends.cudnn
    before = (cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark, torch.get_float32_matmul_precision())
    try:
        cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark = True, False, True  # not what it sets
        torch.set_float32_matmul_precision("medium")
        changed = (True, False, True, "medium")
        for cpu in (torch.device("cpu"), "cpu"):
            with full_float32(cpu):
                assert (cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark) == changed[:3]
                assert torch.get_float32_matmul_precision() == "medium"
        for cuda in (SimpleNamespace(type="cuda"), "cuda:0", torch.device("cuda", 0)):
            with pytest.raises(RuntimeError, match="inside"):
                with full_float32(cuda):
                    assert (cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark) == (False, True, False)
                    assert torch.get_float32_matmul_precision() == "highest"
                    raise RuntimeError("inside")
            after = (cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark, torch.get_float32_matmul_precision())
            assert after == changed
    finally:
        cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark = before[:3]
        torch.set_float32_matmul_precision(before[3])


def test_the_network_runs_inside_full_float32_on_the_predictors_device(runs, monkeypatch) -> None:
    from contextlib import contextmanager

    import lgerisk.runtime as devices
    from lgerisk.inference import RiskPredictor

    entered: list[object] = []
    real = devices.full_float32

    @contextmanager
    def spy(device: object):
        entered.append(device)
        with real(device):
            yield

    monkeypatch.setattr(devices, "full_float32", spy)
    predictor = RiskPredictor.load(runs["main"])
    risks = predictor.risks(np.zeros((2, *predictor.spec.shape), np.float32))
    assert len(risks) == 2 and entered == [predictor.device]


@pytest.mark.parametrize("keep", [True, False])
def test_a_batch_runs_its_network_on_the_cores_the_workers_leave(
    runs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep: bool
) -> None:
    """With --jobs 2 the network's passes run at network_threads(2, torch's count) threads (torch's own count
    is back after the batch), up to PREPARED_AHEAD scans are prepared ahead, and the process keeps freed
    memory only when the caller asks (the command does)."""
    import torch

    import lgerisk.predict.run as predict_run
    from lgerisk.batch import available_cores, network_threads
    from lgerisk.inference import RiskPredictor
    from lgerisk.predict.masks import scan_case

    seen_threads: list[int] = []
    kept: list[bool] = []
    leads: list[int] = []
    predict_scans, run_batch = RiskPredictor.predict_scans, predict_run.run_batch

    def recording(self: RiskPredictor, scans: list) -> list:
        seen_threads.append(torch.get_num_threads())
        return predict_scans(self, scans)

    def batch(*args: object, **kwargs: object) -> object:
        leads.append(int(kwargs["lead"]))  # type: ignore[call-overload]
        return run_batch(*args, **kwargs)

    monkeypatch.setattr(RiskPredictor, "predict_scans", recording)
    monkeypatch.setattr(predict_run, "run_batch", batch)
    monkeypatch.setattr(predict_run, "reuse_freed_memory", lambda: kept.append(True) or True)
    session = torch.get_num_threads()
    before = max(2, available_cores())  # more than the workers leave: the batch must lower it
    torch.set_num_threads(before)
    try:
        cases = [scan_case(SAMPLE_DATA / "images" / f"synth-000{i}.nii.gz") for i in range(5)]
        report, records, _ = predict_run.predict_cases(
            cases, runs["main"], tmp_path / "out.csv", jobs=2, keep_freed_memory=keep
        )
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(session)
    assert len(report.done) == 5 and len(records) == 5
    assert seen_threads and set(seen_threads) == {network_threads(2, before)} and network_threads(2, before) < before
    assert after == before
    assert leads == [predict_run.PREPARED_AHEAD]
    assert kept == ([True] if keep else [])
