"""The library speaks of data and settings; the command line words them as its options (issue 13, item 4)."""

from __future__ import annotations

import ast
import json
import pickle
import re
from pathlib import Path

import pytest

from lgerisk.batch import run_batch
from lgerisk.cli import SETTING_OPTIONS, _options, word
from lgerisk.errors import CaseError, InputError
from lgerisk.io.labels import PRESETS, LabelMapMismatch
from lgerisk.reporting import Reporter, reword_settings
from tests.helpers import ROOT

ERROR_TYPES = {"InputError", "CaseError", "WorkerDied", "LabelMapMismatch", "NameMapMismatch"}
FLAG = re.compile(r"(?<![\w-])--[a-z]")


def _library_modules() -> list[Path]:
    """Every module of the library but the command line itself."""
    return [p for p in sorted((ROOT / "lgerisk").rglob("*.py")) if p.name != "cli.py"]


def _error_calls(tree: ast.AST) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (getattr(node.func, "id", None) or getattr(node.func, "attr", None)) in ERROR_TYPES
    ]


def _texts(node: ast.AST) -> list[str]:
    """The literal text in an expression (f-string parts included)."""
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def test_no_library_error_names_a_command_line_flag() -> None:
    offenders = []
    for path in _library_modules():
        for call in _error_calls(ast.parse(path.read_text(encoding="utf-8"))):
            for text in _texts(call):
                if FLAG.search(text):
                    offenders.append(f"{path.relative_to(ROOT)}:{call.lineno}: {text!r}")
    assert not offenders, "library errors name CLI flags:\n" + "\n".join(offenders)


def test_the_scan_finds_a_flag_when_there_is_one() -> None:
    """The scan above is not vacuous: it sees errors and the flags in their f-strings."""
    tree = ast.parse('raise InputError(f"--folds {k}: bad", setting="folds")\nraise CaseError("fine")')
    calls = _error_calls(tree)
    assert len(calls) == 2 and FLAG.search(" ".join(_texts(calls[0]))) and not FLAG.search(_texts(calls[1])[0])


def test_every_setting_an_error_names_has_an_option() -> None:
    """Each ``setting="x"`` of the library is an option of some command (else the CLI shows a keyword)."""
    named = set()
    for path in _library_modules():
        for call in _error_calls(ast.parse(path.read_text(encoding="utf-8"))):
            for keyword in call.keywords:
                if keyword.arg == "setting" and isinstance(keyword.value, ast.Constant):
                    named.add(keyword.value.value)
    assert {"labels", "folds", "scar_method", "crop_size", "device", "out"} <= named  # the scan sees them
    missing = sorted(name for name in named if name not in _options())
    assert not missing, f"settings with no command-line option: {missing}"


def test_the_command_line_words_settings_as_its_options() -> None:
    assert word("crop_size=8: crop size must be 16-1024 voxels.") == "--crop 8: crop size must be 16-1024 voxels."
    assert word("dicom_seg=True needs out=FILE") == "--dicom-seg needs --out FILE"
    assert word("lower batch_size= or val_fraction=.") == "lower --batch-size or --val-fraction."
    assert word("labels='blood=1,myocardium=2': bad") == "--labels 'blood=1,myocardium=2': bad"  # map untouched
    assert word("a=b and x=1") == "a=b and x=1"  # not settings
    assert all(flag.startswith("--") for flag in SETTING_OPTIONS.values())


def test_reword_leaves_quoted_text_and_unknown_names() -> None:
    options = {"scar": "--scar"}
    assert reword_settings("scar=1 \"scar=2\" 'scar=3'", options) == "--scar 1 \"scar=2\" 'scar=3'"


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
        reporter=Reporter(wording=word),
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
