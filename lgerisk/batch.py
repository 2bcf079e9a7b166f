"""Running one function over the cases of a cohort: shards, processes, resume, errors, progress.

Every batch command (preprocess, extract-radiomics, predict) uses ``run_batch``. A case is
skipped when ``is_done(case)`` says its outputs exist with the same inputs and settings;
failures are kept per case (one small JSON each under ``OUT/.errors/``) so concurrent shards
never write the same file, and ``collect_errors`` gathers them into ``errors.csv``.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from lgerisk.errors import InputError, LgeriskError
from lgerisk.io.atomic import write_csv, write_json
from lgerisk.progress import progress

T = TypeVar("T")

ERRORS_DIR = ".errors"


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
        except ValueError:
            raise InputError(f"--shard {text!r}: expected i/n, e.g. 1/4 (1-based, as SLURM_ARRAY_TASK_ID).") from None
        if count < 1 or not 1 <= index <= count:
            raise InputError(f"--shard {text!r}: i must be between 1 and n.")
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
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0 when every case succeeded, 1 when some failed."""
        return 1 if self.failed else 0


def _init_worker() -> None:
    try:
        import SimpleITK as sitk

        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
        sitk.ProcessObject.SetGlobalWarningDisplay(False)
    except ImportError:  # pragma: no cover
        pass


def _call(work: Callable[[Any], Any], case: Any, debug: bool) -> tuple[bool, Any]:
    try:
        return True, work(case)
    except LgeriskError as exc:
        return False, str(exc)
    except Exception as exc:  # noqa: BLE001 - one bad case must not stop the batch
        if debug:
            return False, "".join(traceback.format_exception(exc))
        return False, f"unexpected {type(exc).__name__}: {exc} (rerun with --debug for the traceback)"


def run_batch(cases: Sequence[Any], work: Callable[[Any], Any], is_done: Callable[[Any], bool], out: Path,
              jobs: int = 1, description: str = "cases", quiet: bool = False, debug: bool = False,
              case_id: Callable[[Any], str] = lambda case: case.case_id, start_method: str | None = None
              ) -> BatchReport:
    """Run ``work`` over ``cases`` not yet done, in ``jobs`` processes, with a progress bar.

    ``work`` must be picklable (a module-level function or ``functools.partial``) when
    ``jobs > 1``. ``start_method`` ``"spawn"`` starts workers afresh instead of forking: needed when
    the parent holds torch (its OpenMP thread pool does not survive a fork: forked workers hang). Failures are recorded under ``out/.errors``; a success clears its old error.
    """
    report = BatchReport()
    todo = []
    for case in cases:
        if is_done(case):
            report.skipped.append(case_id(case))
            _clear_error(out, case_id(case))
        else:
            todo.append(case)

    def record(case: Any, ok: bool, value: Any) -> None:
        name = case_id(case)
        if ok:
            report.done.append(name)
            report.results[name] = value
            _clear_error(out, name)
        else:
            report.failed[name] = value
            write_json(out / ERRORS_DIR / f"{name}.json", {"case_id": name, "error": value,
                                                          "source": str(getattr(case, "image", ""))})

    with progress(description, len(todo), quiet) as advance:
        if jobs <= 1 or len(todo) <= 1:
            for case in todo:
                ok, value = _call(work, case, debug)
                record(case, ok, value)
                advance()
        else:
            import multiprocessing

            context = multiprocessing.get_context(start_method) if start_method else None
            with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker, mp_context=context) as pool:
                futures = {pool.submit(_call, work, case, debug): case for case in todo}
                for future in as_completed(futures):
                    ok, value = future.result()
                    record(futures[future], ok, value)
                    advance()
    return report


def read_record(path: Path, settings_hash: str) -> dict[str, Any] | None:
    """A case's JSON record (QC or cache entry) when it exists, parses and was made with
    ``settings_hash``; else ``None`` (missing, half-written by an older version, or other settings)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("settings_hash") == settings_hash else None


def _clear_error(out: Path, name: str) -> None:
    (out / ERRORS_DIR / f"{name}.json").unlink(missing_ok=True)


def collect_errors(out: Path) -> Any:
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
