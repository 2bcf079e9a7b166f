"""Bad input through the CLI: one clear sentence naming the file, the right exit code, nothing half-written.

Cohort-level problems stop the command (exit 2) before any case is written. Per-case problems are
recorded in OUT/errors.csv while the other cases complete (exit 1); fixing the case and rerunning
finishes it alone (exit 0) and removes errors.csv.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from tests.helpers import assert_one_sentence, make_cohort, phantom_arrays, write_volume

GOOD = ("case0", "case1")
MYOPS = {1: 500, 2: 200, 3: 2221}


# --- checks shared by every test ---------------------------------------------------------------------


def assert_nothing_half_written(out: Path) -> None:
    """No case folder holds image/mask without its qc.json, and no temporary file is left anywhere."""
    if not out.exists():
        return
    for folder in (out / "cases").iterdir() if (out / "cases").is_dir() else []:
        names = {p.name for p in folder.iterdir()}
        if names & {"image.nii.gz", "mask.nii.gz"}:
            assert "qc.json" in names, f"{folder} is half-written: {sorted(names)}"
        assert names <= {"image.nii.gz", "mask.nii.gz", "qc.json"}, f"{folder}: {sorted(names)}"
    leftovers = [str(p) for p in out.rglob(".*.tmp*")]
    assert not leftovers, leftovers


# --- cohort-level problems: exit 2 -------------------------------------------------------------------


def _manifest(root: Path, body: str) -> Path:
    make_cohort(root, n=2, outcomes=False)
    (root / "manifest.csv").write_text(body)
    return root / "manifest.csv"


def _outcomes(root: Path, rows: str) -> Path:
    make_cohort(root, n=2, outcomes=False)
    (root / "outcomes.csv").write_text("case_id,time,event\n" + rows)
    return root


COHORT_PROBLEMS: dict[str, tuple[Callable[[Path], Path], tuple[str, ...], tuple[str, ...]]] = {
    # name: (build(root) -> --data, extra CLI args, strings the error must name)
    "manifest missing columns": (
        lambda root: _manifest(root, "case_id,image\ncase0,images/case0.nii.gz\n"),
        (),
        ("manifest.csv", "mask"),
    ),
    "manifest duplicate ids": (
        lambda root: _manifest(
            root,
            "case_id,image,mask\ncase0,images/case0.nii.gz,masks/case0.nii.gz\n"
            "case0,images/case1.nii.gz,masks/case1.nii.gz\n",
        ),
        (),
        ("manifest.csv", "'case0'", "more than once"),
    ),
    "manifest id is a path": (
        lambda root: _manifest(
            root,
            "case_id,image,mask\ncase0,images/case0.nii.gz,masks/case0.nii.gz\n"
            "../x,images/case1.nii.gz,masks/case1.nii.gz\n",
        ),
        (),
        ("manifest.csv", "'../x'"),
    ),
    "outcomes negative time": (
        lambda root: _outcomes(root, "case0,2.0,1\ncase1,-3,0\n"),
        (),
        ("outcomes.csv", "'case1'", "-3"),
    ),
    "outcomes event not 0/1": (
        lambda root: _outcomes(root, "case0,2.0,1\ncase1,3,2\n"),
        (),
        ("outcomes.csv", "'case1'", "event 2"),
    ),
    "missing --data": (lambda root: root / "no_such_cohort", (), ("no_such_cohort",)),
    "bad --labels": (lambda root: make_cohort(root, n=2), ("--labels", "blood=1,muscle=2"), ("--labels", "'muscle'")),
    "--shard 0/2": (lambda root: make_cohort(root, n=2), ("--shard", "0/2"), ("--shard", "0/2")),
    "--shard 3/2": (lambda root: make_cohort(root, n=2), ("--shard", "3/2"), ("--shard", "3/2")),
    "label scar without scar labels": (
        lambda root: make_cohort(root, n=2),
        ("--scar-method", "label", "--labels", "acdc"),
        ("--scar-method 'label'",),
    ),
}


@pytest.mark.parametrize("problem", list(COHORT_PROBLEMS))
def test_cohort_level_problem_exits_2(tmp_path: Path, cli, problem: str) -> None:
    build, args, names = COHORT_PROBLEMS[problem]
    data = build(tmp_path / "cohort")
    out = tmp_path / "out"
    result = cli("preprocess", "--data", data, "--out", out, *args)
    assert result.exit_code == 2, result.output
    assert_one_sentence(result.output, "error:", names)
    assert not (out / "cases").exists()  # stopped before any case was touched
    assert not (out / "errors.csv").exists()
    assert_nothing_half_written(out)


# --- per-case problems: recorded, the others complete, exit 1 -----------------------------------------


@dataclass
class Scenario:
    """One bad case ``bad`` beside the good ``case0`` and ``case1``."""

    data: Path  # --data
    named: str  # the file the error must name (its name)
    fix: Callable[[], None]  # make the bad case good
    args: tuple[str, ...] = ()
    message: tuple[str, ...] = field(default_factory=tuple)  # more words the error must hold


def _good_pair(seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    return phantom_arrays(seed=seed)


def _bad_case(
    root: Path, image: np.ndarray | None = None, labels: np.ndarray | None = None, **mask_kwargs
) -> tuple[Path, Path, Callable[[], None]]:
    """Write images/bad + masks/bad (good by default) and return their paths and a fixer."""
    make_cohort(root, n=2, outcomes=False)
    good_image, good_labels = _good_pair()
    image_path, mask_path = root / "images" / "bad.nii.gz", root / "masks" / "bad.nii.gz"
    write_volume(image_path, good_image if image is None else image)
    write_volume(mask_path, good_labels if labels is None else labels, **mask_kwargs)

    def fix() -> None:
        write_volume(image_path, good_image)
        write_volume(mask_path, good_labels)

    return image_path, mask_path, fix


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(1).bytes(3000))


def missing_mask(root: Path) -> Scenario:
    make_cohort(root, n=2, outcomes=False)
    image, labels = _good_pair()
    write_volume(root / "images" / "bad.nii.gz", image)
    (root / "manifest.csv").write_text(
        "case_id,image,mask\n"
        + "".join(f"{c},images/{c}.nii.gz,masks/{c}.nii.gz\n" for c in GOOD)
        + "bad,images/bad.nii.gz,masks/nothere.nii.gz\n"
    )
    return Scenario(
        root / "manifest.csv",
        "nothere.nii.gz",
        lambda: write_volume(root / "masks" / "nothere.nii.gz", labels),
        message=("does not exist",),
    )


def truncated_image(root: Path) -> Scenario:
    image, _, fix = _bad_case(root)
    _truncate(image)
    return Scenario(root, "images/bad.nii.gz", fix)


def truncated_mask(root: Path) -> Scenario:
    _, mask, fix = _bad_case(root)
    _truncate(mask)
    return Scenario(root, "masks/bad.nii.gz", fix)


def random_image(root: Path) -> Scenario:
    image, _, fix = _bad_case(root)
    _random_bytes(image)
    return Scenario(root, "images/bad.nii.gz", fix, message=("could not be read",))


def random_mask(root: Path) -> Scenario:
    _, mask, fix = _bad_case(root)
    _random_bytes(mask)
    return Scenario(root, "masks/bad.nii.gz", fix, message=("could not be read",))


def mask_size_differs(root: Path) -> Scenario:
    _, labels = _good_pair()
    _, _, fix = _bad_case(root, labels=np.ascontiguousarray(labels[:, :, :60]))
    return Scenario(root, "masks/bad.nii.gz", fix, message=("size",))


def mask_spacing_differs(root: Path) -> Scenario:
    _, _, fix = _bad_case(root, spacing=(1.5, 1.5, 8.0))
    return Scenario(root, "masks/bad.nii.gz", fix, message=("spacing",))


def mask_without_myocardium(root: Path) -> Scenario:
    _, labels = _good_pair()
    _, _, fix = _bad_case(root, labels=np.where(labels > 0, 1, 0).astype(np.uint8))
    return Scenario(root, "masks/bad.nii.gz", fix, message=("no myocardium",))


def empty_mask(root: Path) -> Scenario:
    _, labels = _good_pair()
    _, _, fix = _bad_case(root, labels=np.zeros_like(labels))
    return Scenario(root, "masks/bad.nii.gz", fix, message=("empty",))


def image_2d(root: Path) -> Scenario:
    image, labels = _good_pair()
    image_path, _, fix = _bad_case(root)
    write_volume(image_path, image[2], spacing=(1.5, 1.5))
    return Scenario(root, "images/bad.nii.gz", fix, message=("2D",))


def image_4d(root: Path) -> Scenario:
    image, _ = _good_pair()
    image_path, _, fix = _bad_case(root)
    volume = sitk.GetImageFromArray(image)
    volume.SetSpacing((1.5, 1.5, 10.0))
    sitk.WriteImage(sitk.JoinSeries([volume, volume]), str(image_path))
    return Scenario(root, "images/bad.nii.gz", fix, message=("4D",))


def _image_with(value: float, suffix: str) -> Callable[[Path], Scenario]:
    """An image holding one NaN or infinite voxel, stored as ``images/bad<suffix>``."""

    def build(root: Path) -> Scenario:
        image, _ = _good_pair()
        image = image.copy()
        image[3, 30, 30] = value
        image_path, _, fix = _bad_case(root)
        image_path.unlink()
        bad_path = write_volume(root / "images" / f"bad{suffix}", image)

        def fix_and_tidy() -> None:
            bad_path.unlink()
            fix()

        return Scenario(root, f"images/bad{suffix}", fix_and_tidy, message=("NaN or infinite",))

    return build


def labels_unknown_to_the_map(root: Path) -> Scenario:
    """--labels myops on an EMIDEC-labelled mask (the good cases are MyoPS-labelled)."""
    make_cohort(root, n=2, outcomes=False)
    for case in GOOD:
        path = root / "masks" / f"{case}.nii.gz"
        labels = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
        write_volume(path, np.vectorize(lambda v: MYOPS.get(int(v), 0))(labels).astype(np.uint16))
    image, labels = _good_pair()
    write_volume(root / "images" / "bad.nii.gz", image)
    write_volume(root / "masks" / "bad.nii.gz", labels)

    def fix() -> None:
        write_volume(
            root / "masks" / "bad.nii.gz", np.vectorize(lambda v: MYOPS.get(int(v), 0))(labels).astype(np.uint16)
        )

    return Scenario(root, "masks/bad.nii.gz", fix, args=("--labels", "myops"), message=("label(s) 1, 2, 3", "'myops'"))


CASE_PROBLEMS = [
    pytest.param(missing_mask, id="missing mask file"),
    pytest.param(truncated_image, id="truncated image"),
    pytest.param(truncated_mask, id="truncated mask"),
    pytest.param(random_image, id="random-bytes image"),
    pytest.param(random_mask, id="random-bytes mask"),
    pytest.param(mask_size_differs, id="mask size differs"),
    pytest.param(mask_spacing_differs, id="mask spacing differs"),
    pytest.param(mask_without_myocardium, id="mask without myocardium"),
    pytest.param(empty_mask, id="empty mask"),
    pytest.param(image_2d, id="2D image"),
    pytest.param(image_4d, id="4D image"),
    pytest.param(_image_with(np.nan, ".nii.gz"), id="NaN voxel nifti"),
    pytest.param(_image_with(np.inf, ".nii.gz"), id="inf voxel nifti"),
    pytest.param(_image_with(np.nan, ".nrrd"), id="NaN voxel nrrd"),
    pytest.param(_image_with(-np.inf, ".mha"), id="inf voxel mha"),
    pytest.param(labels_unknown_to_the_map, id="labels the map does not name"),
]


@pytest.mark.parametrize("build", CASE_PROBLEMS)
def test_per_case_problem_is_recorded_and_fixable(tmp_path: Path, cli, build: Callable[[Path], Scenario]) -> None:
    scenario = build(tmp_path / "cohort")
    out = tmp_path / "out"
    named = Path(scenario.named).name

    result = cli("preprocess", "--data", scenario.data, "--out", out, *scenario.args)
    assert result.exit_code == 1, result.output
    line = assert_one_sentence(result.output, "failed bad:", (named, *scenario.message))
    assert scenario.named in line  # the path, not just the bare name
    assert "2 done, 0 already done, 1 failed" in result.output

    errors = pd.read_csv(out / "errors.csv")
    assert list(errors.columns) == ["case_id", "source", "error"]
    assert errors["case_id"].tolist() == ["bad"]
    assert named in errors.loc[0, "error"] and "Traceback" not in errors.loc[0, "error"]
    assert "\n" not in errors.loc[0, "error"]
    assert Path(errors.loc[0, "source"]).name.startswith("bad.")  # the case's image

    for case in GOOD:
        assert (out / "cases" / case / "qc.json").is_file()
    assert not (out / "cases" / "bad").exists()
    assert pd.read_csv(out / "cases.csv")["case_id"].tolist() == list(GOOD)
    assert_nothing_half_written(out)

    scenario.fix()
    result = cli("preprocess", "--data", scenario.data, "--out", out, *scenario.args)
    assert result.exit_code == 0, result.output
    assert "1 done, 2 already done, 0 failed" in result.output
    assert "failed bad" not in result.output
    assert not (out / "errors.csv").exists()
    assert not list((out / ".errors").glob("*.json"))
    assert (out / "cases" / "bad" / "qc.json").is_file()
    assert sorted(pd.read_csv(out / "cases.csv")["case_id"]) == ["bad", *GOOD]
    assert_nothing_half_written(out)


# --- a source file that disappears after its case was done -------------------------------------------


def test_source_deleted_after_case_done(tmp_path: Path, cli) -> None:
    data = make_cohort(tmp_path / "cohort", n=3, outcomes=False)
    out = tmp_path / "out"
    assert cli("preprocess", "--data", data, "--out", out).exit_code == 0
    manifest = data / "manifest.csv"
    manifest.write_text(
        "case_id,image,mask\n" + "".join(f"case{i},images/case{i}.nii.gz,masks/case{i}.nii.gz\n" for i in range(3))
    )
    (data / "masks" / "case2.nii.gz").unlink()
    result = cli("preprocess", "--data", manifest, "--out", out)
    assert result.exit_code == 1, result.output
    assert_one_sentence(result.output, "failed case2:", ("case2.nii.gz", "does not exist"))
    assert "2 already done" in result.output
