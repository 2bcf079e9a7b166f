"""Model files: their names, formats, and the one place they are written and read.

A run folder from ``lgerisk pretrain`` or ``lgerisk finetune`` holds::

    RUN/model.pt            the weights (tensors and plain data only; loaded with ``weights_only=True``)
    RUN/model_card.json     what was trained, on what, how; written last, with the model file's SHA-256

The card's presence says the folder is whole: it is written after every other file, and it records
``model_sha256``, so a model file from another (or an interrupted) run is refused on loading. The card is
sealed (``card_sha256``, :func:`lgerisk.cards.card_digest`): a card edited after it was written is refused
on loading, and so, through ``model_sha256``, are changed weights. A card that claims a newer lgerisk (or
format) than this one is refused, never read as if it were of this version. Cards from before seals: a
risk model's is refused (train it again with lgerisk finetune: predictions come from what it holds); a
pretrained encoder's that claims lgerisk 0.1.0 or earlier (``LAST_UNSEALED``) loads as it did, a newer
one must be sealed. Two kinds of model, each with its format marker in both files:

* an encoder (``lgerisk pretrain``): :func:`save_encoder` / :func:`load_encoder`, format ``lgerisk-model-1``;
* a risk model (``lgerisk finetune``): :func:`save_risk_model` / :func:`load_risk_model`, format
  ``lgerisk-survival-1``, with its :class:`~lgerisk.models.tabular.TabularScaling`.

Example:
    >>> from lgerisk.artifacts import load_risk_model
    >>> model, scaling, card = load_risk_model("work/risk")          # doctest: +SKIP
    >>> card["method"]                                                # doctest: +SKIP
    'radiomics-pretrained probe'
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypedDict, TypeVar, cast

from lgerisk.cards import (
    CARD_DIGEST,
    ENCODER_FORMAT,
    RISK_MODEL_FORMAT,
    EncoderCard,
    RiskModelCard,
    card_digest,
    claimed_version,
    release,
    seal_card,
)
from lgerisk.errors import InputError, brief
from lgerisk.io.atomic import write_json, write_torch
from lgerisk.version import __version__

if TYPE_CHECKING:
    from collections.abc import Mapping

    import torch

    from lgerisk.models.contrastive import ContrastiveModel
    from lgerisk.models.survival import SurvivalModel
    from lgerisk.models.tabular import TabularScaling
    from lgerisk.types import JSONDict

__all__ = [
    "EncoderCard",
    "RiskModelCard",
    "CARD_FILE",
    "CHECKPOINT",
    "ENCODER_FORMAT",
    "METRICS_FILE",
    "MODEL_FILE",
    "RISK_MODEL_FORMAT",
    "LAST_UNSEALED",
    "card_format",
    "card_digest",
    "file_sha256",
    "is_whole_run",
    "load_encoder",
    "load_risk_model",
    "read_card",
    "save_encoder",
    "save_risk_model",
    "seal_card",
    "versions",
    "write_card",
]

MODEL_FILE = "model.pt"
"""The weights of a run."""
CARD_FILE = "model_card.json"
"""The model card of a run (written last)."""
METRICS_FILE = "metrics.csv"
"""Per-epoch (pretrain) or per-stage (finetune) training metrics of a run."""
CHECKPOINT = Path("checkpoint") / "last.pt"
"""A pretraining run's resumable checkpoint, relative to the run folder."""
_EncoderPart = Literal["image_encoder", "radiomics_encoder", "image_projection", "radiomics_projection"]
_ENCODER_PARTS: tuple[_EncoderPart, ...] = (
    "image_encoder",
    "radiomics_encoder",
    "image_projection",
    "radiomics_projection",
)


class _ModelFile(TypedDict, total=False):
    """What a model file holds: its format marker, its config as JSON text and its networks' weights (a risk
    model: ``model`` and ``tabular``; an encoder: its ``_ENCODER_PARTS`` and maybe ``aux_head``)."""

    format: str
    config: str
    tabular: str
    model: dict[str, torch.Tensor]
    image_encoder: dict[str, torch.Tensor]
    radiomics_encoder: dict[str, torch.Tensor]
    image_projection: dict[str, torch.Tensor]
    radiomics_projection: dict[str, torch.Tensor]
    aux_head: dict[str, torch.Tensor]


_Card = TypeVar("_Card", EncoderCard, RiskModelCard)

LAST_UNSEALED = "0.1.0"
"""The last lgerisk version whose cards may lack ``card_sha256`` (written before cards were sealed): such
an encoder card loads unchecked; a card claiming a later version must be sealed."""


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def versions() -> dict[str, str]:
    """Versions of lgerisk, Python and the libraries a model depends on (recorded in every card)."""
    import numpy
    import SimpleITK
    import torch

    found = {
        "lgerisk": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "simpleitk": str(SimpleITK.Version.VersionString()),
    }
    for name in ("radiomics", "torchio"):
        module = sys.modules.get(name)
        if module is not None:
            found[name] = getattr(module, "__version__", "?")
    return found


def is_whole_run(run: str | os.PathLike[str]) -> bool:
    """Whether ``run`` holds a finished run: its model file and its card (written last)."""
    return (Path(run) / MODEL_FILE).is_file() and (Path(run) / CARD_FILE).is_file()


def read_card(run: str | os.PathLike[str]) -> JSONDict:
    """The model card of run folder ``run``; a missing or unreadable card -> ``InputError``."""
    path = Path(run) / CARD_FILE
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable model card ({brief(exc)}).") from exc
    if not isinstance(card, dict):
        raise InputError(f"{path}: not a model card (a JSON object is expected).")
    return card


def card_format(run: str | os.PathLike[str]) -> str | None:
    """The format marker of ``run``'s card (None: no card, an unreadable one, or one from before markers)."""
    try:
        value = read_card(run).get("format")
    except InputError:
        return None
    return value if isinstance(value, str) else None


def write_card(run: str | os.PathLike[str], card: EncoderCard | RiskModelCard | dict[str, object]) -> dict[str, object]:
    """Write ``card`` with the run's ``model_sha256`` (after the format marker), sealed with ``card_sha256``
    (last), atomically; call it last: the card's presence says the run folder is whole. Returns the card as
    written (its JSON layout)."""
    run = Path(run)
    card = dict(card) if isinstance(card, dict) else card.to_dict()
    marker = card.pop("format", None)
    card.pop("model_sha256", None)
    written = seal_card(
        {
            **({"format": marker} if marker is not None else {}),
            "model_sha256": file_sha256(run / MODEL_FILE),
            **card,
        }
    )
    write_json(run / CARD_FILE, written)
    return written


def _save_weights(run: Path, state: _ModelFile) -> None:
    run.mkdir(parents=True, exist_ok=True)
    write_torch(run / MODEL_FILE, state)  # a file object: the archive's inner name does not depend on the temp name


def _load_weights(run: Path, expected: str, device: str, what: str, hints: dict[str, str]) -> _ModelFile:
    """The state of ``run``'s model file (weights_only), refused unless of format ``expected``."""
    import torch

    try:
        state = torch.load(run / MODEL_FILE, map_location=device, weights_only=True)
    except Exception as exc:
        raise InputError(f"{run / MODEL_FILE}: not a loadable lgerisk model ({brief(exc)}).") from exc
    found = state.get("format") if isinstance(state, dict) else None
    if found != expected:
        if _newer_format(found, expected):
            raise InputError(
                f"{run / MODEL_FILE}: of format {found!r}, newer than this lgerisk {__version__} reads "
                f"({expected!r}); update lgerisk to load it."
            )
        raise InputError(f"{run / MODEL_FILE}: not {what}{hints.get(str(found), '')}.")
    return cast("_ModelFile", dict(state))  # of format ``expected``: as its save function wrote it


def _newer_format(found: object, expected: str) -> bool:
    """Whether marker ``found`` is a later version of ``expected`` (``lgerisk-survival-2`` of ``...-1``)."""
    stem, _, number = expected.rpartition("-")
    if not isinstance(found, str) or not found.startswith(f"{stem}-"):
        return False
    later = found[len(stem) + 1 :]
    return later.isdigit() and number.isdigit() and int(later) > int(number)


def _refuse_newer(run: Path, card: Mapping[str, object], expected: str) -> None:
    """A card that claims a newer lgerisk, or a newer format of ``expected``, than this one -> ``InputError``:
    what it holds may mean something else there, so it is never read as if it were of this version."""
    claimed = claimed_version(card)
    if claimed is not None and (release(claimed) or ()) > (release(__version__) or ()):
        raise InputError(
            f"{run / CARD_FILE}: written by lgerisk {claimed}, newer than this lgerisk {__version__}; "
            "update lgerisk to load it."
        )
    if _newer_format(card.get("format"), expected):
        raise InputError(
            f"{run / CARD_FILE}: of format {card.get('format')!r}, newer than this lgerisk "
            f"{__version__} reads ({expected!r}); update lgerisk to load it."
        )


def _check_card(run: Path, card: Mapping[str, object], expected: str, required: bool = False) -> None:
    """The card is of this version, of ``expected``'s format, belongs to this model file, and is unchanged
    since it was written (its seal). Cards from before format markers and hashes pass unless ``required``
    (risk models have always carried both); on cards from before seals see the module's docstring."""
    _refuse_newer(run, card, expected)
    marker = card.get("format")
    if (marker is None and required) or (marker is not None and marker != expected):
        made = str(card.get("created_by", "")).split(" ")[1:2]
        raise InputError(
            f"{run / CARD_FILE}: model card of another format ({marker!r}, lgerisk "
            f"{made[0] if made else '?'}); retrain with this version."
        )
    command = "finetune" if expected == RISK_MODEL_FORMAT else "pretrain"
    seal = card.get(CARD_DIGEST)
    if seal is not None and seal != card_digest(card):  # first: an edited card's model_sha256 is no evidence
        raise InputError(
            f"{run / CARD_FILE}: changed since lgerisk wrote it (its content no longer matches its {CARD_DIGEST}); "
            f"a model is used only as trained: train it again with lgerisk {command}."
        )
    recorded = card.get("model_sha256")
    if (recorded is None and required) or (recorded is not None and recorded != file_sha256(run / MODEL_FILE)):
        raise InputError(
            f"{run / MODEL_FILE}: this file and {CARD_FILE} do not belong together (the weights are not the ones "
            f"the card records: changed, or from another or an interrupted run); train the model again with "
            f"lgerisk {command}."
        )
    unsealed_ok = not required and (release(claimed_version(card)) or ()) <= (release(LAST_UNSEALED) or ())
    if seal is None and not unsealed_ok:
        raise InputError(
            f"{run / CARD_FILE}: has no {CARD_DIGEST}, so a change to it could not be seen (a card from before "
            f"lgerisk sealed its cards, or one whose seal was removed); train the model again with lgerisk "
            f"{command}."
        )


def save_encoder(run: str | os.PathLike[str], model: ContrastiveModel) -> None:
    """Write a pretrained ``ContrastiveModel``'s weights and config to ``run/model.pt`` (atomically; the
    card follows with :func:`write_card`)."""
    state: _ModelFile = {"format": ENCODER_FORMAT, "config": json.dumps(model.config.to_dict())}
    for part in _ENCODER_PARTS:
        state[part] = getattr(model, part).state_dict()
    if model.aux_head is not None:
        state["aux_head"] = model.aux_head.state_dict()
    _save_weights(Path(run), state)


def load_encoder(run: str | os.PathLike[str], device: str = "cpu") -> tuple[ContrastiveModel, EncoderCard]:
    """The ``ContrastiveModel`` (eval mode) of a pretraining run folder and its model card."""
    from lgerisk.models.contrastive import ContrastiveModel, ContrastiveModelConfig

    run = Path(run)
    if not is_whole_run(run):
        raise InputError(f"{run}: not a pretraining run folder (needs {MODEL_FILE} and {CARD_FILE}).")
    hint = {RISK_MODEL_FORMAT: " (a risk model from lgerisk finetune; an encoder is a pretraining run)"}
    card = read_card(run)
    _refuse_newer(run, card, ENCODER_FORMAT)
    state = _load_weights(run, ENCODER_FORMAT, device, "an lgerisk pretraining model", hint)
    _check_card(run, card, ENCODER_FORMAT)
    try:
        model = ContrastiveModel(ContrastiveModelConfig.from_dict(json.loads(state["config"])))
        for part in _ENCODER_PARTS:
            getattr(model, part).load_state_dict(state[part])
        if model.aux_head is not None and "aux_head" in state:
            model.aux_head.load_state_dict(state["aux_head"])
    except (ValueError, KeyError, RuntimeError, TypeError) as exc:
        raise InputError(f"{run}: encoder files do not fit together ({brief(exc)}).") from exc
    return model.to(device).eval(), _typed(run, EncoderCard, card)


def save_risk_model(run: str | os.PathLike[str], model: SurvivalModel, scaling: TabularScaling) -> None:
    """Write a fitted ``SurvivalModel`` and the scaling of its tabular inputs to ``run/model.pt``
    (atomically; the card follows with :func:`write_card`)."""
    state: _ModelFile = {
        "format": RISK_MODEL_FORMAT,
        "config": json.dumps(model.config.to_dict()),
        "model": model.state_dict(),
        "tabular": json.dumps(scaling.to_dict()),
    }
    _save_weights(Path(run), state)


def load_risk_model(
    run: str | os.PathLike[str], device: str = "cpu"
) -> tuple[SurvivalModel, TabularScaling, RiskModelCard]:
    """(``SurvivalModel`` in eval mode, its :class:`TabularScaling`, model card) of a finetune run folder."""
    from lgerisk.models.survival import SurvivalModel, SurvivalModelConfig
    from lgerisk.models.tabular import TabularScaling

    run = _risk_model_folder(run)
    hint = {ENCODER_FORMAT: " (a pretraining run: fine-tune it first with lgerisk finetune)"}
    card = read_card(run)
    _refuse_newer(run, card, RISK_MODEL_FORMAT)
    state = _load_weights(run, RISK_MODEL_FORMAT, device, "an lgerisk risk model", hint)
    _check_card(run, card, RISK_MODEL_FORMAT, required=True)
    try:
        model = SurvivalModel(SurvivalModelConfig.from_dict(json.loads(state["config"])))
        model.load_state_dict(state["model"])
        scaling = TabularScaling.from_dict(json.loads(state["tabular"]))
    except (ValueError, KeyError, RuntimeError, TypeError) as exc:
        raise InputError(f"{run}: risk model files do not fit together ({brief(exc)}).") from exc
    return model.to(device).eval(), scaling, _typed(run, RiskModelCard, card)


def read_risk_model_card(run: str | os.PathLike[str]) -> RiskModelCard:
    """The card of a finetune run folder, checked against its model file (by SHA-256) without loading
    the weights (no torch): everything but the network, e.g. for prediction workers."""
    run = _risk_model_folder(run)
    card = read_card(run)
    if card.get("format") == ENCODER_FORMAT:
        raise InputError(
            f"{run / MODEL_FILE}: not an lgerisk risk model (a pretraining run: fine-tune it first with lgerisk "
            "finetune)."
        )
    _check_card(run, card, RISK_MODEL_FORMAT, required=True)
    return _typed(run, RiskModelCard, card)


def _risk_model_folder(run: str | os.PathLike[str]) -> Path:
    """``run`` as a path, when it is a whole risk model folder (``InputError`` naming what is wrong otherwise)."""
    run = Path(run)
    if run.is_file():
        where = f" (pass its folder, {run.parent})" if run.name in (MODEL_FILE, CARD_FILE) else ""
        raise InputError(
            f"{run}: is a file, not a model folder; a risk model is the folder written by lgerisk "
            f"finetune, which holds {MODEL_FILE} and {CARD_FILE}{where}."
        )
    if not run.is_dir():
        raise InputError(f"{run}: model folder does not exist.")
    if not is_whole_run(run):
        raise InputError(
            f"{run}: not a risk model folder (needs {MODEL_FILE} and {CARD_FILE}; train one with lgerisk finetune)."
        )
    return run


def _typed(run: Path, kind: type[_Card], card: Mapping[str, object]) -> _Card:
    """``card`` as the dataclass ``kind`` (a card missing what this version needs -> one sentence naming it)."""
    try:
        return kind.from_dict(card)
    except InputError as exc:
        raise InputError(f"{run / CARD_FILE}: {exc}") from exc
    except (TypeError, ValueError, KeyError) as exc:
        raise InputError(f"{run / CARD_FILE}: not a readable model card ({brief(exc)}).") from exc
