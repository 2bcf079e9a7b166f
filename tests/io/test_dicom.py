"""DICOM series: read without their headers, and no patient identifier reaches any output file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from lgerisk.errors import CaseError
from lgerisk.io.cohort import discover_cohort
from lgerisk.io.scans import read_dicom_series, read_volume
from tests.helpers import phantom_arrays
from tests.helpers.dicom import MORE_SECRETS, SECRETS, all_leaks, dicom_case, leaks

STUDY_UID = "1.2.826.0.1.3680043.2.1125.4711.1"
SERIES_UID = "1.2.826.0.1.3680043.2.1125.4711.1.1"
IDENTIFIERS = {
    "0010|0010": "Doe^Jane",  # PatientName
    "0010|0020": "SECRET-4711",  # PatientID
    "0010|0030": "19500101",  # PatientBirthDate
    "0008|0080": "St Example",  # InstitutionName
}
SPACING = (1.5, 1.5, 8.0)
ORIGIN = (-40.0, -30.0, 12.5)


def write_dicom_series(
    folder: Path, array: np.ndarray, spacing=SPACING, origin=ORIGIN, series_uid: str = SERIES_UID, prefix: str = "IM"
) -> sitk.Image:
    """Write a (z, y, x) array as one DICOM file per slice (SimpleITK's "Dicom Series From Array" recipe).

    Returns the 3D image whose geometry the series carries (for writing a matching mask).
    """
    folder.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(np.rint(array).astype(np.int16))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    d = image.GetDirection()
    tags = {
        **IDENTIFIERS,
        "0020|000d": STUDY_UID,  # StudyInstanceUID
        "0020|000e": series_uid,  # SeriesInstanceUID
        "0008|0060": "MR",  # Modality
        "0008|0008": "DERIVED\\SECONDARY",  # ImageType
        "0020|0037": "\\".join(str(v) for v in (d[0], d[3], d[6], d[1], d[4], d[7])),  # ImageOrientationPatient
        "0028|0030": f"{spacing[1]}\\{spacing[0]}",  # PixelSpacing (row\column)
        "0018|0050": str(spacing[2]),
    }  # SliceThickness
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(image.GetDepth()):
        plane = image[:, :, k]
        for key, value in tags.items():
            plane.SetMetaData(key, value)
        plane.SetMetaData("0020|0032", "\\".join(str(v) for v in image.TransformIndexToPhysicalPoint((0, 0, k))))
        plane.SetMetaData("0020|0013", str(k + 1))  # InstanceNumber
        plane.SetMetaData("0008|0018", f"{series_uid}.{k + 1}")  # SOPInstanceUID
        writer.SetFileName(str(folder / f"{prefix}{k:04d}.dcm"))
        writer.Execute(plane)
    return image


@pytest.fixture
def dicom_folder(tmp_path: Path) -> Path:
    array, _ = phantom_arrays(slices=5, size=48)
    write_dicom_series(tmp_path / "P01", array)
    return tmp_path / "P01"


def test_the_written_series_holds_the_identifiers(dicom_folder: Path) -> None:
    """Sanity check of the fixture: the identifiers really are in the source files."""
    raw = b"".join(path.read_bytes() for path in dicom_folder.iterdir())
    assert all(secret in raw for secret in SECRETS)
    assert len(list(dicom_folder.glob("*.dcm"))) == 5


@pytest.mark.parametrize("reader", [read_volume, read_dicom_series])
def test_read_dicom_series_geometry_and_no_metadata(dicom_folder: Path, reader) -> None:
    image = reader(dicom_folder)
    assert image.GetDimension() == 3
    assert image.GetSize() == (48, 48, 5)
    assert np.allclose(image.GetSpacing(), SPACING)
    assert np.allclose(image.GetOrigin(), ORIGIN)
    assert np.allclose(image.GetDirection(), np.eye(3).ravel())
    assert list(image.GetMetaDataKeys()) == []
    array, _ = phantom_arrays(slices=5, size=48)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), np.rint(array).astype(np.int16))


def test_two_series_in_one_folder_are_refused(dicom_folder: Path) -> None:
    array, _ = phantom_arrays(slices=3, size=48, seed=1)
    write_dicom_series(dicom_folder, array, series_uid=SERIES_UID + ".2", prefix="B")
    with pytest.raises(CaseError, match=r"P01: folder holds 2 DICOM series; put one series per folder"):
        read_volume(dicom_folder)


def test_folder_without_dicom_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(CaseError, match=r"empty: folder holds no DICOM series"):
        read_volume(tmp_path / "empty")


def _dicom_cohort(root: Path) -> Path:
    """A cohort folder: P01/ (one DICOM series) + masks/P01.nii.gz + outcomes.csv."""
    array, labels = phantom_arrays(slices=5, size=48)
    geometry = write_dicom_series(root / "P01", array)
    mask = sitk.GetImageFromArray(labels)
    mask.CopyInformation(geometry)
    (root / "masks").mkdir()
    sitk.WriteImage(mask, str(root / "masks" / "P01.nii.gz"))
    (root / "outcomes.csv").write_text("case_id,time,event\nP01,3.5,1\n")
    return root


def test_discover_dicom_cohort(tmp_path: Path) -> None:
    root = _dicom_cohort(tmp_path / "cohort")
    cohort = discover_cohort(root)
    assert cohort.layout == "dicom"
    (case,) = cohort.cases
    assert case.case_id == "P01" and case.image == root / "P01" and case.mask == root / "masks" / "P01.nii.gz"
    assert (case.time, case.event) == (3.5, 1)


def test_leak_check_reads_a_report_s_text_and_not_chance_bytes_of_its_images(tmp_path: Path) -> None:
    """A name in an HTML report's text is found; three letters that turn up by chance inside an embedded
    (base64) image or a PNG are not a leak, the whole name there is."""
    import base64

    chance = base64.b64encode(b"\x0e\x87\x9e" * 10).decode()  # base64 text that reads "Doe" by chance
    assert "Doe" in chance
    (tmp_path / "clean.html").write_text(f'<p>risk</p><img src="data:image/png;base64,{chance}">')
    (tmp_path / "chance.png").write_bytes(b"\x89PNG" + b"Doe" * 3)
    assert leaks(tmp_path / "clean.html") == [] and leaks(tmp_path / "chance.png") == []
    (tmp_path / "leaky.html").write_text(f'<p>Patient Doe</p><img src="data:image/png;base64,{chance}">')
    assert leaks(tmp_path / "leaky.html") == [f"b'Doe' in {tmp_path / 'leaky.html'}"]
    (tmp_path / "named.png").write_bytes(b"\x89PNG Doe^Jane")
    assert f"b'Doe^Jane' in {tmp_path / 'named.png'}" in leaks(tmp_path / "named.png")


def test_leak_check_sees_a_nifti_header_field(tmp_path: Path) -> None:
    """The byte scan below is not vacuous: a name in a .nii.gz header's description is found."""
    image = sitk.GetImageFromArray(np.zeros((2, 4, 4), np.float32))
    image.SetMetaData("ITK_FileNotes", "Doe^Jane")
    sitk.WriteImage(image, str(tmp_path / "leaky.nii.gz"))
    assert any("NIfTI header" in leak for leak in leaks(tmp_path / "leaky.nii.gz"))


def test_preprocess_writes_no_identifier(tmp_path: Path, cli) -> None:
    root = _dicom_cohort(tmp_path / "cohort")
    out = tmp_path / "out"
    result = cli("preprocess", "--data", root, "--out", out, "--crop", 48)
    assert result.exit_code == 0, result.output
    assert (out / "cases" / "P01" / "qc.json").is_file()
    qc = json.loads((out / "cases" / "P01" / "qc.json").read_text())
    assert qc["original_size"] == [48, 48, 5]
    assert qc["original_spacing_mm"] == list(SPACING)

    files = [path for path in out.rglob("*") if path.is_file()]
    assert {path.name for path in files} >= {"image.nii.gz", "mask.nii.gz", "qc.json", "cases.csv", "preprocess.json"}
    found = [leak for path in files for leak in leaks(path)]
    assert not found
    for secret in SECRETS:
        assert secret.decode() not in result.output


# --- DICOM SEG / RTSTRUCT masks in, DICOM SEG out: still no identifier in any output -------------------


def test_leak_check_sees_identifiers_in_a_dicom_file(tmp_path: Path) -> None:
    """The scan is not vacuous for DICOM outputs: the masks written as input carry the identifiers."""
    _, seg = dicom_case(tmp_path / "a", "synth-0001", "seg")
    _, rt = dicom_case(tmp_path / "b", "synth-0001", "rtstruct")
    for mask in (seg, rt):
        assert any("SECRET-4711" in leak for leak in all_leaks(mask.parent))
        assert any("ACC-4711" in leak for leak in all_leaks(mask.parent))


def test_preprocess_with_dicom_masks_and_seg_output_writes_no_identifier(tmp_path: Path, cli) -> None:
    root = tmp_path / "cohort"
    dicom_case(root, "synth-0001", "rtstruct")
    dicom_case(root, "synth-0002", "seg", inside=True)
    dicom_case(root, "synth-0004", "rtstruct", names={1: "LV blood pool", 2: "Wall", 3: "Scar"})  # fails
    out = tmp_path / "out"
    result = cli("preprocess", "--data", root, "--out", out, "--dicom-seg", "--crop", 48)
    assert result.exit_code == 1, result.output
    names = {path.name for path in out.rglob("*") if path.is_file()}
    assert {"scar_seg.dcm", "qc.json", "cases.csv", "errors.csv", "preprocess.json"} <= names
    assert len(list(out.rglob("scar_seg.dcm"))) == 2
    assert "'Wall'" in (out / "errors.csv").read_text()
    assert not all_leaks(out)
    for secret in SECRETS + MORE_SECRETS:
        assert secret.decode() not in result.output


def test_a_seg_needs_a_frame_of_reference(tmp_path: Path, cli) -> None:
    """A series without Frame of Reference UID (as SimpleITK writes it) gets no SEG: that case's error."""
    root = _dicom_cohort(tmp_path / "cohort")
    out = tmp_path / "out"
    result = cli("preprocess", "--data", root, "--out", out, "--crop", 48, "--dicom-seg")
    assert result.exit_code == 1
    error = (out / "errors.csv").read_text()
    assert "P01: the DICOM series has no Frame of Reference UID, which a DICOM SEG must reference" in error
    assert not list(out.rglob("*.dcm")) and not all_leaks(out)
