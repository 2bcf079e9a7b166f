"""Preprocessed cases -> fixed-size network inputs ``(C, D, H, W)`` float32, and their on-disk cache.

A preprocessed case (``OUT/cases/ID/image.nii.gz`` + ``mask.nii.gz``, see docs/commands.md, "lgerisk preprocess") is a
stack of short-axis slices, base first, ``crop x crop`` in-plane. The network wants a fixed shape:

* **slices** (D): fewer than D -> zero slices appended after the last (apical) slice; more than D
  -> D slices evenly spaced, by nearest index, keeping the base and the apex (slices are never
  interpolated: they are 8-13 mm apart);
* **in-plane** (H x W): centre-cropped or zero-padded to ``size`` when the crop differs;
* **channels**: ``image`` (normalised intensities: remote myocardium 0, blood 1), ``myocardium``
  (1 where labels 2-5), ``scar`` (1 where labels 3-4, core and no-reflow), ``greyzone`` (1 where label 5): the
  regions radiomics describes, so that a network can be given what radiomics is given.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, cast, overload

import numpy as np

from lgerisk.config import JsonConfig
from lgerisk.errors import CaseError, InputError
from lgerisk.io.cohort import Case

TENSOR_VERSION = "1"
"""Changes whenever the same case and spec start to give a different tensor (invalidates caches)."""

CHANNEL_LABELS: dict[str, tuple[int, ...] | None] = {
    "image": None,  # the normalised intensities
    "myocardium": (2, 3, 4, 5),  # remote, scar core, no-reflow, grey zone
    "scar": (3, 4),  # scar core + no-reflow
    "greyzone": (5,),  # the grey (border) zone
}
"""Known channels and the mask labels each one marks (``None``: the image itself)."""

LABEL_CHANNELS = frozenset(name for name, labels in CHANNEL_LABELS.items() if labels is not None)
"""Binary channels: transformed spatially only (never by intensity augmentation)."""


@dataclass(frozen=True)
class TensorSpec(JsonConfig):
    """Shape and channels of a network input.

    Example:
        >>> spec = TensorSpec(slices=10, channels=("image", "myocardium", "scar"))
        >>> spec.shape
        (3, 10, 96, 96)
        >>> TensorSpec.from_dict(spec.to_dict()) == spec
        True
    """

    config_name: ClassVar[str] = "tensor spec"

    slices: int = 12
    size: int = 96
    channels: tuple[str, ...] = ("image", "myocardium")

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(self.channels))
        unknown = [c for c in self.channels if c not in CHANNEL_LABELS]
        if unknown:
            raise InputError(f"tensor channels: {unknown[0]!r} is not one of {', '.join(CHANNEL_LABELS)}.")
        if not self.channels or len(set(self.channels)) != len(self.channels):
            raise InputError(f"tensor channels {list(self.channels)}: name each channel once, at least one.")
        if not (isinstance(self.slices, int) and 1 <= self.slices <= 256):
            raise InputError(f"tensor slices {self.slices!r}: must be an integer 1-256.")
        if not (isinstance(self.size, int) and 8 <= self.size <= 1024):
            raise InputError(f"tensor size {self.size!r}: must be an integer 8-1024.")

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(C, D, H, W)``."""
        return (len(self.channels), self.slices, self.size, self.size)

    def spec_hash(self) -> str:
        """Short stable hash of the spec and ``TENSOR_VERSION`` (names cache files)."""
        payload = json.dumps({"spec": self.to_dict(), "version": TENSOR_VERSION}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


def slice_indices(count: int, target: int) -> list[int]:
    """Which of ``count`` slices fill ``target`` places: all of them when they fit, else ``target``
    evenly spaced ones by nearest index (base and apex kept).

    Example:
        >>> slice_indices(13, 5)
        [0, 3, 6, 9, 12]
        >>> slice_indices(4, 6)
        [0, 1, 2, 3]
    """
    if count <= target:
        return list(range(count))
    if target == 1:
        return [0]
    return [int(v) for v in np.floor(np.linspace(0.0, count - 1.0, target) + 0.5)]


def fit_slices(array: np.ndarray, target: int) -> np.ndarray:
    """``(D0, H, W)`` -> ``(target, H, W)``: evenly spaced slices, or zero slices appended at the apex.

    Example:
        >>> fit_slices(np.ones((3, 2, 2)), 5)[:, 0, 0].tolist()
        [1.0, 1.0, 1.0, 0.0, 0.0]
    """
    chosen = array[slice_indices(array.shape[0], target)]
    if chosen.shape[0] < target:
        pad = np.zeros((target - chosen.shape[0], *chosen.shape[1:]), dtype=chosen.dtype)
        chosen = np.concatenate([chosen, pad], axis=0)
    return chosen


def fit_plane(array: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop or zero-pad the last two axes of ``array`` to ``size x size``.

    Example:
        >>> fit_plane(np.ones((1, 4, 6)), 5).shape
        (1, 5, 5)
    """
    out = array
    for axis in (-2, -1):
        n = out.shape[axis]
        if n > size:
            start = (n - size) // 2
            out = np.take(out, range(start, start + size), axis=axis)
        elif n < size:
            before = (size - n) // 2
            widths = [(0, 0)] * out.ndim
            widths[axis] = (before, size - n - before)
            out = np.pad(out, widths)
    return out


def case_tensor(
    image_path: str | os.PathLike[str], mask_path: str | os.PathLike[str] | None, spec: TensorSpec = TensorSpec()
) -> np.ndarray:
    """The ``(C, D, H, W)`` float32 network input of one preprocessed case.

    Example:
        >>> x = case_tensor("work/prep/cases/P01/image.nii.gz", "work/prep/cases/P01/mask.nii.gz")  # doctest: +SKIP
        >>> x.shape, x.dtype                                                                        # doctest: +SKIP
        ((2, 12, 96, 96), dtype('float32'))
    """
    from lgerisk.io.scans import image_array, label_array, read_volume

    image = image_array(read_volume(image_path, "image", verify_nifti=False), image_path)
    labels = None
    if any(CHANNEL_LABELS[c] is not None for c in spec.channels):
        if mask_path is None:
            raise CaseError(
                f"{image_path}: channels {', '.join(LABEL_CHANNELS & set(spec.channels))} need a mask, "
                "and the case has none."
            )
        labels = label_array(read_volume(mask_path, "mask", verify_nifti=False), mask_path)
        if labels.shape != image.shape:
            raise CaseError(f"{mask_path}: mask has shape {labels.shape} (z, y, x) but its image has {image.shape}.")
    return tensor_from_arrays(image, labels, spec)


def tensor_from_arrays(image: np.ndarray, labels: np.ndarray | None, spec: TensorSpec = TensorSpec()) -> np.ndarray:
    """The ``(C, D, H, W)`` float32 network input from a preprocessed case's image and label arrays
    (z, y, x) in memory: what :func:`case_tensor` makes of the same case's files, value for value.

    Example:
        >>> image, labels = np.ones((12, 96, 96), np.float32), np.full((12, 96, 96), 2)
        >>> x = tensor_from_arrays(image, labels, TensorSpec())
        >>> x.shape, float(x[1].mean())
        ((2, 12, 96, 96), 1.0)
    """
    channels = []
    for name in spec.channels:
        wanted = CHANNEL_LABELS[name]
        if wanted is None:
            channel = image
        else:
            if labels is None:
                raise CaseError(f"channel {name} needs the case's labels, and there are none.")
            channel = np.isin(labels, wanted).astype(np.float32)
        channels.append(fit_plane(fit_slices(channel, spec.slices), spec.size))
    return np.ascontiguousarray(np.stack(channels), dtype=np.float32)


class TensorCache:
    """Network inputs on disk: ``folder/<case_id>-<spec hash>.npy``, rebuilt when the case's files change.

    Beside each ``.npy`` a ``.json`` records the SHA-256 of the image and mask it was built from; it is
    written after the array (both atomically), so a half-written entry is never trusted.

    Example:
        >>> cache = TensorCache("work/tensors")                          # doctest: +SKIP
        >>> x = cache.get(discover_cohort("work/prep").cases[0], TensorSpec())  # doctest: +SKIP
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def path(self, case_id: str, spec: TensorSpec) -> Path:
        """Where the tensor of ``case_id`` under ``spec`` is stored."""
        return self.folder / f"{case_id}-{spec.spec_hash()}.npy"

    def get(self, case: Case, spec: TensorSpec = TensorSpec()) -> np.ndarray:
        """The tensor of ``case``: read from the cache when built from the same files, else built and saved."""
        from lgerisk.io.atomic import atomic_path, write_json
        from lgerisk.io.layout import source_hash

        if not Path(case.image).exists():
            raise CaseError(f"{case.image}: image file does not exist.")
        key = {
            "image_sha256": source_hash(Path(case.image)),
            "mask_sha256": source_hash(Path(case.mask)) if case.mask is not None else None,
        }
        array_path = self.path(case.case_id, spec)
        record_path = array_path.with_suffix(".json")
        cached = self._read(array_path, record_path, key, spec)
        if cached is not None:
            return cached
        tensor = case_tensor(case.image, case.mask, spec)
        with atomic_path(array_path) as tmp, tmp.open("wb") as handle:
            np.save(handle, tensor, allow_pickle=False)
        write_json(
            record_path, {"case_id": case.case_id, "spec": spec.to_dict(), "tensor_version": TENSOR_VERSION, **key}
        )
        return tensor

    def stored(self, cases: Sequence[Case], spec: TensorSpec = TensorSpec()) -> StoredTensors:
        """The tensors of ``cases`` as a sequence read from the cache on each access (each built and checked
        here first): memory stays flat however many cases a cohort has."""
        paths = []
        for case in cases:
            self.get(case, spec)  # built or checked, then let go
            paths.append(self.path(case.case_id, spec))
        return StoredTensors(paths)

    @staticmethod
    def _read(array_path: Path, record_path: Path, key: Mapping[str, object], spec: TensorSpec) -> np.ndarray | None:
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
            if any(record.get(k) != v for k, v in key.items()):
                return None
            array = np.load(array_path, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        if array.shape != spec.shape or array.dtype != np.float32:
            return None
        return cast("np.ndarray | None", array)


class StoredTensors(Sequence[np.ndarray]):
    """Network inputs kept on disk: item ``i`` is read from its ``.npy`` file when asked for, so a
    training set of thousands of cases costs the memory of a batch, not of the cohort. Picklable (paths
    only), so DataLoader workers read their own items.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> np.save(folder / "a.npy", np.zeros((2, 2), np.float32))
        >>> tensors = StoredTensors([folder / "a.npy"])
        >>> len(tensors), tensors[0].shape, len(tensors.subset([0, 0]))
        (1, (2, 2), 2)
    """

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)

    def __len__(self) -> int:
        return len(self.paths)

    @overload
    def __getitem__(self, index: int) -> np.ndarray: ...

    @overload
    def __getitem__(self, index: slice) -> StoredTensors: ...

    def __getitem__(self, index: int | slice) -> np.ndarray | StoredTensors:
        if isinstance(index, slice):
            return StoredTensors(self.paths[index])
        return cast("np.ndarray", np.load(self.paths[index], allow_pickle=False))

    def subset(self, indices: Sequence[int]) -> StoredTensors:
        """The items at ``indices``, still on disk."""
        return StoredTensors([self.paths[i] for i in indices])
