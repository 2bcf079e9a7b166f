"""Scar and grey-zone quantification."""

from __future__ import annotations

import numpy as np
import pytest

from lgerisk.preprocess.scar import (dice, drop_small_clusters, quantify_scar, remote_region, robust_statistics,
                                     tissue_volumes_ml)
from tests.conftest import phantom_arrays


def test_robust_statistics_ignore_outliers() -> None:
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(100, 10, 900), np.full(100, 1000.0)])
    median, sd = robust_statistics(values)
    assert abs(median - 100) < 3 and abs(sd - 10) < 2


def test_label_method_keeps_labels_and_finds_grey_zone() -> None:
    image, labels = phantom_arrays()
    grey_voxels = (labels == 2) & (np.arange(labels.shape[2])[None, None, :] > 44)
    image[grey_voxels] = 400.0  # intermediate: between remote (100) and scar (800)
    result = quantify_scar(image, labels, "label")
    assert np.array_equal(result.labels == 3, labels == 3)
    assert (result.labels == 5).sum() >= 0.9 * grey_voxels.sum()
    assert (result.labels == 5)[~grey_voxels].sum() < 0.01 * (labels == 2).sum()  # noise specks only
    assert result.core_threshold is None and abs(result.remote_mean - 100) < 5


@pytest.mark.parametrize("method", ["nsd", "fwhm"])
def test_derived_scar_recovers_phantom_scar(method: str) -> None:
    image, labels = phantom_arrays()
    result = quantify_scar(image, labels, method, nsd=5)
    assert dice(result.labels == 3, labels == 3) > 0.95
    assert result.core_threshold is not None and result.core_threshold > result.greyzone_threshold


@pytest.mark.parametrize("method", ["nsd", "fwhm"])
def test_derived_scar_of_scar_free_heart_is_small(method: str) -> None:
    image, labels = phantom_arrays(scar=False)
    result = quantify_scar(image, labels, method)
    assert (result.labels == 3).sum() < 0.01 * (labels == 2).sum()


def test_drop_small_clusters_is_in_plane() -> None:
    region = np.zeros((3, 10, 10), dtype=bool)
    region[1, 2:5, 2:5] = True  # 9 voxels: kept
    region[:, 8, 8] = True  # 1 voxel per slice, stacked: dropped (no through-plane connectivity)
    kept = drop_small_clusters(region, 4)
    assert kept[1, 2:5, 2:5].all() and not kept[:, 8, 8].any()


def test_remote_region_erodes_in_plane_only() -> None:
    myocardium = np.zeros((2, 20, 20), dtype=bool)
    myocardium[:, 5:15, 5:15] = True
    eroded = remote_region(myocardium, min_voxels=1)
    assert eroded[:, 6:14, 6:14].all() and not eroded[:, 5, :].any()
    assert eroded.sum() == 2 * 64


def test_volumes_and_dice() -> None:
    labels = np.array([[[1, 2, 3, 4, 5, 0]]], dtype=np.uint8)
    volumes = tissue_volumes_ml(labels, 1000.0)
    assert volumes == {"blood_pool_volume_ml": 1.0, "myocardium_volume_ml": 4.0, "scar_volume_ml": 2.0,
                       "noreflow_volume_ml": 1.0, "greyzone_volume_ml": 1.0}
    assert dice(np.zeros(3, bool), np.zeros(3, bool)) is None
    assert dice(np.array([True, False]), np.array([True, True])) == pytest.approx(2 / 3)
