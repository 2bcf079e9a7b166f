"""Model files (lgerisk/artifacts.py) and the head's tabular scaling (lgerisk/models/tabular.py)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lgerisk.artifacts import (
    CARD_FILE,
    ENCODER_FORMAT,
    MODEL_FILE,
    RISK_MODEL_FORMAT,
    file_sha256,
    load_encoder,
    load_risk_model,
    read_card,
    save_encoder,
    save_risk_model,
    write_card,
)
from lgerisk.cards import CardData, EncoderCard, RiskModelCard
from lgerisk.errors import InputError
from lgerisk.models import ContrastiveModel, ContrastiveModelConfig, EncoderConfig, RadiomicsEncoderConfig
from lgerisk.models.survival import SurvivalModel, SurvivalModelConfig
from lgerisk.models.tabular import TabularScaling


def encoder_card(**changes: object) -> EncoderCard:
    card = EncoderCard(
        kind="test",
        created_by="lgerisk 0.1.0 pretrain",
        data=CardData("h", 3, True, ("a", "b")),
        config={"epochs": 1},
        model={},
        tensor_spec={},
        preprocessing={},
        radiomics={},
    )
    return dataclasses.replace(card, **changes)  # type: ignore[arg-type]


def encoder(seed: int) -> ContrastiveModel:
    torch.manual_seed(seed)
    return ContrastiveModel(
        ContrastiveModelConfig(
            EncoderConfig(width=4, embedding_dim=8), RadiomicsEncoderConfig(n_features=5), projection_dim=4
        )
    )


def test_an_encoder_round_trips_with_its_card_written_last(tmp_path: Path) -> None:
    model = encoder(0)
    save_encoder(tmp_path, model)
    assert not (tmp_path / CARD_FILE).exists()
    written = write_card(tmp_path, encoder_card())
    assert list(written)[:2] == ["format", "model_sha256"] and written["kind"] == "test"
    assert read_card(tmp_path)["model_sha256"] == file_sha256(tmp_path / MODEL_FILE)
    loaded, card = load_encoder(tmp_path)
    assert card.to_dict() == written and card == dataclasses.replace(
        encoder_card(), model_sha256=written["model_sha256"]
    )
    assert not loaded.training
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name


def test_weights_from_another_run_are_refused(tmp_path: Path) -> None:
    save_encoder(tmp_path, encoder(0))
    write_card(tmp_path, encoder_card())
    save_encoder(tmp_path, encoder(1))  # an interrupted rerun: new weights, the old card
    with pytest.raises(InputError, match="do not belong together"):
        load_encoder(tmp_path)


def test_each_kind_of_model_is_refused_where_the_other_is_expected(tmp_path: Path) -> None:
    save_encoder(tmp_path / "encoder", encoder(0))
    write_card(tmp_path / "encoder", encoder_card())
    with pytest.raises(InputError, match="a pretraining run: fine-tune it first"):
        load_risk_model(tmp_path / "encoder")
    risk = SurvivalModel(SurvivalModelConfig(EncoderConfig(width=4, embedding_dim=8), n_tabular=1))
    save_risk_model(
        tmp_path / "risk", risk, TabularScaling(covariates=("age",), covariate_mean=(60.0,), covariate_scale=(10.0,))
    )
    write_card(tmp_path / "risk", RiskModelCard.example())
    with pytest.raises(InputError, match="a risk model from lgerisk finetune"):
        load_encoder(tmp_path / "risk")
    model, scaling, card = load_risk_model(tmp_path / "risk")
    assert scaling.covariates == ("age",) and card.format == RISK_MODEL_FORMAT and card.survival.horizons == (1, 3, 5)
    assert torch.equal(model.head.weight, risk.head.weight)


def test_a_card_of_another_format_is_refused(tmp_path: Path) -> None:
    save_encoder(tmp_path, encoder(0))
    write_card(tmp_path, {**encoder_card().to_dict(), "format": "lgerisk-model-0"})
    with pytest.raises(InputError, match="model card of another format"):
        load_encoder(tmp_path)


def test_the_tabular_scaling_standardises_each_part_and_fills_unmeasurable_radiomics() -> None:
    features = pd.DataFrame({"a": [1.0, 3.0, np.nan], "scar_percent": [10.0, 20.0, 30.0]}, index=["x", "y", "z"])
    covariates = pd.DataFrame({"age": [50.0, 70.0, 60.0]}, index=["x", "y", "z"])
    scaling = TabularScaling.fit(
        radiomics=("a",),
        radiomics_values=features.loc[["x", "y"], ["a"]],
        scar_metrics=("scar_percent",),
        scar_values=features.loc[["x", "y"], ["scar_percent"]],
        covariates=("age",),
        covariate_values=covariates.loc[["x", "y"], ["age"]],
    )
    assert scaling.radiomics_mean == (2.0,) and scaling.radiomics_scale == (1.0,) and scaling.n_inputs == 3
    matrix = scaling.matrix(features, covariates, ["z", "x"])
    assert matrix.dtype == np.float32
    np.testing.assert_allclose(matrix, [[0.0, 3.0, 0.0], [-1.0, -1.0, -1.0]])  # z's missing radiomics -> the mean
    one = scaling.transform(radiomics=[[3.0]], scar=[[15.0]], covariates=[[70.0]])
    np.testing.assert_allclose(one, [[1.0, 0.0, 1.0]])


def test_the_tabular_scaling_keeps_the_stored_layout() -> None:
    """The dict layout models have always stored (older model files load; the same keys in the same order)."""
    stored = {
        "radiomics": ["a"],
        "radiomics_mean": [2.0],
        "radiomics_scale": [1.0],
        "covariates": [],
        "covariate_mean": [],
        "covariate_scale": [],
        "scar_metrics": ["scar_percent", "greyzone_percent"],
        "scar_metrics_mean": [10.0, 3.0],
        "scar_metrics_scale": [5.0, 1.0],
        "scar_methods": ["label"],
        "head_penalizer": 0.1,
    }
    scaling = TabularScaling.from_dict(json.loads(json.dumps(stored)))
    assert json.dumps(scaling.to_dict()) == json.dumps(stored)
    with pytest.raises(ValueError, match="unknown tabular scaling field"):
        TabularScaling.from_dict({**stored, "extra": 1})
    with pytest.raises(ValueError, match="1 means and 0 scales"):
        TabularScaling(radiomics=("a",), radiomics_mean=(1.0,))


def test_a_pretraining_card_from_before_markers_still_loads(tmp_path: Path) -> None:
    """Encoders pretrained before the card carried ``format`` and ``model_sha256`` load as they did."""
    model = encoder(0)
    save_encoder(tmp_path, model)
    old = {k: v for k, v in encoder_card(kind="lgerisk pretrained encoder").to_dict().items() if k != "format"}
    (tmp_path / CARD_FILE).write_text(json.dumps(old))
    loaded, card = load_encoder(tmp_path)
    assert card.kind == "lgerisk pretrained encoder" and card.format is None and card.model_sha256 is None
    assert torch.equal(loaded.image_encoder.stem[0].weight, model.image_encoder.stem[0].weight)


@pytest.mark.parametrize(
    ("card", "message"),
    [
        ({"created_by": "lgerisk 0.0.9 finetune"}, r"model card of another format \(None, lgerisk 0.0.9\)"),
        ({"format": RISK_MODEL_FORMAT}, "do not belong together"),
    ],
)
def test_a_risk_card_needs_its_marker_and_hash(tmp_path: Path, card: dict[str, str], message: str) -> None:
    risk = SurvivalModel(SurvivalModelConfig(EncoderConfig(width=4, embedding_dim=8), n_tabular=0))
    save_risk_model(tmp_path, risk, TabularScaling())
    (tmp_path / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(InputError, match=message):
        load_risk_model(tmp_path)


def test_a_card_missing_what_this_version_needs_is_refused_by_name(tmp_path: Path) -> None:
    save_encoder(tmp_path, encoder(0))
    card = {k: v for k, v in encoder_card().to_dict().items() if k not in ("tensor_spec", "radiomics")}
    write_card(tmp_path, card)
    with pytest.raises(InputError, match="lacks tensor_spec, radiomics"):
        load_encoder(tmp_path)


def test_a_risk_model_card_round_trips_through_its_json_layout() -> None:
    card = RiskModelCard.example()
    layout = json.loads(json.dumps(card.to_dict()))
    assert layout["survival"]["risk_thresholds"] == [-0.5, 0.5] and "model_sha256" not in layout
    assert RiskModelCard.from_dict(layout) == card
    with pytest.raises(InputError, match="not a risk model"):
        RiskModelCard.from_dict({**layout, "format": ENCODER_FORMAT})
