"""The commands that use a risk model: ``predict``, ``explain``, and ``demo`` (the whole chain)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from lgerisk.cli.house import (
    Anonymise,
    Clinical,
    Command,
    CpuDevice,
    Debug,
    DicomSeg,
    Jobs,
    MaskLabels,
    Quiet,
    RiskModelOption,
    ScanArgs,
    ShardOption,
    app,
    flag,
    friendly,
    lone_scan_failed,
    print_summary,
    reporter_for,
    stderr,
)


@app.command(cls=Command)
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
    from lgerisk import api
    from lgerisk.batch import Shard
    from lgerisk.errors import InputError
    from lgerisk.io.dicom_seg import dicom_seg_wanted
    from lgerisk.predict.inputs import read_clinical, resolve_model
    from lgerisk.predict.masks import cases_to_score

    wanted = dicom_seg_wanted(dicom_seg, anonymise)
    model_dir = resolve_model(model)
    cases = cases_to_score(scans, data, mask)
    if jobs > 1 and out is None:
        raise InputError("--jobs needs --out (parallel predictions are gathered in a file).")
    result = api.predict_cohort(
        model_dir,
        cases,
        out,
        jobs=jobs,
        fmt=fmt,
        device=device,
        labels=labels,
        shard=Shard.parse(shard),  # parsed before the clinical table is read, as the command always did
        clinical=read_clinical(clinical),
        dicom_seg=wanted,
        keep_freed_memory=True,
        reporter=reporter_for(quiet, debug),
    )
    if out is None:
        sys.stdout.write(result.text)
    lone_scan_failed(result, scans)
    print_summary(result, quiet)
    raise typer.Exit(result.exit_code)


@app.command(cls=Command)
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
    from lgerisk import api
    from lgerisk.batch import Shard
    from lgerisk.io.dicom_seg import dicom_seg_wanted
    from lgerisk.predict.inputs import read_clinical, resolve_model
    from lgerisk.predict.masks import cases_to_score

    wanted = dicom_seg_wanted(dicom_seg, anonymise)
    model_dir = resolve_model(model)
    cases = cases_to_score(scans, data, mask)
    result = api.explain_cohort(
        model_dir,
        cases,
        out,
        jobs=jobs,
        cohort=data is not None,
        steps=steps,
        sanity_check=sanity_check,
        device=device,
        labels=labels,
        shard=Shard.parse(shard),
        clinical=read_clinical(clinical),
        dicom_seg=wanted,
        keep_freed_memory=True,
        reporter=reporter_for(quiet, debug),
    )
    lone_scan_failed(result, scans)
    print_summary(result, quiet)
    if not quiet:
        console = stderr()
        for case_id, page in list(result.pages.items())[:5]:
            console.print(f"  {case_id}: {page}")
        if result.cohort_page is not None:
            console.print(f"  cohort: {result.cohort_page}")
    raise typer.Exit(result.exit_code)


@app.command(cls=Command)
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

    console = stderr(wide=wide)
    result = run_demo(
        out, DemoSettings.quick() if quick else DemoSettings(), data=data, device=device, fresh=fresh, say=console.print
    )
    console.print(comparison_table(result.table, synthetic=result.synthetic, wide=wide))
    console.print(comparison_summary(result.table, result.model, synthetic=result.synthetic))
    console.print(f"done in {sum(result.timings.values()):.0f} s. Outputs in {out}/:")
    for label, path in (
        ("risk model", result.risk),
        ("comparison", result.risk / "comparison.csv"),
        ("predictions", result.predictions),
        ("report", result.report),
    ):
        console.print(f"  {label:<12} {path}")
    console.print(
        "Next, on your own data (see README):\n"
        "  lgerisk preprocess --data COHORT --out work/prep --labels emidec\n"
        "  lgerisk pretrain --data work/prep --out work/pretrain\n"
        "  lgerisk finetune --data work/prep --encoder work/pretrain --out work/risk\n"
        "  lgerisk predict scan.nii.gz --mask scan_seg.nii.gz --model work/risk"
    )
