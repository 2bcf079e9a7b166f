"""Classic baselines: scar-% Cox and penalised radiomics Cox, selection inside fit() only."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lgerisk.errors import InputError
from lgerisk.evaluation.baselines import (
    PENALTY_GRID,
    ClinicalCox,
    RadiomicsCox,
    RiskModel,
    ScarCox,
    case_ids,
    fit_predict,
    score_statistics,
)

DRIVER = "scar__original_firstorder_F07"


def simulate(
    n: int = 200, p: int = 40, seed: int = 0, effect: float = 1.0
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """A feature table whose column ``DRIVER`` alone drives an exponential hazard exp(effect * x)."""
    rng = np.random.default_rng(seed)
    columns = [f"{'scar' if j % 2 else 'myocardium'}__original_firstorder_F{j:02d}" for j in range(p)]
    x = rng.normal(size=(n, p)) * rng.uniform(0.5, 50.0, size=p) + rng.uniform(-100, 100, size=p)
    table = pd.DataFrame(x, columns=columns)
    driver = (table[DRIVER] - table[DRIVER].mean()) / table[DRIVER].std()
    event_time = rng.exponential(1.0 / np.exp(effect * driver.to_numpy()))
    censor_time = rng.uniform(0.5, 3.0, size=n)
    time = np.minimum(event_time, censor_time)
    event = (event_time <= censor_time).astype(int)
    table.insert(0, "case_id", [f"P{i:03d}" for i in range(n)])
    table["scar_percent"] = 10 + 5 * driver.to_numpy() + rng.normal(0, 1, n)
    table["scar__status"] = "ok"
    return table, time, event


def breslow_loglik(beta: float, x: np.ndarray, time: np.ndarray, event: np.ndarray) -> float:
    return sum(beta * x[i] - np.log(np.exp(beta * x[time >= time[i]]).sum()) for i in np.flatnonzero(event))


def test_score_statistics_match_the_breslow_partial_likelihood_with_ties():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 3))
    time = np.round(rng.exponential(size=40), 1)  # many ties
    event = rng.integers(0, 2, size=40)
    event[0] = 1
    h = 1e-4
    expected = []
    for j in range(3):
        f = [breslow_loglik(b, x[:, j], time, event) for b in (-h, 0.0, h)]
        u, info = (f[2] - f[0]) / (2 * h), -(f[2] - 2 * f[1] + f[0]) / h**2
        expected.append(u**2 / info)
    np.testing.assert_allclose(score_statistics(x, time, event), expected, rtol=1e-5)


def test_selection_finds_the_driving_column_among_noise():
    table, time, event = simulate()
    model = RadiomicsCox(max_features=5).fit(table, time, event)
    assert model.selected_[0] == DRIVER
    assert model.coefficients_[0] > 0.5  # hazard ratio per SD ~ e^1
    assert "scar_percent" not in model.selected_  # QC metrics are not radiomics
    risk = model.predict_risk(table)
    assert np.corrcoef(risk, table[DRIVER])[0, 1] > 0.9
    assert isinstance(model, RiskModel)


def test_correlated_duplicates_are_skipped():
    table, time, event = simulate(seed=1)
    rng = np.random.default_rng(1)
    table["myocardium__original_firstorder_Copy"] = 3 * table[DRIVER] + rng.normal(0, 0.01, len(table))
    table["myocardium__original_firstorder_Negated"] = -table[DRIVER]
    model = RadiomicsCox(max_features=4, correlation_threshold=0.9).fit(table, time, event)
    kept = [
        c
        for c in model.selected_
        if c in (DRIVER, "myocardium__original_firstorder_Copy", "myocardium__original_firstorder_Negated")
    ]
    assert len(kept) == 1
    assert len(model.selected_) == 4
    assert {"myocardium__original_firstorder_Copy", "myocardium__original_firstorder_Negated", DRIVER} - set(
        kept
    ) <= set(model.skipped_correlated_)
    z = (table[model.selected_] - model.means_) / model.stds_
    r = np.corrcoef(z.to_numpy().T)
    assert np.max(np.abs(r[~np.eye(4, dtype=bool)])) <= 0.9


@pytest.mark.parametrize("make", [lambda: RadiomicsCox(max_features=6), lambda: ScarCox()])
def test_poisoned_test_rows_change_nothing_learned(make):
    table, time, event = simulate(n=150, seed=2)
    ids = table["case_id"].tolist()
    train, test = ids[:100], ids[100:]
    model = make()
    risk_train, risk_test = fit_predict(model, table, time, event, train, test)
    learned = json.dumps(model.to_dict(), sort_keys=True)

    poisoned, p_time, p_event = table.copy(), time.copy(), event.copy()
    rows = np.arange(100, 150)
    rng = np.random.default_rng(99)
    p_time[rows] = rng.uniform(0.01, 100, size=50)
    p_event[rows] = 1
    selected = getattr(model, "selected_", [])
    noise = next(c for c in table.columns if c.startswith("myocardium__") and c not in selected)
    poisoned.loc[rows, noise] = -p_time[rows] * 1e6  # perfectly predictive of the test outcomes
    poisoned.loc[rows, DRIVER] = -poisoned.loc[rows, DRIVER] * 1e3  # reversed and huge
    poisoned.loc[rows[:5], "myocardium__original_firstorder_F02"] = np.nan
    poisoned.loc[rows[5:10], "scar__original_firstorder_F03"] = np.inf
    poisoned.loc[rows, "myocardium__original_firstorder_F04"] = 7.0
    text = next(c for c in table.columns if c.startswith("scar__original") and c not in selected)
    poisoned[text] = poisoned[text].astype(object)
    poisoned.loc[rows[0], text] = "n/a"  # a text cell in a test row: the column stays a candidate in training
    other = make()
    risk_train2, _ = fit_predict(other, poisoned, p_time, p_event, train, test)
    assert json.dumps(other.to_dict(), sort_keys=True) == learned
    np.testing.assert_array_equal(risk_train2, risk_train)  # bit-identical
    assert risk_test.shape == (50,)
    if isinstance(other, RadiomicsCox):
        np.testing.assert_array_equal(other.coefficients_, model.coefficients_)
        assert noise not in other.selected_


def test_fit_is_deterministic_and_round_trips_through_json():
    table, time, event = simulate(n=120, seed=4)
    first = RadiomicsCox(max_features=5, penalizer=0.2, l1_ratio=0.5).fit(table, time, event)
    second = RadiomicsCox(max_features=5, penalizer=0.2, l1_ratio=0.5).fit(table, time, event)
    text = json.dumps(first.to_dict(), allow_nan=False)
    assert text == json.dumps(second.to_dict(), allow_nan=False)
    np.testing.assert_array_equal(first.predict_risk(table), second.predict_risk(table))
    loaded = RadiomicsCox.from_dict(json.loads(text))
    np.testing.assert_allclose(loaded.predict_risk(table), first.predict_risk(table), rtol=0, atol=1e-12)
    scar = ScarCox().fit(table, time, event)
    again = ScarCox.from_dict(json.loads(json.dumps(scar.to_dict(), allow_nan=False)))
    np.testing.assert_array_equal(again.predict_risk(table), scar.predict_risk(table))


def test_non_finite_and_constant_training_columns_are_dropped_and_test_nan_imputed():
    table, time, event = simulate(n=80, seed=5)
    table.loc[3, DRIVER] = np.nan  # not measurable in one training case: dropped without imputation
    table["myocardium__original_shape_Constant"] = 4.2
    table["myocardium__original_shape_NearlyConstant"] = 1e6 + np.arange(80) * 1e-6
    model = RadiomicsCox(max_features=3).fit(table, time, event)  # default columns skip the exactly constant
    assert "myocardium__original_shape_Constant" not in model.selected_
    columns = [c for c in table.columns if c.startswith(("myocardium__", "scar__original"))]
    model = RadiomicsCox(max_features=3, columns=columns, impute=False).fit(table, time, event)
    assert DRIVER not in model.selected_
    assert model.dropped_not_finite_ == 1 and model.dropped_constant_ == 2
    assert model.n_candidates_ == len(columns)
    new = table.iloc[:4].copy()
    new.loc[new.index[:2], model.selected_[0]] = np.nan
    risk = model.predict_risk(new)
    assert model.imputed_ == 2 and np.all(np.isfinite(risk))
    assert risk[0] == pytest.approx(
        float(
            model.coefficients_[1:]
            @ ((new.iloc[0][model.selected_[1:]].to_numpy(float) - model.means_[1:]) / model.stds_[1:])
        )
    )


def test_case_ids_from_the_index_and_explicit_columns():
    table, time, event = simulate(n=60, seed=6)
    indexed = table.set_index("case_id")
    assert case_ids(indexed)[:2].tolist() == ["P000", "P001"]
    ids = indexed.index.tolist()
    risk_train, risk_test = fit_predict(RadiomicsCox(max_features=2), indexed, time, event, ids[:40], ids[40:])
    assert risk_train.shape == (40,) and risk_test.shape == (20,)
    chosen = RadiomicsCox(columns=["scar_percent", DRIVER], max_features=1).fit(indexed, time, event)
    assert chosen.selected_ in (["scar_percent"], [DRIVER])


def test_scar_cox_matches_lifelines():
    from lifelines import CoxPHFitter

    table, time, event = simulate(n=60, seed=7)
    model = ScarCox().fit(table, time, event)
    reference = CoxPHFitter().fit(
        pd.DataFrame({"scar_percent": table["scar_percent"], "t": time, "e": event}), "t", "e"
    )
    assert model.coefficient_ == pytest.approx(float(reference.params_["scar_percent"]))
    np.testing.assert_allclose(
        model.predict_risk(table), reference.predict_log_partial_hazard(table[["scar_percent"]]).to_numpy(), atol=1e-9
    )
    assert model.name == "scar_cox" and ScarCox("lvef").name == "cox_lvef"


def test_errors_are_one_clear_sentence():
    table, time, event = simulate(n=30, seed=8)
    with pytest.raises(InputError, match="no column 'scar_percent'"):
        ScarCox().fit(table.drop(columns="scar_percent"), time, event)
    broken = table.copy()
    broken.loc[[1, 4], "scar_percent"] = np.nan
    with pytest.raises(InputError, match="'scar_percent' is missing or not finite for 2 of the 30 training cases"):
        ScarCox().fit(broken, time, event)
    with pytest.raises(InputError, match="no events among the 30 training cases"):
        ScarCox().fit(table, time, np.zeros(30, dtype=int))
    with pytest.raises(InputError, match="30 feature rows but 29 times"):
        RadiomicsCox().fit(table, time[:29], event[:29])
    with pytest.raises(InputError, match="event indicators must be 0 or 1"):
        RadiomicsCox().fit(table, time, event * 2)
    with pytest.raises(InputError, match="not fitted"):
        RadiomicsCox().predict_risk(table)
    with pytest.raises(InputError, match="max_features"):
        RadiomicsCox(max_features=0)
    with pytest.raises(InputError, match="l1_ratio"):
        RadiomicsCox(l1_ratio=2.0)
    with pytest.raises(InputError, match="no varying radiomics column"):
        RadiomicsCox().fit(table[["case_id", "scar_percent"]], time, event)
    fitted = RadiomicsCox(max_features=2).fit(table, time, event)
    with pytest.raises(InputError, match=f"no column {fitted.selected_[0]!r}"):
        fitted.predict_risk(table.drop(columns=fitted.selected_[0]))
    ids = table["case_id"].tolist()
    with pytest.raises(InputError, match="no row for test case 'nobody'"):
        fit_predict(ScarCox(), table, time, event, ids[:20], ["nobody"])
    with pytest.raises(InputError, match="'P005' is in both the training and the test cases"):
        fit_predict(ScarCox(), table, time, event, ids[:20], ids[5:6])


def test_a_scar_free_training_case_costs_no_scar_feature_and_adds_a_presence_indicator():
    """Issue 11: every scar__ feature is NaN for a scar-free heart; the driver must survive such a fold."""
    table, time, event = simulate(n=80, seed=5)
    scar_columns = [c for c in table.columns if c.startswith("scar__")]
    free = table.index[:12]
    table.loc[free, scar_columns] = np.nan  # 12 scar-free training cases
    model = RadiomicsCox(max_features=3).fit(table, time, event)
    assert DRIVER in model.selected_ and model.dropped_not_finite_ == 0
    from lgerisk.data.features import feature_columns

    assert model.n_candidates_ == len(feature_columns(table, qc_metrics=False)) + 1  # + scar__present
    # imputation uses the training rows only: changing a test row's value changes nothing else
    means = model.means_.copy()
    risk = model.predict_risk(table.iloc[:20])
    assert np.all(np.isfinite(risk)) and model.imputed_ == 12
    assert np.array_equal(model.means_, means)
    measured = table.loc[table.index[12:], DRIVER].to_numpy(float)
    assert model.means_[model.selected_.index(DRIVER)] == pytest.approx(measured.mean())
    dropped = RadiomicsCox(max_features=3, impute=False).fit(table, time, event)
    scar_candidates = [c for c in feature_columns(table, qc_metrics=False) if c.startswith("scar__")]
    assert DRIVER not in dropped.selected_ and dropped.dropped_not_finite_ == len(scar_candidates)


def test_presence_indicator_is_a_candidate_and_predicts():
    rng = np.random.default_rng(1)
    n = 120
    present = rng.random(n) < 0.6
    table = pd.DataFrame(
        {
            "case_id": [f"P{i:03d}" for i in range(n)],
            "scar__original_firstorder_Mean": np.where(present, rng.normal(size=n), np.nan),
            "myocardium__original_firstorder_Mean": rng.normal(size=n),
        }
    )
    time = rng.exponential(np.exp(-1.5 * present))  # having scar at all is what matters
    model = RadiomicsCox(max_features=1).fit(table, time, np.ones(n, dtype=int))
    assert model.selected_ == ["scar__present"] and model.coefficients_[0] > 0
    restored = RadiomicsCox.from_dict(json.loads(json.dumps(model.to_dict())))
    assert np.allclose(restored.predict_risk(table), model.predict_risk(table))


def test_inner_cv_chooses_the_penalty_on_training_rows():
    table, time, event = simulate(n=100, seed=7)
    model = RadiomicsCox(max_features=5, penalizer="cv").fit(table, time, event)
    assert model.penalizer_ in PENALTY_GRID
    assert set(model.cv_scores_) == {f"{p:g}" for p in PENALTY_GRID}
    best = max(model.cv_scores_.values())
    assert model.cv_scores_[f"{model.penalizer_:g}"] == best and 0.5 < best <= 1.0
    noise = table.copy()  # outcomes unrelated to every column: a heavy penalty should do no worse
    rng = np.random.default_rng(3)
    shuffled = RadiomicsCox(max_features=5, penalizer="cv").fit(noise, rng.permutation(time), event)
    assert shuffled.penalizer_ >= model.penalizer_ or max(shuffled.cv_scores_.values()) < best


def test_clinical_cox_matches_lifelines_and_round_trips():
    from lifelines import CoxPHFitter

    rng = np.random.default_rng(2)
    n = 150
    frame = pd.DataFrame({"scar_percent": rng.uniform(0, 30, n), "greyzone_percent": rng.uniform(0, 12, n)})
    time = rng.exponential(np.exp(-(0.05 * frame.scar_percent + 0.1 * frame.greyzone_percent)))
    event = (rng.random(n) < 0.8).astype(int)
    model = ClinicalCox().fit(frame, time, event)
    reference = CoxPHFitter().fit(frame.assign(t=time, e=event), "t", "e")
    assert np.allclose(model.coefficients_, reference.params_[["scar_percent", "greyzone_percent"]], rtol=1e-5)
    restored = ClinicalCox.from_dict(json.loads(json.dumps(model.to_dict())))
    assert np.allclose(restored.predict_risk(frame), model.predict_risk(frame))
    with pytest.raises(InputError, match="greyzone_percent"):
        ClinicalCox().fit(frame.assign(greyzone_percent=np.nan), time, event)


def test_decorrelated_columns_keep_scar_percent_and_drop_redundant_features() -> None:
    from lgerisk.data.features import decorrelated_columns

    rng = np.random.default_rng(0)
    scar = rng.uniform(0, 30, 40)
    frame = pd.DataFrame(
        {
            "case_id": [f"c{i}" for i in range(40)],
            "scar__original_shape_VoxelVolume": scar * 3 + rng.normal(0, 0.1, 40),
            "myocardium__original_firstorder_Mean": rng.normal(size=40),
            "myocardium__original_firstorder_Median": None,
            "scar_percent": scar,
            "greyzone_percent": rng.uniform(0, 10, 40),
        }
    )
    frame["myocardium__original_firstorder_Median"] = frame["myocardium__original_firstorder_Mean"] * 0.9 + 0.01
    columns = [c for c in frame.columns if c != "case_id"]
    kept = decorrelated_columns(frame, columns)
    # scar % comes first among the QC metrics, so the voxel volume (r ~ 1 with it) goes, not scar %
    assert kept == ["myocardium__original_firstorder_Mean", "scar_percent", "greyzone_percent"]
    # only the training rows decide: on rows where the two myocardium columns disagree, both stay
    frame.loc[:19, "myocardium__original_firstorder_Median"] = rng.normal(size=20)
    assert "myocardium__original_firstorder_Median" in decorrelated_columns(
        frame, columns, cases=[f"c{i}" for i in range(20)]
    )
    assert decorrelated_columns(frame, columns, max_abs_r=1.0) == columns
