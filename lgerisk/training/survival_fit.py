"""The survival network's fitting on a labelled workspace: the Cox probe on the (frozen) embedding with its
inner-CV penalty, end-to-end fine-tuning starting from it, and the risk of any case (the deep methods of
``lgerisk finetune``; see :mod:`lgerisk.training.methods` for every method).

A :class:`Workspace` holds what every method fits from (labelled cases, outcomes, features, tensors, the
encoder); a :class:`FittedDeep` is a trained network with the :class:`~lgerisk.models.tabular.TabularScaling`
of its head's tabular inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from lgerisk.reporting import SILENT, Reporter
from lgerisk.training.seeding import derive_seed

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import torch
    from numpy.typing import NDArray

    from lgerisk.data.tensors import TensorSpec
    from lgerisk.evaluation.baselines import RadiomicsCox
    from lgerisk.models.encoder import EncoderConfig
    from lgerisk.models.survival import SurvivalModel
    from lgerisk.models.tabular import FitInputs, FusionFields, TabularScaling
    from lgerisk.training.finetune_config import FinetuneConfig

__all__ = [
    "SCAR_METRICS",
    "FittedDeep",
    "Workspace",
    "embed",
    "fit_deep",
    "fit_tabular_scaling",
    "leading_components",
    "predict_deep_raw",
    "predict_fitted_deep",
    "radiomics_targets",
    "training_estimate",
]

SCAR_METRICS = ("scar_percent", "greyzone_percent")
"""What ``--with-scar`` puts beside the embedding: the numbers clinicians already have."""


@dataclass
class Workspace:
    """What every method fits from: labelled cases, outcomes, features, tensors, the encoder."""

    case_ids: list[str]
    time: dict[str, float]
    event: dict[str, int]
    features: pd.DataFrame  # indexed by case_id (radiomics + QC)
    covariates: pd.DataFrame  # indexed by case_id (the requested covariates, numeric)
    tensors: dict[str, NDArray[np.float32]]
    encoder_state: dict[str, torch.Tensor] | None
    encoder_config: EncoderConfig
    device: torch.device
    config: FinetuneConfig
    spec: TensorSpec
    reporter: Reporter = SILENT
    embeddings: dict[str, dict[str, NDArray[np.float32]]] = field(default_factory=dict)
    """The raw embeddings of every case by the frozen (initial) encoder: ``pretrained`` or ``scratch-SEED``."""
    encoder_guided: bool = False
    """The encoder was pretrained with radiomics guidance (image⇄radiomics contrast or the auxiliary head): full
    fine-tuning keeps it with the auxiliary radiomics loss."""
    full_fits_left: int = 0
    """End-to-end fits the run has still to train (set by ``run_finetune``): the first one's first step gives the
    estimate of how long they will take, said once before the rest run."""

    def outcome(self, ids: list[str] | tuple[str, ...]) -> tuple[NDArray[np.float64], NDArray[np.int_]]:
        """(time, event) arrays of ``ids``."""
        import numpy as np

        return (np.array([self.time[c] for c in ids], float), np.array([self.event[c] for c in ids], int))


@dataclass
class FittedDeep:
    """A trained survival network and how its tabular inputs are made."""

    model: SurvivalModel
    tabular: TabularScaling  # radiomics selection, scar metrics and covariates, and their scaling
    history: list[dict[str, object]]  # the rows of metrics.csv
    frozen: str | None = None  # key of the cached embeddings while the encoder is untouched (probe)


def fit_tabular_scaling(
    workspace: Workspace,
    train: list[str],
    with_radiomics: bool,
    covariates: tuple[str, ...],
    with_scar: bool = False,
    seed: int = 0,
) -> tuple[TabularScaling, RadiomicsCox | None]:
    """The head's tabular inputs, fitted on ``train`` only: (their scaling, the fold's radiomics Cox model).

    With radiomics, the radiomics block is what the ``radiomics Cox`` baseline selects on ``train`` (imputed,
    ``ROI__present`` indicators, the QC scar metrics; less scar % and grey-zone % when ``with_scar`` puts them
    in on their own), standardised with that model's training means and SDs, so the block times its
    coefficients is its risk. Then the scar metrics' and the covariates' scaling."""
    from dataclasses import replace

    from lgerisk.models.tabular import TabularScaling
    from lgerisk.training.fusion import fit_radiomics_block

    fields: dict[str, object] = {}
    if with_scar:
        fields.update(scar_metrics=SCAR_METRICS, scar_values=workspace.features.loc[train, list(SCAR_METRICS)])
    if (with_scar or with_radiomics) and "scar_method" in workspace.features.columns:
        # predict checks that a scan's scar (its %, or the scar ROI the radiomics read) is found the same way
        fields["scar_methods"] = tuple(sorted({str(m) for m in workspace.features.loc[train, "scar_method"]}))
    if covariates:
        fields.update(covariates=tuple(covariates), covariate_values=workspace.covariates.loc[train, list(covariates)])
    scaling = TabularScaling.fit(**cast("FitInputs", fields))
    if not with_radiomics:
        return scaling, None
    time, event = workspace.outcome(train)
    block = fit_radiomics_block(
        workspace.features.loc[train],
        time,
        event,
        workspace.config.radiomics_features,
        seed,
        exclude=SCAR_METRICS if with_scar else (),
    )
    assert block.selected_ is not None and block.means_ is not None and block.stds_ is not None  # fitted
    radiomics = replace(
        scaling,
        radiomics=tuple(block.selected_),
        radiomics_mean=tuple(float(v) for v in block.means_),
        radiomics_scale=tuple(float(v) for v in block.stds_),
    )
    return radiomics, block


def _new_model(workspace: Workspace, pretrained: bool, n_tabular: int, seed: int) -> SurvivalModel:
    import torch

    from lgerisk.models.survival import SurvivalModel, SurvivalModelConfig

    torch.manual_seed(seed)
    model = SurvivalModel(SurvivalModelConfig(workspace.encoder_config, n_tabular=n_tabular))
    if pretrained:
        assert workspace.encoder_state is not None  # set whenever an encoder was given
        model.image_encoder.load_state_dict(workspace.encoder_state)
    return model.to(workspace.device)


def embed(
    model: SurvivalModel, tensors: list[NDArray[np.float32]], device: torch.device, batch: int = 16
) -> np.ndarray:
    """Raw image embeddings ``(n, D)`` of the encoder of ``model`` (eval mode, no gradients)."""
    import numpy as np
    import torch

    from lgerisk.runtime import full_float32

    model.eval()
    out = []
    with torch.no_grad(), full_float32(device):
        for start in range(0, len(tensors), batch):
            x = torch.from_numpy(np.stack(tensors[start : start + batch])).float().to(device)
            out.append(model.image_encoder(x).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.config.encoder.embedding_dim))


def fit_deep(
    workspace: Workspace,
    train: list[str],
    seed: int,
    pretrained: bool,
    mode: str,
    with_radiomics: bool,
    covariates: tuple[str, ...],
    say: Callable[[str], None] | None = None,
    with_scar: bool = False,
    aux_weight: float = 0.0,
) -> FittedDeep:
    """The survival network on ``train``: a linear Cox probe on the standardised embedding (and
    tabular inputs: scar metrics, radiomics, covariates), its L2 penalty chosen by inner CV on ``train``
    (``head_penalty="cv"``), then — in ``full`` mode — end-to-end training starting from that probe, with the
    auxiliary radiomics loss at ``aux_weight`` (0: Cox loss only)."""
    import numpy as np
    import torch

    from lgerisk.evaluation.cox import LinearCox, choose_group_penalties, choose_penalizer

    config = workspace.config
    tabular, radiomics_block = fit_tabular_scaling(workspace, train, with_radiomics, covariates, with_scar, seed)
    tab = tabular.matrix(workspace.features, workspace.covariates, train)
    model = _new_model(workspace, pretrained, tab.shape[1], seed)
    key = "pretrained" if pretrained else f"scratch-{seed}"
    if key not in workspace.embeddings:  # embeddings of the frozen (initial) encoder, every case once
        ids = workspace.case_ids
        workspace.embeddings[key] = dict(zip(ids, embed(model, [workspace.tensors[c] for c in ids], workspace.device)))
    raw = np.stack([workspace.embeddings[key][c] for c in train])
    mean, scale = raw.mean(axis=0), np.maximum(raw.std(axis=0), 1e-6)
    model.set_embedding_scaling(torch.from_numpy(mean).float(), torch.from_numpy(scale).float())
    time, event = workspace.outcome(train)
    standardised = (raw - mean) / scale
    # --head-pcs K: the probe sees the embedding's K leading principal components (training cases); a linear
    # map, so it folds back into the head's weights on the whole embedding (no change to the network)
    components = leading_components(standardised, config.head_pcs) if config.head_pcs else None
    image_part = standardised if components is None else standardised @ components
    design = np.hstack([image_part, tab])
    # --scar-penalty-factor: the head's penalty on the scar metrics relative to the rest (0: a head that starts
    # from the clinicians' numbers and lets the embedding add only what the penalty allows)
    factor = np.ones(design.shape[1])
    if with_scar:
        start = design.shape[1] - tab.shape[1] + len(tabular.radiomics)
        factor[start : start + len(tabular.scar_metrics)] = config.scar_penalty_factor
    fusion = config.fusion if radiomics_block is not None else None
    n_image, n_radiomics = image_part.shape[1], len(tabular.radiomics)
    recorded: FusionFields = {}
    if fusion == "stacked":
        assert radiomics_block is not None and radiomics_block.coefficients_ is not None
        penalizer, scores, coef = _stacked_head(
            workspace, train, design, factor, n_image, n_radiomics, radiomics_block, with_scar, seed
        )
        recorded = {"fusion": fusion, "radiomics_coefficient": float(coef[n_image])}
        coef = np.concatenate([coef[:n_image], coef[n_image] * radiomics_block.coefficients_, coef[n_image + 1 :]])
    else:
        penalizer, scores = config.penalizer, dict[str, float]()
        if fusion == "group":  # the embedding's penalty relative to the radiomics block's, by inner CV too
            block = np.arange(design.shape[1]) < n_image
            penalizer, embedding_factor, scores = choose_group_penalties(
                design, time, event, block, seed=seed, penalty_factor=factor
            )
            if not any(np.isfinite(v) for v in scores.values()):  # no inner fold could score: the fixed penalty
                penalizer = config.penalizer
            factor = factor * np.where(block, embedding_factor, 1.0)
            recorded = {"fusion": fusion, "embedding_penalty_factor": embedding_factor}
        elif config.head_penalty == "cv":
            penalizer, scores = choose_penalizer(design, time, event, seed=seed, penalty_factor=factor)
            if not any(np.isfinite(v) for v in scores.values()):  # no inner fold could score: the fixed penalty
                penalizer = config.penalizer
        solver = "newton" if fusion == "group" else "lbfgs"  # a fusion head's penalties differ by orders of magnitude
        probe = LinearCox(penalizer=penalizer, solver=solver).fit(design, time, event, penalty_factor=factor)
        coef = np.asarray(probe.coef_, float)
    if components is not None:
        k = components.shape[1]
        coef = np.concatenate([components @ coef[:k], coef[k:]])
    with torch.no_grad():
        model.head.weight.copy_(torch.from_numpy(coef.astype(np.float32)).unsqueeze(0))
    fitted = FittedDeep(model=model, tabular=tabular.with_penalizer(penalizer, **recorded), history=[], frozen=key)
    fitted.history.append(
        {
            "epoch": 0,
            "stage": "probe",
            "loss": _cox_loss_value(fitted, workspace, train),
            "penalizer": penalizer,
            **recorded,
            **{f"inner_cv_c@{k}": v for k, v in scores.items()},
        }
    )
    if mode == "full":
        fitted.history += _train_full(model, workspace, train, tab, seed, say, aux_weight)
        fitted.frozen = None  # the encoder has moved: its cached embeddings no longer apply
    model.eval()
    return fitted


def _stacked_head(
    workspace: Workspace,
    train: list[str],
    design: NDArray[np.float64],
    factor: NDArray[np.float64],
    n_image: int,
    n_radiomics: int,
    radiomics_block: RadiomicsCox,
    with_scar: bool,
    seed: int,
) -> tuple[float, dict[str, float], NDArray[np.float64]]:
    """The stacked fusion's head on ``design`` (``[image part, radiomics block, scar metrics, covariates]``):
    the radiomics block replaced by its out-of-fold radiomics Cox risk, unpenalised; the rest penalised with
    the penalty chosen by inner CV. Returns (penalizer, inner scores, coefficients with the risk's coefficient
    at position ``n_image``)."""
    import numpy as np

    from lgerisk.evaluation.cox import LinearCox, choose_penalizer
    from lgerisk.training.fusion import out_of_fold_radiomics_risk

    time, event = workspace.outcome(train)
    config = workspace.config
    offset = out_of_fold_radiomics_risk(
        workspace.features.loc[train],
        time,
        event,
        config.radiomics_features,
        seed,
        exclude=SCAR_METRICS if with_scar else (),
    )
    rest = slice(n_image + n_radiomics, None)
    stacked = np.hstack([design[:, :n_image], offset[:, None], design[:, rest]])
    weights = np.concatenate([factor[:n_image], [0.0], factor[rest]])
    penalizer, scores = choose_penalizer(stacked, time, event, seed=seed, penalty_factor=weights, solver="newton")
    if not any(np.isfinite(v) for v in scores.values()):
        penalizer = config.penalizer
    probe = LinearCox(penalizer=penalizer, solver="newton").fit(stacked, time, event, penalty_factor=weights)
    return penalizer, scores, np.asarray(probe.coef_, float)


def leading_components(standardised: NDArray[np.float64], count: int) -> NDArray[np.float64]:
    """``(D, k)`` orthonormal directions of the ``k = min(count, n - 1, D)`` largest principal components of
    the (training) rows of ``standardised`` (columns already centred on those rows)."""
    import numpy as np

    _, _, vt = np.linalg.svd(standardised - standardised.mean(axis=0), full_matrices=False)
    k = max(1, min(count, standardised.shape[0] - 1, standardised.shape[1]))
    return vt[:k].T


def _cox_loss_value(fitted: FittedDeep, workspace: Workspace, ids: list[str]) -> float:
    import torch

    from lgerisk.objectives.survival import cox_efron_loss

    risk = torch.from_numpy(predict_fitted_deep(fitted, workspace, ids))
    time, event = workspace.outcome(ids)
    return float(cox_efron_loss(risk.double(), torch.from_numpy(time), torch.from_numpy(event)))


def radiomics_targets(workspace: Workspace, train: list[str]) -> NDArray[np.float32]:
    """``(len(train), k)`` float32: every varying radiomics and QC column of the training rows, robustly
    standardised on them (``FeatureScaler``: NaN -> 0, ``ROI__present`` indicators) — what the auxiliary head
    regresses while the encoder is fine-tuned."""
    from lgerisk.data.features import FeatureScaler, feature_columns

    rows = workspace.features.loc[list(train)]
    if "case_id" not in rows.columns:
        rows = rows.assign(case_id=rows.index.astype(str))
    scaler = FeatureScaler.fit(rows, feature_columns(rows))
    return scaler.transform(rows)


def _auxiliary_head(
    model: SurvivalModel, workspace: Workspace, train: list[str], targets: NDArray[np.float32]
) -> torch.nn.Linear:
    """A linear head from the standardised embedding to ``targets``, started at the ridge solution on the
    training cases' frozen embeddings (so its loss measures how far fine-tuning moves the encoder away)."""
    import numpy as np
    import torch

    from lgerisk.runtime import full_float32

    model.eval()
    with torch.no_grad(), full_float32(workspace.device):
        x = torch.from_numpy(np.stack([workspace.tensors[c] for c in train])).float().to(workspace.device)
        embedding = torch.cat([model.embed(x[i : i + 16]) for i in range(0, len(train), 16)]).double().cpu().numpy()
    gram = embedding.T @ embedding + np.eye(embedding.shape[1]) * len(train)  # ridge, unit penalty per case
    weight = np.linalg.solve(gram, embedding.T @ targets.astype(float)).T
    head = torch.nn.Linear(embedding.shape[1], targets.shape[1], bias=True)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(weight).float())
        head.bias.copy_(torch.from_numpy(targets.mean(axis=0) - embedding.mean(axis=0) @ weight.T).float())
    return head.to(workspace.device)


def training_estimate(fits: int, epochs: int, steps: int, step_seconds: float) -> str:
    """The sentence said before end-to-end training runs: how many steps, and about how long on this machine.

    Example:
        >>> training_estimate(6, 10, 2, 3.0)
        'end-to-end training: 6 fit(s) x 10 epoch(s) x 2 step(s), about 6 min (3.0 s a step here)'
    """
    seconds = fits * epochs * steps * step_seconds
    span = f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{max(1, round(seconds / 60))} min"
    return (
        f"end-to-end training: {fits} fit(s) x {epochs} epoch(s) x {steps} step(s), about {span} "
        f"({step_seconds:.1f} s a step here)"
    )


def _train_full(
    model: SurvivalModel,
    workspace: Workspace,
    train: list[str],
    tab: NDArray[np.float32],
    seed: int,
    say: Callable[[str], None] | None,
    aux_weight: float = 0.0,
) -> list[dict[str, object]]:
    """End-to-end training (AdamW, mini-batches, augmented views, mixed precision on CUDA) on the Cox loss
    plus, at ``aux_weight`` > 0, the auxiliary radiomics regression (:func:`radiomics_targets`)."""
    from time import perf_counter as clock

    import numpy as np
    import torch

    from lgerisk.data.augment import AugmentConfig, Augmenter
    from lgerisk.data.dataset import item_seed
    from lgerisk.objectives.survival import cox_with_radiomics_loss

    config, device = workspace.config, workspace.device
    augmenter = Augmenter(AugmentConfig(), workspace.spec.channels)
    head = list(model.head.parameters())
    encoder = list(model.image_encoder.parameters())
    groups = [{"params": encoder, "lr": config.lr}, {"params": head, "lr": config.head_lr}]
    targets = auxiliary = None
    if aux_weight > 0:
        targets = radiomics_targets(workspace, train)
        auxiliary = _auxiliary_head(model, workspace, train, targets)
        groups.append({"params": list(auxiliary.parameters()), "lr": config.head_lr})
    optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    use_amp = config.amp and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    time, event = workspace.outcome(train)
    tensors = [workspace.tensors[c] for c in train]
    history = []
    base = derive_seed(seed, 21)
    steps = max(1, int(np.ceil(len(train) / config.batch_size)))
    for epoch in range(config.epochs):
        model.train()
        torch.manual_seed(derive_seed(seed, epoch, 22))
        order = np.random.default_rng(derive_seed(seed, epoch, 23)).permutation(len(train))
        total, used, aux_total = 0.0, 0, 0.0
        with workspace.reporter.bar(
            f"fine-tune epoch {epoch + 1}/{config.epochs}", steps, show=("loss",), transient=True
        ) as advance:
            for start in range(0, len(order), config.batch_size):
                batch = order[start : start + config.batch_size]
                if event[batch].sum() == 0 or len(batch) < 2:
                    advance(loss=float("nan"))
                    continue
                step_started = clock()
                views = np.stack([augmenter(tensors[i], item_seed(base, epoch, int(i))) for i in batch])
                x = torch.from_numpy(views).float().to(device)
                t = torch.from_numpy(tab[batch]).to(device) if tab.shape[1] else None
                predicted = target = None
                with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=use_amp):
                    if auxiliary is None:
                        risk = model(x, t)
                    else:
                        inputs = model.head_inputs(x, t)
                        risk = model.head(inputs).squeeze(1)
                        predicted = auxiliary(inputs[:, : model.config.encoder.embedding_dim])
                        assert targets is not None  # made with the auxiliary head
                        target = torch.from_numpy(targets[batch]).to(device)
                loss, aux = cox_with_radiomics_loss(
                    risk.float(),
                    torch.from_numpy(time[batch]).to(device),
                    torch.from_numpy(event[batch]).to(device),
                    predicted,
                    target,
                    aux_weight,
                )
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                if workspace.full_fits_left:  # the first step of the run's first end-to-end fit: say how long
                    workspace.reporter.note(
                        training_estimate(workspace.full_fits_left, config.epochs, steps, clock() - step_started)
                    )
                    workspace.full_fits_left = 0
                total += float(loss.detach())
                aux_total += 0.0 if aux is None else float(aux.detach())
                used += 1
                advance(loss=float(loss.detach()))
        row = {"epoch": epoch + 1, "stage": "full", "loss": total / max(1, used)}
        if auxiliary is not None:
            row["aux_loss"] = aux_total / max(1, used)
        history.append(row)
    return history


def predict_deep_raw(
    model: SurvivalModel, workspace: Workspace, ids: list[str], tab: NDArray[np.float32], batch: int = 16
) -> NDArray[np.float64]:
    """Risk scores of ``ids`` from their (un-augmented) tensors."""
    import numpy as np
    import torch

    from lgerisk.runtime import full_float32

    model.eval()
    out = []
    with torch.no_grad(), full_float32(workspace.device):
        for start in range(0, len(ids), batch):
            x = torch.from_numpy(np.stack([workspace.tensors[c] for c in ids[start : start + batch]])).float()
            t = torch.from_numpy(tab[start : start + batch]) if tab.shape[1] else None
            out.append(model(x.to(workspace.device), None if t is None else t.to(workspace.device)).float().cpu())
    return torch.cat(out).numpy().astype(float) if out else np.zeros(0)


def _head_risk(
    model: SurvivalModel, workspace: Workspace, raw: list[NDArray[np.float32]], tab: NDArray[np.float32]
) -> NDArray[np.float64]:
    """What ``model`` outputs for cases whose raw (frozen-encoder) embeddings are ``raw``."""
    import numpy as np
    import torch

    from lgerisk.runtime import full_float32

    if not raw:
        return np.zeros(0)
    with torch.no_grad(), full_float32(workspace.device):
        z = (
            torch.from_numpy(np.stack(raw)).float().to(workspace.device) - model.embedding_mean
        ) / model.embedding_scale
        inputs = torch.cat([z, torch.from_numpy(tab).to(z.device)], dim=1) if tab.shape[1] else z
        return cast("torch.Tensor", model.head(inputs)).squeeze(1).float().cpu().numpy().astype(float)


def predict_fitted_deep(fitted: FittedDeep, workspace: Workspace, ids: list[str]) -> NDArray[np.float64]:
    """Risk scores of ``ids`` from a fitted network (a probe reuses the embeddings computed once per case)."""
    tab = fitted.tabular.matrix(workspace.features, workspace.covariates, list(ids))
    if fitted.frozen is not None:  # a probe: the head on the embeddings computed once per case
        return _head_risk(fitted.model, workspace, [workspace.embeddings[fitted.frozen][c] for c in ids], tab)
    return predict_deep_raw(fitted.model, workspace, list(ids), tab)
