"""A trained model whose card was edited by hand (issue 25): predict and explain refuse it in one sentence
naming the card, where before the edit moved a scan's risk group with no message."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lgerisk.cards import seal_card
from tests.helpers import SAMPLE_DATA, assert_one_sentence

EDITS: dict[str, Callable[[dict[str, Any]], object]] = {
    "tensor_spec": lambda card: card["tensor_spec"].update(slices=12),
    "training_ranges": lambda card: card.pop("training_ranges"),
    "data.synthetic": lambda card: card["data"].update(synthetic=False),
}


def _scan(folder: Path) -> Path:
    folder.mkdir(parents=True)
    shutil.copy(SAMPLE_DATA / "images" / "synth-0001.nii.gz", folder / "X.nii.gz")
    shutil.copy(SAMPLE_DATA / "masks" / "synth-0001.nii.gz", folder / "X_seg.nii.gz")
    return folder / "X.nii.gz"


@pytest.mark.parametrize("edit", list(EDITS))
def test_predict_and_explain_refuse_a_card_edited_by_hand(runs, tmp_path: Path, cli, edit: str) -> None:
    model = tmp_path / "model"
    shutil.copytree(runs["main"], model, ignore=shutil.ignore_patterns("cache", "parts"))
    card = json.loads((model / "model_card.json").read_text())
    EDITS[edit](card)
    (model / "model_card.json").write_text(json.dumps(card, indent=2))
    scan = _scan(tmp_path / "scan")
    for command in (("predict", scan), ("explain", scan, "--out", tmp_path / "explain", "--steps", "4")):
        result = cli(*command, "--model", model)
        assert result.exit_code == 2, result.output
        assert_one_sentence(result.output, "error:", (str(model / "model_card.json"), "changed since lgerisk wrote it"))
    assert not (tmp_path / "explain").exists() or not any((tmp_path / "explain").rglob("prediction.json"))


def test_the_same_card_sealed_again_is_the_model_as_edited(runs, tmp_path: Path, cli) -> None:
    """seal_card is how a test (or a tool) makes a card as a run would have written it: the edit then counts."""
    model = tmp_path / "model"
    shutil.copytree(runs["main"], model, ignore=shutil.ignore_patterns("cache", "parts"))
    card = json.loads((model / "model_card.json").read_text())
    card["data"]["synthetic"] = False
    (model / "model_card.json").write_text(json.dumps(card))
    refused = cli("predict", _scan(tmp_path / "scan"), "--model", model, "--format", "json")
    assert refused.exit_code == 2 and "changed since lgerisk wrote it" in refused.output
    (model / "model_card.json").write_text(json.dumps(seal_card(card)))
    result = cli("predict", tmp_path / "scan" / "X.nii.gz", "--model", model, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["model_trained_on_synthetic"] is False
