"""The commands that train: ``pretrain`` (the image encoder) and ``finetune`` (the risk model)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from lgerisk.cli.house import (
    Command,
    Debug,
    FeatureTable,
    Jobs,
    Quiet,
    app,
    flag,
    friendly,
    reporter_for,
    stderr,
)
from lgerisk.training.finetune_config import FinetuneConfig
from lgerisk.training.pretrain_config import PretrainConfig


@app.command(cls=Command)
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
    from lgerisk import api
    from lgerisk.data.augment import augment_preset
    from lgerisk.objectives.contrastive import objective_settings
    from lgerisk.training.pretrain_config import PretrainConfig

    augmentation = augment_preset(augment)  # checked first, as the command always did
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
        augment=augmentation,
    )
    console = stderr()
    summary = api.pretrain(
        data,
        out,
        config,
        features=features,
        device=device,
        resume=resume,
        jobs=jobs,
        reporter=reporter_for(quiet, debug, console.print),
    )
    if not quiet and os.environ.get("RANK", "0") == "0":
        kind = "SYNTHETIC cases" if summary.synthetic else "cases"
        console.print(f"pretrained on {summary.train_cases} {kind} ({summary.val_cases} held out) -> {out}")


@app.command(cls=Command)
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
    from lgerisk import api
    from lgerisk.training.finetune_config import FinetuneConfig, parse_numbers

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
        horizons=parse_numbers(horizons, "horizons"),
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
    console = stderr(wide=True)
    summary = api.finetune(
        data,
        out,
        config,
        encoder=encoder,
        outcomes=outcomes,
        features=features,
        device=device,
        jobs=jobs,
        reporter=reporter_for(quiet, debug, console.print),
    )
    if not quiet:
        from lgerisk.evaluation.display import comparison_table

        console.print(comparison_table(summary.table, synthetic=summary.synthetic))
        console.print(f"final model ({summary.model}, {summary.final_cases} cases) -> {out}")
