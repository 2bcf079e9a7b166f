"""predict over masks its label map cannot read: one sentence before any work, naming the preset that fits."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import lgerisk.predict.run as predict_run
from lgerisk.errors import InputError
from lgerisk.io.cohort import discover_cohort
from lgerisk.preprocess.config import PreprocessConfig
from tests.helpers import phantom_arrays, write_volume

MYOPS = {1: 500, 2: 200, 3: 2221}
"""Phantom labels (blood pool, myocardium, scar) as MyoPS 2020 numbers them."""


def test_predict_over_myops_masks_with_an_emidec_model_names_the_myops_preset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(5):
        image, labels = phantom_arrays(seed=index)
        write_volume(tmp_path / "myops" / "images" / f"Case{index}.nii.gz", image)
        write_volume(tmp_path / "myops" / "masks" / f"Case{index}.nii.gz", np.vectorize(MYOPS.get)(labels, 0))
    cases = list(discover_cohort(tmp_path / "myops").cases)
    # the model's preprocessing settings alone (labels: the model's, emidec): no model needed to read the masks
    preparer = SimpleNamespace(preprocess=PreprocessConfig(labels="emidec"))
    monkeypatch.setattr(predict_run, "ScanPreparer", SimpleNamespace(load=lambda model_dir, labels: preparer))
    with pytest.raises(InputError) as refused:
        predict_run.predict_cases(cases, tmp_path / "model", tmp_path / "predictions.csv")
    message = str(refused.value)
    assert message.startswith(f"{tmp_path / 'myops' / 'masks'}: labels='emidec' (") and message.endswith(
        "which hold label(s) 200, 500, 2221; pass labels='myops'."
    )
    assert refused.value.setting == "labels" and not (tmp_path / "predictions.csv.parts").exists()
