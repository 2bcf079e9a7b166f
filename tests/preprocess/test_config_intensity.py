"""Preprocessing settings and intensity normalisation."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from lgerisk.errors import CaseError, InputError
from lgerisk.preprocess.config import PreprocessConfig
from lgerisk.preprocess.intensity import fit_normalisation


def test_config_round_trips_through_json() -> None:
    config = PreprocessConfig(labels="acdc", nsd=3.0, crop_size=112)
    again = PreprocessConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config and again.settings_hash() == config.settings_hash()
    assert PreprocessConfig().settings_hash() != config.settings_hash()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"scar_method": "otsu"},
        {"normalisation": "minmax"},
        {"crop_size": 4},
        {"inplane_spacing_mm": 0.0},
        {"nsd": 0.0},
        {"remote_method": "median"},
        {"scar_smoothing_mm": -1.0},
    ],
)
def test_config_refuses_bad_values(kwargs: dict) -> None:
    ((name, value),) = kwargs.items()
    with pytest.raises(InputError, match="^" + re.escape(f"{name}={value!r}: ")) as refused:
        PreprocessConfig(**kwargs)
    assert refused.value.setting == name and "--" not in str(refused.value)
    with pytest.raises(InputError):
        PreprocessConfig.from_dict({"unknown": 1})


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("nsd", float("nan"), "not a number"),
        ("nsd", float("inf"), "infinite"),
        ("nsd", -1.0, "not above 0"),
        ("greyzone_nsd", float("nan"), "not a number"),
        ("greyzone_nsd", float("inf"), "infinite"),
        ("greyzone_nsd", 0.0, "not above 0"),
    ],
)
def test_sd_thresholds_say_what_is_wrong_and_what_they_are(name: str, value: float, problem: str) -> None:
    with pytest.raises(InputError) as refused:
        PreprocessConfig(**{name: value})
    message = str(refused.value)
    assert message.startswith(f"{name}={value!r}: {problem}; ") and refused.value.setting == name
    assert (
        "counts standard deviations above the remote myocardium's mean and must be a finite number above 0" in message
    )


def test_normalisations() -> None:
    crop = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    myo_blood = fit_normalisation("myo-blood", 100.0, 500.0, crop, "x")
    assert np.allclose(myo_blood.apply(np.array([100.0, 500.0, 900.0])), [0, 1, 2])
    z = fit_normalisation("zscore", 0, 0, crop, "x").apply(crop)
    assert abs(z.mean()) < 1e-6 and abs(z.std() - 1) < 1e-6
    p = fit_normalisation("percentile", 0, 0, crop, "x").apply(crop)
    assert p.min() < 0.01 and p.max() > 0.99
    with pytest.raises(CaseError, match="not brighter.*try normalisation=.zscore."):
        fit_normalisation("myo-blood", 500.0, 100.0, crop, "scan.nii.gz")
