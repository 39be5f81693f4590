"""The schema of params.yaml, validated with pydantic at stage start.

Each stage reads only its own section, so DVC reruns a stage only when that
section changes. Unknown keys are errors (a typo like ``epocs`` must not be
silently ignored), and every error names the full key path, e.g.
``params.yaml: train_mlp.epochs: must be >= 1 (got -3)``.

The file is read as DVC reads it: UTF-8, and a key given twice in one mapping
(or a section given twice, the second resetting the first) is an error, not a
silent last-one-wins. An empty file or an empty (null) section is an error too:
it would otherwise train with defaults nobody chose. Values quoted in messages
are cut short, so a YAML alias bomb cannot make one 80 MB long.
"""

from __future__ import annotations

import os
import reprlib
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args, overload

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from heartbeat.core.errors import ParamsError, first_line, input_file
from heartbeat.core.registry import CHOOSABLE
from heartbeat.core.stored import RecordSmoothing

RecordName = Annotated[
    str, BeforeValidator(lambda v: str(v) if isinstance(v, int) and not isinstance(v, bool) else v)
]
"""A WFDB record name; YAML reads ``101`` as a number, so integers are accepted and turned into text."""


Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]
"""A random seed: numpy, TensorFlow and scikit-learn all need one in 0..2**32-1."""


INT64_MAX = 2**63 - 1


class _Strict(BaseModel):
    # allow_inf_nan=False: ``lr: .inf`` must be an error, not a run that diverges silently.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans(cls, value: Any, info: ValidationInfo) -> Any:
        """YAML reads yes/no/on/off/true/false as booleans, which pydantic would take as 1 and 0;
        and any size of integer, which numpy and TensorFlow cannot hold beyond 64 bits."""
        field = cls.model_fields.get(info.field_name or "")
        values = value if isinstance(value, list) else [value]
        if field is not None and field.annotation is not bool and bool not in get_args(field.annotation):
            if any(isinstance(v, bool) for v in values):
                raise PydanticCustomError(
                    "bool_type",
                    "true/false (or yes/no, on/off) is not valid here; expected a number or a name",
                )
        if any(isinstance(v, int) and not -INT64_MAX - 1 <= v <= INT64_MAX for v in values):
            raise PydanticCustomError(
                "int_too_large", "is beyond the 64-bit integer range; expected a usable size"
            )
        return value


class DemoConfig(_Strict):
    """The synthetic demo set: continuous records of synthetic patients (heartbeat/fetch/synth.py)."""

    mitdb_records: int = Field(
        20, ge=2, le=48, description="MIT-BIH-like records (360 Hz, annotated), named after MIT-BIH's"
    )
    mitdb_minutes: float = Field(3.0, ge=0.2, le=120, description="length of each MIT-BIH-like record")
    ptbdb_records: int = Field(
        24, ge=2, le=999, description="PTB-like records (1000 Hz), 40% healthy controls, the rest infarction"
    )
    ptbdb_minutes: float = Field(1.5, ge=0.2, le=120, description="length of each PTB-like record")
    test_fraction: float = Field(
        0.2, gt=0, lt=1, description="MIT-BIH test split, stratified, as physionet's"
    )


class PhysionetConfig(_Strict):
    """Options of the ``physionet`` source (raw WFDB records from PhysioNet or a mirror)."""

    mirror: str = "https://physionet.org/files/"
    mitdb_records: Literal["all"] | list[RecordName] = "all"
    ptbdb_records: Literal["all"] | list[RecordName] = "all"
    peaks: Literal["annotations", "detector"] = "annotations"
    # Mirror layout: BASE/<db>/<version>/RECORDS as on physionet.org; a mirror without the
    # version folder (BASE/<db>/RECORDS) is detected; "" never tries the version folder.
    mitdb_version: str = "1.0.0"
    ptbdb_version: str = "1.0.0"
    # Leads, chosen by name. Records 102 and 104 have no MLII: the fallback lead is used
    # instead (null skips them, with a warning and a line in report.json).
    mitdb_lead: str = "MLII"
    mitdb_fallback_lead: str | None = "V5"
    ptbdb_lead: str = "ii"
    # Segmentation (Kachuee et al. 2018, Section III-A); see heartbeat/signal/segment.py.
    window_s: float = Field(10.0, gt=0)
    detector_threshold: float = Field(0.9, gt=0, lt=1)
    refractory_s: float = Field(0.2, ge=0, le=2)
    detector_polarity: Literal["auto", "as_recorded"] = "auto"
    beat_scaling: Literal["beat", "window"] = "beat"
    # MIT-BIH split: stratified by class, seeded by data.seed.
    test_fraction: float = Field(0.2, gt=0, lt=1)
    # Downloads.
    retries: int = Field(4, ge=0, le=20)
    backoff_s: float = Field(1.0, ge=0, le=60)
    timeout_s: float = Field(60.0, gt=0)


SOURCE_NAMES = ("demo", "local", "kaggle", "physionet")

DS1_RECORDS = (
    "101 106 108 109 112 114 115 116 118 119 122 124 201 203 205 207 208 209 215 220 223 230".split()
)
DS2_RECORDS = (
    "100 103 105 111 113 117 121 123 200 202 210 212 213 214 219 221 222 228 231 232 233 234".split()
)
PACED_RECORDS = ("102", "104", "107", "217")


class DataConfig(_Strict):
    """The ``data`` section: which source the fetch stage uses."""

    source: Literal["demo", "local", "kaggle", "physionet"] = "demo"
    seed: Seed = 0
    local_path: str | None = None
    demo: DemoConfig = DemoConfig()
    physionet: PhysionetConfig = PhysionetConfig()
    reference: Literal["median", "rhythm"] = Field(
        "rhythm",
        description="which beats stand for a recording in the features against the patient (physionet "
        "and demo sources): rhythm, its regular beats that are on time (the patient's own rhythm, even "
        "when most beats are ectopic; heartbeat/signal/patient.py) | median, all of them",
    )
    amplitude_stretch_s: float = Field(
        0.0,
        ge=0,
        le=86_400,
        description="seconds: each stretch of a recording this long is brought to the recording's QRS "
        "amplitude by its own reference beats before the patient features are measured (physionet and "
        "demo sources; a recording's beats grow and shrink with posture and electrode contact); 0: the "
        "whole recording at one scale",
    )


class PatientSplitConfig(_Strict):
    """Record lists of the inter-patient MIT-BIH split (de Chazal et al. 2004)."""

    mitbih_train_records: list[RecordName] = Field(
        default_factory=lambda: list(DS1_RECORDS), description="DS1: the training records"
    )
    mitbih_test_records: list[RecordName] = Field(
        default_factory=lambda: list(DS2_RECORDS), description="DS2: the test records"
    )
    exclude_records: list[RecordName] = Field(
        default_factory=lambda: list(PACED_RECORDS), description="paced records, excluded by the protocol"
    )


class AugmentConfig(_Strict):
    """The paper's augmentation of the MIT-BIH training split: amplitude scaling and time stretching."""

    copies: int = Field(0, ge=0, le=20, description="augmented copies per minority-class beat; 0 disables")
    amplitude: float = Field(0.1, ge=0, lt=1, description="amplitude scale drawn from 1 ± amplitude")
    stretch: float = Field(0.1, ge=0, lt=0.5, description="time stretch drawn from 1 ± stretch")


class PreprocessConfig(_Strict):
    """The ``preprocess`` section: splits, rebalancing and augmentation."""

    seed: Seed = 0
    split: Literal["beat", "patient"] = "beat"
    val_fraction: float = Field(0.1, gt=0, lt=0.5)
    ptb_test_fraction: float = Field(0.2, gt=0, lt=0.5)
    rebalance: Literal["none", "oversample"] = "none"
    augment: AugmentConfig = AugmentConfig()
    patient: PatientSplitConfig = PatientSplitConfig()


class TrainConfig(_Strict):
    """Optimisation settings shared by every training stage; each stage has its own copy."""

    seed: Seed = 0
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(1e-3, gt=0)
    lr_decay: float = Field(0.75, gt=0, le=1, description="multiply the lr by this every lr_decay_steps")
    lr_decay_steps: int = Field(10000, ge=1)
    patience: int = Field(5, ge=0, description="early stopping on `monitor`; 0 disables it")
    class_weight: Literal["none", "balanced", "sqrt"] = Field(
        "none", description="loss weight per class: balanced ∝ 1/count, sqrt ∝ 1/√count (mean 1 over beats)"
    )
    # Quality options. The defaults reproduce the paper's recipe exactly.
    lr_schedule: Literal["step", "plateau", "cosine"] = Field(
        "step",
        description="step: ×lr_decay every lr_decay_steps (the paper) | plateau: ×lr_decay after "
        "plateau_patience epochs without a better `monitor` | cosine: to 0 over all epochs",
    )
    plateau_patience: int = Field(
        3, ge=1, description="epochs without improvement before lr_schedule: plateau cuts"
    )
    monitor: Literal["val_loss", "val_accuracy", "val_macro_f1"] = Field(
        "val_loss", description="what early stopping, plateau and the restored best epoch follow"
    )
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    focal_gamma: float = Field(
        0.0,
        ge=0,
        le=10,
        description="focal loss (Lin et al. 2017): each beat's cross-entropy × (1 − p)^γ, p its "
        "class's probability, so beats already classified well weigh less; 0: plain cross-entropy",
    )
    calibration: Literal["none", "temperature"] = Field(
        "none", description="temperature: fit one softmax temperature on validation (NLL), used by evaluate"
    )


class MLPConfig(TrainConfig):
    """The ``train_mlp`` section: the MLP baseline on PTB."""

    hidden: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [128, 64])
    dropout: float = Field(0.2, ge=0, lt=1)


class WindowAugmentConfig(_Strict):
    """patient_net: training-time variation of the beat window, as recordings of different patients vary.

    Sizes are in units of the record's QRS amplitude (the window's own scale); 0 turns a kind off."""

    amplitude: float = Field(0.0, ge=0, lt=1, description="gain of each lead × U(1 ± amplitude)")
    wander: float = Field(
        0.0, ge=0, le=1, description="baseline offset and slope across the window, each ± wander"
    )
    noise: float = Field(0.0, ge=0, le=1, description="Gaussian noise, σ drawn from U(0, noise) per beat")
    stretch: float = Field(0.0, ge=0, lt=0.5, description="time stretch by U(1 ± stretch) about the R-peak")


class TreesConfig(_Strict):
    """architecture: gbt: scikit-learn's HistGradientBoostingClassifier on the 80 features against the
    patient (heartbeat/train/classical.py)."""

    iterations: int = Field(100, ge=1, le=2000, description="boosting iterations (one tree per class each)")
    learning_rate: float = Field(0.15, gt=0, le=1)
    leaves: int = Field(31, ge=2, le=255, description="most leaves of a tree")
    depth: int = Field(8, ge=1, le=16, description="most levels of a tree (inference walks this many)")
    min_leaf: int = Field(20, ge=1, description="fewest training beats in a leaf")
    l2: float = Field(1.0, ge=0, description="L2 regularisation of the leaf values")
    window_stride: int = Field(
        0,
        ge=0,
        le=125,
        description="0: the trees read the 80 features only | k: also every k-th sample of the two-lead "
        "window (its shape, which the features summarise)",
    )
    normal_share: float = Field(
        0.3,
        gt=0,
        le=1,
        description="share of the training split's N beats the trees learn from (a seeded random subset; "
        "every beat of the other classes is kept)",
    )


class ResNetConfig(TrainConfig):
    """The ``train_resnet_*`` sections: the paper's 1-D ResNet, the network for new patients, or the
    classical inter-patient methods on the same features."""

    # The architectures of heartbeat/core/registry.py that a section may name.
    architecture: Literal[CHOOSABLE] = Field(
        "resnet",
        description="resnet: the paper's ResNet on the 187-sample beat | patient_net: a two-lead window "
        "around each beat and 80 features against its own patient | lda: linear discriminants on those "
        "features (de Chazal et al. 2004) | gbt: gradient-boosted trees on them (Shi et al. 2019); the "
        "last three need the physionet or demo source (the paper's ResNet, with a warning, otherwise)",
    )
    trees: TreesConfig = TreesConfig()
    lead_dropout: float = Field(
        0.3, ge=0, lt=1, description="patient_net: share of training beats given lead 1 in place of lead 2"
    )
    branch_dropout: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="patient_net: share of training beats whose window branch is dropped, so that the "
        "features against the patient must classify them alone",
    )
    window_augment: WindowAugmentConfig = WindowAugmentConfig()
    record_smoothing: RecordSmoothing = Field(
        RecordSmoothing(),
        description="patient_net: each beat's probabilities blended with the mean of its nearest beats in the "
        "same recording, after training (heartbeat/core/stored.py)",
    )
    irregular_rhythm_gate: bool = Field(
        False,
        description="MIT-BIH, physionet and demo sources: no beat is called S where the rhythm around it is "
        "irregularly irregular (atrial fibrillation: heartbeat/signal/irregular.py); evaluate and predict "
        "spread its S probability over the other classes, last (heartbeat/model/rhythm_gate.py)",
    )
    unlike_qrs_gate: bool = Field(
        False,
        description="patient_net on MIT-BIH: no beat is called S whose QRS is unlike the patient's reference "
        "beat in shape and size (heartbeat/signal/patient.py unlike_qrs); evaluate and predict spread its "
        "S probability over the other classes, after the irregular-rhythm gate (heartbeat/model/qrs_gate.py)",
    )
    filters: int = Field(32, ge=1)
    kernel_size: int = Field(5, ge=1)
    blocks: int = Field(5, ge=1, le=6)
    dense: int = Field(32, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1)
    rhythm: bool = Field(
        False,
        description="also feed the 6 R-R features (physionet and demo sources); beat-only, with a warning, "
        "when the prepared data has none",
    )
    template: bool = Field(
        False,
        description="with rhythm: also feed 3 features of each beat against its record's median beat "
        "(heartbeat/signal/context.py)",
    )
    ensemble: int = Field(
        1,
        ge=1,
        le=10,
        description="train this many models, seeds seed, seed+1, ...; the saved model averages their "
        "probabilities (1: a single model)",
    )
    ensemble_holdout: int = Field(
        0,
        ge=0,
        le=100,
        description="with ensemble > 1: each member holds out this many records, drawn with its seed from "
        "the training and validation records, for its early stopping and temperature, and trains on the "
        "rest (0: every member sees the same records; heartbeat/train/bagging.py)",
    )

    @field_validator("record_smoothing", mode="before")
    @classmethod
    def _smoothing(cls, value: Any) -> Any:
        """RecordSmoothing checks itself (the sidecar reader builds it the same way), without pydantic's
        coercion of "20" to 20."""
        return RecordSmoothing.from_mapping(value) if not isinstance(value, RecordSmoothing) else value

    with_trees: bool = Field(
        False,
        description="patient_net: also fit the boosted trees of `trees` on the same features, and save one "
        "model whose output is the mean of the network's (or its seeds') and the trees' probabilities",
    )


class TransferConfig(TrainConfig):
    """The ``finetune_transfer`` section: MIT-BIH ResNet → PTB."""

    freeze: Literal["all_conv", "none"] = "all_conv"


class EvaluateConfig(_Strict):
    """The ``evaluate`` section."""

    batch_size: int = Field(1024, ge=1)


class ExportConfig(_Strict):
    """The ``export`` section: TFLite/ONNX exports of the four models and their parity gates."""

    formats: list[Literal["tflite", "onnx"]] = Field(default_factory=lambda: ["tflite", "onnx"])
    quantize: list[Literal["dynamic", "int8", "float16"]] = Field(
        default_factory=lambda: ["dynamic", "int8"],
        description="TFLite variants to try; each is written only if it passes the gates below",
    )
    # The int8 representative beats; the key keeps its old name, so that existing params files still
    # load ("calibration" otherwise means the softmax temperature of the training sections).
    calibration_beats: int = Field(
        1000, ge=10, description="representative training beats on which int8 activation ranges are measured"
    )
    seed: Seed = 0
    min_agreement: float = Field(0.999, gt=0, le=1, description="argmax agreement with Keras, test split")
    max_abs_diff: float = Field(1e-4, gt=0, description="max |Δprob| of an fp32 export against Keras")
    max_f1_change: float = Field(0.002, gt=0, description="max test macro-F1 change of a quantised variant")
    batch_size: int = Field(1024, ge=1)


class DeviceConfig(_Strict):
    """The ``train`` section: where the four training stages run, not what they learn (heartbeat/train/devices.py).

    ``batch_size`` in each training section is per replica: with ``distribute: mirrored`` over N GPUs
    every step sees ``N × batch_size`` beats.
    """

    device: Literal["auto", "cpu", "gpu"] = Field("auto", description="auto: a GPU when TensorFlow sees one")
    mixed_precision: bool = Field(False, description="float16 compute on GPU only; the softmax stays float32")
    distribute: Literal["none", "mirrored"] = Field("none", description="mirrored: all visible GPUs")


T = TypeVar("T", bound=BaseModel)


_QUOTE = reprlib.Repr()
_QUOTE.maxstring, _QUOTE.maxother, _QUOTE.maxlist, _QUOTE.maxdict, _QUOTE.maxlevel = 60, 60, 4, 4, 2


def quote(value: Any) -> str:
    """``repr(value)`` cut short, without building the whole of it first: a YAML alias bomb expands
    to gigabytes, and its repr would be one 80 MB line."""
    return _QUOTE.repr(value)


def _format_error(section: str, exc: ValidationError, source: str) -> str:
    err = exc.errors()[0]
    loc = ".".join(quote(p) if not isinstance(p, str | int) else str(p)[:60] for p in (section, *err["loc"]))
    kind = err["type"]
    got = err.get("input")
    if kind == "extra_forbidden":
        return f"{source}: {loc}: unknown key; remove it or check its spelling"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"{source}: {loc}: {quote(got)} is not valid; expected one of {expected}"
    msg = err["msg"]
    if kind == "value_error":  # a type that checks itself (heartbeat/core/stored.py) quotes the value
        return f"{source}: {loc}: {msg.removeprefix('Value error, ')}"
    return f"{source}: {loc}: {msg[0].lower() + msg[1:]} (got {quote(got)})"


def parse_section(model: type[T], section: str, raw: Any, source: str = "params.yaml") -> T:
    """Validate one section of params.yaml against its schema. ``raw`` None is a section that is
    absent: its defaults. A section that is present but empty is refused by :func:`load_params`."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: {section}: expected a mapping of keys, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ParamsError(_format_error(section, exc, source)) from None


class _UniqueKeySafeLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping, as DVC's YAML reader does.

    Merge keys (``<<: *defaults``) are YAML, and DVC reads them: the keys a mapping gives itself
    override the merged ones, so only its own keys are compared with each other."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key, line = self.construct_object(key_node, deep=deep), key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise _DuplicateKey(key, seen[key], line)
                seen[key] = line
            except TypeError:  # an unhashable key: the base class says so
                break
        return super().construct_mapping(node, deep=deep)


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, first: int, again: int) -> None:
        super().__init__(f"{quote(key)} at line {again} is already given at line {first}")


def load_params(path: str | os.PathLike[str] = "params.yaml") -> dict[str, Any]:
    """Read params.yaml as a plain mapping, with a clear one-line error for anything else.

    Refused: a file that is not UTF-8 or not YAML, a key given twice in one mapping, an empty
    file, a top level that is not a mapping, a section that is present but empty (``train_mlp:``).
    """
    p = Path(path)
    with input_file(p, "a YAML file", "run from the project root", ParamsError):
        raw = p.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParamsError(
            f"{p}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); save it as UTF-8"
        ) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeySafeLoader)
    except _DuplicateKey as exc:
        raise ParamsError(f"{p}: duplicate key: {exc}; keep one (DVC refuses the file too)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ParamsError(f"{p}: not valid YAML{where}; fix the syntax") from None
    except (ValueError, RecursionError) as exc:  # an integer of over 4,300 digits; nesting too deep
        raise ParamsError(f"{p}: not usable as params ({first_line(exc, 80)}); fix the file") from None
    if data is None:
        raise ParamsError(f"{p}: is empty; it must hold the pipeline's sections ({', '.join(STAGE_SCHEMAS)})")
    if not isinstance(data, dict):
        raise ParamsError(f"{p}: expected a mapping of sections at the top level")
    empty = [str(key) for key, value in data.items() if value is None]
    if empty:
        raise ParamsError(
            f"{p}: {empty[0][:60]}: the section is empty (null); give its keys, or delete the "
            "section line to use every default"
        )
    return data


STAGE_SCHEMAS: dict[str, type[BaseModel]] = {
    "data": DataConfig,
    "preprocess": PreprocessConfig,
    "train_mlp": MLPConfig,
    "train_resnet_ptb": ResNetConfig,
    "train_resnet_mitbih": ResNetConfig,
    "finetune_transfer": TransferConfig,
    "evaluate": EvaluateConfig,
    "export": ExportConfig,
    "train": DeviceConfig,  # not a stage: the device settings the four training stages share
}


_Path = str | os.PathLike[str]


@overload
def stage_params(section: Literal["data"], path: _Path = ...) -> DataConfig: ...
@overload
def stage_params(section: Literal["preprocess"], path: _Path = ...) -> PreprocessConfig: ...
@overload
def stage_params(section: Literal["train_mlp"], path: _Path = ...) -> MLPConfig: ...
@overload
def stage_params(
    section: Literal["train_resnet_ptb", "train_resnet_mitbih"], path: _Path = ...
) -> ResNetConfig: ...
@overload
def stage_params(section: Literal["finetune_transfer"], path: _Path = ...) -> TransferConfig: ...
@overload
def stage_params(section: Literal["evaluate"], path: _Path = ...) -> EvaluateConfig: ...
@overload
def stage_params(section: Literal["export"], path: _Path = ...) -> ExportConfig: ...
@overload
def stage_params(section: Literal["train"], path: _Path = ...) -> DeviceConfig: ...
@overload
def stage_params(section: str, path: _Path = ...) -> BaseModel: ...
def stage_params(section: str, path: _Path = "params.yaml") -> BaseModel:
    """Load params.yaml and validate one section (its schema in :data:`STAGE_SCHEMAS`, the type a
    section name given literally returns); the entry point of every stage."""
    raw = load_params(path)
    unknown = sorted(set(raw) - set(STAGE_SCHEMAS))
    if unknown:
        raise ParamsError(
            f"{path}: {unknown[0]}: unknown section; expected one of {', '.join(STAGE_SCHEMAS)}"
        )
    return parse_section(STAGE_SCHEMAS[section], section, raw.get(section), str(path))
