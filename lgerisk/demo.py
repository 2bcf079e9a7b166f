"""``lgerisk demo``: the whole chain on the shipped SYNTHETIC sample cohort, in a few minutes on a CPU.

preprocess -> extract-radiomics -> pretrain -> finetune (with baselines) -> predict -> explain,
each step the same library call its command makes, into ``OUT/`` (default ``lgerisk-demo/``).
A rerun reuses every finished step's outputs (the steps are resumable).

The model the demo keeps (``DEMO_FUSION``) is the fusion of the radiomics-guided encoder with radiomics, stacked:
the in-fold radiomics Cox risk and the image embedding fitted to what it leaves. The rule: of the models with a
network that ``explain`` can show, the best on the project's benchmark — on five SYNTHETIC cohorts it ties
radiomics Cox, the best model there, while the probe on the embedding alone scores well below it
(benchmarks/README.md, "Fusion"). The demo's table shows where it stands on the sample cohort.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lgerisk.errors import InputError
from lgerisk.reporting import SILENT, Reporter

if TYPE_CHECKING:
    import pandas as pd

    from lgerisk.types import JSONDict

SAMPLE_DATA = Path(__file__).resolve().parent.parent / "sample_data"
DEMO_FUSION = "stacked"
"""How the demo's model joins radiomics and the embedding (``FinetuneConfig.fusion``; see the module's docstring)."""


@dataclass(frozen=True)
class DemoSettings:
    """How big the demo's models are (``quick`` is what the tests run)."""

    pretrain_epochs: int = 5
    width: int = 16
    embedding_dim: int = 256
    tensor: tuple[tuple[str, int], ...] = ()
    folds: int = 5
    finetune_epochs: int = 3
    bootstrap: int = 200
    explain_steps: int = 32

    @classmethod
    def quick(cls) -> DemoSettings:
        """Tiny settings: seconds, not minutes (for tests)."""
        return cls(
            pretrain_epochs=1,
            width=4,
            embedding_dim=16,
            tensor=(("slices", 4), ("size", 32)),
            folds=3,
            finetune_epochs=1,
            bootstrap=20,
            explain_steps=8,
        )


@dataclass(frozen=True)
class DemoResult:
    """What the demo did: the comparison table of the risk models, the model kept, the outputs, the timings.

    Attributes:
        table: the comparison (``risk/comparison.csv``), one row per method, C-index with its CI.
        model: the method of the final risk model.
        synthetic: the cohort is SYNTHETIC (the generator's own marker).
        timings: seconds per step.
        out, risk, predictions, report: the demo's folder, the risk model folder, the predictions CSV and the
            first scan's explanation page.
    """

    table: pd.DataFrame
    model: str
    synthetic: bool
    timings: dict[str, float]
    out: Path
    risk: Path
    predictions: Path
    report: Path | None


def _finished(run: Path, config: JSONDict) -> bool:
    """Whether ``run`` holds a finished pretraining made with ``config``."""
    import json

    from lgerisk.artifacts import is_whole_run, read_card

    if not is_whole_run(run):
        return False
    try:
        card = read_card(run)
    except InputError:
        return False
    return bool(card.get("config") == json.loads(json.dumps(config)))


def find_sample_data(data: str | Path | None = None) -> Path:
    """The sample cohort: ``data`` if given, else the repository's ``sample_data/``."""
    path = Path(data) if data is not None else SAMPLE_DATA
    if not (path / "images").is_dir() or not (path / "outcomes.csv").is_file():
        raise InputError(
            f"{path}: sample data not found (images/ and outcomes.csv); run the demo from a clone of "
            "the repository, or give data=DIR, or make a synthetic cohort (lgerisk synth DIR).",
            setting="data",
        )
    return path


def run_demo(
    out: str | Path = "lgerisk-demo",
    settings: DemoSettings = DemoSettings(),
    data: str | Path | None = None,
    device: str = "auto",
    fresh: bool = False,
    say: Callable[[str], None] = print,
    reporter: Reporter = SILENT,
) -> DemoResult:
    """Run the chain, each step through the public API (:mod:`lgerisk.api`) as its command does; returns the
    comparison table, the outputs and the timings. ``say`` narrates the steps; ``reporter`` is handed to each
    step (silent by default: the narration is the demo's output)."""
    from lgerisk import api
    from lgerisk.io.atomic import atomic_path  # the house's atomic write (a file the chain reads, not a step)
    from lgerisk.preprocess.config import PreprocessConfig
    from lgerisk.training.finetune_config import FinetuneConfig
    from lgerisk.training.pretrain_config import PretrainConfig

    source = find_sample_data(data)
    out = Path(out)
    if fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    prep, features, pretrain, risk = out / "prep", out / "radiomics.csv", out / "pretrain", out / "risk"
    tensor = dict(settings.tensor)
    timings: dict[str, float] = {}

    def step(name: str, command: str) -> float:
        say(f"[bold]{name}[/]  [dim]{command}[/]")
        return time.perf_counter()

    started = step("1/6 preprocess", f"lgerisk preprocess --data {source} --out {prep}")
    prepared = api.preprocess_cohort(source, prep, PreprocessConfig(), jobs=1, reporter=reporter)
    timings["preprocess"] = time.perf_counter() - started
    kind = "SYNTHETIC cases" if api.read_cohort(source).synthetic else "cases"  # the generator's own marker
    say(f"    {len(prepared.done) + prepared.skipped} {kind} preprocessed ({timings['preprocess']:.0f} s)")

    started = step("2/6 extract-radiomics", f"lgerisk extract-radiomics --data {prep} --out {features}")
    table = api.extract_features(prep, features, reporter=reporter).table
    timings["extract-radiomics"] = time.perf_counter() - started
    say(f"    {table.shape[1]} columns for {len(table)} cases ({timings['extract-radiomics']:.0f} s)")

    started = step(
        "3/6 pretrain",
        f"lgerisk pretrain --data {prep} --features {features} --out {pretrain} --epochs {settings.pretrain_epochs}",
    )
    config = PretrainConfig(
        epochs=settings.pretrain_epochs, width=settings.width, embedding_dim=settings.embedding_dim, tensor=tensor
    )
    if not _finished(pretrain, config.to_dict()):  # reuse only a finished run with these very settings
        shutil.rmtree(pretrain, ignore_errors=True)
        api.pretrain(prep, pretrain, config, features=features, device=device, reporter=reporter)
    timings["pretrain"] = time.perf_counter() - started
    say(
        f"    radiomics-guided (image<->radiomics) pretraining, {settings.pretrain_epochs} epoch(s) "
        f"({timings['pretrain']:.0f} s)"
    )

    started = step(
        "4/6 finetune",
        f"lgerisk finetune --data {prep} --features {features} --encoder {pretrain} "
        f"--with-radiomics --fusion {DEMO_FUSION} --out {risk} --folds {settings.folds}",
    )
    if (source / "ground_truth.csv").is_file():  # the oracle row (synthetic truth), copied whole or not at all
        with atomic_path(prep / "ground_truth.csv") as tmp:
            shutil.copyfile(source / "ground_truth.csv", tmp)
    summary = api.finetune(
        prep,
        risk,
        FinetuneConfig(
            folds=settings.folds,
            epochs=settings.finetune_epochs,
            n_boot=settings.bootstrap,
            width=settings.width,
            embedding_dim=settings.embedding_dim,
            tensor=tensor,
            with_radiomics=True,
            fusion=DEMO_FUSION,
        ),
        encoder=pretrain,
        features=features,
        device=device,
        reporter=reporter,
    )
    timings["finetune"] = time.perf_counter() - started
    say(
        f"    {summary.cases} cases, {summary.events} events, {settings.folds}-fold CV; final model "
        f"'{summary.model}' ({timings['finetune']:.0f} s)"
    )

    scans = sorted((source / "images").glob("*.nii.gz"))[:3]
    started = step(
        "5/6 predict",
        f"lgerisk predict {' '.join(str(s) for s in scans)} --model {risk} --out {out / 'predictions.csv'}",
    )
    predicted = api.predict_cohort(risk, scans, out / "predictions.csv", device="cpu", reporter=reporter)
    timings["predict"] = time.perf_counter() - started
    for prediction in predicted.predictions:
        say(
            f"    {prediction.case_id}: risk {prediction.risk_score:+.2f} ({prediction.risk_group}), "
            f"scar {prediction.scar_percent or 0.0:.1f} %"
            + ("" if prediction.reliable else f" — not reliable: {'; '.join(prediction.unreliable_reasons)}")
        )

    started = step("6/6 explain", f"lgerisk explain {scans[0]} --model {risk} --out {out / 'explain'}")
    explained = api.explain_cohort(
        risk, scans[:1], out / "explain", device="cpu", steps=settings.explain_steps, reporter=reporter
    )
    timings["explain"] = time.perf_counter() - started
    if explained.failed:
        raise InputError(f"explain failed: {next(iter(explained.failed.values()))}")
    return DemoResult(
        table=summary.table,
        model=summary.model,
        synthetic=summary.synthetic,
        timings=timings,
        out=out,
        risk=risk,
        predictions=out / "predictions.csv",
        report=next(iter(explained.pages.values()), None),
    )
