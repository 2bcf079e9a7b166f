"""Atomic writes: a file appears whole under its final name, or not at all.

Every writer goes to a temporary file in the destination folder and ``os.replace``-s it,
so a killed process never leaves a half-written output that a later run would trust. The
temporary files a process has open are listed in ``IN_FLIGHT`` so that a signal handler can
remove them before the process exits (``remove_in_flight``). The temporary file is flushed to disk
(``fsync``) before it is moved, and the folder after (best effort), so a crash just after a write does not
leave an empty or partial file under the final name either.

An ``OSError`` while writing, flushing or moving (a full disk, a quota, an I/O error, no permission, a
read-only file system) becomes an :class:`~lgerisk.errors.OutputError` naming the output — never the
temporary file — with nothing written under the output's name, so a rerun redoes it. ``write_image`` also
checks what SimpleITK wrote: on a full disk it reports a short write on stderr and raises nothing.
"""

from __future__ import annotations

import errno
import gzip
import json
import os
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from lgerisk.errors import OutputError

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
    """Yield a temporary path beside ``path``; on success flush it to disk and move it into place atomically.

    An ``OSError`` while creating, writing, flushing or moving the temporary file is reported under
    ``path``, the file the user asked for: an :class:`~lgerisk.errors.OutputError` for a full disk, a
    quota, an I/O error, no permission or a read-only file system (nothing is written under ``path``), else
    the ``OSError`` re-made to name ``path`` (a folder where the file should be).

    Example:
        >>> with atomic_path("out/table.csv") as tmp:   # doctest: +SKIP
        ...     frame.to_csv(tmp)
    """
    final = Path(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a full disk, no permission: the output's error; a file in the way: the folder's
        raise (OutputError.naming(final, exc.errno) if exc.errno in OUTPUT_ERRNOS else exc) from exc
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
            _fsync(tmp)
        os.replace(tmp, final)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _naming(exc, final, (tmp_name, str(final))) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        IN_FLIGHT.discard(tmp_name)
    _fsync_folder(final.parent)


OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM})
"""The errors of writing itself (storage, permission), reported as an ``OutputError``."""


def _naming(exc: OSError, final: Path, ours: tuple[str, ...] | None = None) -> OSError:
    """``exc`` re-made to name ``final`` (the output) instead of the temporary file beside it: an
    ``OutputError`` for the errors of writing itself (``OUTPUT_ERRNOS``), an ``OSError`` naming ``final``
    for others. ``ours``: the files that are the output (``None``: any); an error about another file (an
    input the writer read) is returned as it is."""
    if isinstance(exc, OutputError):
        return exc  # already names its output (a nested write)
    names = {os.fspath(n) for n in (exc.filename, exc.filename2) if n is not None}
    about_ours = ours is None or names <= set(ours)
    if exc.errno in OUTPUT_ERRNOS and about_ours:
        return OutputError.naming(final, exc.errno)
    if ours is not None and (not names or not about_ours):
        return exc
    if exc.errno is None:
        return OSError(f"{final}: {exc}")
    return OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(final))


_CANNOT_SYNC = frozenset({errno.EINVAL, errno.EBADF, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS})
"""What ``fsync`` answers on a file system (or platform) that cannot sync: the write stands as it is."""


def _fsync(path: Path) -> None:
    """Flush ``path``'s data to the disk (a full disk may only show here, where writes were delayed)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _CANNOT_SYNC:
            raise
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """Flush ``folder``'s entries (the move), where the platform allows it; never fails."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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


def write_json(path: str | os.PathLike[str], data: object, sort_keys: bool = True) -> None:
    """Write ``data`` as indented JSON atomically (keys sorted unless ``sort_keys=False``; no NaN)."""
    write_text(path, json.dumps(data, indent=2, sort_keys=sort_keys, allow_nan=False) + "\n")


def write_csv(path: str | os.PathLike[str], frame: pd.DataFrame) -> None:
    """Write a DataFrame as CSV (no index) atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_image(path: str | os.PathLike[str], image: sitk.Image, compress: bool = True) -> None:
    """Write a SimpleITK image atomically; the format follows the suffix of ``path``.

    What SimpleITK wrote is checked before it is moved into place (it reports a short write on stderr and
    raises nothing): the file is not empty, a ``.gz`` file's stream is whole, and a NIfTI file holds every
    voxel's bytes; a short file is an :class:`~lgerisk.errors.OutputError` (exit code 74) naming ``path``."""
    import SimpleITK as sitk

    with atomic_path(path) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=compress)
        nifti = _suffix(Path(path)) in (".nii", ".nii.gz")
        voxel_bytes = image.GetNumberOfPixels() * image.GetNumberOfComponentsPerPixel()
        check_written(path, tmp, voxel_bytes * image.GetSizeOfPixelComponent() if nifti else 1, "SimpleITK")


def check_written(path: str | os.PathLike[str], written: Path, least: int = 1, writer: str = "the writer") -> None:
    """Refuse a file that came out short: fewer than ``least`` bytes (after decompression, for a ``.gz``
    file), or a ``.gz`` stream cut short; an :class:`~lgerisk.errors.OutputError` naming ``path``, the
    output ``written`` is the temporary file of (for writers that do not raise when the disk is full)."""
    if written.name.endswith(".gz"):
        size, whole = _gunzipped_size(written)
        if not whole:
            raise OutputError.naming(path, errno.EIO, f"{writer}'s compressed stream ends early: a full disk?")
    else:
        size = written.stat().st_size
    if size < least:
        raise OutputError.naming(path, errno.EIO, f"{writer} wrote only {size} of {least} bytes: a full disk?")


def _gunzipped_size(path: Path) -> tuple[int, bool]:
    """(bytes the gzip file ``path`` decompresses to, whether its stream is whole: complete, CRC right)."""
    size = 0
    try:
        with gzip.open(path, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                size += len(block)
    except (EOFError, gzip.BadGzipFile, zlib.error):
        return size, False
    return size, True


def write_torch(path: str | os.PathLike[str], state: object) -> None:
    """``torch.save(state)`` to ``path`` atomically, through a file object: the archive's inner name does not
    depend on the temporary file's, and a full disk is an :class:`~lgerisk.errors.OutputError` naming
    ``path`` (torch turns the ``OSError`` of a failed write into a ``RuntimeError``; it is turned back)."""
    import torch

    with atomic_path(path) as tmp:
        try:
            with open(tmp, "wb") as handle:
                torch.save(state, handle)
        except RuntimeError as exc:
            failed = exc.__context__
            if isinstance(failed, OSError) and failed.errno is not None:
                raise OSError(failed.errno, failed.strerror or os.strerror(failed.errno)) from exc
            raise
