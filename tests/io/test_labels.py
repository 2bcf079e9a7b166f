"""Unit tests of lgerisk.io.labels: label-map parsing, presets, and translation to internal labels."""

from __future__ import annotations

import numpy as np
import pytest

from lgerisk.errors import CaseError, InputError
from lgerisk.io.labels import (
    BLOOD,
    MYOCARDIUM,
    NOREFLOW,
    PRESETS,
    SCAR,
    LabelMap,
    parse_label_map,
    to_internal,
)

# --- parse_label_map -------------------------------------------------------------------------------


def test_presets() -> None:
    emidec = parse_label_map("emidec")
    assert (emidec.blood, emidec.myocardium, emidec.scar, emidec.noreflow, emidec.ignore) == (
        (1,),
        (2,),
        (3,),
        (4,),
        (),
    )
    assert emidec.name == "emidec" and emidec.has_scar
    myops = parse_label_map("myops")
    assert (myops.blood, myops.myocardium, myops.scar, myops.noreflow, myops.ignore) == (
        (500,),
        (200, 1220),
        (2221,),
        (),
        (600,),
    )
    assert myops.name == "myops" and myops.has_scar
    acdc = parse_label_map("acdc")
    assert (acdc.blood, acdc.myocardium, acdc.scar, acdc.noreflow, acdc.ignore) == ((3,), (2,), (), (), (1,))
    assert acdc.name == "acdc" and not acdc.has_scar


@pytest.mark.parametrize("spec", ["EMIDEC", " emidec ", "Myops", "ACDC"])
def test_preset_names_ignore_case_and_spaces(spec: str) -> None:
    assert parse_label_map(spec) is PRESETS[spec.strip().lower()]


def test_free_map() -> None:
    label_map = parse_label_map("blood=1,myocardium=2,scar=3+4")
    assert label_map == LabelMap(blood=(1,), myocardium=(2,), scar=(3, 4))
    assert label_map.name == "custom"
    assert label_map.named_values() == {1, 2, 3, 4}
    assert label_map.has_scar


def test_free_map_tolerates_spaces_and_trailing_comma() -> None:
    assert parse_label_map(" blood = 1 , myocardium=2+5, ") == LabelMap(blood=(1,), myocardium=(2, 5))


def test_myocardium_only_map() -> None:
    label_map = parse_label_map("myocardium=7")
    assert label_map == LabelMap(myocardium=(7,))
    assert not label_map.has_scar


def test_noreflow_alone_counts_as_scar() -> None:
    assert parse_label_map("myocardium=2,noreflow=4").has_scar


@pytest.mark.parametrize(
    "spec",
    [
        "lv=1,myo=2,infarct=3,mvo=4",
        "bloodpool=1,MYO=2,scar=3,no_reflow=4",
        "blood_pool=1,myocardium=2,infarct=3,noreflow=4",
        "cavity=1,Myocardium=2,Scar=3,MVO=4",
    ],
)
def test_aliases(spec: str) -> None:
    assert parse_label_map(spec) == PRESETS["emidec"]


def test_same_class_given_twice_merges() -> None:
    assert parse_label_map("myo=2,myocardium=5,lv=1").myocardium == (2, 5)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("blood=1,muscle=2", r"unknown class 'muscle'"),
        ("nonsense", r"not a preset \(emidec, myops, acdc\)"),
        ("", r"not a preset"),
        ("blood=1,myocardium=2.5", r"labels of 'myocardium' must be integers"),
        ("blood=one,myocardium=2", r"labels of 'blood' must be integers"),
        ("blood=1,myocardium=", r"class 'myocardium' has no label values"),
        ("blood=0,myocardium=2", r"label 0 is background"),
        ("blood=1,myocardium=2+0", r"label 0 is background"),
        ("blood=1,myocardium=2,scar=2", r"label 2 is given to both 'myocardium' and 'scar'"),
        ("blood=1+3,myocardium=2,scar=3", r"label 3 is given to both 'blood' and 'scar'"),
        ("blood=1,scar=3", r"must name the myocardium"),
        ("blood=1,ignore=2", r"must name the myocardium"),
        ("blood=1,myocardium=2,scar=3+", r"the labels of 'scar' \('3\+'\) have a '\+' with nothing on one side"),
        ("blood=1,myocardium=+2", r"the labels of 'myocardium' \('\+2'\) have a '\+'"),
        ("blood=1,myocardium=2++5", r"the labels of 'myocardium' \('2\+\+5'\) have a '\+'"),
        ("myocardium=name:Wall+", r"the labels of 'myocardium' \('name:Wall\+'\) have a '\+'"),
        ("blood=1,,myocardium=2", r"an empty entry between commas"),
        (",blood=1,myocardium=2", r"an empty entry between commas"),
        ("blood=1,myocardium=2,,", r"an empty entry between commas"),
        ("blood=1,myocardium=1_000", r"labels of 'myocardium' must be integers"),
    ],
)
def test_parse_errors(spec: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        parse_label_map(spec)
    text = str(info.value)
    assert text.startswith("labels=") and repr(spec) in text and "\n" not in text
    assert info.value.setting == "labels"


@pytest.mark.parametrize(
    "spec",
    ["emidec", "myops", "acdc", "blood=1,myocardium=2,scar=3+4", "myocardium=200+1220,ignore=600", "lv=9,myo=8,mvo=7"],
)
def test_to_spec_round_trips(spec: str) -> None:
    label_map = parse_label_map(spec)
    again = parse_label_map(label_map.to_spec())
    assert again == label_map
    assert again.to_spec() == label_map.to_spec()


def test_to_spec_format() -> None:
    assert PRESETS["myops"].to_spec() == "blood=500,myocardium=200+1220,scar=2221,ignore=600"
    assert PRESETS["emidec"].to_spec() == "blood=1,myocardium=2,scar=3,noreflow=4"


# --- to_internal -------------------------------------------------------------------------------------


def test_to_internal_emidec_is_identity() -> None:
    labels = np.array([[[0, 1, 2, 3, 4]]], np.int32)
    out = to_internal(labels, PRESETS["emidec"], "m.nii.gz")
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, labels)


def test_to_internal_myops() -> None:
    labels = np.array([[[0, 500, 200, 1220, 2221, 600]]], np.int32)
    out = to_internal(labels, PRESETS["myops"], "m.nii.gz")
    np.testing.assert_array_equal(out, [[[0, BLOOD, MYOCARDIUM, MYOCARDIUM, SCAR, 0]]])  # RV (600) ignored


def test_to_internal_acdc() -> None:
    labels = np.array([[[0, 1, 2, 3]]], np.int32)
    out = to_internal(labels, PRESETS["acdc"], "m.nii.gz")
    np.testing.assert_array_equal(out, [[[0, 0, MYOCARDIUM, BLOOD]]])


def test_to_internal_free_map_merges_labels() -> None:
    labels = np.array([[[0, 10, 20, 30, 31, 40]]], np.int32)
    out = to_internal(labels, parse_label_map("blood=10,myocardium=20,scar=30+31,noreflow=40"), "m.nii.gz")
    np.testing.assert_array_equal(out, [[[0, BLOOD, MYOCARDIUM, SCAR, SCAR, NOREFLOW]]])


def test_to_internal_scar_absent_is_fine() -> None:
    labels = np.array([[[0, 1, 2, 2]]], np.int32)
    out = to_internal(labels, PRESETS["emidec"], "m.nii.gz")
    np.testing.assert_array_equal(out, labels)


def test_to_internal_without_blood_labels_in_map() -> None:
    labels = np.array([[[0, 2, 2]]], np.int32)
    out = to_internal(labels, parse_label_map("myocardium=2"), "m.nii.gz")
    np.testing.assert_array_equal(out, [[[0, MYOCARDIUM, MYOCARDIUM]]])


def test_to_internal_empty_mask() -> None:
    with pytest.raises(CaseError, match=r"^masks/P01\.nii\.gz: mask is empty"):
        to_internal(np.zeros((2, 3, 3), np.int32), PRESETS["emidec"], "masks/P01.nii.gz")


def test_to_internal_unknown_labels_are_named() -> None:
    labels = np.array([[[0, 1, 2, 7, 9]]], np.int32)
    with pytest.raises(
        CaseError,
        match=r"^masks/P01\.nii\.gz: mask has label\(s\) 7, 9 that the label map "
        r"'emidec' \(blood=1,myocardium=2,scar=3,noreflow=4\) does not name",
    ):
        to_internal(labels, PRESETS["emidec"], "masks/P01.nii.gz")


def test_to_internal_emidec_mask_under_myops_map() -> None:
    labels = np.array([[[0, 1, 2, 3]]], np.int32)
    with pytest.raises(CaseError, match=r"label\(s\) 1, 2, 3 that the label map 'myops'"):
        to_internal(labels, PRESETS["myops"], "masks/P01.nii.gz")


def test_to_internal_no_myocardium() -> None:
    labels = np.array([[[0, 1, 1, 3]]], np.int32)
    with pytest.raises(
        CaseError,
        match=r"^masks/P01\.nii\.gz: mask has no myocardium label \(2 under label map "
        r"'emidec'\)",
    ):
        to_internal(labels, PRESETS["emidec"], "masks/P01.nii.gz")


def test_to_internal_no_blood() -> None:
    labels = np.array([[[0, 2, 2, 3]]], np.int32)
    with pytest.raises(CaseError, match=r"^masks/P01\.nii\.gz: mask has no blood-pool label \(1 under"):
        to_internal(labels, PRESETS["emidec"], "masks/P01.nii.gz")


def test_to_internal_only_ignored_labels_is_no_myocardium() -> None:
    labels = np.array([[[0, 600, 600]]], np.int32)
    with pytest.raises(CaseError, match="no myocardium label"):
        to_internal(labels, PRESETS["myops"], "m.nii.gz")


def test_to_internal_names_the_preset_that_fits_the_mask() -> None:
    myops_mask = np.array([[[0, 500, 200, 1220, 2221, 600]]], np.int32)
    with pytest.raises(CaseError, match=r"does not name; pass labels='myops'\.$"):
        to_internal(myops_mask, PRESETS["emidec"], "masks/Case3001.nii.gz")
    emidec_mask = np.array([[[0, 1, 2, 3]]], np.int32)
    with pytest.raises(CaseError, match=r"\(7 under label map 'custom'\); its labels are the 'emidec' preset's: pass "):
        to_internal(emidec_mask, parse_label_map("blood=1,myocardium=7,ignore=2+3"), "masks/P01.nii.gz")
