"""Error types shared by the library and the command line.

``InputError`` is bad usage or bad input that stops a whole command (exit code 2);
``CaseError`` is a problem with one case of a batch, which is recorded in the errors
table while the other cases go on. Both carry one clear sentence naming the file, and both are
``ValueError``s; the library chains the underlying exception (``raise ... from exc``), which
``--debug`` shows. The command line maps them to that sentence and the exit code.

Messages are about the data and the settings, never about command-line flags: a setting is named
as the Python keyword that sets it (``labels='acdc': not a preset``) and ``setting`` says which one.
The command line rewords each keyword it has an option for (``--labels 'acdc': not a preset``);
see ``lgerisk.reporting.Reporter.wording``.
``OutputError`` is an output that could not be written (a full disk, a quota, an I/O error: exit code 74,
``EX_IOERR``; a folder one may not write into: exit code 2, a setting to change); nothing is written under
the output's name (an older whole file there stays), so a rerun redoes it. It is an ``OSError`` too.
``Interrupted`` is a run stopped by SIGINT or SIGTERM (exit code 128 + the signal number).
"""

from __future__ import annotations

import errno
import os
import re
import signal
from typing import TypeVar


class LgeriskError(Exception):
    """Base class of every error lgerisk reports to a user as one sentence."""

    exit_code = 2
    """Exit code of the command line when this error stops a command."""

    details: dict[str, object] | None = None
    """Plain, picklable facts behind the sentence (e.g. the labels a mask holds), for callers that
    judge failures across cases; ``None`` when there are none."""

    setting: str | None = None
    """The setting (a parameter or config field, e.g. ``"labels"``) the error is about, when it is
    about one; a notebook can point at the argument, the command line at its option."""

    def __init__(self, *args: object, setting: str | None = None) -> None:
        super().__init__(*args)
        if setting is not None:
            self.setting = setting

    def __reduce__(self) -> tuple[object, ...]:
        """Pickle the attributes too (``setting``, ``details``), also of subclasses with their own
        ``__init__``: errors may cross process boundaries in batches."""
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


_E = TypeVar("_E", bound=LgeriskError)


def _rebuild(cls: type[_E], args: tuple[object, ...], state: dict[str, object]) -> _E:
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc


class InputError(LgeriskError, ValueError):
    """Bad input for a whole run (a file, a setting, a model folder); the CLI exits with code 2.

    A ``ValueError``, so code that calls the library can catch it as one."""


class CaseError(LgeriskError, ValueError):
    """A problem with one case's data; batches record it and continue (a ``ValueError`` too)."""


class OutputError(LgeriskError, OSError):
    """An output file could not be written (``errno`` says why); nothing was written under its name.

    Exit code 74 (``EX_IOERR`` of sysexits.h) when the storage failed: a full disk, a quota, an I/O error, a
    write that came out short; 2 when the output's folder may not be written (no permission, a read-only
    file system), which is a setting to change like bad input. An ``OSError`` too, so code that catches
    those still does; its message is one sentence naming the output, never the temporary file beside it.

    Example:
        >>> import errno
        >>> exc = OutputError.naming("out/image.nii.gz", errno.ENOSPC)
        >>> str(exc), exc.exit_code
        ('out/image.nii.gz: could not be written (No space left on device); nothing was written under that name.', 74)
        >>> OutputError.naming("out/cases.csv", errno.EACCES).exit_code
        2
    """

    exit_code = 74

    path = ""
    """The output that could not be written."""

    SETTING_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
    """What a different output folder fixes (exit code 2); every other errno is the storage's (74)."""

    @classmethod
    def naming(cls, path: str | os.PathLike[str], error: int, reason: str | None = None) -> OutputError:
        """The error for output ``path`` that failed with ``errno`` ``error`` (``reason``: what happened, when
        the errno's own words, e.g. "No space left on device", are not enough)."""
        exc = cls(
            f"{path}: could not be written ({reason or os.strerror(error)}); nothing was written under that name."
        )
        exc.errno = error
        exc.path = str(path)
        if error in cls.SETTING_ERRNOS:
            exc.exit_code = 2
        return exc

    def __reduce__(self) -> tuple[object, ...]:
        """Pickle ``errno`` too (an ``OSError`` keeps it outside ``__dict__``)."""
        return (_rebuild_output, (type(self), self.args, dict(self.__dict__), self.errno))


def _rebuild_output(
    cls: type[OutputError], args: tuple[object, ...], state: dict[str, object], error: int | None
) -> OutputError:
    exc = _rebuild(cls, args, state)
    exc.errno = error
    return exc


class WorkerDied(LgeriskError):
    """A worker process of a batch died abruptly (killed, out of memory, crashed); the CLI exits with code 1."""

    exit_code = 1


class Interrupted(BaseException):  # noqa: N818 - named for what happened, like KeyboardInterrupt
    """A batch stopped by a signal after ``completed`` of ``total`` cases (either may be unknown).

    A ``BaseException``, like ``KeyboardInterrupt``: per-case ``except Exception`` handlers must not
    record an interrupt as a failed case.

    Example:
        >>> str(Interrupted(2, 14, 60))
        'interrupted after 14 of 60 cases; rerun the same command to resume'
        >>> Interrupted(15).exit_code
        143
    """

    def __init__(self, signum: int = signal.SIGINT, completed: int | None = None, total: int | None = None) -> None:
        super().__init__(signum, completed, total)
        self.signum, self.completed, self.total = int(signum), completed, total

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process stopped by that signal (130, 143)."""
        return 128 + self.signum

    def __str__(self) -> str:
        if self.completed is None or self.total is None:
            return "interrupted; rerun the same command to resume"
        return f"interrupted after {self.completed} of {self.total} cases; rerun the same command to resume"


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")


def brief(exc: BaseException | str, limit: int = 160) -> str:
    """An exception's message on one line, shortened by whole sentences only, never mid-word.

    Whitespace runs (newlines included) become single spaces. Whole sentences are kept while they fit
    in ``limit`` characters; the first sentence is always kept whole, however long, so a reason is
    never cut mid-word or mid-sentence (a cut message reads like "``torch.load`` fr").

    Example:
        >>> brief("Weights only load failed.\\n  Re-running `torch.load` from a trusted source may work. More.", 85)
        'Weights only load failed. Re-running `torch.load` from a trusted source may work.'
    """
    text = " ".join(str(exc).split())
    sentences = _SENTENCE_END.split(text)
    kept = sentences[0]
    for sentence in sentences[1:]:
        if len(kept) + 1 + len(sentence) > limit:
            break
        kept = f"{kept} {sentence}"
    return kept
