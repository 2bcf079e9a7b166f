"""The pretraining dataset (augmented views of each case + its radiomics vector) and its DataLoader.

Reproducibility: the augmentation of view ``v`` of item ``i`` in epoch ``e`` is seeded by
``item_seed(base_seed, e, i, v)`` alone, so an item is the same whichever worker, rank or process
loads it, in whatever order, and after a resume. The loader's sampler carries the epoch with each
index (``(epoch, i)`` keys), so ``dataset.set_epoch(e)`` reaches persistent workers too, and its
shuffling is a function of ``(seed, epoch)`` only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from lgerisk.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch.utils.data import DataLoader

SHUFFLE_STREAM = 2**31
"""The ``view`` slot of ``item_seed`` that seeds an epoch's shuffling (views are 1 and 2)."""


class IndexSampler(Protocol):
    """What ``EpochSampler`` takes as ``sampler`` (e.g. ``DistributedSampler``): sized, yields indices, and may
    have ``set_epoch``."""

    def __iter__(self) -> Iterator[int]: ...

    def __len__(self) -> int: ...


def item_seed(base_seed: int, epoch: int, index: int, view: int = 0) -> int:
    """A 63-bit seed drawn from ``(base_seed, epoch, index, view)`` (numpy's SeedSequence).

    Example:
        >>> item_seed(0, 1, 5, 1) == item_seed(0, 1, 5, 1) != item_seed(0, 2, 5, 1)
        True
    """
    for name, value in (("seed", base_seed), ("epoch", epoch), ("index", index), ("view", view)):
        if int(value) < 0:
            raise InputError(f"{name} {value}: must be >= 0.")
    state = np.random.SeedSequence([int(base_seed), int(epoch), int(index), int(view)]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


class PretrainDataset:
    """Items ``{"index", "view1"[, "view2"][, "radiomics"]}`` for contrastive pretraining.

    ``tensors``: a list of ``(C, D, H, W)`` arrays, or a callable ``index -> array`` (e.g. reading a
    ``TensorCache``; give ``length`` then, unless ``features`` fixes it). ``features``: ``(n, F)``
    (from ``FeatureScaler.transform``) or None. ``augmentation``: a callable ``(tensor, seed) ->
    tensor`` such as ``Augmenter``, or None (views are the tensor itself). ``dataset[i]`` uses the
    current epoch (``set_epoch``); ``dataset[(epoch, i)]``, what ``make_loader`` asks for, names it.

    Example:
        >>> ds = PretrainDataset([np.zeros((2, 12, 96, 96), np.float32)], np.zeros((1, 5), np.float32))
        >>> sorted(ds[0]), tuple(ds[0]["view2"].shape)
        (['index', 'radiomics', 'view1', 'view2'], (2, 12, 96, 96))
    """

    def __init__(
        self,
        tensors: Sequence[np.ndarray] | Callable[[int], np.ndarray],
        features: np.ndarray | None = None,
        augmentation: Callable[[np.ndarray, int], np.ndarray | torch.Tensor] | None = None,
        views: int = 2,
        base_seed: int = 0,
        length: int | None = None,
    ) -> None:
        if views not in (1, 2):
            raise InputError(f"views {views}: must be 1 or 2.")
        if features is not None:
            features = np.asarray(features, dtype=np.float32)
            if features.ndim != 2:
                raise InputError(f"radiomics features have shape {features.shape}; expected (cases, features).")
            if not np.isfinite(features).all():
                raise InputError("radiomics features hold NaN or infinite values; standardise them with FeatureScaler.")
        sizes = {
            "features": None if features is None else len(features),
            "length": length,
            "tensors": None if callable(tensors) else len(tensors),
        }
        known = {k: v for k, v in sizes.items() if v is not None}
        if not known:
            raise InputError(
                "PretrainDataset: with a tensor callable, give its length or its features to fix the size."
            )
        if len(set(known.values())) > 1:
            raise InputError(
                "PretrainDataset: "
                + ", ".join(f"{v} {k}" for k, v in known.items())
                + " do not match; give one radiomics row per case."
            )
        self.tensors = tensors
        self.features = features
        self.augmentation = augmentation
        self.views = views
        self.base_seed = int(base_seed)
        self.length = next(iter(known.values()))
        self.epoch = 0
        item_seed(self.base_seed, 0, 0)  # validates base_seed

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch``'s augmentations for ``dataset[i]`` and for loaders made by ``make_loader``."""
        if int(epoch) < 0:
            raise InputError(f"epoch {epoch}: must be >= 0.")
        self.epoch = int(epoch)

    def tensor(self, index: int) -> np.ndarray:
        """The un-augmented tensor of item ``index``."""
        return self.tensors(index) if callable(self.tensors) else self.tensors[index]

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, int | torch.Tensor]:
        import torch

        epoch, index = (int(key[0]), int(key[1])) if isinstance(key, tuple) else (self.epoch, int(key))
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} items")
        base = self.tensor(index)
        item: dict[str, int | torch.Tensor] = {"index": index}
        for view in range(1, self.views + 1):
            out: np.ndarray | torch.Tensor
            if self.augmentation is None:
                out = torch.as_tensor(np.array(base, dtype=np.float32, copy=True))
            else:
                out = self.augmentation(base, item_seed(self.base_seed, epoch, index, view))
                out = torch.as_tensor(out, dtype=torch.float32)
            item[f"view{view}"] = out
        if self.features is not None:
            item["radiomics"] = torch.from_numpy(self.features[index].copy())
        return item


class EpochSampler:
    """Yields ``(epoch, index)`` keys, reading the epoch from the dataset when iteration starts.

    Without ``sampler``: all indices, shuffled by a permutation seeded from ``(seed, epoch)`` when
    ``shuffle``. With ``sampler`` (e.g. ``DistributedSampler``): its indices, after passing the epoch
    to its ``set_epoch``.
    """

    def __init__(self, dataset: PretrainDataset, shuffle: bool, seed: int, sampler: IndexSampler | None = None) -> None:
        self.dataset, self.shuffle, self.seed, self.sampler = dataset, shuffle, int(seed), sampler

    def __len__(self) -> int:
        return len(self.sampler) if self.sampler is not None else len(self.dataset)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        import torch

        epoch = self.dataset.epoch
        if self.sampler is not None:
            if hasattr(self.sampler, "set_epoch"):
                self.sampler.set_epoch(epoch)
            order = [int(i) for i in self.sampler]
        elif self.shuffle:
            generator = torch.Generator().manual_seed(item_seed(self.seed, epoch, 0, SHUFFLE_STREAM))
            order = torch.randperm(len(self.dataset), generator=generator).tolist()
        else:
            order = list(range(len(self.dataset)))
        for index in order:
            yield (epoch, index)


def quiet_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: one SimpleITK thread per worker (workers already run in parallel)."""
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)


def make_loader(
    dataset: PretrainDataset,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    epoch: int = 0,
    num_workers: int = 0,
    sampler: IndexSampler | None = None,
    drop_last: bool = True,
    pin_memory: bool = False,
) -> DataLoader[dict[str, int | torch.Tensor]]:
    """A DataLoader over ``dataset`` from ``epoch`` on; call ``dataset.set_epoch(e)`` before each later epoch.

    Shuffling depends on ``(seed, epoch)`` only; with ``sampler`` (e.g. ``DistributedSampler``) the
    sampler orders the items and receives the epoch. Workers persist between epochs.

    Example:
        >>> loader = make_loader(dataset, batch_size=8, seed=0, epoch=0, num_workers=2)   # doctest: +SKIP
        >>> for epoch in range(10):                                                         # doctest: +SKIP
        ...     dataset.set_epoch(epoch)
        ...     for batch in loader: ...
    """
    import torch
    from torch.utils.data import DataLoader

    if batch_size < 1:
        raise InputError(f"batch size {batch_size}: must be >= 1.")
    if num_workers < 0:
        raise InputError(f"num_workers {num_workers}: must be >= 0.")
    dataset.set_epoch(epoch)
    # DataLoader takes any map-style dataset (__getitem__ and __len__); torch's stub asks for a Dataset subclass
    return DataLoader(
        dataset,  # type: ignore[arg-type]
        batch_size=batch_size,
        sampler=EpochSampler(dataset, shuffle, seed, sampler),
        num_workers=num_workers,
        drop_last=drop_last,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(int(seed)),
        persistent_workers=num_workers > 0,
        worker_init_fn=quiet_worker if num_workers else None,
    )
