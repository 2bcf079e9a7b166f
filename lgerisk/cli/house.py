"""What every ``lgerisk`` command shares: the app, the common options, how errors and interrupts end a command
(one sentence and an exit code), the summary of a batch, and the quick exit at the end."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional, ParamSpec, TextIO, TypedDict, TypeVar, cast

import typer

from lgerisk.version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from typing import Unpack

    from rich.console import Console
    from typer._click import Context  # the click that typer's commands are built on (typer's own copy)
    from typer.core import TyperOption
    from typer.models import OptionInfo

    from lgerisk.batch import BatchResult
    from lgerisk.reporting import Reporter

P = ParamSpec("P")
R = TypeVar("R")


def _untyped_help(option: TyperOption | None) -> TyperOption | None:
    """The ``--help`` flag shown like every other flag: no ``<bool>`` type (a flag takes no value)."""
    if option is not None:
        option.metavar = ""
    return option


class Command(typer.core.TyperCommand):
    """A command whose ``--help`` shows no ``<bool>`` type."""

    def get_help_option(self, ctx: Context) -> TyperOption | None:
        return _untyped_help(super().get_help_option(ctx))


COMMAND_ORDER = (
    "synth",
    "preprocess",
    "calibrate-scar",
    "extract-radiomics",
    "pretrain",
    "finetune",
    "predict",
    "explain",
    "demo",
)
"""The commands in ``--help``: in the order a user runs them (whatever order their modules register them in)."""


class Group(typer.core.TyperGroup):
    """The ``lgerisk`` group, its ``--help`` shown like its commands' and its commands in ``COMMAND_ORDER``."""

    def get_help_option(self, ctx: Context) -> TyperOption | None:
        return _untyped_help(super().get_help_option(ctx))

    def list_commands(self, ctx: Context) -> list[str]:
        names = super().list_commands(ctx)
        return sorted(names, key=lambda name: (COMMAND_ORDER + (name,)).index(name))


app = typer.Typer(
    cls=Group,
    name="lgerisk",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    help="Cardiac scar analysis of LGE MRI and sudden-cardiac-death risk prediction with "
    "radiomics-guided deep learning. Research software, not for clinical use.",
)


class _FlagSettings(TypedDict, total=False):
    """The ``typer.Option`` settings a flag is given."""

    help: str
    callback: Callable[[bool], None]
    is_eager: bool


def flag(*declarations: str, **settings: Unpack[_FlagSettings]) -> OptionInfo:
    """A ``typer.Option`` for an on/off flag: no ``<bool>`` type shown in ``--help`` (a flag takes no value)."""
    # typer.Option is typed loosely, to serve as any parameter's default; what it returns is an OptionInfo
    return cast("OptionInfo", typer.Option(*declarations, metavar="", **settings))


Jobs = Annotated[int, typer.Option("--jobs", "-j", min=1, help="Worker processes.")]
ShardOption = Annotated[
    Optional[str],
    typer.Option(
        "--shard", help="Run shard i of n (1-based), e.g. --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT."
    ),
]
ScanArgs = Annotated[Optional[list[Path]], typer.Argument(help="Scan files (NIfTI, NRRD, MHA) or DICOM folders.")]
RiskModelOption = Annotated[
    Optional[Path], typer.Option("--model", help="Risk model folder from lgerisk finetune (default: $LGERISK_MODEL).")
]
MaskLabels = Annotated[
    Optional[str], typer.Option("--labels", help="Label preset or map of the masks (default: the model's).")
]
Clinical = Annotated[
    Optional[Path], typer.Option("--clinical", help="CSV case_id + covariates, for models trained with --covariates.")
]
CpuDevice = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")]
FeatureTable = Annotated[
    Optional[Path],
    typer.Option(
        "--features", help="Feature table from extract-radiomics (default: extracted and cached in OUT/cache)."
    ),
]
Quiet = Annotated[bool, flag("--quiet", "-q", help="No progress bar or summary table.")]
Debug = Annotated[bool, flag("--debug", help="Show tracebacks instead of one-line errors.")]
DicomSeg = Annotated[
    bool,
    flag(
        "--dicom-seg",
        help="Also write the scar and grey zone of each DICOM-series "
        "scan as a DICOM SEG over that series, for a DICOM viewer (keeps only the "
        "UIDs it must reference; see docs/dicom.md).",
    ),
]
Anonymise = Annotated[bool, flag("--anonymise", help="Write no DICOM at all (refused with --dicom-seg).")]


def stderr(wide: bool = False) -> Console:
    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    if wide and not console.is_terminal:  # a log file or a pipe: do not fold tables at 80 columns
        console = Console(stderr=True, highlight=False, width=160)
    return console


SETTING_OPTIONS = {
    "inplane_spacing_mm": "--spacing",
    "crop_size": "--crop",
    "remote_method": "--remote",
    "scar_smoothing_mm": "--scar-smoothing",
    "n_boot": "--bootstrap",
    "n_random": "--random-contours",
}
"""Library settings whose option is not simply ``--`` + the name with dashes (the others come from the
commands' own options)."""


@functools.cache
def option_names() -> dict[str, str]:
    """Each setting keyword a library message may name -> this command line's option for it."""
    from typer.main import get_command

    table: dict[str, str] = {}
    group = get_command(app)
    for command in getattr(group, "commands", {}).values():
        for param in command.params:
            longs = [opt for opt in getattr(param, "opts", ()) if opt.startswith("--")]
            if param.name and longs:
                table.setdefault(param.name, longs[0])
    return {**table, **SETTING_OPTIONS}


def word(message: str) -> str:
    """A library message as a command-line user reads it: settings named by their options."""
    from lgerisk.reporting import reword_settings

    return reword_settings(message, option_names())


def reporter_for(quiet: bool, debug: bool, say: Callable[[str], None] | None = None) -> Reporter:
    """The ``Reporter`` of a command: bars unless ``--quiet``, tracebacks with ``--debug``, options in errors."""
    from lgerisk.reporting import Reporter

    return Reporter(
        progress=not quiet,
        say=None if quiet else say,
        debug=debug,
        wording=word,
        debug_hint="rerun with --debug for the traceback",
    )


INTERRUPT_HINTS = {
    "pretrain": "interrupted; to continue after the last finished epoch, rerun the same command with --resume.",
    "finetune": "interrupted; rerun the same command to resume: finished folds are reused.",
}
"""What an interrupted command says where rerunning it as it was would not resume (pretrain needs --resume)."""


def friendly(command: Callable[P, R]) -> Callable[P, R]:
    """Turn library errors into one red sentence and their exit code (2 for bad input; unless ``--debug``),
    and an interrupt into one line and 128 + the signal (130 for Ctrl-C, 143 for SIGTERM)."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from lgerisk.errors import Interrupted, LgeriskError

        try:
            return command(*args, **kwargs)
        except Interrupted as exc:
            stderr().print(INTERRUPT_HINTS.get(command.__name__, str(exc)), soft_wrap=True, markup=False)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:  # Ctrl-C outside a batch
            stderr().print(INTERRUPT_HINTS.get(command.__name__, "interrupted."), soft_wrap=True, markup=False)
            raise typer.Exit(130) from None
        except LgeriskError as exc:
            if kwargs.get("debug"):
                raise
            from rich.markup import escape

            stderr().print(f"[bold red]error:[/] {escape(word(str(exc)))}", soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:  # e.g. an output folder that is a file, no permission, a full disk
            if kwargs.get("debug"):
                raise
            where = f"{exc.filename}: " if exc.filename else ""
            stderr().print(f"[bold red]error:[/] {where}{exc.strerror or exc}.", soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lgerisk {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, flag("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """lgerisk: LGE MRI scar analysis and SCD risk prediction."""


def print_summary(result: BatchResult, quiet: bool) -> None:
    """Each failed case in red, then (unless ``quiet``) how many were done and where the outputs are."""
    console = stderr()
    for case_id, message in sorted(result.failed.items()):
        console.print(f"[red]failed[/] {case_id}: {message}", soft_wrap=True)
    if not quiet:
        console.print(result.summary())


def exit_quickly(code: int | str | None) -> None:
    """End the process with ``code`` once a command is over: streams flushed and ``atexit`` handlers run
    (temporary files, multiprocessing), but without tearing down every imported module, which for torch
    alone is a noticeable share of a one-scan prediction. Falls back to a normal exit while any
    non-daemon thread is still running."""
    import atexit
    import threading

    if isinstance(code, str):  # SystemExit("message"): printed, status 1, as Python does
        print(code, file=sys.stderr)
        code = 1
    status = 0 if code is None else int(code)
    if any(t is not threading.main_thread() and not t.daemon for t in threading.enumerate()):
        sys.exit(status)
    atexit._run_exitfuncs()
    if not _flushed(sys.stdout) and status == 0:
        status = 120  # as Python reports output it could not write (e.g. a full disk)
    _flushed(sys.stderr)
    os._exit(status)


def _flushed(stream: TextIO) -> bool:
    """Flush ``stream``; False when its output was lost (a reader that closed a pipe early is no loss:
    it asked for no more, as with ``| head``)."""
    try:
        stream.flush()
    except BrokenPipeError:
        return True
    except (OSError, ValueError) as exc:
        try:
            sys.stderr.write(f"error: output could not be written ({exc}).\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        return False
    return True


def lone_scan_failed(report: BatchResult, scans: list[Path] | None) -> None:
    """One scan given and it failed: that is bad input (exit 2, one sentence), not a partial batch."""
    if scans and len(scans) == 1 and report.failed:
        message = next(iter(report.failed.values()))
        if scans[0].name not in message:
            message = f"{scans[0]}: {message}"
        stderr().print(f"[bold red]error:[/] {message}", soft_wrap=True)
        raise typer.Exit(2)
