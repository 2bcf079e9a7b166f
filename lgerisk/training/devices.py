"""Choosing the torch device from ``--device auto|cpu|cuda[:i]``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lgerisk.errors import InputError


def resolve_device(spec: str, local_rank: int | None = None):  # noqa: ANN201 - torch imported lazily
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
def full_float32(device: Any) -> Iterator[None]:
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


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
FREED_MEMORY_KEPT = 1 << 30
"""Blocks up to this size come from the heap, and up to twice it of freed heap stays with the process
(:func:`reuse_freed_memory`)."""


def reuse_freed_memory() -> bool:
    """Let this process reuse the memory of freed tensors instead of returning it to the system (glibc only;
    elsewhere nothing changes, and the answer is ``False``).

    glibc gives blocks of a few MB their own pages straight from the system and returns them when freed. A CPU
    network allocates and frees its activations at every layer, so every pass faulted in tens of MB of fresh
    zeroed pages, a large share of the network's time (benchmarks/predict.py measures it). Here large blocks
    come from the heap, and freed heap is kept, so a pass reuses the previous pass's pages; values are not
    touched (the same results bit for bit). Peak memory is what the largest pass needs, as before; the memory
    is not handed back to the system until the process ends. Process-wide; called by the commands that run a
    network on the CPU (``lgerisk predict``/``explain``, :meth:`lgerisk.inference.RiskPredictor.load`).

    Example:
        >>> reuse_freed_memory() in (True, False)
        True
    """
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, FREED_MEMORY_KEPT)) and bool(
        mallopt(_M_TRIM_THRESHOLD, 2 * FREED_MEMORY_KEPT)
    )


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
