"""Shared test fixtures: a tiny ring phantom, the real EMIDEC scans, and the CLI runner."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

ROOT = Path(__file__).resolve().parents[1]
EMIDEC = Path(os.environ.get("LGERISK_EMIDEC") or ROOT.parent / "shared" / "data" / "emidec")
"""The two real EMIDEC scans: $LGERISK_EMIDEC, else the development checkout's data folder."""
MYOPS_DEV = Path(os.environ.get("LGERISK_MYOPS_DEV") or ROOT.parent / "shared" / "data" / "myops-dev")
"""15 real MyoPS 2020 LGE scans with expert labels: $LGERISK_MYOPS_DEV, else the development checkout's data folder."""
SAMPLE_DATA = ROOT / "sample_data"

os.environ.setdefault("LGERISK_NO_PROGRESS", "1")


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


def truth_rows(n_cases: int, config: Any) -> pd.DataFrame:
    """Ground truth + covariates + outcomes of the first ``n_cases`` synthetic cases of ``config`` (no images)."""
    from lgerisk.data.synthetic import generate_truth

    rows = []
    for k in range(n_cases):
        truth, clinical, outcome = generate_truth(k, config)
        rows.append({**truth, **clinical, **outcome})
    return pd.DataFrame(rows)


def write_volume(path: Path, array: np.ndarray, spacing: tuple[float, float, float] = (1.5, 1.5, 10.0),
                 pixel: int | None = None) -> Path:
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


@pytest.fixture
def cohort(tmp_path: Path) -> Path:
    """A small phantom cohort folder."""
    return make_cohort(tmp_path / "cohort")


@pytest.fixture
def emidec() -> Path:
    """The two real EMIDEC scans (``EMIDEC``; skipped where absent)."""
    if not (EMIDEC / "samplePositive" / "Images" / "samplePositive.nii.gz").is_file():
        pytest.skip(f"real EMIDEC scans not found at {EMIDEC} (set LGERISK_EMIDEC to their folder)")
    return EMIDEC


@pytest.fixture
def myops_dev() -> Path:
    """15 real MyoPS 2020 LGE scans with expert scar labels (``MYOPS_DEV``; skipped where absent)."""
    if not (MYOPS_DEV / "images" / "Case3001.nii.gz").is_file():
        pytest.skip(f"real MyoPS development scans not found at {MYOPS_DEV} (set LGERISK_MYOPS_DEV to their folder)")
    return MYOPS_DEV


@pytest.fixture
def cli():
    """Invoke the lgerisk CLI in-process: ``cli("preprocess", "--data", ...)`` -> click Result."""
    from typer.testing import CliRunner

    from lgerisk.cli import app

    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """sample_data preprocessed, its feature table, a tiny encoder and finetune runs on it, built once a session
    (``tests.training.test_finetune.shared_runs``)."""
    from tests.training.test_finetune import shared_runs

    return shared_runs(tmp_path_factory)
