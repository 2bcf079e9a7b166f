"""Progress bars: rich on a terminal, silent with ``--quiet``, when not a terminal, or under
``LGERISK_NO_PROGRESS=1``."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from rich.progress import ProgressColumn


class progress:  # noqa: N801 - used like a function: ``with progress(...) as advance``
    """Context manager yielding ``advance(**fields)``; ``show`` names fields printed beside the bar.

    Example:
        >>> with progress("cases", 3, quiet=True) as advance:
        ...     advance()
    """

    def __init__(
        self, description: str, total: int, quiet: bool = False, show: tuple[str, ...] = (), transient: bool = False
    ) -> None:
        self.enabled = not quiet and total > 0 and sys.stderr.isatty() and not os.environ.get("LGERISK_NO_PROGRESS")
        self.description, self.total, self.show, self.transient = description, total, show, transient

    def __enter__(self) -> Callable[..., None]:
        if not self.enabled:
            return lambda **fields: None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        columns: list[ProgressColumn] = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
        columns += [TextColumn(f"{name} {{task.fields[{name}]:.4f}}") for name in self.show]
        columns.append(TimeRemainingColumn())
        self._bar = Progress(*columns, console=Console(stderr=True), transient=self.transient)
        self._bar.__enter__()
        fields: dict[str, Any] = {name: float("nan") for name in self.show}  # rich types its ``**fields`` loosely
        task = self._bar.add_task(self.description, total=self.total, **fields)
        return lambda **fields: self._bar.update(task, advance=1, **fields)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self.enabled:
            self._bar.__exit__(exc_type, exc, traceback)
