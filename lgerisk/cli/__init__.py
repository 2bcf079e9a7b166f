"""The ``lgerisk`` command line: each command parses its options, calls one function of :mod:`lgerisk.api`, and
prints what it gives back; no logic.

The commands live by stage (:mod:`~lgerisk.cli.prepare`: synth, preprocess, calibrate-scar, extract-radiomics;
:mod:`~lgerisk.cli.train`: pretrain, finetune; :mod:`~lgerisk.cli.score`: predict, explain, demo) and share
:mod:`~lgerisk.cli.house` (common options, errors to one sentence and an exit code). Heavy libraries (SimpleITK,
torch, pyradiomics, pandas) are imported inside the commands, never at start-up, so ``lgerisk --help`` answers
at once.
"""

from __future__ import annotations

from lgerisk.cli import prepare, score, train  # noqa: F401 - importing each registers its commands
from lgerisk.cli.house import SETTING_OPTIONS, app, exit_quickly, friendly, option_names, word

__all__ = ["SETTING_OPTIONS", "app", "exit_quickly", "friendly", "main", "option_names", "word"]


def main() -> None:
    """Console-script entry point: run the command, then end the process quickly (``exit_quickly``)."""
    try:
        app(prog_name="lgerisk")
    except SystemExit as exc:
        exit_quickly(exc.code)
    exit_quickly(0)
