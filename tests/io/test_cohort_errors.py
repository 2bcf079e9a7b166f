"""Cohort-level problems are reported once, as one sentence with exit 2, not once per case.

A label map that cannot fit the cohort (it names none of the first masks' labels, or leaves some
unnamed), a manifest with no rows, an empty folder; plus what a failed start leaves behind, error
text that is never cut mid-word, and output errors named by the user's paths.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from lgerisk.errors import InputError, brief
from lgerisk.io.labels import (
    PRESETS,
    LabelMapMismatch,
    PartialMapWatch,
    check_map_fits,
    first_mask_labels,
    label_fit,
    parse_label_map,
    to_internal,
)
from tests.helpers import ROOT, assert_one_sentence, make_cohort, phantom_arrays, write_volume


def _cohort(root: Path, scar: list[bool]) -> Path:
    """``images/`` + ``masks/`` with EMIDEC labels; case i has scar (label 3) when ``scar[i]``."""
    for i, has_scar in enumerate(scar):
        image, labels = phantom_arrays(scar=has_scar, seed=i)
        write_volume(root / "images" / f"case{i}.nii.gz", image)
        write_volume(root / "masks" / f"case{i}.nii.gz", labels)
    return root


def _no_case_failed(output: str) -> None:
    assert "failed" not in output, output  # one sentence for the cohort, not a line per case


# --- a label map that cannot fit the cohort ------------------------------------------------------------


def test_map_naming_none_of_the_labels_stops_the_cohort_once(tmp_path: Path, cli) -> None:
    data = make_cohort(tmp_path / "cohort", n=5)
    out = tmp_path / "out"
    result = cli("preprocess", "--data", data, "--out", out, "--labels", "myops")
    assert result.exit_code == 2, result.output
    line = assert_one_sentence(
        result.output, "error:", ("'myops'", "label(s) 1, 2, 3", "case0.nii.gz", "--labels 'emidec'")
    )
    assert str(data) in line
    _no_case_failed(result.output)
    assert not out.exists()  # stopped before anything was written


def test_map_whose_myocardium_is_absent_stops_the_cohort(tmp_path: Path, cli) -> None:
    data = make_cohort(tmp_path / "cohort", n=3)
    result = cli("preprocess", "--data", data, "--out", tmp_path / "out", "--labels", "blood=1,myocardium=9,scar=3")
    assert result.exit_code == 2, result.output
    assert_one_sentence(result.output, "error:", ("fits none", "label(s) 1, 2, 3"))
    _no_case_failed(result.output)


def test_partial_map_seen_in_the_first_masks_stops_the_cohort(tmp_path: Path, cli) -> None:
    data = _cohort(tmp_path / "cohort", [True, False, True, True])
    out = tmp_path / "out"
    result = cli("preprocess", "--data", data, "--out", out, "--labels", "blood=1,myocardium=2")
    assert result.exit_code == 2, result.output
    assert_one_sentence(
        result.output, "error:", ("label(s) 3 unnamed", "case0.nii.gz", "case2.nii.gz", "--labels 'emidec'")
    )
    _no_case_failed(result.output)
    assert not out.exists()


def test_partial_map_seen_only_later_stops_the_batch(tmp_path: Path, cli) -> None:
    """The first masks are scar-free (as EMIDEC's sorted Case_N* come before Case_P*): the map fits them,
    and the batch stops once three later masks show a label the map leaves unnamed."""
    data = _cohort(tmp_path / "cohort", [False, False, False, True, True, True, True, True])
    result = cli("preprocess", "--data", data, "--out", tmp_path / "out", "--labels", "blood=1,myocardium=2")
    assert result.exit_code == 2, result.output
    assert_one_sentence(result.output, "error:", ("label(s) 3 unnamed", "case3.nii.gz", "case4.nii.gz", "case5.nii.gz"))
    _no_case_failed(result.output)
    assert not (tmp_path / "out" / "cases" / "case6").exists()  # stopped, not carried on to the end


def test_explicit_intensity_scar_method_lets_a_partial_map_through(tmp_path: Path, cli) -> None:
    """With --scar-method nsd given, leaving labels unnamed is the user's choice: no cohort-level stop.
    The masks holding unnamed labels still fail on their own (the map cannot say what they are)."""
    data = _cohort(tmp_path / "cohort", [False, False, False, True, True, True])
    args = ("preprocess", "--data", data, "--out", tmp_path / "out", "--labels", "blood=1,myocardium=2")
    stopped = cli(*args)
    assert stopped.exit_code == 2, stopped.output
    result = cli(*args, "--scar-method", "nsd")
    assert result.exit_code == 1, result.output
    assert "3 done, 0 already done, 3 failed" in result.output
    assert "error:" not in result.output


def test_one_odd_mask_among_fitting_ones_stays_a_case_error(tmp_path: Path, cli) -> None:
    data = make_cohort(tmp_path / "cohort", n=3)
    _, labels = phantom_arrays(seed=9)
    write_volume(data / "masks" / "case0.nii.gz", np.where(labels == 3, 7, labels).astype(np.uint8))
    result = cli("preprocess", "--data", data, "--out", tmp_path / "out")
    assert result.exit_code == 1, result.output
    assert_one_sentence(result.output, "failed case0:", ("case0.nii.gz", "label(s) 7"))
    assert "2 done" in result.output


def test_extract_radiomics_checks_the_map_of_a_raw_cohort(tmp_path: Path, cli) -> None:
    data = make_cohort(tmp_path / "cohort", n=3)
    table = tmp_path / "radiomics.csv"
    result = cli("extract-radiomics", "--data", data, "--out", table, "--labels", "myops")
    assert result.exit_code == 2, result.output
    assert_one_sentence(result.output, "error:", ("'myops'", "label(s) 1, 2, 3"))
    _no_case_failed(result.output)
    assert not list(tmp_path.glob("radiomics*"))


# --- the label checks themselves -----------------------------------------------------------------------


def test_label_fit_kinds() -> None:
    emidec, myops = PRESETS["emidec"], PRESETS["myops"]
    assert label_fit({1, 2}, emidec) == "fits"
    assert label_fit({1, 2, 3, 4}, emidec) == "fits"
    assert label_fit({1, 2, 3, 9}, emidec) == "partial"
    assert label_fit({1, 2, 3}, myops) == "misfit"
    assert label_fit({2, 3}, emidec) == "misfit"  # no blood pool
    assert label_fit({1, 3}, emidec) == "misfit"  # no myocardium
    assert label_fit({3, 2}, PRESETS["acdc"]) == "fits"  # what labels cannot tell
    assert label_fit(set(), emidec) == "empty"


def test_to_internal_mismatch_carries_details() -> None:
    labels = np.array([[[0, 1, 2, 3]]])
    with pytest.raises(LabelMapMismatch) as caught:
        to_internal(labels, parse_label_map("blood=1,myocardium=2"), "m.nii.gz")
    assert caught.value.details == {
        "kind": "label_map",
        "fit": "partial",
        "mask": "m.nii.gz",
        "present": [1, 2, 3],
        "unnamed": [3],
    }
    with pytest.raises(LabelMapMismatch) as caught:
        to_internal(labels, PRESETS["myops"], "m.nii.gz")
    assert caught.value.details["fit"] == "misfit"


def test_check_map_fits_rules() -> None:
    emidec = PRESETS["emidec"]
    fits, odd, partial = (Path("a.nii.gz"), {1, 2, 3}), (Path("b.nii.gz"), {500, 200}), (Path("c.nii.gz"), {1, 2, 9})
    check_map_fits([], emidec, "d")
    check_map_fits([fits, odd], emidec, "d")  # one odd mask: its own case's error
    check_map_fits([fits, partial, fits], emidec, "d")
    with pytest.raises(InputError, match=r"^d: labels='emidec' .* fits none of the first 1 mask\(s\) \(b\.nii\.gz\)"):
        check_map_fits([odd], emidec, "d")
    with pytest.raises(InputError, match=r"leaves label\(s\) 9 unnamed in c\.nii\.gz"):
        check_map_fits([fits, partial, partial], emidec, "d")  # most of the first masks: the map's fault
    check_map_fits([fits, partial, partial], emidec, "d", allow_unnamed=True)
    with pytest.raises(InputError, match="unnamed"):  # allowed, but it fits none: all would fail
        check_map_fits([partial], emidec, "d", allow_unnamed=True)


def test_partial_map_watch_counts_only_partial_maps() -> None:
    watch = PartialMapWatch(PRESETS["emidec"], "d", limit=2)
    partial = {"kind": "label_map", "fit": "partial", "mask": "x.nii.gz", "present": [1, 2, 9]}
    watch("a", "m", {**partial, "fit": "misfit"})
    watch("b", "m", None)
    watch("c", "m", partial)
    with pytest.raises(InputError, match=r"label\(s\) 9 unnamed"):
        watch("d", "m", {**partial, "mask": "y.nii.gz"})


def test_first_mask_labels_skips_missing_broken_and_empty_masks(tmp_path: Path) -> None:
    _, labels = phantom_arrays()
    good = [write_volume(tmp_path / f"g{i}.nii.gz", labels) for i in range(4)]
    empty = write_volume(tmp_path / "empty.nii.gz", np.zeros_like(labels))
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"not a volume")
    samples = first_mask_labels([None, tmp_path / "missing.nii.gz", broken, empty, *good])
    assert [path for path, _ in samples] == good[:3]
    assert all(present == {1, 2, 3} for _, present in samples)


# --- no cases ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["preprocess", "extract-radiomics"])
def test_header_only_manifest_exits_2(tmp_path: Path, cli, command: str) -> None:
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("case_id,image,mask\n")
    out = tmp_path / ("out.csv" if command == "extract-radiomics" else "out")
    result = cli(command, "--data", manifest, "--out", out)
    assert result.exit_code == 2, result.output
    assert_one_sentence(result.output, "error:", ("no cases found in", "manifest.csv"))
    assert not list(tmp_path.glob("out*"))


def test_empty_folder_exits_2(tmp_path: Path, cli) -> None:
    (tmp_path / "empty").mkdir()
    result = cli("preprocess", "--data", tmp_path / "empty", "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert_one_sentence(result.output, "error:", ("no cases found in", "empty"))
    assert not (tmp_path / "out").exists()


def test_missing_data_leaves_no_parts_folder(tmp_path: Path, cli) -> None:
    result = cli("extract-radiomics", "--data", tmp_path / "nowhere", "--out", tmp_path / "radiomics.csv")
    assert result.exit_code == 2, result.output
    assert_one_sentence(result.output, "error:", ("nowhere",))
    assert list(tmp_path.iterdir()) == []


# --- output errors name the user's paths; messages are never cut ---------------------------------------


def test_unwritable_out_names_the_output_not_a_temporary_file(tmp_path: Path, cli, monkeypatch) -> None:
    data = make_cohort(tmp_path / "cohort", n=2)
    out = tmp_path / "out"

    def refuse(suffix: str = "", prefix: str = "", dir: str = "", **_: object) -> tuple[int, str]:  # noqa: A002
        raise PermissionError(13, "Permission denied", os.path.join(dir, f"{prefix}k2j4h{suffix}"))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    result = cli("preprocess", "--data", data, "--out", out)
    assert result.exit_code == 2, result.output
    line = assert_one_sentence(result.output, "error:", (str(out / "preprocess.json"), "Permission denied"))
    assert ".tmp" not in line and "k2j4h" not in line


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_out_folder_is_named(tmp_path: Path, cli) -> None:
    data = make_cohort(tmp_path / "cohort", n=2)
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        result = cli("preprocess", "--data", data, "--out", out)
    finally:
        out.chmod(0o755)
    assert result.exit_code == 2, result.output
    line = assert_one_sentence(result.output, "error:", (str(out),))
    assert ".tmp" not in line


def test_brief_never_cuts_a_sentence() -> None:
    reason = (
        "Weights only load failed. This file can still be loaded, to do so you have two options, do those "
        "steps only if you trust the source of the checkpoint. (1) In PyTorch 2.6, we changed the default "
        "value of the `weights_only` argument in `torch.load` from `False` to `True`.\n  Re-running "
        "`torch.load` with `weights_only` set to `False` will likely succeed."
    )
    text = brief(RuntimeError(reason), limit=160)
    assert text == (
        "Weights only load failed. This file can still be loaded, to do so you have two options, do "
        "those steps only if you trust the source of the checkpoint."
    )
    assert brief(reason, limit=120) == "Weights only load failed."  # whole sentences or none
    assert brief("one line,\n  wrapped", limit=5) == "one line, wrapped"  # a long first sentence stays whole
    assert brief("Short. Also short.") == "Short. Also short."


def test_demo_output_is_ignored_by_git() -> None:
    patterns = (ROOT / ".gitignore").read_text().split()
    assert "lgerisk-demo/" in patterns or "/lgerisk-demo/" in patterns
