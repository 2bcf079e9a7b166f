"""The commands that make and prepare a cohort: ``synth``, ``preprocess``, ``calibrate-scar``, ``extract-radiomics``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from lgerisk.cli.house import (
    Anonymise,
    Command,
    Debug,
    DicomSeg,
    Jobs,
    Quiet,
    ShardOption,
    app,
    flag,
    friendly,
    print_summary,
    reporter_for,
    stderr,
)


@app.command(cls=Command)
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
    from lgerisk import api
    from lgerisk.synth import SynthConfig

    config = SynthConfig(n_cases=cases, seed=seed, small=small, hazard_version=hazard_version)
    truth = api.synth_cohort(out, config, force=force, progress=not quiet)
    if not quiet:
        stderr().print(f"wrote {len(truth)} SYNTHETIC cases to {out} (images/, masks/, outcomes.csv, ground_truth.csv)")


@app.command(cls=Command)
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
    from lgerisk import api
    from lgerisk.batch import Shard
    from lgerisk.io.dicom_seg import dicom_seg_wanted
    from lgerisk.preprocess.config import PreprocessConfig
    from lgerisk.preprocess.scar import scar_check_sentence

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
    result = api.preprocess_cohort(
        data,
        out,
        config,
        jobs=jobs,
        shard=Shard.parse(shard),  # parsed first, as the command always did
        dicom_seg=dicom_seg_wanted(dicom_seg, anonymise),
        reporter=reporter_for(quiet, debug),
    )
    print_summary(result, quiet)
    check = scar_check_sentence(result.table)
    if check and not quiet:
        stderr().print(check, soft_wrap=True, markup=False)
    raise typer.Exit(result.exit_code)


@app.command("calibrate-scar", cls=Command)
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
    from lgerisk import api
    from lgerisk.preprocess.calibrate import calibration_sentence

    calibration = api.calibrate_scar(data, out, labels=labels, reporter=reporter_for(quiet, debug, say=stderr().print))
    if not quiet:
        stderr().print(calibration_sentence(calibration, out), soft_wrap=True, markup=False)


@app.command("extract-radiomics", cls=Command)
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
    from lgerisk import api
    from lgerisk.batch import Shard
    from lgerisk.preprocess.config import PreprocessConfig
    from lgerisk.radiomics.settings import parse_image_types, parse_rois

    result = api.extract_features(
        data,
        out,
        jobs=jobs,
        params=params,
        image_types=parse_image_types(image_types) if image_types else None,
        rois=parse_rois(rois),
        shard=Shard.parse(shard),
        stability=stability,
        n_random=perturbations,
        seed=seed,
        preprocess_config=PreprocessConfig(labels=labels),
        reporter=reporter_for(quiet, debug),
    )
    print_summary(result, quiet)
    stability_table = result.stability
    if stability_table is not None and not quiet:
        robust = int(stability_table["robust"].sum())
        stderr().print(
            f"stability: {robust} of {len(stability_table)} features robust (ICC(1,1) >= 0.75), "
            f"{int(stability_table['excellent'].sum())} excellent (>= 0.9)"
        )
    raise typer.Exit(result.exit_code)
