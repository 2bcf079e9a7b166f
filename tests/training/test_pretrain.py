"""lgerisk pretrain: end to end, determinism, resume after a kill, bad input, DDP equality."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from lgerisk.artifacts import load_encoder
from lgerisk.errors import InputError
from lgerisk.preprocess.config import PreprocessConfig
from lgerisk.preprocess.run import preprocess_cohort
from lgerisk.radiomics.run import extract_cohort
from lgerisk.training.checkpoint import load_checkpoint
from lgerisk.training.pretrain import PretrainConfig, run_pretrain
from tests.helpers import PRETRAIN_TINY as TINY
from tests.helpers import ROOT, SAMPLE_DATA, stop, wait_for


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """sample_data's first 12 cases, preprocessed, with their feature table (built once)."""
    root = tmp_path_factory.mktemp("pretrain-data")
    manifest = root / "manifest.csv"
    rows = pd.read_csv(SAMPLE_DATA / "outcomes.csv").head(12)
    pd.DataFrame(
        {
            "case_id": rows["case_id"],
            "image": [str(SAMPLE_DATA / "images" / f"{c}.nii.gz") for c in rows["case_id"]],
            "mask": [str(SAMPLE_DATA / "masks" / f"{c}.nii.gz") for c in rows["case_id"]],
        }
    ).to_csv(manifest, index=False)
    preprocess_cohort(manifest, root / "prep", PreprocessConfig(), jobs=2)
    extract_cohort(root / "prep", root / "radiomics.csv", jobs=2)
    return root / "prep", root / "radiomics.csv"


def _weights(run: Path) -> dict[str, torch.Tensor]:
    state = torch.load(run / "model.pt", weights_only=True)
    return {
        f"{part}.{k}": v
        for part in ("image_encoder", "radiomics_encoder", "image_projection", "radiomics_projection")
        for k, v in state[part].items()
    }


def test_pretrain_writes_a_documented_run(prepared, tmp_path: Path) -> None:
    prep, features = prepared
    summary = run_pretrain(
        prep, tmp_path / "run", PretrainConfig(epochs=2, **TINY), features=str(features), device="cpu"
    )
    run = tmp_path / "run"
    assert summary.train_cases + summary.val_cases == 12
    metrics = pd.read_csv(run / "metrics.csv")
    assert list(metrics["epoch"]) == [1, 2]
    assert {"train_loss", "val_loss", "val_top1", "val_top5", "val_alignment", "val_uniformity"} <= set(metrics.columns)
    card = json.loads((run / "model_card.json").read_text())
    assert card["data"]["cases"] == 12 and card["data"]["synthetic"] is True
    assert "not" in card["intended_use"] and card["radiomics"]["feature_names"]
    assert card["versions"]["torch"] == torch.__version__
    model, loaded_card = load_encoder(run)
    assert loaded_card.to_dict() == card and loaded_card.synthetic is True
    x = torch.zeros(1, 2, 6, 64, 64)
    assert model.embed_image(x).shape[-1] == 32
    assert load_checkpoint(run / "checkpoint" / "last.pt")["epoch"] == 1


def test_same_seed_same_weights(prepared, tmp_path: Path) -> None:
    prep, features = prepared
    for name in ("a", "b"):
        run_pretrain(prep, tmp_path / name, PretrainConfig(epochs=1, **TINY), features=str(features), device="cpu")
    other = PretrainConfig(epochs=1, **{**TINY, "seed": 1})
    run_pretrain(prep, tmp_path / "c", other, features=str(features), device="cpu")
    a, b, c = _weights(tmp_path / "a"), _weights(tmp_path / "b"), _weights(tmp_path / "c")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_objective_presets_run(prepared, tmp_path: Path) -> None:
    prep, features = prepared
    for preset in ("radiomics", "simclr"):
        config = PretrainConfig(epochs=1, **{**TINY, "objective": {"preset": preset}})
        run_pretrain(prep, tmp_path / preset, config, features=str(features), device="cpu")
        metrics = pd.read_csv(tmp_path / preset / "metrics.csv")
        assert ("val_top1" in metrics.columns) == (preset == "radiomics")


def _cli(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "lgerisk", "pretrain", *[str(a) for a in args]]


def _tiny_args(prep: Path, features: Path, out: Path, epochs: int) -> list[str]:
    return [
        "--data",
        prep,
        "--features",
        features,
        "--out",
        out,
        "--epochs",
        str(epochs),
        "--batch-size",
        "4",
        "--width",
        "4",
        "--device",
        "cpu",
        "--quiet",
    ]


def test_killed_run_resumes_to_the_uninterrupted_result(prepared, tmp_path: Path) -> None:
    """SIGKILL in the middle of epoch 2 (after its first batch), then --resume: the weights and metrics of
    the uninterrupted run. The run is held there by tests/interrupt_work.py (it blocks on a FIFO after the
    batch and says so in a file), so the kill never depends on timing."""
    prep, features = prepared
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(_cli(_tiny_args(prep, features, tmp_path / "whole", 3)), env=env, check=True, timeout=600)
    killed, hold = tmp_path / "killed", tmp_path / "hold"
    hold.mkdir()
    os.mkfifo(hold / "gate")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.interrupt_work",
            "pretrain",
            str(hold),
            "2",
            *map(str, _tiny_args(prep, features, killed, 3)),
        ],
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        wait_for((hold / "started-epoch2").exists, "the first batch of epoch 2", process, timeout=600)
    finally:
        stop(process)  # SIGKILL to the run and any loader workers
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    # killed mid-epoch 2: epoch 1's checkpoint and metrics row are there, nothing of epoch 2's end
    assert load_checkpoint(killed / "checkpoint" / "last.pt")["epoch"] == 0
    assert list(pd.read_csv(killed / "metrics.csv")["epoch"]) == [1]
    assert not (killed / "model.pt").exists()
    result = subprocess.run(
        _cli(_tiny_args(prep, features, killed, 3) + ["--resume"]), env=env, timeout=600, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    whole, resumed = _weights(tmp_path / "whole"), _weights(killed)
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "whole" / "metrics.csv").drop(columns="seconds"),
        pd.read_csv(killed / "metrics.csv").drop(columns="seconds"),
    )


def test_bad_input(prepared, tmp_path: Path, cli) -> None:
    prep, features = prepared
    base = ["pretrain", "--data", prep, "--features", features, "--epochs", "1", "--width", "4", "--device", "cpu"]
    # fewer training cases than a batch
    result = cli(*base, "--out", tmp_path / "r1", "--batch-size", "64")
    assert result.exit_code == 2 and "fewer than one batch" in result.output
    # a feature table that lacks cases
    partial = tmp_path / "partial.csv"
    pd.read_csv(features).head(3).to_csv(partial, index=False)
    result = cli("pretrain", "--data", prep, "--features", partial, "--out", tmp_path / "r2", "--device", "cpu")
    assert result.exit_code == 2 and "lacks 9 of the 12 cases" in result.output
    # CUDA asked for where there is none
    if not torch.cuda.is_available():
        result = cli(*base, "--out", tmp_path / "r3", "--device", "cuda")
        assert result.exit_code == 2 and "CUDA is not available" in result.output
    # no usable cases
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    result = cli("pretrain", "--data", empty, "--out", tmp_path / "r4")
    assert result.exit_code == 2 and "no cases found" in result.output
    # an existing run is never overwritten; --resume needs a checkpoint
    run = tmp_path / "run"
    assert cli(*base, "--out", run, "--batch-size", "4").exit_code == 0
    result = cli(*base, "--out", run, "--batch-size", "4")
    assert result.exit_code == 2 and "--resume" in result.output
    result = cli(*base, "--out", tmp_path / "nothing", "--resume")
    assert result.exit_code == 2 and "does not exist" in result.output
    # resuming with another configuration is refused
    result = cli(*base, "--out", run, "--batch-size", "4", "--lr", "0.01", "--resume")
    assert result.exit_code == 2 and "different configuration" in result.output
    # a foreign or corrupted checkpoint is refused, never unpickled
    checkpoint = run / "checkpoint" / "last.pt"
    torch.save({"something": 1}, checkpoint)
    result = cli(*base, "--out", run, "--batch-size", "4", "--resume")
    assert result.exit_code == 2 and "not an lgerisk checkpoint" in result.output
    checkpoint.write_bytes(b"garbage" * 10)
    result = cli(*base, "--out", run, "--batch-size", "4", "--resume")
    assert result.exit_code == 2 and "not a loadable lgerisk checkpoint" in result.output

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    torch.save({"format": "lgerisk-checkpoint-1", "payload": Evil()}, checkpoint)
    result = cli(*base, "--out", run, "--batch-size", "4", "--resume")
    assert result.exit_code == 2 and not (tmp_path / "pwned").exists()
    reason = " ".join(result.output.split()).split("(", 1)[1].rsplit(")", 1)[0]
    assert reason.endswith((".", "!", "?", ":")) or "." not in reason, reason  # whole sentences, never "... fr"
    assert "Traceback" not in result.output


def test_nan_features_are_refused(prepared, tmp_path: Path, cli) -> None:
    prep, features = prepared
    table = pd.read_csv(features)
    table.loc[0, "scar_percent"] = float("nan")
    bad = tmp_path / "nan.csv"
    table.to_csv(bad, index=False)
    result = cli(
        "pretrain",
        "--data",
        prep,
        "--features",
        bad,
        "--out",
        tmp_path / "r",
        "--device",
        "cpu",
        "--epochs",
        "1",
        "--width",
        "4",
        "--batch-size",
        "4",
    )
    assert result.exit_code == 2 and "scar_percent" in result.output


@pytest.mark.slow
def test_two_processes_match_one(prepared, tmp_path: Path) -> None:
    """torchrun with 2 gloo processes and a global batch of 4 == one process with a batch of 4."""
    prep, features = prepared
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    args = _tiny_args(prep, features, tmp_path / "one", 2) + ["--queue-size", "8"]
    subprocess.run(_cli(args), env=env, check=True, timeout=600)
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "lgerisk",
        "pretrain",
        *[str(a) for a in _tiny_args(prep, features, tmp_path / "two", 2)],
        "--queue-size",
        "8",
    ]
    result = subprocess.run(torchrun, env=env, timeout=600, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    # the losses agree to float precision at every epoch ...
    for column in ("train_loss", "train_clip", "train_simclr", "val_loss"):
        assert pd.read_csv(tmp_path / "one" / "metrics.csv")[column].tolist() == pytest.approx(
            pd.read_csv(tmp_path / "two" / "metrics.csv")[column].tolist(), rel=1e-5
        )
    # ... and the weights to a tenth of one AdamW step (lr 1e-3) but for a rare element within one step:
    # Adam divides by the gradient's own magnitude, so float-rounding differences in a near-zero gradient
    # can move one weight by a fraction of a step (seen: 1 of 65,536 weights off by 2.2e-4)
    one, two = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    for key in one:
        difference = (one[key] - two[key]).abs()
        assert float(difference.max()) < 1e-3, key
        assert int((difference > 1e-4).sum()) <= max(1, difference.numel() // 10000), key


def test_feature_table_without_radiomics_columns_is_refused(prepared, tmp_path: Path, cli) -> None:
    prep, features = prepared
    foreign = tmp_path / "foreign.csv"
    pd.read_csv(features)[["case_id"]].assign(age=60).to_csv(foreign, index=False)
    result = cli(
        "pretrain",
        "--data",
        prep,
        "--features",
        foreign,
        "--out",
        tmp_path / "r",
        "--device",
        "cpu",
        "--epochs",
        "1",
        "--width",
        "4",
        "--batch-size",
        "4",
    )
    assert result.exit_code == 2 and str(foreign) in result.output and "extract-radiomics" in result.output


def test_other_ranks_take_rank0s_usable_cases(prepared, tmp_path: Path) -> None:
    """A feature table lacking cases that rank 0 left out is fine for the ranks given rank 0's list."""
    from lgerisk.training.data import prepare_data

    prep, features = prepared
    partial = tmp_path / "partial.csv"
    table = pd.read_csv(features)
    table.head(10).to_csv(partial, index=False)
    with pytest.raises(InputError, match="lacks 2 of the 12 cases"):
        prepare_data(prep, tmp_path / "cache", features=partial)
    kept = list(table["case_id"].head(10))
    other_rank = prepare_data(prep, tmp_path / "cache", features=partial, only=kept)
    assert other_rank.case_ids == sorted(kept)


def test_levers_that_teach_what_scar_misses(prepared, tmp_path: Path) -> None:
    """Auxiliary head, every training case a negative, false negatives, a decorrelated view, preserving
    augmentation: they run, are recorded, and the head and its targets reach the run folder."""
    prep, features = prepared
    plain_config = PretrainConfig(epochs=1, **TINY, aux_weight=0.0, radiomics_view="all")  # no levers
    plain = run_pretrain(prep, tmp_path / "plain", plain_config, features=str(features), device="cpu")
    assert plain.epochs == 1
    config = PretrainConfig(
        epochs=2,
        **{**TINY, "objective": {"preset": "hybrid", "negatives": "all", "false_negative_similarity": 0.9}},
        aux_weight=1.0,
        aux_targets="qc",
        radiomics_view="decorrelated",
        augment={"scale": False, "elastic": False, "gamma": False, "bias_field": False},
    )
    run_pretrain(prep, tmp_path / "levers", config, features=str(features), device="cpu")
    metrics = pd.read_csv(tmp_path / "levers" / "metrics.csv")
    assert metrics["train_aux"].gt(0).all() and metrics["val_aux"].gt(0).all()
    assert metrics["val_aux_r2"].notna().all() and "val_aux" not in pd.read_csv(tmp_path / "plain" / "metrics.csv")
    card = json.loads((tmp_path / "levers" / "model_card.json").read_text())
    plain_card = json.loads((tmp_path / "plain" / "model_card.json").read_text())
    assert card["radiomics"]["view"] == "decorrelated" and plain_card["radiomics"]["aux_targets"] == []
    assert set(card["radiomics"]["aux_targets"]) <= {
        "scar_percent",
        "greyzone_percent",
        "noreflow_percent",
        "myocardium_mass_g",
        "myocardium_volume_ml",
        "scar_volume_ml",
    }
    assert "scar_percent" in card["radiomics"]["aux_targets"]
    assert len(card["radiomics"]["feature_names"]) < len(plain_card["radiomics"]["feature_names"])
    assert card["objective"]["negatives"] == "all" and card["model"]["aux_targets"] == len(
        card["radiomics"]["aux_targets"]
    )
    model, _ = load_encoder(tmp_path / "levers")
    state = torch.load(tmp_path / "levers" / "model.pt", weights_only=True)
    assert torch.equal(model.aux_head.weight, state["aux_head"]["weight"])
    with pytest.raises(InputError, match="aux_targets="):
        PretrainConfig(aux_targets="texture")
    with pytest.raises(InputError, match="radiomics_view="):
        PretrainConfig(radiomics_view="stable")
    with pytest.raises(InputError, match="aux_weight="):
        PretrainConfig(aux_weight=-1.0)


def test_new_settings_at_their_defaults_keep_the_resume_hash() -> None:
    """A run checkpointed before the levers existed still resumes with its settings of then (the objective it had,
    no auxiliary head, the whole radiomics view): those values stay out of the hash."""
    import hashlib

    config = PretrainConfig(epochs=3, objective={"preset": "hybrid"}, aux_weight=0.0, radiomics_view="all")
    before = {
        k: v
        for k, v in config.to_dict().items()
        if k not in ("epochs", "num_workers", "quiet", "aux_weight", "aux_targets", "radiomics_view")
    }
    assert config.resume_hash() == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:16]
    assert PretrainConfig(epochs=3, objective={"preset": "hybrid"}, radiomics_view="all").resume_hash() != (
        config.resume_hash()
    )  # with the auxiliary head (today's default) it is another run


def test_two_processes_match_one_with_every_lever(prepared, tmp_path: Path) -> None:
    """The bank of every training case and the auxiliary head give DDP the single-process gradients."""
    prep, features = prepared
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    levers = ["--negatives", "all", "--false-negative-similarity", "0.5", "--aux-weight", "1"]
    subprocess.run(_cli(_tiny_args(prep, features, tmp_path / "one", 2) + levers), env=env, check=True, timeout=600)
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "lgerisk",
        "pretrain",
        *[str(a) for a in _tiny_args(prep, features, tmp_path / "two", 2)],
        *levers,
    ]
    result = subprocess.run(torchrun, env=env, timeout=600, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    for column in ("train_loss", "train_clip", "train_aux", "val_loss", "val_aux"):
        assert pd.read_csv(tmp_path / "one" / "metrics.csv")[column].tolist() == pytest.approx(
            pd.read_csv(tmp_path / "two" / "metrics.csv")[column].tolist(), rel=1e-5
        )
    one, two = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    for key in one:
        assert float((one[key] - two[key]).abs().max()) < 1e-3, key
