"""DICOM SEG and RTSTRUCT masks: written here from the synthetic sample cohort, read back onto the series.

The series, SEG and RTSTRUCT objects are written by ``tests.helpers.dicom`` (shared with the other DICOM
tests): pydicom MR Image Storage series with a Frame of Reference and patient identifiers, so no-leak checks
have something to find.

Rasterisation tolerance (docs/dicom.md), measured on all 32 sample cases: a SEG is a label map on
the series' own slices, so its route is exact; an RTSTRUCT gives the same voxels as the label image (0
voxels differ, scar % difference 0.000 points) whether its contours outline the label voxels (through the
half-voxel points between a voxel inside and one outside) or run through the centres of the boundary
voxels, written at 0.1 or 0.01 mm, with or without slice references, also on an oblique series. Written at
1 mm, outlines differ by up to 0.19 points of scar % (mean 0.04) and contours through voxel centres by up
to 3.8 (mean 0.9). The tests below hold the 0.1-mm routes to exact equality.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from lgerisk.errors import CaseError, InputError
from lgerisk.io.cohort import Case, discover_cohort
from lgerisk.io.dicom_masks import (
    NameMapMismatch,
    Structure,
    check_names_fit,
    dicom_mask_file,
    first_structure_names,
    paint,
    polygon_inside,
    rasterise,
    read_dicom_mask,
)
from lgerisk.io.labels import (
    BLOOD,
    MYOCARDIUM,
    NOREFLOW,
    PRESETS,
    SCAR,
    parse_label_map,
)
from lgerisk.io.scans import read_volume
from tests.helpers import SAMPLE_DATA
from tests.helpers.dicom import dicom_case, sample_arrays, uid, write_rtstruct, write_seg, write_series


def _rotation(degrees: float) -> np.ndarray:
    """A right-handed direction matrix (columns: x, y, slice normal) tilted about two axes."""
    a, b = np.radians(degrees), np.radians(degrees / 2)
    about_z = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    about_x = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return about_x @ about_z


def _read(series: Path, mask: Path, spec: str = "emidec"):
    return read_dicom_mask(mask, series, read_volume(series), parse_label_map(spec))


# ------------------------------------------------------------------------------------------------ reading


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("seg", {}),
        ("seg", {"segmentation_type": "FRACTIONAL"}),
        ("seg", {"segmentation_type": "LABELMAP"}),
        ("rtstruct", {}),
    ],
    ids=["seg-binary", "seg-fractional", "seg-labelmap", "rtstruct"],
)
def test_a_dicom_mask_reads_back_to_the_label_image(tmp_path: Path, kind: str, options: dict) -> None:
    series, mask = dicom_case(tmp_path, "synth-0006", kind, **options)
    _, labels, _ = sample_arrays("synth-0006")
    assert (labels == NOREFLOW).any()
    read = _read(series, mask)
    np.testing.assert_array_equal(read.labels, labels)
    assert read.has_blood and read.kind == {"seg": "DICOM SEG", "rtstruct": "RTSTRUCT"}[kind]
    assert read.structures == {"blood": 1, "myocardium": 1, "scar": 1, "noreflow": 1}


def test_a_fractional_seg_is_read_at_one_half(tmp_path: Path) -> None:
    series, mask = dicom_case(tmp_path, "synth-0001", "seg", segmentation_type="FRACTIONAL", fraction=0.45)
    with pytest.raises(NameMapMismatch, match=r"has no myocardium: none of its structures with voxels \(none\)"):
        _read(series, mask)


def test_an_oblique_series_with_files_named_apex_first(tmp_path: Path) -> None:
    """Contours in patient mm land on the right voxels whatever the orientation and the file order."""
    image, labels, spacing = sample_arrays("synth-0002")
    series = tmp_path / "P"
    grid = write_series(series, image, spacing, key="oblique", direction=_rotation(25), reverse_names=True)
    read_back = read_volume(series)
    np.testing.assert_allclose(read_back.GetDirection(), _rotation(25).ravel(), atol=1e-6)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_back), image)
    rt = write_rtstruct(tmp_path / "rt.dcm", series, labels, grid, decimals=2, reference_slices=False)
    seg = write_seg(tmp_path / "seg.dcm", series, labels)
    for mask in (rt, seg):
        np.testing.assert_array_equal(_read(series, mask).labels, labels)


@pytest.mark.parametrize("centres", [False, True], ids=["outlines", "through-centres"])
def test_rtstruct_route_equals_the_label_image_on_the_sample_cases(tmp_path: Path, centres: bool) -> None:
    """The measured rasterisation agreement (docs/dicom.md): voxel for voxel, on a few sample cases."""
    for case in ("synth-0000", "synth-0016", "synth-0023"):
        series, mask = dicom_case(tmp_path / case, case, "rtstruct", centres=centres)
        _, labels, _ = sample_arrays(case)
        assert (labels == SCAR).any()
        np.testing.assert_array_equal(_read(series, mask).labels, labels, err_msg=case)


def test_polygon_rule_holes_and_edges() -> None:
    square = np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0]])  # through voxel centres: lines count
    interior, line = polygon_inside(square, (6, 6))
    assert (interior & ~line).sum() == 9 and line.sum() == 16 and (interior | line).sum() == 25
    assert rasterise([square], (6, 6))[:5, :5].all() and not rasterise([square], (6, 6))[5].any()
    ring = rasterise([square, (square + 2.0) / 2.0], (6, 6))  # a hole through the centres (1, 1)-(3, 3)
    assert ring[0, 0] and ring[1, 1] and not ring[2, 2] and ring.sum() == 24
    half = np.array([[0.5, 0.5], [3.5, 0.5], [3.5, 3.5], [0.5, 3.5]])  # between centres: interior only
    assert rasterise([half], (6, 6)).sum() == 9 and not polygon_inside(half, (6, 6))[1].any()
    near = half + 0.45  # every side 0.05 voxel from a row or column of centres: those lie on the line
    assert rasterise([near], (6, 6))[1:5, 1:5].all() and rasterise([near], (6, 6)).sum() == 16
    single = rasterise([np.array([[2.0, 3.0]])], (6, 6))  # a one-point contour: its voxel
    assert single.sum() == 1 and single[3, 2]


def test_paint_order_scar_wins_and_endocardium_is_blood() -> None:
    epi = np.zeros((1, 1, 5), bool)
    epi[0, 0, :] = True
    endo = np.zeros_like(epi)
    endo[0, 0, 1:4] = True
    scar = np.zeros_like(epi)
    scar[0, 0, 0] = True
    out = paint(
        [Structure("Scar", scar), Structure("LV endocardium", endo), Structure("LV epicardium", epi)],
        PRESETS["emidec"],
        "x.dcm",
    )
    assert out.labels.tolist() == [[[SCAR, BLOOD, BLOOD, BLOOD, MYOCARDIUM]]] and out.has_blood


def test_names_can_be_mapped_and_overridden(tmp_path: Path) -> None:
    series, mask = dicom_case(
        tmp_path, "synth-0001", "rtstruct", names={BLOOD: "Cavity (LV)", MYOCARDIUM: "Wall", SCAR: "Scar"}
    )
    with pytest.raises(NameMapMismatch) as info:
        _read(series, mask)
    message = str(info.value)
    assert message.startswith(f"{mask}: RTSTRUCT structure name(s) 'Cavity (LV)', 'Wall' are not in the name map")
    assert "names found: 'Cavity (LV)', 'Wall', 'Scar'" in message and "\n" not in message
    assert info.value.details["unnamed"] == ["Cavity (LV)", "Wall"]
    read = _read(series, mask, "blood=name:Cavity (LV),myocardium=name:wall")
    np.testing.assert_array_equal(read.labels, sample_arrays("synth-0001")[1])
    ignored = _read(series, mask, "blood=name:Cavity (LV),myocardium=name:wall,ignore=name:SCAR").labels
    assert not (ignored == SCAR).any() and (ignored == MYOCARDIUM).any()  # the default name turned off


def test_a_mask_without_myocardium_is_refused(tmp_path: Path) -> None:
    series, mask = dicom_case(tmp_path, "synth-0001", "seg")
    with pytest.raises(NameMapMismatch, match=r"DICOM SEG has no myocardium: none of its structures with voxels"):
        _read(series, mask, "myocardium=name:Wall,ignore=name:LV myocardium")


def test_a_dicom_mask_needs_its_dicom_series(tmp_path: Path) -> None:
    _, mask = dicom_case(tmp_path, "synth-0001", "seg")
    nifti = SAMPLE_DATA / "images" / "synth-0001.nii.gz"
    with pytest.raises(
        CaseError,
        match=r"is matched to its DICOM image series by UIDs, and the image .* is not a "
        r"DICOM series folder",
    ):
        read_dicom_mask(mask, nifti, read_volume(nifti), PRESETS["emidec"])


@pytest.mark.parametrize("kind", ["seg", "rtstruct"])
def test_a_mask_of_another_series_is_refused(tmp_path: Path, kind: str) -> None:
    _, mask = dicom_case(tmp_path / "a", "synth-0001", kind)
    image, _, spacing = sample_arrays("synth-0001")
    other = tmp_path / "other"
    write_series(other, image, spacing, key="another scan")
    with pytest.raises(
        CaseError,
        match=rf"^{mask}: the {'DICOM SEG' if kind == 'seg' else 'RTSTRUCT'} refers to "
        rf"another image series, not {other} \(none of the",
    ):
        _read(other, mask)


@pytest.mark.parametrize("kind", ["seg", "rtstruct"])
def test_a_differing_frame_of_reference_is_refused(tmp_path: Path, kind: str) -> None:
    series, mask = dicom_case(tmp_path, "synth-0001", kind, frame_uid=uid("a registration"))
    with pytest.raises(CaseError, match=r"the frame of reference of the .* differs from that of the image series"):
        _read(series, mask)


def test_contours_on_slices_the_series_lacks(tmp_path: Path) -> None:
    image, labels, spacing = sample_arrays("synth-0001")
    series = tmp_path / "P"
    grid = write_series(series, image, spacing, key="short")
    # drawn on a longer stack: the contours of two slices lie beyond the series' last slice
    shifted = write_rtstruct(tmp_path / "shifted.dcm", series, labels, grid, reference_slices=False, slice_offset=2)
    with pytest.raises(
        CaseError,
        match=r"ROI 'LV blood pool' has contours on slices that the image series .* lacks "
        r"\(a contour lies at slice position 6\.00 of 0-5\)",
    ):
        _read(series, shifted)
    between = write_rtstruct(tmp_path / "between.dcm", series, labels, grid, reference_slices=False)
    import pydicom

    ds = pydicom.dcmread(between)
    for item in ds.ROIContourSequence[0].ContourSequence:  # move the blood pool half a slice off its plane
        points = np.asarray(item.ContourData, float).reshape(-1, 3)
        points[:, 2] += spacing[2] / 2
        item.ContourData = [f"{v:.2f}" for v in points.ravel()]
    ds.save_as(between)
    with pytest.raises(
        CaseError,
        match=r"has contours on slices that the image series .* lacks \(a contour lies at "
        r"slice position \d\.50",
    ):
        _read(series, between)


def test_seg_frames_on_slices_the_series_lacks(tmp_path: Path) -> None:
    image, labels, spacing = sample_arrays("synth-0001")
    full = tmp_path / "full"
    write_series(full, image, spacing, key="full")
    seg = write_seg(tmp_path / "seg.dcm", full, labels)
    part = tmp_path / "part"
    shutil.copytree(full, part)
    for path in sorted(part.iterdir())[:2]:  # the series lost two slices the SEG segments
        path.unlink()
    with pytest.raises(CaseError, match=r"the DICOM SEG has segments on 2 slice\(s\) that the image series .* lacks"):
        _read(part, seg)


def test_a_seg_without_source_references_is_placed_by_position(tmp_path: Path) -> None:
    import pydicom

    series, mask = dicom_case(tmp_path, "synth-0003", "seg")
    ds = pydicom.dcmread(mask)
    for item in ds.PerFrameFunctionalGroupsSequence:
        del item.DerivationImageSequence
    ds.save_as(mask)
    np.testing.assert_array_equal(_read(series, mask).labels, sample_arrays("synth-0003")[1])
    for item in ds.PerFrameFunctionalGroupsSequence:  # now half a pixel off the grid
        position = [float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient]
        item.PlanePositionSequence[0].ImagePositionPatient = [position[0] + 0.9, *position[1:]]
    ds.save_as(mask)
    with pytest.raises(
        CaseError,
        match=r"frames do not lie on the slices of the image series .* \(a frame is "
        r"shifted off the image grid\)",
    ):
        _read(series, mask)


# ------------------------------------------------------------------------------------------------ finding


def test_cohort_finds_dicom_masks_beside_and_inside(tmp_path: Path) -> None:
    root = tmp_path / "cohort"
    dicom_case(root, "synth-0001", "seg")
    dicom_case(root, "synth-0002", "rtstruct", inside=True)
    dicom_case(root, "synth-0003", "seg", inside=True)
    (root / "outcomes.csv").write_text("case_id,time,event\nsynth-0001,2.0,1\nsynth-0002,3.0,0\n")
    cohort = discover_cohort(root)
    assert cohort.layout == "dicom"
    first, second, third = cohort.cases
    assert (first.mask, second.mask) == (root / "masks" / "synth-0001.dcm", root / "synth-0002" / "contours.dcm")
    assert third.mask == root / "synth-0003" / "contours.dcm"
    assert (first.time, second.event, third.time) == (2.0, 0, None)
    for case in (second, third):  # the object beside the slices is not read as (another) image series
        np.testing.assert_array_equal(sitk.GetArrayFromImage(read_volume(case.image)), sample_arrays(case.case_id)[0])
    assert dicom_mask_file(root / "synth-0002") == second.mask
    assert dicom_mask_file(SAMPLE_DATA / "masks" / "synth-0001.nii.gz") is None


def test_two_objects_in_one_folder_are_refused(tmp_path: Path) -> None:
    series, mask = dicom_case(tmp_path, "synth-0001", "seg", inside=True)
    shutil.copy(mask, series / "copy.dcm")
    with pytest.raises(
        CaseError,
        match=r"folder holds 2 DICOM SEG/RTSTRUCT objects \(contours\.dcm, copy\.dcm\); "
        r"keep one per case",
    ):
        dicom_mask_file(series)


# ------------------------------------------------------------------------------------------------ whole runs


def _rt_cohort(root: Path, names: dict[int, str], cases: tuple[str, ...] = ("synth-0001", "synth-0002")) -> Path:
    for case in cases:
        dicom_case(root, case, "rtstruct", names=names)
    return root


def test_preprocess_a_cohort_with_unmapped_names_stops_at_once(tmp_path: Path, cli) -> None:
    root = _rt_cohort(tmp_path / "cohort", {BLOOD: "LV", MYOCARDIUM: "LV Myo", SCAR: "Enhancement zone"})
    result = cli("preprocess", "--data", root, "--out", tmp_path / "out")
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert (
        "the name map leaves structure name(s) 'Enhancement zone' unmapped in synth-0001.dcm, synth-0002.dcm" in message
        and "names found: 'LV', 'LV Myo', 'Enhancement zone'" in message
    )
    assert not (tmp_path / "out" / "cases").exists()
    fixed = cli("preprocess", "--data", root, "--out", tmp_path / "out", "--labels", "scar=name:Enhancement zone")
    assert fixed.exit_code == 0, fixed.output


def test_one_bad_case_is_recorded_and_the_others_go_on(tmp_path: Path, cli) -> None:
    import pandas as pd

    root = tmp_path / "cohort"
    for case in ("synth-0001", "synth-0002", "synth-0003"):
        dicom_case(root, case, "seg")
    dicom_case(root, "synth-0004", "seg", frame_uid=uid("elsewhere"))
    result = cli("preprocess", "--data", root, "--out", tmp_path / "out", "--crop", 64)
    assert result.exit_code == 1, result.output
    errors = pd.read_csv(tmp_path / "out" / "errors.csv")
    assert errors["case_id"].tolist() == ["synth-0004"]
    assert "the frame of reference of the DICOM SEG differs" in errors["error"].iloc[0]
    assert len(pd.read_csv(tmp_path / "out" / "cases.csv")) == 3


def test_a_names_only_map_refuses_label_images() -> None:
    with pytest.raises(InputError, match=r"class 'epicardium' takes DICOM structure names only"):
        parse_label_map("myocardium=2,epicardium=3")
    with pytest.raises(InputError, match=r"name 'scar' is given to both 'scar' and 'ignore'"):
        parse_label_map("scar=name:Scar,ignore=name:scar")
    label_map = parse_label_map("myocardium=name:LV Myo+name:Wall,endo=name:Endo")
    assert label_map.to_spec() == "myocardium=name:LV Myo+name:Wall,endocardium=name:Endo"
    assert parse_label_map(label_map.to_spec()) == label_map
    assert not label_map.named_values() and label_map.names_scar
    mixed = parse_label_map("blood=1,myocardium=2+name:Wall,scar=3")
    assert mixed.named_values() == {1, 2, 3} and mixed.name_classes()["wall"] == "myocardium"


def test_case_built_from_a_dicom_mask_keeps_its_id(tmp_path: Path) -> None:
    from lgerisk.predict.masks import find_mask, scan_case

    series, mask = dicom_case(tmp_path, "synth-0001", "rtstruct", inside=True)
    assert find_mask(series) == mask
    case = scan_case(series)
    assert case == Case("synth-0001", series, mask)


def test_a_manifest_names_dicom_masks(tmp_path: Path, cli) -> None:
    import json

    dicom_case(tmp_path / "data", "synth-0001", "rtstruct")
    (tmp_path / "cohort.csv").write_text("case_id,image,mask\nP1,data/synth-0001,data/masks/synth-0001.dcm\n")
    result = cli("preprocess", "--data", tmp_path / "cohort.csv", "--out", tmp_path / "out", "--crop", 64)
    assert result.exit_code == 0, result.output
    qc = json.loads((tmp_path / "out" / "cases" / "P1" / "qc.json").read_text())
    _, labels, _ = sample_arrays("synth-0001")
    assert qc["mask_format"] == "RTSTRUCT" and qc["scar_method"] == "label"
    expected = 100 * (labels == SCAR).sum() / np.isin(labels, (MYOCARDIUM, SCAR)).sum()
    assert qc["scar_percent"] == pytest.approx(expected, abs=1e-3)


def test_unmapped_names_later_in_a_batch_stop_it_after_the_third() -> None:
    from lgerisk.io.labels import PartialMapWatch

    watch = PartialMapWatch(PRESETS["emidec"], "cohort")
    details = {"kind": "name_map", "fit": "partial", "names": ["Wall", "Scar"], "unnamed": ["Wall"]}
    watch("a", "...", {**details, "mask": "a.dcm"})
    watch("b", "...", {**details, "mask": "b.dcm"})
    with pytest.raises(
        InputError,
        match=r"^cohort: the name map leaves structure name\(s\) 'Wall' unmapped in a\.dcm, "
        r"b\.dcm, c\.dcm \(names found: 'Wall', 'Scar'\)",
    ):
        watch("c", "...", {**details, "mask": "c.dcm"})


# ------------------------------------------------------------------------------------------------ review fixes


def test_an_epicardium_without_an_inner_border_is_refused() -> None:
    """A filled epicardial disk alone would make the whole cavity myocardium (and hide the scar's share)."""
    epi = np.zeros((1, 1, 5), bool)
    epi[0, 0, :] = True
    scar = np.zeros_like(epi)
    scar[0, 0, 2] = True
    with pytest.raises(NameMapMismatch, match="epicardial border but no endocardium, blood pool or myocardium"):
        paint([Structure("LV epicardium", epi), Structure("Scar", scar)], PRESETS["emidec"], "x.dcm")
    # with the endocardium it is a ring around a blood pool
    endo = np.zeros_like(epi)
    endo[0, 0, 1:4] = True
    assert paint(
        [Structure("LV epicardium", epi), Structure("LV endocardium", endo)], PRESETS["emidec"], "x.dcm"
    ).labels.tolist() == [[[MYOCARDIUM, BLOOD, BLOOD, BLOOD, MYOCARDIUM]]]


def test_an_rtstruct_without_a_frame_of_reference_is_refused(tmp_path: Path) -> None:
    import pydicom

    series, mask = dicom_case(tmp_path, "synth-0002", "rtstruct")
    ds = pydicom.dcmread(mask)
    for roi in ds.StructureSetROISequence:
        roi.ReferencedFrameOfReferenceUID = ""
    for reference in ds.get("ReferencedFrameOfReferenceSequence", []):
        reference.FrameOfReferenceUID = ""
    ds.save_as(mask)
    with pytest.raises(CaseError, match="names no Frame of Reference UID"):
        _read(series, mask)


def test_a_malformed_rtstruct_is_one_sentence_naming_the_file(tmp_path: Path) -> None:
    import pydicom

    series, mask = dicom_case(tmp_path, "synth-0002", "rtstruct")
    ds = pydicom.dcmread(mask)
    del ds.StructureSetROISequence[0].ROINumber
    ds.save_as(mask)
    with pytest.raises(CaseError, match=rf"^{mask}: the RTSTRUCT is malformed \(AttributeError"):
        _read(series, mask)


def test_a_cohort_without_scar_structures_stops_under_auto(tmp_path: Path) -> None:
    """Readers often contour only the LV borders: under scar_method='auto' that would read every heart as
    scar-free, so the run stops; scar_method='fwhm' (or 'label') goes on."""
    borders_only = {BLOOD: "LV blood pool", MYOCARDIUM: "LV myocardium"}
    masks = [dicom_case(tmp_path, case, "rtstruct", names=borders_only)[1] for case in ("synth-0001", "synth-0002")]
    samples = first_structure_names(masks)
    with pytest.raises(InputError, match="has a scar structure, so scar_method='auto' would read every heart"):
        check_names_fit(samples, PRESETS["emidec"], "cohort", scar_auto=True)
    check_names_fit(samples, PRESETS["emidec"], "cohort", scar_auto=False)
    with_scar = first_structure_names([dicom_case(tmp_path / "s", "synth-0001", "rtstruct")[1]])
    check_names_fit(with_scar, PRESETS["emidec"], "cohort", scar_auto=True)
