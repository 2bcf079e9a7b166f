"""A myocardium labelled on too few slices is one failed case of the batch (the same minimum predict uses)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lgerisk.preprocess.config import PreprocessConfig
from lgerisk.preprocess.run import preprocess_cohort
from tests.helpers import make_cohort, phantom_arrays, write_volume


def test_a_two_voxel_myocardium_fails_its_case_and_the_others_go_on(tmp_path: Path) -> None:
    from lgerisk.preprocess.pipeline import MIN_SLICES_WITH_MYOCARDIUM

    data = make_cohort(tmp_path / "cohort", n=3)
    _, labels = phantom_arrays(seed=1)
    labels[np.isin(labels, (2, 3))] = 0  # no myocardium but two voxels on one slice, beside the blood pool
    blood = np.argwhere(labels[2] == 1)[0]
    labels[2, blood[0], blood[1] - 2 : blood[1]] = 2
    write_volume(data / "masks" / "case1.nii.gz", labels)

    report, table = preprocess_cohort(data, tmp_path / "prep", PreprocessConfig(labels="emidec"))
    assert sorted(report.done) == ["case0", "case2"] and list(report.failed) == ["case1"]
    assert report.failed["case1"] == (
        f"{data / 'masks' / 'case1.nii.gz'}: the myocardium is labelled on only 1 slice (2 voxels); a short-axis "
        f"stack with the myocardium on {MIN_SLICES_WITH_MYOCARDIUM} or more slices is needed."
    )
    assert sorted(table["case_id"]) == ["case0", "case2"]
    errors = pd.read_csv(tmp_path / "prep" / "errors.csv")
    assert list(errors["case_id"]) == ["case1"] and errors["error"][0] == report.failed["case1"]
