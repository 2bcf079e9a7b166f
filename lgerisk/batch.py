"""Running one function over the cases of a cohort: shards, processes, resume, errors, progress.

Every batch command (preprocess, extract-radiomics, predict) uses ``run_batch``. A case is
skipped when ``is_done(case)`` says its outputs exist with the same inputs and settings;
failures are kept per case (one small JSON each under ``OUT/.errors/``) so concurrent shards
never write the same file, and ``collect_errors`` gathers them into ``errors.csv``.

Signals. While a batch runs, SIGINT (Ctrl-C) and SIGTERM stop it: pending cases are cancelled,
worker processes are terminated (``STOP_GRACE_S`` to remove their temporary files, then killed),
finished cases stay on disk, and ``Interrupted`` is raised with the number of cases finished.
Workers ignore SIGINT themselves (a terminal sends it to the whole process group; the parent
decides), and exit when the parent dies, even by SIGKILL: the kernel's parent-death signal on
Linux, and a thread watching ``os.getppid()`` everywhere.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, TypeAlias, TypeVar, cast

from lgerisk.errors import InputError, Interrupted, LgeriskError, OutputError, WorkerDied
from lgerisk.io.atomic import IN_FLIGHT, remove_in_flight, write_csv, write_json
from lgerisk.reporting import SILENT, Reporter

if TYPE_CHECKING:
    import pandas as pd

    from lgerisk.types import JSONDict

    _Handler: TypeAlias = Callable[[int, FrameType | None], object] | int | signal.Handlers | None
    """What ``signal.signal`` returns: the handler it replaced."""

T = TypeVar("T")
C = TypeVar("C")
"""A batch's case (``lgerisk.io.cohort.Case`` in every command)."""
R = TypeVar("R")
"""What a batch's ``work`` returns for one case."""
C_contra = TypeVar("C_contra", contravariant=True)
R_contra = TypeVar("R_contra", contravariant=True)


class _Named(Protocol):
    """A case that names itself (what ``run_batch``'s default ``case_id`` reads)."""

    @property
    def case_id(self) -> str: ...


ERRORS_DIR = ".errors"

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""Signals that stop a batch (Ctrl-C; a scheduler's or ``kill``'s terminate)."""

STOP_GRACE_S = 1.0
"""Seconds a terminated worker gets to remove its temporary files before it is killed."""

PARENT_WATCH_INTERVAL_S = 0.5
"""How often a worker checks that the process that started it is still alive."""

_PR_SET_PDEATHSIG = 1
"""``prctl`` option: the signal a process receives when its parent dies (Linux)."""


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based, as in SLURM ``--array=1-N``)."""

    index: int = 1
    count: int = 1

    @classmethod
    def parse(cls, text: str | None) -> Shard:
        """``"i/n"`` -> ``Shard(i, n)``; ``None`` -> the whole batch.

        Example:
            >>> Shard.parse("2/4")
            Shard(index=2, count=4)
        """
        if text is None or text == "":
            return cls()
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError as exc:
            raise InputError(
                f"shard={text!r}: expected i/n, e.g. 1/4 (1-based, as SLURM_ARRAY_TASK_ID).", setting="shard"
            ) from exc
        if count < 1 or not 1 <= index <= count:
            raise InputError(f"shard={text!r}: i must be between 1 and n.", setting="shard")
        return cls(index, count)

    def select(self, items: Sequence[T]) -> list[T]:
        """Every ``count``-th item starting at ``index - 1`` (round-robin: shards stay balanced)."""
        return list(items[self.index - 1 :: self.count])


@dataclass
class BatchReport:
    """What a batch did: ids done now, skipped as already done, and failures (id -> message)."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    # left untyped: what ``work`` (or the stage) gave each case, each command's own record, read back by it
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0 when every case succeeded, 1 when some failed."""
        return 1 if self.failed else 0

    @property
    def finished(self) -> int:
        """Cases finished so far: done now, already done, or failed."""
        return len(self.done) + len(self.skipped) + len(self.failed)


@dataclass(frozen=True)
class BatchResult:
    """What a batch command gives back: its table (a row per finished case), the failed cases, where it wrote.

    Attributes:
        out: the output it wrote (a folder or a file), or None where it wrote none (``predict`` to stdout).
        done: ids of the cases done by this run.
        skipped: how many cases an earlier run had already done (resumed, not redone).
        failed: id -> the one sentence saying why that case failed.
        rows: the table (see :attr:`table`), where the batch made one.
    """

    out: Path | None
    done: tuple[str, ...] = ()
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    rows: pd.DataFrame | None = field(default=None, repr=False)

    @classmethod
    def of(cls, report: BatchReport, out: Path | None, table: pd.DataFrame) -> BatchResult:
        """The result of the batch that ``report`` followed, with its table."""
        return cls(out, tuple(report.done), len(report.skipped), dict(report.failed), rows=table)

    @property
    def table(self) -> pd.DataFrame:
        """One row per finished case (done now or already done), as the command writes it."""
        if self.rows is None:
            raise ValueError("this batch result holds no table")
        return self.rows

    @property
    def exit_code(self) -> int:
        """0 when every case succeeded, 1 when some failed (the command's exit status)."""
        return 1 if self.failed else 0

    @property
    def errors(self) -> pd.DataFrame:
        """The failed cases as a table: ``case_id``, ``error``."""
        import pandas as pd

        rows = [{"case_id": key, "error": value} for key, value in self.failed.items()]
        return pd.DataFrame(rows, columns=["case_id", "error"])

    def summary(self) -> str:
        """One line: how many cases were done, already done and failed, and where the outputs are."""
        line = f"{len(self.done)} done, {self.skipped} already done, {len(self.failed)} failed"
        if self.out is not None:
            line += f" -> {self.out}" + (" (see the errors table)" if self.failed else "")
        return line


# --- worker processes ----------------------------------------------------------------------------------


def _stop_worker(signum: int, frame: FrameType | None = None) -> NoReturn:
    """Remove this worker's temporary files and exit at once (128 + ``signum``, as a shell reports it)."""
    remove_in_flight()
    os._exit(128 + signum)


def set_parent_death_signal(signum: int) -> bool:
    """Ask the kernel to send ``signum`` to this process when its parent dies (Linux ``prctl``);
    returns whether it was set (False elsewhere)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0)
    except (OSError, AttributeError):  # pragma: no cover - no libc prctl
        return False


def watch_parent(parent_pid: int, interval: float = PARENT_WATCH_INTERVAL_S) -> None:
    """Exit this process (as ``_stop_worker`` does) once ``parent_pid`` is no longer its parent.

    Runs forever in a daemon thread of each worker: the fallback where the parent-death signal is
    not available (or was not set), so a worker never outlives a parent killed by SIGKILL.
    """
    while os.getppid() == parent_pid:
        time.sleep(interval)
    _stop_worker(signal.SIGTERM)


STAGE_WORKER_NICENESS = 10
"""How much lower the workers' scheduling priority is than the parent's when the parent runs a stage (a
network) on their results: the stage is the batch's critical path (each of its passes waits on the previous
one), so it should not wait for a core while workers, which can prepare ahead, hold them. Only the workers'
priority is lowered, never raised (``os.nice`` is relative and stops at 19)."""


def init_worker(parent_pid: int, death_signal: bool = True, niceness: int = 0) -> None:
    """Set up a worker process of ``run_batch`` (the pool's initializer; also runs under spawn).

    SIGINT is ignored (the parent decides, and terminates the workers); SIGTERM removes the worker's
    temporary files and exits. The worker exits when ``parent_pid`` dies: by the parent-death signal
    (when ``death_signal``, on Linux) and by a thread watching ``os.getppid()``. The signals stay
    blocked from the parent's ``submit`` until here, so none arrives half-way through start-up.
    ``niceness``: lower the worker's scheduling priority by this much (``os.nice``).
    """
    if niceness > 0 and hasattr(os, "nice"):
        os.nice(niceness)
    IN_FLIGHT.clear()  # a forked worker's copy of the parent's list: those files are not this worker's
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop_worker)
    if death_signal:
        set_parent_death_signal(signal.SIGTERM)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    if os.getppid() != parent_pid:  # the parent died before the death signal was armed
        _stop_worker(signal.SIGTERM)
    threading.Thread(target=watch_parent, args=(parent_pid,), name="lgerisk-parent-watch", daemon=True).start()
    try:
        import SimpleITK as sitk

        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
        sitk.ProcessObject.SetGlobalWarningDisplay(False)
    except ImportError:  # pragma: no cover
        pass


UNEXPECTED = "unexpected"
"""The ``details`` key that marks a failure as an unexpected exception (a bug), not an ``LgeriskError``."""


def _call(work: Callable[[C], R], case: C, debug: bool) -> tuple[bool, R | str, dict[str, object] | None]:
    """``(True, result, None)``, or ``(False, message, details)`` when the case failed; an unexpected
    exception's details are ``{UNEXPECTED: True}`` and its message one line (its traceback with ``debug``)."""
    try:
        return True, work(case), None
    except OutputError as exc:
        if exc.exit_code == OutputError.exit_code:  # 74: a full disk fails every case after it; say it once
            raise
        return False, str(exc), exc.details
    except LgeriskError as exc:
        return False, str(exc), exc.details
    except Exception as exc:  # noqa: BLE001 - one bad case must not stop the batch
        if debug:
            return False, "".join(traceback.format_exception(exc)), {UNEXPECTED: True}
        return False, f"unexpected {type(exc).__name__}: {exc}", {UNEXPECTED: True}


# --- the parent: signals and the pool ------------------------------------------------------------------


class _StopSignals:
    """While active, the first SIGINT or SIGTERM raises ``Interrupted`` in the main thread; later ones
    (and any arriving while ``holding``) are only remembered, so stopping the workers is never cut short."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.holding = False
        self._previous: dict[int, _Handler] = {}

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
            if not self.holding:
                raise Interrupted(signum)

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)


@contextmanager
def _stop_signals_blocked() -> Iterator[None]:
    """Block SIGINT and SIGTERM in this thread; processes (and threads) started meanwhile inherit the
    block, which ``init_worker`` lifts once its handlers are in place. Pending signals arrive on exit."""
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - not POSIX
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _stop_pool(pool: ProcessPoolExecutor) -> dict[int, int | None]:
    """Cancel what has not started, terminate every worker (killed after ``STOP_GRACE_S``) and wait
    for them all; returns each worker's exit code."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # the pool's only handle on them
    manager = getattr(pool, "_executor_manager_thread", None)
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.exitcode is None:
            process.kill()
            process.join()
    if manager is not None:
        manager.join(STOP_GRACE_S)  # it sees the workers gone and winds down; never wait on it forever
    return {process.pid: process.exitcode for process in processes}


def _worker_death(exit_codes: list[int], finished: int, total: int) -> BaseException:
    """What a pool broken by a dying worker means: a SIGTERM sent to the workers (a scheduler stopping
    the whole job) is an interrupt; anything else is ``WorkerDied``."""
    terminated = (128 + signal.SIGTERM, -signal.SIGTERM)
    killed = [code for code in exit_codes if code not in terminated and code != 0]
    if exit_codes and not killed:
        return Interrupted(signal.SIGTERM, finished, total)
    code = killed[0] if killed else None
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        how = f"was killed by {name}" + (" (often: out of memory)" if -code == signal.SIGKILL else "")
    else:
        how = f"exited with code {code}" if code is not None else "stopped"
    advice = ", with fewer worker processes (jobs=) if memory ran out" if code == -signal.SIGKILL else ""
    return WorkerDied(
        f"a worker process {how} after {finished} of {total} cases; the finished cases are kept: "
        f"rerun the same command to resume{advice}."
    )


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the system has one, as under SLURM)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def worker_threads(jobs: int) -> int | None:
    """Torch threads per worker process so that ``jobs`` workers share the cores (None: one process)."""
    return None if jobs <= 1 else max(1, available_cores() // jobs)


def network_threads(workers: int, default: int, cores: int | None = None) -> int | None:
    """Torch threads of a network the parent runs while ``workers`` processes prepare its inputs: the cores
    the workers leave, at least one, and no more than torch's own ``default``; ``None`` (torch's default) with
    no workers. More threads than free cores only wait on each other, and take CPU time the workers need.
    ``cores``: the cores this process may use (default: ``available_cores()``; a CPU quota that is no
    affinity mask, such as a container's, is not seen).

    Example:
        >>> network_threads(0, 8, cores=8), network_threads(2, 8, cores=8), network_threads(2, 4, cores=16)
        (None, 6, 4)
        >>> network_threads(2, 2, cores=2)
        1
    """
    if workers <= 0:
        return None
    return max(1, min(default, (cores if cores is not None else available_cores()) - workers))


def worker_start_method(requested: str | None) -> str:
    """How workers start: ``requested``, else ``fork`` on Linux and ``spawn`` elsewhere (never Python's
    platform default, which is ``forkserver`` on Linux from Python 3.14). ``forkserver`` becomes ``spawn``:
    its workers are the fork server's children, and each worker watches its own parent — the command — to
    exit when that dies.

    Example:
        >>> worker_start_method("forkserver"), worker_start_method("spawn")
        ('spawn', 'spawn')
    """
    method = requested or ("fork" if sys.platform.startswith("linux") else "spawn")
    return "spawn" if method == "forkserver" else method


IN_FLIGHT_PER_WORKER = 4
"""Cases submitted to the pool ahead of their results, per worker: enough to keep every worker busy while
the parent records (or runs a network on) results, few enough that memory does not grow with the batch."""
_END = object()


def _run_pool(
    todo: list[C],
    work: Callable[[C], R],
    debug: bool,
    jobs: int,
    start_method: str | None,
    on_result: Callable[[C, bool, R | str, dict[str, object] | None], None],
    stops: _StopSignals,
    counts: Callable[[], tuple[int, int]],
    started: Callable[[int], None] = lambda workers: None,
    lead: int = 0,
    niceness: int = 0,
) -> None:
    """Run ``work`` over ``todo`` in ``jobs`` processes, ``IN_FLIGHT_PER_WORKER`` cases a worker (or ``lead``
    in all, if more) submitted ahead of their results; the workers run ``niceness`` lower in priority.
    ``started(jobs)`` is called once the first cases are submitted, when no worker is left to fork (a fork
    must not copy a thread the caller then starts): at once where every worker is forked at the first submit
    (CPython's fork pools since gh-90622: 3.10.5, 3.11), never where workers are forked as needed. On any exception (an
    interrupt, a decision of ``on_result`` to stop, a dead worker) stop every worker before raising."""
    import multiprocessing

    method = worker_start_method(start_method)
    context = multiprocessing.get_context(method)
    pool = ProcessPoolExecutor(
        max_workers=jobs, initializer=init_worker, initargs=(os.getpid(), True, niceness), mp_context=context
    )
    # submitted, not read yet; a result read is let go at once
    futures: dict[Future[tuple[bool, R | str, dict[str, object] | None]], C] = {}
    queue = iter(todo)
    window = max(IN_FLIGHT_PER_WORKER * jobs, lead)

    def submit_more() -> None:
        """Keep ``window`` cases in flight: never more, so results waiting for a slower parent (a network,
        say) cannot pile up in memory however large the batch."""
        with _stop_signals_blocked():
            while len(futures) < window:
                item = next(queue, _END)
                if item is _END:
                    return
                case = cast("C", item)  # not _END: one of ``todo``
                futures[pool.submit(_call, work, case, debug)] = case

    try:
        submit_more()
        if method != "fork" or len(getattr(pool, "_processes", None) or ()) >= jobs:
            started(jobs)
        while futures:
            finished, _ = wait(futures, return_when=FIRST_COMPLETED)
            for future in finished:
                case = futures.pop(future)
                ok, value, details = future.result()
                on_result(case, ok, value, details)
            del finished, future, value
            submit_more()
    except BaseException as exc:
        stops.holding = True
        processes = (getattr(pool, "_processes", None) or {}).values()
        dead_before = [p.exitcode for p in processes if p.exitcode is not None]
        _stop_pool(pool)
        for future, case in futures.items():  # results that arrived but were not read yet still count
            if future.done() and not future.cancelled() and future.exception() is None:
                try:
                    on_result(case, *future.result())  # recorded first; a stop_if decision here ...
                except LgeriskError:
                    pass  # ... must not replace what is already stopping the batch (an interrupt, an error)
        if stops.received is not None:
            raise Interrupted(stops.received, *counts()) from None
        if isinstance(exc, BrokenProcessPool):
            raise _worker_death(dead_before, *counts()) from None
        raise
    pool.shutdown(wait=True)


Outcome = tuple[object, bool, object, "dict[str, object] | None"]
"""``(case, ok, value or message, details)``: how a case ended."""


class Stage(Protocol[C_contra, R_contra]):
    """A step the parent runs on the workers' results, a few cases at a time (e.g. a network that
    holds the model once, for the whole batch, while the workers prepare the next cases).

    ``start(workers)`` is called once before the first result, with the number of worker processes running
    (0: one process), when no worker is left to fork (the stage may now start threads or import modules that a
    fork must not inherit, such as torch; where Python forks workers as needed it is not called, and the stage
    does what it needs when first pushed);
    ``push`` takes one case's result and returns the cases it finished (none while it gathers a batch);
    ``flush`` finishes the cases it still holds. ``push`` and ``flush`` return ``Outcome``s.
    """

    def start(self, workers: int) -> None:
        """``workers`` processes are running: begin what the stage needs (e.g. load a model in the background)."""
        ...

    def push(self, case: C_contra, value: R_contra) -> list[Outcome]:
        """Take one result; return the outcomes of the cases finished by it."""
        ...

    def flush(self) -> list[Outcome]:
        """Finish every case still held."""
        ...


def run_batch(
    cases: Sequence[C],
    work: Callable[[C], R],
    is_done: Callable[[C], bool],
    out: Path,
    jobs: int = 1,
    description: str = "cases",
    reporter: Reporter = SILENT,
    case_id: Callable[[C], str] = lambda case: cast("_Named", case).case_id,
    start_method: str | None = None,
    stop_if: Callable[[str, str, dict[str, object] | None], None] | None = None,
    stage: Stage[C, R] | None = None,
    keep_results: bool = True,
    lead: int = 0,
) -> BatchReport:
    """Run ``work`` over ``cases`` not yet done, in ``jobs`` processes, with the ``reporter``'s progress
    bar. Unexpected exceptions in a case are recorded as its error (their traceback with
    ``reporter.debug``); each recorded message is in the ``reporter``'s wording.

    ``work`` must be picklable (a module-level function or ``functools.partial``) when
    ``jobs > 1``. ``start_method`` ``"spawn"`` starts workers afresh instead of forking: needed when
    the parent holds torch (its OpenMP thread pool does not survive a fork: forked workers hang).
    Failures are recorded under ``out/.errors``; a success clears its old error. ``stop_if(case_id,
    message, details)`` sees each failure and may raise (e.g. ``InputError``) to stop the whole batch.
    ``stage``: what the parent does with each successful result (see ``Stage``); a case is done when
    the stage finishes it, and a case it still holds at an interrupt is redone by the next run. With a
    stage, the workers run at a lower priority (``STAGE_WORKER_NICENESS``).
    ``keep_results=False``: ``report.results`` stays empty (for work whose results are on disk: memory
    then does not grow with the cohort). ``lead``: with workers, up to this many cases are submitted ahead of
    their results (or ``IN_FLIGHT_PER_WORKER`` a worker, if that is more): enough to keep the workers busy while
    the stage starts up, such as a model loading; a fixed number, so memory still does not grow with the cohort.

    Raises ``Interrupted`` on SIGINT or SIGTERM and ``WorkerDied`` when a worker process dies, after
    stopping every worker; the cases finished by then stay done (a rerun resumes).
    """
    report = BatchReport()

    def record(case: C, ok: bool, value: object, details: dict[str, object] | None = None) -> None:
        name = case_id(case)
        if ok:
            report.done.append(name)
            if keep_results:
                report.results[name] = value
            _clear_error(out, name)
        else:
            message = cast("str", value)  # not ok: ``_call``'s message
            if not (details or {}).get(UNEXPECTED):
                message = reporter.word(message)  # the library's sentence, in the caller's words
            elif not reporter.debug:
                message = f"{message} ({reporter.debug_hint})"
            report.failed[name] = message
            write_json(
                out / ERRORS_DIR / f"{name}.json",
                {"case_id": name, "error": message, "source": str(getattr(case, "image", ""))},
            )
            if stop_if is not None:
                stop_if(name, message, details)

    with _StopSignals() as stops:
        try:
            todo: list[C] = []
            for case in cases:
                if is_done(case):
                    report.skipped.append(case_id(case))
                    _clear_error(out, case_id(case))
                else:
                    todo.append(case)
            with reporter.bar(description, len(todo)) as advance:

                def finish(outcomes: list[Outcome]) -> None:
                    for outcome in outcomes:
                        record(*cast("tuple[C, bool, object, dict[str, object] | None]", outcome))  # a pushed case
                        advance()

                def on_result(case: C, ok: bool, value: R | str, details: dict[str, object] | None) -> None:
                    finish(
                        stage.push(case, cast("R", value)) if ok and stage is not None else [(case, ok, value, details)]
                    )

                if jobs <= 1 or len(todo) <= 1:
                    if stage is not None and todo:
                        stage.start(0)
                    for case in todo:
                        on_result(case, *_call(work, case, reporter.debug))
                else:
                    _run_pool(
                        todo,
                        work,
                        reporter.debug,
                        jobs,
                        start_method,
                        on_result,
                        stops,
                        lambda: (report.finished, len(cases)),
                        stage.start if stage is not None else lambda workers: None,
                        lead,
                        STAGE_WORKER_NICENESS if stage is not None else 0,
                    )
                if stage is not None:
                    finish(stage.flush())
        except Interrupted as exc:
            raise Interrupted(exc.signum, report.finished, len(cases)) from None
    return report


def read_record(path: Path, settings_hash: str) -> JSONDict | None:
    """A case's JSON record (QC or cache entry) when it exists, parses and was made with
    ``settings_hash``; else ``None`` (missing, half-written by an older version, or other settings)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("settings_hash") == settings_hash else None


def _clear_error(out: Path, name: str) -> None:
    (out / ERRORS_DIR / f"{name}.json").unlink(missing_ok=True)


def collect_errors(out: Path) -> pd.DataFrame:
    """All recorded failures under ``out`` as a DataFrame (case_id, source, error), also written
    to ``out/errors.csv`` (removed when there are none)."""
    import pandas as pd

    rows = []
    for path in sorted((out / ERRORS_DIR).glob("*.json")) if (out / ERRORS_DIR).is_dir() else []:
        try:
            rows.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    table = pd.DataFrame(rows, columns=["case_id", "source", "error"])
    if rows:
        write_csv(out / "errors.csv", table)
    else:
        (out / "errors.csv").unlink(missing_ok=True)
    return table
