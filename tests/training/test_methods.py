"""The registry of the methods a finetune run compares (lgerisk/training/methods.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lgerisk.training.finetune_config import FinetuneConfig
from lgerisk.training.methods import TABULAR, Method, fit_method, method_names, methods_for


def test_the_methods_of_a_run_by_stable_key_with_the_names_tables_show() -> None:
    run = methods_for(FinetuneConfig(covariates=("age",), scratch_baseline=True), pretrained=True)
    assert [(m.key, m.name) for m in run] == [
        ("scar_cox", "scar-% Cox"),
        ("scar_grey_cox", "scar+grey Cox"),
        ("radiomics_cox", "radiomics Cox"),
        ("deep_scratch", "deep, scratch (full)"),
        ("model", "pretrained probe + age"),
    ]
    # the costly scratch network beside an encoder only when asked for; the cheap baselines always
    assert [m.key for m in methods_for(FinetuneConfig(), pretrained=True)] == [
        "scar_cox",
        "scar_grey_cox",
        "radiomics_cox",
        "model",
    ]
    assert FinetuneConfig(scratch_baseline=True).settings_hash() == FinetuneConfig().settings_hash()
    assert method_names(FinetuneConfig(baselines=False, mode="full"), pretrained=False) == ["deep, scratch (full)"]
    assert [m.key for m in methods_for(FinetuneConfig(mode="full"), pretrained=False)] == [
        "scar_cox",
        "scar_grey_cox",
        "radiomics_cox",
        "model",
    ]  # no second scratch network without an encoder


@pytest.mark.parametrize("key", sorted(TABULAR))
def test_every_tabular_baseline_fits_and_ranks_by_its_inputs(key: str) -> None:
    rng = np.random.default_rng(0)
    n = 120
    scar = rng.uniform(0, 40, n)
    grey = scar / 3 + rng.uniform(0, 3, n)
    time = rng.exponential(np.exp(-0.08 * scar))
    table = pd.DataFrame(
        {
            "scar_percent": scar,
            "greyzone_percent": grey,
            "myocardium_mass_g": rng.uniform(90, 150, n),
            "noreflow_percent": np.zeros(n),
            "myocardium_volume_ml": rng.uniform(85, 140, n),
            "scar_volume_ml": scar,
            "scar__original_firstorder_Mean": scar + rng.normal(0, 1, n),
        }
    )
    model = TABULAR[key][1](FinetuneConfig(), 0).fit(table, time, np.ones(n, int))
    risk = model.predict_risk(table)
    assert risk.shape == (n,) and np.corrcoef(risk, scar)[0, 1] > 0.8  # more scar, higher risk
    assert model.to_dict()


def test_an_unknown_method_is_refused() -> None:
    with pytest.raises(KeyError, match="unknown method 'survival_forest'"):
        fit_method(Method("survival_forest", "RSF"), None, [], 0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("key", "encoder", "guided", "expected"),
    [
        ("model", True, True, 0.5),  # a radiomics-guided encoder keeps its guidance
        ("model", True, False, 0.0),  # SimCLR has none to keep
        ("model", False, False, 0.0),  # the network from scratch without an encoder
        ("deep_scratch", True, True, 0.0),  # the scratch baseline beside an encoder
    ],
)
def test_only_a_radiomics_guided_encoder_gets_the_auxiliary_loss(monkeypatch, key, encoder, guided, expected) -> None:
    from types import SimpleNamespace

    from lgerisk.training import methods

    seen = {}
    monkeypatch.setattr(methods, "fit_deep", lambda *args, **kwargs: seen.update(kwargs))
    workspace = SimpleNamespace(
        config=FinetuneConfig(mode="full", aux_weight=0.5),
        encoder_state={"w": 1} if encoder else None,
        encoder_guided=guided,
    )
    fit_method(Method(key, key), workspace, ["a", "b"], seed=0)
    assert seen["aux_weight"] == expected
