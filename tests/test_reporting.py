"""The library speaks of data and settings; the command line words them as its options (issue 13, item 4)."""

from __future__ import annotations

import ast
import json
import pickle
import re
from pathlib import Path

import pytest

from lgerisk.batch import run_batch
from lgerisk.cli import SETTING_OPTIONS, option_names, word
from lgerisk.errors import CaseError, InputError
from lgerisk.io.labels import PRESETS, LabelMapMismatch
from lgerisk.reporting import _KEYWORD, Reporter, reword_settings
from tests.helpers import ROOT

ERROR_TYPES = {"InputError", "CaseError", "WorkerDied", "LabelMapMismatch", "NameMapMismatch"}
FLAG = re.compile(r"(?<![\w-])--[a-z]")


def _library_modules() -> list[Path]:
    """Every module of the library but the command line itself."""
    return [p for p in sorted((ROOT / "lgerisk").rglob("*.py")) if "cli" not in p.relative_to(ROOT / "lgerisk").parts]


def _error_calls(tree: ast.AST) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (getattr(node.func, "id", None) or getattr(node.func, "attr", None)) in ERROR_TYPES
    ]


def _text(node: ast.AST) -> str:
    """The literal text of a string expression, an f-string's fields as ``X``."""
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "X" for v in node.values)
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ""


def _strings(tree: ast.Module) -> list[tuple[int, str]]:
    """Every string literal (f-strings whole) but docstrings: what the code says, not what it documents."""
    documented = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)  # docstrings and attribute docs
    }
    parts = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
    return [
        (node.lineno, _text(node))
        for node in ast.walk(tree)
        if (isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str)))
        and id(node) not in documented
        and id(node) not in parts
    ]


def _shows_a_command(path: Path, text: str) -> bool:
    """Command lines the library prints for the user to run: the demo's steps, a cohort's own recipe."""
    return text.startswith("lgerisk ") or (path.name == "cohort.py" and path.parent.name == "synth")


def test_no_library_string_names_a_command_line_flag() -> None:
    """Not in errors, warnings, notes or tables: every string of the library but the command line's own,
    and the command lines the demo and the generator show for the user to run."""
    offenders = []
    for path in _library_modules():
        for line, text in _strings(ast.parse(path.read_text(encoding="utf-8"))):
            if FLAG.search(text) and not _shows_a_command(path, text):
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {text!r}")
    assert not offenders, "the library names CLI flags:\n" + "\n".join(offenders)


def test_the_scan_finds_a_flag_when_there_is_one() -> None:
    """The scan above is not vacuous: it sees f-strings, skips docstrings, and finds the flag."""
    tree = ast.parse('"""Docs: --folds."""\nraise InputError(f"--folds {k}: bad", setting="folds")\nx = "fine"')
    found = [text for _, text in sorted(_strings(tree))]
    assert found == ["--folds X: bad", "folds", "fine"] and [bool(FLAG.search(t)) for t in found] == [1, 0, 0]
    assert len(_error_calls(tree)) == 1


LABEL_CLASSES = {"blood", "myocardium", "scar", "noreflow", "greyzone", "ignore", "endocardium", "epicardium"}
"""Keywords of label maps (``'scar=4'``) that error messages suggest: not settings."""


def test_every_keyword_an_error_names_is_an_option() -> None:
    """Each ``name=`` an error message names, and each ``setting="name"`` it carries, is an option of
    some command (else the command line would show a Python keyword)."""
    named, keywords = set(), set()
    for path in _library_modules():
        for call in _error_calls(ast.parse(path.read_text(encoding="utf-8"))):
            for keyword in call.keywords:
                if keyword.arg == "setting" and isinstance(keyword.value, ast.Constant):
                    named.add(keyword.value.value)
            for argument in call.args:
                keywords.update(match.group(1) for match in _KEYWORD.finditer(_text(argument)))
    assert {"labels", "folds", "scar_method", "crop_size", "device", "out"} <= named  # the scan sees them
    assert {"labels", "mask", "dicom_seg", "out", "folds"} <= keywords
    missing = sorted(name for name in named | (keywords - LABEL_CLASSES) if name not in option_names())
    assert not missing, f"settings with no command-line option: {missing}"


def test_finetune_settings_hash_is_unchanged() -> None:
    """``labels=None`` hashes as "emidec" did: finished fine-tuning parts of earlier runs are reused."""
    from lgerisk.training.finetune_config import FinetuneConfig

    assert FinetuneConfig().settings_hash() == "5a279a2b0a29eb9b"
    assert FinetuneConfig(labels="emidec").settings_hash() == "5a279a2b0a29eb9b"
    assert FinetuneConfig(labels="myops").settings_hash() != "5a279a2b0a29eb9b"


def test_the_command_line_words_settings_as_its_options() -> None:
    assert word("crop_size=8: crop size must be 16-1024 voxels.") == "--crop 8: crop size must be 16-1024 voxels."
    assert word("dicom_seg=True needs out=FILE") == "--dicom-seg needs --out FILE"
    assert word("lower batch_size= or val_fraction=.") == "lower --batch-size or --val-fraction."
    assert word("labels='blood=1,myocardium=2': bad") == "--labels 'blood=1,myocardium=2': bad"  # map untouched
    assert word("a=b and x=1") == "a=b and x=1"  # not settings
    assert word("n_boot=5, (jobs=2)") == "--bootstrap 5, (--jobs 2)"
    assert word("nsd=nan: not a number") == "--nsd nan: not a number"  # not "nsd=nan"
    assert word("greyzone_nsd=-inf: infinite") == "--greyzone-nsd -inf: infinite"
    assert all(flag.startswith("--") for flag in SETTING_OPTIONS.values())


def test_reword_leaves_paths_code_and_quoted_maps_alone() -> None:
    options = {"seed": "--seed", "mode": "--mode", "out": "--out"}
    assert word("/data/seed=0/cohort: no such folder.") == "/data/seed=0/cohort: no such folder."
    assert reword_settings("seed=0/cohort and mode=fast", options) == "seed=0/cohort and mode=fast"
    assert reword_settings("'a seed=1' mode='x'", options) == "'a seed=1' --mode 'x'"  # after a space: a keyword
    text = "mode='probe' needs the encoder's folder; use mode='full'."
    assert reword_settings(text, options) == "--mode 'probe' needs the encoder's folder; use --mode 'full'."


def test_errors_keep_their_setting_and_details_across_processes() -> None:
    error = pickle.loads(pickle.dumps(InputError("folds=1: use 2 or more.", setting="folds")))
    assert isinstance(error, InputError) and error.setting == "folds" and str(error) == "folds=1: use 2 or more."
    mismatch = LabelMapMismatch("c1.nii.gz: label 4 unnamed.", "c1.nii.gz", {1, 2, 4}, PRESETS["emidec"])
    copy = pickle.loads(pickle.dumps(mismatch))
    assert type(copy) is LabelMapMismatch and copy.details == mismatch.details and copy.setting == "labels"


def _fail(case: str) -> str:
    if case == "bad":
        raise CaseError("bad: give mask=FILE for it.")
    if case == "bug":
        raise RuntimeError("boom")
    return case


def test_a_batch_records_errors_in_the_reporters_wording(tmp_path: Path) -> None:
    report = run_batch(
        ["ok", "bad", "bug"],
        _fail,
        lambda case: False,
        tmp_path,
        reporter=Reporter(wording=word, debug_hint="rerun with --debug for the traceback"),
        case_id=str,
    )
    assert report.done == ["ok"]
    recorded = json.loads((tmp_path / ".errors" / "bad.json").read_text(encoding="utf-8"))["error"]
    assert recorded == report.failed["bad"] == "bad: give --mask FILE for it."
    assert report.failed["bug"] == "unexpected RuntimeError: boom (rerun with --debug for the traceback)"
    silent = run_batch(["bad", "bug"], _fail, lambda case: False, tmp_path / "silent", case_id=str)
    assert silent.failed["bad"] == "bad: give mask=FILE for it."  # the library's own words
    assert "debug=True" in silent.failed["bug"]


def test_debug_records_the_traceback(tmp_path: Path) -> None:
    report = run_batch(["bug"], _fail, lambda case: False, tmp_path, reporter=Reporter(debug=True), case_id=str)
    assert report.failed["bug"].startswith("Traceback") and "RuntimeError: boom" in report.failed["bug"]


def test_notes_go_to_say_only() -> None:
    heard: list[str] = []
    Reporter(say=heard.append).note("epoch 1")
    Reporter().note("unheard")
    assert heard == ["epoch 1"]


@pytest.mark.parametrize("bad", ["0/4", "5/4", "x"])
def test_shard_errors_name_the_setting(bad: str) -> None:
    from lgerisk.batch import Shard

    with pytest.raises(InputError) as caught:
        Shard.parse(bad)
    assert caught.value.setting == "shard" and str(caught.value).startswith(f"shard={bad!r}")
    assert word(str(caught.value)).startswith(f"--shard {bad!r}")
