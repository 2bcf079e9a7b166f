"""Image encoder, radiomics encoder, heads, the contrastive model and their configurations."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from lgerisk.errors import InputError
from lgerisk.models import (
    ContrastiveModel,
    ContrastiveModelConfig,
    EncoderConfig,
    ImageEncoder,
    ProjectionHead,
    RadiomicsEncoder,
    RadiomicsEncoderConfig,
    ResidualBlock3d,
    describe,
    parameter_count,
)
from lgerisk.objectives import HybridObjective, ObjectiveConfig

N_FEATURES = 24


def small_config(**encoder: int) -> ContrastiveModelConfig:
    return ContrastiveModelConfig(EncoderConfig(**{"width": 8, **encoder}), RadiomicsEncoderConfig(N_FEATURES))


@pytest.fixture(scope="module")
def encoder() -> ImageEncoder:
    torch.manual_seed(0)
    return ImageEncoder(EncoderConfig()).eval()


# --- configurations ---------------------------------------------------------------------------


def test_configs_round_trip_through_json() -> None:
    config = ContrastiveModelConfig(
        EncoderConfig(width=32, depth=5, dropout=0.2),
        RadiomicsEncoderConfig(n_features=107, depth=3),
        projection_dim=64,
    )
    data = json.loads(json.dumps(config.to_dict()))
    assert data["encoder"]["width"] == 32 and data["radiomics"]["n_features"] == 107
    rebuilt = ContrastiveModelConfig.from_dict(data)
    assert rebuilt == config
    assert isinstance(rebuilt.encoder, EncoderConfig) and isinstance(rebuilt.radiomics, RadiomicsEncoderConfig)
    assert EncoderConfig.from_dict(EncoderConfig().to_dict()) == EncoderConfig()
    assert RadiomicsEncoderConfig.from_dict({"n_features": 5}) == RadiomicsEncoderConfig(5)


@pytest.mark.parametrize(
    "build",
    [
        lambda: EncoderConfig(width=0),
        lambda: EncoderConfig(depth=7),
        lambda: EncoderConfig(dropout=1.0),
        lambda: EncoderConfig(in_channels=1.5),
        lambda: RadiomicsEncoderConfig(n_features=0),
        lambda: RadiomicsEncoderConfig(10, dropout=-0.1),
        lambda: ContrastiveModelConfig(EncoderConfig(), RadiomicsEncoderConfig(10), projection_dim=0),
        lambda: EncoderConfig.from_dict({"widht": 16}),
        lambda: ContrastiveModelConfig.from_dict({"encoder": {}, "radiomics": {"n_features": 3, "bad": 1}}),
        lambda: ContrastiveModelConfig.from_dict({"encoder": {}}),
    ],
)
def test_bad_configuration_is_an_input_error(build) -> None:
    with pytest.raises(InputError):
        build()


# --- image encoder ----------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [1, 6, 12, 16])
@pytest.mark.parametrize("size", [64, 96])
def test_encoder_shapes(encoder: ImageEncoder, depth: int, size: int) -> None:
    x = torch.randn(2, 2, depth, size, size)
    with torch.no_grad():
        features = encoder.forward_features(x)
        embedding = encoder(x)
    assert embedding.shape == (2, 256) and torch.isfinite(embedding).all()
    # depth=4: two in-plane stages, two 3D ones; three in-plane halvings, one depth halving.
    assert features.shape == (2, encoder.feature_channels, math.ceil(depth / 2), size // 8, size // 8)
    assert encoder.embedding_dim == 256 and encoder.feature_channels == 128


@pytest.mark.parametrize("shape", [(1, 16, 16), (3, 16, 24), (2, 17, 31)])
@pytest.mark.parametrize("depth", [1, 3, 6])
def test_encoder_small_and_odd_inputs(shape: tuple[int, int, int], depth: int) -> None:
    model = ImageEncoder(EncoderConfig(width=4, depth=depth, embedding_dim=8)).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 2, *shape))
    assert out.shape == (1, 8) and torch.isfinite(out).all()


def test_encoder_structure() -> None:
    model = ImageEncoder(EncoderConfig(width=4))
    kernels = [block.kernel for block in model.stages]
    assert kernels == [(1, 3, 3), (1, 3, 3), (3, 3, 3), (3, 3, 3)]
    strides = [block.stride for block in model.stages]
    assert sum(s[0] == 2 for s in strides) == 1 and all(s[1] == s[2] for s in strides)
    assert [block.conv1.out_channels for block in model.stages] == [4, 8, 16, 32]
    assert isinstance(model.last_block, ResidualBlock3d) and model.last_block.kernel == (3, 3, 3)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert any(isinstance(m, nn.GroupNorm) for m in model.modules())
    assert ImageEncoder(EncoderConfig(depth=1, width=4)).last_block.kernel == (3, 3, 3)


def test_last_block_output_is_the_feature_map() -> None:
    model = ImageEncoder(EncoderConfig(width=4)).eval()
    captured: list[torch.Tensor] = []
    handle = model.last_block.register_forward_hook(lambda module, args, output: captured.append(output))
    x = torch.randn(1, 2, 6, 32, 32)
    with torch.no_grad():
        model(x)
        features = model.forward_features(x)
    handle.remove()
    assert torch.equal(captured[0], features)


def test_samples_are_independent_of_the_batch() -> None:
    """GroupNorm, not BatchNorm: a case's embedding does not depend on its batch mates."""
    model = ImageEncoder(EncoderConfig(width=4)).train()
    x = torch.randn(3, 2, 4, 32, 32)
    together = model(x)
    alone = model(x[1:2])
    assert torch.allclose(together[1:2], alone, atol=1e-5)


def test_encoder_refuses_wrong_input() -> None:
    model = ImageEncoder(EncoderConfig(width=4))
    with pytest.raises(ValueError, match="expects"):
        model(torch.zeros(1, 1, 4, 32, 32))
    with pytest.raises(ValueError, match="expects"):
        model(torch.zeros(2, 4, 32, 32))


def test_parameter_counts() -> None:
    default = parameter_count(ImageEncoder(EncoderConfig()))
    wide = parameter_count(ImageEncoder(EncoderConfig(width=32)))
    assert 300_000 < default < 1_500_000
    assert wide > 3 * default
    assert parameter_count(nn.Linear(3, 2)) == 8
    frozen = nn.Linear(3, 2)
    frozen.bias.requires_grad_(False)
    assert parameter_count(frozen, trainable_only=True) == 6


# --- radiomics encoder and heads --------------------------------------------------------------


def test_radiomics_encoder_and_head() -> None:
    config = RadiomicsEncoderConfig(N_FEATURES, hidden_dim=32, embedding_dim=16, depth=3)
    model = RadiomicsEncoder(config)
    assert sum(isinstance(m, nn.LayerNorm) for m in model.modules()) == 3
    assert model(torch.randn(5, N_FEATURES)).shape == (5, 16)
    with pytest.raises(ValueError, match="expects"):
        model(torch.randn(5, N_FEATURES + 1))
    head = ProjectionHead(16, 32)
    out = head(torch.randn(5, 16))
    assert out.shape == (5, 128)
    assert not torch.allclose(out.norm(dim=1), torch.ones(5))  # not normalised


# --- the contrastive model --------------------------------------------------------------------


def test_contrastive_model_api() -> None:
    model = ContrastiveModel(small_config()).eval()
    x1, x2, r = torch.randn(3, 2, 4, 32, 32), torch.randn(3, 2, 4, 32, 32), torch.randn(3, N_FEATURES)
    with torch.no_grad():
        out = model(x1, x2, r)
        assert set(out) == {"image_z1", "image_z2", "radiomics_z"}
        assert torch.allclose(out["image_z1"], model.project_image(x1), atol=1e-5)
        assert torch.allclose(out["image_z2"], model.project_image(x2), atol=1e-5)
        assert torch.allclose(out["radiomics_z"], model.project_radiomics(r))
        assert model.embed_image(x1).shape == (3, 256)
        assert model.embed_radiomics(r).shape == (3, 256)
        assert set(model(x1)) == {"image_z1"}
    assert [name for name, _ in model.named_children()] == [
        "image_encoder",
        "radiomics_encoder",
        "image_projection",
        "radiomics_projection",
    ]


def hybrid_loss(model: ContrastiveModel, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    x1 = torch.randn(3, 2, 4, 32, 32, generator=generator)
    x2 = x1 + 0.1 * torch.randn(x1.shape, generator=generator)
    r = torch.randn(3, N_FEATURES, generator=generator)
    objective = HybridObjective(ObjectiveConfig(), embedding_dim=model.config.projection_dim)
    return objective(**model(x1, x2, r))["loss"]


def test_hybrid_loss_reaches_every_parameter_of_both_encoders() -> None:
    torch.manual_seed(0)
    model = ContrastiveModel(small_config())
    hybrid_loss(model).backward()
    for part in (model.image_encoder, model.radiomics_encoder, model.image_projection, model.radiomics_projection):
        for name, parameter in part.named_parameters():
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_determinism() -> None:
    torch.manual_seed(123)
    first = ContrastiveModel(small_config())
    torch.manual_seed(123)
    second = ContrastiveModel(small_config())
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name
    torch.manual_seed(5)
    loss_a = hybrid_loss(first)
    torch.manual_seed(5)
    loss_b = hybrid_loss(second)
    assert torch.equal(loss_a, loss_b)
    torch.manual_seed(124)
    assert not torch.equal(ContrastiveModel(small_config()).image_encoder.fc.weight, first.image_encoder.fc.weight)


def test_describe_lists_parts_with_counts() -> None:
    model = ContrastiveModel(ContrastiveModelConfig(EncoderConfig(), RadiomicsEncoderConfig(100)))
    text = describe(model)
    print(text)
    lines = text.splitlines()
    assert len(lines) == 5
    for line, part in zip(lines, ["image_encoder", "radiomics_encoder", "image_projection", "radiomics_projection"]):
        assert line.startswith(part) and f"{parameter_count(getattr(model, part)):,}" in line
    assert lines[-1].startswith("total") and f"{parameter_count(model):,} parameters" in lines[-1]


def test_docstring_examples() -> None:
    import doctest

    import lgerisk.config
    import lgerisk.models
    import lgerisk.models.contrastive
    import lgerisk.models.encoder
    import lgerisk.models.heads
    import lgerisk.models.radiomics
    import lgerisk.objectives
    import lgerisk.objectives.contrastive

    for module in (
        lgerisk.models,
        lgerisk.config,
        lgerisk.models.contrastive,
        lgerisk.models.encoder,
        lgerisk.models.heads,
        lgerisk.models.radiomics,
        lgerisk.objectives,
        lgerisk.objectives.contrastive,
    ):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, module.__name__


def test_auxiliary_head_and_radiomics_bank() -> None:
    config = ContrastiveModelConfig(small_config().encoder, small_config().radiomics, aux_targets=5)
    model = ContrastiveModel(config).eval()
    x1, x2 = torch.randn(3, 2, 4, 32, 32), torch.randn(3, 2, 4, 32, 32)
    r, bank = torch.randn(3, N_FEATURES), torch.randn(7, N_FEATURES)
    with torch.no_grad():
        out = model(x1, x2, r, bank)
        assert set(out) == {"image_z1", "image_z2", "radiomics_z", "radiomics_bank_z", "aux"}
        assert torch.allclose(out["aux"], model.aux_head(model.embed_image(x1)), atol=1e-5)
        assert torch.allclose(out["radiomics_z"], model.project_radiomics(r), atol=1e-5)
        assert torch.allclose(out["radiomics_bank_z"], model.project_radiomics(bank), atol=1e-5)
        assert tuple(model(x1)["aux"].shape) == (3, 5)
    assert ContrastiveModelConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert "aux_head" not in dict(ContrastiveModel(small_config()).named_children())
