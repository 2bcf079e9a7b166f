"""The image + radiomics model trained with multimodal contrastive learning."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from lgerisk.config import checked_fields, require_int
from lgerisk.errors import InputError
from lgerisk.models.encoder import EncoderConfig, ImageEncoder
from lgerisk.models.heads import ProjectionHead
from lgerisk.models.radiomics import RadiomicsEncoder, RadiomicsEncoderConfig
from lgerisk.types import JSONDict


@dataclass(frozen=True)
class ContrastiveModelConfig:
    """Settings of :class:`ContrastiveModel`: the two encoders and the projection size.

    Example:
        >>> config = ContrastiveModelConfig(EncoderConfig(), RadiomicsEncoderConfig(n_features=50))
        >>> import json
        >>> ContrastiveModelConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
        True
    """

    encoder: EncoderConfig
    radiomics: RadiomicsEncoderConfig
    projection_dim: int = 128
    aux_targets: int = 0
    """Length of the auxiliary regression head's output (0: no head)."""

    def __post_init__(self) -> None:
        if not isinstance(self.encoder, EncoderConfig):
            raise InputError(f"model encoder settings must be an EncoderConfig, not a {type(self.encoder).__name__}.")
        if not isinstance(self.radiomics, RadiomicsEncoderConfig):
            raise InputError(
                f"model radiomics settings must be a RadiomicsEncoderConfig, not a {type(self.radiomics).__name__}."
            )
        require_int(self.projection_dim, "model projection_dim", 1)
        require_int(self.aux_targets, "model aux_targets", 0)

    def to_dict(self) -> JSONDict:
        """Plain JSON-able nested dict of the settings."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> ContrastiveModelConfig:
        """Inverse of :meth:`to_dict`: nested dicts become :class:`EncoderConfig` and
        :class:`RadiomicsEncoderConfig` (unknown keys refused at every level)."""
        values = checked_fields(cls, data, "model settings")
        for key in ("encoder", "radiomics"):
            if key not in values:
                raise InputError(f"model settings lack the {key!r} section.")
        if isinstance(values["encoder"], dict):
            values["encoder"] = EncoderConfig.from_dict(values["encoder"])
        if isinstance(values["radiomics"], dict):
            values["radiomics"] = RadiomicsEncoderConfig.from_dict(values["radiomics"])
        return cls(**values)


class ContrastiveModel(nn.Module):
    """Image encoder + radiomics encoder, each followed by a projection head (and, with
    ``aux_targets``, a linear head that regresses radiomics/QC targets from the image embedding).

    ``image_projection`` serves both image⇄radiomics and image⇄image contrast. The projections
    are not normalised (the losses normalise). Call the model itself (``forward``) in training,
    so that DDP sees one forward per step; its output's keys match
    :meth:`lgerisk.objectives.contrastive.HybridObjective.forward`.

    Example:
        >>> model = ContrastiveModel(ContrastiveModelConfig(EncoderConfig(width=4),
        ...                                                 RadiomicsEncoderConfig(n_features=10)))
        >>> out = model(torch.zeros(2, 2, 3, 16, 16), torch.zeros(2, 2, 3, 16, 16), torch.zeros(2, 10))
        >>> sorted(out), tuple(out["image_z1"].shape)
        (['image_z1', 'image_z2', 'radiomics_z'], (2, 128))
    """

    def __init__(self, config: ContrastiveModelConfig) -> None:
        super().__init__()
        self.config = config
        self.image_encoder = ImageEncoder(config.encoder)
        self.radiomics_encoder = RadiomicsEncoder(config.radiomics)
        self.image_projection = ProjectionHead(
            config.encoder.embedding_dim, config.encoder.embedding_dim, config.projection_dim
        )
        self.radiomics_projection = ProjectionHead(
            config.radiomics.embedding_dim, config.radiomics.embedding_dim, config.projection_dim
        )
        self.aux_head = nn.Linear(config.encoder.embedding_dim, config.aux_targets) if config.aux_targets else None

    def embed_image(self, x: torch.Tensor) -> torch.Tensor:
        """Image encoder embedding ``(B, encoder.embedding_dim)`` (the representation for downstream use)."""
        return cast("torch.Tensor", self.image_encoder(x))

    def embed_radiomics(self, r: torch.Tensor) -> torch.Tensor:
        """Radiomics encoder embedding ``(B, radiomics.embedding_dim)``."""
        return cast("torch.Tensor", self.radiomics_encoder(r))

    def project_image(self, x: torch.Tensor) -> torch.Tensor:
        """Projected image embedding ``(B, projection_dim)``."""
        return cast("torch.Tensor", self.image_projection(self.image_encoder(x)))

    def project_radiomics(self, r: torch.Tensor) -> torch.Tensor:
        """Projected radiomics embedding ``(B, projection_dim)``."""
        return cast("torch.Tensor", self.radiomics_projection(self.radiomics_encoder(r)))

    def forward(
        self,
        image: torch.Tensor,
        image2: torch.Tensor | None = None,
        radiomics: torch.Tensor | None = None,
        radiomics_bank: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Projections of one or two image views and of the radiomics vector.

        Returns a dict with ``image_z1`` and, when given their inputs, ``image_z2``,
        ``radiomics_z`` and ``radiomics_bank_z`` (the projections of ``radiomics_bank``, e.g. every
        training case's clean vector, computed in the same pass as ``radiomics``); ``aux`` (the
        auxiliary head on the first view's embedding) when the model has one. Two views go
        through the encoder as one batch (GroupNorm does not mix samples, so this equals two
        separate passes).
        """
        if image2 is not None:
            if image2.shape != image.shape:
                raise ValueError(f"the two image views differ in shape: {tuple(image.shape)} vs {tuple(image2.shape)}.")
            embedding = self.image_encoder(torch.cat([image, image2]))
            z1, z2 = self.image_projection(embedding).chunk(2)
            out = {"image_z1": z1, "image_z2": z2}
            embedding = embedding[: image.shape[0]]
        else:
            embedding = self.image_encoder(image)
            out = {"image_z1": self.image_projection(embedding)}
        if self.aux_head is not None:
            out["aux"] = self.aux_head(embedding)
        if radiomics is not None:
            if radiomics_bank is None:
                out["radiomics_z"] = self.project_radiomics(radiomics)
            else:
                both = self.project_radiomics(torch.cat([radiomics, radiomics_bank.to(radiomics.dtype)]))
                out["radiomics_z"], out["radiomics_bank_z"] = both[: radiomics.shape[0]], both[radiomics.shape[0] :]
        return out
