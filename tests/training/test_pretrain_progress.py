"""What pretraining shows while it runs (its progress bar) and the columns of its metrics.csv."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

import lgerisk.progress
import lgerisk.reporting
from lgerisk.reporting import Reporter
from lgerisk.training.pretrain import PretrainConfig, run_pretrain
from tests.helpers import PRETRAIN_TINY, ROOT

TINY = {**PRETRAIN_TINY, "tensor": {"slices": 4, "size": 32}}  # seconds an epoch on 32 cases


@pytest.fixture(scope="module")
def prepared(runs: dict[str, Path]) -> tuple[Path, Path]:
    """sample_data preprocessed and its feature table (the session's shared ones: the ``runs`` fixture)."""
    return runs["prep"], runs["features"]


class _Terminal(io.StringIO):
    """A stream that says it is a terminal (so the progress bar draws) and keeps what was drawn."""

    def isatty(self) -> bool:
        return True


class _EagerProgress(lgerisk.progress.progress):
    """The real progress bar, drawn at once after it starts and after every step (instead of on a timer),
    so that what a user sees before the first batch is in the output, whatever the timing."""

    def __enter__(self) -> Callable[..., None]:
        """The real bar's ``advance``, followed by a redraw."""
        advance = super().__enter__()
        if not self.enabled:
            return advance
        self._bar.refresh()

        def step(**fields: object) -> None:
            advance(**fields)
            self._bar.refresh()

        return step


def test_the_progress_bar_shows_no_loss_before_the_first_batch(prepared, tmp_path: Path, monkeypatch) -> None:
    prep, features = prepared
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    monkeypatch.delenv("LGERISK_NO_PROGRESS", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLUMNS", "160")
    monkeypatch.setattr(lgerisk.reporting, "progress_bar", _EagerProgress)
    run_pretrain(
        prep,
        tmp_path / "run",
        PretrainConfig(epochs=2, **TINY),
        features=str(features),
        device="cpu",
        reporter=Reporter(progress=True),
    )
    drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal.getvalue())  # the text, without terminal codes
    assert "nan" not in drawn.lower()
    for epoch in (1, 2):
        assert f"epoch {epoch}/2 loss –" in drawn  # before the epoch's first batch
        assert re.search(rf"epoch {epoch}/2 loss \d+\.\d{{4}}", drawn)  # once a batch has a loss


def _documented_columns() -> list[str]:
    """The pretraining metrics.csv columns, as docs/commands.md's table of a pretraining run lists them."""
    for line in (ROOT / "docs" / "commands.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("| `RUN/metrics.csv` | a row an epoch: "):
            return [c.strip() for c in line.split(": ", 1)[1].strip(" `|").split(",")]
    raise AssertionError("docs/commands.md lists no pretraining metrics.csv columns")


def test_metrics_csv_columns_are_in_the_documented_order(prepared, tmp_path: Path) -> None:
    prep, features = prepared
    run_pretrain(prep, tmp_path / "run", PretrainConfig(epochs=1, **TINY), features=str(features), device="cpu")
    written = list(pd.read_csv(tmp_path / "run" / "metrics.csv").columns)
    documented = _documented_columns()
    assert written == [c for c in documented if c in written]  # the documented order
    assert set(written) <= set(documented)  # and nothing undocumented


def test_metrics_csv_of_another_objective_keeps_the_order(prepared, tmp_path: Path) -> None:
    prep, features = prepared
    config = PretrainConfig(epochs=1, **TINY, objective={"preset": "simclr"})  # no radiomics columns
    run_pretrain(prep, tmp_path / "run", config, features=str(features), device="cpu")
    written = list(pd.read_csv(tmp_path / "run" / "metrics.csv").columns)
    assert written == [c for c in _documented_columns() if c in written]
