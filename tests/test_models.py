"""Model shapes and parameter counts, and what the transfer model freezes."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from heartbeat.core.errors import ModelError
from heartbeat.model.architectures import build_mlp, build_resnet, build_transfer


def test_resnet_matches_the_paper() -> None:
    model = build_resnet(5)
    assert model.count_params() == 55_013  # within the paper's ~53-55k
    assert model.output_shape == (None, 5)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv1D)]
    assert len(convs) == 11 and all(c.filters == 32 and c.kernel_size == (5,) for c in convs)
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling1D)]
    assert len(pools) == 5 and all(p.pool_size == (5,) and p.strides == (2,) for p in pools)
    assert build_resnet(2).count_params() == 54_914


def test_resnet_predicts_probabilities() -> None:
    model = build_resnet(5)
    proba = model.predict(np.random.default_rng(0).random((3, 187), dtype=np.float32), verbose=0)
    assert proba.shape == (3, 5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


def test_mlp_shape_and_count() -> None:
    model = build_mlp(2, [128, 64], dropout=0.2)
    assert model.output_shape == (None, 2)
    assert model.count_params() == 187 * 128 + 128 + 128 * 64 + 64 + 64 * 2 + 2


@pytest.mark.parametrize(("freeze", "frozen_convs"), [("all_conv", 11), ("none", 0)])
def test_transfer_freezes_convolutions(freeze: str, frozen_convs: int) -> None:
    base = build_resnet(5)
    model = build_transfer(base, 2, freeze)
    assert model.output_shape == (None, 2)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv1D)]
    assert sum(not c.trainable for c in convs) == frozen_convs
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert all(d.trainable for d in dense)
    # the representation is shared with the base model, not copied
    assert model.get_layer("representation") is base.get_layer("representation")


def test_transfer_needs_a_resnet() -> None:
    with pytest.raises(ModelError, match="representation"):
        build_transfer(build_mlp(5, [8]), 2, "none")
