"""The derived scar's guards (issue 23): the enhancement test, the remote guard, confidence and flags."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lgerisk.preprocess.scar import (
    ENHANCEMENT_MIN_SEPARATION,
    RemoteReference,
    ScarResult,
    ScarRules,
    dice,
    guarded_remote,
    quantify_scar,
    remote_reference,
    scar_confidence,
    scar_flags,
    sector_remote,
)
from tests.helpers import make_cohort, phantom_arrays
from tests.preprocess.phantoms import SPACING, ring_phantom


def heavy_tailed_scar_free_heart(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A ring phantom without scar whose noise has heavy tails (Student t, 2 degrees of freedom)."""
    image, labels = ring_phantom(0.0, seed=seed, noise=0.0)
    noise = 25.0 * np.random.default_rng(seed).standard_t(2, labels.shape)
    return (image + noise).astype(np.float32), labels


def extensive_diffuse_scar(dim: float = 200.0) -> tuple[np.ndarray, np.ndarray]:
    """70 % of the wall enhanced: 40 % of it dimly (``dim``), 30 % brightly (400); remote 100."""
    image, labels = ring_phantom(0.7, seed=1, scar=400.0)
    y, x = np.mgrid[:64, :64] - 32.0
    angle = np.broadcast_to(np.arctan2(y, x), labels.shape)
    image[(labels == 3) & (angle < -np.pi + 2 * np.pi * 0.4)] += dim - 400.0
    return image, labels


def percent(mask: np.ndarray, labels: np.ndarray) -> float:
    return 100.0 * float(mask.sum()) / float((labels >= 2).sum())


@pytest.mark.parametrize("method", ["fwhm", "nsd"])
@pytest.mark.parametrize("seed", [0, 1])
def test_a_heart_without_enhancement_gets_no_scar_and_no_grey_zone(method: str, seed: int) -> None:
    image, labels = heavy_tailed_scar_free_heart(seed)
    result = quantify_scar(image, labels, method, nsd=3.0, spacing=SPACING)
    assert not result.enhancement and result.separation is not None
    assert result.separation < ENHANCEMENT_MIN_SEPARATION
    assert not np.isin(result.labels, (3, 4, 5)).any() and result.core_threshold is None
    if method == "fwhm":  # smoothed, the noise's tail forms clusters that the test now refuses
        rules = ScarRules(min_separation=0)
        without_test = quantify_scar(image, labels, method, nsd=3.0, spacing=SPACING, rules=rules)
        assert percent(np.isin(without_test.labels, (3, 5)), labels) > 0.25


def test_a_heart_with_scar_passes_the_enhancement_test() -> None:
    image, labels = ring_phantom(0.2)
    result = quantify_scar(image, labels, "fwhm", spacing=SPACING)
    assert result.enhancement and result.separation is not None and result.separation > 5
    assert dice(result.labels == 3, labels == 3) > 0.9


def test_sector_remote_is_the_darkest_sectors_when_most_of_the_wall_is_enhanced() -> None:
    image, labels = extensive_diffuse_scar()
    wall = labels >= 2
    found = sector_remote(image, wall, labels == 1)
    assert found is not None
    mean, sd, keep = found
    assert abs(mean - 100) < 10 and sd < 60
    assert (labels[keep] == 3).mean() < 0.15  # the darkest third: remote myocardium but where a sector edge cuts scar
    assert sector_remote(image, np.zeros_like(wall), labels == 1) is None


def test_extensive_scar_takes_its_remote_from_the_darker_sectors() -> None:
    image, labels = extensive_diffuse_scar()
    truth = labels == 3
    assert percent(truth, labels) > 60
    result = quantify_scar(image, labels, "fwhm", spacing=SPACING)
    assert result.remote.path == "sectors" and abs(result.remote.mean - 100) < 10
    assert abs(percent(result.labels == 3, labels) - percent(truth, labels)) < 5
    assert dice(result.labels == 3, truth) > 0.9
    # the unguarded mixture calls the dim scar "remote" (the darker class holds most of the wall): under-call
    unguarded = quantify_scar(image, labels, "fwhm", spacing=SPACING, rules=ScarRules(remote_guard=False))
    assert unguarded.remote.path == "mixture" and unguarded.remote.remote_fraction > 0.6
    assert percent(unguarded.labels == 3, labels) < 0.5 * percent(truth, labels)


@pytest.mark.parametrize("scar_fraction", [0.0, 0.2, 0.45])
def test_the_guard_keeps_a_plausible_mixture_remote(scar_fraction: float) -> None:
    image, labels = ring_phantom(scar_fraction, seed=2)
    result = quantify_scar(image, labels, "fwhm", spacing=SPACING)
    assert result.remote.path in ("mixture", "mixture-fallback")


def test_a_remote_close_to_the_blood_pool_is_replaced() -> None:
    image, labels = ring_phantom(0.2, seed=3)
    wall = labels >= 2
    plausible = remote_reference(image[wall])
    assert guarded_remote(image, wall, labels == 1, plausible).path == "mixture"
    # a "remote" a quarter of the way from blood (600) down to remote (100), but within 2 of its SDs
    bright = RemoteReference(460.0, 400.0, "mixture", False, int(wall.sum()), 0.8, "mixture")
    guarded = guarded_remote(image, wall, labels == 1, bright)
    assert guarded.path == "sectors" and abs(guarded.mean - 100) < 10


def test_the_peak_fraction_moves_the_fwhm_threshold() -> None:
    image, labels = ring_phantom(0.3, seed=4)
    low = quantify_scar(image, labels, "fwhm", spacing=SPACING, rules=ScarRules(peak_fraction=0.3))
    high = quantify_scar(image, labels, "fwhm", spacing=SPACING, rules=ScarRules(peak_fraction=0.7))
    assert low.core_threshold is not None and high.core_threshold is not None
    assert low.core_threshold < high.core_threshold


def test_label_scar_is_untouched_by_the_derived_rules() -> None:
    image, labels = phantom_arrays()
    plain = quantify_scar(image, labels, "label")
    strict = quantify_scar(image, labels, "label", rules=ScarRules(min_separation=1e9, remote_guard=False))
    assert np.array_equal(plain.labels, strict.labels) and np.array_equal(plain.labels == 3, labels == 3)
    assert plain.separation is None and plain.enhancement


def _result(path: str = "mixture", enhancement: bool = True, separation: float = 8.0) -> ScarResult:
    reference = RemoteReference(100.0, 10.0, "mixture", path == "mixture-fallback", 1000, 0.7, path)
    return ScarResult(np.zeros(1), "fwhm", reference, 200.0, 120.0, 300.0, enhancement, separation)


def test_a_clear_scar_raises_no_flag() -> None:
    flags = scar_flags(_result(), 400.0, 6, 20.0, 24.0)
    assert flags == () and scar_confidence(flags) == "high"


@pytest.mark.parametrize(
    ("kwargs", "blood", "slices", "second", "expected"),
    [
        ({"enhancement": False, "separation": 1.0}, 400.0, 6, 0.0, ("no_enhancement",)),
        ({"enhancement": False, "separation": 2.3}, 400.0, 6, 0.0, ("no_enhancement", "enhancement_borderline")),
        ({"separation": 2.8}, 400.0, 6, 20.0, ("enhancement_borderline",)),
        ({"path": "sectors"}, 400.0, 6, 20.0, ("remote_uncertain",)),
        ({"path": "mixture-fallback"}, 400.0, 6, 20.0, ("remote_uncertain",)),
        ({}, 125.0, 6, 20.0, ("remote_uncertain",)),  # blood only 2.5 remote SDs above remote
        ({}, None, 3, 20.0, ("few_slices",)),
        ({}, 400.0, 6, 36.0, ("methods_disagree",)),
        ({}, 400.0, 6, None, ()),
    ],
)
def test_each_flag_is_raised_when_it_should_be(
    kwargs: dict, blood: float | None, slices: int, second: float | None, expected: tuple[str, ...]
) -> None:
    scar = 20.0 if kwargs.get("enhancement", True) else 0.0
    assert scar_flags(_result(**kwargs), blood, slices, scar, second) == expected


def test_confidence_levels() -> None:
    assert scar_confidence(("no_enhancement",)) == "high"
    assert scar_confidence(("few_slices",)) == "medium"
    assert scar_confidence(("few_slices", "no_enhancement")) == "medium"
    for flag in ("enhancement_borderline", "remote_uncertain", "methods_disagree"):
        assert scar_confidence(("few_slices", flag)) == "low"


def test_preprocess_records_confidence_for_derived_scar_only(tmp_path: Path) -> None:
    from lgerisk.io.cohort import discover_cohort
    from lgerisk.preprocess.config import PreprocessConfig
    from lgerisk.preprocess.pipeline import preprocess_case

    case = discover_cohort(make_cohort(tmp_path / "cohort", n=1)).cases[0]
    derived = preprocess_case(case, PreprocessConfig(scar_method="fwhm")).qc
    assert derived["scar_method"] == "fwhm" and derived["enhancement"] is True
    assert derived["remote_path"] in ("mixture", "mixture-fallback", "sectors")
    assert derived["scar_confidence"] in ("high", "medium", "low")
    assert derived["scar_flags"] == [] and derived["scar_confidence"] == "high"  # 6 slices, clear scar
    assert derived["second_opinion_scar_percent"] == pytest.approx(derived["scar_percent"], abs=5)
    label = preprocess_case(case, PreprocessConfig()).qc
    assert label["scar_method"] == "label" and label["scar_confidence"] is None and label["scar_flags"] == []
    assert label["enhancement"] is None and label["second_opinion_scar_percent"] is None
