"""Unit tests of lgerisk.io.cohort: case ids, every cohort layout, manifests and outcomes."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from lgerisk.errors import InputError
from lgerisk.io.cohort import Case, Cohort, check_case_id, discover_cohort, read_outcomes
from tests.helpers import make_cohort, phantom_arrays, write_volume

# --- check_case_id -----------------------------------------------------------------------------------


@pytest.mark.parametrize("case_id", ["P01", "case0", "sample.Positive", "a-b_c.1", "0", "x" * 128])
def test_check_case_id_accepts_safe_names(case_id: str) -> None:
    assert check_case_id(case_id, "here") == case_id


@pytest.mark.parametrize(
    "case_id",
    ["../x", "a/b", "a\\b", "/abs", "a b", " a", "", ".", "..", ".hidden", "-dash", "x" * 129, "a*", "a?b", "é"],
)
def test_check_case_id_refuses_unsafe_names(case_id: str) -> None:
    with pytest.raises(InputError, match=r"^manifest\.csv row 3: case id .* is not a safe file name"):
        check_case_id(case_id, "manifest.csv row 3")


@pytest.mark.parametrize("case_id", [float("nan"), None, 12])
def test_check_case_id_refuses_non_strings(case_id: object) -> None:
    with pytest.raises(InputError, match="not a safe file name"):
        check_case_id(case_id, "here")  # type: ignore[arg-type]


def test_check_case_id_refuses_trailing_newline() -> None:
    with pytest.raises(InputError):
        check_case_id("case1\n", "here")


# --- helpers -----------------------------------------------------------------------------------------


def _write_case(image: Path, mask: Path | None, seed: int = 0) -> None:
    array, labels = phantom_arrays(slices=3, size=24, seed=seed)
    write_volume(image, array)
    if mask is not None:
        write_volume(mask, labels)


def _ids(cohort: Cohort) -> list[str]:
    return [case.case_id for case in cohort.cases]


# --- CSV manifest ------------------------------------------------------------------------------------


def test_manifest_relative_paths_resolve_against_csv_folder(tmp_path: Path, monkeypatch) -> None:
    data = make_cohort(tmp_path / "study" / "raw", n=2, outcomes=False)
    manifest = tmp_path / "study" / "manifest.csv"
    manifest.write_text(
        "case_id,image,mask\n"
        "case1,raw/images/case1.nii.gz,raw/masks/case1.nii.gz\n"
        f"case0,{data / 'images' / 'case0.nii.gz'},raw/masks/case0.nii.gz\n"
    )
    monkeypatch.chdir(tmp_path)  # the working folder must not matter
    cohort = discover_cohort(manifest)
    assert cohort.layout == "manifest" and cohort.source == manifest
    assert _ids(cohort) == ["case1", "case0"]  # manifest order is kept
    first, second = cohort.cases
    assert first.image == tmp_path / "study" / "raw" / "images" / "case1.nii.gz"
    assert first.mask == tmp_path / "study" / "raw" / "masks" / "case1.nii.gz"
    assert second.image == data / "images" / "case0.nii.gz"  # absolute paths stay as they are
    assert all(case.image.is_file() and case.mask.is_file() for case in cohort.cases)
    assert not cohort.has_outcomes and first.time is None and first.event is None


def test_manifest_accepts_str_and_keeps_leading_zeros(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("case_id,image,mask\n007,a.nii.gz,\n")
    cohort = discover_cohort(str(manifest))
    assert _ids(cohort) == ["007"]
    assert cohort.cases[0].mask is None  # empty mask cell: no mask


def test_manifest_with_outcomes_and_covariates(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "case_id,image,mask,time,event,age,sex\n"
        "A,a.nii.gz,am.nii.gz,2.5,1,61,F\n"
        "B,b.nii.gz,bm.nii.gz,4,0,70,M\n"
        "C,c.nii.gz,cm.nii.gz,,,55,F\n"
    )
    (tmp_path / "outcomes.csv").write_text("case_id,time,event\nA,99,0\n")  # the manifest's own columns win
    cohort = discover_cohort(manifest)
    a, b, c = cohort.cases
    assert (a.time, a.event) == (2.5, 1) and (b.time, b.event) == (4.0, 0) and (c.time, c.event) == (None, None)
    assert isinstance(a.event, int)
    assert a.covariates == {"age": 61, "sex": "F"}
    assert cohort.has_outcomes


def test_manifest_takes_outcomes_csv_beside_it(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("case_id,image,mask\nA,a.nii.gz,am.nii.gz\nB,b.nii.gz,bm.nii.gz\n")
    (tmp_path / "outcomes.csv").write_text("case_id,time,event,age\nA,3,1,50\n")
    a, b = discover_cohort(manifest).cases
    assert (a.time, a.event, a.covariates) == (3.0, 1, {"age": 50})
    assert (b.time, b.event) == (None, None)


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        ("case_id,image", "mask"),
        ("id,image,mask", "case_id"),
        ("case_id,img,seg", "image, mask"),
    ],
)
def test_manifest_missing_columns(tmp_path: Path, header: str, missing: str) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text(header + "\nA,a.nii.gz,b\n")
    with pytest.raises(InputError, match=rf"m\.csv: manifest lacks column\(s\) {missing};"):
        discover_cohort(manifest)


def test_manifest_duplicate_ids(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("case_id,image,mask\nA,a.nii.gz,am.nii.gz\nB,b.nii.gz,bm.nii.gz\nA,c.nii.gz,cm.nii.gz\n")
    with pytest.raises(InputError, match=r"m\.csv: case id 'A' appears more than once"):
        discover_cohort(manifest)


@pytest.mark.parametrize("case_id", ["../x", "a/b", "a b", "."])
def test_manifest_id_that_is_a_path(tmp_path: Path, case_id: str) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text(f'case_id,image,mask\nA,a.nii.gz,am.nii.gz\n"{case_id}",x.nii.gz,xm.nii.gz\n')
    with pytest.raises(InputError, match=r"m\.csv row 3: case id .* is not a safe file name"):
        discover_cohort(manifest)


def test_manifest_missing_image_cell(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("case_id,image,mask\nA,,am.nii.gz\n")
    with pytest.raises(InputError, match=r"m\.csv: case 'A' has no image path"):
        discover_cohort(manifest)


@pytest.mark.parametrize("content", [b"", b"\xff\xfe\x00garbage\x00\xff", b'a,b\n"unclosed,1\n'])
def test_manifest_unreadable(tmp_path: Path, content: bytes) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_bytes(content)
    with pytest.raises(InputError, match=r"m\.csv: "):
        discover_cohort(manifest)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("A,a.nii.gz,am.nii.gz,-1,1", r"case 'A' has time -1(\.0)?; follow-up times must be finite and >= 0"),
        ("A,a.nii.gz,am.nii.gz,soon,1", r"case 'A' has time 'soon', which is not a number"),
        ("A,a.nii.gz,am.nii.gz,2,2", r"case 'A' has event 2; events must be 0 \(censored\) or 1"),
    ],
)
def test_manifest_bad_outcomes(tmp_path: Path, rows: str, message: str) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("case_id,image,mask,time,event\n" + rows + "\n")
    with pytest.raises(InputError, match=r"m\.csv: " + message):
        discover_cohort(manifest)


# --- images/ + masks/ (or labels/) -------------------------------------------------------------------


def test_images_masks_layout(tmp_path: Path) -> None:
    folder = make_cohort(tmp_path / "c", n=3)
    cohort = discover_cohort(folder)
    assert cohort.layout == "images+masks" and cohort.source == folder
    assert _ids(cohort) == ["case0", "case1", "case2"]
    for i, case in enumerate(cohort.cases):
        assert case.image == folder / "images" / f"case{i}.nii.gz"
        assert case.mask == folder / "masks" / f"case{i}.nii.gz"
        assert (case.time, case.event) == (1.5 + i, i % 2)
        assert case.covariates == {"age": 60 + i}
    assert cohort.has_outcomes


def test_images_labels_layout_and_mixed_formats(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    _write_case(folder / "images" / "B.nrrd", folder / "labels" / "B.nii")
    _write_case(folder / "images" / "A.mha", folder / "labels" / "A.nii.gz")
    _write_case(folder / "images" / "C.nii.gz", None)
    (folder / "images" / "README.txt").write_text("not a scan")
    (folder / "images" / ".D.nii.gz").write_bytes(b"hidden")
    (folder / "labels" / "C.v2.nii.gz").write_bytes(b"another case's mask")
    cohort = discover_cohort(folder)
    assert cohort.layout == "images+masks"
    assert _ids(cohort) == ["A", "B", "C"]
    a, b, c = cohort.cases
    assert (a.image.name, a.mask.name) == ("A.mha", "A.nii.gz")
    assert (b.image.name, b.mask.name) == ("B.nrrd", "B.nii")
    assert c.mask is None  # C.v2 is not C's mask
    assert not cohort.has_outcomes


def test_images_masks_preferred_over_labels(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    _write_case(folder / "images" / "A.nii.gz", folder / "masks" / "A.nii.gz")
    _write_case(folder / "images" / "B.nii.gz", folder / "labels" / "B.nii.gz")
    write_volume(folder / "labels" / "A.nii.gz", np.zeros((2, 2, 2), np.uint8))
    a, b = discover_cohort(folder).cases
    assert a.mask == folder / "masks" / "A.nii.gz"
    assert b.mask == folder / "labels" / "B.nii.gz"


def test_images_layout_duplicate_ids(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    _write_case(folder / "images" / "A.nii.gz", folder / "masks" / "A.nii.gz")
    _write_case(folder / "images" / "A.nrrd", None)
    with pytest.raises(InputError, match=r"case id 'A' appears more than once"):
        discover_cohort(folder)


def test_images_layout_unsafe_file_name(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    _write_case(folder / "images" / "my case.nii.gz", folder / "masks" / "my case.nii.gz")
    with pytest.raises(InputError, match=r"my case\.nii\.gz: case id 'my case' is not a safe file name"):
        discover_cohort(folder)


# --- outcomes.csv ------------------------------------------------------------------------------------


def test_outcomes_for_some_cases_only(tmp_path: Path) -> None:
    folder = make_cohort(tmp_path / "c", n=2, outcomes=False)
    (folder / "outcomes.csv").write_text("case_id,time,event\ncase1,0,0\nother,5,1\n")
    case0, case1 = discover_cohort(folder).cases
    assert (case0.time, case0.event) == (None, None)
    assert (case1.time, case1.event) == (0.0, 0)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("case0,-0.5,1", r"case 'case0' has time -0\.5; follow-up times must be finite and >= 0"),
        ("case0,inf,1", r"case 'case0' has time .*inf.*must be finite"),
        ("case0,abc,1", r"case 'case0' has time 'abc', which is not a number"),
        ("case0,3,2", r"case 'case0' has event 2; events must be 0 \(censored\) or 1"),
        ("case0,3,-1", r"case 'case0' has event -1"),
        ("case0,3,0.5", r"case 'case0' has event 0\.5"),
        ("case0,3,yes", r"case 'case0' has event 'yes'"),
        ("case0,3,", r"case 'case0' has event nan"),
        ("case0,,1", r"case 'case0' has time nan"),
    ],
)
def test_bad_outcomes_refused_naming_file(tmp_path: Path, rows: str, message: str) -> None:
    folder = make_cohort(tmp_path / "c", n=1, outcomes=False)
    (folder / "outcomes.csv").write_text("case_id,time,event\n" + rows + "\n")
    with pytest.raises(InputError, match=r"outcomes\.csv: " + message):
        discover_cohort(folder)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("id,time,event\ncase0,1,1\n", r"outcomes need a 'case_id' column"),
        ("case_id,time\ncase0,1\n", r"outcomes need both 'time' and 'event' columns"),
        ("case_id,time,event\ncase0,1,1\ncase0,2,0\n", r"case id 'case0' appears more than once"),
        ("case_id,time,event\n../x,1,1\n", r"outcomes\.csv row 2: case id '\.\./x' is not a safe file name"),
    ],
)
def test_outcomes_table_errors(tmp_path: Path, table: str, message: str) -> None:
    folder = make_cohort(tmp_path / "c", n=1, outcomes=False)
    (folder / "outcomes.csv").write_text(table)
    with pytest.raises(InputError, match=message):
        discover_cohort(folder)


def test_read_outcomes(tmp_path: Path) -> None:
    path = tmp_path / "outcomes.csv"
    path.write_text("case_id,time,event,age,site\nA,1.5,1,60,X\nB,,,,\n")
    rows = read_outcomes(path)
    assert rows["A"] == (1.5, 1, {"age": 60.0, "site": "X"})
    time, event, covariates = rows["B"]
    assert time is None and event is None and covariates == {"age": None, "site": None}


def test_read_outcomes_without_outcome_columns(tmp_path: Path) -> None:
    path = tmp_path / "covariates.csv"
    path.write_text("case_id,age\nA,60\n")
    assert read_outcomes(path) == {"A": (None, None, {"age": 60})}


# --- EMIDEC layout ----------------------------------------------------------------------------------


def test_emidec_layout(tmp_path: Path) -> None:
    folder = tmp_path / "emidec"
    for case in ("Case_N006", "Case_P012"):
        _write_case(folder / case / "Images" / f"{case}.nii.gz", folder / case / "Contours" / f"{case}.nii.gz")
    _write_case(folder / "Case_P013" / "Images" / "Case_P013.nii.gz", None)  # no Contours/
    (folder / "notes").mkdir()
    (folder / "outcomes.csv").write_text("case_id,time,event\nCase_P012,1,1\n")
    cohort = discover_cohort(folder)
    assert cohort.layout == "emidec"
    assert _ids(cohort) == ["Case_N006", "Case_P012", "Case_P013"]
    n006, p012, p013 = cohort.cases
    assert n006.image == folder / "Case_N006" / "Images" / "Case_N006.nii.gz"
    assert n006.mask == folder / "Case_N006" / "Contours" / "Case_N006.nii.gz"
    assert (p012.time, p012.event) == (1.0, 1)
    assert p013.mask is None


def test_emidec_layout_real_scans(emidec: Path) -> None:
    cohort = discover_cohort(emidec)
    assert cohort.layout == "emidec" and cohort.source == emidec
    assert _ids(cohort) == ["sampleNegative", "samplePositive"]
    for case in cohort.cases:
        assert case.image == emidec / case.case_id / "Images" / f"{case.case_id}.nii.gz"
        assert case.mask == emidec / case.case_id / "Contours" / f"{case.case_id}.nii.gz"
        assert case.time is None
    assert not cohort.has_outcomes


# --- DICOM folders ----------------------------------------------------------------------------------


def _fake_dicom(folder: Path, suffix: str = ".dcm", preamble: bool = False) -> None:
    """Files that look like DICOM to discovery (by suffix, or by the 'DICM' marker at byte 128)."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(2):
        (folder / f"IM{k}{suffix}").write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 16 if preamble else b"x")


def test_dicom_folders_layout(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    _fake_dicom(folder / "P02")
    _fake_dicom(folder / "P01", suffix="", preamble=True)  # no suffix: found by the DICM marker
    _fake_dicom(folder / "P03", suffix=".IMA")
    (folder / "notdicom").mkdir()
    (folder / "notdicom" / "readme.txt").write_text("hello")
    write_volume(folder / "masks" / "P01.nii.gz", np.zeros((2, 2, 2), np.uint8))
    write_volume(folder / "masks" / "P02.nrrd", np.zeros((2, 2, 2), np.uint8))
    (folder / "outcomes.csv").write_text("case_id,time,event\nP02,7,0\n")
    cohort = discover_cohort(folder)
    assert cohort.layout == "dicom"
    assert _ids(cohort) == ["P01", "P02", "P03"]
    p01, p02, p03 = cohort.cases
    assert p01.image == folder / "P01" and p01.mask == folder / "masks" / "P01.nii.gz"
    assert p02.mask == folder / "masks" / "P02.nrrd" and (p02.time, p02.event) == (7.0, 0)
    assert p03.mask is None


def test_dicom_folder_inside_images(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    _fake_dicom(folder / "images" / "P01")
    _write_case(folder / "images" / "P02.nii.gz", folder / "masks" / "P02.nii.gz")
    write_volume(folder / "masks" / "P01.nii.gz", np.zeros((2, 2, 2), np.uint8))
    cohort = discover_cohort(folder)
    assert cohort.layout == "images+masks"
    p01, p02 = cohort.cases
    assert p01.image == folder / "images" / "P01" and p01.mask == folder / "masks" / "P01.nii.gz"


# --- a preprocess output folder ---------------------------------------------------------------------


def test_preprocessed_folder(tmp_path: Path) -> None:
    from lgerisk.preprocess.config import PreprocessConfig
    from lgerisk.preprocess.run import preprocess_cohort

    data = make_cohort(tmp_path / "c", n=2)
    out = tmp_path / "prep"
    report, _ = preprocess_cohort(data, out, PreprocessConfig())
    assert report.exit_code == 0
    cohort = discover_cohort(out)
    assert cohort.layout == "preprocessed" and cohort.source == out
    assert _ids(cohort) == ["case0", "case1"]
    for i, case in enumerate(cohort.cases):
        assert case.image == out / "cases" / case.case_id / "image.nii.gz" and case.image.is_file()
        assert case.mask == out / "cases" / case.case_id / "mask.nii.gz" and case.mask.is_file()
        assert (case.time, case.event) == (1.5 + i, i % 2)
        assert case.covariates["age"] == 60 + i


def test_folder_with_cases_csv_but_no_settings_is_not_preprocessed(tmp_path: Path) -> None:
    folder = make_cohort(tmp_path / "c", n=1)
    (folder / "cases.csv").write_text("case_id,image,mask\nzzz,a,b\n")
    assert discover_cohort(folder).layout == "images+masks"


# --- nothing to find --------------------------------------------------------------------------------


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nowhere: no such file or folder"):
        discover_cohort(tmp_path / "nowhere")


def test_single_scan_file_is_refused(tmp_path: Path) -> None:
    path = write_volume(tmp_path / "scan.nii.gz", np.zeros((2, 2, 2), np.float32))
    with pytest.raises(InputError, match=r"^data='\S*scan\.nii\.gz' must be a cohort folder or a CSV manifest") as info:
        discover_cohort(path)
    assert info.value.setting == "data"


@pytest.mark.parametrize("setup", ["empty", "stray files", "empty images", "emidec without images"])
def test_no_cases_found(tmp_path: Path, setup: str) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    if setup == "stray files":
        (folder / "notes.txt").write_text("x")
        (folder / "sub").mkdir()
        (folder / "sub" / "a.txt").write_text("x")
    elif setup == "empty images":
        (folder / "images").mkdir()
        (folder / "masks").mkdir()
    elif setup == "emidec without images":
        (folder / "P1" / "Images").mkdir(parents=True)
        (folder / "P1" / "Images" / "notes.txt").write_text("x")
    with pytest.raises(InputError, match=r"no cases found in \S*c; expected images/ \+ masks/"):
        discover_cohort(folder)


def test_case_and_cohort_dataclasses() -> None:
    case = Case("A", Path("a.nii.gz"), None)
    assert (case.time, case.event, case.covariates) == (None, None, {})
    cohort = Cohort(cases=(case, Case("B", Path("b"), None, 1.0, 0)), layout="manifest", source=Path("m.csv"))
    assert cohort.has_outcomes
    assert not Cohort(cases=(case,), layout="manifest", source=Path("m.csv")).has_outcomes
    assert math.isclose(cohort.cases[1].time, 1.0)


def test_emidec_copy_with_outcomes(emidec: Path, tmp_path: Path) -> None:
    folder = tmp_path / "emidec"
    shutil.copytree(emidec, folder)
    (folder / "outcomes.csv").write_text("case_id,time,event\nsamplePositive,2.0,1\nsampleNegative,5.0,0\n")
    negative, positive = discover_cohort(folder).cases
    assert (positive.time, positive.event, negative.time, negative.event) == (2.0, 1, 5.0, 0)


# --- CSVs as Excel saves them ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        ("case_id;image;mask\nA;a.nii.gz;am.nii.gz\n", "semicolon"),
        ("\ufeffcase_id;image;mask;time\nA;a.nii.gz;am.nii.gz;2,5\n", "semicolon"),  # Excel's BOM, decimal commas
        ("case_id\timage\tmask\nA\ta.nii.gz\tam.nii.gz\n", "tab"),
    ],
)
def test_manifest_with_another_separator_says_so(tmp_path: Path, content: str, kind: str) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        discover_cohort(manifest)
    message = str(caught.value)
    assert message.startswith(f"{manifest}: ") and message.endswith(
        f"the file looks {kind}-separated: save it as comma-separated CSV."
    )


def test_outcomes_with_semicolons_say_so(tmp_path: Path) -> None:
    folder = make_cohort(tmp_path / "c", n=1, outcomes=False)
    (folder / "outcomes.csv").write_text("case_id;time;event\ncase0;1;1\n")
    with pytest.raises(InputError, match=r"outcomes need a 'case_id' column; the file looks semicolon-separated"):
        discover_cohort(folder)


def test_manifest_not_in_utf8_says_how_to_save_it(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_bytes("case_id,image,mask\nPatient\xe9,a.nii.gz,\n".encode("latin-1"))
    with pytest.raises(
        InputError, match=r"m\.csv: not UTF-8 text \(byte 0xe9 at position \d+\); save it as CSV UTF-8\.$"
    ):
        discover_cohort(manifest)
