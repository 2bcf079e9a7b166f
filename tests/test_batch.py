"""Batch behaviour of preprocess: resume, shards, processes, and a run killed mid-way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lgerisk.batch import Shard, run_batch
from lgerisk.errors import InputError
from lgerisk.preprocess.config import PreprocessConfig
from lgerisk.preprocess.run import preprocess_cohort
from tests.helpers import ROOT, make_cohort, phantom_arrays, snapshot, wait_for, write_volume


def test_shard_selection() -> None:
    items = list(range(10))
    shards = [Shard.parse(f"{i}/3").select(items) for i in (1, 2, 3)]
    assert sorted(sum(shards, [])) == items and shards[0] == [0, 3, 6, 9]
    for bad in ("0/3", "4/3", "x", "1/0"):
        with pytest.raises(InputError):
            Shard.parse(bad)


def test_rerun_skips_finished_cases_and_redoes_changed_ones(tmp_path: Path) -> None:
    data = make_cohort(tmp_path / "cohort", n=3)
    out = tmp_path / "prep"
    first, _ = preprocess_cohort(data, out, PreprocessConfig())
    assert sorted(first.done) == ["case0", "case1", "case2"]
    again, _ = preprocess_cohort(data, out, PreprocessConfig())
    assert again.done == [] and sorted(again.skipped) == ["case0", "case1", "case2"]
    # a changed input file is redone; other settings redo everything
    image, _ = phantom_arrays(seed=42)
    write_volume(data / "images" / "case1.nii.gz", image)
    changed, _ = preprocess_cohort(data, out, PreprocessConfig())
    assert changed.done == ["case1"]
    other, table = preprocess_cohort(data, out, PreprocessConfig(nsd=3.0))
    assert sorted(other.done) == ["case0", "case1", "case2"]
    assert len(table) == 3


def test_shards_together_equal_one_run(tmp_path: Path) -> None:
    data = make_cohort(tmp_path / "cohort", n=5)
    preprocess_cohort(data, tmp_path / "whole", PreprocessConfig())
    for index in (1, 2):
        report, _ = preprocess_cohort(data, tmp_path / "sharded", PreprocessConfig(), shard=Shard(index, 2))
        assert len(report.done) == (3 if index == 1 else 2)
    whole, sharded = snapshot(tmp_path / "whole"), snapshot(tmp_path / "sharded")
    assert whole.keys() == sharded.keys() and whole == sharded
    assert len(pd.read_csv(tmp_path / "sharded" / "cases.csv")) == 5


def test_two_processes_equal_one(tmp_path: Path) -> None:
    data = make_cohort(tmp_path / "cohort", n=4)
    preprocess_cohort(data, tmp_path / "one", PreprocessConfig(), jobs=1)
    report, _ = preprocess_cohort(data, tmp_path / "two", PreprocessConfig(), jobs=2)
    assert len(report.done) == 4
    assert snapshot(tmp_path / "one") == snapshot(tmp_path / "two")


def _big_cohort(folder: Path, n: int) -> Path:
    for i in range(n):
        image, labels = phantom_arrays(slices=10, size=192, seed=i)
        write_volume(folder / "images" / f"p{i:02d}.nii.gz", image)
        write_volume(folder / "masks" / f"p{i:02d}.nii.gz", labels)
    return folder


def test_killed_batch_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    n = 14
    data = _big_cohort(tmp_path / "cohort", n)
    preprocess_cohort(data, tmp_path / "reference", PreprocessConfig())
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "lgerisk", "preprocess", "--data", str(data), "--out", str(out), "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # synchronised on the files the run writes (no sleep that assumes how far it got): killed once three
    # cases are finished, wherever it then is in the fourth
    wait_for(lambda: len(list(out.glob("cases/*/qc.json"))) >= 3, "three finished cases", process, timeout=600)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = len(list(out.glob("cases/*/qc.json")))
    assert 3 <= finished < n, "the run must be killed mid-way for this test to mean anything"
    assert not (out / "cases.csv").exists()  # the table is only written at the end
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert snapshot(out) == snapshot(tmp_path / "reference")


def _full_disk_at_b(case: str) -> str:
    """A case's work: ``b`` meets a full disk, a forbidden folder at ``p``, the rest finish."""
    import errno

    from lgerisk.errors import OutputError

    if case == "b":
        raise OutputError.naming(f"out/{case}.csv", errno.ENOSPC)
    if case == "p":
        raise OutputError.naming(f"out/{case}.csv", errno.EACCES)
    return case


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_full_disk_stops_the_batch_once_a_folder_one_may_not_write_is_the_cases_error(
    tmp_path: Path, jobs: int
) -> None:
    """Every case after a full disk would fail the same way: the batch stops with the one OutputError (exit 74)
    instead of recording it case by case; an output folder one may not write stays that case's error."""
    import errno

    from lgerisk.errors import OutputError

    with pytest.raises(OutputError) as stopped:
        run_batch(["a", "b", "c", "d"], _full_disk_at_b, lambda case: False, tmp_path, jobs=jobs, case_id=str)
    assert stopped.value.exit_code == 74 and stopped.value.errno == errno.ENOSPC and "out/b.csv" in str(stopped.value)
    report = run_batch(["p", "q"], _full_disk_at_b, lambda case: False, tmp_path / "second", jobs=jobs, case_id=str)
    assert list(report.failed) == ["p"] and "out/p.csv" in report.failed["p"]
