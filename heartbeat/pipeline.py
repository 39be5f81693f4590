"""The four models of the pipeline and small helpers the stage scripts share.

========================  ====================  =======
model                     stage                 dataset
========================  ====================  =======
mlp_ptb                   train_mlp             ptb
resnet_ptb                train_resnet_ptb      ptb
resnet_mitbih             train_resnet_mitbih   mitbih
transfer_ptb              finetune_transfer     ptb
========================  ====================  =======
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heartbeat.errors import DataError


@dataclass(frozen=True)
class ModelSpec:
    stage: str
    dataset: str
    title: str


MODELS: dict[str, ModelSpec] = {
    "mlp_ptb": ModelSpec("train_mlp", "ptb", "MLP baseline, PTB"),
    "resnet_ptb": ModelSpec("train_resnet_ptb", "ptb", "ResNet, PTB"),
    "resnet_mitbih": ModelSpec("train_resnet_mitbih", "mitbih", "ResNet, MIT-BIH"),
    "transfer_ptb": ModelSpec("finetune_transfer", "ptb", "Transfer MIT-BIH → PTB"),
}


def read_json(path: Path, stage: str) -> dict[str, Any]:
    """Read a JSON output of an earlier ``stage``; a missing or broken file says which stage to rerun."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: not found; run the {stage} stage first (dvc repro {stage})") from None
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); rerun dvc repro {stage}"
        ) from None
