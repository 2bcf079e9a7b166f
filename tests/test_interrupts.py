"""Ctrl-C, SIGTERM and a killed parent with ``--jobs 2``: every worker stops, finished cases stay, a rerun resumes.

The runs are held mid-batch without timing: some cases' images are FIFOs nobody writes to, so a
worker that reaches one blocks in ``open()`` for ever, and the cases queued behind never start. The
tests wait (bounded) for the files the run writes, signal, then check the exit code, the one-line
message, that no process of the run's process group is left, and that the rerun (FIFOs replaced by
the real images) equals an uninterrupted run file for file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from lgerisk.preprocess.config import PreprocessConfig
from lgerisk.preprocess.run import preprocess_cohort
from lgerisk.radiomics.run import extract_cohort
from tests.helpers import ROOT, WAIT_S, phantom_arrays, snapshot, wait_for, write_volume

N_CASES = 8
GATED = ("p03", "p04")  # with two workers, both block here; p05-p07 never start
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "LGERISK_NO_PROGRESS": "1"}
MESSAGE = re.compile(r"interrupted after (\d+) of (\d+) cases; rerun the same command to resume")


# --- helpers ------------------------------------------------------------------------------------------


def live_group_members(pgid: int) -> list[int]:
    """Pids of the live (not zombie) processes of process group ``pgid``, read from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, _ppid, group = stat[stat.rindex(")") + 2 :].split()[:3]
        if int(group) == pgid and state not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def assert_group_gone(pgid: int) -> None:
    """Every process of the run's group ends (bounded wait; zombies left to a non-reaping init count as gone)."""
    deadline = time.monotonic() + WAIT_S
    while live_group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = live_group_members(pgid)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes of the run still alive: {left}"


_STARTED: list[int] = []


@pytest.fixture(autouse=True)
def _no_stray_processes() -> Iterator[None]:
    """Whatever a test asserts, every process group it started is killed when it ends."""
    yield
    while _STARTED:
        try:
            os.killpg(_STARTED.pop(), signal.SIGKILL)
        except ProcessLookupError:
            pass


def _popen(command: list[str], cwd: Path | None = None) -> subprocess.Popen:
    """``command`` in a session of its own: its pid is its process group (Ctrl-C goes to the group)."""
    process = subprocess.Popen(
        command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, cwd=cwd
    )
    _STARTED.append(process.pid)
    return process


def start(args: list[str]) -> subprocess.Popen:
    """The lgerisk CLI, in a process group of its own."""
    return _popen([sys.executable, "-m", "lgerisk", *args])


def workers_of(pid: int) -> list[int]:
    """Pids of the live children of ``pid``."""
    return [p for p in live_group_members(pid) if p != pid and _ppid(p) == pid]


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def send(process: subprocess.Popen, signum: int, to_group: bool) -> tuple[str, str]:
    """Signal the run (or its whole group, as a terminal's Ctrl-C or a scheduler does); its output."""
    if to_group:
        os.killpg(process.pid, signum)
    else:
        process.send_signal(signum)
    try:
        stdout, stderr = process.communicate(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("the run did not stop after the signal")
    return stdout, stderr


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real images and masks of ``N_CASES`` cases (the gated ones as .mha), and the uninterrupted
    preprocess output and feature table of them."""
    root = tmp_path_factory.mktemp("interrupts")
    rows = ["case_id,image,mask"]
    for i in range(N_CASES):
        case = f"p{i:02d}"
        image, labels = phantom_arrays(slices=8, size=96, seed=i)
        suffix = ".mha" if case in GATED else ".nii.gz"
        write_volume(root / "real" / f"{case}{suffix}", image)
        write_volume(root / "masks" / f"{case}.nii.gz", labels)
        rows.append(f"{case},real/{case}{suffix},masks/{case}.nii.gz")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    preprocess_cohort(root / "manifest.csv", root / "reference", PreprocessConfig())
    extract_cohort(root / "reference", root / "reference.csv")
    return {"root": root, "reference": root / "reference", "features": root / "reference.csv"}


def gated_manifest(source: dict[str, Path], folder: Path) -> Path:
    """A manifest of the same cases whose gated images are FIFOs (the others hard links to the real ones)."""
    images = folder / "images"
    images.mkdir(parents=True)
    rows = ["case_id,image,mask"]
    for real in sorted((source["root"] / "real").iterdir()):
        case = real.name.split(".")[0]
        if case in GATED:
            os.mkfifo(images / real.name)
        else:
            os.link(real, images / real.name)
        rows.append(f"{case},images/{real.name},{source['root'] / 'masks' / f'{case}.nii.gz'}")
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    return folder / "manifest.csv"


def open_gates(gates: list[tuple[Path, Path]]) -> None:
    """Put the real files in place of the FIFOs."""
    for fifo, real in gates:
        fifo.unlink()
        shutil.copyfile(real, fifo)


# --- preprocess: SIGINT / SIGTERM -----------------------------------------------------------------------


def same_but_source(files: dict[str, object]) -> dict[str, object]:
    """A preprocess folder's snapshot without what names the scans' own paths (``qc.json``'s ``source_image``):
    the gated run reads its scans from another folder than the reference run."""
    out = dict(files)
    for key, content in files.items():
        if key.endswith("qc.json"):
            record = json.loads(content)  # type: ignore[arg-type]
            assert record.pop("source_image", None) is not None  # the field is there to be left out
            out[key] = record
    return out


@pytest.mark.parametrize(
    ("signum", "to_group"),
    [
        pytest.param(signal.SIGINT, True, id="ctrl-c to the process group"),
        pytest.param(signal.SIGTERM, False, id="sigterm to the parent"),
        pytest.param(signal.SIGTERM, True, id="sigterm to the process group"),
    ],
)
def test_interrupted_preprocess_stops_workers_and_resumes(
    tmp_path: Path, source: dict[str, Path], signum: int, to_group: bool
) -> None:
    manifest = gated_manifest(source, tmp_path)
    out = tmp_path / "out"
    args = ["preprocess", "--data", str(manifest), "--out", str(out), "--jobs", "2"]
    process = start(args)
    done = lambda: sorted(p.parent.name for p in out.glob("cases/*/qc.json"))  # noqa: E731
    wait_for(
        lambda: len(done()) == 3 and len(workers_of(process.pid)) == 2, "the three cases before the gates", process
    )

    stdout, stderr = send(process, signum, to_group)

    assert process.returncode == 128 + signum, stderr
    lines = [line for line in (stdout + stderr).splitlines() if line.strip()]
    assert len(lines) == 1, stdout + stderr  # one line: no traceback, no per-case noise
    match = MESSAGE.fullmatch(lines[0])
    assert match, lines[0]
    assert 2 <= int(match.group(1)) <= 3 and int(match.group(2)) == N_CASES
    assert_group_gone(process.pid)
    assert done() == ["p00", "p01", "p02"]  # the queued cases never started, the finished ones are intact
    assert not (out / "cases.csv").exists()

    open_gates([(tmp_path / "images" / f"{case}.mha", source["root"] / "real" / f"{case}.mha") for case in GATED])
    rerun = subprocess.run(
        [sys.executable, "-m", "lgerisk", *args], env=ENV, capture_output=True, text=True, timeout=WAIT_S
    )
    assert rerun.returncode == 0, rerun.stderr
    assert f"{N_CASES - 3} done, 3 already done, 0 failed" in rerun.stderr
    assert same_but_source(snapshot(out)) == same_but_source(snapshot(source["reference"]))


# --- extract-radiomics: Ctrl-C ------------------------------------------------------------------------


def test_interrupted_radiomics_stops_workers_and_resumes(tmp_path: Path, source: dict[str, Path]) -> None:
    prep = tmp_path / "prep"
    shutil.copytree(source["reference"], prep)
    gates = []
    for case in GATED:
        image = prep / "cases" / case / "image.nii.gz"
        image.unlink()
        os.mkfifo(image)
        gates.append((image, source["reference"] / "cases" / case / "image.nii.gz"))
    table = tmp_path / "radiomics.csv"
    args = ["extract-radiomics", "--data", str(prep), "--out", str(table), "--jobs", "2"]
    process = start(args)
    parts = tmp_path / "radiomics.parts" / "cases"
    done = lambda: sorted(p.stem for p in parts.glob("*.json"))  # noqa: E731
    wait_for(
        lambda: len(done()) == 3 and len(workers_of(process.pid)) == 2, "the three cases before the gates", process
    )

    stdout, stderr = send(process, signal.SIGINT, to_group=True)

    assert process.returncode == 130, stderr
    match = MESSAGE.fullmatch(stderr.strip())
    assert match and 2 <= int(match.group(1)) <= 3 and int(match.group(2)) == N_CASES, stdout + stderr
    assert_group_gone(process.pid)
    assert done() == ["p00", "p01", "p02"]
    assert not table.exists()

    open_gates(gates)
    rerun = subprocess.run(
        [sys.executable, "-m", "lgerisk", *args], env=ENV, capture_output=True, text=True, timeout=WAIT_S
    )
    assert rerun.returncode == 0, rerun.stderr
    assert f"{N_CASES - 3} done, 3 already done, 0 failed" in rerun.stderr
    pd.testing.assert_frame_equal(pd.read_csv(table), pd.read_csv(source["features"]))
    assert table.read_bytes() == source["features"].read_bytes()


# --- a parent killed by SIGKILL -----------------------------------------------------------------------


def test_workers_exit_when_the_parent_is_killed(tmp_path: Path, source: dict[str, Path]) -> None:
    manifest = gated_manifest(source, tmp_path)
    out = tmp_path / "out"
    process = start(["preprocess", "--data", str(manifest), "--out", str(out), "--jobs", "2"])
    wait_for(
        lambda: len(list(out.glob("cases/*/qc.json"))) == 3 and len(workers_of(process.pid)) == 2,
        "the three cases before the gates",
        process,
    )
    assert len(workers_of(process.pid)) == 2

    process.kill()
    process.wait(timeout=WAIT_S)  # not communicate(): a surviving worker would hold the pipes open

    assert process.returncode == -signal.SIGKILL
    assert_group_gone(process.pid)  # the workers, blocked on the gates, exited on their own


# --- run_batch itself, under fork and spawn (spawn: what predict and explain use) ----------------------


def _start_batch(folder: Path, mode: str, *extra: str) -> subprocess.Popen:
    folder.mkdir(parents=True, exist_ok=True)
    os.mkfifo(folder / "gate")
    return _popen([sys.executable, "-m", "tests.interrupt_work", mode, str(folder), *extra], cwd=ROOT)


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_run_batch_interrupt_stops_held_workers(tmp_path: Path, start_method: str) -> None:
    process = _start_batch(tmp_path, "batch", start_method)
    wait_for(lambda: len(list(tmp_path.glob("started-*"))) == 2, "both workers holding a case", process)

    _, stderr = send(process, signal.SIGINT, to_group=True)

    assert process.returncode == 130, stderr
    assert stderr.strip() == "interrupted after 0 of 4 cases; rerun the same command to resume"
    assert_group_gone(process.pid)
    assert len(list(tmp_path.glob("started-*"))) == 2  # the queued items were cancelled, not run


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_run_batch_workers_exit_when_the_parent_is_killed(tmp_path: Path, start_method: str) -> None:
    process = _start_batch(tmp_path, "batch", start_method)
    wait_for(lambda: len(list(tmp_path.glob("started-*"))) == 2, "both workers holding a case", process)
    held = {int(path.read_text()) for path in tmp_path.glob("started-*")}
    assert held <= set(workers_of(process.pid))  # (spawn adds multiprocessing's resource tracker)

    process.kill()
    process.wait(timeout=WAIT_S)  # not communicate(): a surviving worker would hold the pipes open

    assert_group_gone(process.pid)


def test_worker_without_death_signal_notices_its_parent_died(tmp_path: Path) -> None:
    """The fallback where prctl is unavailable: the watching thread sees the parent gone and exits."""
    process = _start_batch(tmp_path, "orphan")
    wait_for(
        lambda: (tmp_path / "started-orphan").exists() and (tmp_path / "started-parent").exists(),
        "the worker and its parent holding",
        process,
    )
    worker = int((tmp_path / "started-orphan").read_text())
    assert _ppid(worker) == process.pid

    process.kill()
    process.wait(timeout=WAIT_S)  # not communicate(): a surviving worker would hold the pipes open

    assert_group_gone(process.pid)
    assert worker not in live_group_members(process.pid)


@pytest.mark.parametrize("start_method", [None, "forkserver"])
def test_run_batch_completes_whatever_the_start_method(tmp_path: Path, start_method: str | None) -> None:
    """Python 3.14 makes forkserver Linux's default: its workers are the fork server's children, and a
    worker that watched the command as its parent exited at once ("interrupted after 0 of 4")."""
    from lgerisk.batch import run_batch
    from tests.interrupt_work import Item, echo

    items = [Item(f"c{i}", str(tmp_path)) for i in range(4)]
    report = run_batch(
        items,
        echo,
        lambda item: False,
        tmp_path / "out",
        jobs=2,
        description="test",
        start_method=start_method,
    )
    assert sorted(report.done) == ["c0", "c1", "c2", "c3"] and not report.failed
