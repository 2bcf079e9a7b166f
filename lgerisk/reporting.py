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
        debug: an unexpected exception (a bug, not bad data) in one case of a batch is recorded as
            that case's error with its whole traceback, instead of one line and ``debug_hint``.
        wording: rewrites the message of each ``LgeriskError`` before it is recorded (a batch's errors
            table) or shown; the command line's names settings by its options (``labels=`` -> ``--labels``).
        debug_hint: what the one line of an unexpected error adds (how to get its traceback).
    """

    progress: bool = False
    say: Callable[[str], None] | None = None
    debug: bool = False
    wording: Callable[[str], str] | None = None
    debug_hint: str = "a Reporter with debug=True records the traceback"

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

_KEYWORD = re.compile(
    r"(?<![^\s(])([a-z][a-z0-9_]*)="  # a keyword at the start, or after a space or "("
    r"(?:(True)|('[^']*'|\"[^\"]*\"|-?\d+(?:\.\d+)?(?:e-?\d+)?|-?(?:nan|inf)|[A-Z][A-Z0-9_]*)|)"  # True, value, none
    r"(?=[\s.,;:)]|$)"  # then the end of a word
)


def reword_settings(text: str, options: Mapping[str, str]) -> str:
    """``text`` with each setting keyword that ``options`` maps rewritten as its option.

    A keyword is ``name=`` at the start of the text or after a space or ``(``, followed by a value (a
    quoted string, a number, ``True`` or an upper-case placeholder such as ``FILE``) or by nothing, and
    then by the end of a word: ``name=VALUE`` becomes ``--name VALUE``, ``name=True`` and a bare
    ``name=`` the option alone. Paths (``/data/seed=0/``), label maps (``'blood=1,myocardium=2'``) and
    code (``f(x=y)``) are left alone.

    Example:
        >>> options = {"folds": "--folds", "jobs": "--jobs", "seed": "--seed", "out": "--out"}
        >>> reword_settings("folds=5 needs 5 events; 'seed=3' is quoted; jobs=x is code", options)
        "--folds 5 needs 5 events; 'seed=3' is quoted; jobs=x is code"
        >>> reword_settings("/data/seed=0/c: lower folds= or jobs= (out=FILE).", options)
        '/data/seed=0/c: lower --folds or --jobs (--out FILE).'
    """

    def replace(match: re.Match[str]) -> str:
        name, true, value = match.groups()
        if name not in options:
            return match.group(0)
        return f"{options[name]} {value}" if value is not None else options[name]

    return _KEYWORD.sub(replace, text)
