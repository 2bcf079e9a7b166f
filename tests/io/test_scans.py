"""Unit tests of lgerisk.io.scans: file names, reading volumes, voxel arrays and geometry checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from lgerisk.errors import CaseError
from lgerisk.io.scans import (
    GeometryTolerance,
    check_same_geometry,
    image_array,
    is_scan_file,
    label_array,
    read_volume,
    scan_stem,
)
from tests.helpers import phantom_arrays, write_volume

SPACING = (1.5, 1.25, 8.0)


def _image(array: np.ndarray, spacing=SPACING, origin=(0.0, 0.0, 0.0), direction=None) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    if direction is not None:
        image.SetDirection(direction)
    return image


# --- scan_stem / is_scan_file ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "stem"),
    [
        ("images/P01.nii.gz", "P01"),
        ("P01.nii", "P01"),
        ("a/b/P01.NII.GZ", "P01"),
        ("P01.nrrd", "P01"),
        ("P01.nhdr", "P01"),
        ("P01.mha", "P01"),
        ("P01.mhd", "P01"),
        ("case.v2.nii.gz", "case.v2"),
        ("P01", "P01"),  # a DICOM folder keeps its name
        ("notes.txt", "notes.txt"),
    ],
)
def test_scan_stem(path: str, stem: str) -> None:
    assert scan_stem(path) == stem
    assert scan_stem(Path(path)) == stem


def test_is_scan_file(tmp_path: Path) -> None:
    for name in ("a.nii.gz", "b.nii", "c.nrrd", "d.mha", "e.MHD"):
        (tmp_path / name).write_bytes(b"x")
        assert is_scan_file(tmp_path / name), name
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "folder.nii.gz").mkdir()
    assert not is_scan_file(tmp_path / "notes.txt")
    assert not is_scan_file(tmp_path / "folder.nii.gz")  # a folder is not a volume file
    assert not is_scan_file(tmp_path / "missing.nii.gz")


# --- read_volume ---------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz", ".nrrd", ".mha"])
def test_read_volume_formats_keep_values_and_geometry(tmp_path: Path, suffix: str) -> None:
    array, _ = phantom_arrays(slices=4, size=32)
    path = write_volume(tmp_path / f"scan{suffix}", array, spacing=SPACING)
    image = read_volume(path)
    assert image.GetDimension() == 3
    assert image.GetSize() == (32, 32, 4)
    assert np.allclose(image.GetSpacing(), SPACING)
    assert image.GetNumberOfComponentsPerPixel() == 1
    np.testing.assert_allclose(sitk.GetArrayFromImage(image), array, rtol=1e-6)
    assert list(image.GetMetaDataKeys()) == []  # no header values travel on


def test_read_volume_accepts_str_path(tmp_path: Path) -> None:
    array, _ = phantom_arrays(slices=3, size=16)
    path = write_volume(tmp_path / "scan.nii.gz", array)
    assert read_volume(str(path)).GetSize() == (16, 16, 3)


def test_read_volume_drops_header_metadata(tmp_path: Path) -> None:
    image = _image(np.zeros((3, 8, 8), np.float32))
    image.SetMetaData("PatientName", "Doe^Jane")
    sitk.WriteImage(image, str(tmp_path / "scan.nrrd"))
    assert "PatientName" in sitk.ReadImage(str(tmp_path / "scan.nrrd")).GetMetaDataKeys()  # the file holds it
    assert list(read_volume(tmp_path / "scan.nrrd").GetMetaDataKeys()) == []


def test_read_volume_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CaseError, match=r"nothere\.nii\.gz: mask file does not exist"):
        read_volume(tmp_path / "nothere.nii.gz", "mask")


def test_read_volume_refuses_2d(tmp_path: Path) -> None:
    path = write_volume(tmp_path / "flat.nii.gz", np.zeros((16, 16), np.float32), spacing=(1.0, 1.0))
    with pytest.raises(CaseError, match=r"flat\.nii\.gz: image is 2D"):
        read_volume(path)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_read_volume_refuses_4d(tmp_path: Path, suffix: str) -> None:
    volume = _image(np.zeros((3, 8, 8), np.float32))
    sitk.WriteImage(sitk.JoinSeries([volume, volume]), str(tmp_path / f"cine{suffix}"))
    with pytest.raises(CaseError, match=r"cine.*: mask is 4D \(size \(8, 8, 3, 2\)\)"):
        read_volume(tmp_path / f"cine{suffix}", "mask")


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_read_volume_accepts_4d_with_one_frame(tmp_path: Path, suffix: str) -> None:
    array = np.arange(3 * 8 * 8, dtype=np.float32).reshape(3, 8, 8)
    sitk.WriteImage(sitk.JoinSeries([_image(array)]), str(tmp_path / f"one{suffix}"))
    image = read_volume(tmp_path / f"one{suffix}")
    assert image.GetDimension() == 3 and image.GetSize() == (8, 8, 3)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), array)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_read_volume_refuses_vector_images(tmp_path: Path, suffix: str) -> None:
    rgb = sitk.GetImageFromArray(np.zeros((3, 8, 8, 3), np.uint8), isVector=True)
    sitk.WriteImage(rgb, str(tmp_path / f"rgb{suffix}"))
    with pytest.raises(CaseError, match=r"rgb.*: image has 3 components per voxel"):
        read_volume(tmp_path / f"rgb{suffix}")


def test_read_volume_refuses_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "noise.nii.gz"
    path.write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(CaseError, match=r"noise\.nii\.gz: image could not be read"):
        read_volume(path)


def test_read_volume_refuses_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.nii.gz"
    path.write_bytes(b"")
    with pytest.raises(CaseError, match=r"empty\.nii\.gz: image could not be read"):
        read_volume(path)


def _truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_read_volume_refuses_truncated_nrrd(tmp_path: Path) -> None:
    array, _ = phantom_arrays(slices=4, size=32)
    path = _truncate(write_volume(tmp_path / "cut.nrrd", array))
    with pytest.raises(CaseError, match=r"cut\.nrrd: image could not be read"):
        read_volume(path)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_read_volume_refuses_truncated_nifti(tmp_path: Path, suffix: str) -> None:
    array, _ = phantom_arrays(slices=4, size=32)
    path = _truncate(write_volume(tmp_path / f"cut{suffix}", array))
    with pytest.raises(CaseError, match=r"cut\.nii.*: image could not be read"):
        read_volume(path)


# --- image_array / label_array --------------------------------------------------------------------


def test_image_array_is_float32_zyx() -> None:
    array = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)
    values = image_array(_image(array), "scan.nii.gz")
    assert values.dtype == np.float32 and values.shape == (2, 3, 4)
    np.testing.assert_array_equal(values, array.astype(np.float32))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_image_array_refuses_non_finite(bad: float) -> None:
    array = np.ones((2, 3, 4), np.float32)
    array[1, 2, 3] = bad
    array[0, 0, 0] = bad
    with pytest.raises(CaseError, match=r"^scan\.nii\.gz: image has 2 NaN or infinite voxels\.$"):
        image_array(_image(array), "scan.nii.gz")


@pytest.mark.parametrize("suffix", [".nrrd", ".mha"])
def test_non_finite_voxels_survive_reading(tmp_path: Path, suffix: str) -> None:
    array, _ = phantom_arrays(slices=3, size=16)
    array[1, 5, 5], array[2, 6, 6] = np.nan, np.inf
    path = write_volume(tmp_path / f"scan{suffix}", array)
    with pytest.raises(CaseError, match=r"scan\.(nrrd|mha): image has 2 NaN or infinite voxels"):
        image_array(read_volume(path), path)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_non_finite_voxels_in_nifti_are_refused(tmp_path: Path, suffix: str) -> None:
    array, _ = phantom_arrays(slices=3, size=16)
    array[1, 5, 5], array[2, 6, 6] = np.nan, np.inf
    path = write_volume(tmp_path / f"scan{suffix}", array)
    with pytest.raises(CaseError, match=r"NaN or infinite"):
        image_array(read_volume(path), path)


def test_label_array_casts_float_labels() -> None:
    array = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 2.0000001], np.float64).reshape(1, 2, 3)
    labels = label_array(_image(array), "mask.nii.gz")
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels.ravel(), [0, 1, 2, 3, 4, 2])


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.float32])
def test_label_array_any_pixel_type(dtype: type) -> None:
    array = np.array([0, 1, 2, 3, 200, 0], dtype=dtype).reshape(1, 2, 3)
    labels = label_array(_image(array), "mask.nii.gz")
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels.ravel(), [0, 1, 2, 3, 200, 0])


def test_label_array_refuses_non_integer() -> None:
    array = np.array([0.0, 1.0, 2.5], np.float32).reshape(1, 1, 3)
    with pytest.raises(CaseError, match=r"^mask\.nii\.gz: mask holds non-integer values"):
        label_array(_image(array), "mask.nii.gz")


def test_label_array_refuses_nan() -> None:
    array = np.array([0.0, 1.0, np.nan], np.float32).reshape(1, 1, 3)
    with pytest.raises(CaseError, match=r"^mask\.nii\.gz: mask has NaN or infinite voxels"):
        label_array(_image(array), "mask.nii.gz")


# --- check_same_geometry -----------------------------------------------------------------------------

OBLIQUE = (0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0)


def _pair(**mask_geometry):
    base = {"spacing": SPACING, "origin": (10.0, -20.0, 30.0), "direction": OBLIQUE}
    image = _image(np.zeros((4, 10, 12), np.float32), **base)
    shape = mask_geometry.pop("shape", (4, 10, 12))
    mask = _image(np.zeros(shape, np.uint8), **{**base, **mask_geometry})
    return image, mask


def test_check_same_geometry_accepts_identical() -> None:
    image, mask = _pair()
    check_same_geometry(image, mask, "masks/P01.nii.gz")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"shape": (4, 10, 13)}, r"mask size \(13, 10, 4\) differs from its image's \(12, 10, 4\)"),
        ({"shape": (5, 10, 12)}, r"mask size .* differs"),
        (
            {"spacing": (1.5, 1.25, 10.0)},
            r"mask spacing \(1\.5, 1\.25, 10\) differs from its image's \(1\.5, 1\.25, 8\)",
        ),
        ({"spacing": (1.52, 1.25, 8.0)}, r"mask spacing .* differs"),
        ({"origin": (10.0, -20.0, 38.0)}, r"mask origin .* differs"),
        ({"origin": (10.5, -20.0, 30.0)}, r"mask origin .* differs"),
        ({"direction": (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)}, r"mask orientation .* differs"),
        ({"direction": (0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)}, r"mask orientation .* differs"),
    ],
)
def test_check_same_geometry_refuses_mismatch(change: dict, message: str) -> None:
    image, mask = _pair(**change)
    with pytest.raises(CaseError, match=r"^masks/P01\.nii\.gz: " + message):
        check_same_geometry(image, mask, "masks/P01.nii.gz")


def test_check_same_geometry_says_the_tolerance_it_exceeded() -> None:
    """1.25 mm is the smallest voxel spacing: the origin may be 0.0125 mm off (0.01 mm is), not 0.02 mm."""
    image, mask = _pair(origin=(10.01, -20.0, 30.0))
    check_same_geometry(image, mask, "masks/P01.nii.gz")
    image, mask = _pair(origin=(10.02, -20.0, 30.0))
    with pytest.raises(CaseError, match=r"by more than 0\.0125 mm \(1 % of a voxel\) on an axis\.$"):
        check_same_geometry(image, mask, "masks/P01.nii.gz")
    image, mask = _pair(spacing=(1.5, 1.25, 8.1))
    with pytest.raises(CaseError, match=r"by more than 0\.1 % on an axis\.$"):
        check_same_geometry(image, mask, "masks/P01.nii.gz")
    image, mask = _pair(direction=(0.002, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    with pytest.raises(CaseError, match=r"by more than 0\.001 in a cosine\.$"):
        check_same_geometry(image, mask, "masks/P01.nii.gz")


def test_check_same_geometry_names_path_object() -> None:
    image, mask = _pair(spacing=(3.0, 3.0, 8.0))
    with pytest.raises(CaseError, match=r"P02\.nrrd"):
        check_same_geometry(image, mask, Path("masks") / "P02.nrrd")


def test_check_same_geometry_accepts_tiny_differences() -> None:
    # float32 round-off of a NIfTI header: far below a thousandth of a voxel
    eps = 1e-6
    rotated = (eps, 1.0, 0.0, -1.0, eps, 0.0, 0.0, 0.0, 1.0)
    image, mask = _pair(
        spacing=(1.5 + eps, 1.25 - eps, 8.0 + eps), origin=(10.0 + 1e-4, -20.0 - 1e-4, 30.0), direction=rotated
    )
    check_same_geometry(image, mask, "masks/P01.nii.gz")
    check_same_geometry(mask, image, "masks/P01.nii.gz")


def test_check_same_geometry_tolerance_is_adjustable() -> None:
    image, mask = _pair(spacing=(1.51, 1.25, 8.0))
    with pytest.raises(CaseError, match="spacing"):
        check_same_geometry(image, mask, "m.nii.gz")
    check_same_geometry(image, mask, "m.nii.gz", GeometryTolerance(spacing_fraction=0.01))


def test_check_same_geometry_after_nifti_round_trip(tmp_path: Path) -> None:
    """A mask written beside its image (NIfTI stores float32 geometry) passes against it."""
    image = _image(
        np.zeros((4, 10, 12), np.float32),
        spacing=(1.40625, 1.40625, 13.0),
        origin=(-123.456789, 87.654321, -45.0),
        direction=OBLIQUE,
    )
    mask = sitk.Cast(image, sitk.sitkUInt8)
    sitk.WriteImage(image, str(tmp_path / "image.nii.gz"))
    sitk.WriteImage(mask, str(tmp_path / "mask.nii.gz"))
    check_same_geometry(
        read_volume(tmp_path / "image.nii.gz"), read_volume(tmp_path / "mask.nii.gz", "mask"), tmp_path / "mask.nii.gz"
    )
    check_same_geometry(image, read_volume(tmp_path / "mask.nii.gz", "mask"), tmp_path / "mask.nii.gz")


# --- the real EMIDEC scans ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "size", "spacing", "present"),
    [
        ("samplePositive", (248, 258, 7), 13.0, {0, 1, 2, 3, 4}),
        ("sampleNegative", (148, 246, 9), 10.0, {0, 1, 2}),
    ],
)
def test_emidec_scans_read(emidec: Path, case: str, size: tuple, spacing: float, present: set) -> None:
    image_path = emidec / case / "Images" / f"{case}.nii.gz"
    mask_path = emidec / case / "Contours" / f"{case}.nii.gz"
    image, mask = read_volume(image_path), read_volume(mask_path, "mask")
    assert image.GetSize() == size and mask.GetSize() == size
    assert abs(image.GetSpacing()[2] - spacing) < 1e-3
    assert list(image.GetMetaDataKeys()) == []
    check_same_geometry(image, mask, mask_path)
    values = image_array(image, image_path)
    assert values.dtype == np.float32 and values.shape == size[::-1]
    labels = label_array(mask, mask_path)  # EMIDEC stores labels as float64
    assert labels.dtype == np.int32
    assert set(np.unique(labels).tolist()) == present


# --- NIfTI voxels decoded once -------------------------------------------------------------------


def _as_itk_reads(path: Path) -> sitk.Image:
    image = sitk.ReadImage(str(path))
    for key in image.GetMetaDataKeys():
        image.EraseMetaData(key)
    return image[:, :, :, 0] if image.GetDimension() == 4 else image


def _assert_same_image(ours: sitk.Image, itk: sitk.Image, path: Path) -> None:
    assert ours.GetPixelID() == itk.GetPixelID(), path
    assert ours.GetSize() == itk.GetSize(), path
    assert ours.GetOrigin() == itk.GetOrigin(), path
    assert ours.GetSpacing() == itk.GetSpacing(), path
    assert ours.GetDirection() == itk.GetDirection(), path
    assert sitk.GetArrayViewFromImage(ours).tobytes() == sitk.GetArrayViewFromImage(itk).tobytes(), path


def _oblique_direction() -> tuple[float, ...]:
    angle = 0.3
    c, s = np.cos(angle), np.sin(angle)
    return (c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0)


@pytest.mark.parametrize(
    "dtype", [np.int16, np.uint8, np.float32, np.float64, np.int32, np.uint16, np.int8, np.int64, np.uint32]
)
@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_nifti_read_once_is_what_itk_reads(tmp_path: Path, dtype: type, suffix: str) -> None:
    """The voxels lgerisk decodes itself, with ITK's header geometry, make the image ITK reads, bit for bit."""
    rng = np.random.default_rng(3)
    values = (rng.random((5, 7, 9)) * 100).astype(dtype)
    path = tmp_path / f"scan{suffix}"
    sitk.WriteImage(_image(values, origin=(3.5, -2.0, 11.0), direction=_oblique_direction()), str(path))
    _assert_same_image(read_volume(path), _as_itk_reads(path), path)
    _assert_same_image(read_volume(path, verify_nifti=False), _as_itk_reads(path), path)


def _rewrite_header(path: Path, out: Path, change: dict[int, bytes], big_endian: bool = False) -> None:
    """A copy of an uncompressed NIfTI-1 ``path`` with header bytes replaced (offset -> bytes)."""
    import struct

    data = bytearray(path.read_bytes())
    for offset, value in change.items():
        data[offset : offset + len(value)] = value
    if big_endian:  # every header field and voxel byte-swapped (int16 voxels)
        header = bytearray(data[:352])
        fields = "i10s18sihcc8h3f4h8f3fhcc4f2i80s24s2h6f12f16s4s"  # the NIfTI-1 header, 348 bytes
        values = struct.unpack("<" + fields, bytes(header[:348]))
        header[:348] = struct.pack(">" + fields, *values)
        voxels = np.frombuffer(bytes(data[352:]), dtype="<i2").astype(">i2")
        data = header + voxels.tobytes()
    out.write_bytes(bytes(data))


def test_nifti_read_once_falls_back_to_itk_where_itk_transforms(tmp_path: Path) -> None:
    """Scaled intensities (scl_slope/scl_inter) and a 4D file with one frame are decoded by ITK (it rescales,
    it keeps the frame axis); a big-endian file is byte-swapped. Each reads as ITK reads it."""
    import struct

    values = np.arange(5 * 7 * 9, dtype=np.int16).reshape(5, 7, 9)
    plain = tmp_path / "plain.nii"
    sitk.WriteImage(_image(values), str(plain))
    scaled = tmp_path / "scaled.nii"
    _rewrite_header(plain, scaled, {112: struct.pack("<2f", 2.5, -3.0)})
    big = tmp_path / "big.nii"
    _rewrite_header(plain, big, {}, big_endian=True)
    frame = tmp_path / "frame.nii.gz"
    sitk.WriteImage(sitk.JoinSeries([_image(values)]), str(frame))
    for path in (scaled, big, frame):
        _assert_same_image(read_volume(path), _as_itk_reads(path), path)
    assert sitk.GetArrayFromImage(read_volume(scaled)).dtype == np.float32  # ITK's rescaling kept
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_volume(big)), values)


def test_nifti_read_once_on_every_real_scan(emidec: Path, myops_dev: Path) -> None:
    """Every real scan and mask at hand (EMIDEC, MyoPS) reads as ITK reads it."""
    paths = sorted(emidec.rglob("*.nii.gz")) + sorted(myops_dev.rglob("*.nii.gz"))
    assert len(paths) >= 30
    for path in paths:
        what = "mask" if "mask" in str(path).lower() else "image"
        _assert_same_image(read_volume(path, what), _as_itk_reads(path), path)


def test_nifti_read_once_on_synthetic_scans(tmp_path: Path) -> None:
    """The generator's scans and masks read as ITK reads them."""
    from lgerisk.synth import SynthConfig, generate_cohort

    folder = tmp_path / "synth"
    generate_cohort(folder, SynthConfig(n_cases=2, seed=4, small=True))
    paths = sorted(folder.rglob("*.nii.gz"))
    assert len(paths) == 4
    for path in paths:
        _assert_same_image(read_volume(path), _as_itk_reads(path), path)


def test_nifti_voxels_are_decoded_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain NIfTI volume never reaches ITK's voxel decoding (only its header is read); a scaled one does."""
    import struct

    values = np.arange(5 * 7 * 9, dtype=np.int16).reshape(5, 7, 9)
    plain = tmp_path / "plain.nii"
    sitk.WriteImage(_image(values), str(plain))
    scaled = tmp_path / "scaled.nii"
    _rewrite_header(plain, scaled, {112: struct.pack("<2f", 2.5, -3.0)})
    decoded: list[str] = []
    execute = sitk.ImageFileReader.Execute

    def spy(self: sitk.ImageFileReader) -> sitk.Image:
        decoded.append(Path(self.GetFileName()).name)
        return execute(self)

    monkeypatch.setattr(sitk.ImageFileReader, "Execute", spy)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_volume(plain)), values)
    assert decoded == []
    read_volume(scaled)
    assert decoded == ["scaled.nii"]


def test_nifti_read_once_matches_itk_on_odd_headers_and_values(tmp_path: Path) -> None:
    """A voxel offset inside the header (ITK's NIfTI library reads from the header's end), and NaN/inf voxels
    read without verification (ITK makes them 0) give the image ITK reads; a voxel offset that is no number is
    not decoded here, and the file still reads (as ITK reads it) or is refused in one sentence."""
    import struct

    from lgerisk.io.provenance import header_marked

    values = np.arange(5 * 7 * 9, dtype=np.int16).reshape(5, 7, 9)
    plain = tmp_path / "plain.nii"
    sitk.WriteImage(_image(values), str(plain))
    inside = tmp_path / "inside.nii"
    _rewrite_header(plain, inside, {108: struct.pack("<f", 0.0)})
    _assert_same_image(read_volume(inside), _as_itk_reads(inside), inside)
    assert sitk.GetArrayFromImage(read_volume(inside)).ravel()[0] == 0  # not the header's first bytes (348)

    floats = np.linspace(0, 1, 5 * 7 * 9, dtype=np.float32).reshape(5, 7, 9)
    floats[0, 0, :2] = (np.nan, np.inf)
    odd = tmp_path / "odd.nii.gz"
    sitk.WriteImage(_image(floats), str(odd))
    _assert_same_image(read_volume(odd, verify_nifti=False), _as_itk_reads(odd), odd)
    assert sitk.GetArrayFromImage(read_volume(odd, verify_nifti=False))[0, 0, :2].tolist() == [0.0, 0.0]
    with pytest.raises(CaseError, match="2 NaN or infinite voxels"):
        read_volume(odd)

    nan_offset = tmp_path / "nan-offset.nii"
    _rewrite_header(plain, nan_offset, {108: struct.pack("<f", float("nan"))})
    assert not header_marked(nan_offset)
    try:
        image = read_volume(nan_offset)
    except CaseError as exc:
        assert str(exc).startswith(f"{nan_offset}: image could not be read")
    else:
        _assert_same_image(image, _as_itk_reads(nan_offset), nan_offset)
