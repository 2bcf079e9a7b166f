"""Where and how torch runs: the device from ``--device auto|cpu|cuda[:i]``, full float32, threads, freed
memory (used by training, prediction and explanation alike)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from lgerisk.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import torch


def resolve_device(spec: str, local_rank: int | None = None) -> torch.device:
    """``auto`` -> CUDA when available (the local rank's GPU under torchrun), else CPU.

    Example:
        >>> str(resolve_device("cpu"))
        'cpu'
    """
    import torch

    text = spec.strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank or 0)
        return torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", text)
    if not match:
        raise InputError(f"device={spec!r}: use auto, cpu, cuda or cuda:N.", setting="device")
    if not torch.cuda.is_available():
        raise InputError(
            f"device={spec!r}: CUDA is not available here (torch {torch.__version__}, "
            f"built {'with' if torch.version.cuda else 'without'} CUDA); use device='cpu'.",
            setting="device",
        )
    index = int(match.group(1)) if match.group(1) else (local_rank or 0)
    if index >= torch.cuda.device_count():
        raise InputError(f"device={spec!r}: only {torch.cuda.device_count()} CUDA device(s) present.", setting="device")
    return torch.device("cuda", index)


@contextmanager
def full_float32(device: torch.device | str) -> Iterator[None]:
    """On a CUDA ``device`` (a ``torch.device`` or a string such as ``"cuda:0"``): convolutions and matrix
    products in IEEE float32 while inside (no TF32, which cuDNN uses for float32 convolutions by default and
    which moved risk scores by up to 0.07 against the CPU on an H200, benchmarks/gpu.py) and deterministic
    cuDNN algorithms; the previous settings after. On the CPU it changes nothing. The settings are the
    process's: do not run models on other threads meanwhile."""
    import torch

    kind = torch.device(device).type if isinstance(device, str) else getattr(device, "type", None)
    if kind != "cuda":
        yield
        return
    cudnn = torch.backends.cudnn
    matmul = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        with cudnn.flags(
            enabled=cudnn.enabled,
            benchmark=False,
            benchmark_limit=cudnn.benchmark_limit,
            deterministic=True,
            allow_tf32=False,
        ):
            yield
    finally:
        torch.set_float32_matmul_precision(matmul)


_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)
FREED_MEMORY_KEPT = 1 << 30
"""After :func:`reuse_freed_memory`, glibc hands memory back to the system only from the top of its heap, and
only once more than this (bytes) is free there."""


def reuse_freed_memory() -> bool:
    """Let this process reuse the memory of freed tensors instead of returning it to the system: glibc only,
    ``True`` when glibc took both settings (elsewhere, or under another allocator, nothing changes).

    glibc gives blocks of more than a few MB pages of their own, straight from the system, and returns them
    when freed. A CPU network allocates and frees its activations at every layer, so every pass faulted in tens
    of MB of fresh, zeroed pages: a large share of its time (``benchmarks/predict.py --ablations`` times a
    prediction batch without this). Here every block comes from the heap (``M_MMAP_MAX`` 0) and freed heap is
    handed back only beyond ``FREED_MEMORY_KEPT`` (``M_TRIM_THRESHOLD``), so a pass reuses the previous pass's
    pages; values are not touched (the same results, bit for bit). The cost: the process's memory can stay
    near its peak until it ends. Process-wide and for good, so it is the caller's choice: ``lgerisk predict``
    and ``lgerisk explain`` make it (``predict_cases``/``explain_cases(keep_freed_memory=True)``), in the
    processes that run the network, after any workers are forked; the library's functions do not by default.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's C library
    except (OSError, AttributeError):  # no mallopt (not glibc)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    every_block_from_the_heap = mallopt(_M_MMAP_MAX, 0) == 1
    freed_heap_kept = mallopt(_M_TRIM_THRESHOLD, FREED_MEMORY_KEPT) == 1
    return bool(every_block_from_the_heap and freed_heap_kept)


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run with ``count`` torch threads inside (``None``: as they are), restoring the previous count after."""
    if count is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
