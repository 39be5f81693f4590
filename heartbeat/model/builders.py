"""How each architecture of heartbeat/core/registry.py is built from its params section.

:data:`BUILDERS` maps an architecture's name to a function ``(cfg, n_classes, *, rhythm_width, base,
n_features) -> keras.Model`` that returns a fresh, untrained model (the caller seeds the run
first). ``cfg`` is the model's section of params.yaml, ``rhythm_width`` the width of the R-R input
(0: none), ``base`` the trained model the section starts from (:attr:`ModelSpec.base`), and
``n_features`` the number of patient features. Fitted architectures (lda, gbt) have no builder:
heartbeat/train/classical.py fits them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from heartbeat.model.architectures import (
    build_mlp,
    build_patient_net,
    build_resnet,
    build_transfer,
    has_representation,
)
from heartbeat.signal.patient import WINDOW_BEFORE, WINDOW_SHAPE, second_lead_columns

Builder = Callable[..., keras.Model]


def mlp(cfg: Any, n_classes: int, **_: Any) -> keras.Model:
    return build_mlp(n_classes, cfg.hidden, cfg.dropout)


def resnet(cfg: Any, n_classes: int, *, rhythm_width: int = 0, **_: Any) -> keras.Model:
    return build_resnet(
        n_classes,
        cfg.filters,
        cfg.kernel_size,
        cfg.blocks,
        cfg.dense,
        cfg.dropout,
        rhythm_features=rhythm_width,
    )


def patient_net(cfg: Any, n_classes: int, *, n_features: int, **_: Any) -> keras.Model:
    two, one = second_lead_columns()
    return build_patient_net(
        n_classes,
        WINDOW_SHAPE,
        n_features,
        cfg.filters,
        cfg.kernel_size,
        cfg.blocks,
        cfg.dense,
        cfg.dropout,
        cfg.lead_dropout,
        (two.tolist(), one.tolist()),
        seed=cfg.seed,
        branch_dropout=cfg.branch_dropout,
        augment=cfg.window_augment.model_dump(),
        centre=WINDOW_BEFORE,
    )


def transfer(cfg: Any, n_classes: int, *, base: keras.Model | None = None, **_: Any) -> keras.Model:
    if base is None:
        raise ValueError("finetune_transfer needs the trained MIT-BIH model as base")
    if not has_representation(base):
        # A classical MIT-BIH model (lda, gbt) learnt no representation to carry over: the PTB
        # model is then the paper's ResNet from scratch (run_training says so).
        return build_resnet(n_classes, 32, 5, 5, 32, 0.0)
    return build_transfer(base, n_classes, cfg.freeze)


BUILDERS: dict[str, Builder] = {
    "mlp": mlp,
    "resnet": resnet,
    "patient_net": patient_net,
    "transfer": transfer,
}
"""Every architecture of heartbeat/core/registry.py that is not fitted, by name."""
