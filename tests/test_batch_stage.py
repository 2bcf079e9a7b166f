"""run_batch with a stage: when the stage starts, what workers inherit, how far they run ahead, their priority."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import lgerisk.batch as batch
from lgerisk.batch import IN_FLIGHT_PER_WORKER, Outcome, available_cores, network_threads, run_batch

WARMED = "lgerisk_test_warmed_module"


@dataclass(frozen=True)
class Item:
    case_id: str


def inspect(item: Item) -> dict[str, Any]:
    """What a worker sees: its pid, its niceness, and whether the parent's warm-up reached it."""
    return {"pid": os.getpid(), "nice": os.nice(0), "warmed": WARMED in sys.modules}


@dataclass
class Recorder:
    """A stage that logs when it starts and what it is pushed, and finishes each case at once."""

    log: list[str] = field(default_factory=list)

    def start(self) -> None:
        self.log.append("start")

    def push(self, case: Item, value: Any) -> list[Outcome]:
        self.log.append(case.case_id)
        return [(case, True, value, None)]

    def flush(self) -> list[Outcome]:
        self.log.append("flush")
        return []


def _warm() -> None:
    sys.modules[WARMED] = type(sys)(WARMED)  # stands for an import every worker would otherwise repeat


@pytest.fixture
def unwarmed():
    sys.modules.pop(WARMED, None)
    yield
    sys.modules.pop(WARMED, None)


def test_a_stage_starts_before_its_first_result_and_workers_run_lower(tmp_path: Path, unwarmed: None) -> None:
    stage = Recorder()
    items = [Item(f"c{i}") for i in range(6)]
    report = run_batch(items, inspect, lambda item: False, tmp_path, jobs=2, stage=stage, start_method="fork")
    assert stage.log[0] == "start" and stage.log[-1] == "flush" and sorted(stage.log[1:-1]) == sorted(report.done)
    base = os.nice(0)
    assert {value["nice"] for value in report.results.values()} == {min(base + batch.STAGE_WORKER_NICENESS, 19)}
    assert all(value["pid"] != os.getpid() for value in report.results.values())


def test_workers_without_a_stage_keep_the_parents_priority(tmp_path: Path) -> None:
    report = run_batch([Item(f"c{i}") for i in range(4)], inspect, lambda item: False, tmp_path, jobs=2)
    assert {value["nice"] for value in report.results.values()} == {os.nice(0)}


def test_one_process_starts_the_stage_only_when_there_is_work(tmp_path: Path) -> None:
    stage = Recorder()
    run_batch([Item("a"), Item("b")], inspect, lambda item: False, tmp_path, jobs=1, stage=stage)
    assert stage.log == ["start", "a", "b", "flush"]
    idle = Recorder()
    run_batch([Item("a")], inspect, lambda item: True, tmp_path, jobs=2, stage=idle)  # all done already
    assert idle.log == ["flush"]


@pytest.mark.parametrize(("method", "inherited"), [("fork", True), ("spawn", False)])
def test_warm_runs_before_forking_only(tmp_path: Path, unwarmed: None, method: str, inherited: bool) -> None:
    items = [Item(f"c{i}") for i in range(3)]
    report = run_batch(items, inspect, lambda item: False, tmp_path, jobs=2, start_method=method, warm=_warm)
    assert {value["warmed"] for value in report.results.values()} == {inherited}
    assert (WARMED in sys.modules) == inherited  # spawned workers would not inherit it: the parent skips it


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
    cores = available_cores()
    assert network_threads(1) is None and network_threads(0) is None
    assert network_threads(cores) == 1 and network_threads(cores + 5) == 1
    if cores > 2:
        assert network_threads(2) == cores - 2
