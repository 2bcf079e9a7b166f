"""Representation metrics: cross-modal retrieval, alignment and uniformity (Wang & Isola, 2020)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def retrieval_topk(image_z: torch.Tensor, radiomics_z: torch.Tensor, k: int) -> float:
    """Share of scans whose own radiomics embedding is among the ``k`` nearest (cosine) of all.

    Example:
        >>> import torch
        >>> z = torch.eye(4)
        >>> retrieval_topk(z, z, 1)
        1.0
    """
    import torch
    import torch.nn.functional as F

    image = F.normalize(image_z.float(), dim=1)
    radiomics = F.normalize(radiomics_z.float(), dim=1)
    similarity = image @ radiomics.T
    k = min(k, similarity.shape[1])
    top = similarity.topk(k, dim=1).indices
    hits = (top == torch.arange(len(image), device=similarity.device).unsqueeze(1)).any(dim=1)
    return float(hits.float().mean())


def alignment(first: torch.Tensor, second: torch.Tensor, alpha: float = 2.0) -> float:
    """Mean ``||f(x) - f(y)||^alpha`` over positive pairs of normalised embeddings (lower: better aligned)."""
    import torch.nn.functional as F

    return float((F.normalize(first.float(), dim=1) - F.normalize(second.float(), dim=1)).norm(dim=1).pow(alpha).mean())


def uniformity(z: torch.Tensor, t: float = 2.0) -> float:
    """``log mean exp(-t ||zi - zj||^2)`` over pairs of normalised embeddings (lower: more uniform)."""
    import torch
    import torch.nn.functional as F

    normalised = F.normalize(z.float(), dim=1)
    if len(normalised) < 2:
        return float("nan")
    distances = torch.pdist(normalised, p=2).pow(2)
    return float(distances.mul(-t).exp().mean().log())
