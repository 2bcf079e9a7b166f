"""Type aliases shared by lgerisk's modules (like torchio's ``TypePath``).

``JSONValue`` is what :func:`json.loads` can return; a record read from disk is narrowed from it once, where it
is read, and a record written to disk is built as a ``JSONDict``.

>>> import json
>>> data: JSONDict = json.loads('{"a": [1, 2.5, null]}')
>>> data["a"]
[1, 2.5, None]
"""

from __future__ import annotations

import os
from typing import TypeAlias, cast

__all__ = ["JSONDict", "JSONScalar", "JSONValue", "TypePath", "json_float", "json_list"]

TypePath: TypeAlias = str | os.PathLike[str]
"""A file or folder named by a string or a path object."""
JSONScalar: TypeAlias = str | int | float | bool | None
JSONValue: TypeAlias = JSONScalar | list["JSONValue"] | dict[str, "JSONValue"]
JSONDict: TypeAlias = dict[str, JSONValue]


def json_float(value: JSONValue) -> float:
    """``float(value)`` of a JSON number (or a numeric string, as :func:`float` reads it); a list, dict or
    ``None`` raises ``TypeError`` as :func:`float` does.

    >>> json_float(3), json_float("2.5")
    (3.0, 2.5)
    """
    return float(cast("float | str", value))


def json_list(value: JSONValue) -> list[JSONValue]:
    """A JSON list; ``None`` (a missing or empty entry) is an empty one.

    >>> json_list(None), json_list(["a"])
    ([], ['a'])
    """
    return cast("list[JSONValue]", value or [])
