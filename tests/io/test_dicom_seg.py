"""DICOM SEG output: lgerisk's scar and grey zone over the source series, read back with highdicom.

A DICOM cohort (series + RTSTRUCT or SEG, written here from sample_data) runs through ``preprocess
--dicom-seg`` with the numbers of the NIfTI route; the SEG reads back to the voxels lgerisk derived, on the
scan's own slices (also for a series stored apex first), and keeps only the UIDs it must reference.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from lgerisk.io.cohort import Case
from lgerisk.io.dicom_seg import EMPTIED_ATTRIBUTES, SEG_FILE, SEGMENTS
from lgerisk.io.labels import GREYZONE, MYOCARDIUM, NOREFLOW, SCAR
from lgerisk.preprocess import geometry
from lgerisk.preprocess.config import PreprocessConfig
from lgerisk.preprocess.pipeline import preprocess_case, source_grid_labels
from tests.helpers import SAMPLE_DATA
from tests.helpers.dicom import (
    PATIENT,
    dicom_case,
    sample_arrays,
    seg_pixels,
    series_headers,
    write_rtstruct,
    write_series,
)

CASES = ("synth-0000", "synth-0006", "synth-0003")
"""Scar; scar with no-reflow (MVO); no scar at all."""
QC_NUMBERS = (
    "scar_percent",
    "greyzone_percent",
    "noreflow_percent",
    "myocardium_mass_g",
    "scar_volume_ml",
    "slice_count",
    "remote_mean",
)
"""Numbers of cases.csv that the DICOM route must give as the NIfTI route does."""


@pytest.fixture(scope="module")
def dicom_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three sample cases as DICOM series: an RTSTRUCT, a SEG, and an RTSTRUCT inside its series folder drawn
    through voxel centres; with outcomes."""
    root = tmp_path_factory.mktemp("dicom-seg") / "cohort"
    dicom_case(root, CASES[0], "rtstruct")
    dicom_case(root, CASES[1], "seg")
    dicom_case(root, CASES[2], "rtstruct", inside=True, centres=True)
    outcomes = pd.read_csv(SAMPLE_DATA / "outcomes.csv", dtype={"case_id": str})
    outcomes[outcomes["case_id"].isin(CASES)].to_csv(root / "outcomes.csv", index=False)
    return root


@pytest.fixture(scope="module")
def nifti_route(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The same three cases preprocessed from sample_data's NIfTI images and masks."""
    from lgerisk.preprocess.run import preprocess_cohort

    root = tmp_path_factory.mktemp("nifti-route")
    rows = [f"{case},{SAMPLE_DATA}/images/{case}.nii.gz,{SAMPLE_DATA}/masks/{case}.nii.gz" for case in CASES]
    (root / "cohort.csv").write_text("case_id,image,mask\n" + "\n".join(rows) + "\n")
    report, table = preprocess_cohort(root / "cohort.csv", root / "out", PreprocessConfig())
    assert not report.failed
    return table.set_index("case_id")


def test_dicom_cohort_preprocesses_to_the_nifti_numbers_and_segs_read_back(
    dicom_cohort: Path, nifti_route, tmp_path: Path, cli
) -> None:
    out = tmp_path / "out"
    result = cli("preprocess", "--data", dicom_cohort, "--out", out, "--dicom-seg")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "cases.csv", dtype={"case_id": str}).set_index("case_id")
    assert list(table.index) == sorted(CASES) and table["time"].notna().all()
    for case in CASES:
        qc = json.loads((out / "cases" / case / "qc.json").read_text())
        assert qc["mask_format"] == ("DICOM SEG" if case == CASES[1] else "RTSTRUCT")
        _, labels, _ = sample_arrays(case)
        present = {
            "blood": 1,
            "myocardium": 1,
            "scar": int((labels == SCAR).any()),
            "noreflow": int((labels == 4).any()),
        }
        assert qc["mask_structures"] == {key: n for key, n in present.items() if n}
        for key in QC_NUMBERS:
            assert table.loc[case, key] == pytest.approx(nifti_route.loc[case, key], abs=1e-3), (case, key)
        assert (table.loc[case, "scar_percent"] > 0) == (case != "synth-0003")
        # the SEG: on the scan's own slices, the scar is the reader's scar and no-reflow labels (label method),
        # and scar and grey zone hold the voxel counts behind the QC percentages
        segments = seg_pixels(out / "cases" / case / SEG_FILE, dicom_cohort / case)
        assert set(segments) == {name for name, _ in SEGMENTS}
        np.testing.assert_array_equal(segments["Scar"], np.isin(labels, (SCAR, NOREFLOW)))
        myocardium = int(np.isin(labels, (MYOCARDIUM, SCAR, NOREFLOW)).sum())
        assert 100 * segments["Grey zone"].sum() / myocardium == pytest.approx(qc["greyzone_percent"], abs=1e-3)
        assert not (segments["Grey zone"] & segments["Scar"]).any()
        assert not (segments["Grey zone"] & ~np.isin(labels, (MYOCARDIUM, SCAR, NOREFLOW))).any()
    rerun = cli("preprocess", "--data", dicom_cohort, "--out", out, "--dicom-seg")
    assert rerun.exit_code == 0 and "0 done, 3 already done" in rerun.output


def test_seg_reads_back_to_the_source_labels_of_a_series_stored_apex_first(tmp_path: Path) -> None:
    """Slices stored apex first are flipped for processing and flipped back for the SEG."""
    image, labels, spacing = sample_arrays("synth-0005")
    series = tmp_path / "P"
    grid = write_series(series, image[::-1], spacing, key="apex first")
    mask = write_rtstruct(tmp_path / "rt.dcm", series, labels[::-1], grid)
    result = preprocess_case(Case("P", series, mask), PreprocessConfig())
    assert result.qc["slices_flipped"] is True and result.source_labels is not None
    np.testing.assert_array_equal(np.isin(result.source_labels, (SCAR, NOREFLOW)), labels[::-1] == SCAR)
    from lgerisk.io.dicom_seg import write_scar_seg

    path = write_scar_seg(tmp_path / "seg.dcm", series, result.source_labels, result.qc["scar_method"])
    segments = seg_pixels(path, series)
    np.testing.assert_array_equal(segments["Scar"], np.isin(result.source_labels, (SCAR, NOREFLOW)))
    np.testing.assert_array_equal(segments["Grey zone"], result.source_labels == GREYZONE)
    assert segments["Grey zone"].any()


@pytest.mark.parametrize(("order", "flip"), [((0, 1, 2), True), ((2, 0, 1), False), ((1, 2, 0), True)])
def test_source_grid_labels_undo_the_canonical_orientation(order: tuple[int, int, int], flip: bool) -> None:
    rng = np.random.default_rng(1)
    source = sitk.GetImageFromArray(rng.integers(0, 6, (3, 4, 5)).astype(np.uint8))
    canonical = sitk.PermuteAxes(source, list(order))
    if flip:
        canonical = sitk.Flip(canonical, [False, False, True])
    back = source_grid_labels(sitk.GetArrayFromImage(canonical), geometry.Reorientation(order, flip))
    np.testing.assert_array_equal(back, sitk.GetArrayFromImage(source))


def test_the_seg_keeps_only_what_it_must_reference(dicom_cohort: Path, tmp_path: Path, cli) -> None:
    import pydicom

    out = tmp_path / "out"
    assert cli("preprocess", "--data", dicom_cohort, "--out", out, "--dicom-seg", "--crop", 64).exit_code == 0
    for case in CASES:
        seg = pydicom.dcmread(out / "cases" / case / SEG_FILE)
        source = series_headers(dicom_cohort / case)[0]
        assert seg.Modality == "SEG" and seg.Manufacturer == "lgerisk"
        assert seg.StudyInstanceUID == source.StudyInstanceUID
        assert seg.FrameOfReferenceUID == source.FrameOfReferenceUID
        assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == source.SeriesInstanceUID
        assert seg.SeriesInstanceUID != source.SeriesInstanceUID
        for keyword in EMPTIED_ATTRIBUTES:
            assert str(seg.get(keyword, "")) == "", keyword
        for keyword in ("InstitutionName", "PatientAge", "OtherPatientIDs", "IssuerOfPatientID"):
            assert keyword not in seg
        raw = (out / "cases" / case / SEG_FILE).read_bytes()
        for value in PATIENT.values():  # PatientSex 'F' is one byte: checked as an attribute above
            assert len(value) < 4 or value.encode() not in raw, value
        # the same result gets the same UIDs (a rerun does not make a new series in the viewer)
        again = tmp_path / "again"
        if case == CASES[0]:
            cli("preprocess", "--data", dicom_cohort, "--out", again, "--dicom-seg", "--crop", 64)
            assert pydicom.dcmread(again / "cases" / case / SEG_FILE).SOPInstanceUID == seg.SOPInstanceUID


def test_dicom_seg_flags_and_resume(dicom_cohort: Path, tmp_path: Path, cli) -> None:
    out = tmp_path / "out"
    both = cli("preprocess", "--data", dicom_cohort, "--out", out, "--dicom-seg", "--anonymise")
    assert both.exit_code == 2
    assert "--anonymise writes no DICOM at all, so it cannot go with --dicom-seg" in " ".join(both.output.split())
    assert not out.exists()
    plain = cli("preprocess", "--data", dicom_cohort, "--out", out, "--anonymise", "--crop", 64)
    assert plain.exit_code == 0 and not list(out.rglob("*.dcm"))
    seg = cli("preprocess", "--data", dicom_cohort, "--out", out, "--dicom-seg", "--crop", 64)
    assert seg.exit_code == 0 and "3 done, 0 already done" in seg.output  # redone for their SEGs
    assert len(list(out.rglob(SEG_FILE))) == 3
    again = cli("preprocess", "--data", dicom_cohort, "--out", out, "--crop", 64)
    assert again.exit_code == 0 and "0 done, 3 already done" in again.output
    nifti = cli("preprocess", "--data", SAMPLE_DATA, "--out", tmp_path / "nifti", "--dicom-seg")
    assert nifti.exit_code == 2
    assert "no scan here is a DICOM series folder" in " ".join(nifti.output.split())


def test_a_seg_without_scar_or_grey_zone_still_reads_back(tmp_path: Path) -> None:
    from lgerisk.io.dicom_seg import write_scar_seg

    image, labels, spacing = sample_arrays("synth-0003")
    series = tmp_path / "P"
    write_series(series, image, spacing, key="scar free")
    source = np.where(np.isin(labels, (SCAR, NOREFLOW)), MYOCARDIUM, labels).astype(np.uint8)
    segments = seg_pixels(write_scar_seg(tmp_path / "seg.dcm", series, source, "fwhm"), series)
    assert set(segments) == {"Scar", "Grey zone"} and not any(mask.any() for mask in segments.values())
    assert segments["Scar"].shape == labels.shape
