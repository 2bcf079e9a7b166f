"""Concept alignment of the risk and the embedding with radiomics features; percentiles; heatmap."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lgerisk.errors import InputError
from lgerisk.evaluation.concepts import (
    case_percentiles,
    concept_alignment,
    correlation_heatmap,
    short_feature_name,
)
from tests.helpers import assert_drawn_png, colour_share


def cohort(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, float]:
    """Features, risk, embedding, and the true correlation of ``scar__original_firstorder_Mean`` with the risk."""
    rng = np.random.default_rng(seed)
    embedding = rng.normal(size=(n, 12))
    risk = embedding[:, 0] - 0.5 * embedding[:, 1] + 0.5 * rng.normal(size=n)
    noise_sd = 0.8
    true_r = float(risk.std() / math.sqrt(risk.std() ** 2 + noise_sd**2))  # corr(risk, risk + noise) in the population
    features = pd.DataFrame(
        {
            "case_id": [f"case{i:03d}" for i in range(n)],
            "myocardium__original_shape_VoxelVolume": rng.normal(100, 10, n),  # independent noise
            "scar__original_firstorder_Mean": risk + noise_sd * rng.normal(size=n),
            "embedding_linear": embedding @ rng.normal(size=12) + 3.0,
            "constant": 1.0,
        }
    )
    return features, risk, embedding, true_r


def test_risk_aligned_feature_ranks_first_with_a_covering_interval():
    features, risk, embedding, true_r = cohort()
    table = concept_alignment(features, risk, embedding, folds=5, seed=0)
    assert table.iloc[0]["feature"] == "scar__original_firstorder_Mean"
    top = table.iloc[0]
    assert top["r_risk"] == pytest.approx(true_r, abs=0.08)
    assert top["r_risk_low"] < true_r < top["r_risk_high"]
    assert top["r_risk_low"] < top["r_risk"] < top["r_risk_high"]
    assert top["p_risk"] < 1e-6 and top["spearman_risk"] > 0.5
    assert top["n"] == len(features) and table.attrs["n_cases"] == len(features)
    assert "constant" not in set(table["feature"]) and "case_id" not in set(table["feature"])
    assert list(table["r_risk"].abs()) == sorted(table["r_risk"].abs(), reverse=True)


def test_embedding_r2_high_for_linear_feature_and_near_zero_for_noise():
    features, risk, embedding, _ = cohort()
    table = concept_alignment(features, risk, embedding).set_index("feature")
    assert table.loc["embedding_linear", "embedding_r2"] > 0.95
    assert table.loc["myocardium__original_shape_VoxelVolume", "embedding_r2"] <= 0.1
    fixed = concept_alignment(features, risk, embedding, alpha=1.0).set_index("feature")
    assert fixed.loc["embedding_linear", "embedding_r2"] > 0.95
    # the same seed gives the same folds
    again = concept_alignment(features, risk, embedding).set_index("feature")
    assert again["embedding_r2"].equals(table["embedding_r2"])


def test_unmeasured_cases_are_left_out_per_feature():
    features, risk, embedding, _ = cohort()
    features.loc[:99, "scar__original_firstorder_Mean"] = np.nan  # scar-free hearts
    table = concept_alignment(features, risk, embedding).set_index("feature")
    assert table.loc["scar__original_firstorder_Mean", "n"] == len(features) - 100
    assert table.loc["myocardium__original_shape_VoxelVolume", "n"] == len(features)
    assert np.isfinite(table.loc["scar__original_firstorder_Mean"].drop("n").astype(float)).all()
    assert "embedding_r2" not in concept_alignment(features, risk).columns


def test_concept_alignment_rejects_mismatched_inputs():
    features, risk, embedding, _ = cohort(n=20)
    with pytest.raises(InputError, match="20 cases"):
        concept_alignment(features, risk[:10])
    with pytest.raises(InputError, match="embedding"):
        concept_alignment(features, risk, embedding[:5])
    with pytest.raises(InputError, match="finite"):
        concept_alignment(features, np.full(20, np.nan))


def test_case_percentiles_on_a_tiny_example():
    reference = pd.DataFrame(
        {
            "case_id": ["a", "b", "c", "d"],
            "scar_percent": [0.0, 10.0, 20.0, 30.0],
            "greyzone_percent": [1.0, np.nan, 1.0, 1.0],
            "unmeasured": [np.nan] * 4,
        }
    )
    case = pd.Series(
        {"case_id": "x", "scar_percent": 25.0, "greyzone_percent": 1.0, "unmeasured": 3.0, "only_in_case": 7.0}
    )
    percentiles = case_percentiles(case, reference)
    assert list(percentiles.index) == ["scar_percent", "greyzone_percent", "unmeasured"]
    assert percentiles["scar_percent"] == pytest.approx(75.0)
    assert percentiles["greyzone_percent"] == pytest.approx(50.0)  # ties count half
    assert math.isnan(percentiles["unmeasured"])
    assert case_percentiles(pd.Series({"scar_percent": 40.0}), reference)["scar_percent"] == 100.0
    assert case_percentiles(pd.Series({"scar_percent": -1.0}), reference)["scar_percent"] == 0.0
    assert math.isnan(case_percentiles(pd.Series({"scar_percent": np.nan}), reference)["scar_percent"])


def test_short_feature_names_are_readable():
    assert short_feature_name("scar__original_glcm_Contrast") == "scar: glcm Contrast"
    assert short_feature_name("greyzone__wavelet-LLH_firstorder_Mean") == "greyzone: wavelet-LLH firstorder Mean"
    assert len(short_feature_name("myocardium__original_" + "x" * 80)) == 40


def test_correlation_heatmap_writes_png(tmp_path: Path, saved_figures: list):
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    features, _, embedding, _ = cohort(n=60)
    path = correlation_heatmap(features, embedding, tmp_path / "heatmap.png", top=3, components=4, synthetic=True)
    assert [p.name for p in tmp_path.iterdir()] == ["heatmap.png"]
    pixels = assert_drawn_png(path, min_size=(400, 200))
    # what it shows: the top 3 features (the constant one left out) by 4 components, each cell's r written
    # in it and coloured on the fixed [-1, 1] scale
    (figure,) = saved_figures
    axes = figure.axes[0]
    (image,) = axes.images
    matrix = np.asarray(image.get_array())
    assert matrix.shape == (3, 4) and image.get_clim() == (-1.0, 1.0)
    names = [tick.get_text() for tick in axes.get_yticklabels()]
    assert sorted(names) == sorted(short_feature_name(c) for c in features.columns if c not in ("case_id", "constant"))
    assert names[0] == "embedding_linear"  # a linear function of the embedding: the strongest |r|
    assert np.abs(matrix[0]).max() == np.abs(matrix).max() > 0.5
    assert [tick.get_text().split()[0] for tick in axes.get_xticklabels()] == ["PC1", "PC2", "PC3", "PC4"]
    assert sorted(text.get_text() for text in axes.texts) == sorted(f"{v:.2f}" for v in matrix.ravel())
    for value in matrix.ravel()[np.abs(matrix.ravel()) > 0.2]:  # the PNG shows the cells in their colours
        assert colour_share(pixels, to_hex(colormaps["RdBu_r"]((value + 1) / 2)), tolerance=6) > 0.005, value
    with pytest.raises(InputError, match="constant"):
        correlation_heatmap(features, np.ones((60, 4)), tmp_path / "flat.png")
    assert not (tmp_path / "flat.png").exists()
