"""Model cards as dataclasses: what a run trained, on what data, how, and how well (``model_card.json``).

:class:`EncoderCard` (``lgerisk pretrain``) and :class:`RiskModelCard` (``lgerisk finetune``) are written by
:func:`lgerisk.artifacts.write_card` and read back by :func:`lgerisk.artifacts.load_encoder` and
:func:`lgerisk.artifacts.load_risk_model`. ``from_dict`` checks the format marker and the fields a card must
have, and names what is missing; ``to_dict`` gives the JSON layout (sections the code does not interpret stay
plain dicts: the settings, the model's config, the metrics).

A card is sealed: ``card_sha256`` is the SHA-256 of its own content (:func:`card_digest`: canonical JSON, the
field itself left out), and the content holds ``model_sha256``, the model file's hash. An edit of the card or
of the weights is then seen on loading (:mod:`lgerisk.artifacts` refuses it). The seal shows that a card was
changed after lgerisk wrote it, not who changed it: anyone can seal a card again (:func:`seal_card`, which
tests use to make a card as a run would have written it), so it is no signature.

Example:
    >>> card = RiskModelCard.from_dict(RiskModelCard.example().to_dict())
    >>> card.method, card.synthetic, card.survival.horizons
    ('pretrained probe', True, (1.0, 3.0, 5.0))
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

from lgerisk.errors import InputError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    from lgerisk.types import JSONDict

__all__ = [
    "CARD_DIGEST",
    "CardData",
    "EncoderCard",
    "RiskModelCard",
    "SurvivalSection",
    "card_digest",
    "claimed_version",
    "release",
    "seal_card",
]

ENCODER_FORMAT = "lgerisk-model-1"
RISK_MODEL_FORMAT = "lgerisk-survival-1"
INTENDED_USE = "Research only: not a medical device and not for clinical decisions."
CARD_DIGEST = "card_sha256"
"""The card's field that holds the SHA-256 of the rest of the card (:func:`card_digest`)."""


def card_digest(card: Mapping[str, object]) -> str:
    """SHA-256 of ``card``'s content: its canonical JSON (keys sorted, no spaces, ASCII), ``card_sha256`` left out.

    The content is read as JSON first (tuples as lists, keys as strings), so a card and the same card read
    back from ``model_card.json`` have one digest.

    Example:
        >>> card_digest({"b": [1, 2.5], "a": "x"}) == card_digest({"a": "x", "b": (1, 2.5), CARD_DIGEST: "old"})
        True
    """
    body = json.loads(json.dumps({k: v for k, v in card.items() if k != CARD_DIGEST}, allow_nan=False))
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def seal_card(card: Mapping[str, object]) -> dict[str, object]:
    """``card`` with ``card_sha256`` set to the digest of its content (any earlier one replaced), last.

    Example:
        >>> sealed = seal_card({"method": "radiomics Cox"})
        >>> list(sealed), sealed[CARD_DIGEST] == card_digest({"method": "radiomics Cox"})
        (['method', 'card_sha256'], True)
    """
    body = {k: v for k, v in card.items() if k != CARD_DIGEST}
    return {**body, CARD_DIGEST: card_digest(body)}


def release(version: object) -> tuple[int, ...] | None:
    """The release numbers of a version string (``"0.1.0.dev2"`` -> ``(0, 1, 0)``); ``None`` if it has none.

    Example:
        >>> release("9.9.0") > release("0.1"), release("unknown")
        (True, None)
    """
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", version) if isinstance(version, str) else None
    if match is None:
        return None
    numbers = [int(part) for part in match.group(1).split(".")]
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()  # 0.1.0 == 0.1
    return tuple(numbers)


def claimed_version(card: Mapping[str, object]) -> str | None:
    """The newest lgerisk version a card says it was written by (``versions.lgerisk``, ``created_by``).

    Example:
        >>> claimed_version({"created_by": "lgerisk 0.1.0 finetune", "versions": {"lgerisk": "9.9.0"}})
        '9.9.0'
    """
    found = []
    versions = card.get("versions")
    if isinstance(versions, Mapping) and release(versions.get("lgerisk")) is not None:
        found.append(str(versions["lgerisk"]))
    words = str(card.get("created_by", "")).split()
    if len(words) >= 2 and words[0] == "lgerisk" and release(words[1]) is not None:
        found.append(words[1])
    return max(found, key=lambda v: release(v) or ()) if found else None


def _fields(cls: type[DataclassInstance], data: Mapping[str, object], what: str) -> dict[str, Any]:
    """``data``'s values for the dataclass ``cls``: a missing required field -> ``InputError`` naming it."""
    # loose values: they go by keyword to ``cls``, whose fields type each one (a dict type cannot say which is which)
    if not isinstance(data, dict):
        raise InputError(f"{what}: not a JSON object.")
    names = {f.name: f for f in dataclasses.fields(cls)}
    required = [
        n for n, f in names.items() if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    missing = [n for n in required if n not in data]
    if missing:
        raise InputError(f"{what}: lacks {', '.join(missing)} (a card of another version? retrain with this one).")
    return {k: v for k, v in data.items() if k in names}


@dataclass(frozen=True)
class CardData:
    """The data a model was trained on: a hash of the cases' inputs, how many, whether synthetic, which ids.

    ``details``: what else the card records about the data (held-out ids, events, left-out cases and why)."""

    hash: str
    cases: int
    synthetic: bool
    train_cases: tuple[str, ...]
    details: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "hash": self.hash,
            "cases": self.cases,
            "synthetic": self.synthetic,
            "train_cases": list(self.train_cases),
            **self.details,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> CardData:
        values = _fields(cls, data, "model card 'data'")
        details = {k: v for k, v in data.items() if k not in values}
        return cls(
            str(values["hash"]),
            int(values["cases"]),
            bool(values["synthetic"]),
            tuple(str(c) for c in values["train_cases"]),
            details,
        )


@dataclass(frozen=True)
class SurvivalSection:
    """What predict needs for survival and risk groups: the Breslow baseline cumulative hazard, the horizons,
    the training cohort's risk tertiles and range."""

    time_unit: str
    horizons: tuple[float, ...]
    baseline_times: tuple[float, ...]
    baseline_cumhaz: tuple[float, ...]
    risk_thresholds: tuple[float, float]
    training_risk_mean: float
    training_risk_sd: float
    training_risk_range: tuple[float, float]

    def to_dict(self) -> dict[str, object]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> SurvivalSection:
        v = _fields(cls, data, "model card 'survival'")
        low, high = _floats(v["training_risk_range"])
        first, second = _floats(v["risk_thresholds"])
        return cls(
            str(v["time_unit"]),
            _floats(v["horizons"]),
            _floats(v["baseline_times"]),
            _floats(v["baseline_cumhaz"]),
            (first, second),
            float(v["training_risk_mean"]),
            float(v["training_risk_sd"]),
            (low, high),
        )


class PreprocessingSection(TypedDict, total=False):
    """A card's ``preprocessing``: the training cohort's ``preprocess.json`` (empty when it had none): the
    settings (``PreprocessConfig.to_dict``), their hash and the lgerisk version that wrote them."""

    settings: JSONDict
    settings_hash: str
    lgerisk_version: str


class PretrainSettings(TypedDict, total=False):
    """An encoder card's ``config`` (``PretrainConfig.to_dict``), of which the settings named here are read
    back (finetune reuses them); cards of earlier versions may lack some."""

    labels: str
    objective: JSONDict
    aux_weight: float


def _floats(values: Iterable[float]) -> tuple[float, ...]:
    return tuple(float(x) for x in values)


def _card_dict(card: EncoderCard | RiskModelCard, nested: tuple[str, ...]) -> dict[str, object]:
    out: dict[str, object] = {}
    for f in dataclasses.fields(card):
        value = getattr(card, f.name)
        if f.name in ("model_sha256", CARD_DIGEST) and value is None:
            continue
        if f.name == "format" and value is None:
            continue
        out[f.name] = value.to_dict() if f.name in nested else value
    return out


@dataclass(frozen=True)
class EncoderCard:
    """The card of a pretrained encoder (``lgerisk pretrain``). Cards from before format markers load with
    ``format`` and ``model_sha256`` None; cards from before seals with ``card_sha256`` None."""

    kind: str
    created_by: str
    data: CardData
    config: PretrainSettings
    model: dict[str, object]
    # left loose: finetune reads it as TensorSpec(**tensor_spec), whose channels are typed a tuple but come as a
    # JSON list
    tensor_spec: dict[str, Any]
    preprocessing: PreprocessingSection
    radiomics: dict[str, object]
    format: str | None = ENCODER_FORMAT
    model_sha256: str | None = None
    card_sha256: str | None = None
    intended_use: str = INTENDED_USE
    parameters: int = 0
    objective: dict[str, object] = field(default_factory=dict)
    training: dict[str, object] = field(default_factory=dict)
    metrics: dict[str, object] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def synthetic(self) -> bool:
        """Whether the encoder was pretrained on synthetic scans."""
        return self.data.synthetic

    def to_dict(self) -> dict[str, object]:
        """The JSON layout of ``model_card.json``."""
        return _card_dict(self, ("data",))

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> EncoderCard:
        """From ``model_card.json``; another format, or a missing field -> ``InputError``."""
        if data.get("format") not in (None, ENCODER_FORMAT):
            raise InputError(f"model card of another format ({data.get('format')!r}); not a pretrained encoder.")
        values = _fields(cls, data, "encoder model card")
        values.setdefault("format", None)  # a card from before format markers
        return cls(**{**values, "data": CardData.from_dict(values["data"])})


@dataclass(frozen=True)
class RiskModelCard:
    """The card of a risk model (``lgerisk finetune``): what predict and explain need (preprocessing, tensor
    spec, tabular inputs, survival, training ranges) and what a reader needs (data, settings, CV metrics)."""

    method: str
    created_by: str
    data: CardData
    config: dict[str, object]
    model: dict[str, object]
    tensor_spec: dict[str, object]
    preprocessing: PreprocessingSection
    survival: SurvivalSection
    format: str = RISK_MODEL_FORMAT
    model_sha256: str | None = None
    card_sha256: str | None = None
    kind: str = "lgerisk survival risk model"
    intended_use: str = INTENDED_USE
    label_fraction_note: str = ""
    labels: str | None = None
    encoder: dict[str, object] = field(default_factory=dict)
    parameters: int = 0
    tabular: dict[str, object] = field(default_factory=dict)
    radiomics: dict[str, object] = field(default_factory=dict)
    training_ranges: dict[str, list[float]] = field(default_factory=dict)
    evaluation: dict[str, object] = field(default_factory=dict)
    concepts: list[dict[str, object]] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def synthetic(self) -> bool:
        """Whether the model was trained on synthetic scans."""
        return self.data.synthetic

    def to_dict(self) -> dict[str, object]:
        """The JSON layout of ``model_card.json``."""
        return _card_dict(self, ("data", "survival"))

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> RiskModelCard:
        """From ``model_card.json``; another format, or a missing field -> ``InputError``."""
        if data.get("format") != RISK_MODEL_FORMAT:
            raise InputError(f"model card of another format ({data.get('format')!r}); not a risk model.")
        values = _fields(cls, data, "risk model card")
        return cls(
            **{
                **values,
                "data": CardData.from_dict(values["data"]),
                "survival": SurvivalSection.from_dict(values["survival"]),
            }
        )

    @classmethod
    def example(cls) -> RiskModelCard:
        """A small, complete card (for examples and tests)."""
        return cls(
            method="pretrained probe",
            created_by="lgerisk 0.1.0 finetune",
            data=CardData("abc", 3, True, ("a", "b", "c")),
            config={},
            model={},
            tensor_spec={},
            preprocessing={},
            survival=SurvivalSection(
                "years", (1.0, 3.0, 5.0), (1.0, 2.0), (0.1, 0.3), (-0.5, 0.5), 0.0, 1.0, (-1.0, 1.0)
            ),
        )
