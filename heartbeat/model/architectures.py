"""Model-building functions: the MLP baseline, the paper's 1-D ResNet, the transfer model, and the
network for new patients.

Kachuee et al. 2018, Fig. 2: a Conv1D (32 filters, kernel 5), then five
residual blocks of [Conv 32 k5, ReLU, Conv 32 k5, add the block input, ReLU,
MaxPool 5 stride 2], then Dense 32 ReLU, Dense 32 and softmax: 55,013
parameters for the 5 MIT-BIH classes. The transfer model reuses everything up
to the second Dense 32 (the "representation") and puts a new softmax on it.

The network for new patients (:func:`build_patient_net`) reads what
heartbeat/signal/patient.py computes: a two-lead window around each beat and 80 features of the
beat against its own patient.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from heartbeat.core.beat_spec import BEAT_LENGTH
from heartbeat.core.errors import DataError, ModelError
from heartbeat.prepare.arrays import Split

REPRESENTATION_LAYER = "representation"
RHYTHM_INPUT = "rhythm"
"""Name of the optional second input: the R-R features of heartbeat/signal/context.py."""
WINDOW_INPUT, PATIENT_INPUT = "window", "patient"
"""The inputs of :func:`build_patient_net` (heartbeat/signal/patient.py)."""
INPUT_ARRAYS = {"beat": "X", RHYTHM_INPUT: "R", WINDOW_INPUT: "W", PATIENT_INPUT: "P"}
"""Which array of a :class:`~heartbeat.prepare.arrays.Split` feeds each named model input."""
ENSEMBLE_OUTPUT = "mean_probability"
"""Name of the averaging layer that marks a model built by :func:`build_ensemble`."""


def build_mlp(n_classes: int, hidden: list[int], dropout: float = 0.0) -> keras.Model:
    """A plain MLP on the 187 raw samples: the baseline the paper's ResNet is measured against."""
    inputs = keras.Input(shape=(BEAT_LENGTH,), name="beat")
    x = inputs
    for i, units in enumerate(hidden):
        x = layers.Dense(units, activation="relu", name=f"dense_{i}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"dropout_{i}")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="mlp")


def residual_block(x: keras.KerasTensor, filters: int, kernel_size: int, index: int) -> keras.KerasTensor:
    shortcut = x
    x = layers.Conv1D(filters, kernel_size, padding="same", activation="relu", name=f"block{index}_conv1")(x)
    x = layers.Conv1D(filters, kernel_size, padding="same", name=f"block{index}_conv2")(x)
    x = layers.Add(name=f"block{index}_add")([x, shortcut])
    x = layers.Activation("relu", name=f"block{index}_relu")(x)
    return layers.MaxPooling1D(pool_size=5, strides=2, name=f"block{index}_pool")(x)


def build_resnet(
    n_classes: int,
    filters: int = 32,
    kernel_size: int = 5,
    blocks: int = 5,
    dense: int = 32,
    dropout: float = 0.0,
    rhythm_features: int = 0,
) -> keras.Model:
    """The paper's 1-D ResNet (see the module docstring); the defaults are the paper's sizes.

    ``rhythm_features > 0`` adds a second input of that many R-R features. They
    join after the representation: a Dense 16 ReLU on the features, concatenated
    with the representation, a Dense ``dense`` ReLU, then the softmax. The beat
    path up to the representation is unchanged, so transfer still works from it.
    """
    inputs = keras.Input(shape=(BEAT_LENGTH,), name="beat")
    x = layers.Reshape((BEAT_LENGTH, 1), name="channels")(inputs)
    x = layers.Conv1D(filters, kernel_size, padding="same", name="stem_conv")(x)
    for i in range(1, blocks + 1):
        x = residual_block(x, filters, kernel_size, i)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense, activation="relu", name="dense_1")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(dense, name=REPRESENTATION_LAYER)(x)
    if not rhythm_features:
        outputs = layers.Dense(n_classes, activation="softmax", name="softmax", dtype="float32")(x)
        return keras.Model(inputs, outputs, name="resnet")
    rhythm = keras.Input(shape=(rhythm_features,), name=RHYTHM_INPUT)
    r = layers.Dense(16, activation="relu", name="rhythm_dense")(rhythm)
    x = layers.Concatenate(name="beat_and_rhythm")([x, r])
    x = layers.Dense(dense, activation="relu", name="head")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="softmax", dtype="float32")(x)
    return keras.Model([inputs, rhythm], outputs, name="resnet_rhythm")


def model_inputs(model: keras.Model, split: Split) -> np.ndarray | list[np.ndarray]:
    """What ``model`` takes for ``split``, input by input: the beats, the rhythm context (its first
    columns, as many as the model reads), the windows and the patient features."""
    out = []
    for tensor in model.inputs:
        name = tensor.name
        kind = INPUT_ARRAYS.get(name)
        array = getattr(split, kind) if kind else None
        if kind is None:
            raise ModelError(f"model {model.name!r} has an input {name!r} that no prepared array feeds")
        if array is None:
            raise DataError(
                f"model {model.name!r} takes {name!r} input, which the data has none of ({kind}_<split>.npy): "
                "only sources that know each beat's record give it (physionet, demo); use a beat-only model"
            )
        if name == RHYTHM_INPUT:
            width = int(tensor.shape[1])
            if array.shape[1] < width:
                raise DataError(
                    f"model {model.name!r} takes {width} rhythm features, but the data has {array.shape[1]}; "
                    "rerun preprocess (dvc repro preprocess) to rebuild R_<split>.npy"
                )
            array = array[:, :width]
        out.append(np.asarray(array, dtype=np.float32))
    return out[0] if len(out) == 1 else out


@keras.saving.register_keras_serializable(package="heartbeat")
class LeadDropout(layers.Layer):
    """In training only, gives a share ``rate`` of the beats lead 1 in place of lead 2 (the window's second
    channel and the lead-2 patient features), so one model serves one-lead and two-lead recordings
    (BENCHMARKS.md, "New patients"). At inference it passes its inputs through unchanged."""

    def __init__(
        self, rate: float, lead2: list[int], lead1: list[int], seed: int | None = None, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.rate, self.lead2, self.lead1, self.seed = float(rate), list(lead2), list(lead1), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs: list, training: bool | None = None) -> list:
        window, patient = inputs
        if not training or self.rate <= 0:
            return [window, patient]
        ops = keras.ops
        drop = keras.random.uniform((ops.shape(window)[0], 1), seed=self.seed_generator) < self.rate
        first = window[:, :, :1]
        window = ops.where(drop[:, :, None], ops.concatenate([first, first], axis=-1), window)
        swapped = ops.take(patient, self._source_columns(patient.shape[1]), axis=1)
        return [window, ops.where(drop, swapped, patient)]

    def _source_columns(self, n: int) -> list[int]:
        source = list(range(n))
        for two, one in zip(self.lead2, self.lead1, strict=True):
            source[two] = one
        return source

    def compute_output_shape(self, input_shape: list) -> list:
        return list(input_shape)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "rate": self.rate,
            "lead2": self.lead2,
            "lead1": self.lead1,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="heartbeat")
class WindowAugment(layers.Layer):
    """In training only, varies each beat's window the way recordings of different patients differ:
    the gain of each lead (× U(1 ± ``amplitude``)), baseline wander (an offset and a slope across the
    window, each up to ± ``wander``), electrode noise (Gaussian, σ drawn from U(0, ``noise``) per beat)
    and heart-rate-dependent widths (time stretch by U(1 ± ``stretch``) about the R-peak at sample
    ``centre``, linear interpolation). The window is in units of its record's QRS amplitude, so the
    sizes are fractions of it. At inference it passes the window through unchanged."""

    def __init__(
        self,
        amplitude: float = 0.0,
        wander: float = 0.0,
        noise: float = 0.0,
        stretch: float = 0.0,
        centre: int = 0,
        seed: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.amplitude, self.wander = float(amplitude), float(wander)
        self.noise, self.stretch = float(noise), float(stretch)
        self.centre, self.seed = int(centre), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, window: keras.KerasTensor, training: bool | None = None) -> keras.KerasTensor:
        if not training:
            return window
        ops, random = keras.ops, keras.random
        n, length, leads = ops.shape(window)[0], window.shape[1], window.shape[2]

        def uniform(shape: tuple, low: float, high: float) -> keras.KerasTensor:
            return random.uniform(shape, low, high, seed=self.seed_generator)

        if self.stretch:
            factor = uniform((n, 1), 1 - self.stretch, 1 + self.stretch)
            position = self.centre + (ops.arange(length, dtype="float32")[None, :] - self.centre) / factor
            position = ops.clip(position, 0.0, length - 1.0)
            low = ops.floor(position)
            frac = (position - low)[:, :, None]
            low = ops.cast(low, "int32")
            high = ops.minimum(low + 1, length - 1)

            def gather(index: keras.KerasTensor) -> keras.KerasTensor:
                return ops.take_along_axis(window, ops.repeat(index[:, :, None], leads, axis=2), axis=1)

            window = gather(low) * (1 - frac) + gather(high) * frac
        if self.amplitude:
            window = window * uniform((n, 1, leads), 1 - self.amplitude, 1 + self.amplitude)
        if self.wander:
            ramp = ops.linspace(-1.0, 1.0, length)[None, :, None]
            offset = uniform((n, 1, leads), -self.wander, self.wander)
            slope = uniform((n, 1, leads), -self.wander, self.wander)
            window = window + offset + slope * ramp
        if self.noise:
            sigma = uniform((n, 1, 1), 0.0, self.noise)
            window = window + sigma * random.normal((n, length, leads), seed=self.seed_generator)
        return window

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "amplitude": self.amplitude,
            "wander": self.wander,
            "noise": self.noise,
            "stretch": self.stretch,
            "centre": self.centre,
            "seed": self.seed,
        }


def _stream(seed: int | None, k: int) -> int | None:
    """The seed of a model's ``k``-th random layer. Keras layers given one seed draw one stream: a lead
    dropout and a branch dropout both seeded ``seed`` would swap the leads of exactly the beats whose
    window branch is dropped, so the window branch would never see a swapped lead."""
    return None if seed is None else seed + k


def build_patient_net(
    n_classes: int,
    window_shape: tuple[int, int],
    n_features: int,
    filters: int = 32,
    kernel_size: int = 7,
    blocks: int = 2,
    dense: int = 32,
    dropout: float = 0.3,
    lead_dropout: float = 0.3,
    lead_columns: tuple[list[int], list[int]] = ([], []),
    seed: int | None = None,
    branch_dropout: float = 0.0,
    augment: dict[str, float] | None = None,
    centre: int = 0,
) -> keras.Model:
    """The network for new patients: a small residual CNN over the two-lead window beside a dense layer
    over the patient features, joined by one hidden layer.

    Window: Conv ``filters/2`` k7 and max-pooling, then ``blocks`` residual blocks of two Conv ``filters``
    k7 (a 1×1 projection where the width changes) with max-pooling, global average pooling and Dense
    ``dense``. Features: Dense ``dense``. Joined: Dense ``dense``, dropout, softmax. 31,893 parameters
    with the defaults and the 80 patient features. ``lead_dropout`` is :class:`LeadDropout`'s rate over ``lead_columns``
    (lead-2 columns, lead-1 columns of the patient features). ``branch_dropout`` zeroes the whole
    window branch for that share of the training beats: a new patient's beats often look unlike any
    seen in training, so the features against the patient's own rhythm and median beat must be able
    to classify a beat alone. ``augment`` holds :class:`WindowAugment`'s sizes (none: no augmentation);
    ``centre`` is the R-peak's sample in the window.
    """
    window = keras.Input(shape=window_shape, name=WINDOW_INPUT)
    features = keras.Input(shape=(n_features,), name=PATIENT_INPUT)
    w, f = window, features
    if lead_dropout:
        w, f = LeadDropout(lead_dropout, *lead_columns, seed=_stream(seed, 0), name="lead_dropout")(
            [window, features]
        )
    if augment and any(augment.values()):
        w = WindowAugment(**augment, centre=centre, seed=_stream(seed, 2), name="window_augment")(w)
    x = layers.Conv1D(max(filters // 2, 1), kernel_size, padding="same", activation="relu", name="stem")(w)
    x = layers.MaxPooling1D(2, name="stem_pool")(x)
    for i in range(blocks):
        shortcut = x if x.shape[-1] == filters else layers.Conv1D(filters, 1, name=f"block{i}_proj")(x)
        h = layers.Conv1D(filters, kernel_size, padding="same", activation="relu", name=f"block{i}_conv1")(x)
        h = layers.Conv1D(filters, kernel_size, padding="same", name=f"block{i}_conv2")(h)
        h = layers.Add(name=f"block{i}_add")([h, shortcut])
        h = layers.Activation("relu", name=f"block{i}_relu")(h)
        x = layers.MaxPooling1D(2, name=f"block{i}_pool")(h)
    x = layers.GlobalAveragePooling1D(name="gap")(x)
    x = layers.Dense(dense, activation="relu", name="morphology")(x)
    if branch_dropout:
        x = layers.Dropout(
            branch_dropout, noise_shape=(None, 1), seed=_stream(seed, 1), name="window_dropout"
        )(x)
    r = layers.Dense(dense, activation="relu", name="patient_dense")(f)
    h = layers.Concatenate(name="join")([x, r])
    h = layers.Dense(dense, activation="relu", name=REPRESENTATION_LAYER)(h)
    if dropout:
        h = layers.Dropout(dropout, name="dropout")(h)
    outputs = layers.Dense(n_classes, activation="softmax", name="softmax", dtype="float32")(h)
    return keras.Model([window, features], outputs, name="patient_net")


def takes_rhythm(model: keras.Model) -> bool:
    """Whether ``model`` has the R-R rhythm input (see :func:`build_resnet`)."""
    return any(t.name == RHYTHM_INPUT for t in model.inputs)


def build_ensemble(members: list[keras.Model], name: str) -> keras.Model:
    """One model whose output is the mean of the ``members``' class probabilities (a seed ensemble).

    Why one model rather than a list of files: evaluate, export, ``heartbeat predict`` and the
    transfer stage all keep taking a single ``.keras`` file. The members are nested whole, renamed
    ``member_0``, ``member_1``, ..., so :func:`ensemble_members` gets each back intact.
    """
    if len(members) < 2:
        raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
    shapes = {tuple(tuple(t.shape[1:]) for t in m.inputs) for m in members}
    if len(shapes) != 1:
        raise ValueError(f"ensemble members take different inputs: {sorted(shapes)}")
    for i, member in enumerate(members):
        member.name = f"member_{i}"
    inputs = [keras.Input(shape=t.shape[1:], name=t.name) for t in members[0].inputs]
    x = inputs if len(inputs) > 1 else inputs[0]
    outputs = layers.Average(name=ENSEMBLE_OUTPUT, dtype="float32")([m(x) for m in members])
    return keras.Model(x, outputs, name=name)


def with_temperature(model: keras.Model, temperature: float) -> keras.Model:
    """``model`` with ``temperature`` folded into its softmax layer: ``softmax(z / T)`` is a Dense
    layer's ``softmax((W / T) x + b / T)``, so the model itself gives the calibrated probabilities and
    an ensemble can average members that each carry their own temperature. Changes ``model`` in place."""
    out = model.layers[-1]
    if not isinstance(out, layers.Dense) or out.activation is not keras.activations.softmax:
        raise ValueError(f"model {model.name!r} does not end in a softmax Dense layer (got {out.name!r})")
    kernel, bias = out.get_weights()
    out.set_weights([kernel / np.float32(temperature), bias / np.float32(temperature)])
    return model


def ensemble_members(model: keras.Model) -> list[keras.Model]:
    """The members of a :func:`build_ensemble` model, in seed order; ``[model]`` for a single model."""
    if not any(layer.name == ENSEMBLE_OUTPUT for layer in model.layers):
        return [model]
    return [layer for layer in model.layers if isinstance(layer, keras.Model)]


def has_representation(model: keras.Model) -> bool:
    """Whether ``model`` (or its first seed-ensemble member) is a network with a representation layer
    that :func:`build_transfer` can carry over; classical models (heartbeat/model/classical.py) have none."""
    return any(layer.name == REPRESENTATION_LAYER for layer in ensemble_members(model)[0].layers)


def build_transfer(base: keras.Model, n_classes: int, freeze: str) -> keras.Model:
    """A new softmax head on the representation of a trained ResNet (or network for new patients).

    ``freeze='all_conv'`` keeps the convolutional feature extractor fixed and
    trains only the dense layers, as the paper does; ``'none'`` fine-tunes all.
    From a seed ensemble it takes the first member (the stage's own seed): one
    representation to fine-tune, the same one a single model would have given.
    """
    base = ensemble_members(base)[0]
    try:
        rep = base.get_layer(REPRESENTATION_LAYER).output
    except ValueError:
        raise ModelError(
            f"model {base.name!r} has no layer {REPRESENTATION_LAYER!r}; finetune_transfer needs the MIT-BIH ResNet"
        ) from None
    outputs = layers.Dense(n_classes, activation="softmax", name="transfer_softmax", dtype="float32")(rep)
    # A rhythm ResNet's representation depends on the beat only: its transfer model is beat-only. The
    # network for new patients keeps both its inputs.
    inputs = [t for t in base.inputs if t.name != RHYTHM_INPUT]
    model = keras.Model(inputs[0] if len(inputs) == 1 else inputs, outputs, name="transfer")
    for layer in model.layers:
        is_conv = isinstance(layer, layers.Conv1D)
        layer.trainable = not (freeze == "all_conv" and is_conv)
    return model
