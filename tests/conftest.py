"""Shared test fixtures: a phantom cohort, the real EMIDEC and MyoPS scans, the CLI runner, the runs built
once a session, one torch thread.

Helpers (phantoms, paths, waiting on a run, PNG checks) are in ``tests/helpers``; test modules import
those, never another test module. The names re-exported below from ``tests.helpers`` are for modules that
still import them from here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (  # noqa: F401 - ROOT, SAMPLE_DATA, phantom_arrays, write_volume re-exported
    ROOT,
    SAMPLE_DATA,
    make_cohort,
    phantom_arrays,
    shared_runs,
    single_torch_thread,
    write_volume,
)


def _real_scans(variables: tuple[str, ...], default: Path) -> tuple[Path, str]:
    """The folder named by the first of ``variables`` set in the environment, else ``default``; and the name of
    the variable to set."""
    for variable in variables:
        if os.environ.get(variable):
            return Path(os.environ[variable]).expanduser(), variable
    return default, variables[0]


EMIDEC, EMIDEC_VARIABLE = _real_scans(("LGERISK_EMIDEC",), ROOT.parent / "shared" / "data" / "emidec")
"""The two real EMIDEC scans (``ID/Images``, ``ID/Contours``): $LGERISK_EMIDEC, else ../shared/data/emidec."""
MYOPS_DEV, MYOPS_VARIABLE = _real_scans(
    ("LGERISK_MYOPS", "LGERISK_MYOPS_DEV"), ROOT.parent / "shared" / "data" / "myops-dev"
)
"""15 real MyoPS 2020 LGE scans with expert labels (``images/``, ``masks/``): $LGERISK_MYOPS (or the older
$LGERISK_MYOPS_DEV), else ../shared/data/myops-dev."""

EMIDEC_PROBE = Path("samplePositive", "Images", "samplePositive.nii.gz")
MYOPS_PROBE = Path("images", "Case3001.nii.gz")
"""The files whose presence says the real scans are there (tests needing them skip, saying how to point at them)."""

os.environ.setdefault("LGERISK_NO_PROGRESS", "1")


@pytest.fixture
def cohort(tmp_path: Path) -> Path:
    """A small phantom cohort folder."""
    return make_cohort(tmp_path / "cohort")


@pytest.fixture
def emidec() -> Path:
    """The two real EMIDEC scans (``EMIDEC``; skipped where absent)."""
    if not (EMIDEC / EMIDEC_PROBE).is_file():
        pytest.skip(
            f"real EMIDEC scans not found (no {EMIDEC_PROBE} in {EMIDEC}): set {EMIDEC_VARIABLE} to the folder that "
            "holds EMIDEC's samplePositive/ and sampleNegative/ (each ID/Images/ID.nii.gz, ID/Contours/ID.nii.gz)"
        )
    return EMIDEC


@pytest.fixture
def myops_dev() -> Path:
    """15 real MyoPS 2020 LGE scans with expert scar labels (``MYOPS_DEV``; skipped where absent)."""
    if not (MYOPS_DEV / MYOPS_PROBE).is_file():
        pytest.skip(
            f"real MyoPS development scans not found (no {MYOPS_PROBE} in {MYOPS_DEV}): set {MYOPS_VARIABLE} to the "
            "folder that holds MyoPS 2020's LGE scans as images/CaseNNNN.nii.gz with expert labels in masks/"
        )
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
    (``tests.helpers.shared_runs``)."""
    return shared_runs(tmp_path_factory)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One torch thread for a module's tests: ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    yield from single_torch_thread()


@pytest.fixture
def saved_figures(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every matplotlib ``Figure`` saved while the test runs, in order (``Figure.savefig`` spied on), so a test
    can check what a PNG shows: its axes, images, labels. (A figure the library clears after saving shows
    nothing afterwards; spy on that library's own save function instead.)"""
    from matplotlib.figure import Figure

    saved: list[Any] = []
    original = Figure.savefig

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        saved.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    return saved
