"""Model files: their names, formats, and the one place they are written and read.

A run folder from ``lgerisk pretrain`` or ``lgerisk finetune`` holds::

    RUN/model.pt            the weights (tensors and plain data only; loaded with ``weights_only=True``)
    RUN/model_card.json     what was trained, on what, how; written last, with the model file's SHA-256

The card's presence says the folder is whole: it is written after every other file, and it records
``model_sha256``, so a model file from another (or an interrupted) run is refused on loading. Two kinds
of model, each with its format marker in both files:

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
from typing import TYPE_CHECKING, Any

import lgerisk
from lgerisk.cards import ENCODER_FORMAT, RISK_MODEL_FORMAT, EncoderCard, RiskModelCard
from lgerisk.errors import InputError, brief
from lgerisk.io.atomic import write_json, write_torch

if TYPE_CHECKING:
    from lgerisk.models.contrastive import ContrastiveModel
    from lgerisk.models.survival import SurvivalModel
    from lgerisk.models.tabular import TabularScaling

__all__ = [
    "EncoderCard",
    "RiskModelCard",
    "CARD_FILE",
    "CHECKPOINT",
    "ENCODER_FORMAT",
    "METRICS_FILE",
    "MODEL_FILE",
    "RISK_MODEL_FORMAT",
    "card_format",
    "file_sha256",
    "is_whole_run",
    "load_encoder",
    "load_risk_model",
    "read_card",
    "save_encoder",
    "save_risk_model",
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
_ENCODER_PARTS = ("image_encoder", "radiomics_encoder", "image_projection", "radiomics_projection")


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
        "lgerisk": lgerisk.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "simpleitk": str(SimpleITK.Version.VersionString()),  # type: ignore[no-untyped-call]
    }
    for name in ("radiomics", "torchio"):
        module = sys.modules.get(name)
        if module is not None:
            found[name] = getattr(module, "__version__", "?")
    return found


def is_whole_run(run: str | os.PathLike[str]) -> bool:
    """Whether ``run`` holds a finished run: its model file and its card (written last)."""
    return (Path(run) / MODEL_FILE).is_file() and (Path(run) / CARD_FILE).is_file()


def read_card(run: str | os.PathLike[str]) -> dict[str, Any]:
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


def write_card(run: str | os.PathLike[str], card: EncoderCard | RiskModelCard | dict[str, Any]) -> dict[str, Any]:
    """Write ``card`` with the run's ``model_sha256`` (after the format marker), atomically; call it last:
    the card's presence says the run folder is whole. Returns the card as written (its JSON layout)."""
    run = Path(run)
    card = dict(card) if isinstance(card, dict) else card.to_dict()
    marker = card.pop("format", None)
    card.pop("model_sha256", None)
    written = {
        **({"format": marker} if marker is not None else {}),
        "model_sha256": file_sha256(run / MODEL_FILE),
        **card,
    }
    write_json(run / CARD_FILE, written)
    return written


def _save_weights(run: Path, state: dict[str, Any]) -> None:
    run.mkdir(parents=True, exist_ok=True)
    write_torch(run / MODEL_FILE, state)  # a file object: the archive's inner name does not depend on the temp name


def _load_weights(run: Path, expected: str, device: str, what: str, hints: dict[str, str]) -> dict[str, Any]:
    """The state of ``run``'s model file (weights_only), refused unless of format ``expected``."""
    import torch

    try:
        state = torch.load(run / MODEL_FILE, map_location=device, weights_only=True)
    except Exception as exc:
        raise InputError(f"{run / MODEL_FILE}: not a loadable lgerisk model ({brief(exc)}).") from exc
    found = state.get("format") if isinstance(state, dict) else None
    if found != expected:
        raise InputError(f"{run / MODEL_FILE}: not {what}{hints.get(str(found), '')}.")
    return dict(state)


def _check_card(run: Path, card: dict[str, Any], expected: str, required: bool = False) -> None:
    """The card is of ``expected``'s format and belongs to this model file. Cards from before format markers
    and hashes pass unless ``required`` (risk models have always carried both)."""
    marker = card.get("format")
    if (marker is None and required) or (marker is not None and marker != expected):
        made = str(card.get("created_by", "")).split(" ")[1:2]
        raise InputError(
            f"{run / CARD_FILE}: model card of another format ({marker!r}, lgerisk "
            f"{made[0] if made else '?'}); retrain with this version."
        )
    recorded = card.get("model_sha256")
    if (recorded is None and required) or (recorded is not None and recorded != file_sha256(run / MODEL_FILE)):
        raise InputError(
            f"{run}: {MODEL_FILE} and {CARD_FILE} do not belong together (an interrupted or mixed "
            "run); train the model again."
        )


def save_encoder(run: str | os.PathLike[str], model: ContrastiveModel) -> None:
    """Write a pretrained ``ContrastiveModel``'s weights and config to ``run/model.pt`` (atomically; the
    card follows with :func:`write_card`)."""
    state: dict[str, Any] = {"format": ENCODER_FORMAT, "config": json.dumps(model.config.to_dict())}
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
    state = _load_weights(run, ENCODER_FORMAT, device, "an lgerisk pretraining model", hint)
    card = read_card(run)
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
    state = {
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
    state = _load_weights(run, RISK_MODEL_FORMAT, device, "an lgerisk risk model", hint)
    card = read_card(run)
    try:
        model = SurvivalModel(SurvivalModelConfig.from_dict(json.loads(state["config"])))
        model.load_state_dict(state["model"])
        scaling = TabularScaling.from_dict(json.loads(state["tabular"]))
    except (ValueError, KeyError, RuntimeError, TypeError) as exc:
        raise InputError(f"{run}: risk model files do not fit together ({brief(exc)}).") from exc
    _check_card(run, card, RISK_MODEL_FORMAT, required=True)
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
    return _typed(run, RiskModelCard, card)  # type: ignore[no-any-return]


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


def _typed(run: Path, kind: Any, card: dict[str, Any]) -> Any:
    """``card`` as the dataclass ``kind`` (a card missing what this version needs -> one sentence naming it)."""
    try:
        return kind.from_dict(card)
    except InputError as exc:
        raise InputError(f"{run / CARD_FILE}: {exc}") from exc
    except (TypeError, ValueError, KeyError) as exc:
        raise InputError(f"{run / CARD_FILE}: not a readable model card ({brief(exc)}).") from exc
