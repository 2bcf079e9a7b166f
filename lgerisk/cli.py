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
from typing import Annotated, Any, Optional

import typer

from lgerisk import __version__

app = typer.Typer(name="lgerisk", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode="rich",
                  help="Cardiac scar analysis of LGE MRI and sudden-cardiac-death risk prediction with "
                       "radiomics-guided deep learning. Research software, not for clinical use.")

Jobs = Annotated[int, typer.Option("--jobs", "-j", min=1, help="Worker processes.")]
ShardOption = Annotated[Optional[str], typer.Option("--shard", help="Run shard i of n (1-based), e.g. "
                                                    "--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary table.")]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")]


def _stderr():  # noqa: ANN202 - rich imported lazily
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def friendly(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors into one red sentence and exit code 2 (unless ``--debug``)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from lgerisk.errors import LgeriskError

        try:
            return command(*args, **kwargs)
        except LgeriskError as exc:
            if kwargs.get("debug"):
                raise
            _stderr().print(f"[bold red]error:[/] {exc}", soft_wrap=True)
            raise typer.Exit(2) from None
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
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """lgerisk: LGE MRI scar analysis and SCD risk prediction."""


@app.command()
@friendly
def synth(
    out: Annotated[Path, typer.Argument(help="Folder to write the synthetic cohort into.")],
    cases: Annotated[int, typer.Option("--cases", "-n", min=1, help="Number of cases.")] = 32,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same cohort).")] = 0,
    small: Annotated[bool, typer.Option("--small", help="Small matrices and few slices (compact sample data).")] = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Generate a SYNTHETIC LGE cohort with labels, outcomes and the true log-hazard.

    Example: [bold]lgerisk synth work/synth --cases 300 --seed 1[/]
    """
    from lgerisk.data.synthetic import SynthConfig, generate_cohort
    from lgerisk.progress import progress

    config = SynthConfig(n_cases=cases, seed=seed, small=small)
    with progress("synth", cases, quiet) as advance:
        truth = generate_cohort(out, config, progress=lambda n: advance())
    if not quiet:
        _stderr().print(f"wrote {len(truth)} SYNTHETIC cases to {out} (images/, masks/, outcomes.csv, ground_truth.csv)")


@app.command()
@friendly
def preprocess(
    data: Annotated[Path, typer.Option("--data", "-d", help="Cohort folder or CSV manifest.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (resumable).")],
    labels: Annotated[str, typer.Option("--labels", help="Label preset (emidec, myops, acdc) or map, e.g. "
                                        "'blood=1,myocardium=2,scar=3+4'.")] = "emidec",
    scar_method: Annotated[str, typer.Option("--scar-method", help="auto, label, nsd or fwhm.")] = "auto",
    nsd: Annotated[float, typer.Option("--nsd", help="n of the n-SD scar threshold.")] = 5.0,
    greyzone_nsd: Annotated[float, typer.Option("--greyzone-nsd", help="Grey zone starts at remote + this many SD.")] = 2.0,
    spacing: Annotated[float, typer.Option("--spacing", help="In-plane spacing (mm) after resampling.")] = 1.4,
    crop: Annotated[int, typer.Option("--crop", help="In-plane crop size (voxels) around the LV.")] = 96,
    normalisation: Annotated[str, typer.Option("--normalisation", help="myo-blood, zscore or percentile.")] = "myo-blood",
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
    from lgerisk.preprocess.config import PreprocessConfig
    from lgerisk.preprocess.run import preprocess_cohort

    config = PreprocessConfig(labels=labels, inplane_spacing_mm=spacing, crop_size=crop,
                              normalisation=normalisation, scar_method=scar_method, nsd=nsd,
                              greyzone_nsd=greyzone_nsd)
    report, table = preprocess_cohort(data, out, config, jobs=jobs, shard=Shard.parse(shard), quiet=quiet,
                                      debug=debug)
    _summary(report, out, quiet)
    raise typer.Exit(report.exit_code)


@app.command("extract-radiomics")
@friendly
def extract_radiomics(
    data: Annotated[Path, typer.Option("--data", "-d", help="Preprocessed folder, or a raw cohort folder or "
                                       "manifest (preprocessed first, with the preprocess defaults and --labels).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Feature table (CSV) to write.")],
    rois: Annotated[str, typer.Option("--rois", help="ROIs: myocardium, scar, greyzone.")] = "myocardium,scar,greyzone",
    params: Annotated[Optional[Path], typer.Option("--params", help="Your own pyradiomics YAML (validated with "
                                                   "pyradiomics' schema); default: the shipped LGE settings.")] = None,
    image_types: Annotated[Optional[str], typer.Option("--image-types", help="original, log, wavelet "
                                                       "(comma-separated); default: those of the parameter file.")] = None,
    labels: Annotated[str, typer.Option("--labels", help="Label preset or map of a raw cohort.")] = "emidec",
    stability: Annotated[bool, typer.Option("--stability", help="Also re-extract under segmentation "
                                            "perturbations and write per-feature ICCs.")] = False,
    perturbations: Annotated[int, typer.Option("--random-contours", min=0, help="Contour randomisations "
                                               "per case for --stability (besides erosion and dilation).")] = 2,
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
        data, out, params_path=str(params) if params else None,
        image_types=parse_image_types(image_types) if image_types else None, rois=parse_rois(rois), jobs=jobs,
        shard=Shard.parse(shard), stability=stability, n_random=perturbations, seed=seed,
        preprocess_config=PreprocessConfig(labels=labels), quiet=quiet, debug=debug)
    _summary(report, out, quiet)
    if stability_table is not None and not quiet:
        robust = int(stability_table["robust"].sum())
        _stderr().print(f"stability: {robust} of {len(stability_table)} features robust (ICC(1,1) >= 0.75), "
                        f"{int(stability_table['excellent'].sum())} excellent (>= 0.9)")
    raise typer.Exit(report.exit_code)


@app.command()
@friendly
def pretrain(
    data: Annotated[Path, typer.Option("--data", "-d", help="Raw cohort (folder or manifest) or preprocessed folder; "
                                       "unlabelled scans are enough.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write (model.pt, model_card.json, "
                                      "metrics.csv, checkpoint/).")],
    features: Annotated[Optional[Path], typer.Option("--features", help="Feature table from extract-radiomics "
                                                     "(default: extracted and cached in OUT/cache).")] = None,
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 30,
    batch_size: Annotated[int, typer.Option("--batch-size", min=2, help="Global batch (all processes).")] = 8,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (AdamW, warm-up then cosine).")] = 1e-3,
    objective: Annotated[str, typer.Option("--objective", help="hybrid (image<->radiomics + image<->image), "
                                           "radiomics, or simclr.")] = "hybrid",
    clip_weight: Annotated[Optional[float], typer.Option("--clip-weight", help="Weight of image<->radiomics "
                                                         "InfoNCE (default: the preset's).")] = None,
    simclr_weight: Annotated[Optional[float], typer.Option("--simclr-weight", help="Weight of image<->image "
                                                           "NT-Xent (default: the preset's).")] = None,
    temperature: Annotated[float, typer.Option("--temperature", help="InfoNCE temperature.")] = 0.1,
    learn_temperature: Annotated[bool, typer.Option("--learn-temperature", help="Learn the temperature "
                                                    "(CLIP-style).")] = False,
    queue_size: Annotated[int, typer.Option("--queue-size", min=0, help="Past embeddings kept as extra "
                                            "negatives (0: off, the default; see README).")] = 0,
    scarf_rate: Annotated[float, typer.Option("--scarf-rate", help="Share of radiomics features resampled "
                                              "from their marginals (SCARF).")] = 0.3,
    width: Annotated[int, typer.Option("--width", min=4, help="Encoder base width (16 CPU, 32-64 GPU).")] = 16,
    val_fraction: Annotated[float, typer.Option("--val-fraction", help="Held-out share for validation.")] = 0.2,
    labels: Annotated[str, typer.Option("--labels", help="Label preset or map of a raw cohort.")] = "emidec",
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    amp: Annotated[bool, typer.Option("--amp/--no-amp", help="Mixed precision on CUDA.")] = True,
    num_workers: Annotated[int, typer.Option("--num-workers", min=0, help="Data-loading processes.")] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same device: same weights.")] = 0,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in OUT after its last finished "
                                         "epoch.")] = False,
    jobs: Jobs = 1,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Pretrain the 3D image encoder with radiomics-guided contrastive learning.

    Example: [bold]lgerisk pretrain --data sample_data --out work/pretrain --epochs 5[/]

    Multi-GPU / multi-node: [bold]torchrun --nproc_per_node=4 -m lgerisk pretrain --data D --out RUN[/]
    """
    from lgerisk.training.pretrain import PretrainConfig, run_pretrain

    objective_settings: dict[str, Any] = {"preset": objective, "temperature": temperature,
                                          "learn_temperature": learn_temperature, "queue_size": queue_size,
                                          "scarf_rate": scarf_rate}
    if clip_weight is not None:
        objective_settings["clip_weight"] = clip_weight
    if simclr_weight is not None:
        objective_settings["simclr_weight"] = simclr_weight
    config = PretrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, val_fraction=val_fraction, seed=seed,
                            width=width, objective=objective_settings, labels=labels, num_workers=num_workers,
                            amp=amp)
    console = _stderr()
    summary = run_pretrain(data, out, config, features=str(features) if features else None, device=device,
                           resume=resume, jobs=jobs, quiet=quiet, debug=debug,
                           log=None if quiet else console.print)
    if not quiet and summary.get("final") is not None and os.environ.get("RANK", "0") == "0":
        kind = "SYNTHETIC cases" if summary.get("synthetic") else "cases"
        console.print(f"pretrained on {summary['train_cases']} {kind} ({summary['val_cases']} held out) -> {out}")


def _summary(report: Any, out: Path, quiet: bool) -> None:
    console = _stderr()
    for case_id, message in sorted(report.failed.items()):
        console.print(f"[red]failed[/] {case_id}: {message}", soft_wrap=True)
    if not quiet:
        console.print(f"{len(report.done)} done, {len(report.skipped)} already done, {len(report.failed)} failed "
                      f"-> {out}" + (" (see the errors table)" if report.failed else ""))


def main() -> None:
    """Console-script entry point."""
    app(prog_name="lgerisk")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
