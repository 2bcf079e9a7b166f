"""Tests of the torch data path: tensors and their cache, radiomics features, augmentation, dataset, loader.

One session-scoped fixture preprocesses ``sample_data/`` (32 synthetic cases) and extracts its feature
table once (~3 s on 2 cores); augmentation tests use the default (2, 12, 96, 96) tensors.
"""

from __future__ import annotations

import itertools
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import torch

from lgerisk.data.augment import AugmentConfig, Augmenter, augment, make_augmentation
from lgerisk.data.dataset import PretrainDataset, item_seed, make_loader
from lgerisk.data.features import QC_METRICS, FeatureScaler, feature_columns
from lgerisk.data.tensors import TensorCache, TensorSpec, case_tensor, fit_plane, slice_indices
from lgerisk.errors import CaseError, InputError
from lgerisk.io.cohort import Case, discover_cohort
from tests.helpers import SAMPLE_DATA

SPATIAL_ONLY = AugmentConfig(bias_field=False, noise=False, gamma=False, motion=False)
INTENSITY_ONLY = AugmentConfig(affine=False, elastic=False)


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """sample_data preprocessed, its feature table and its cases (built once per test session)."""
    from lgerisk.preprocess.config import PreprocessConfig
    from lgerisk.preprocess.run import preprocess_cohort
    from lgerisk.radiomics.run import extract_cohort

    root = tmp_path_factory.mktemp("prepared")
    preprocess_cohort(SAMPLE_DATA, root / "prep", PreprocessConfig(), jobs=2)
    extract_cohort(root / "prep", root / "radiomics.csv", jobs=2)
    cohort = discover_cohort(root / "prep")
    return {
        "root": root,
        "cases": list(cohort.cases),
        "table_path": root / "radiomics.csv",
        "table": pd.read_csv(root / "radiomics.csv", dtype={"case_id": str}),
        "qc": pd.read_csv(root / "prep" / "cases.csv", dtype={"case_id": str}),
    }


def arrays(case: Case) -> tuple[np.ndarray, np.ndarray]:
    return (
        sitk.GetArrayFromImage(sitk.ReadImage(str(case.image))),
        sitk.GetArrayFromImage(sitk.ReadImage(str(case.mask))),
    )


@pytest.fixture(scope="session")
def tensors(prepared: dict) -> list[np.ndarray]:
    return [case_tensor(c.image, c.mask) for c in prepared["cases"][:8]]


# ---------------------------------------------------------------- tensors


def test_case_tensor_channels_and_apical_padding(prepared: dict) -> None:
    case = prepared["cases"][0]
    image, labels = arrays(case)
    assert image.shape[1:] == (96, 96) and image.shape[0] < 12
    n = image.shape[0]
    x = case_tensor(case.image, case.mask, TensorSpec(channels=("image", "myocardium", "scar", "greyzone")))
    assert x.shape == (4, 12, 96, 96) and x.dtype == np.float32
    np.testing.assert_array_equal(x[0, :n], image)
    np.testing.assert_array_equal(x[1, :n], np.isin(labels, [2, 3, 4, 5]))
    np.testing.assert_array_equal(x[2, :n], np.isin(labels, [3, 4]))
    np.testing.assert_array_equal(x[3, :n], labels == 5)
    assert x[3].sum() > 0  # the case has a grey zone, so the channel is not trivially empty
    assert not x[:, n:].any()  # zero slices after the apex
    assert x[1, 0].sum() > 0  # slice 0 (base) first: the LV is there
    assert set(np.unique(x[1:])) <= {0.0, 1.0}


def test_slice_selection_keeps_base_and_apex(prepared: dict) -> None:
    assert slice_indices(13, 5) == [0, 3, 6, 9, 12]
    assert slice_indices(7, 7) == list(range(7)) and slice_indices(3, 12) == [0, 1, 2] and slice_indices(5, 1) == [0]
    for count in range(2, 40):
        for target in range(2, count):
            chosen = slice_indices(count, target)
            assert chosen[0] == 0 and chosen[-1] == count - 1 and len(chosen) == target
            assert all(b > a for a, b in itertools.pairwise(chosen))
            ideal = np.linspace(0, count - 1, target)
            assert np.abs(np.array(chosen) - ideal).max() <= 0.5
    case = next(c for c in prepared["cases"] if arrays(c)[0].shape[0] >= 8)
    image, _ = arrays(case)
    x = case_tensor(case.image, case.mask, TensorSpec(slices=4))
    np.testing.assert_array_equal(x[0], image[slice_indices(image.shape[0], 4)])


def test_inplane_crop_and_pad(prepared: dict) -> None:
    case = prepared["cases"][1]
    image, _ = arrays(case)
    small = case_tensor(case.image, case.mask, TensorSpec(size=64, slices=image.shape[0]))
    np.testing.assert_array_equal(small[0], image[:, 16:80, 16:80])
    large = case_tensor(case.image, case.mask, TensorSpec(size=101, slices=image.shape[0]))
    np.testing.assert_array_equal(large[0, :, 2:98, 2:98], image)
    assert not large[:, :, :2].any() and not large[:, :, 98:].any() and not large[:, :, :, :2].any()
    assert fit_plane(np.ones((1, 5, 7)), 6).shape == (1, 6, 6)


def test_tensor_spec_round_trip_and_errors(prepared: dict, tmp_path: Path) -> None:
    spec = TensorSpec(slices=10, size=64, channels=("image", "scar"))
    assert TensorSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert spec.spec_hash() != TensorSpec().spec_hash()
    with pytest.raises(InputError, match="'edema'"):
        TensorSpec(channels=("image", "edema"))
    with pytest.raises(InputError, match="unknown key"):
        TensorSpec.from_dict({"slices": 12, "depth": 3})
    case = prepared["cases"][0]
    with pytest.raises(CaseError, match="need a mask"):
        case_tensor(case.image, None)
    assert case_tensor(case.image, None, TensorSpec(channels=("image",))).shape == (1, 12, 96, 96)
    _, labels = arrays(case)
    bad = tmp_path / "mask.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(labels[:-1]), str(bad))
    with pytest.raises(CaseError, match="mask.nii.gz: mask has shape"):
        case_tensor(case.image, bad)


def test_tensor_cache_hit_miss_and_rebuild(prepared: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lgerisk.data.tensors as tensors_module

    source = prepared["cases"][2]
    folder = tmp_path / "case"
    folder.mkdir()
    case = Case(source.case_id, Path(shutil.copy(source.image, folder)), Path(shutil.copy(source.mask, folder)))
    cache = TensorCache(tmp_path / "cache")
    spec = TensorSpec()
    built = cache.get(case, spec)
    path = cache.path(case.case_id, spec)
    assert path.name == f"{case.case_id}-{spec.spec_hash()}.npy" and path.is_file()
    np.testing.assert_array_equal(np.load(path), built)

    calls = []
    real = tensors_module.case_tensor
    monkeypatch.setattr(tensors_module, "case_tensor", lambda *a, **k: calls.append(1) or real(*a, **k))
    np.testing.assert_array_equal(cache.get(case, spec), built)  # hit
    assert calls == []
    cache.get(case, TensorSpec(channels=("image", "myocardium", "scar")))  # another spec: a miss
    assert len(calls) == 1

    _, labels = arrays(case)  # the case changes: rebuilt
    labels[labels == 2] = 1
    sitk.WriteImage(sitk.GetImageFromArray(labels), str(case.mask))
    rebuilt = cache.get(case, spec)
    assert len(calls) == 2 and rebuilt[1].sum() < built[1].sum()
    np.testing.assert_array_equal(np.load(path), rebuilt)

    path.write_bytes(b"not an array")  # a damaged entry: rebuilt
    np.testing.assert_array_equal(cache.get(case, spec), rebuilt)
    assert len(calls) == 3 and not list(path.parent.glob(".*tmp*"))


# ---------------------------------------------------------------- features


def test_feature_columns(prepared: dict) -> None:
    table = prepared["table"].copy()
    table["myocardium__original_fake_Constant"] = 1.0
    table["scar__original_fake_Empty"] = np.nan
    columns = feature_columns(table)
    assert set(QC_METRICS) & set(columns) == set(QC_METRICS) - {c for c in QC_METRICS if table[c].nunique() < 2}
    assert not [c for c in columns if c.endswith(("__status", "__voxel_count", "__mask_hash"))]
    assert "myocardium__original_fake_Constant" not in columns and "scar__original_fake_Empty" not in columns
    assert any(c.startswith("scar__original_glcm") for c in columns)
    assert all(pd.api.types.is_numeric_dtype(table[c]) for c in columns)
    assert "image_hash" not in columns and "settings_hash" not in columns
    train = list(table["case_id"][:3])
    for column in feature_columns(table, cases=train):  # varies in the training rows
        assert table.set_index("case_id").loc[train, column].nunique() > 1
    only = ["myocardium__original_firstorder_Mean", "scar__original_firstorder_Mean"]
    assert feature_columns(table, only=only, qc_metrics=False) == only
    with pytest.raises(InputError, match="no column 'myocardium__nope'"):
        feature_columns(table, only=["myocardium__nope"])


def test_scaler_fits_on_training_rows_only(prepared: dict) -> None:
    table = prepared["table"]
    ids = list(table["case_id"])
    train, test = ids[:3], ids[3:]
    columns = ["myocardium__original_firstorder_Mean", "myocardium_mass_g", "scar_percent"]
    scaler = FeatureScaler.fit(table, columns, cases=train)
    rows = table.set_index("case_id")
    for column, median, scale in zip(scaler.columns, scaler.medians, scaler.scales):
        values = rows.loc[train, column].to_numpy(float)
        assert median == pytest.approx(np.median(values))
        q25, q75 = np.percentile(values, [25, 75])
        assert scale == pytest.approx((q75 - q25) / 1.349)
    out = scaler.transform(table, cases=test)
    assert out.shape == (len(test), 4) and out.dtype == np.float32
    assert scaler.feature_names == [*columns, "myocardium__present"]
    expected = np.clip(
        (rows.loc[test, columns].to_numpy(float) - np.array(scaler.medians)) / np.array(scaler.scales), -5, 5
    )
    np.testing.assert_allclose(out[:, :3], expected, rtol=1e-5, atol=1e-6)
    assert np.abs(out).max() <= 5 and (np.abs(out[:, :3]) == 5).any()  # 3 training rows: test rows clip
    assert (out[:, 3] == 1).all()
    again = FeatureScaler.fit(prepared["table_path"], columns, cases=list(reversed(train)))  # order-free, from CSV
    assert again == scaler


def test_scaler_nan_and_presence(prepared: dict) -> None:
    table = prepared["table"]
    columns = feature_columns(table)
    scaler = FeatureScaler.fit(table, columns)
    out = scaler.transform(table)
    assert np.isfinite(out).all()
    names = scaler.feature_names
    assert {"myocardium__present", "scar__present", "greyzone__present"} <= set(names)
    scar_free = (table["scar__status"] == "empty").to_numpy()
    assert scar_free.any() and (~scar_free).any()
    present = out[:, names.index("scar__present")]
    np.testing.assert_array_equal(present, (~scar_free).astype(np.float32))
    scar_columns = [i for i, c in enumerate(scaler.columns) if c.startswith("scar__")]
    assert not out[np.ix_(scar_free, scar_columns)].any()  # NaN -> 0, the median

    frame = pd.DataFrame(
        {
            "case_id": list("abcde"),
            "scar__f_Iqr0": [1.0, 1.0, 1.0, 1.0, 5.0],
            "scar__f_Const": [2.0] * 5,
            "scar__status": ["ok"] * 5,
            "scar_percent": [0.0, 1.0, 2.0, 3.0, 4.0],
        }
    )
    small = FeatureScaler.fit(frame, ["scar__f_Iqr0", "scar__f_Const", "scar_percent"])
    assert small.scales[0] == pytest.approx(np.std([1, 1, 1, 1, 5], ddof=1)) and small.scales[1] == 1.0
    frame.loc[2, "scar_percent"] = np.nan
    with pytest.raises(InputError, match="'scar_percent' .* case 'c'"):
        small.transform(frame)


def test_scaler_round_trip_and_errors(prepared: dict) -> None:
    table, path = prepared["table"], prepared["table_path"]
    ids = list(table["case_id"])
    scaler = FeatureScaler.fit(table, feature_columns(table, cases=ids[:20]), cases=ids[:20])
    restored = FeatureScaler.from_dict(json.loads(json.dumps(scaler.to_dict(), allow_nan=False)))
    assert restored == scaler and restored.feature_names == scaler.feature_names
    np.testing.assert_array_equal(restored.transform(table, cases=ids[20:]), scaler.transform(table, cases=ids[20:]))
    with pytest.raises(InputError, match=f"{path}: has no row for case 'ghost'"):
        scaler.transform(path, cases=[*ids[:2], "ghost"])
    with pytest.raises(InputError, match="radiomics.csv: has no column 'myocardium__nope'"):
        FeatureScaler.fit(path, ["myocardium__nope"])
    with pytest.raises(InputError, match="has no column 'scar_percent'"):
        scaler.transform(table.drop(columns=["scar_percent"]))
    with pytest.raises(InputError, match="version"):
        FeatureScaler.from_dict({**scaler.to_dict(), "version": 99})


# ---------------------------------------------------------------- augmentation


def test_augmentation_is_deterministic_by_seed(tensors: list[np.ndarray]) -> None:
    x = tensors[0]
    a, b, c = augment(x, 7), augment(x, 7), augment(x, 8)
    assert a.shape == (2, 12, 96, 96) and a.dtype == torch.float32
    padding = ~x.any(axis=(0, 2, 3))
    assert padding.any() and not a[:, padding].any()  # the zero slices past the apex stay zero
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    augment(x, 1)  # leaves the caller's RNG stream alone
    assert torch.equal(torch.rand(3), expected)
    augmenter = pickle.loads(pickle.dumps(Augmenter(AugmentConfig())))
    assert torch.equal(augmenter(x, 7), a)
    assert AugmentConfig.from_dict(json.loads(json.dumps(AugmentConfig(strength=0.5).to_dict()))).strength == 0.5
    with pytest.raises(InputError, match="strength"):
        AugmentConfig(strength=-1)


def test_myocardium_moves_with_the_image() -> None:
    x = np.zeros((2, 12, 96, 96), np.float32)
    x[1, :, 20:44, 55:75] = 1  # an off-centre block: the myocardium
    x[0] = 3 * x[1] + 1  # image 4 inside, 1 outside
    transform = make_augmentation(SPATIAL_ONLY)
    moved = 0
    for seed in range(6):
        y = augment(x, seed, transform=transform).numpy()
        myo = y[1] > 0
        assert set(np.unique(y[1])) <= {0.0, 1.0} and myo.sum() > 0.7 * x[1].sum()
        inside = y[0][myo]
        assert np.median(inside) == pytest.approx(4.0, abs=1e-4) and inside.mean() > 3.6
        moved += (myo != (x[1] > 0)).sum() > 100
    assert moved >= 3


def test_intensity_transforms_leave_the_myocardium_alone(tensors: list[np.ndarray]) -> None:
    x = tensors[1]
    changed = 0
    for seed in range(4):
        y = augment(x, seed, INTENSITY_ONLY).numpy()
        np.testing.assert_array_equal(y[1], x[1])
        changed += not np.allclose(y[0], x[0])
    assert changed >= 3
    three = np.concatenate([x, x[1:] * (x[:1] > 1.5)])
    y = augment(three, 3, channels=("image", "myocardium", "scar")).numpy()
    assert set(np.unique(y[1:])) <= {0.0, 1.0} and (y[2] <= y[1]).all()


def test_spatial_transforms_stay_in_plane() -> None:
    x = np.zeros((2, 12, 96, 96), np.float32)
    x[0] = np.arange(1, 13, dtype=np.float32)[:, None, None]  # slice k is constant k + 1
    x[1, :, 30:60, 30:60] = 1
    transform = make_augmentation(SPATIAL_ONLY)
    for seed in range(5):
        y = augment(x, seed, transform=transform).numpy()
        for k in range(12):  # nothing blends across slices
            np.testing.assert_allclose(y[0, k, 24:72, 24:72], k + 1, atol=1e-4)
            assert y[0, k].max() <= k + 1 + 1e-4
        means = y[0].mean(axis=(1, 2))
        assert (np.diff(means) > 0).all()


def test_no_flips(tensors: list[np.ndarray]) -> None:
    assert not [t for t in make_augmentation(AugmentConfig(strength=2.0)) if "Flip" in type(t).__name__]
    x = tensors[2].copy()
    x[0] = 0
    x[0, :, 10:40, 10:50] = 2  # bright upper-left block
    for seed in range(6):
        y = augment(x, seed).numpy()[0]
        assert y[:, :48].mean() > 3 * abs(y[:, 48:].mean())  # still up (H)
        assert y[:, :, :48].mean() > 3 * abs(y[:, :, 48:].mean())  # still left (W)


# ---------------------------------------------------------------- dataset and loader


def test_items_depend_on_seed_epoch_index_only(tensors: list[np.ndarray]) -> None:
    features = np.arange(len(tensors) * 3, dtype=np.float32).reshape(len(tensors), 3)
    a = PretrainDataset(tensors, features, Augmenter(), base_seed=4)
    forward = [a[(1, i)] for i in range(4)]
    b = PretrainDataset(lambda i: tensors[i], features, Augmenter(), base_seed=4)
    backward = [b[(1, i)] for i in reversed(range(4))][::-1]
    for x, y in zip(forward, backward):
        assert x["index"] == y["index"]
        for key in ("view1", "view2", "radiomics"):
            assert torch.equal(x[key], y[key])
    assert not torch.equal(forward[0]["view1"], forward[0]["view2"])
    a.set_epoch(1)
    assert torch.equal(a[2]["view2"], forward[2]["view2"])
    a.set_epoch(2)
    assert not torch.equal(a[2]["view2"], forward[2]["view2"])
    c = PretrainDataset(tensors, None, Augmenter(), base_seed=5)
    assert not torch.equal(c[(1, 0)]["view1"], forward[0]["view1"])
    plain = PretrainDataset(lambda i: tensors[i], None, None, views=1, length=3)
    assert sorted(plain[0]) == ["index", "view1"] and len(plain) == 3
    np.testing.assert_array_equal(plain[1]["view1"].numpy(), tensors[1])
    assert item_seed(0, 1, 2, 1) != item_seed(0, 2, 1, 1)
    with pytest.raises(InputError, match="do not match"):
        PretrainDataset(tensors, features[:3])
    with pytest.raises(InputError, match="give its length"):
        PretrainDataset(lambda i: tensors[i])


def _epochs(loader, dataset: PretrainDataset, epochs: range) -> list[list[dict]]:
    out = []
    for epoch in epochs:
        dataset.set_epoch(epoch)
        out.append(list(loader))
    return out


def test_loader_same_with_0_and_2_workers_and_on_resume(tensors: list[np.ndarray]) -> None:
    features = np.random.default_rng(0).normal(size=(len(tensors), 4)).astype(np.float32)
    config = AugmentConfig(elastic=False)

    def run(workers: int, epochs: range) -> list[list[dict]]:
        dataset = PretrainDataset(tensors, features, Augmenter(config), base_seed=1)
        loader = make_loader(dataset, batch_size=3, shuffle=True, seed=9, epoch=epochs[0], num_workers=workers)
        return _epochs(loader, dataset, epochs)

    serial, parallel = run(0, range(2)), run(2, range(2))  # persistent workers see set_epoch
    resumed = run(0, range(1, 2))
    assert len(serial[0]) == 2  # 8 items, batches of 3, last dropped
    assert serial[0][0]["view1"].shape == (3, 2, 12, 96, 96) and serial[0][0]["radiomics"].shape == (3, 4)
    for left, right in ((serial, parallel), (serial[1:], resumed)):
        for batches_l, batches_r in zip(left, right):
            for x, y in zip(batches_l, batches_r):
                for key in ("index", "view1", "view2", "radiomics"):
                    assert torch.equal(x[key], y[key])
    assert not torch.equal(serial[0][0]["index"], serial[1][0]["index"])  # reshuffled each epoch


def test_loader_with_distributed_sampler(tensors: list[np.ndarray]) -> None:
    from torch.utils.data.distributed import DistributedSampler

    dataset = PretrainDataset(tensors[:4], None, Augmenter(AugmentConfig(elastic=False)), views=1)
    single = {i: dataset[(3, i)]["view1"] for i in range(4)}
    seen = []
    for rank in range(2):
        sampler = DistributedSampler(dataset, num_replicas=2, rank=rank, shuffle=True, seed=0)
        loader = make_loader(dataset, batch_size=1, seed=0, epoch=3, sampler=sampler, drop_last=False)
        for batch in loader:
            index = int(batch["index"][0])
            seen.append(index)
            assert torch.equal(batch["view1"][0], single[index])
        assert sampler.epoch == 3
    assert sorted(seen) == [0, 1, 2, 3]


def test_preserving_augmentation_keeps_wall_thickness_and_enhancement() -> None:
    """``scale=False`` leaves the affine's rotation and translation without in-plane scaling; the
    ``preserving`` preset drops the transforms that change thickness or relative enhancement."""
    from lgerisk.data.augment import AUGMENT_PRESETS

    default = make_augmentation(AugmentConfig(elastic=False, bias_field=False, gamma=False, motion=False, noise=False))
    kept = make_augmentation(
        AugmentConfig(scale=False, elastic=False, bias_field=False, gamma=False, motion=False, noise=False)
    )
    assert default[0].scales != (1, 1, 1, 1, 1, 1) and tuple(kept[0].scales) == (1, 1, 1, 1, 1, 1)
    assert kept[0].degrees == default[0].degrees and kept[0].translation == default[0].translation
    preserving = make_augmentation(AugmentConfig(**AUGMENT_PRESETS["preserving"]))
    assert [type(t).__name__ for t in preserving] == ["RandomAffine", "RandomGhosting", "RandomNoise"]
    # a ring of myocardium 6 voxels thick stays 6 voxels thick (area of the ring kept to 3 %)
    yy, xx = np.mgrid[:96, :96]
    radius = np.hypot(yy - 48, xx - 48)
    x = np.zeros((2, 12, 96, 96), np.float32)
    x[1, :, (radius > 20) & (radius <= 26)] = 1
    x[0] = x[1] * 2 + 1
    no_intensity = make_augmentation(
        AugmentConfig(**{**AUGMENT_PRESETS["preserving"], "motion": False, "noise": False})
    )
    areas = [float(augment(x, seed, transform=no_intensity).numpy()[1].sum()) for seed in range(4)]
    assert all(abs(a / x[1].sum() - 1) < 0.03 for a in areas)
