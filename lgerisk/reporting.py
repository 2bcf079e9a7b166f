"""How a run talks to whoever started it: progress bars, one-line notes, the wording of errors, and
whether an unexpected error in one case stops the run.

The library never decides this itself: every run function takes a ``Reporter`` (silent by default,
as a library should be) and the command line builds one from ``--quiet`` and ``--debug``. A notebook
that wants bars passes ``Reporter(progress=True, say=print)``.

Example:
    >>> from lgerisk.reporting import Reporter, reword_settings
    >>> Reporter().note("nothing is printed")
    >>> options = {"labels": "--labels", "with_scar": "--with-scar"}
    >>> reword_settings("labels='acdc': not a preset; or use with_scar=True", options)
    "--labels 'acdc': not a preset; or use --with-scar"
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from lgerisk.progress import progress as progress_bar

__all__ = ["SILENT", "Reporter", "reword_settings"]


@dataclass(frozen=True)
class Reporter:
    """What a run shows and how it treats unexpected errors.

    Attributes:
        progress: draw progress bars (on a terminal only, and never under ``LGERISK_NO_PROGRESS=1``).
        say: called with each one-line note of a run (an epoch's losses, a method's C-index); ``None``
            for none.
        debug: an unexpected exception in one case of a batch stops the run with its traceback,
            instead of being recorded as that case's error while the others go on.
        wording: rewrites each error message before it is recorded (a batch's errors table) or shown;
            the command line's names settings by its options (``labels=`` -> ``--labels``).
    """

    progress: bool = False
    say: Callable[[str], None] | None = None
    debug: bool = False
    wording: Callable[[str], str] | None = None

    def bar(self, description: str, total: int, show: tuple[str, ...] = (), transient: bool = False) -> progress_bar:
        """A progress bar of ``total`` steps (drawn only when ``progress`` is on)."""
        return progress_bar(description, total, quiet=not self.progress, show=show, transient=transient)

    def note(self, message: str) -> None:
        """Pass one line to ``say`` (nothing when it is ``None``)."""
        if self.say is not None:
            self.say(message)

    def word(self, message: str) -> str:
        """``message`` as this reporter's audience reads it (``wording`` applied)."""
        return self.wording(message) if self.wording is not None else message


SILENT = Reporter()
"""No bars, no notes, errors recorded per case: the library's default."""

_KEYWORD = re.compile(r"('[^']*'|\"[^\"]*\")|\b([a-z][a-z0-9_]*)=(True\b|(?=[\s.,;:)]|$))?")


def reword_settings(text: str, options: Mapping[str, str]) -> str:
    """``text`` with each setting keyword ``name=`` that ``options`` maps rewritten as its option
    (``"--name "``; ``name=True``, and a bare ``name=`` that names the setting without a value, as
    the option alone). Quoted text (label maps such as ``'myocardium=2'``) is left alone.

    Example:
        >>> reword_settings("folds=5 needs 5 events; 'scar=3' is fine; mode=x", {"folds": "--folds"})
        "--folds 5 needs 5 events; 'scar=3' is fine; mode=x"
        >>> reword_settings("lower folds= or jobs=.", {"folds": "--folds", "jobs": "--jobs"})
        'lower --folds or --jobs.'
    """

    def replace(match: re.Match[str]) -> str:
        quoted, name, bare = match.groups()
        if quoted is not None or name not in options:
            return match.group(0)
        return options[name] if bare is not None else f"{options[name]} "

    return _KEYWORD.sub(replace, text)
