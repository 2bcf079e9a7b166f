"""Survival fine-tuning with honest evaluation: the library function behind ``lgerisk finetune``.

One run fits every method on the same splits (stratified K-fold cross-validation and/or a held-out
test split; ``label_fraction`` keeps a stratified share of each training fold):

    scar-% Cox          univariate Cox on the QC scar percentage (lifelines)
    scar+grey Cox       Cox on scar % and grey-zone %: the clinician's two-number model
    radiomics Cox       penalised Cox on radiomics and the QC scar metrics, features selected and the
                        penalty chosen (inner CV) inside each training fold; empty-ROI features imputed
                        with a presence indicator
    deep, scratch       the same network trained from random weights (end to end)
    the model           the pretrained encoder with a Cox head, as a frozen probe or fine-tuned

then evaluates their out-of-fold predictions together (``lgerisk.evaluation.compare``) and trains
the final model on every labelled development case. Run folder::

    RUN/model.pt               state dicts only (torch.load(weights_only=True))
    RUN/model_card.json        data, settings, scaling, baseline hazard, risk thresholds, CV metrics
    RUN/comparison.csv|.json   method x metric with 95 % bootstrap CIs (and the oracle, when known)
    RUN/metrics_by_split.csv   the same metrics per fold, without CIs
    RUN/predictions.csv        out-of-fold risk, risk group and survival at the horizons, per method
    RUN/calibration.csv        predicted vs observed event probability by risk group at a horizon
    RUN/km_*.png, comparison.png
    RUN/metrics.csv            the final model's training, a row an epoch
    RUN/parts/                 finished (method, split) fits: a rerun with the same settings skips them
    RUN/cache/                 preprocessing, radiomics and tensors of a raw cohort
"""

from __future__ import annotations

import hashlib
import json
import os
import time as clock
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

from lgerisk.artifacts import (
    CARD_FILE,
    MODEL_FILE,
    RISK_MODEL_FORMAT,
    file_sha256,
    save_risk_model,
    write_card,
)
from lgerisk.cards import EncoderCard
from lgerisk.errors import InputError
from lgerisk.io.atomic import write_csv, write_json
from lgerisk.reporting import SILENT, Reporter
from lgerisk.training.finetune_config import (
    DEFAULT_LABELS,
    FinetuneConfig,
    Split,
)
from lgerisk.training.methods import (
    SCAR_COLUMN,
    Method,
    fit_method,
    methods_for,
    predict_risk,
    trains_end_to_end,
)
from lgerisk.training.outcomes import check_outcomes, labelled_cases
from lgerisk.training.risk_card import RiskCardInputs, concepts_table, json_rows, risk_model_card
from lgerisk.training.seeding import derive_seed
from lgerisk.training.survival_fit import Workspace

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd
    import torch
    from numpy.typing import NDArray

    from lgerisk.data.tensors import TensorSpec
    from lgerisk.models.encoder import EncoderConfig
    from lgerisk.training.data import PreparedData
    from lgerisk.training.finetune_config import TensorSettings
    from lgerisk.training.survival_fit import FittedDeep
    from lgerisk.types import JSONDict

MODEL_FORMAT = RISK_MODEL_FORMAT


def make_splits(case_ids: list[str], event: dict[str, int], config: FinetuneConfig) -> list[Split]:
    """The evaluation splits: an optional held-out test split, then K folds of the rest (each
    training fold reduced to ``label_fraction`` of its cases, stratified by event)."""
    from lgerisk.evaluation.cv import holdout_split, label_subset, stratified_folds

    development = sorted(case_ids)
    splits = []
    if config.test_fraction > 0:
        development, test = holdout_split(development, event, config.test_fraction, config.seed)
        train = label_subset(development, event, config.label_fraction, config.seed)
        splits.append(Split("test", "test", tuple(train), tuple(test)))
    if config.folds:
        for index, (train, test) in enumerate(stratified_folds(development, event, config.folds, config.seed)):
            train = label_subset(train, event, config.label_fraction, config.seed + 1 + index)
            splits.append(Split(f"fold{index + 1}", "cv", tuple(train), tuple(test)))
    return splits


def development_ids(splits: list[Split], case_ids: list[str]) -> list[str]:
    """Every labelled case outside the held-out test split (the final model's training set)."""
    held = {c for s in splits if s.evaluation == "test" for c in s.test}
    return [c for c in case_ids if c not in held]


# ---------------------------------------------------------------- methods


# ---------------------------------------------------------------- the run


@dataclass(frozen=True)
class FinetuneResult:
    """A finished finetune run: its folder, the method kept as the model, and every method's metrics on the
    same out-of-fold cases (``comparison.csv``: Harrell's C with its CI, ΔC against scar-% Cox, ...).

    Attributes:
        skipped: cases left out, with the reason; pictures: the figures drawn (name -> file);
            final_cases: the cases the final model was trained on.
    """

    run: Path
    model: str
    table: pd.DataFrame
    cases: int
    events: int
    synthetic: bool
    skipped: dict[str, str] = field(default_factory=dict)
    pictures: dict[str, Path] = field(default_factory=dict)
    final_cases: int = 0


@dataclass
class _EncoderInputs:
    """What the encoder (or, without one, the settings) fixes: its weights, architecture, tensors and labels."""

    card: EncoderCard | None
    state: dict[str, torch.Tensor] | None
    config: EncoderConfig
    spec: TensorSpec
    labels: str


@dataclass
class _Evaluation:
    """Every method on every split, pooled out of fold: the comparison table and what it was made from."""

    oof: pd.DataFrame
    table: pd.DataFrame
    per_split: pd.DataFrame
    calibration: pd.DataFrame


def run_finetune(
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: FinetuneConfig,
    encoder: str | os.PathLike[str] | None = None,
    outcomes: str | os.PathLike[str] | None = None,
    features: str | None = None,
    device: str = "auto",
    jobs: int = 1,
    reporter: Reporter = SILENT,
) -> FinetuneResult:
    """Evaluate every method on the same splits, train the final model, write the run folder ``out``.

    ``reporter`` draws the progress bars and receives one line per fit (see ``lgerisk.reporting``). The steps:
    the encoder's inputs (:func:`_encoder_inputs`), the labelled cases (:func:`_workspace`), every method on
    every split (:func:`_evaluate`), then the final model and the run's files (:func:`_write_run`).

    Example:
        >>> run_finetune("sample_data", "work/risk", FinetuneConfig(), encoder="work/pretrain")  # doctest: +SKIP
    """
    from lgerisk.runtime import resolve_device

    run = Path(out)
    if run.exists() and not run.is_dir():
        raise InputError(f"out={str(run)!r}: exists and is not a folder.", setting="out")
    torch_device = resolve_device(device)
    inputs = _encoder_inputs(run, config, encoder)
    prepared, workspace, skipped, synthetic = _workspace(
        data, run, config, inputs, encoder, outcomes, features, jobs, reporter, torch_device
    )
    ids, event = workspace.case_ids, workspace.event
    splits = make_splits(ids, event, config)
    methods = methods_for(config, encoder is not None)
    names = [method.name for method in methods]
    n_events = sum(event[c] for c in ids)
    reporter.note(
        f"{len(ids)} labelled {'SYNTHETIC ' if synthetic else ''}cases ({n_events} events); "
        f"{len(skipped)} left out; {len(splits)} split(s) x {len(names)} method(s)"
    )
    settings = (
        config.settings_hash()
        + (_encoder_hash(encoder) if encoder is not None else "")
        + _inputs_hash(workspace, prepared.data_hash())
    )
    evaluation = _evaluate(data, run, config, workspace, splits, methods, settings, encoder is not None, synthetic)
    final_ids = development_ids(splits, ids)
    # the run's own model (key "model", last) is always the survival network
    final = cast(
        "FittedDeep", fit_method(methods[-1], workspace, final_ids, derive_seed(config.seed, 99), reporter.note)
    )
    pictures = _write_run(
        run,
        config,
        workspace,
        prepared,
        evaluation,
        final,
        final_ids,
        splits,
        names,
        skipped,
        inputs,
        encoder,
        synthetic,
    )
    return FinetuneResult(
        run,
        names[-1],
        evaluation.table,
        len(ids),
        n_events,
        synthetic,
        skipped,
        {k: Path(p) for k, p in pictures.items()},
        len(final_ids),
    )


def _encoder_inputs(run: Path, config: FinetuneConfig, encoder: str | os.PathLike[str] | None) -> _EncoderInputs:
    """The pretrained encoder's weights, architecture, tensor spec and label map (without an encoder: the
    network from scratch, as ``config`` describes it); ``InputError`` for a probe without an encoder, or an
    ``out`` folder that is the encoder's or holds another kind of run."""
    from lgerisk.artifacts import card_format, load_encoder
    from lgerisk.data.tensors import TensorSpec
    from lgerisk.models.encoder import EncoderConfig

    if encoder is not None:
        pretrained_model, card = load_encoder(encoder)
        spec = TensorSpec(**cast("TensorSettings", card.tensor_spec))
        inputs = _EncoderInputs(
            card,
            pretrained_model.image_encoder.state_dict(),
            pretrained_model.image_encoder.config,
            spec,
            config.labels or card.config.get("labels") or DEFAULT_LABELS,
        )
    else:
        if config.mode == "probe":
            raise InputError(
                "mode='probe' needs encoder= (a pretrained encoder's folder); without one the network is "
                "trained from scratch: use mode='full'.",
                setting="mode",
            )
        spec = TensorSpec(**cast("TensorSettings", config.tensor)) if config.tensor else TensorSpec()
        architecture = EncoderConfig(
            in_channels=len(spec.channels), width=config.width, embedding_dim=config.embedding_dim
        )
        inputs = _EncoderInputs(None, None, architecture, spec, config.labels or DEFAULT_LABELS)
    if encoder is not None and run.resolve() == Path(encoder).resolve():
        raise InputError(
            f"out={str(run)!r}: that is the encoder's folder; write the risk model elsewhere.", setting="out"
        )
    if (run / CARD_FILE).is_file() and card_format(run) != MODEL_FORMAT:
        raise InputError(
            f"out={str(run)!r}: holds another kind of run (not a risk model); choose a new folder.", setting="out"
        )
    return inputs


def _workspace(
    data: str | os.PathLike[str],
    run: Path,
    config: FinetuneConfig,
    inputs: _EncoderInputs,
    encoder: str | os.PathLike[str] | None,
    outcomes: str | os.PathLike[str] | None,
    features: str | None,
    jobs: int,
    reporter: Reporter,
    torch_device: torch.device,
) -> tuple[PreparedData, Workspace, dict[str, str], bool]:
    """The labelled cases, their features and tensors (a raw cohort preprocessed the way the encoder's data
    was); ``inputs.labels`` becomes the map the data were read with. Returns (prepared data, workspace, cases
    left out with the reason, synthetic)."""
    from lgerisk.data.tensors import TensorCache
    from lgerisk.training.data import prepare_data

    cache = run / "cache"
    preprocess = None
    trained_settings = (inputs.card.preprocessing or {}).get("settings") if inputs.card is not None else None
    if trained_settings:  # a raw cohort is preprocessed the way the encoder's data was
        from lgerisk.preprocess.config import PreprocessConfig

        preprocess = PreprocessConfig.from_dict({**trained_settings, "labels": inputs.labels})
    prepared = prepare_data(data, cache, inputs.labels, features, jobs, reporter, preprocess=preprocess)
    data_labels = (prepared.preprocess_settings.get("settings") or {}).get("labels")
    if data_labels is not None and data_labels != inputs.labels:
        if config.labels is not None:
            raise InputError(
                f"labels={inputs.labels!r}: {data} was preprocessed with labels={data_labels!r}; omit labels= "
                "or preprocess again.",
                setting="labels",
            )
        # a preprocessed folder's masks were read with its own map (PreprocessConfig.labels: a str)
        inputs.labels = cast("str", data_labels)
    if inputs.card is not None:
        _check_preprocessing(inputs.card, prepared, encoder)
    ids, time, event, covariates, skipped = labelled_cases(prepared, outcomes, config.covariates)
    skipped.update({c: "preprocessing or radiomics failed (see the cache's errors.csv)" for c in prepared.excluded})
    check_outcomes(ids, event, skipped, data, config)
    if SCAR_COLUMN not in prepared.features.columns and config.baselines:
        raise InputError(
            f"{prepared.features_path}: the feature table has no {SCAR_COLUMN} column (the scar-% "
            "baseline needs it); extract the table again with this version's radiomics extraction."
        )
    synthetic = _trained_on_synthetic(data, ids)
    tensor_cache = TensorCache(cache / "tensors")
    by_id = {case.case_id: case for case in prepared.cases}
    workspace = Workspace(
        case_ids=ids,
        time=time,
        event=event,
        features=prepared.features,
        covariates=covariates,
        tensors={c: tensor_cache.get(by_id[c], inputs.spec) for c in ids},
        encoder_state=inputs.state,
        encoder_config=inputs.config,
        device=torch_device,
        config=config,
        spec=inputs.spec,
        reporter=reporter,
        encoder_guided=inputs.card is not None and _radiomics_guided(inputs.card),
    )
    return prepared, workspace, skipped, synthetic


def _evaluate(
    data: str | os.PathLike[str],
    run: Path,
    config: FinetuneConfig,
    workspace: Workspace,
    splits: list[Split],
    methods: list[Method],
    settings: str,
    pretrained: bool,
    synthetic: bool,
) -> _Evaluation:
    """Every method fitted on every split (a finished part of an earlier run under the same ``settings``
    reused), pooled out of fold into the comparison table, with the oracle rows of a synthetic cohort."""
    import pandas as pd

    from lgerisk.evaluation import compare
    from lgerisk.evaluation.metrics import brier_grid

    parts = run / "parts"
    jobs_list = [(method, split) for split in splits for method in methods]
    workspace.full_fits_left = sum(
        trains_end_to_end(method, config, pretrained)
        and _finished_part(_part_path(parts, method, split), split, settings) is None
        for method, split in jobs_list
    ) + trains_end_to_end(methods[-1], config, pretrained)  # and the final model
    frames = []
    with workspace.reporter.bar("fit methods", len(jobs_list), transient=True) as advance:
        for method, split in jobs_list:
            seed = derive_seed(config.seed, splits.index(split), 31)
            frames.append(_fit_split(workspace, method, split, parts, settings, seed, workspace.reporter.note))
            advance()
    predictions = pd.concat(frames, ignore_index=True)
    all_time, all_event = workspace.outcome(workspace.case_ids)
    grid = brier_grid(all_time, all_event, all_time, all_event)
    oof = compare.out_of_fold(predictions, grid, config.horizons)
    table, per_split = compare.comparison_table(
        oof, all_time, all_event, grid, config.horizons, config.n_boot, config.seed
    )
    oracle, truth = _oracle(data, oof, all_time, all_event, config)
    if oracle:
        table = pd.concat([table, pd.DataFrame(oracle)], ignore_index=True)
    table = compare.add_delta_c(
        table, oof, config.n_boot, config.seed, extra={"oracle (true log-hazard)": truth} if truth is not None else None
    )
    table.insert(0, "synthetic", synthetic)
    horizon = _calibration_horizon(config.horizons, all_time)
    calibration = compare.calibration(oof, horizon) if horizon is not None else pd.DataFrame()
    return _Evaluation(oof, table, per_split, calibration)


def _write_run(
    run: Path,
    config: FinetuneConfig,
    workspace: Workspace,
    prepared: PreparedData,
    evaluation: _Evaluation,
    final: FittedDeep,
    final_ids: list[str],
    splits: list[Split],
    names: list[str],
    skipped: dict[str, str],
    inputs: _EncoderInputs,
    encoder: str | os.PathLike[str] | None,
    synthetic: bool,
) -> dict[str, Path]:
    """The run's files (the card last: its presence says the folder is whole); the pictures drawn."""
    import pandas as pd

    from lgerisk.evaluation import compare
    from lgerisk.evaluation.plots import comparison_plot

    final_risk = predict_risk(final, workspace, final_ids)
    run.mkdir(parents=True, exist_ok=True)
    (run / CARD_FILE).unlink(missing_ok=True)  # no card until every file of this run is in place
    for stale in [*run.glob("km_*.png"), run / "calibration.csv", run / "comparison.png"]:
        stale.unlink(missing_ok=True)
    oof, table = evaluation.oof, evaluation.table
    keep = [c for c in oof.columns if not c.startswith("s@")]
    write_csv(run / "predictions.csv", oof[keep])
    write_csv(run / "comparison.csv", table)
    write_json(run / "comparison.json", {"synthetic": synthetic, "rows": json_rows(table)})
    write_csv(run / "metrics_by_split.csv", evaluation.per_split)
    if len(evaluation.calibration):
        write_csv(run / "calibration.csv", evaluation.calibration)
    pictures = compare.km_plots(oof, run, synthetic)
    pictures["comparison"] = comparison_plot(table, run / "comparison.png", synthetic=synthetic)
    write_csv(run / "metrics.csv", pd.DataFrame(final.history))
    save_risk_model(run, final.model, final.tabular)
    concepts = concepts_table(final, workspace, final_ids, final_risk, prepared.features)
    write_csv(run / "concepts.csv", concepts)
    reference = prepared.features.loc[final_ids, [c for c in concepts["feature"] if c in prepared.features.columns]]
    write_csv(run / "reference_features.csv", reference.reset_index(drop=True))  # values only: no ids, no hashes
    card = risk_model_card(
        RiskCardInputs(
            config=config,
            workspace=workspace,
            prepared=prepared,
            final=final,
            final_ids=final_ids,
            final_risk=final_risk,
            table=table,
            splits=splits,
            names=names,
            skipped=skipped,
            card_in=inputs.card,
            encoder=encoder,
            labels=inputs.labels,
            synthetic=synthetic,
            concepts=concepts,
        )
    )
    write_card(run, card)
    return pictures


def _part_path(parts: Path, method: Method, split: Split) -> Path:
    """Where the out-of-split predictions of ``method`` on ``split`` are kept."""
    from lgerisk.evaluation.compare import slug

    return parts / split.name / f"{slug(method.name)}.csv"


def _finished_part(path: Path, split: Split, settings: str) -> pd.DataFrame | None:
    """The predictions at ``path`` when they were made under ``settings`` for exactly ``split``'s cases, else None."""
    import pandas as pd

    if not path.is_file():
        return None
    done = pd.read_csv(path, dtype={"case_id": str}, float_precision="round_trip")
    same_cases = set(done["case_id"]) == set(split.train) | set(split.test)
    if len(done) and (done["settings"] == settings).all() and same_cases:
        return done.drop(columns=["settings"])
    return None


def _fit_split(
    workspace: Workspace,
    method: Method,
    split: Split,
    parts: Path,
    settings: str,
    seed: int,
    say: Callable[[str], None],
) -> pd.DataFrame:
    """Out-of-split predictions of one method (reused from ``parts/`` when already done)."""
    import pandas as pd

    name = method.name
    path = _part_path(parts, method, split)
    done = _finished_part(path, split, settings)
    if done is not None:
        return done
    started = clock.perf_counter()
    fitted = fit_method(method, workspace, list(split.train), seed, say)
    rows = []
    for role, ids in (("train", split.train), ("test", split.test)):
        risk = predict_risk(fitted, workspace, list(ids))
        time, event = workspace.outcome(ids)
        rows.append(
            pd.DataFrame(
                {
                    "method": name,
                    "split": split.name,
                    "evaluation": split.evaluation,
                    "role": role,
                    "case_id": list(ids),
                    "time": time,
                    "event": event,
                    "risk": risk,
                }
            )
        )
    frame = pd.concat(rows, ignore_index=True)
    write_csv(path, frame.assign(settings=settings))
    say(f"  {name:<32} {split.name:<6} {clock.perf_counter() - started:6.1f} s")
    return frame


def _inputs_hash(workspace: Workspace, data_hash: str) -> str:
    """Hash of what the fits read besides the settings: images, outcomes, feature rows, covariates."""
    import pandas as pd

    ids = workspace.case_ids
    digest = hashlib.sha256(data_hash.encode())
    digest.update(json.dumps([[c, workspace.time[c], workspace.event[c]] for c in ids]).encode())
    for frame in (workspace.features.loc[ids], workspace.covariates.loc[ids]):
        digest.update(json.dumps([str(c) for c in frame.columns]).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def _radiomics_guided(card: EncoderCard) -> bool:
    """Whether an encoder was pretrained with radiomics guidance: an objective other than image-only SimCLR, or
    the auxiliary radiomics head.

    Example:
        >>> _radiomics_guided(load_encoder("work/pretrain")[1])   # doctest: +SKIP
        True
    """
    objective = (card.config.get("objective") or {}).get("preset", "hybrid")
    return objective != "simclr" or float(card.config.get("aux_weight") or 0.0) > 0


def _encoder_hash(encoder: str | os.PathLike[str]) -> str:
    return file_sha256(Path(encoder, MODEL_FILE))[:16]


def _check_preprocessing(card: EncoderCard, prepared: PreparedData, encoder: str | os.PathLike[str] | None) -> None:
    trained = (card.preprocessing or {}).get("settings_hash")
    ours = (prepared.preprocess_settings or {}).get("settings_hash")
    if trained and ours and trained != ours:
        theirs = (card.preprocessing or {}).get("settings") or {}
        mine = (prepared.preprocess_settings or {}).get("settings") or {}
        differ = [
            f"{k} {theirs.get(k)} vs {mine.get(k)}"
            for k in sorted(set(theirs) | set(mine))
            if theirs.get(k) != mine.get(k)
        ]
        raise InputError(
            f"{encoder}: the encoder was pretrained on data preprocessed with other settings than "
            f"the data ({'; '.join(differ) or f'{trained} vs {ours}'}); preprocess the data the same "
            "way.",
            setting="data",
        )


def _calibration_horizon(horizons: tuple[float, ...], time: NDArray[np.float64]) -> float | None:
    """The middle horizon within follow-up (calibration is shown at one)."""
    inside = [h for h in horizons if h < float(time.max())]
    return inside[len(inside) // 2] if inside else None


def _oracle(
    data: str | os.PathLike[str],
    oof: pd.DataFrame,
    time: NDArray[np.float64],
    event: NDArray[np.int_],
    config: FinetuneConfig,
) -> tuple[list[JSONDict], pd.Series | None]:
    """The true log-hazard's rows and the log-hazard per case id, when ``data`` is a synthetic cohort
    with its ground_truth.csv (else ``([], None)``)."""
    import pandas as pd

    from lgerisk.evaluation.compare import oracle_rows

    folder = Path(data) if Path(data).is_dir() else Path(data).parent
    path = folder / "ground_truth.csv"
    if not path.is_file():
        return [], None
    truth = pd.read_csv(path, dtype={"case_id": str}).set_index("case_id")
    if "log_hazard" not in truth.columns:
        return [], None
    rows = oracle_rows(oof, time, event, truth["log_hazard"], config.horizons, config.n_boot, config.seed)
    return rows, truth["log_hazard"]


def _trained_on_synthetic(data: str | os.PathLike[str], ids: list[str]) -> bool:
    """Whether every training scan comes from the synthetic generator, by its own marker (never by id): the
    scans of ``data`` as given (raw scans by their header or cohort marker, preprocessed ones by qc.json)."""
    from lgerisk.io.cohort import discover_cohort
    from lgerisk.io.provenance import cases_are_synthetic

    wanted = set(ids)
    return cases_are_synthetic(case.image for case in discover_cohort(data).cases if case.case_id in wanted)
