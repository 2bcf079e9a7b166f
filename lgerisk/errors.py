"""Error types shared by the library and the command line.

``InputError`` is bad usage or bad input that stops a whole command (exit code 2);
``CaseError`` is a problem with one case of a batch, which is recorded in the errors
table while the other cases go on. Both carry one clear sentence naming the file.
"""

from __future__ import annotations


class LgeriskError(Exception):
    """Base class of every error lgerisk reports to a user as one sentence."""


class InputError(LgeriskError):
    """Bad usage or input for a whole command; the CLI exits with code 2."""


class CaseError(LgeriskError):
    """A problem with one case; batches record it and continue."""
