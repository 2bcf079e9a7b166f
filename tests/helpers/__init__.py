"""Helpers shared by the test modules: paths, phantoms and cohorts on disk, the runs built once a session,
waiting on a subprocess, file snapshots, and checks of error messages and PNG figures.

Test modules import from here (``from tests.helpers import ...``), never from one another; fixtures live in
``tests/conftest.py``. DICOM writers and identifier checks are in :mod:`tests.helpers.dicom`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk

ROOT = Path(__file__).resolve().parents[2]
"""The repository."""
SAMPLE_DATA = ROOT / "sample_data"

WAIT_S = 120.0
"""Default bound of a wait on a subprocess: generous, as a loaded machine is slow, never wrong."""

PRETRAIN_TINY: dict[str, Any] = {
    "width": 4,
    "depth": 3,
    "embedding_dim": 32,
    "projection_dim": 16,
    "batch_size": 4,
    "lr": 1e-3,
    "tensor": {"slices": 6, "size": 64},
    "radiomics_dropout": 0.0,
}
"""A pretraining configuration small enough for tests (``PretrainConfig(epochs=..., **PRETRAIN_TINY)``)."""

FINETUNE_TINY = ("--folds", "3", "--bootstrap", "20", "--epochs", "1", "--device", "cpu", "--quiet")
"""``lgerisk finetune`` options small enough for tests."""


# --- phantoms and cohorts ------------------------------------------------------------------------------


def phantom_arrays(slices: int = 6, size: int = 64, scar: bool = True, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A short-axis ring phantom (z, y, x): blood pool 1, myocardium 2, scar 3 in one sector.

    LGE-like intensities: blood 600, nulled myocardium 100, scar 800, background 50, plus noise.
    The LV shrinks from base (slice 0) to apex.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(float)
    labels = np.zeros((slices, size, size), dtype=np.uint8)
    for k in range(slices):
        radius = 14.0 - 8.0 * k / max(slices - 1, 1)
        r = np.hypot(yy - size / 2 + 2, xx - size / 2 + 1)
        labels[k][r < radius + 5] = 2
        labels[k][r < radius] = 1
        if scar:
            angle = np.arctan2(yy - size / 2, xx - size / 2)
            labels[k][(labels[k] == 2) & (angle > 0.3) & (angle < 1.4)] = 3
    image = np.choose(labels, [50.0, 600.0, 100.0, 800.0]) + rng.normal(0, 15, labels.shape)
    return image.astype(np.float32), labels


def write_volume(
    path: Path, array: np.ndarray, spacing: tuple[float, float, float] = (1.5, 1.5, 10.0), pixel: int | None = None
) -> Path:
    """Write a (z, y, x) array as a volume with the given spacing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    if pixel is not None:
        image = sitk.Cast(image, pixel)
    sitk.WriteImage(image, str(path))
    return path


def make_cohort(folder: Path, n: int = 3, scar: bool = True, outcomes: bool = True) -> Path:
    """An ``images/`` + ``masks/`` cohort of ``n`` phantom cases (``case0``...), with outcomes.csv."""
    rows = ["case_id,time,event,age"]
    for i in range(n):
        image, labels = phantom_arrays(scar=scar and i % 2 == 0, seed=i)
        write_volume(folder / "images" / f"case{i}.nii.gz", image)
        write_volume(folder / "masks" / f"case{i}.nii.gz", labels)
        rows.append(f"case{i},{1.5 + i},{i % 2},{60 + i}")
    if outcomes:
        (folder / "outcomes.csv").write_text("\n".join(rows) + "\n")
    return folder


# --- the CLI and the runs built once a session ---------------------------------------------------------


def run_cli(*args: object) -> Any:
    """Invoke the lgerisk CLI in-process (usable from module- and session-scoped fixtures) -> click Result."""
    from typer.testing import CliRunner

    from lgerisk.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def check_ok(result: Any, what: str) -> None:
    """Fail with the end of the output unless the CLI ``result`` exited 0."""
    assert result.exit_code == 0, f"{what} failed ({result.exit_code}): {result.output[-3000:]}"


def shared_runs(factory: pytest.TempPathFactory) -> dict[str, Path]:
    """sample_data preprocessed + its feature table, a tiny pretrained encoder, and finetune runs on it.

    Built once per session under the session's base temp folder (a later caller finds the finished
    folders; the ``runs`` fixture of tests/conftest.py is the way in): ``prep``, ``features``, ``encoder``,
    ``main`` (the CLI run of the brief: baselines, probe, 3 folds), ``tabular`` (probe + radiomics +
    age,lvef, no baselines).
    """
    root = factory.getbasetemp() / "finetune-shared"
    paths = {
        "prep": root / "prep",
        "features": root / "radiomics.csv",
        "encoder": root / "pretrain",
        "main": root / "risk",
        "tabular": root / "risk-tabular",
    }
    if (root / "done").is_file():
        return paths
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    with contextmanager(single_torch_thread)():  # the tests that redo a run compare it to these byte for byte
        _build_shared_runs(paths)
    (root / "done").write_text("ok\n")
    return paths


def _build_shared_runs(paths: dict[str, Path]) -> None:
    from lgerisk.preprocess.config import PreprocessConfig
    from lgerisk.preprocess.run import preprocess_cohort
    from lgerisk.radiomics.run import extract_cohort
    from lgerisk.training.pretrain import PretrainConfig, run_pretrain

    preprocess_cohort(SAMPLE_DATA, paths["prep"], PreprocessConfig(), jobs=2)
    extract_cohort(paths["prep"], paths["features"], jobs=2)
    config = PretrainConfig(
        epochs=1, width=4, embedding_dim=16, projection_dim=8, tensor={"slices": 4, "size": 32}, batch_size=8
    )
    run_pretrain(paths["prep"], paths["encoder"], config, features=str(paths["features"]), device="cpu")
    check_ok(
        run_cli(
            "finetune",
            "--data",
            SAMPLE_DATA,
            "--features",
            paths["features"],
            "--encoder",
            paths["encoder"],
            "--out",
            paths["main"],
            "--jobs",
            "2",
            *FINETUNE_TINY,
        ),
        "the main finetune run",
    )
    check_ok(
        run_cli(
            "finetune",
            "--data",
            paths["prep"],
            "--features",
            paths["features"],
            "--encoder",
            paths["encoder"],
            "--out",
            paths["tabular"],
            "--no-baselines",
            "--with-radiomics",
            "--covariates",
            "age,lvef",
            *FINETUNE_TINY,
        ),
        "the finetune run with radiomics and covariates",
    )


def single_torch_thread() -> Iterator[None]:
    """One torch thread while the caller runs (the body of the ``one_torch_thread`` fixture): the tiny
    convolutions of the tests are far faster so on a small, busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- subprocesses ---------------------------------------------------------------------------------------


def stop(process: subprocess.Popen) -> None:
    """SIGKILL ``process``, and its whole process group when it leads one (``start_new_session=True``)."""
    try:
        if os.getpgid(process.pid) == process.pid:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except ProcessLookupError:
        pass


def wait_for(
    condition: Callable[[], bool], what: str, process: subprocess.Popen | None = None, timeout: float = WAIT_S
) -> None:
    """Poll ``condition`` (something the run writes) until true; fail if ``process`` ends first, or after
    ``timeout`` seconds (killing ``process``). The bound only turns a hang into a failure: nothing assumes
    how far a run gets in a given time."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            pytest.fail(f"the run ended (exit {process.returncode}) before {what}")
        if time.monotonic() > deadline:
            if process is not None:
                stop(process)
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


# --- files ---------------------------------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, object]:
    """Every file under ``folder`` -> its content (voxel arrays for images, text otherwise)."""
    out: dict[str, object] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        key = str(path.relative_to(folder))
        if path.name.endswith(".nii.gz"):
            image = sitk.ReadImage(str(path))
            out[key] = (sitk.GetArrayFromImage(image).tobytes(), image.GetSpacing(), image.GetOrigin())
        else:
            out[key] = path.read_bytes()
    return out


def assert_one_sentence(output: str, prefix: str, names: tuple[str, ...]) -> str:
    """Exactly one line starts with ``prefix``; it names each of ``names`` and ends a sentence."""
    assert "Traceback" not in output, output
    assert "unexpected" not in output, output  # an unforeseen exception, not a handled input error
    lines = [line for line in output.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, output
    line = lines[0].rstrip()
    for name in names:
        assert name in line, f"{name!r} not named in: {line}"
    assert line.endswith("."), line
    return line


# --- figures -------------------------------------------------------------------------------------------


def read_png(path: Path) -> np.ndarray:
    """The pixels of the PNG file at ``path`` as (height, width, RGB) uint8; fails unless it decodes as a PNG."""
    from PIL import Image  # Pillow: a dependency of matplotlib

    with Image.open(path) as image:
        assert image.format == "PNG", f"{path} is {image.format}, not a PNG"
        return np.asarray(image.convert("RGB"))


def assert_drawn_png(path: Path, min_size: tuple[int, int] = (300, 200), drawn: float = 0.02) -> np.ndarray:
    """``path`` is a PNG of at least ``min_size`` (width, height) pixels with something drawn on it: many
    colours, and at least a ``drawn`` share of the pixels unlike the background (the commonest colour).
    Returns the pixels (height, width, RGB)."""
    pixels = read_png(path)
    height, width = pixels.shape[:2]
    assert width >= min_size[0] and height >= min_size[1], f"{path}: {width}x{height} pixels"
    colours, counts = np.unique(pixels.reshape(-1, 3), axis=0, return_counts=True)
    assert len(colours) > 32, f"{path}: {len(colours)} colours, a blank or single-colour image"
    background = colours[counts.argmax()]
    unlike = float(np.mean(np.abs(pixels.astype(int) - background).max(axis=-1) > 24))
    assert unlike >= drawn, f"{path}: {unlike:.1%} of the pixels differ from the background"
    return pixels


def colour_share(pixels: np.ndarray, colour: str, tolerance: int = 40) -> float:
    """Share of ``pixels`` (height, width, RGB) within ``tolerance`` (per channel) of ``colour`` ("#rrggbb")."""
    target = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    return float(np.mean(np.abs(pixels.astype(int) - target).max(axis=-1) <= tolerance))


def truth_rows(n_cases: int, config: Any) -> Any:
    """Ground truth + covariates + outcomes of the first ``n_cases`` synthetic cases of ``config`` (no images)."""
    import pandas as pd

    from lgerisk.synth import generate_truth

    rows = []
    for k in range(n_cases):
        truth, clinical, outcome = generate_truth(k, config)
        rows.append({**truth, **clinical, **outcome})
    return pd.DataFrame(rows)
