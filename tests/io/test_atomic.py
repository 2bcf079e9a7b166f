"""Atomic writes (lgerisk/io/atomic.py): a full disk, a short write or a failed flush leaves nothing under the
output's name, and is one sentence naming the output with exit code 74 (2 for a folder one may not write)."""

from __future__ import annotations

import errno
import os
import pickle
import tempfile
from pathlib import Path
from stat import S_ISDIR

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import torch

from lgerisk.errors import OutputError
from lgerisk.io.atomic import atomic_path, write_csv, write_image, write_text, write_torch
from tests.helpers import assert_one_sentence

FULL = "No space left on device"


def full_disk() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def image() -> sitk.Image:
    return sitk.GetImageFromArray(np.arange(4 * 16 * 16, dtype=np.float32).reshape(4, 16, 16))


def half_then_full(path: Path) -> None:
    """What a writer does on a full disk: part of the file, then the error."""
    Path(path).write_bytes(b"x" * 100)
    raise full_disk()


def _text(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Path, "write_text", lambda self, *a, **k: half_then_full(self))
    write_text(out / "report.html", "<html></html>")


def _csv(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pd.DataFrame, "to_csv", lambda self, path, **k: half_then_full(path))
    write_csv(out / "cases.csv", pd.DataFrame({"a": [1]}))


def _image(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sitk, "WriteImage", lambda img, path, **k: half_then_full(Path(path)))
    write_image(out / "image.nii.gz", image())


def _torch(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def save(obj: object, handle: object) -> None:  # torch turns the OSError of a write into a RuntimeError
        handle.write(b"PK partial")  # type: ignore[attr-defined]
        try:
            raise full_disk()
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598") from None

    monkeypatch.setattr(torch, "save", save)
    write_torch(out / "model.pt", {"w": torch.zeros(2)})


WRITERS = {"report.html": _text, "cases.csv": _csv, "image.nii.gz": _image, "model.pt": _torch}


@pytest.mark.parametrize("name", list(WRITERS))
def test_a_full_disk_mid_write_leaves_nothing_and_names_the_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    out = tmp_path / "case"
    with monkeypatch.context() as patched, pytest.raises(OutputError) as caught:
        WRITERS[name](out, patched)
    final = out / name
    assert caught.value.exit_code == 74 and caught.value.errno == errno.ENOSPC and caught.value.path == str(final)
    assert str(caught.value) == f"{final}: could not be written ({FULL}); nothing was written under that name."
    assert isinstance(caught.value, OSError)  # code that catches OSError still does
    assert list(out.iterdir()) == []  # neither the output nor its temporary file


@pytest.mark.parametrize("name", list(WRITERS))
def test_a_rerun_after_a_full_disk_writes_the_whole_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    out = tmp_path / "case"
    with monkeypatch.context() as patched, pytest.raises(OutputError):
        WRITERS[name](out, patched)
    {
        "report.html": lambda: write_text(out / name, "<html></html>"),
        "cases.csv": lambda: write_csv(out / name, pd.DataFrame({"a": [1]})),
        "image.nii.gz": lambda: write_image(out / name, image()),
        "model.pt": lambda: write_torch(out / name, {"w": torch.ones(2)}),
    }[name]()
    assert [p.name for p in out.iterdir()] == [name]


def test_the_cli_exits_74_naming_the_output_when_the_disk_is_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli
) -> None:
    """SimpleITK writing a cut gzip stream without raising (as on a full disk) stops ``synth`` with one
    sentence naming the image, exit code 74, and no file under that name."""
    real = sitk.WriteImage

    def cut(img: sitk.Image, path: str, useCompression: bool = False) -> None:  # noqa: N803 - SimpleITK's name
        real(img, path, useCompression=useCompression)
        data = Path(path).read_bytes()
        Path(path).write_bytes(data[: len(data) // 2])

    monkeypatch.setattr(sitk, "WriteImage", cut)
    out = tmp_path / "synth"
    result = cli("synth", str(out), "--cases", "1")
    first = out / "images" / "synth-0000.nii.gz"
    assert result.exit_code == 74, result.output
    assert_one_sentence(result.output, "error:", (str(first), "could not be written"))
    assert not first.exists() and [p.name for p in (out / "images").iterdir()] == []


@pytest.mark.parametrize(
    ("name", "damage", "reason"),
    [
        ("image.nii.gz", lambda data: data[: len(data) // 2], "compressed stream ends early"),
        ("mask.nii.gz", lambda data: b"", "SimpleITK wrote only 0 of 4096 bytes"),  # the empty mask.nii.gz
        ("image.nii.gz", lambda data: data[:-8] + bytes(8), "compressed stream ends early"),  # a wrong CRC
        ("image.nii", lambda data: data[:1000], "SimpleITK wrote only 1000 of 4096 bytes"),
        ("image.nii", lambda data: b"", "SimpleITK wrote only 0 of 4096 bytes"),
        ("image.nrrd", lambda data: b"", "SimpleITK wrote only 0 of 1 bytes"),
    ],
)
def test_a_short_image_write_that_simpleitk_does_not_report_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, damage: object, reason: str
) -> None:
    """On a full disk SimpleITK prints "wrote only 0 of N bytes" and returns: the file is checked."""
    real = sitk.WriteImage

    def short(img: sitk.Image, path: str, useCompression: bool = False) -> None:  # noqa: N803
        real(img, path, useCompression=useCompression)
        Path(path).write_bytes(damage(Path(path).read_bytes()))  # type: ignore[operator]

    with monkeypatch.context() as patched:
        patched.setattr(sitk, "WriteImage", short)
        with pytest.raises(OutputError, match=reason) as caught:
            write_image(tmp_path / name, image())
    assert caught.value.exit_code == 74 and str(caught.value).startswith(f"{tmp_path / name}: could not be written")
    assert list(tmp_path.iterdir()) == []
    write_image(tmp_path / name, image())  # a whole file passes the check
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / name))).ravel(), range(1024))


def test_the_file_is_flushed_to_disk_before_it_is_moved_and_the_folder_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, int, bool]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        stat = os.fstat(fd)
        events.append(("fsync", stat.st_ino, S_ISDIR(stat.st_mode)))
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        events.append(("replace", os.stat(src).st_ino, False))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    write_text(tmp_path / "out" / "qc.json", "{}\n")
    inode = (tmp_path / "out" / "qc.json").stat().st_ino
    folder = (tmp_path / "out").stat().st_ino
    assert events == [("fsync", inode, False), ("replace", inode, False), ("fsync", folder, True)]


def test_a_failed_flush_is_a_failed_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file system that delays allocation reports a full disk (or an I/O error) only at ``fsync``."""

    def fsync(fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OutputError, match=r"qc\.json: could not be written \(Input/output error\)") as caught:
        write_text(tmp_path / "qc.json", "{}\n")
    assert caught.value.exit_code == 74 and list(tmp_path.iterdir()) == []


def test_an_older_whole_file_is_kept_when_its_rewrite_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_text(tmp_path / "cases.csv", "case_id\na\n")
    monkeypatch.setattr(pd.DataFrame, "to_csv", lambda self, path, **k: half_then_full(path))
    with pytest.raises(OutputError, match="nothing was written under that name"):
        write_csv(tmp_path / "cases.csv", pd.DataFrame({"case_id": ["a", "b"]}))
    assert (tmp_path / "cases.csv").read_text() == "case_id\na\n" and len(list(tmp_path.iterdir())) == 1


def test_a_folder_one_may_not_write_is_a_setting_and_an_input_error_stays_the_inputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No permission for the output: exit code 2, naming the output (not the temporary file); a permission
    error about another file (an input read while writing) is left as it is."""

    def refuse(suffix: str = "", prefix: str = "", dir: str = "", **_: object) -> tuple[int, str]:  # noqa: A002
        raise PermissionError(errno.EACCES, "Permission denied", os.path.join(dir, f"{prefix}k2j4h{suffix}"))

    with monkeypatch.context() as patched:
        patched.setattr(tempfile, "mkstemp", refuse)
        with pytest.raises(OutputError) as caught:
            write_text(tmp_path / "qc.json", "{}")
    assert caught.value.exit_code == 2 and "k2j4h" not in str(caught.value)
    assert str(caught.value).startswith(f"{tmp_path / 'qc.json'}: could not be written (Permission denied)")

    source = tmp_path / "input.nii.gz"
    with pytest.raises(PermissionError) as other, atomic_path(tmp_path / "copy.nii.gz"):
        raise PermissionError(errno.EACCES, "Permission denied", str(source))
    assert type(other.value) is PermissionError and other.value.filename == str(source)
    assert list(tmp_path.iterdir()) == []


def test_an_output_error_crosses_process_boundaries_whole() -> None:
    """Batches pickle a worker's errors: the errno, the path and the exit code come back."""
    for error, code in ((errno.ENOSPC, 74), (errno.EROFS, 2)):
        back = pickle.loads(pickle.dumps(OutputError.naming("out/a.nii.gz", error)))
        assert (type(back), back.errno, back.path, back.exit_code) == (OutputError, error, "out/a.nii.gz", code)
        assert (
            str(back)
            == f"out/a.nii.gz: could not be written ({os.strerror(error)}); nothing was written under that name."
        )
