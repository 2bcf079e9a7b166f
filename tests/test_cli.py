"""The command line: start-up cost, --version, --help, and preprocess end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

import lgerisk
from tests.helpers import ROOT, make_cohort

HEAVY = ("torch", "SimpleITK", "radiomics", "pandas", "numpy", "scipy", "torchio", "lifelines", "matplotlib")


def test_startup_imports_nothing_heavy() -> None:
    code = f"import sys; from lgerisk.cli import app; print([m for m in {HEAVY!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"


def test_version_and_help(cli) -> None:
    result = cli("--version")
    assert result.exit_code == 0 and result.output.strip() == f"lgerisk {lgerisk.__version__}"
    result = cli("--help")
    assert result.exit_code == 0 and "preprocess" in result.output and "synth" in result.output
    for command in ("preprocess", "synth"):
        result = cli(command, "--help")
        assert result.exit_code == 0 and "Example" in result.output


def test_preprocess_command(cli, tmp_path: Path) -> None:
    data = make_cohort(tmp_path / "cohort", n=3)
    result = cli("preprocess", "--data", data, "--out", tmp_path / "prep", "--jobs", "2")
    assert result.exit_code == 0, result.output
    assert "3 done" in result.output
    table = pd.read_csv(tmp_path / "prep" / "cases.csv")
    assert list(table["case_id"]) == ["case0", "case1", "case2"]
    assert {"time", "event", "age", "scar_percent", "greyzone_percent", "myocardium_mass_g"} <= set(table.columns)
    assert json.loads((tmp_path / "prep" / "preprocess.json").read_text())["settings"]["labels"] == "emidec"
    result = cli("preprocess", "--data", data, "--out", tmp_path / "prep")
    assert result.exit_code == 0 and "3 already done" in result.output


def test_preprocess_acdc_labels_derive_scar(cli, tmp_path: Path) -> None:
    data = make_cohort(tmp_path / "cohort", n=1)
    # relabel to ACDC: 3 blood pool, 2 myocardium (scar becomes myocardium), 1 RV (ignored)
    import numpy as np
    import SimpleITK as sitk

    path = data / "masks" / "case0.nii.gz"
    mask = sitk.ReadImage(str(path))
    values = sitk.GetArrayFromImage(mask)
    acdc = np.select([values == 1, values >= 2], [3, 2], 0).astype(np.uint8)
    acdc[:, :3, :3] = 1
    out = sitk.GetImageFromArray(acdc)
    out.CopyInformation(mask)
    sitk.WriteImage(out, str(path))
    result = cli("preprocess", "--data", data, "--out", tmp_path / "prep", "--labels", "acdc")
    assert result.exit_code == 0, result.output
    row = pd.read_csv(tmp_path / "prep" / "cases.csv").iloc[0]
    assert row["scar_method"] == "fwhm" and 10 < row["scar_percent"] < 20  # the phantom's scar sector: 14.5 %


def test_synth_command_writes_a_cohort(cli, tmp_path: Path) -> None:
    result = cli("synth", tmp_path / "synth", "--cases", "2", "--seed", "5", "--small")
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC" in result.output
    from lgerisk.io.cohort import discover_cohort

    cohort = discover_cohort(tmp_path / "synth")
    assert [c.case_id for c in cohort.cases] == ["synth-0000", "synth-0001"]
    assert cohort.has_outcomes and {"age", "sex", "lvef", "diabetes"} <= set(cohort.cases[0].covariates)
    assert "synthetic" in (tmp_path / "synth" / "README.txt").read_text().lower()


def test_sample_data_preprocesses_cleanly(cli, tmp_path: Path) -> None:
    """The README's demo command: every sample case preprocesses without failure or warning."""
    from tests.helpers import SAMPLE_DATA

    result = cli("preprocess", "--data", SAMPLE_DATA, "--out", tmp_path / "prep", "--jobs", "2")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "prep" / "cases.csv")
    truth = pd.read_csv(SAMPLE_DATA / "ground_truth.csv")
    assert len(table) == len(truth) == 32 and table["warnings"].isna().all()
    assert table["event"].sum() == pd.read_csv(SAMPLE_DATA / "outcomes.csv")["event"].sum()
    merged = table.merge(truth, on="case_id", suffixes=("", "_true"))
    # scar % read from the labels tracks the simulator's truth (partial volume apart)
    assert merged["scar_percent"].corr(merged["scar_percent_true"]) > 0.95


def test_the_process_ends_quickly_without_losing_output_or_its_status(tmp_path: Path) -> None:
    """``lgerisk`` ends with ``os._exit`` after a command (no module teardown): its output still arrives, a
    bad-input status still reads 2, and output that could not be written is a failure (120), not 0."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONUNBUFFERED", "LGERISK_MODEL")}  # stdout buffered
    run = [sys.executable, "-m", "lgerisk"]
    done = subprocess.run([*run, "--version"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("lgerisk ")
    bad = subprocess.run([*run, "predict", str(tmp_path / "none.nii.gz")], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "no risk model given" in bad.stderr
    if Path("/dev/full").exists():
        with open("/dev/full", "w") as full:
            lost = subprocess.run([*run, "--version"], stdout=full, stderr=subprocess.PIPE, text=True, env=env)
        assert lost.returncode == 120 and "No space left on device" in lost.stderr


def test_help_shows_no_bool_type_for_flags_and_every_option_has_help(cli) -> None:
    """A flag takes no value: ``--help`` names no ``<bool>`` type for it (nor for ``--help`` itself); and every
    option of every command says what it does."""
    import typer

    from lgerisk.cli import app

    for command in ((), ("finetune",), ("pretrain",), ("predict",), ("demo",)):
        result = cli(*command, "--help")
        assert result.exit_code == 0 and "--help" in result.output
        assert "<bool>" not in result.output and "BOOLEAN" not in result.output, command
    group = typer.main.get_command(app)
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        bare = [p.opts[0] for p in command.params if getattr(p, "help", None) is None and p.opts[0].startswith("-")]
        assert not bare, (name, bare)


def test_an_interrupted_pretraining_says_how_to_resume(capsys) -> None:
    """Ctrl-C in pretrain: rerunning the same command would be refused (the folder holds a run), so the
    message names --resume; other commands keep their own message."""
    import pytest
    import typer

    from lgerisk.cli import friendly

    def pretrain() -> None:
        raise KeyboardInterrupt

    def synth() -> None:
        raise KeyboardInterrupt

    for command, expected in ((pretrain, "--resume"), (synth, "interrupted.")):
        with pytest.raises(typer.Exit) as stopped:
            friendly(command)()
        assert stopped.value.exit_code == 130
        assert expected in capsys.readouterr().err


def test_pretrain_and_finetune_options_default_to_their_settings() -> None:
    """Each option of `pretrain` and `finetune` that sets a field of the command's settings defaults to that
    field's default: one source, so the command line and Python callers get the same run."""
    import dataclasses
    import inspect

    from lgerisk.cli import train
    from lgerisk.training.finetune_config import FinetuneConfig
    from lgerisk.training.pretrain_config import PretrainConfig

    renamed = {"bootstrap": "n_boot"}
    checked = 0
    for command, settings in ((train.pretrain, PretrainConfig), (train.finetune, FinetuneConfig)):
        fields = {f.name: f.default for f in dataclasses.fields(settings) if f.default is not dataclasses.MISSING}
        for name, parameter in inspect.signature(inspect.unwrap(command)).parameters.items():
            field_name = renamed.get(name, name)
            default = fields.get(field_name)
            if field_name in fields and parameter.default is not None and type(parameter.default) is type(default):
                assert parameter.default == default, (command.__name__, name)  # "1,3,5" and (1, 3, 5) not compared
                checked += 1
    assert checked >= 30
