"""Hazard versions of the synthetic generator (issue 11, item 1: a generator with headroom over scar %).

* version 1 reproduces generator 1.0 (images, truth, outcomes) exactly: the fingerprints below were
  taken from generator 1.0 before version 2 was added;
* each version-2 hazard term moves the log-hazard the documented way, in the hazard model and in the
  generator (the mechanism that makes the term's image property);
* ``lp_image`` is the image terms' contribution alone; the headroom benchmark runs (tiny setting).

Quick (~15 s on 2 cores): truth without images, three small images.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from lgerisk.errors import InputError
from lgerisk.synth import (
    CLINICAL_COVARIATES,
    HAZARD_TERMS_V2,
    SYNTH_VERSION,
    SynthConfig,
    anatomy,
    config_of_cohort,
    generate_case,
    generate_truth,
    generator,
    hazard_model,
    phantom,
    regenerate_command,
)
from tests.helpers import truth_rows

ROOT = Path(__file__).resolve().parents[2]
V1_SMALL = SynthConfig(small=True, hazard_version=1)
V2_SMALL = SynthConfig(small=True)


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def _array_digest(image: sitk.Image) -> str:
    return hashlib.sha256(sitk.GetArrayFromImage(image).tobytes()).hexdigest()[:16]


# generator 1.0 (before hazard versions): sha256[:16] of json.dumps([truth, clinical, outcome], sort_keys=True)
V1_TRUTH = {
    0: ("ef4655c63567034c", -0.396658),
    2: ("bbc91ee06fefd234", -2.280358),
    4: ("3dfc5e81d73502ef", 2.247009),
    5: ("1befc3bdb06893e7", 1.269084),
    8: ("82996fe10e7836b4", -0.200686),
    11: ("cac54a5da8d617b2", 0.102048),
}
V1_DEFAULT_SEED3_CASE5 = ("c4d2659c81d6619a", -0.797451)
# generator 1.0 generate_case(k, small): image, mask, grey-zone map array digests and the truth digest
V1_CASES = {
    1: ("94093b83e6d979a9", "bc0fc92a3d050862", "7dc35b03b1700736", "84d09ceec55d0a06"),
    4: ("7357f6dc9cba85ee", "8e8bb20076282cc9", "25ce5fa03ec9485b", "c04a070378825a80"),
}


@pytest.fixture(scope="module")
def v2_table():
    """Ground truth + covariates + outcomes of 120 small version-2 cases (no images)."""
    return truth_rows(120, V2_SMALL)


def _truth_with(case_index: int, config: SynthConfig, **params) -> dict:
    """Version-2 fine-grid truth of a case with some scar parameters overridden (the generator's own steps)."""
    rng = generator.case_streams(config.seed, case_index)
    acq = anatomy.draw_acquisition(rng["acquisition"], config.small)
    heart = anatomy.draw_heart(rng["heart"], acq)
    scar = anatomy.draw_headroom(rng["headroom"], anatomy.draw_scar(rng["scar"], heart, config))
    scar = dataclasses.replace(scar, params={**scar.params, **params})
    return phantom.render_heart(acq, heart, scar, config).truth


def _image_eta(truth: dict) -> float:
    return float(sum(t.contribution(float(truth[t.name])) for t in hazard_model(2).image_terms()))


def _first_ischemic(table: pd.DataFrame, **conditions) -> int:
    rows = table[table.scar_pattern == "ischemic"]
    for key, value in conditions.items():
        rows = rows[rows[key] == value]
    return int(rows.case_id.iloc[0].split("-")[1])


# ---------------------------------------------------------------------------- version 1 = generator 1.0


def test_version_1_truth_and_outcomes_are_generator_1_0():
    for k, (digest, log_hazard) in V1_TRUTH.items():
        truth, clinical, outcome = generate_truth(k, V1_SMALL)
        assert truth["log_hazard"] == log_hazard
        assert _digest([truth, clinical, outcome]) == digest, k
    truth, clinical, outcome = generate_truth(5, SynthConfig(seed=3, hazard_version=1))
    assert (_digest([truth, clinical, outcome]), truth["log_hazard"]) == V1_DEFAULT_SEED3_CASE5


def test_version_1_images_are_generator_1_0():
    for k, digests in V1_CASES.items():
        case = generate_case(k, V1_SMALL)
        got = (
            _array_digest(case.image),
            _array_digest(case.mask),
            _array_digest(case.greyzone),
            _digest([case.truth, case.clinical, case.outcome]),
        )
        assert got == digests, k


def test_sample_data_reproduces_under_its_recorded_version():
    """sample_data was made by generator 1.0: its synth.json has no hazard_version, so version 1."""
    config = config_of_cohort(ROOT / "sample_data")
    assert config == SynthConfig(n_cases=32, seed=2026, small=True, hazard_version=1)
    assert "--hazard-version 1" in regenerate_command("sample_data", config)
    truth_csv = pd.read_csv(ROOT / "sample_data" / "ground_truth.csv").set_index("case_id")
    outcomes = pd.read_csv(ROOT / "sample_data" / "outcomes.csv").set_index("case_id")
    for k in (0, 13, 31):
        truth, clinical, outcome = generate_truth(k, config)
        row = truth_csv.loc[truth["case_id"]]
        for key in ("log_hazard", "lp_image", "scar_percent", "greyzone_percent", "event_time"):
            assert truth[key] == pytest.approx(row[key], abs=1e-9), key
        assert outcome == {
            "time": outcomes.loc[truth["case_id"], "time"],
            "event": outcomes.loc[truth["case_id"], "event"],
        }
        assert clinical["lvef"] == outcomes.loc[truth["case_id"], "lvef"]


def test_version_1_lvef_generated_from_scar():
    rows = [{**t, **c} for t, c, _ in (generate_truth(k, V1_SMALL) for k in range(80))]
    table = pd.DataFrame(rows)
    assert np.corrcoef(table.scar_percent, table.lvef)[0, 1] < -0.5


# ---------------------------------------------------------------------------- config


def test_hazard_version_config():
    assert SynthConfig().hazard_version == 2 and SynthConfig().hazard == hazard_model(2)
    assert SynthConfig(hazard_version=1).hazard == hazard_model(1)
    with pytest.raises(InputError):
        SynthConfig(hazard_version=3)
    with pytest.raises(InputError):
        hazard_model(0)
    for config in (SynthConfig(n_cases=7, seed=4, hazard_version=1), SynthConfig(n_cases=7, seed=4, small=True)):
        assert SynthConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert "--hazard-version" not in regenerate_command("out", SynthConfig())
    assert regenerate_command("out", SynthConfig(hazard_version=1)).endswith("--hazard-version 1")
    assert SYNTH_VERSION == "2.0"


def test_version_2_keeps_the_anatomy_and_marks_its_extras(v2_table):
    for k in (0, 4):
        v1, _, _ = generate_truth(k, V1_SMALL)
        v2, _, _ = generate_truth(k, V2_SMALL)
        for key in ("matrix_x", "matrix_y", "slices", "spacing_xy_mm", "scar_pattern", "territory", "heterogeneity"):
            assert v1[key] == v2[key]
    assert {"wall_thinning", "scar_islands", "midwall_lge", "conducting_channels", "greyzone_scale"} <= set(
        v2_table.columns
    )
    none = v2_table[v2_table.scar_pattern == "none"]
    assert (none[["wall_thinning", "scar_islands", "midwall_lge"]] == 0).all().all()
    nonisch = v2_table[v2_table.scar_pattern == "nonischemic"]
    assert (nonisch.wall_thinning == 0).all() and (nonisch.scar_islands >= 1).all()
    assert set(nonisch.midwall_lge) <= {0, 1} and nonisch.midwall_lge.mean() > 0.5
    isch = v2_table[v2_table.scar_pattern == "ischemic"]
    assert (isch.midwall_lge == 0).all() and (isch.wall_thinning > 0).mean() > 0.9
    # islands follow the channels drawn through the core
    assert np.corrcoef(isch.conducting_channels, isch.scar_islands)[0, 1] > 0.6


def test_version_2_images_show_the_thinning():
    """The same case under both versions: same scan geometry, different heart (thinning, channels, border zone)."""
    k = 4  # ischaemic LAD scar under both versions
    a, b = generate_case(k, V1_SMALL), generate_case(k, V2_SMALL)
    assert a.image.GetSize() == b.image.GetSize()
    assert b.truth["wall_thickness_mm"] < a.truth["wall_thickness_mm"] and b.truth["wall_thinning"] > 0
    assert not np.array_equal(sitk.GetArrayFromImage(a.mask), sitk.GetArrayFromImage(b.mask))


# ---------------------------------------------------------------------------- each term moves eta the documented way


def test_hazard_terms_move_eta_the_documented_way():
    """In the model: raising a version-2 image term, all else fixed, raises the log-hazard."""
    hazard = hazard_model(2)
    base = {t.name: t.center for t in hazard.terms}
    base.update(scar_percent=8.0, midwall_lge=0)
    eta0 = hazard.linear_predictor(base)
    for name, higher in (
        ("greyzone_percent", 12.0),
        ("heterogeneity", 0.6),
        ("wall_thinning", 0.4),
        ("scar_islands", 3),
    ):
        assert hazard.linear_predictor({**base, name: higher}) > eta0, name
    # a non-ischaemic mid-wall scar against an ischaemic one of equal burden (all else equal)
    assert hazard.linear_predictor({**base, "midwall_lge": 1}) == pytest.approx(eta0 + 1.0)
    # version 2 no longer rewards a thick wall; version 1 did (+)
    assert "wall_thickness_mm" not in {t.name for t in hazard.terms}
    assert {t.name: t.beta for t in hazard_model(1).terms}["wall_thickness_mm"] > 0
    betas = {t.name: t.beta for t in HAZARD_TERMS_V2}
    assert all(
        betas[n] > 0
        for n in ("scar_percent", "greyzone_percent", "heterogeneity", "wall_thinning", "scar_islands", "midwall_lge")
    )
    assert betas["lvef"] < 0


def test_generator_greyzone_extent_raises_eta_with_scar_fixed(v2_table):
    k = _first_ischemic(v2_table)
    narrow = _truth_with(k, V2_SMALL, gz_margin_deg=3.0, gz_margin_z=0.02, gz_depth=0.03)
    wide = _truth_with(k, V2_SMALL, gz_margin_deg=25.0, gz_margin_z=0.15, gz_depth=0.35)
    assert wide["scar_percent"] == narrow["scar_percent"]  # the core is untouched
    assert wide["greyzone_percent"] > narrow["greyzone_percent"] + 1.0
    assert _image_eta(wide) > _image_eta(narrow)


def test_generator_thinner_scarred_wall_raises_eta(v2_table):
    k = _first_ischemic(v2_table)
    thick = _truth_with(k, V2_SMALL, thinning=0.0)
    thin = _truth_with(k, V2_SMALL, thinning=0.5)
    assert thick["wall_thinning"] == 0 and thin["wall_thinning"] > 0.2
    assert thin["wall_thickness_mm"] < thick["wall_thickness_mm"]
    assert _image_eta(thin) > _image_eta(thick)


def test_generator_more_islands_raise_eta(v2_table):
    k = _first_ischemic(v2_table, conducting_channels=0)
    whole = _truth_with(k, V2_SMALL, channels=[])
    split = _truth_with(k, V2_SMALL, channels=[{"offset": -0.35, "width_mm": 5.0}, {"offset": 0.35, "width_mm": 5.0}])
    assert split["scar_islands"] > whole["scar_islands"]
    assert _image_eta(split) > _image_eta(whole)


def test_midwall_pattern_raises_eta_over_ischaemic_of_equal_burden(v2_table):
    hazard = hazard_model(2)
    nonisch = v2_table[(v2_table.scar_pattern == "nonischemic") & (v2_table.midwall_lge == 1)]
    assert len(nonisch) > 5
    row = nonisch.iloc[0].to_dict()
    as_ischaemic = {**row, "midwall_lge": 0}
    assert hazard.linear_predictor(row) - hazard.linear_predictor(as_ischaemic) == pytest.approx(1.0)


# ---------------------------------------------------------------------------- image-only log-hazard, clinical terms


def test_lp_image_is_the_sum_of_the_image_terms(v2_table):
    hazard = hazard_model(2)
    image_terms = hazard.image_terms()
    assert {t.name for t in image_terms}.isdisjoint(CLINICAL_COVARIATES) and len(image_terms) == 6
    lp_image = sum(t.contribution(v2_table[t.name].to_numpy(float)) for t in image_terms)
    np.testing.assert_allclose(v2_table.lp_image, lp_image, atol=1e-5)
    np.testing.assert_allclose(v2_table.lp_image + v2_table.lp_clinical, v2_table.log_hazard, atol=1e-5)
    np.testing.assert_allclose(hazard.linear_predictor(v2_table), v2_table.log_hazard, atol=1e-5)


def test_version_2_clinical_covariates_not_from_scar(v2_table):
    assert -0.4 < np.corrcoef(v2_table.scar_percent, v2_table.lvef)[0, 1] < 0.0
    # age and sex do not follow the scar pattern any more (version 1: ischaemic older and more often male)
    by_pattern = v2_table.groupby("scar_pattern").age.mean()
    assert by_pattern.max() - by_pattern.min() < 6.0
    assert 0.2 <= v2_table.event.mean() <= 0.45


# ---------------------------------------------------------------------------- the headroom benchmark


def _benchmark():
    path = ROOT / "benchmarks" / "headroom.py"
    spec = importlib.util.spec_from_file_location("lgerisk_bench_headroom", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_headroom_benchmark_tiny():
    bench = _benchmark()
    v2 = bench.headroom(seeds=[0], n_cases=60, redraws=20, hazard_version=2, small=True)
    row = v2.iloc[-1]
    assert row["seed"] == -1 and row["cases"] == 60
    assert row["gap"] > 0 and row["c_image_oracle"] - row["c_scar"] == pytest.approx(row["gap"])
    assert row["c_full_oracle"] > row["c_scar"] and 0.15 < row["event_rate"] < 0.5
    v1 = bench.headroom(seeds=[0], n_cases=60, redraws=20, hazard_version=1, small=True, cox=False)
    assert v1.iloc[-1]["gap"] < row["gap"]
    assert "| 2 | mean | 60 |" in bench.format_table(v2)


def test_cli_hazard_version_option(tmp_path, cli) -> None:
    import json

    import pandas as pd

    for version, only_in in ((1, "transmurality"), (2, "wall_thinning")):
        out = tmp_path / f"v{version}"
        result = cli("synth", out, "--cases", "2", "--seed", "4", "--small", "--hazard-version", str(version))
        assert result.exit_code == 0, result.output
        assert json.loads((out / "synth.json").read_text())["hazard_version"] == version
        truth = pd.read_csv(out / "ground_truth.csv")
        assert only_in in list(truth.columns)[:12]  # among the hazard inputs after the log-hazard columns
    assert cli("synth", tmp_path / "v3", "--cases", "1", "--hazard-version", "3").exit_code == 2
