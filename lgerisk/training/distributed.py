"""torchrun / DDP support: process-group set-up from the environment, gathering with gradients.

Under ``torchrun --nproc_per_node=N -m lgerisk pretrain ...`` the environment carries RANK,
WORLD_SIZE and LOCAL_RANK; a plain ``lgerisk pretrain`` is a world of one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import torch

_T = TypeVar("_T")


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands: rank, world size, local rank, and whether a process group is up."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialised: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files and prints."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every rank (no-op in a world of one)."""
        if self.initialised:
            import torch.distributed as dist

            dist.barrier()


def init_distributed(device: torch.device) -> DistributedContext:
    """Start the process group when launched by torchrun (gloo on CPU, nccl on CUDA ``device``)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext()
    from datetime import timedelta

    import torch
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL collectives then run on the device the model uses
    if not dist.is_initialized():
        # generous timeout: rank 0 may preprocess a raw cohort while the others wait
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", timeout=timedelta(hours=2))
    return DistributedContext(
        rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank, initialised=True
    )


def shutdown(context: DistributedContext) -> None:
    """Tear the process group down."""
    if context.initialised:
        import torch.distributed as dist

        dist.destroy_process_group()


def gather(tensor: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """Concatenate ``tensor`` from every rank (rank order), keeping gradients to the local part."""
    if not context.initialised:
        return tensor
    import warnings

    import torch
    import torch.distributed.nn.functional as dist_nn

    with warnings.catch_warnings():  # deprecated in favour of a private API; still the public autograd gather
        warnings.simplefilter("ignore", FutureWarning)
        return torch.cat(dist_nn.all_gather(tensor), dim=0)


def gather_plain(tensor: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """Concatenate a tensor that needs no gradient (e.g. case indices) from every rank, in rank order."""
    if not context.initialised:
        return tensor
    import torch
    import torch.distributed as dist

    parts = [torch.empty_like(tensor) for _ in range(context.world_size)]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)


def broadcast_object(value: _T, context: DistributedContext) -> _T:
    """Rank 0's ``value`` (any picklable object) on every rank."""
    if not context.initialised:
        return value
    import torch.distributed as dist

    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]
