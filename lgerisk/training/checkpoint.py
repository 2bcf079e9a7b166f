"""Checkpoints: written atomically, read with ``torch.load(weights_only=True)`` (never unpickling code)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from lgerisk.errors import InputError, brief
from lgerisk.io.atomic import write_torch

if TYPE_CHECKING:
    import torch

CHECKPOINT_FORMAT = "lgerisk-checkpoint-1"
"""Marker stored in every lgerisk checkpoint; anything else is refused as foreign."""


def save_checkpoint(path: str | os.PathLike[str], state: Mapping[str, object]) -> None:
    """Save tensors, numbers, strings, lists and dicts (no objects) atomically (a full disk: ``OutputError``)."""
    write_torch(path, {"format": CHECKPOINT_FORMAT, **state})


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, object]:
    """Load a checkpoint written by ``save_checkpoint``; a corrupted or foreign file -> ``InputError``."""
    import pickle
    import zipfile

    import torch

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint does not exist.")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        reason = brief(exc)
        raise InputError(
            f"{path}: not a loadable lgerisk checkpoint (corrupted, or holds objects other than "
            f"tensors and plain data: {reason})."
        ) from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path}: not an lgerisk checkpoint (no '{CHECKPOINT_FORMAT}' marker).")
    return state
