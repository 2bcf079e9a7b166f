"""Configuration helpers: every setting of lgerisk is a frozen dataclass that round-trips to JSON."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, cast

from lgerisk.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from typing import Self  # Python 3.11+: for the type checker only (lgerisk runs on 3.10)

    from lgerisk.types import JSONDict


def checked_fields(cls: type, data: object, what: str) -> dict[str, Any]:  # values: cls's keywords, it checks them
    """The ``from_dict`` input as a plain dict, refusing a non-mapping or unknown keys.

    Example:
        >>> from lgerisk.models.encoder import EncoderConfig
        >>> checked_fields(EncoderConfig, {"width": 8}, "encoder settings")
        {'width': 8}
    """
    if not isinstance(data, dict):
        raise InputError(f"{what} must be a mapping, not a {type(data).__name__}.")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise InputError(
            f"{what} have unknown key(s) {', '.join(sorted(map(str, unknown)))}; known: {', '.join(sorted(names))}."
        )
    return dict(data)


def _named(name: str, value: object, setting: str | None) -> str:
    """How a message names a value: by the setting's keyword (``width=2000``) or by a description."""
    return f"{setting}={value!r}" if setting is not None else f"{name} {value!r}"


def require_int(value: object, name: str, low: int, high: int | None = None, setting: str | None = None) -> None:
    """``InputError`` unless ``value`` is an int (not a bool) in ``[low, high]``; ``setting``: the keyword
    that sets it, which the message names (and the error carries).

    Example:
        >>> require_int(16, "width", 1)
        >>> require_int(0, "encoder width", 1, setting="width")
        Traceback (most recent call last):
        lgerisk.errors.InputError: width=0: must be >= 1.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{_named(name, value, setting)}: must be an integer.", setting=setting)
    if value < low or (high is not None and value > high):
        bound = f"{low}-{high}" if high is not None else f">= {low}"
        raise InputError(f"{_named(name, value, setting)}: must be {bound}.", setting=setting)


def require_fraction(value: object, name: str, *, allow_one: bool, setting: str | None = None) -> None:
    """``InputError`` unless ``value`` is a number in ``[0, 1)`` (``[0, 1]`` with ``allow_one``).

    Example:
        >>> require_fraction(0.1, "dropout", allow_one=False)
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{_named(name, value, setting)}: must be a number.", setting=setting)
    if not (0.0 <= value <= 1.0 if allow_one else 0.0 <= value < 1.0):
        raise InputError(
            f"{_named(name, value, setting)}: must be in [0, {'1]' if allow_one else '1)'}.", setting=setting
        )


class JsonConfig:
    """Mixin for frozen dataclasses: ``to_dict`` (JSON-able) and ``from_dict`` (unknown keys refused).

    Example:
        >>> from lgerisk.preprocess.config import PreprocessConfig
        >>> PreprocessConfig.from_dict(PreprocessConfig(nsd=3).to_dict()) == PreprocessConfig(nsd=3)
        True
    """

    config_name: ClassVar[str] = "settings"

    def to_dict(self) -> JSONDict:
        """Plain JSON-able dict of the settings."""
        return cast("JSONDict", dataclasses.asdict(self))  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Self:
        """Inverse of ``to_dict``; unknown keys are refused with ``InputError``."""
        return cls(**checked_fields(cls, data, cls.config_name))
