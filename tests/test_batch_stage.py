"""run_batch with a stage: when the stage starts, how far the workers run ahead, their priority."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import lgerisk.batch as batch
from lgerisk.batch import IN_FLIGHT_PER_WORKER, Outcome, network_threads, run_batch


@dataclass(frozen=True)
class Item:
    case_id: str


STARTED = "lgerisk_test_stage_started"
"""A module the stage's ``start`` puts in ``sys.modules``: a worker forked after it would inherit it."""


def inspect(item: Item) -> dict[str, Any]:
    """What a worker sees: its pid, its niceness, and whether it was forked after the stage started."""
    return {"pid": os.getpid(), "nice": os.nice(0), "after_start": STARTED in sys.modules}


@dataclass
class Recorder:
    """A stage that logs when it starts and what it is pushed, and finishes each case at once."""

    log: list[str] = field(default_factory=list)

    def start(self, workers: int) -> None:
        self.log.append(f"start {workers}")
        sys.modules[STARTED] = type(sys)(STARTED)

    def push(self, case: Item, value: Any) -> list[Outcome]:
        self.log.append(case.case_id)
        return [(case, True, value, None)]

    def flush(self) -> list[Outcome]:
        self.log.append("flush")
        return []


@pytest.fixture(autouse=True)
def not_started() -> Iterator[None]:
    sys.modules.pop(STARTED, None)
    yield
    sys.modules.pop(STARTED, None)


def test_a_stage_starts_after_the_fork_before_its_first_result_and_workers_run_lower(tmp_path: Path) -> None:
    stage = Recorder()
    items = [Item(f"c{i}") for i in range(6)]
    report = run_batch(items, inspect, lambda item: False, tmp_path, jobs=2, stage=stage, start_method="fork")
    assert stage.log[0] == "start 2" and stage.log[-1] == "flush"
    assert sorted(stage.log[1:-1]) == sorted(report.done)
    assert not any(value["after_start"] for value in report.results.values())  # forked before start
    base = os.nice(0)
    assert {value["nice"] for value in report.results.values()} == {min(base + batch.STAGE_WORKER_NICENESS, 19)}
    assert all(value["pid"] != os.getpid() for value in report.results.values())


def test_workers_without_a_stage_keep_the_parents_priority(tmp_path: Path) -> None:
    report = run_batch([Item(f"c{i}") for i in range(4)], inspect, lambda item: False, tmp_path, jobs=2)
    assert {value["nice"] for value in report.results.values()} == {os.nice(0)}


def test_one_process_starts_the_stage_only_when_there_is_work(tmp_path: Path) -> None:
    stage = Recorder()
    run_batch([Item("a"), Item("b")], inspect, lambda item: False, tmp_path, jobs=1, stage=stage)
    assert stage.log == ["start 0", "a", "b", "flush"]
    idle = Recorder()
    run_batch([Item("a")], inspect, lambda item: True, tmp_path, jobs=2, stage=idle)  # all done already
    assert idle.log == ["flush"]


def test_a_stage_is_not_started_while_workers_may_still_be_forked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where Python forks workers as they are needed (CPython before gh-90622), a fork could come after the
    stage's threads: the stage is then not started (it does what it needs when first pushed)."""
    executor = batch.ProcessPoolExecutor
    if not hasattr(executor, "_adjust_process_count"):
        pytest.skip("this Python's process pool has no on-demand start to imitate")

    class OnDemand(executor):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._safe_to_dynamically_spawn_children = True

        def _adjust_process_count(self) -> None:
            if not self._processes:  # one worker now; a second would come later, as needed
                self._spawn_process()

    monkeypatch.setattr(batch, "ProcessPoolExecutor", OnDemand)
    stage = Recorder()
    report = run_batch([Item(f"c{i}") for i in range(5)], inspect, lambda item: False, tmp_path, jobs=2, stage=stage)
    assert len(report.done) == 5 and not any(entry.startswith("start") for entry in stage.log)


@pytest.mark.parametrize(
    ("lead", "window"), [(0, 2 * IN_FLIGHT_PER_WORKER), (3 * IN_FLIGHT_PER_WORKER, 3 * IN_FLIGHT_PER_WORKER)]
)
def test_cases_in_flight_are_the_larger_of_the_workers_share_and_the_lead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lead: int, window: int
) -> None:
    """The first result is read only after a whole window is submitted; never more than that."""
    submitted: list[int] = []
    seen_at_first_result: list[int] = []
    submit = batch.ProcessPoolExecutor.submit

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        submitted.append(1)
        return submit(self, *args, **kwargs)

    monkeypatch.setattr(batch.ProcessPoolExecutor, "submit", counting)

    class First(Recorder):
        def push(self, case: Item, value: Any) -> list[Outcome]:
            if not seen_at_first_result:
                seen_at_first_result.append(len(submitted))
            return super().push(case, value)

    items = [Item(f"c{i}") for i in range(40)]
    run_batch(items, inspect, lambda item: False, tmp_path, jobs=2, stage=First(), lead=lead)
    assert seen_at_first_result == [window] and len(submitted) == 40


def test_network_threads_leave_the_workers_their_cores() -> None:
    assert network_threads(0, 8, cores=8) is None  # one process: torch's default
    assert network_threads(2, 8, cores=8) == 6 and network_threads(2, 4, cores=16) == 4  # never over torch's own
    assert network_threads(2, 2, cores=2) == 1 and network_threads(9, 8, cores=8) == 1  # at least one
    assert network_threads(1, 1, cores=1) == 1
