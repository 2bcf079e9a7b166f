"""extract-radiomics as a batch (resume, shards, errors, CLI) and the stability analysis."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lgerisk.batch import Shard
from lgerisk.preprocess.config import PreprocessConfig
from lgerisk.preprocess.run import preprocess_cohort
from lgerisk.radiomics.run import extract_cohort
from lgerisk.radiomics.stability import icc, perturbed_masks, robust_features, stability_table
from tests.helpers import make_cohort, phantom_arrays, write_volume


def test_icc_matches_shrout_fleiss_example() -> None:
    # Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges; ICC(1,1) = .17, ICC(3,1) = .71
    ratings = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], float)
    icc11, icc31 = icc(ratings)
    assert icc11 == pytest.approx(0.17, abs=0.005)
    assert icc31 == pytest.approx(0.71, abs=0.005)


def test_perturbations_are_in_plane_and_plausible() -> None:
    _, labels = phantom_arrays()
    myocardium = labels >= 2
    masks = perturbed_masks(myocardium, n_random=2, seed=0)
    assert set(masks) == {"original", "eroded", "dilated", "random1", "random2"}
    assert masks["eroded"].sum() < myocardium.sum() < masks["dilated"].sum()
    for name in ("random1", "random2"):
        overlap = 2 * (masks[name] & myocardium).sum() / (masks[name].sum() + myocardium.sum())
        assert 0.7 < overlap < 0.99
    assert not np.array_equal(masks["random1"], masks["random2"])
    # per-slice operations: an empty slice stays empty
    assert not masks["dilated"][myocardium.reshape(len(myocardium), -1).sum(1) == 0].any()


def test_stability_table_flags_robust_features() -> None:
    rng = np.random.default_rng(0)
    rows = {}
    for case in range(10):
        truth = rng.normal(10, 3)
        rows[f"c{case}"] = {
            p: {"scar__stable": truth + rng.normal(0, 0.1), "scar__noisy": rng.normal(10, 3), "scar__status": "ok"}
            for p in ("original", "eroded", "dilated")
        }
    table = stability_table(rows).set_index("feature")
    assert table.loc["scar__stable", "robust"] and table.loc["scar__stable", "excellent"]
    assert not table.loc["scar__noisy", "robust"]
    assert robust_features(table.reset_index()) == ["scar__stable"]


def test_resume_shards_and_stability(tmp_path: Path) -> None:
    data = make_cohort(tmp_path / "cohort", n=4)
    prep = tmp_path / "prep"
    preprocess_cohort(data, prep, PreprocessConfig())
    first, table, stability = extract_cohort(prep, tmp_path / "f.csv", stability=True)
    assert sorted(first.done) == ["case0", "case1", "case2", "case3"]
    frame = pd.read_csv(tmp_path / "f.stability.csv")
    assert len(stability) == len(frame) > 0 and list(stability["feature"]) == list(frame["feature"])
    assert {"feature", "roi", "icc_1_1", "icc_3_1", "n_cases", "robust", "excellent"} <= set(frame.columns)
    assert frame.loc[frame["roi"] == "myocardium", "n_cases"].min() == 4
    again, _, _ = extract_cohort(prep, tmp_path / "f.csv", stability=True)
    assert again.done == [] and len(again.skipped) == 4
    # shards into another table give the same table
    for index in (1, 2):
        extract_cohort(prep, tmp_path / "s.csv", shard=Shard(index, 2))
    whole = pd.read_csv(tmp_path / "f.csv")
    sharded = pd.read_csv(tmp_path / "s.csv")
    pd.testing.assert_frame_equal(whole, sharded)


def test_bad_case_goes_to_errors_table_and_others_finish(cli, tmp_path: Path) -> None:
    data = make_cohort(tmp_path / "cohort", n=3)
    image, labels = phantom_arrays()
    write_volume(data / "images" / "broken.nii.gz", image)
    write_volume(data / "masks" / "broken.nii.gz", np.zeros_like(labels))  # empty mask
    result = cli("extract-radiomics", "--data", data, "--out", tmp_path / "f.csv")
    assert result.exit_code == 1
    errors = pd.read_csv(tmp_path / "f.errors.csv")
    assert list(errors["case_id"]) == ["broken"] and "empty" in errors["error"].item()
    assert list(pd.read_csv(tmp_path / "f.csv")["case_id"]) == ["case0", "case1", "case2"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--rois", "scar,liver"], "unknown ROI"),
        (["--image-types", "gabor"], "unknown image type"),
        (["--params", "{tmp}/missing.yaml"], "does not exist"),
        (["--params", "{tmp}/bad.yaml"], "not a YAML file"),
        (["--params", "{tmp}/rejected.yaml"], "pyradiomics rejects"),
    ],
)
def test_bad_usage_exits_2(cli, tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "bad.yaml").write_text("setting: [\n")
    (tmp_path / "rejected.yaml").write_text("setting:\n  binWidth: wide\n")
    data = make_cohort(tmp_path / "cohort", n=1)
    result = cli(
        "extract-radiomics", "--data", data, "--out", tmp_path / "f.csv", *[a.format(tmp=tmp_path) for a in args]
    )
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "f.csv").exists()


def test_contour_randomisation_keeps_empty_slices_empty_and_differs_by_case() -> None:
    from lgerisk.radiomics.run import case_seed

    _, labels = phantom_arrays()
    scar = labels == 3
    scar[0] = False  # a slice without the ROI
    for seed in range(20):
        assert not perturbed_masks(scar, n_random=1, seed=seed)["random1"][0].any()
    assert case_seed(0, "a") != case_seed(0, "b")
    first = perturbed_masks(scar, 1, case_seed(0, "a"))["random1"]
    second = perturbed_masks(scar, 1, case_seed(0, "b"))["random1"]
    assert not np.array_equal(first, second)


def test_stability_reextracts_when_its_settings_change(tmp_path: Path) -> None:
    data = make_cohort(tmp_path / "cohort", n=3)
    extract_cohort(data, tmp_path / "f.csv", stability=True, n_random=1)
    again, _, _ = extract_cohort(data, tmp_path / "f.csv", stability=True, n_random=1)
    assert again.done == []
    changed, _, _ = extract_cohort(data, tmp_path / "f.csv", stability=True, n_random=2)
    assert len(changed.done) == 3


def test_all_cases_failing_gives_exit_1_with_errors(cli, tmp_path: Path) -> None:
    image, labels = phantom_arrays()
    data = tmp_path / "cohort"
    write_volume(data / "images" / "bad.nii.gz", image)
    write_volume(data / "masks" / "bad.nii.gz", np.zeros_like(labels))
    result = cli("extract-radiomics", "--data", data, "--out", tmp_path / "f.csv")
    assert result.exit_code == 1 and (tmp_path / "f.errors.csv").is_file() and not (tmp_path / "f.csv").exists()


def test_shards_of_a_raw_cohort_preprocess_only_their_cases(tmp_path: Path) -> None:
    data = make_cohort(tmp_path / "cohort", n=4)
    report, _, _ = extract_cohort(data, tmp_path / "s.csv", shard=Shard(1, 2))
    assert sorted(report.done) == ["case0", "case2"]
    assert sorted(p.name for p in (tmp_path / "s.parts" / "preprocessed" / "cases").iterdir()) == ["case0", "case2"]
    extract_cohort(data, tmp_path / "s.csv", shard=Shard(2, 2))
    assert list(pd.read_csv(tmp_path / "s.csv")["case_id"]) == ["case0", "case1", "case2", "case3"]
