"""One case id, two scans (two manifests whose shards write into one folder): the scan preprocessed first is
kept and the other fails as its case, naming both; never replaced silently."""

from __future__ import annotations

import shutil
from pathlib import Path

from lgerisk.batch import Shard
from lgerisk.preprocess.config import PreprocessConfig
from lgerisk.preprocess.run import preprocess_cohort
from tests.helpers import phantom_arrays, write_volume

CONFIG = PreprocessConfig(labels="emidec")


def _manifest(folder: Path, ids: list[str], seeds: list[int]) -> Path:
    rows = ["case_id,image,mask"]
    for case_id, seed in zip(ids, seeds):
        image, labels = phantom_arrays(seed=seed)
        write_volume(folder / "images" / f"{case_id}.nii.gz", image)
        write_volume(folder / "masks" / f"{case_id}.nii.gz", labels)
        rows.append(f"{case_id},images/{case_id}.nii.gz,masks/{case_id}.nii.gz")
    (folder / "cohort.csv").write_text("\n".join(rows) + "\n")
    return folder / "cohort.csv"


def test_the_same_id_from_another_manifest_fails_naming_both_scans(tmp_path: Path) -> None:
    first = _manifest(tmp_path / "site_a", ["P01", "P02"], [0, 1])
    second = _manifest(tmp_path / "site_b", ["P03", "P01"], [2, 3])  # another scan called P01
    out = tmp_path / "prep"
    report, _ = preprocess_cohort(first, out, CONFIG, shard=Shard(1, 2))  # P01 of site A
    assert report.done == ["P01"]
    kept = (out / "cases" / "P01" / "qc.json").read_bytes()

    report, _ = preprocess_cohort(second, out, CONFIG, shard=Shard(2, 2))  # P01 of site B
    assert report.done == [] and list(report.failed) == ["P01"]
    image_a, image_b = tmp_path / "site_a" / "images" / "P01.nii.gz", tmp_path / "site_b" / "images" / "P01.nii.gz"
    assert report.failed["P01"] == (
        f"{image_b}: case id 'P01' is already preprocessed in {out} from another scan, {image_a}; give one of them "
        f"another id, preprocess it into another folder, or remove {out / 'cases' / 'P01'} to replace it."
    )
    assert (out / "cases" / "P01" / "qc.json").read_bytes() == kept

    moved = tmp_path / "moved"  # the same scan at another path is the same case: nothing to redo or refuse
    shutil.copytree(tmp_path / "site_a", moved)
    report, table = preprocess_cohort(moved / "cohort.csv", out, CONFIG, shard=Shard(1, 2))
    assert report.skipped == ["P01"] and not report.failed and list(table["case_id"]) == ["P01"]
