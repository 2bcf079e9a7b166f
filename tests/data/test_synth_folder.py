"""Where ``generate_cohort`` may write: a new or empty folder, its own earlier cohort (stale cases removed,
nothing else touched), or any other folder only with ``force=True``."""

from __future__ import annotations

from pathlib import Path

import pytest

from lgerisk.errors import InputError
from lgerisk.synth import MARKER_FILE, SynthConfig, generate_cohort


def _tiny(n_cases: int) -> SynthConfig:
    """A fast cohort: small matrices, no supersampling."""
    return SynthConfig(n_cases=n_cases, seed=3, small=True, supersample_xy=1, supersample_z=1)


def _names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_a_folder_with_other_files_is_refused_and_left_untouched(tmp_path: Path) -> None:
    cohort = tmp_path / "real"
    (cohort / "images").mkdir(parents=True)
    (cohort / "images" / "P01.nii.gz").write_bytes(b"a real scan")
    (cohort / "outcomes.csv").write_text("case_id,time,event\nP01,3.0,1\n")
    with pytest.raises(InputError, match="not a cohort that lgerisk synth wrote") as caught:
        generate_cohort(cohort, _tiny(2))
    message = str(caught.value)
    assert message.startswith(f"{cohort}: ") and "force=True" in message and message.count(". ") == 0
    assert caught.value.setting == "force"
    assert (cohort / "outcomes.csv").read_text() == "case_id,time,event\nP01,3.0,1\n"
    assert _names(cohort / "images") == ["P01.nii.gz"] and not (cohort / MARKER_FILE).exists()


def test_force_writes_into_another_folder_and_removes_nothing(tmp_path: Path) -> None:
    cohort = tmp_path / "mine"
    (cohort / "images").mkdir(parents=True)
    (cohort / "images" / "P01.nii.gz").write_bytes(b"a real scan")
    generate_cohort(cohort, _tiny(2), force=True)
    assert _names(cohort / "images") == ["P01.nii.gz", "synth-0000.nii.gz", "synth-0001.nii.gz"]
    assert (cohort / MARKER_FILE).is_file()


def test_a_rerun_with_fewer_cases_removes_its_own_stale_scans_only(tmp_path: Path) -> None:
    cohort = tmp_path / "synth"
    generate_cohort(cohort, _tiny(4))
    (cohort / "images" / "notes.txt").write_text("mine")  # a file the generator did not write
    (cohort / "images" / "synth-0009.nii.gz").write_bytes(b"named like a case, not written by synth")
    table = generate_cohort(cohort, _tiny(2))
    assert list(table["case_id"]) == ["synth-0000", "synth-0001"]
    assert _names(cohort / "images") == ["notes.txt", "synth-0000.nii.gz", "synth-0001.nii.gz", "synth-0009.nii.gz"]
    assert _names(cohort / "masks") == ["synth-0000.nii.gz", "synth-0001.nii.gz"]
    assert (cohort / "outcomes.csv").read_text().count("\n") == 3  # the header and two cases


def test_a_first_run_stopped_before_its_marker_is_its_own_output(tmp_path: Path) -> None:
    from lgerisk.synth.cohort import is_synth_output

    cohort = tmp_path / "synth"
    generate_cohort(cohort, _tiny(3))
    for name in ("outcomes.csv", "ground_truth.csv", MARKER_FILE, "README.txt"):
        (cohort / name).unlink()  # as a run stopped after writing the scans leaves the folder
    assert is_synth_output(cohort)
    generate_cohort(cohort, _tiny(1))
    assert _names(cohort / "images") == ["synth-0000.nii.gz"]
    (cohort / "masks" / "P01.nii.gz").write_bytes(b"a real mask")
    (cohort / MARKER_FILE).unlink()
    assert not is_synth_output(cohort)  # a file the generator did not write: not its own output


def test_a_file_in_place_of_the_folder_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "cohort"
    target.write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        generate_cohort(target, _tiny(1), force=True)
