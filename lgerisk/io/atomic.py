"""Atomic writes: a file appears whole under its final name, or not at all.

Every writer goes to a temporary file in the destination folder and ``os.replace``-s it,
so a killed process never leaves a half-written output that a later run would trust. The
temporary files a process has open are listed in ``IN_FLIGHT`` so that a signal handler can
remove them before the process exits (``remove_in_flight``). A failure to create or move the
temporary file is reported under the output's own name, never the temporary one's.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import SimpleITK as sitk

IN_FLIGHT: set[str] = set()
"""Temporary files this process is writing now (removed by ``remove_in_flight`` on a signal)."""


def _suffix(path: Path) -> str:
    """Full suffix of ``path`` (``.nii.gz`` rather than ``.gz``) so writers pick the format."""
    name = path.name
    for double in (".nii.gz", ".tar.gz"):
        if name.endswith(double):
            return double
    return path.suffix


def _umask() -> int:
    """The process's umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it into place atomically.

    An ``OSError`` while creating or moving the temporary file (a read-only folder, a full disk, a
    folder where the file should be) names ``path``, the file the user asked for.

    Example:
        >>> with atomic_path("out/table.csv") as tmp:   # doctest: +SKIP
        ...     frame.to_csv(tmp)
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=f".tmp{_suffix(final)}", dir=final.parent)
    except OSError as exc:
        raise _naming(exc, final) from exc
    os.close(fd)
    IN_FLIGHT.add(tmp_name)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(tmp, final)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if tmp_name in (exc.filename, exc.filename2):
            raise _naming(exc, final) from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        IN_FLIGHT.discard(tmp_name)


def _naming(exc: OSError, final: Path) -> OSError:
    """``exc`` re-made to name ``final`` (the output) instead of the temporary file beside it."""
    if exc.errno is None:
        return OSError(f"{final}: {exc}")
    return OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(final))


def remove_in_flight() -> None:
    """Delete the temporary files this process is writing now (called by signal handlers before exit)."""
    for name in list(IN_FLIGHT):
        try:
            os.unlink(name)
        except OSError:
            pass
    IN_FLIGHT.clear()


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], data: Any, sort_keys: bool = True) -> None:
    """Write ``data`` as indented JSON atomically (keys sorted unless ``sort_keys=False``; no NaN)."""
    write_text(path, json.dumps(data, indent=2, sort_keys=sort_keys, allow_nan=False) + "\n")


def write_csv(path: str | os.PathLike[str], frame: pd.DataFrame) -> None:
    """Write a DataFrame as CSV (no index) atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_image(path: str | os.PathLike[str], image: sitk.Image, compress: bool = True) -> None:
    """Write a SimpleITK image atomically; the format follows the suffix of ``path``."""
    import SimpleITK as sitk

    with atomic_path(path) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=compress)
