"""Radiomics-guided contrastive pretraining: the library function behind ``lgerisk pretrain``.

Run folder (written by rank 0 only, every file atomically)::

    RUN/model.pt            state dicts only (torch.load(weights_only=True))
    RUN/model_card.json     data, config, features and scaling, versions, metrics, intended use
    RUN/metrics.csv         a row an epoch
    RUN/checkpoint/last.pt  everything needed to resume after the last finished epoch
    RUN/cache/              preprocessing, radiomics and tensors of a raw cohort (reused on rerun)

Determinism: every random draw is derived from (seed, epoch, case index) — weights from the seed,
the sampling order from (seed, epoch), augmentations and SCARF corruption from (seed, epoch, index) —
so a run resumed after its last finished epoch ends with the weights of an uninterrupted run, and
two processes under torchrun see the same global batches as one process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict, cast

from lgerisk.artifacts import (
    CHECKPOINT,
    ENCODER_FORMAT,
    METRICS_FILE,
    MODEL_FILE,
    save_encoder,
    versions,
    write_card,
)
from lgerisk.cards import INTENDED_USE, EncoderCard
from lgerisk.errors import InputError, brief
from lgerisk.io.atomic import write_csv
from lgerisk.reporting import SILENT, Reporter
from lgerisk.training.pretrain_config import PretrainConfig
from lgerisk.training.seeding import derive_seed
from lgerisk.version import __version__

if TYPE_CHECKING:
    import numpy as np
    import torch
    from numpy.typing import NDArray
    from torch.utils.data import DistributedSampler

    from lgerisk.data.augment import Augmenter
    from lgerisk.data.features import FeatureScaler
    from lgerisk.data.tensors import StoredTensors, TensorSpec
    from lgerisk.io.cohort import Case
    from lgerisk.models.contrastive import ContrastiveModel, ContrastiveModelConfig
    from lgerisk.objectives.contrastive import HybridObjective, ObjectiveConfig
    from lgerisk.training.data import PreparedData
    from lgerisk.training.distributed import DistributedContext
    from lgerisk.training.finetune_config import TensorSettings
    from lgerisk.training.pretrain_config import AugmentSettings


class _Checkpoint(TypedDict):
    """``checkpoint/last.pt``: the state after an epoch (:func:`_save_checkpoint`, :func:`_resumed`)."""

    epoch: int
    resume_hash: str
    data_hash: str
    features_hash: str
    model: dict[str, torch.Tensor]
    objective: dict[str, torch.Tensor]
    optimizer: dict[str, object]
    amp_scaler: dict[str, object]
    history: str  # the rows of metrics.csv so far, as JSON


def split_cases(case_ids: list[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Seeded split into training and validation ids (at least 2 validation cases when any)."""
    import numpy as np

    order = sorted(case_ids)
    if val_fraction <= 0 or len(order) < 4:
        return order, []
    n_val = max(2, int(round(val_fraction * len(order))))
    permutation = np.random.default_rng([seed, 7]).permutation(len(order))
    val = sorted(order[i] for i in permutation[:n_val])
    return [c for c in order if c not in set(val)], val


def _lr_factor(epoch: int, config: PretrainConfig) -> float:
    """Linear warm-up then cosine decay, by epoch."""
    if epoch < config.warmup_epochs:
        return (epoch + 1) / (config.warmup_epochs + 1)
    span = max(1, config.epochs - config.warmup_epochs)
    return 0.5 * (1 + math.cos(math.pi * (epoch - config.warmup_epochs) / span))


def _scarf(
    radiomics: torch.Tensor, indices: torch.Tensor, bank: torch.Tensor, rate: float, seed: int, epoch: int
) -> torch.Tensor:
    """SCARF-corrupt each row with a generator seeded by (seed, epoch, case index)."""
    import torch

    from lgerisk.objectives.contrastive import scarf_corrupt

    if rate <= 0:
        return radiomics
    rows = []
    for row, index in zip(radiomics, indices.tolist()):
        generator = torch.Generator().manual_seed(derive_seed(seed, epoch, index, 11))
        rows.append(scarf_corrupt(row.unsqueeze(0).cpu(), bank, rate, generator))
    return torch.cat(rows).to(radiomics.device)


@dataclass(frozen=True)
class PretrainResult:
    """A finished pretraining run: its folder, the last epoch's metrics, the train/validation case counts."""

    run: Path
    epochs: int
    train_cases: int
    val_cases: int
    final_metrics: dict[str, float]
    synthetic: bool


@dataclass
class _PretrainData:
    """What a run trains on (every rank the same): cases, their tensors, the split, the scaled radiomics."""

    prepared: PreparedData
    tensors: StoredTensors
    spec: TensorSpec
    train_ids: list[str]
    val_ids: list[str]
    scaler: FeatureScaler
    radiomics: NDArray[np.float32]  # every case's scaled radiomics, a row each
    index_of: dict[str, int]
    data_hash: str

    def rows(self, ids: Sequence[str]) -> list[int]:
        """Row numbers of ``ids`` in ``tensors`` and ``radiomics``."""
        return [self.index_of[c] for c in ids]

    @property
    def features_hash(self) -> str:
        """Hash of the radiomics scaling (a resumed run must share it)."""
        return hashlib.sha256(json.dumps(self.scaler.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class _PretrainModel:
    """The model, its objective and optimiser, and how a step runs (DDP wrapper, mixed precision)."""

    model: ContrastiveModel
    objective: HybridObjective
    forward: torch.nn.Module  # the model, or its DistributedDataParallel wrapper
    optimizer: torch.optim.Optimizer
    model_config: ContrastiveModelConfig
    objective_config: ObjectiveConfig
    aux_columns: list[int]
    use_amp: bool
    amp_dtype: torch.dtype
    amp_scaler: torch.amp.GradScaler


def run_pretrain(
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: PretrainConfig,
    features: str | None = None,
    device: str = "auto",
    resume: bool = False,
    jobs: int = 1,
    reporter: Reporter = SILENT,
) -> PretrainResult:
    """Pretrain an image encoder on ``data`` and write the run folder ``out``; returns what it did.

    ``reporter`` draws the progress bars (rank 0 only) and receives one line per epoch. The steps: the data
    (:func:`_pretrain_data`), the model (:func:`_pretrain_model`), the state of an interrupted run
    (:func:`_resumed`), the epochs (:func:`_train_epoch`, a checkpoint after each), the encoder and its card.

    Example:
        >>> run_pretrain("sample_data", "work/pretrain", PretrainConfig(epochs=2))   # doctest: +SKIP
    """
    from lgerisk.runtime import resolve_device
    from lgerisk.training import distributed

    run = Path(out)
    torch_device = resolve_device(device, int(os.environ.get("LOCAL_RANK", "0")))
    context = distributed.init_distributed(torch_device)
    try:
        inputs = _pretrain_data(data, run, config, features, jobs, reporter, resume, context)
        built = _pretrain_model(config, inputs, torch_device, context, reporter.note)
        history, start_epoch = _resumed(run, config, inputs, built, torch_device) if resume else ([], 0)
        loop = _EpochLoop(config, inputs, built, torch_device, context, start_epoch)
        for epoch in range(start_epoch, config.epochs):
            row = loop.train_epoch(epoch, reporter if context.is_main else replace(reporter, progress=False))
            history.append(row)
            if context.is_main:
                _save_checkpoint(run, config, inputs, built, epoch, history)
                _write_metrics(run, history)
                reporter.note(("[SYNTHETIC data] " if _is_synthetic(inputs.prepared.cases) else "") + _epoch_line(row))
            context.barrier()
        if context.is_main:
            save_encoder(run, built.model)
            _write_metrics(run, history)
            write_card(run, _model_card(config, inputs, built, history, torch_device, context))
        context.barrier()
        final = history[-1] if history else {}
        return PretrainResult(
            run,
            config.epochs,
            len(inputs.train_ids),
            len(inputs.val_ids),
            {k: float(v) for k, v in final.items() if isinstance(v, (int, float))},
            _is_synthetic(inputs.prepared.cases),
        )
    finally:
        distributed.shutdown(context)


def _pretrain_data(
    data: str | os.PathLike[str],
    run: Path,
    config: PretrainConfig,
    features: str | None,
    jobs: int,
    reporter: Reporter,
    resume: bool,
    context: DistributedContext,
) -> _PretrainData:
    """The run's data, the same on every rank: rank 0 checks the run folder and prepares everything that is
    written (caches, tensors); the others wait for its verdict and its list of usable cases, then only read, so
    any error on rank 0 stops every rank with the same sentence instead of leaving them waiting. Then the split
    and the radiomics scaled on the training cases."""
    import numpy as np

    from lgerisk.data.features import FeatureScaler, decorrelated_columns, feature_columns
    from lgerisk.data.tensors import TensorCache, TensorSpec
    from lgerisk.training import distributed
    from lgerisk.training.data import prepare_data

    cache = run / "cache"
    spec = TensorSpec(**cast("TensorSettings", config.tensor)) if config.tensor else TensorSpec()
    tensors_cache = TensorCache(cache / "tensors")
    failure, shared = None, None
    if context.is_main:
        try:
            _check_out(run, resume)
            prepared = prepare_data(data, cache, config.labels, features, jobs, reporter)
            tensors = tensors_cache.stored(prepared.cases, spec)
            shared = (str(prepared.source), str(prepared.features_path), prepared.case_ids)
        except Exception as exc:  # noqa: BLE001 - every rank must learn of it; re-raised below
            failure = exc
    verdict = None if failure is None else (str(failure), getattr(failure, "setting", None))
    verdict, shared = distributed.broadcast_object((verdict, shared), context)
    if failure is not None:
        raise failure
    if verdict is not None:
        raise InputError(verdict[0], setting=verdict[1])
    if not context.is_main:
        shared = cast("tuple[str, str, list[str]]", shared)  # rank 0's, sent whenever its verdict is None
        prepared = prepare_data(
            shared[0], cache, config.labels, shared[1], 1, replace(reporter, progress=False), only=shared[2]
        )
        tensors = tensors_cache.stored(prepared.cases, spec)
    data_hash = prepared.data_hash()

    train_ids, val_ids = split_cases(prepared.case_ids, config.val_fraction, config.seed)
    if len(train_ids) < config.batch_size:
        raise InputError(
            f"{data}: {len(train_ids)} training cases (of {len(prepared.cases)} usable, "
            f"{len(val_ids)} held out) is fewer than one batch of {config.batch_size}; lower "
            "batch_size= or val_fraction=.",
            setting="batch_size",
        )
    if config.batch_size % context.world_size:
        raise InputError(
            f"batch_size={config.batch_size}: must be divisible by the number of processes ({context.world_size}).",
            setting="batch_size",
        )
    table = prepared.features
    columns = feature_columns(table, cases=train_ids)
    if config.radiomics_view == "decorrelated":
        columns = decorrelated_columns(table, columns, cases=train_ids)
    scaler = FeatureScaler.fit(table, columns, cases=train_ids)
    radiomics = scaler.transform(table, cases=prepared.case_ids)
    if not np.isfinite(radiomics).all():
        raise InputError("radiomics features hold NaN or infinite values after scaling; check the table.")
    index_of = {case_id: i for i, case_id in enumerate(prepared.case_ids)}
    return _PretrainData(prepared, tensors, spec, train_ids, val_ids, scaler, radiomics, index_of, data_hash)


def _pretrain_model(
    config: PretrainConfig,
    data: _PretrainData,
    torch_device: torch.device,
    context: DistributedContext,
    say: Callable[[str], None],
) -> _PretrainModel:
    """The contrastive model (seeded), its objective, the optimiser and the mixed-precision scaler; wrapped in
    DistributedDataParallel under torchrun."""
    import torch

    from lgerisk.data.features import QC_METRICS
    from lgerisk.models import describe
    from lgerisk.models.contrastive import ContrastiveModel, ContrastiveModelConfig
    from lgerisk.models.encoder import EncoderConfig
    from lgerisk.models.radiomics import RadiomicsEncoderConfig
    from lgerisk.objectives.contrastive import HybridObjective, ObjectiveConfig

    objective_settings = dict(config.objective)
    objective_config = ObjectiveConfig.from_preset(  # the preset's name: a str (another one -> InputError)
        cast("str", objective_settings.pop("preset", "hybrid")), **objective_settings
    )
    aux_columns = (
        [i for i, name in enumerate(data.scaler.feature_names) if config.aux_targets == "all" or name in QC_METRICS]
        if config.aux_weight > 0
        else []
    )
    if config.aux_weight > 0 and not aux_columns:
        raise InputError(
            f"aux_targets={config.aux_targets!r}: the feature table has no such column that varies "
            "in the training cases.",
            setting="aux_targets",
        )
    model_config = ContrastiveModelConfig(
        encoder=EncoderConfig(
            in_channels=len(data.spec.channels),
            width=config.width,
            depth=config.depth,
            embedding_dim=config.embedding_dim,
        ),
        radiomics=RadiomicsEncoderConfig(
            n_features=data.radiomics.shape[1], embedding_dim=config.embedding_dim, dropout=config.radiomics_dropout
        ),
        projection_dim=config.projection_dim,
        aux_targets=len(aux_columns),
    )
    torch.manual_seed(derive_seed(config.seed, 1))
    model = ContrastiveModel(model_config).to(torch_device)
    objective = HybridObjective(objective_config, embedding_dim=config.projection_dim).to(torch_device)
    if context.is_main:
        say(describe(model))
    forward: torch.nn.Module = model  # the model, or its DistributedDataParallel wrapper
    if context.initialised:
        from torch.nn.parallel import DistributedDataParallel

        forward = DistributedDataParallel(
            forward,
            device_ids=[torch_device.index] if torch_device.type == "cuda" else None,
            find_unused_parameters=not (objective_config.clip_weight > 0 and objective_config.simclr_weight > 0),
        )
    parameters = list(model.parameters()) + [p for p in objective.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    use_amp = config.amp and torch_device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    amp_scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    return _PretrainModel(
        model,
        objective,
        forward,
        optimizer,
        model_config,
        objective_config,
        aux_columns,
        use_amp,
        amp_dtype,
        amp_scaler,
    )


def _resumed(
    run: Path, config: PretrainConfig, data: _PretrainData, built: _PretrainModel, torch_device: torch.device
) -> tuple[list[dict[str, float]], int]:
    """The history and the next epoch of the interrupted run in ``run``, its state loaded into ``built``;
    ``InputError`` when the checkpoint is of other settings, data or features, or does not fit the model."""
    from lgerisk.training.checkpoint import load_checkpoint

    state = cast("_Checkpoint", load_checkpoint(run / CHECKPOINT, map_location=torch_device))  # checked below
    if state.get("resume_hash") != config.resume_hash():
        raise InputError(
            f"{run / CHECKPOINT}: resume=True from a run with a different configuration "
            "(only epochs= and num_workers= may change); write to a new out= folder.",
            setting="resume",
        )
    if state.get("data_hash") != data.data_hash or state.get("features_hash") != data.features_hash:
        raise InputError(
            f"{run / CHECKPOINT}: resume=True with different data or radiomics features than the interrupted run.",
            setting="resume",
        )
    try:
        built.model.load_state_dict(state["model"])
        built.objective.load_state_dict(state["objective"])
        built.optimizer.load_state_dict(state["optimizer"])
        if state["amp_scaler"]:
            built.amp_scaler.load_state_dict(state["amp_scaler"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise InputError(f"{run / CHECKPOINT}: does not fit this model ({brief(exc)}).") from exc
    return json.loads(state["history"]), int(state["epoch"]) + 1


def _save_checkpoint(
    run: Path,
    config: PretrainConfig,
    data: _PretrainData,
    built: _PretrainModel,
    epoch: int,
    history: list[dict[str, float]],
) -> None:
    """The state after ``epoch`` (what :func:`_resumed` reads back)."""
    from lgerisk.training.checkpoint import save_checkpoint

    save_checkpoint(
        run / CHECKPOINT,
        {
            "epoch": epoch,
            "resume_hash": config.resume_hash(),
            "data_hash": data.data_hash,
            "features_hash": data.features_hash,
            "model": built.model.state_dict(),
            "objective": built.objective.state_dict(),
            "optimizer": built.optimizer.state_dict(),
            "amp_scaler": built.amp_scaler.state_dict(),
            "history": json.dumps(history),
        },
    )


class _EpochLoop:
    """The training cases' loader, the radiomics bank and one epoch of steps (then validation)."""

    def __init__(
        self,
        config: PretrainConfig,
        data: _PretrainData,
        built: _PretrainModel,
        torch_device: torch.device,
        context: DistributedContext,
        start_epoch: int,
    ) -> None:
        import torch
        from torch.utils.data import DistributedSampler

        from lgerisk.data.augment import AugmentConfig, Augmenter
        from lgerisk.data.dataset import PretrainDataset, make_loader

        self.config, self.data, self.built, self.device, self.context = config, data, built, torch_device, context
        train_features = data.radiomics[data.rows(data.train_ids)]
        self.bank = torch.from_numpy(train_features)
        self.bank_device = self.bank.to(torch_device)
        self.bank_unit = torch.nn.functional.normalize(self.bank_device, dim=1)  # false negatives: clean rows
        self.aux_index = torch.as_tensor(built.aux_columns, dtype=torch.long, device=torch_device)
        self.every_negative = built.objective_config.negatives == "all"
        self.uses_image_pairs = built.objective_config.simclr_weight > 0
        self.uses_radiomics = built.objective_config.clip_weight > 0
        self.augmentation = Augmenter(AugmentConfig(**cast("AugmentSettings", config.augment)), data.spec.channels)
        self.dataset = PretrainDataset(
            data.tensors.subset(data.rows(data.train_ids)),
            train_features,
            self.augmentation,
            views=2 if self.uses_image_pairs else 1,
            base_seed=derive_seed(config.seed, 3),
        )
        sampler: DistributedSampler[int] = DistributedSampler(
            self.dataset,  # type: ignore[arg-type]  # a map-style dataset
            num_replicas=context.world_size,
            rank=context.rank,
            shuffle=True,
            seed=derive_seed(config.seed, 4) % (2**31),
            drop_last=True,
        )
        self.steps_per_epoch = len(data.train_ids) // config.batch_size
        self.loader = make_loader(
            self.dataset,
            config.batch_size // context.world_size,
            shuffle=False,
            seed=derive_seed(config.seed, 6),
            epoch=start_epoch,
            num_workers=config.num_workers,
            sampler=sampler,
            drop_last=True,
            pin_memory=torch_device.type == "cuda",
        )

    def train_epoch(self, epoch: int, reporter: Reporter) -> dict[str, float]:
        """One epoch of steps, then validation; the epoch's row of ``metrics.csv``."""
        import torch

        config, built = self.config, self.built
        started = time.perf_counter()
        for group in built.optimizer.param_groups:
            group["lr"] = config.lr * _lr_factor(epoch, config)
        torch.manual_seed(derive_seed(config.seed, epoch, 5))  # dropout: same draws on resume
        self.dataset.set_epoch(epoch)  # the loader's sampler reads it (and passes it to the DistributedSampler)
        built.model.train()
        built.objective.train()
        sums: dict[str, float] = {}
        bar = f"epoch {epoch + 1}/{config.epochs}"
        # the loss is shown once a batch has one (a loss column would read "nan" until then)
        with reporter.bar(f"{bar} loss –", self.steps_per_epoch, transient=True) as advance:
            for batch in self.loader:
                terms = self._step(batch, epoch)
                for key, value in terms.items():
                    sums[key] = sums.get(key, 0.0) + float(value.detach())
                advance(description=f"{bar} loss {float(terms['loss'].detach()):.4f}")
        row: dict[str, float] = {"epoch": epoch + 1, "lr": config.lr * _lr_factor(epoch, config)}
        row.update({f"train_{k}": v / max(1, self.steps_per_epoch) for k, v in sums.items()})
        row.update(
            _validate(
                built.model,
                built.objective,
                self.data.tensors,
                self.data.radiomics,
                self.data.rows(self.data.val_ids),
                self.device,
                self.uses_image_pairs,
                self.uses_radiomics,
                self.augmentation,
                config.seed,
                built.aux_columns,
            )
        )
        row["seconds"] = round(time.perf_counter() - started, 3)
        return row

    def _step(self, batch: dict[str, torch.Tensor], epoch: int) -> dict[str, torch.Tensor]:
        """One optimiser step on ``batch``; the loss terms."""
        import torch

        from lgerisk.training import distributed

        config, built, device, context = self.config, self.built, self.device, self.context
        view1 = batch["view1"].to(device, non_blocking=True)
        view2 = batch["view2"].to(device, non_blocking=True) if self.uses_image_pairs else None
        radiomics = None
        if self.uses_radiomics:
            radiomics = _scarf(
                batch["radiomics"], batch["index"], self.bank, built.objective_config.scarf_rate, config.seed, epoch
            ).to(device)
        with torch.autocast(device_type=device.type, dtype=built.amp_dtype, enabled=built.use_amp):
            projections = built.forward(
                view1, view2, radiomics, self.bank_device if self.every_negative and radiomics is not None else None
            )
        z1 = distributed.gather(projections["image_z1"].float(), context)
        z2 = distributed.gather(projections["image_z2"].float(), context) if view2 is not None else None
        zr = distributed.gather(projections["radiomics_z"].float(), context) if radiomics is not None else None
        ids = distributed.gather_plain(batch["index"].to(device), context)
        similar = _false_negatives(self.bank_unit, ids, built.objective_config) if zr is not None else None
        terms: dict[str, torch.Tensor] = built.objective(
            z1, z2, zr, ids, bank=projections.get("radiomics_bank_z"), similar=similar
        )
        if built.aux_columns:  # over the global batch, like the contrastive terms
            predicted = distributed.gather(projections["aux"].float(), context)
            terms["aux"] = torch.nn.functional.mse_loss(predicted, self.bank_device[ids.long()][:, self.aux_index])
            terms["loss"] = terms["loss"] + config.aux_weight * terms["aux"]
        built.optimizer.zero_grad(set_to_none=True)
        built.amp_scaler.scale(terms["loss"]).backward()
        built.amp_scaler.step(built.optimizer)
        built.amp_scaler.update()
        built.objective.update_queues(z1.detach(), zr.detach() if zr is not None else None, ids)
        return terms


def _is_synthetic(cases: Iterable[Case]) -> bool:
    """Whether every case comes from ``lgerisk synth``, by the generator's own marker (never by id)."""
    from lgerisk.io.provenance import cases_are_synthetic

    return cases_are_synthetic(case.image for case in cases)


def _check_out(run: Path, resume: bool) -> None:
    if resume:
        if not (run / CHECKPOINT).is_file():
            raise InputError(f"{run}: resume=True needs {run / CHECKPOINT}, which does not exist.", setting="resume")
        return
    if (run / CHECKPOINT).exists() or (run / MODEL_FILE).exists():
        raise InputError(
            f"{run}: already holds a pretraining run; continue it with resume=True or choose a new "
            "out= folder (nothing is overwritten).",
            setting="out",
        )


def _false_negatives(bank_unit: torch.Tensor, ids: torch.Tensor, config: ObjectiveConfig) -> torch.Tensor | None:
    """Boolean ``(N, M)`` (``negatives="all"``) or ``(N, N)`` mask of cases whose clean standardised
    radiomics have cosine similarity >= ``config.false_negative_similarity`` with row ``i``'s (None: off)."""
    if config.false_negative_similarity is None:
        return None
    rows = bank_unit[ids.long()]
    keys = bank_unit if config.negatives == "all" else rows
    return rows @ keys.T >= config.false_negative_similarity


def _validate(
    model: ContrastiveModel,
    objective: HybridObjective,
    tensors: Sequence[NDArray[np.float32]],
    radiomics: NDArray[np.float32],
    indices: list[int],
    device: torch.device,
    uses_image_pairs: bool,
    uses_radiomics: bool,
    augmentation: Augmenter,
    seed: int,
    aux_columns: list[int] | None = None,
) -> dict[str, float]:
    """Held-out loss, cross-modal retrieval top-1/top-5 (and chance), alignment and uniformity; with an
    auxiliary head, its held-out mean squared error and R² (over the targets' held-out variance)."""
    import torch

    from lgerisk.objectives.contrastive import clip_loss, nt_xent_loss
    from lgerisk.training.metrics import alignment, retrieval_topk, uniformity

    if len(indices) < 2:
        return {}
    model.eval()
    with torch.no_grad():
        embedding = _in_chunks(model.embed_image, lambda k: torch.as_tensor(tensors[indices[k]]), len(indices), device)
        image_z = model.image_projection(embedding)  # the held-out scans go through the encoder once
        out: dict[str, float] = {"val_uniformity": uniformity(image_z)}
        if aux_columns and model.aux_head is not None:
            predicted = model.aux_head(embedding).float()
            target = torch.as_tensor(radiomics[indices][:, aux_columns]).to(predicted.device)
            error = float(torch.mean((predicted - target) ** 2))
            spread = float(torch.mean((target - target.mean(dim=0)) ** 2))
            out.update({"val_aux": error, "val_aux_r2": 1 - error / spread if spread > 0 else float("nan")})
        temperature = float(objective.temperature())
        loss = 0.0
        if uses_radiomics:
            radiomics_z = model.project_radiomics(torch.as_tensor(radiomics[indices]).to(device))
            clip = float(clip_loss(image_z, radiomics_z, temperature))
            out.update(
                {
                    "val_clip": clip,
                    "val_top1": retrieval_topk(image_z, radiomics_z, 1),
                    "val_top5": retrieval_topk(image_z, radiomics_z, 5),
                    "val_chance_top1": 1 / len(indices),
                    "val_chance_top5": min(5, len(indices)) / len(indices),
                    "val_alignment": alignment(image_z, radiomics_z),
                }
            )
            loss += objective.config.clip_weight * clip
        if uses_image_pairs:
            other = _in_chunks(
                model.project_image,
                lambda k: torch.as_tensor(augmentation(tensors[indices[k]], derive_seed(seed, 99, indices[k]))),
                len(indices),
                device,
            )
            simclr = float(nt_xent_loss(image_z, other, temperature))
            out.update({"val_simclr": simclr, "val_view_alignment": alignment(image_z, other)})
            loss += objective.config.simclr_weight * simclr
        out["val_loss"] = loss
    return out


def _in_chunks(
    function: Callable[[torch.Tensor], torch.Tensor],
    item: Callable[[int], torch.Tensor],
    count: int,
    device: torch.device,
    size: int = 16,
) -> torch.Tensor:
    """``function`` over ``item(0) .. item(count - 1)`` stacked in chunks of ``size``, concatenated: only a
    chunk of inputs is in memory at a time."""
    import torch

    return torch.cat(
        [
            function(torch.stack([item(k) for k in range(start, min(start + size, count))]).to(device))
            for start in range(0, count, size)
        ]
    )


def _epoch_line(row: dict[str, float]) -> str:
    parts = [f"epoch {row['epoch']}", f"loss {row.get('train_loss', float('nan')):.4f}"]
    if "val_loss" in row:
        parts.append(f"val loss {row['val_loss']:.4f}")
    if "val_top1" in row:
        parts.append(
            f"retrieval top-1 {row['val_top1']:.2f} (chance {row['val_chance_top1']:.2f}), top-5 {row['val_top5']:.2f}"
        )
    parts.append(f"{row['seconds']:.1f} s")
    return ", ".join(parts)


METRICS_COLUMNS = (
    "epoch",
    "lr",
    "train_loss",
    "train_clip",
    "train_simclr",
    "train_aux",
    "train_temperature",
    "val_loss",
    "val_clip",
    "val_simclr",
    "val_top1",
    "val_top5",
    "val_chance_top1",
    "val_chance_top5",
    "val_alignment",
    "val_view_alignment",
    "val_uniformity",
    "val_aux",
    "val_aux_r2",
    "seconds",
)
"""The columns of metrics.csv, in order (docs/commands.md, "lgerisk pretrain"); those an objective does not compute
are left out."""


def _write_metrics(run: Path, history: list[dict[str, float]]) -> None:
    import pandas as pd

    table = pd.DataFrame(history)
    order = [c for c in METRICS_COLUMNS if c in table.columns]
    write_csv(run / METRICS_FILE, table[order + [c for c in table.columns if c not in order]])


def _model_card(
    config: PretrainConfig,
    data: _PretrainData,
    built: _PretrainModel,
    history: list[dict[str, float]],
    device: torch.device,
    context: DistributedContext,
) -> EncoderCard:
    """The encoder's card: what it was trained on and how, its radiomics scaling, its last epoch's metrics."""
    prepared, scaler = data.prepared, data.scaler
    from lgerisk.models import parameter_count

    return EncoderCard.from_dict(
        {
            "format": ENCODER_FORMAT,
            "kind": "lgerisk pretrained encoder",
            "intended_use": INTENDED_USE,
            "created_by": f"lgerisk {__version__} pretrain",
            "data": {
                "hash": data.data_hash,
                "cases": len(prepared.cases),
                "train_cases": data.train_ids,
                "val_cases": data.val_ids,
                "excluded_cases": prepared.excluded,
                "synthetic": _is_synthetic(prepared.cases),
            },
            "config": config.to_dict(),
            "model": built.model_config.to_dict(),
            "parameters": parameter_count(built.model),
            "objective": dataclasses.asdict(built.objective_config),
            "tensor_spec": dataclasses.asdict(data.spec),
            "preprocessing": prepared.preprocess_settings,
            "radiomics": {
                "feature_names": scaler.feature_names,
                "scaler": scaler.to_dict(),
                "view": config.radiomics_view,
                "aux_targets": [scaler.feature_names[i] for i in built.aux_columns],
            },
            "training": {"device": str(device), "world_size": context.world_size},
            "metrics": history[-1] if history else {},
            "versions": versions(),
        }
    )
