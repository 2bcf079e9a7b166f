"""Work that never finishes on its own, for tests of interrupted runs (``tests/test_interrupts.py``,
``tests/training/test_pretrain.py``).

A module of its own so that spawned workers can import it. Run as a script it starts a batch
(``python -m tests.interrupt_work batch FOLDER fork|spawn``), an orphan-to-be worker
(``python -m tests.interrupt_work orphan FOLDER``) or a pretraining run held in the middle of an epoch
(``python -m tests.interrupt_work pretrain FOLDER EPOCH ARGS...``); every process it holds blocks in
``open()`` of a FIFO that nobody writes to, so a test can stop it at leisure and never depends on timing.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from dataclasses import dataclass
from pathlib import Path

GATE = "gate"
"""The FIFO in the test's folder that held work waits on (opening it for reading blocks)."""


@dataclass(frozen=True)
class Item:
    """One case of the test batch: its id and the test's folder."""

    case_id: str
    folder: str


def hold(item: Item) -> str:
    """Write ``started-<id>`` (holding this process's pid), then block on the gate FIFO.

    The marker is written under another name and renamed, so a test that sees it can read the pid at once.
    """
    folder = Path(item.folder)
    marker = folder / f"started-{item.case_id}"
    partial = folder / f".partial-{item.case_id}"
    partial.write_text(str(os.getpid()))
    partial.replace(marker)
    with open(folder / GATE, "rb") as gate:  # blocks until a writer opens it: none ever does
        gate.read()
    return item.case_id


def echo(item: Item) -> str:
    """Finish at once with the item's id (work that completes, for start-method tests)."""
    return item.case_id


def _batch(folder: Path, start_method: str) -> int:
    """Run ``hold`` over four items in two workers; an interrupt prints its line and exits 128 + signal."""
    from lgerisk.batch import run_batch
    from lgerisk.errors import Interrupted

    items = [Item(f"item{i}", str(folder)) for i in range(4)]
    try:
        run_batch(items, hold, lambda item: False, folder / "out", jobs=2, start_method=start_method)
    except Interrupted as exc:
        print(exc, file=sys.stderr, flush=True)
        return exc.exit_code
    return 0


def _orphan_child(folder: str, parent_pid: int) -> None:
    from lgerisk.batch import init_worker

    init_worker(parent_pid, death_signal=False)  # only the watching thread can notice the parent's death
    hold(Item("orphan", folder))


def _orphan(folder: Path) -> int:
    """Start one worker set up without the parent-death signal, then block on the gate ourselves."""
    child = multiprocessing.get_context("fork").Process(target=_orphan_child, args=(str(folder), os.getpid()))
    child.start()
    hold(Item("parent", str(folder)))
    return 0


def _held_pretrain(folder: Path, epoch: int, args: list[str]) -> None:
    """``lgerisk pretrain ARGS``, held once the first training batch of epoch ``epoch`` (1-based) is done.

    The hook is the per-batch ``advance`` of the progress bars (``lgerisk.reporting.progress_bar``, called after
    every batch, drawn or not): in the epoch whose bar reads ``epoch EPOCH/...`` it writes
    ``started-epoch<EPOCH>`` and blocks on the gate. A run that never gets there ends on its own, which the
    test reports.
    """
    import lgerisk.reporting as reporting
    from lgerisk.cli import app

    class HeldProgress(reporting.progress_bar):
        def __enter__(self):
            advance = super().__enter__()
            if not self.description.startswith(f"epoch {epoch}/"):
                return advance

            def step(**fields: object) -> None:
                advance(**fields)
                hold(Item(f"epoch{epoch}", str(folder)))

            return step

    reporting.progress_bar = HeldProgress
    app(["pretrain", *args], prog_name="lgerisk")


if __name__ == "__main__":
    mode, where = sys.argv[1], Path(sys.argv[2])
    if mode == "pretrain":
        _held_pretrain(where, int(sys.argv[3]), sys.argv[4:])
    sys.exit(_batch(where, sys.argv[3]) if mode == "batch" else _orphan(where))
