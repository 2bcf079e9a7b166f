"""Model files (lgerisk/artifacts.py) and the head's tabular scaling (lgerisk/models/tabular.py)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from lgerisk.artifacts import (
    CARD_FILE,
    ENCODER_FORMAT,
    MODEL_FILE,
    RISK_MODEL_FORMAT,
    card_digest,
    file_sha256,
    load_encoder,
    load_risk_model,
    read_card,
    read_risk_model_card,
    save_encoder,
    save_risk_model,
    seal_card,
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
    assert written["card_sha256"] == card_digest(written)  # sealed
    loaded, card = load_encoder(tmp_path)
    assert card.to_dict() == written and card == dataclasses.replace(
        encoder_card(), model_sha256=written["model_sha256"], card_sha256=written["card_sha256"]
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


# --- sealed cards: an edit of the card or of the weights is refused on loading ------------------------------


def risk_run(run: Path) -> Path:
    """A small risk model folder as finetune writes one (a card with a tensor spec, training ranges, synthetic)."""
    risk = SurvivalModel(SurvivalModelConfig(EncoderConfig(width=4, embedding_dim=8), n_tabular=1))
    save_risk_model(run, risk, TabularScaling(covariates=("age",), covariate_mean=(60.0,), covariate_scale=(10.0,)))
    card = dataclasses.replace(
        RiskModelCard.example(),
        tensor_spec={"slices": 8, "size": 32, "channels": ["image", "myocardium"]},
        training_ranges={"slice_count": [8.0, 12.0], "scar_percent": [0.0, 31.5]},
        versions={"lgerisk": "0.1.0", "torch": "2.13.0"},
    )
    write_card(run, card)
    return run


def edit_card(run: Path, edit: Callable[[dict[str, Any]], object], seal: bool = False) -> None:
    card = json.loads((run / CARD_FILE).read_text(encoding="utf-8"))
    edit(card)
    (run / CARD_FILE).write_text(json.dumps(seal_card(card) if seal else card, indent=2), encoding="utf-8")


EDITS: dict[str, Callable[[dict[str, Any]], object]] = {
    "tensor_spec edited": lambda card: card["tensor_spec"].update(slices=12),
    "training_ranges deleted": lambda card: card.pop("training_ranges"),
    "data.synthetic flipped": lambda card: card["data"].update(synthetic=False),
    "a baseline hazard edited": lambda card: card["survival"]["baseline_cumhaz"].__setitem__(0, 0.2),
    "model_sha256 edited": lambda card: card.update(model_sha256="0" * 64),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_an_edited_risk_model_card_is_refused_naming_it(tmp_path: Path, edit: str) -> None:
    run = risk_run(tmp_path)
    assert load_risk_model(run)[2].training_ranges == {"slice_count": [8.0, 12.0], "scar_percent": [0.0, 31.5]}
    edit_card(run, EDITS[edit])
    for load in (load_risk_model, read_risk_model_card):  # the model, and the card alone (prediction workers)
        with pytest.raises(InputError) as caught:
            load(run)
        assert str(caught.value) == (
            f"{run / CARD_FILE}: changed since lgerisk wrote it (its content no longer matches its card_sha256); "
            "a model is used only as trained: train it again with lgerisk finetune."
        )


def test_an_edited_encoder_card_is_refused(tmp_path: Path) -> None:
    save_encoder(tmp_path, encoder(0))
    write_card(tmp_path, encoder_card())
    edit_card(tmp_path, lambda card: card["tensor_spec"].update(slices=12))
    with pytest.raises(InputError, match=r"model_card\.json: changed since lgerisk wrote it .* lgerisk pretrain\.$"):
        load_encoder(tmp_path)


def test_changed_weights_are_refused_naming_the_model_file(tmp_path: Path) -> None:
    run = risk_run(tmp_path)
    state = torch.load(run / MODEL_FILE, weights_only=True)
    state["model"]["head.weight"] = state["model"]["head.weight"] + 1.0
    with open(run / MODEL_FILE, "wb") as handle:  # a byte-level change of the weights, the card as it was
        torch.save(state, handle)
    for load in (load_risk_model, read_risk_model_card):
        with pytest.raises(InputError) as caught:
            load(run)
        assert str(caught.value).startswith(f"{run / MODEL_FILE}: this file and {CARD_FILE} do not belong together")


@pytest.mark.parametrize("seal", [False, True], ids=["as edited", "sealed again"])
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda card: card["versions"].update(lgerisk="9.9.0"),
            r"written by lgerisk 9\.9\.0, newer than this lgerisk 0\.1\.0; update lgerisk to load it\.$",
        ),
        (
            lambda card: card.update(created_by="lgerisk 9.9.0 finetune"),
            r"written by lgerisk 9\.9\.0, newer than this lgerisk 0\.1\.0; update lgerisk to load it\.$",
        ),
        (
            lambda card: card.update(format="lgerisk-survival-2"),
            r"of format 'lgerisk-survival-2', newer than this lgerisk 0\.1\.0 reads \('lgerisk-survival-1'\); "
            r"update lgerisk to load it\.$",
        ),
    ],
    ids=["versions.lgerisk", "created_by", "format"],
)
def test_a_card_from_a_newer_lgerisk_is_refused(
    tmp_path: Path, edit: Callable[[dict[str, Any]], object], message: str, seal: bool
) -> None:
    """Sealed again or not: what a later version writes may mean something else, so it is never read as ours."""
    run = risk_run(tmp_path)
    edit_card(run, edit, seal=seal)
    for load in (load_risk_model, read_risk_model_card):
        with pytest.raises(InputError, match=f"^{run / CARD_FILE}: {message}"):
            load(run)


def test_model_weights_of_a_newer_format_are_refused_as_newer(tmp_path: Path) -> None:
    run = risk_run(tmp_path)
    state = torch.load(run / MODEL_FILE, weights_only=True)
    with open(run / MODEL_FILE, "wb") as handle:
        torch.save({**state, "format": "lgerisk-survival-2"}, handle)
    with pytest.raises(InputError, match=r"model\.pt: of format 'lgerisk-survival-2', newer than this lgerisk"):
        load_risk_model(run)


def test_a_risk_model_card_without_a_seal_is_refused(tmp_path: Path) -> None:
    """A card as lgerisk wrote it before seals (or with its seal removed): predictions come from what it holds, so
    it is refused with what to do, never loaded unchecked."""
    run = risk_run(tmp_path)
    edit_card(run, lambda card: card.pop("card_sha256"))
    for load in (load_risk_model, read_risk_model_card):
        with pytest.raises(InputError) as caught:
            load(run)
        assert str(caught.value) == (
            f"{run / CARD_FILE}: has no card_sha256, so a change to it could not be seen (a card from before lgerisk "
            "sealed its cards, or one whose seal was removed); train the model again with lgerisk finetune."
        )


def test_an_unsealed_encoder_card_loads_only_from_the_versions_before_seals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Encoders pretrained before seals (lgerisk 0.1.0) load as they did; a card claiming a later version must be
    sealed (here: as if seals had come before 0.1.0)."""
    import lgerisk.artifacts

    save_encoder(tmp_path, encoder(0))
    write_card(tmp_path, encoder_card(versions={"lgerisk": "0.1.0"}))
    edit_card(tmp_path, lambda card: card.pop("card_sha256"))
    assert load_encoder(tmp_path)[1].card_sha256 is None
    monkeypatch.setattr(lgerisk.artifacts, "LAST_UNSEALED", "0.0.9")
    with pytest.raises(InputError, match=r"model_card\.json: has no card_sha256, .* lgerisk pretrain\.$"):
        load_encoder(tmp_path)


def test_the_seal_is_the_only_change_to_the_card_file(tmp_path: Path) -> None:
    """model_card.json is what it was, byte for byte, with one line more: the seal of the rest."""
    run = risk_run(tmp_path)
    text = (run / CARD_FILE).read_text(encoding="utf-8")
    card = json.loads(text)
    unsealed = {k: v for k, v in card.items() if k != "card_sha256"}
    lines = text.splitlines(keepends=True)
    assert lines[1] == f'  "card_sha256": "{card_digest(unsealed)}",\n'  # sorted first of the keys
    assert "".join(lines[:1] + lines[2:]) == json.dumps(unsealed, indent=2, sort_keys=True) + "\n"
