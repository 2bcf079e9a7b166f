"""A disk that fills while preprocess writes a case (issue 25): no cut image or empty mask is left under its final
name, the batch stops with exit 74 naming the file that could not be written, and a rerun finishes the case."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest
import SimpleITK as sitk

from lgerisk.io.layout import case_dir
from tests.helpers import make_cohort


def test_a_mask_cut_short_by_a_full_disk_fails_its_case_and_a_rerun_finishes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli
) -> None:
    data = make_cohort(tmp_path / "cohort", n=2)
    out = tmp_path / "prep"
    real = sitk.WriteImage

    def full_disk_at_case1_mask(image: sitk.Image, path: str, useCompression: bool = False) -> None:  # noqa: N803
        real(image, path, useCompression=useCompression)
        if Path(path).name.startswith(".mask.nii.gz.") and "case1" in str(path):
            Path(path).write_bytes(b"")  # SimpleITK on a full disk: "wrote only 0 of N bytes", no exception

    with monkeypatch.context() as patched:
        patched.setattr(sitk, "WriteImage", full_disk_at_case1_mask)
        first = cli("preprocess", "--data", data, "--out", out)
    assert first.exit_code == 74, first.output  # the storage failed, not the input: the batch stops there
    final = case_dir(out, "case1") / "mask.nii.gz"
    squeezed = "".join(first.output.split())  # the console folds a long path over lines
    assert not final.exists() and not (case_dir(out, "case1") / "qc.json").exists()
    assert f"{final}:couldnotbewritten(SimpleITKwroteonly0of" in squeezed
    assert "bytes:afulldisk?);nothingwaswrittenunderthatname." in squeezed

    again = cli("preprocess", "--data", data, "--out", out)
    assert again.exit_code == 0, again.output
    assert "1 already done" in again.output or "already done: 1" in again.output
    for path in out.rglob("*.nii.gz"):
        assert gzip.decompress(path.read_bytes()), path  # whole gzip streams only
    assert sorted(pd.read_csv(out / "cases.csv")["case_id"]) == ["case0", "case1"]
