"""Names a package imports on first use (PEP 562), so that importing it stays cheap.

Example:
    >>> namespace: dict = {}
    >>> getter = lazy_attributes("demo", {"sqrt": "math"}, namespace)
    >>> getter("sqrt")(4.0), "sqrt" in namespace
    (2.0, True)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_attributes"]


# the getter's result is left untyped: a module's ``__getattr__`` answers for names of every type (a package
# names their real types under ``TYPE_CHECKING``)
def lazy_attributes(package: str, table: Mapping[str, str], namespace: dict[str, object]) -> Callable[[str], Any]:
    """A module ``__getattr__`` importing ``table[name]`` (a module path) on first use of ``name`` and
    keeping the value in ``namespace`` (the package's ``globals()``), so the import happens once."""

    def __getattr__(name: str) -> object:
        if name in table:
            value = getattr(importlib.import_module(table[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
