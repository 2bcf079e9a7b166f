"""Contrastive objectives: image⇄radiomics InfoNCE (CLIP), image⇄image NT-Xent (SimCLR), SCARF
corruption of radiomics vectors, and a FIFO queue of past embeddings used as extra negatives.

All losses L2-normalise their inputs; queues hold already normalised, detached embeddings.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from lgerisk.config import checked_fields, require_fraction, require_int
from lgerisk.errors import InputError
from lgerisk.types import JSONDict

PRESETS: Mapping[str, Mapping[str, float]] = MappingProxyType(
    {
        "radiomics": MappingProxyType({"clip_weight": 1.0, "simclr_weight": 0.0}),
        "simclr": MappingProxyType({"clip_weight": 0.0, "simclr_weight": 1.0}),
        "hybrid": MappingProxyType({"clip_weight": 1.0, "simclr_weight": 1.0}),
    }
)
"""Objective presets -> their loss weights (``radiomics``: image⇄radiomics only; ``simclr``:
image⇄image only; ``hybrid``: both)."""

NEGATIVES = ("batch", "all")
"""Where image -> radiomics InfoNCE finds negatives (:class:`ObjectiveConfig` ``negatives``)."""

MAX_LOGIT_SCALE = 100.0
"""Upper bound of a learned 1/temperature (as in CLIP)."""

Temperature = float | torch.Tensor


def _check_pair(a: torch.Tensor, b: torch.Tensor, names: str) -> None:
    if a.dim() != 2 or a.shape != b.shape:
        raise ValueError(
            f"{names} must be two (N, d) tensors of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}."
        )


def _negatives(queue: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    """The queue as extra negatives on ``like``'s device and dtype (None when absent or empty)."""
    if queue is None or queue.numel() == 0:
        return None
    if queue.dim() != 2 or queue.shape[1] != like.shape[1]:
        raise ValueError(f"a queue must be (Q, {like.shape[1]}), got {tuple(queue.shape)}.")
    return queue.detach().to(device=like.device, dtype=like.dtype)


def _own_entries(
    ids: torch.Tensor | None, queue_ids: torch.Tensor | None, queue: torch.Tensor | None, n_rows: int
) -> torch.Tensor | None:
    """``(n_rows, Q)`` mask of queue entries that hold the row's own case (never a negative)."""
    if ids is None or queue_ids is None or queue is None:
        return None
    if queue_ids.shape[0] != queue.shape[0] or ids.shape[0] != n_rows:
        raise ValueError("case ids must match the rows of the embeddings and of the queue.")
    return ids.to(queue_ids.device).view(-1, 1) == queue_ids.view(1, -1)


def _info_nce(
    query: torch.Tensor,
    keys: torch.Tensor,
    queue: torch.Tensor | None,
    temperature: Temperature,
    ids: torch.Tensor | None = None,
    queue_ids: torch.Tensor | None = None,
    targets: torch.Tensor | None = None,
    exclude: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean cross-entropy of ``query[i]`` picking ``keys[targets[i]]`` (default ``keys[i]``) among
    ``[keys; queue]``; queue entries of the same case (``queue_ids == ids[i]``) and keys marked in
    ``exclude`` ``(N, K)`` (false negatives; never the positive) are left out of ``query[i]``'s negatives."""
    queue = _negatives(queue, keys)
    logits = query @ keys.T / temperature
    if targets is None:
        targets = torch.arange(query.shape[0], device=query.device)
    if exclude is not None:
        if exclude.shape != logits.shape:
            raise ValueError(f"the false-negative mask must be {tuple(logits.shape)}, got {tuple(exclude.shape)}.")
        exclude = exclude.to(logits.device).clone()
        exclude[torch.arange(query.shape[0], device=logits.device), targets] = False
        logits = logits.masked_fill(exclude, float("-inf"))
    if queue is not None:
        queue_logits = query @ queue.T / temperature
        own = _own_entries(ids, queue_ids, queue, query.shape[0])
        if own is not None:
            queue_logits = queue_logits.masked_fill(own.to(queue_logits.device), float("-inf"))
        logits = torch.cat([logits, queue_logits], dim=1)
    return F.cross_entropy(logits, targets)


def clip_loss(
    image_z: torch.Tensor,
    radiomics_z: torch.Tensor,
    temperature: Temperature,
    image_queue: torch.Tensor | None = None,
    radiomics_queue: torch.Tensor | None = None,
    ids: torch.Tensor | None = None,
    image_queue_ids: torch.Tensor | None = None,
    radiomics_queue_ids: torch.Tensor | None = None,
    bank: torch.Tensor | None = None,
    similar: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE between paired image and radiomics embeddings (CLIP).

    Both inputs are L2-normalised. Image -> radiomics: cross-entropy over the logits
    ``image_z @ [radiomics_z; radiomics_queue].T / temperature`` with the positive on the
    diagonal; radiomics -> image likewise against ``[image_z; image_queue]``; the loss is the mean
    of the two. Queues ``(Q, d)`` are extra negatives (detached, already normalised); None or
    empty means none. With case ``ids`` and the queues' ids, a case's own past embeddings are
    never its negatives. ``temperature`` may be a float or a (learned) scalar tensor.

    ``bank`` ``(M, d)``: the radiomics embeddings of every training case (row ``ids[i]`` is case
    ``i``'s; ``ids`` required); image -> radiomics then picks the case's own row among all ``M``
    (the batch's rows, which carry the gradient of the SCARF view, replace theirs) instead of among
    the batch and the radiomics queue. ``similar``: boolean ``(N, M)`` with a bank, ``(N, N)``
    without: cases whose radiomics are near-identical to row ``i``'s (e.g. two scar-free hearts),
    never each other's negatives in either direction.

    Example:
        >>> z = torch.eye(4)
        >>> float(clip_loss(z, z, temperature=0.01)) < 1e-6
        True
        >>> float(clip_loss(z[:2], z[:2], 0.01, ids=torch.tensor([0, 1]), bank=z)) < 1e-6
        True
    """
    _check_pair(image_z, radiomics_z, "clip_loss embeddings")
    image_z = F.normalize(image_z, dim=1)
    radiomics_z = F.normalize(radiomics_z, dim=1)
    if bank is None:
        image_to_radiomics = _info_nce(
            image_z, radiomics_z, radiomics_queue, temperature, ids, radiomics_queue_ids, exclude=similar
        )
        within = similar
    else:
        if ids is None:
            raise ValueError("clip_loss with a bank needs the case ids (bank rows) of the batch.")
        if bank.dim() != 2 or bank.shape[1] != radiomics_z.shape[1]:
            raise ValueError(f"the bank must be (M, {radiomics_z.shape[1]}), got {tuple(bank.shape)}.")
        ids = ids.to(bank.device).long()
        keys = F.normalize(bank, dim=1).index_copy(0, ids, radiomics_z.to(bank.dtype))
        image_to_radiomics = _info_nce(image_z, keys, None, temperature, targets=ids, exclude=similar)
        within = None if similar is None else similar[:, ids]
    radiomics_to_image = _info_nce(
        radiomics_z,
        image_z,
        image_queue,
        temperature,
        ids,
        image_queue_ids,
        exclude=None if within is None else within.T,
    )
    return (image_to_radiomics + radiomics_to_image) / 2


def nt_xent_loss(
    z1: torch.Tensor,
    z2: torch.Tensor,
    temperature: Temperature,
    queue: torch.Tensor | None = None,
    ids: torch.Tensor | None = None,
    queue_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """SimCLR NT-Xent over the 2N views of N pairs ``(z1[i], z2[i])``.

    Each of the 2N (normalised) views has its pair as the positive and the other 2N - 2 views
    plus the queue ``(Q, d)`` as negatives (less the case's own entries when ``ids`` and
    ``queue_ids`` are given); the loss is the mean over the 2N views.

    Example:
        >>> z = torch.eye(4)
        >>> float(nt_xent_loss(z, z, temperature=0.01)) < 1e-6
        True
    """
    _check_pair(z1, z2, "nt_xent_loss views")
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.T / temperature
    self_mask = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    queue = _negatives(queue, z)
    if queue is not None:
        queue_logits = z @ queue.T / temperature
        own = _own_entries(None if ids is None else torch.cat([ids, ids]), queue_ids, queue, 2 * n)
        if own is not None:
            queue_logits = queue_logits.masked_fill(own.to(queue_logits.device), float("-inf"))
        logits = torch.cat([logits, queue_logits], dim=1)
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(logits, targets)


def scarf_corrupt(
    features: torch.Tensor, bank: torch.Tensor, rate: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """SCARF corruption: in every row, replace ``round(rate * n_features)`` features (a subset
    drawn independently per row) by that feature's value in a random row of ``bank``.

    ``bank`` ``(M, n_features)`` holds the empirical marginals (the training set's standardised
    features); each replaced entry draws its own bank row. ``round`` is Python's (half to even).
    Returns a new tensor; ``features`` is not modified. ``generator`` (a ``torch.Generator``)
    makes the corruption reproducible; random numbers are drawn on its device.

    Example:
        >>> x, bank = torch.zeros(3, 10), torch.ones(5, 10)
        >>> scarf_corrupt(x, bank, 0.3, torch.Generator().manual_seed(0)).sum(dim=1).tolist()
        [3.0, 3.0, 3.0]
    """
    if features.dim() != 2 or bank.dim() != 2 or bank.shape[1] != features.shape[1]:
        raise ValueError(
            f"scarf_corrupt expects features (N, F) and bank (M, F), got {tuple(features.shape)} "
            f"and {tuple(bank.shape)}."
        )
    require_fraction(rate, "SCARF rate", allow_one=True)
    n_rows, n_features = features.shape
    n_corrupt = round(rate * n_features)
    if n_corrupt == 0 or n_rows == 0:
        return features.clone()
    if bank.shape[0] == 0:
        raise ValueError("scarf_corrupt needs a non-empty bank.")
    device = generator.device if generator is not None else torch.device("cpu")
    order = torch.rand(n_rows, n_features, generator=generator, device=device).argsort(dim=1)
    columns = order[:, :n_corrupt]
    mask = torch.zeros(n_rows, n_features, dtype=torch.bool, device=device)
    mask.scatter_(1, columns, True)
    rows = torch.randint(bank.shape[0], (n_rows, n_features), generator=generator, device=device)
    rows, mask = rows.to(bank.device), mask.to(features.device)
    replacement = bank.gather(0, rows).to(device=features.device, dtype=features.dtype)
    return torch.where(mask, replacement, features)


class EmbeddingQueue(nn.Module):
    """FIFO of the most recent ``size`` L2-normalised, detached embeddings of length ``dim``.

    ``size=0`` disables it (``enqueue`` does nothing, ``tensor()`` is empty). Content is kept
    oldest first in a float32 buffer that follows the device of the embeddings enqueued (and
    ``.to()``). ``state_dict()`` holds the buffer and an int count only, so checkpoints load
    with ``torch.load(weights_only=True)``.

    Example:
        >>> queue = EmbeddingQueue(dim=2, size=3)
        >>> queue.enqueue(torch.tensor([[3.0, 4.0], [0.0, 2.0]]))
        >>> queue.enqueue(torch.tensor([[1.0, 0.0], [0.0, -1.0]]))
        >>> queue.tensor().tolist()
        [[0.0, 1.0], [1.0, 0.0], [0.0, -1.0]]
    """

    embeddings: torch.Tensor  # buffers registered in __init__
    ids: torch.Tensor

    def __init__(self, dim: int, size: int) -> None:
        super().__init__()
        require_int(dim, "queue dim", 1)
        require_int(size, "queue size", 0)
        self.dim = dim
        self.size = size
        self.count = 0
        self.register_buffer("embeddings", torch.zeros(size, dim), persistent=True)
        self.register_buffer("ids", torch.full((size,), -1, dtype=torch.long), persistent=True)

    def __len__(self) -> int:
        return self.count

    @torch.no_grad()
    def enqueue(self, z: torch.Tensor, ids: torch.Tensor | None = None) -> None:
        """Append the rows of ``z`` ``(n, dim)`` (normalised, detached) and their case ``ids`` (-1:
        unknown), dropping the oldest beyond ``size``."""
        if z.dim() != 2 or z.shape[1] != self.dim:
            raise ValueError(f"EmbeddingQueue expects (n, {self.dim}) embeddings, got {tuple(z.shape)}.")
        if self.size == 0 or z.shape[0] == 0:
            return
        if self.embeddings.device != z.device:
            self.embeddings = self.embeddings.to(z.device)
            self.ids = self.ids.to(z.device)
        z = F.normalize(z.detach().float(), dim=1)
        new_ids = (
            torch.full((z.shape[0],), -1, dtype=torch.long, device=z.device)
            if ids is None
            else ids.detach().to(device=z.device, dtype=torch.long).view(-1)
        )
        content = torch.cat([self.embeddings[: self.count], z])[-self.size :]
        content_ids = torch.cat([self.ids[: self.count], new_ids])[-self.size :]
        self.embeddings[: content.shape[0]] = content
        self.ids[: content.shape[0]] = content_ids
        self.count = content.shape[0]

    def tensor(self) -> torch.Tensor:
        """Current content ``(n, dim)``, oldest first, ``n <= size`` (a detached copy)."""
        return self.embeddings[: self.count].detach().clone()

    def case_ids(self) -> torch.Tensor:
        """Case ids of the current content ``(n,)``, -1 where unknown."""
        return self.ids[: self.count].clone()

    def reset(self) -> None:
        """Empty the queue."""
        self.count = 0
        self.embeddings.zero_()
        self.ids.fill_(-1)

    def get_extra_state(self) -> dict[str, int]:
        """The int part of the state (stored by ``state_dict`` beside the buffer)."""
        return {"count": self.count, "size": self.size, "dim": self.dim}

    def set_extra_state(self, state: dict[str, int]) -> None:
        """Restore the int part of the state; refuses a queue of another size or dim."""
        if int(state["size"]) != self.size or int(state["dim"]) != self.dim:
            raise ValueError(
                f"queue state of size {state['size']} x dim {state['dim']} does not fit a queue of "
                f"size {self.size} x dim {self.dim}."
            )
        count = int(state["count"])
        if not 0 <= count <= self.size:
            raise ValueError(f"queue state count {count} is outside 0-{self.size}.")
        self.count = count


@dataclass(frozen=True)
class ObjectiveConfig:
    """Settings of :class:`HybridObjective`.

    Attributes:
        preset: ``hybrid`` (image⇄radiomics + image⇄image), ``radiomics`` (image⇄radiomics only,
            ``simclr_weight`` 0) or ``simclr`` (image⇄image only, ``clip_weight`` 0); the weights
            must agree with it (build with :meth:`from_preset`).
        clip_weight: weight of the image⇄radiomics InfoNCE term.
        simclr_weight: weight of the image⇄image NT-Xent term.
        temperature: softmax temperature (the initial one when learned).
        learn_temperature: learn log(1/temperature) (CLIP), with 1/temperature <= 100.
        queue_size: embeddings kept per queue as extra negatives (0: no queue).
        scarf_rate: share of radiomics features SCARF replaces in the corrupted view.
        negatives: where image -> radiomics finds its negatives: ``batch`` (the other cases of the
            batch, plus the queue) or ``all`` (every training case's radiomics embedding, recomputed
            each step: the radiomics encoder is cheap, so no queue is needed).
        false_negative_similarity: cases whose standardised radiomics vectors have a cosine
            similarity at or above this with the anchor's are not its negatives (None: off).

    Example:
        >>> ObjectiveConfig.from_preset("simclr", temperature=0.2).clip_weight
        0.0
        >>> ObjectiveConfig.from_dict(ObjectiveConfig().to_dict()) == ObjectiveConfig()
        True
    """

    preset: str = "hybrid"
    clip_weight: float = 1.0
    simclr_weight: float = 1.0
    temperature: float = 0.1
    learn_temperature: bool = False
    queue_size: int = 0
    scarf_rate: float = 0.3
    negatives: str = "batch"
    false_negative_similarity: float | None = None

    def __post_init__(self) -> None:
        if self.negatives not in NEGATIVES:
            raise InputError(
                f"negatives={self.negatives!r}: choose one of {', '.join(NEGATIVES)}.", setting="negatives"
            )
        similarity = self.false_negative_similarity
        if similarity is not None and (
            isinstance(similarity, bool) or not isinstance(similarity, (int, float)) or not -1 < similarity <= 1
        ):
            raise InputError(
                f"false_negative_similarity={similarity!r}: a cosine similarity in (-1, 1], or None for off.",
                setting="false_negative_similarity",
            )
        if self.preset not in PRESETS:
            raise InputError(f"objective={self.preset!r}: choose one of {', '.join(PRESETS)}.", setting="objective")
        for name in ("clip_weight", "simclr_weight", "temperature"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise InputError(f"{name}={value!r}: must be a finite number >= 0.", setting=name)
        if not self.temperature > 0:
            raise InputError(f"temperature={self.temperature!r}: must be > 0.", setting="temperature")
        if not isinstance(self.learn_temperature, bool):
            raise InputError(
                f"learn_temperature={self.learn_temperature!r}: must be True or False.", setting="learn_temperature"
            )
        if self.learn_temperature and 1.0 / self.temperature > MAX_LOGIT_SCALE:
            raise InputError(
                f"temperature={self.temperature!r}: a learned temperature must start at "
                f">= {1 / MAX_LOGIT_SCALE} (1/temperature <= {MAX_LOGIT_SCALE:g}).",
                setting="temperature",
            )
        require_int(self.queue_size, "objective queue_size", 0, setting="queue_size")
        require_fraction(self.scarf_rate, "objective scarf_rate", allow_one=True, setting="scarf_rate")
        uses_clip, uses_simclr = self.clip_weight > 0, self.simclr_weight > 0
        expected = {"radiomics": (True, False), "simclr": (False, True), "hybrid": (True, True)}[self.preset]
        if (uses_clip, uses_simclr) != expected:
            raise InputError(
                f"objective preset {self.preset!r} needs clip_weight {'> 0' if expected[0] else '= 0'} and "
                f"simclr_weight {'> 0' if expected[1] else '= 0'} (got {self.clip_weight:g} and "
                f"{self.simclr_weight:g}); build it with ObjectiveConfig.from_preset({self.preset!r})."
            )

    @classmethod
    def from_preset(cls, name: str, **overrides: object) -> ObjectiveConfig:
        """The preset's settings, with ``overrides`` applied (``InputError`` for an unknown preset or key)."""
        if name not in PRESETS:
            raise InputError(f"objective preset {name!r}: choose one of {', '.join(PRESETS)}.")
        values: dict[str, object] = {**PRESETS[name], **overrides, "preset": name}
        return cls(**checked_fields(cls, values, "objective settings"))

    def to_dict(self) -> JSONDict:
        """Plain JSON-able dict of the settings."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> ObjectiveConfig:
        """Inverse of :meth:`to_dict` (unknown keys refused)."""
        return cls(**checked_fields(cls, data, "objective settings"))


def objective_settings(
    preset: str = "radiomics",
    *,
    temperature: float = 0.1,
    learn_temperature: bool = False,
    queue_size: int = 0,
    scarf_rate: float = 0.3,
    negatives: str = "batch",
    false_negative_similarity: float | None = None,
    clip_weight: float | None = None,
    simclr_weight: float | None = None,
) -> JSONDict:
    """``PretrainConfig.objective`` for these settings, as ``lgerisk pretrain`` builds it: the preset and its
    temperature, queue and corruption always; the settings added later (``negatives``,
    ``false_negative_similarity``) and the weight overrides only away from their defaults, so that a run made
    before they existed keeps its settings, and so its resume hash.

    Example:
        >>> objective_settings("simclr", temperature=0.2)
        {'preset': 'simclr', 'temperature': 0.2, 'learn_temperature': False, 'queue_size': 0, 'scarf_rate': 0.3}
        >>> objective_settings(negatives="all")["negatives"]
        'all'
    """
    settings: JSONDict = {
        "preset": preset,
        "temperature": temperature,
        "learn_temperature": learn_temperature,
        "queue_size": queue_size,
        "scarf_rate": scarf_rate,
    }
    if negatives != "batch":
        settings["negatives"] = negatives
    if false_negative_similarity is not None:
        settings["false_negative_similarity"] = false_negative_similarity
    if clip_weight is not None:
        settings["clip_weight"] = clip_weight
    if simclr_weight is not None:
        settings["simclr_weight"] = simclr_weight
    return settings


class HybridObjective(nn.Module):
    """Weighted image⇄radiomics InfoNCE + image⇄image NT-Xent with queues of past embeddings.

    Holds the learnable ``log_scale`` = log(1/temperature) when ``learn_temperature`` (clamped so
    1/temperature <= 100) and two :class:`EmbeddingQueue` of length-``embedding_dim`` projected
    embeddings: ``image_queue`` (negatives for radiomics -> image and for NT-Xent) and
    ``radiomics_queue`` (negatives for image -> radiomics). The CLIP term is averaged over the
    image views given. After the optimiser step the training loop calls :meth:`update_queues`
    (with globally gathered embeddings under DDP).

    Example:
        >>> objective = HybridObjective(ObjectiveConfig(queue_size=8), embedding_dim=4)
        >>> z = torch.eye(4)
        >>> out = objective(z, z, z)
        >>> sorted(out)
        ['clip', 'loss', 'simclr', 'temperature']
        >>> objective.update_queues(z, z); len(objective.image_queue)
        4
    """

    def __init__(self, config: ObjectiveConfig | None = None, embedding_dim: int = 128) -> None:
        super().__init__()
        self.config = config if config is not None else ObjectiveConfig()
        self.embedding_dim = embedding_dim
        initial = math.log(1.0 / self.config.temperature)
        if self.config.learn_temperature:
            self.log_scale = nn.Parameter(torch.tensor(initial))
        else:
            self.register_buffer("log_scale", torch.tensor(initial), persistent=False)
        self.image_queue = EmbeddingQueue(embedding_dim, self.config.queue_size)
        self.radiomics_queue = EmbeddingQueue(embedding_dim, self.config.queue_size)

    def temperature(self) -> torch.Tensor:
        """Current temperature as a scalar tensor (differentiable when learned)."""
        if not self.config.learn_temperature:
            return torch.tensor(self.config.temperature, device=self.log_scale.device)
        return torch.exp(-self.log_scale.clamp(max=math.log(MAX_LOGIT_SCALE)))

    def forward(
        self,
        image_z1: torch.Tensor,
        image_z2: torch.Tensor | None = None,
        radiomics_z: torch.Tensor | None = None,
        ids: torch.Tensor | None = None,
        bank: torch.Tensor | None = None,
        similar: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Loss terms of one batch of projections -> ``loss``, ``clip``, ``simclr``, ``temperature``.

        Terms with weight 0 are skipped (reported as 0): ``image_z2`` may be None for the
        ``radiomics`` preset and ``radiomics_z`` for ``simclr``. ``ids`` (case indices of the rows)
        keep a case's own queued embeddings out of its negatives. ``bank`` (every training case's
        radiomics projection, for ``negatives="all"``) and ``similar`` (false negatives) are passed
        on to :func:`clip_loss`.
        """
        cfg = self.config
        temperature = self.temperature().to(image_z1.device)
        zero = image_z1.new_zeros(())
        loss, clip, simclr = zero, zero, zero
        image_queue, image_queue_ids = self.image_queue.tensor(), self.image_queue.case_ids()
        if cfg.clip_weight > 0:
            if radiomics_z is None:
                raise ValueError(f"objective preset {cfg.preset!r} needs radiomics embeddings (radiomics_z).")
            views = [image_z1] if image_z2 is None else [image_z1, image_z2]
            radiomics_queue, radiomics_queue_ids = self.radiomics_queue.tensor(), self.radiomics_queue.case_ids()
            if cfg.negatives == "all" and bank is None:
                raise ValueError(
                    "objective negatives 'all' needs the bank of every training case's radiomics projection."
                )
            # a sum of tensors over the (never empty) views is a tensor, not sum()'s int start
            clip = cast(
                torch.Tensor,
                sum(
                    clip_loss(
                        view,
                        radiomics_z,
                        temperature,
                        image_queue,
                        radiomics_queue,
                        ids,
                        image_queue_ids,
                        radiomics_queue_ids,
                        bank=bank if cfg.negatives == "all" else None,
                        similar=similar,
                    )
                    for view in views
                )
                / len(views),
            )
            loss = loss + cfg.clip_weight * clip
        if cfg.simclr_weight > 0:
            if image_z2 is None:
                raise ValueError(f"objective preset {cfg.preset!r} needs a second image view (image_z2).")
            simclr = nt_xent_loss(image_z1, image_z2, temperature, image_queue, ids, image_queue_ids)
            loss = loss + cfg.simclr_weight * simclr
        return {"loss": loss, "clip": clip, "simclr": simclr, "temperature": temperature.detach()}

    @torch.no_grad()
    def update_queues(
        self, image_z: torch.Tensor, radiomics_z: torch.Tensor | None = None, ids: torch.Tensor | None = None
    ) -> None:
        """Push projected embeddings (normalised here, detached) and their case ``ids`` into the
        queues; call after the optimiser step. Pass one image view per case."""
        self.image_queue.enqueue(image_z, ids)
        if radiomics_z is not None:
            self.radiomics_queue.enqueue(radiomics_z, ids)
