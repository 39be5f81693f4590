"""The model registry: which models the pipeline trains, and the architectures they may be.

One :class:`ModelSpec` per model says its name (its files are ``models/<name>.keras``, ``.json``,
``metrics/<name>.json``, ``plots/<name>/``), the stage that trains it (also its section of
params.yaml), the dataset it learns, its title in the report, its architecture, and the model it
starts from, if any. One :class:`Architecture` per architecture says the inputs it takes; its
builder is :data:`heartbeat.model.builders.BUILDERS` under the same name (or, for a fitted one,
heartbeat/train/classical.py).

Training, evaluate, export, ``heartbeat predict`` (the input signatures it accepts) and the report
read these tables; dvc.yaml stays written out, and tests/test_registry.py checks it against them.
docs/add_a_model.md walks through adding a model. Plain data, importable from every phase: no
Keras here.
"""

from __future__ import annotations

from dataclasses import dataclass

BEAT: tuple[str, ...] = ("beat",)
"""The 187-sample beat (heartbeat/core/beat_spec.py)."""
BEAT_RHYTHM: tuple[str, ...] = ("beat", "rhythm")
"""The beat and its R-R rhythm context (heartbeat/signal/context.py)."""
WINDOW_PATIENT: tuple[str, ...] = ("window", "patient")
"""A two-lead window around the beat and its features against its own patient (heartbeat/signal/patient.py)."""


@dataclass(frozen=True)
class Architecture:
    """One kind of model, and the inputs it may take."""

    name: str
    inputs: tuple[tuple[str, ...], ...]
    """The input signatures it may take, in the order a model's inputs come; empty: those of the model
    it starts from (:attr:`ModelSpec.base`)."""
    fitted: bool = False
    """Fitted without a network builder (heartbeat/train/classical.py), then written into a Keras model."""
    choosable: bool = False
    """A ``train_resnet_*`` section may name it in its ``architecture`` key."""

    @property
    def reads_patient(self) -> bool:
        """Whether it reads the two-lead window and the features against the patient, which only the
        physionet and demo sources prepare."""
        return WINDOW_PATIENT in self.inputs


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture("mlp", (BEAT,)),
        Architecture("resnet", (BEAT, BEAT_RHYTHM), choosable=True),
        Architecture("patient_net", (WINDOW_PATIENT,), choosable=True),
        Architecture("lda", (WINDOW_PATIENT,), fitted=True, choosable=True),
        Architecture("gbt", (WINDOW_PATIENT,), fitted=True, choosable=True),
        Architecture("transfer", ()),
    )
}

CHOOSABLE: tuple[str, ...] = tuple(name for name, a in ARCHITECTURES.items() if a.choosable)
"""The values of a ``train_resnet_*`` section's ``architecture`` key (heartbeat/core/config.py)."""


def signatures() -> tuple[tuple[str, ...], ...]:
    """Every input signature some architecture takes, each once: what ``heartbeat predict`` accepts."""
    return tuple(dict.fromkeys(s for a in ARCHITECTURES.values() for s in a.inputs))


@dataclass(frozen=True)
class ModelSpec:
    """One model of the pipeline."""

    name: str
    stage: str
    """The dvc.yaml stage that trains it, ``stages/<stage>.py``, and its section of params.yaml."""
    dataset: str
    """``mitbih`` or ``ptb`` (heartbeat/core/beat_spec.py): its splits and classes."""
    title: str
    architecture: str
    """A key of :data:`ARCHITECTURES`; a section with an ``architecture`` key overrides it."""
    base: str | None = None
    """The trained model it starts from (loaded before training), if any."""


MODEL_SPECS: dict[str, ModelSpec] = {
    m.name: m
    for m in (
        ModelSpec("mlp_ptb", "train_mlp", "ptb", "MLP baseline, PTB", "mlp"),
        ModelSpec("resnet_ptb", "train_resnet_ptb", "ptb", "ResNet, PTB", "resnet"),
        ModelSpec("resnet_mitbih", "train_resnet_mitbih", "mitbih", "ResNet, MIT-BIH", "resnet"),
        ModelSpec(
            "transfer_ptb",
            "finetune_transfer",
            "ptb",
            "Transfer MIT-BIH → PTB",
            "transfer",
            base="resnet_mitbih",
        ),
    )
}
"""The pipeline's models, in the report's order."""


def model_of_stage(stage: str) -> ModelSpec:
    """The model that ``stage`` trains."""
    for spec in MODEL_SPECS.values():
        if spec.stage == stage:
            return spec
    raise KeyError(f"no model in heartbeat/core/registry.py is trained by stage {stage!r}")
