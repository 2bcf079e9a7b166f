"""The ``lgerisk`` command line: one small function per command, no logic.

Heavy libraries (SimpleITK, torch, pyradiomics, pandas) are imported inside the commands,
never at start-up, so ``lgerisk --help`` answers at once.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from lgerisk.training.finetune_config import FinetuneConfig
from lgerisk.training.pretrain import PretrainConfig
from lgerisk.version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

    from lgerisk.reporting import Reporter


def _untyped_help(option: Any) -> Any:
    """The ``--help`` flag shown like every other flag: no ``<bool>`` type (a flag takes no value)."""
    if option is not None:
        option.metavar = ""
    return option


class _Command(typer.core.TyperCommand):
    """A command whose ``--help`` shows no ``<bool>`` type."""

    def get_help_option(self, ctx: Any) -> Any:
        return _untyped_help(super().get_help_option(ctx))


class _Group(typer.core.TyperGroup):
    """The ``lgerisk`` group, its ``--help`` shown like its commands'."""

    def get_help_option(self, ctx: Any) -> Any:
        return _untyped_help(super().get_help_option(ctx))


app = typer.Typer(
    cls=_Group,
    name="lgerisk",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    help="Cardiac scar analysis of LGE MRI and sudden-cardiac-death risk prediction with "
    "radiomics-guided deep learning. Research software, not for clinical use.",
)


def flag(*declarations: str, **settings: Any) -> Any:
    """A ``typer.Option`` for an on/off flag: no ``<bool>`` type shown in ``--help`` (a flag takes no value)."""
    return typer.Option(*declarations, metavar="", **settings)


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


def _stderr(wide: bool = False) -> Console:
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
def _options() -> dict[str, str]:
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

    return reword_settings(message, _options())


def _reporter(quiet: bool, debug: bool, say: Callable[[str], None] | None = None) -> Reporter:
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


def friendly(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors into one red sentence and their exit code (2 for bad input; unless ``--debug``),
    and an interrupt into one line and 128 + the signal (130 for Ctrl-C, 143 for SIGTERM)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from lgerisk.errors import Interrupted, LgeriskError

        try:
            return command(*args, **kwargs)
        except Interrupted as exc:
            _stderr().print(INTERRUPT_HINTS.get(command.__name__, str(exc)), soft_wrap=True, markup=False)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:  # Ctrl-C outside a batch
            _stderr().print(INTERRUPT_HINTS.get(command.__name__, "interrupted."), soft_wrap=True, markup=False)
            raise typer.Exit(130) from None
        except LgeriskError as exc:
            if kwargs.get("debug"):
                raise
            from rich.markup import escape

            _stderr().print(f"[bold red]error:[/] {escape(word(str(exc)))}", soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:  # e.g. an output folder that is a file, no permission, a full disk
            if kwargs.get("debug"):
                raise
            where = f"{exc.filename}: " if exc.filename else ""
            _stderr().print(f"[bold red]error:[/] {where}{exc.strerror or exc}.", soft_wrap=True)
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


@app.command(cls=_Command)
@friendly
def synth(
    out: Annotated[Path, typer.Argument(help="Folder to write the synthetic cohort into.")],
    cases: Annotated[int, typer.Option("--cases", "-n", min=1, help="Number of cases.")] = 32,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same cohort).")] = 0,
    small: Annotated[bool, flag("--small", help="Small matrices and few slices (compact sample data).")] = False,
    force: Annotated[
        bool,
        flag(
            "--force",
            help="Write into a non-empty folder that is not a cohort lgerisk synth wrote (nothing there is removed).",
        ),
    ] = False,
    hazard_version: Annotated[
        int,
        typer.Option(
            "--hazard-version",
            min=1,
            max=2,
            help="Outcome model: 2 = image "
            "terms scar % cannot see (default); 1 = generator 1.0's (reproduces "
            "cohorts made before 2.0).",
        ),
    ] = 2,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Generate a SYNTHETIC LGE cohort with labels, outcomes and the true log-hazard.

    Example: [bold]lgerisk synth work/synth --cases 300 --seed 1[/] (add --hazard-version 1 for generator 1.0)
    """
    from lgerisk.progress import progress
    from lgerisk.synth import SynthConfig, generate_cohort

    config = SynthConfig(n_cases=cases, seed=seed, small=small, hazard_version=hazard_version)
    with progress("synth", cases, quiet) as advance:
        truth = generate_cohort(out, config, progress=lambda n: advance(), force=force)
    if not quiet:
        _stderr().print(
            f"wrote {len(truth)} SYNTHETIC cases to {out} (images/, masks/, outcomes.csv, ground_truth.csv)"
        )


@app.command(cls=_Command)
@friendly
def preprocess(
    data: Annotated[Path, typer.Option("--data", "-d", help="Cohort folder or CSV manifest.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (resumable).")],
    labels: Annotated[
        str,
        typer.Option(
            "--labels",
            help="Label preset (emidec, myops, acdc) or map, e.g. "
            "'blood=1,myocardium=2,scar=3+4'; DICOM SEG/RTSTRUCT structure names with "
            "name:, e.g. 'myocardium=name:LV Myo'.",
        ),
    ] = "emidec",
    scar_method: Annotated[
        str,
        typer.Option(
            "--scar-method",
            help="auto (label scar if the map names it, else fwhm), label, fwhm, nsd or calibrated "
            "(fwhm as lgerisk calibrate-scar learnt it; with --scar-calibration).",
        ),
    ] = "auto",
    scar_calibration: Annotated[
        str, typer.Option("--scar-calibration", help="With --scar-method calibrated: the calibrate-scar folder.")
    ] = "",
    nsd: Annotated[float, typer.Option("--nsd", help="n of the n-SD scar threshold (e.g. 2, 3, 5, 6).")] = 5.0,
    greyzone_nsd: Annotated[
        float, typer.Option("--greyzone-nsd", help="Grey zone starts at remote + this many SD.")
    ] = 2.0,
    remote: Annotated[
        str,
        typer.Option(
            "--remote", help="Remote-myocardium reference: mixture, iterative or whole (the old, scar-biased one)."
        ),
    ] = "mixture",
    scar_smoothing: Annotated[
        float,
        typer.Option(
            "--scar-smoothing", help="In-plane smoothing (mm, Gaussian SD) within the myocardium for fwhm; 0 for none."
        ),
    ] = 2.5,
    spacing: Annotated[float, typer.Option("--spacing", help="In-plane spacing (mm) after resampling.")] = 1.4,
    crop: Annotated[int, typer.Option("--crop", help="In-plane crop size (voxels) around the LV.")] = 96,
    normalisation: Annotated[
        str, typer.Option("--normalisation", help="myo-blood, zscore or percentile.")
    ] = "myo-blood",
    dicom_seg: DicomSeg = False,
    anonymise: Anonymise = False,
    jobs: Jobs = 1,
    shard: ShardOption = None,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Canonical, LV-cropped, normalised cases with scar quantified and a QC JSON each.

    Example: [bold]lgerisk preprocess --data sample_data --out work/prep --jobs 2[/]

    Writes OUT/cases/ID/{image,mask}.nii.gz + qc.json, OUT/cases.csv and OUT/errors.csv.
    Exit 0: all cases done; 1: some failed (see errors.csv); 2: bad usage or input.
    """
    from lgerisk.batch import Shard
    from lgerisk.io.dicom_seg import dicom_seg_wanted
    from lgerisk.preprocess.config import PreprocessConfig
    from lgerisk.preprocess.run import preprocess_cohort

    config = PreprocessConfig(
        labels=labels,
        inplane_spacing_mm=spacing,
        crop_size=crop,
        normalisation=normalisation,
        scar_method=scar_method,
        nsd=nsd,
        greyzone_nsd=greyzone_nsd,
        remote_method=remote,
        scar_smoothing_mm=scar_smoothing,
        scar_calibration=scar_calibration,
    )
    report, table = preprocess_cohort(
        data,
        out,
        config,
        jobs=jobs,
        shard=Shard.parse(shard),
        reporter=_reporter(quiet, debug),
        dicom_seg=dicom_seg_wanted(dicom_seg, anonymise),
    )
    _summary(report, out, quiet)
    from lgerisk.preprocess.run import scar_check_sentence

    check = scar_check_sentence(table)
    if check and not quiet:
        _stderr().print(check, soft_wrap=True, markup=False)
    raise typer.Exit(report.exit_code)


@app.command("calibrate-scar", cls=_Command)
@friendly
def calibrate_scar(
    data: Annotated[Path, typer.Option("--data", "-d", help="Expert-labelled scans (their masks hold scar).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for the calibration and its card.")],
    labels: Annotated[
        str, typer.Option("--labels", help="Label preset (emidec, myops) or map of the labelled scans; must name scar.")
    ] = "emidec",
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Learn the derived scar's setting (fwhm's peak fraction) from a few expert-labelled scans.

    Example: [bold]lgerisk calibrate-scar --data labelled --labels myops --out work/calib[/]
    then: [bold]lgerisk preprocess --data cohort --out work/prep --scar-method calibrated
    --scar-calibration work/calib[/]

    Writes OUT/scar_calibration.json (the card: the setting, the scans, agreement in-sample and leave-one-out).
    Exit 0: written; 2: bad usage or input.
    """
    from lgerisk.preprocess.calibrate import calibrate_scar as calibrate
    from lgerisk.preprocess.calibrate import calibration_sentence

    calibration = calibrate(data, out, labels=labels, reporter=_reporter(quiet, debug, say=_stderr().print))
    if not quiet:
        _stderr().print(calibration_sentence(calibration, out), soft_wrap=True, markup=False)


@app.command("extract-radiomics", cls=_Command)
@friendly
def extract_radiomics(
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            "-d",
            help="Preprocessed folder, or a raw cohort folder or "
            "manifest (preprocessed first, with the preprocess defaults and --labels).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Feature table (CSV) to write.")],
    rois: Annotated[str, typer.Option("--rois", help="ROIs: myocardium, scar, greyzone.")] = "myocardium,scar,greyzone",
    params: Annotated[
        Optional[Path],
        typer.Option(
            "--params",
            help="Your own pyradiomics YAML (validated with pyradiomics' schema); default: the shipped LGE settings.",
        ),
    ] = None,
    image_types: Annotated[
        Optional[str],
        typer.Option(
            "--image-types", help="original, log, wavelet (comma-separated); default: those of the parameter file."
        ),
    ] = None,
    labels: Annotated[str, typer.Option("--labels", help="Label preset or map of a raw cohort.")] = "emidec",
    stability: Annotated[
        bool,
        flag("--stability", help="Also re-extract under segmentation perturbations and write per-feature ICCs."),
    ] = False,
    perturbations: Annotated[
        int,
        typer.Option(
            "--random-contours",
            min=0,
            help="Contour randomisations per case for --stability (besides erosion and dilation).",
        ),
    ] = 2,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the contour randomisations.")] = 0,
    jobs: Jobs = 1,
    shard: ShardOption = None,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """pyradiomics features of the myocardium, scar and grey zone: a row a case, with provenance.

    Example: [bold]lgerisk extract-radiomics --data work/prep --out work/radiomics.csv --jobs 2[/]

    Also writes OUT.errors.csv (failed cases), OUT.stability.csv (with --stability) and OUT.parts/ (the
    resume cache). Exit 0: all cases done; 1: some failed; 2: bad usage or input.
    """
    from lgerisk.batch import Shard
    from lgerisk.preprocess.config import PreprocessConfig
    from lgerisk.radiomics.run import extract_cohort
    from lgerisk.radiomics.settings import parse_image_types, parse_rois

    report, table, stability_table = extract_cohort(
        data,
        out,
        params_path=str(params) if params else None,
        image_types=parse_image_types(image_types) if image_types else None,
        rois=parse_rois(rois),
        jobs=jobs,
        shard=Shard.parse(shard),
        stability=stability,
        n_random=perturbations,
        seed=seed,
        preprocess_config=PreprocessConfig(labels=labels),
        reporter=_reporter(quiet, debug),
    )
    _summary(report, out, quiet)
    if stability_table is not None and not quiet:
        robust = int(stability_table["robust"].sum())
        _stderr().print(
            f"stability: {robust} of {len(stability_table)} features robust (ICC(1,1) >= 0.75), "
            f"{int(stability_table['excellent'].sum())} excellent (>= 0.9)"
        )
    raise typer.Exit(report.exit_code)


@app.command(cls=_Command)
@friendly
def pretrain(
    data: Annotated[
        Path,
        typer.Option(
            "--data", "-d", help="Raw cohort (folder or manifest) or preprocessed folder; unlabelled scans are enough."
        ),
    ],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Run folder to write (model.pt, model_card.json, metrics.csv, checkpoint/)."),
    ],
    features: FeatureTable = None,
    epochs: Annotated[
        int, typer.Option("--epochs", min=1, help="Passes over the cohort; --resume continues a stopped run.")
    ] = PretrainConfig.epochs,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=2, help="Global batch (all processes).")
    ] = PretrainConfig.batch_size,
    lr: Annotated[
        float, typer.Option("--lr", help="Peak learning rate (AdamW, warm-up then cosine).")
    ] = PretrainConfig.lr,
    objective: Annotated[
        str,
        typer.Option(
            "--objective",
            help="radiomics (image<->radiomics; the default), hybrid (+ image<->image), or simclr (image only).",
        ),
    ] = "radiomics",
    clip_weight: Annotated[
        Optional[float],
        typer.Option("--clip-weight", help="Weight of image<->radiomics InfoNCE (default: the preset's)."),
    ] = None,
    simclr_weight: Annotated[
        Optional[float],
        typer.Option("--simclr-weight", help="Weight of image<->image NT-Xent (default: the preset's)."),
    ] = None,
    temperature: Annotated[float, typer.Option("--temperature", help="InfoNCE temperature.")] = 0.1,
    learn_temperature: Annotated[bool, flag("--learn-temperature", help="Learn the temperature (CLIP-style).")] = False,
    queue_size: Annotated[
        int,
        typer.Option(
            "--queue-size",
            min=0,
            help="Past embeddings kept as extra "
            "negatives (0: off, the default; see docs/commands.md, 'lgerisk pretrain').",
        ),
    ] = 0,
    scarf_rate: Annotated[
        float, typer.Option("--scarf-rate", help="Share of radiomics features resampled from their marginals (SCARF).")
    ] = 0.3,
    negatives: Annotated[
        str,
        typer.Option(
            "--negatives",
            help="batch (the batch's other cases) or all (every "
            "training case's radiomics, each step) for image->radiomics.",
        ),
    ] = "batch",
    false_negative_similarity: Annotated[
        Optional[float],
        typer.Option(
            "--false-negative-similarity",
            help="Cases whose radiomics have cosine similarity >= this are not each other's negatives (default: off).",
        ),
    ] = None,
    aux_weight: Annotated[
        float,
        typer.Option(
            "--aux-weight",
            min=0.0,
            help="Weight of an auxiliary head regressing radiomics/QC targets from the image embedding (0: off).",
        ),
    ] = PretrainConfig.aux_weight,
    aux_targets: Annotated[
        str,
        typer.Option(
            "--aux-targets", help="all (the whole radiomics view) or qc (scar %, grey-zone %, mass, volumes)."
        ),
    ] = PretrainConfig.aux_targets,
    radiomics_view: Annotated[
        str,
        typer.Option(
            "--radiomics-view", help="decorrelated (drop features with |r| > 0.9 against an earlier one) or all."
        ),
    ] = PretrainConfig.radiomics_view,
    augment: Annotated[
        str,
        typer.Option(
            "--augment",
            help="default, or preserving (no scaling, elastic warp, "
            "gamma or bias field: wall thickness and enhancement kept).",
        ),
    ] = "default",
    width: Annotated[
        int, typer.Option("--width", min=4, help="Encoder base width (16 CPU, 32-64 GPU).")
    ] = PretrainConfig.width,
    val_fraction: Annotated[
        float, typer.Option("--val-fraction", help="Held-out share for validation.")
    ] = PretrainConfig.val_fraction,
    labels: Annotated[
        str, typer.Option("--labels", help="Label preset or map of a raw cohort.")
    ] = PretrainConfig.labels,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    amp: Annotated[bool, flag("--amp/--no-amp", help="Mixed precision on CUDA.")] = PretrainConfig.amp,
    num_workers: Annotated[
        int, typer.Option("--num-workers", min=0, help="Data-loading processes.")
    ] = PretrainConfig.num_workers,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same device: same weights.")] = PretrainConfig.seed,
    resume: Annotated[bool, flag("--resume", help="Continue the run in OUT after its last finished epoch.")] = False,
    jobs: Jobs = 1,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Pretrain the 3D image encoder with radiomics-guided contrastive learning.

    Example: [bold]lgerisk pretrain --data sample_data --out work/pretrain --epochs 5[/]

    Multi-GPU / multi-node: [bold]torchrun --nproc_per_node=4 -m lgerisk pretrain --data D --out RUN[/]
    """
    from lgerisk.data.augment import AUGMENT_PRESETS
    from lgerisk.errors import InputError
    from lgerisk.objectives.contrastive import objective_settings
    from lgerisk.training.pretrain import PretrainConfig, run_pretrain

    if augment not in AUGMENT_PRESETS:
        raise InputError(f"--augment {augment!r}: choose one of {', '.join(AUGMENT_PRESETS)}.")
    settings = objective_settings(
        objective,
        temperature=temperature,
        learn_temperature=learn_temperature,
        queue_size=queue_size,
        scarf_rate=scarf_rate,
        negatives=negatives,
        false_negative_similarity=false_negative_similarity,
        clip_weight=clip_weight,
        simclr_weight=simclr_weight,
    )
    config = PretrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        val_fraction=val_fraction,
        seed=seed,
        width=width,
        objective=settings,
        labels=labels,
        num_workers=num_workers,
        amp=amp,
        aux_weight=aux_weight,
        aux_targets=aux_targets,
        radiomics_view=radiomics_view,
        augment=dict(AUGMENT_PRESETS[augment]),
    )
    console = _stderr()
    summary = run_pretrain(
        data,
        out,
        config,
        features=str(features) if features else None,
        device=device,
        resume=resume,
        jobs=jobs,
        reporter=_reporter(quiet, debug, console.print),
    )
    if not quiet and os.environ.get("RANK", "0") == "0":
        kind = "SYNTHETIC cases" if summary.synthetic else "cases"
        console.print(f"pretrained on {summary.train_cases} {kind} ({summary.val_cases} held out) -> {out}")


def _floats(text: str, option: str) -> tuple[float, ...]:
    from lgerisk.errors import InputError

    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise InputError(f"{option} {text!r}: give comma-separated numbers, e.g. 1,3,5.") from None


@app.command(cls=_Command)
@friendly
def finetune(
    data: Annotated[
        Path,
        typer.Option(
            "--data", "-d", help="Raw cohort (folder or manifest) or preprocessed folder, with outcomes (time, event)."
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Run folder to write (model, model card, comparison table, plots).")
    ],
    encoder: Annotated[
        Optional[Path],
        typer.Option(
            "--encoder",
            "-e",
            help="Pretraining run folder (lgerisk pretrain); without it the network is trained from scratch.",
        ),
    ] = None,
    outcomes: Annotated[
        Optional[Path],
        typer.Option("--outcomes", help="CSV case_id,time,event[,covariates] (default: the cohort's outcomes)."),
    ] = None,
    features: FeatureTable = None,
    mode: Annotated[
        Optional[str],
        typer.Option(
            "--mode",
            help="probe (frozen encoder, linear Cox head) or full "
            "(end to end); default probe with --encoder, full without.",
        ),
    ] = None,
    with_radiomics: Annotated[
        bool,
        flag(
            "--with-radiomics",
            help="Fusion: radiomics (selected, imputed and scaled as radiomics Cox does, inside each training fold) "
            "and the image embedding in one Cox head; see --fusion.",
        ),
    ] = FinetuneConfig.with_radiomics,
    fusion: Annotated[
        str,
        typer.Option(
            "--fusion",
            help="With --with-radiomics: group (a penalty for each block, both by inner CV) or stacked (the "
            "fold's radiomics Cox risk plus the embedding fitted to what it leaves).",
        ),
    ] = FinetuneConfig.fusion,
    with_scar: Annotated[
        bool,
        flag(
            "--with-scar",
            help="Scar % and grey-zone % beside the image embedding: a head that can only add to what clinicians have.",
        ),
    ] = FinetuneConfig.with_scar,
    covariates: Annotated[
        str,
        typer.Option(
            "--covariates",
            help="Clinical covariates beside the embedding, e.g. age,lvef (columns of the outcomes table).",
        ),
    ] = "",
    folds: Annotated[
        int,
        typer.Option("--folds", "-k", min=0, help="Stratified cross-validation folds (0: none, with --test-fraction)."),
    ] = FinetuneConfig.folds,
    test_fraction: Annotated[
        float, typer.Option("--test-fraction", help="Share held out as a test split (0: none).")
    ] = FinetuneConfig.test_fraction,
    label_fraction: Annotated[
        float, typer.Option("--label-fraction", help="Share of each training fold used (label efficiency), in (0, 1].")
    ] = FinetuneConfig.label_fraction,
    baselines: Annotated[
        bool,
        flag(
            "--baselines/--no-baselines",
            help="Scar-% Cox, scar+grey Cox and radiomics Cox in the same folds (seconds).",
        ),
    ] = FinetuneConfig.baselines,
    scratch_baseline: Annotated[
        bool,
        flag(
            "--scratch-baseline",
            help="With --encoder and --baselines: also the network trained from scratch in every fold (the costly "
            "row: most of a run's time on a CPU; an estimate is printed when it starts).",
        ),
    ] = FinetuneConfig.scratch_baseline,
    horizons: Annotated[
        str, typer.Option("--horizons", help="Times for survival probabilities and AUC, in the outcomes' unit.")
    ] = "1,3,5",
    epochs: Annotated[
        int, typer.Option("--epochs", min=1, help="Epochs of end-to-end training (full mode).")
    ] = FinetuneConfig.epochs,
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size", min=2, help="Cases per step of end-to-end training (full mode): the Cox loss's risk set."
        ),
    ] = FinetuneConfig.batch_size,
    lr: Annotated[float, typer.Option("--lr", help="Encoder learning rate (full mode).")] = FinetuneConfig.lr,
    aux_weight: Annotated[
        float,
        typer.Option(
            "--aux-weight",
            min=0.0,
            help="Full mode: weight of the auxiliary radiomics regression beside the Cox loss (0: Cox only).",
        ),
    ] = FinetuneConfig.aux_weight,
    penalizer: Annotated[
        float,
        typer.Option("--penalizer", help="L2 penalty of the Cox head with --head-penalty fixed (lifelines' scale)."),
    ] = FinetuneConfig.penalizer,
    head_penalty: Annotated[
        str,
        typer.Option(
            "--head-penalty",
            help="cv: the Cox head's L2 penalty chosen by inner CV on each training fold; fixed: --penalizer.",
        ),
    ] = FinetuneConfig.head_penalty,
    head_pcs: Annotated[
        int,
        typer.Option(
            "--head-pcs",
            min=0,
            help="Fit the head on the embedding's K leading principal components (0: the whole embedding).",
        ),
    ] = FinetuneConfig.head_pcs,
    scar_penalty_factor: Annotated[
        float,
        typer.Option(
            "--scar-penalty-factor",
            min=0.0,
            help="With --with-scar: the "
            "head's penalty on scar % and grey-zone % relative to the "
            "embedding's (0: unpenalised).",
        ),
    ] = FinetuneConfig.scar_penalty_factor,
    width: Annotated[
        int, typer.Option("--width", min=4, help="Encoder width when training from scratch.")
    ] = FinetuneConfig.width,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples for the 95 % CIs.")
    ] = FinetuneConfig.n_boot,
    labels: Annotated[
        Optional[str],
        typer.Option("--labels", help="Label preset or map of a raw cohort (default: the encoder's, else emidec)."),
    ] = FinetuneConfig.labels,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    amp: Annotated[bool, flag("--amp/--no-amp", help="Mixed precision on CUDA.")] = FinetuneConfig.amp,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same folds and weights.")] = FinetuneConfig.seed,
    jobs: Jobs = 1,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Fit a survival model for SCD risk and compare it with the radiomics baselines in the same folds.

    Example: [bold]lgerisk finetune --data sample_data --encoder work/pretrain --out work/risk[/]
    """
    from lgerisk.training.finetune import run_finetune
    from lgerisk.training.finetune_config import FinetuneConfig

    chosen = mode or FinetuneConfig.default_mode(encoder is not None)
    config = FinetuneConfig(
        mode=chosen,
        with_radiomics=with_radiomics,
        fusion=fusion,
        aux_weight=aux_weight,
        with_scar=with_scar,
        head_penalty=head_penalty,
        head_pcs=head_pcs,
        scar_penalty_factor=scar_penalty_factor,
        covariates=tuple(c.strip() for c in covariates.split(",") if c.strip()),
        folds=folds,
        test_fraction=test_fraction,
        label_fraction=label_fraction,
        baselines=baselines,
        scratch_baseline=scratch_baseline,
        horizons=_floats(horizons, "--horizons"),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        penalizer=penalizer,
        width=width,
        n_boot=bootstrap,
        seed=seed,
        labels=labels,
        amp=amp,
    )
    console = _stderr(wide=True)
    summary = run_finetune(
        data,
        out,
        config,
        encoder=encoder,
        outcomes=outcomes,
        features=str(features) if features else None,
        device=device,
        jobs=jobs,
        reporter=_reporter(quiet, debug, console.print),
    )
    if not quiet:
        from lgerisk.evaluation.display import comparison_table

        console.print(comparison_table(summary.table, synthetic=summary.synthetic))
        console.print(f"final model ({summary.model}, {summary.final_cases} cases) -> {out}")


@app.command(cls=_Command)
@friendly
def predict(
    scans: ScanArgs = None,
    data: Annotated[
        Optional[Path], typer.Option("--data", "-d", help="A cohort (folder or manifest) instead of scans.")
    ] = None,
    mask: Annotated[
        Optional[Path],
        typer.Option(
            "--mask",
            "-m",
            help="Segmentation of a single SCAN (default: "
            "found beside it, e.g. X_seg.nii.gz; see docs/commands.md, 'Masks').",
        ),
    ] = None,
    model: RiskModelOption = None,
    out: Annotated[
        Optional[Path],
        typer.Option(
            "--out", "-o", help="File to write (default: stdout); batches to a file resume where they stopped."
        ),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv or json.")] = "csv",
    labels: MaskLabels = None,
    clinical: Clinical = None,
    device: CpuDevice = "cpu",
    dicom_seg: DicomSeg = False,
    anonymise: Anonymise = False,
    jobs: Jobs = 1,
    shard: ShardOption = None,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Predict SCD risk for new scans: risk score, risk group, survival, scar metrics, warnings.

    Example: [bold]lgerisk predict scan.nii.gz --mask scan_seg.nii.gz --model work/risk[/]
    """
    from lgerisk.batch import Shard
    from lgerisk.errors import InputError
    from lgerisk.io.dicom_seg import dicom_seg_wanted
    from lgerisk.predict.masks import cases_to_score
    from lgerisk.predict.run import predict_cases, read_clinical, resolve_model

    wanted = dicom_seg_wanted(dicom_seg, anonymise)
    model_dir = resolve_model(model)
    cases = cases_to_score(scans, data, mask)
    if jobs > 1 and out is None:
        raise InputError("--jobs needs --out (parallel predictions are gathered in a file).")
    report, _, text = predict_cases(
        cases,
        model_dir,
        out,
        fmt=fmt,
        device=device,
        labels=labels,
        jobs=jobs,
        shard=Shard.parse(shard),
        clinical=read_clinical(clinical),
        reporter=_reporter(quiet, debug),
        dicom_seg=wanted,
        keep_freed_memory=True,
    )
    if out is None:
        sys.stdout.write(text)
    _lone_scan_failed(report, scans)
    _summary(report, out, quiet)
    if report.failed:
        raise typer.Exit(1)


def _lone_scan_failed(report: Any, scans: list[Path] | None) -> None:
    """One scan given and it failed: that is bad input (exit 2, one sentence), not a partial batch."""
    if scans and len(scans) == 1 and report.failed:
        message = next(iter(report.failed.values()))
        if scans[0].name not in message:
            message = f"{scans[0]}: {message}"
        _stderr().print(f"[bold red]error:[/] {message}", soft_wrap=True)
        raise typer.Exit(2)


@app.command(cls=_Command)
@friendly
def explain(
    scans: ScanArgs = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the reports (a sub-folder per scan).")] = Path(
        "lgerisk-explain"
    ),
    data: Annotated[
        Optional[Path],
        typer.Option("--data", "-d", help="A cohort (folder or manifest): every scan, plus the cohort page."),
    ] = None,
    mask: Annotated[
        Optional[Path], typer.Option("--mask", "-m", help="Segmentation of a single SCAN (default: found beside it).")
    ] = None,
    model: RiskModelOption = None,
    labels: MaskLabels = None,
    steps: Annotated[
        int,
        typer.Option(
            "--steps",
            min=4,
            help="Integrated-gradients gradient evaluations: at least 3 per sub-stride shift (192 for the "
            "default encoder), more for a finer path.",
        ),
    ] = 32,
    sanity_check: Annotated[
        bool,
        flag(
            "--sanity-check/--no-sanity-check",
            help="Once per run, compare the maps with a randomised model's (Adebayo et al. 2018) and say so.",
        ),
    ] = True,
    clinical: Clinical = None,
    device: CpuDevice = "cpu",
    dicom_seg: DicomSeg = False,
    anonymise: Anonymise = False,
    jobs: Jobs = 1,
    shard: ShardOption = None,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Explain predictions: attribution maps, the radiomics features the risk aligns with, an HTML report.

    Example: [bold]lgerisk explain scan.nii.gz --mask scan_seg.nii.gz --model work/risk --out report/[/]
    """
    from lgerisk.batch import Shard
    from lgerisk.explain.run import explain_cases
    from lgerisk.io.dicom_seg import dicom_seg_wanted
    from lgerisk.predict.masks import cases_to_score
    from lgerisk.predict.run import read_clinical, resolve_model

    wanted = dicom_seg_wanted(dicom_seg, anonymise)
    model_dir = resolve_model(model)
    cases = cases_to_score(scans, data, mask)
    report, pages = explain_cases(
        cases,
        model_dir,
        out,
        device=device,
        labels=labels,
        steps=steps,
        jobs=jobs,
        shard=Shard.parse(shard),
        cohort=data is not None,
        clinical=read_clinical(clinical),
        reporter=_reporter(quiet, debug),
        dicom_seg=wanted,
        keep_freed_memory=True,
        sanity_check=sanity_check,
    )
    _lone_scan_failed(report, scans)
    _summary(report, out, quiet)
    if not quiet:
        console = _stderr()
        for case_id, page in sorted(pages.get("cases", {}).items())[:5]:
            console.print(f"  {case_id}: {page}")
        if pages.get("cohort"):
            console.print(f"  cohort: {pages['cohort']}")
    if report.failed:
        raise typer.Exit(1)


@app.command(cls=_Command)
@friendly
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for every output of the chain.")] = Path(
        "lgerisk-demo"
    ),
    data: Annotated[
        Optional[Path],
        typer.Option("--data", "-d", help="Cohort to run on (default: the shipped SYNTHETIC sample_data)."),
    ] = None,
    quick: Annotated[
        bool, flag("--quick", help="Tiny models: seconds instead of minutes (what the tests run).")
    ] = False,
    fresh: Annotated[bool, flag("--fresh", help="Delete OUT first (else finished steps are reused).")] = False,
    wide: Annotated[
        bool, flag("--wide", help="The comparison with every metric (Uno C, AUCs, IBS): wider than 80 columns.")
    ] = False,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    debug: Debug = False,
) -> None:
    """Run the whole chain on the SYNTHETIC sample data: preprocess, extract-radiomics, pretrain, finetune,
    predict, explain.

    Example: [bold]lgerisk demo[/]
    """
    from lgerisk.demo import DemoSettings, run_demo
    from lgerisk.evaluation.display import comparison_summary, comparison_table

    console = _stderr(wide=wide)
    result = run_demo(
        out, DemoSettings.quick() if quick else DemoSettings(), data=data, device=device, fresh=fresh, say=console.print
    )
    console.print(comparison_table(result["table"], synthetic=result["synthetic"], wide=wide))
    console.print(comparison_summary(result["table"], result["model"], synthetic=result["synthetic"]))
    total = sum(result["timings"].values())
    console.print(f"done in {total:.0f} s. Outputs in {out}/:")
    for label, path in (
        ("risk model", result["risk"]),
        ("comparison", Path(result["risk"]) / "comparison.csv"),
        ("predictions", result["predictions"]),
        ("report", result["report"]),
    ):
        console.print(f"  {label:<12} {path}")
    console.print(
        "Next, on your own data (see README):\n"
        "  lgerisk preprocess --data COHORT --out work/prep --labels emidec\n"
        "  lgerisk pretrain --data work/prep --out work/pretrain\n"
        "  lgerisk finetune --data work/prep --encoder work/pretrain --out work/risk\n"
        "  lgerisk predict scan.nii.gz --mask scan_seg.nii.gz --model work/risk"
    )


def _summary(report: Any, out: Path | None, quiet: bool) -> None:
    console = _stderr()
    for case_id, message in sorted(report.failed.items()):
        console.print(f"[red]failed[/] {case_id}: {message}", soft_wrap=True)
    if not quiet:
        console.print(
            f"{len(report.done)} done, {len(report.skipped)} already done, {len(report.failed)} failed "
            + (f"-> {out}" + (" (see the errors table)" if report.failed else "") if out else "")
        )


def main() -> None:
    """Console-script entry point: run the command, then end the process quickly (``exit_quickly``)."""
    try:
        app(prog_name="lgerisk")
    except SystemExit as exc:
        exit_quickly(exc.code)
    exit_quickly(0)


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


def _flushed(stream: Any) -> bool:
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


if __name__ == "__main__":  # pragma: no cover
    main()
    sys.exit()
