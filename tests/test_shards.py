"""SLURM-array style runs: 8 shards of preprocess, extract-radiomics and predict writing into the same outputs
give tables identical to one run (issue 14, item 5)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import SAMPLE_DATA

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py

SHARDS = 8


def _manifest(folder: Path, n: int = 16) -> Path:
    cases = pd.read_csv(SAMPLE_DATA / "outcomes.csv")["case_id"].head(n)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "cohort.csv"
    pd.DataFrame(
        {
            "case_id": cases,
            "image": [str(SAMPLE_DATA / "images" / f"{c}.nii.gz") for c in cases],
            "mask": [str(SAMPLE_DATA / "masks" / f"{c}.nii.gz") for c in cases],
        }
    ).to_csv(manifest, index=False)
    return manifest


def _table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"case_id": str}, float_precision="round_trip")


def test_eight_shards_give_the_single_run_tables(runs, tmp_path: Path, cli) -> None:
    manifest = _manifest(tmp_path / "cohort")
    assert cli("preprocess", "--data", manifest, "--out", tmp_path / "one" / "prep", "--quiet").exit_code == 0
    for index in range(1, SHARDS + 1):
        result = cli(
            "preprocess",
            "--data",
            manifest,
            "--out",
            tmp_path / "sharded" / "prep",
            "--shard",
            f"{index}/{SHARDS}",
            "--quiet",
        )
        assert result.exit_code == 0, result.output
    one, sharded = _table(tmp_path / "one" / "prep" / "cases.csv"), _table(tmp_path / "sharded" / "prep" / "cases.csv")
    assert len(one) == 16
    # the tables name their own output folders; everything else is the same, row for row
    paths = [c for c in one.columns if one[c].astype(str).str.contains(str(tmp_path / "one")).any()]
    assert {"case_id", "scar_percent", "greyzone_percent", "myocardium_mass_g"} <= set(one.columns) - set(paths)
    pd.testing.assert_frame_equal(one.drop(columns=paths), sharded.drop(columns=paths))

    for name in ("one", "sharded"):
        shards = [None] if name == "one" else [f"{i}/{SHARDS}" for i in range(1, SHARDS + 1)]
        for shard in shards:
            extra = [] if shard is None else ["--shard", shard]
            result = cli(
                "extract-radiomics",
                "--data",
                tmp_path / name / "prep",
                "--out",
                tmp_path / name / "features.csv",
                "--quiet",
                *extra,
            )
            assert result.exit_code == 0, result.output
            result = cli(
                "predict",
                "--data",
                manifest,
                "--model",
                runs["main"],
                "--out",
                tmp_path / name / "predictions.csv",
                "--quiet",
                *extra,
            )
            assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(
        _table(tmp_path / "one" / "features.csv"), _table(tmp_path / "sharded" / "features.csv")
    )
    predictions = _table(tmp_path / "one" / "predictions.csv")
    assert len(predictions) == 16 and predictions["risk_score"].notna().all()
    pd.testing.assert_frame_equal(predictions, _table(tmp_path / "sharded" / "predictions.csv"))
