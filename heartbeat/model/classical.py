"""The classical inter-patient methods as Keras models: linear discriminants and boosted trees.

de Chazal et al. 2004 classify each beat from hand-made R-R and morphology features with linear
discriminants; Shi et al. 2019 use gradient-boosted trees on such features. Both read the 80
features of each beat against its own patient (heartbeat/signal/patient.py). They are fitted with
scikit-learn, then written into a Keras model that computes exactly what scikit-learn's
``predict_proba`` does, so the pipeline saves, exports, evaluates and serves them as it does the
networks: one ``.keras`` file, the same two inputs (the window is not read), the same runners.

* :func:`lda_model`: ``LinearDiscriminantAnalysis`` posteriors are the softmax of its linear
  decision function, so one ``Dense`` layer with its coefficients reproduces them.
* :func:`gbt_model`: a ``HistGradientBoostingClassifier``'s trees as arrays in a
  :class:`TreeEnsemble` layer, which walks every tree a level per step; the raw scores, summed per
  class, go through the same softmax.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

ABSENT_LOGIT = -30.0
"""The score of a class the training data had no beat of: a probability of about 1e-13."""


def _inputs(window_shape: tuple[int, int], n_features: int) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    from heartbeat.model.architectures import PATIENT_INPUT, WINDOW_INPUT

    return keras.Input(window_shape, name=WINDOW_INPUT), keras.Input((n_features,), name=PATIENT_INPUT)


def _full_scores(classes: np.ndarray, n_classes: int) -> np.ndarray:
    """A ``(k, n_classes)`` 0/1 matrix placing each of the ``k`` fitted classes in the model's output."""
    place = np.zeros((len(classes), n_classes), dtype=np.float32)
    place[np.arange(len(classes)), np.asarray(classes, dtype=int)] = 1.0
    return place


def lda_model(lda, n_classes: int, window_shape: tuple[int, int], n_features: int) -> keras.Model:
    """A Keras model whose output equals ``lda.predict_proba`` (a fitted LinearDiscriminantAnalysis
    with more than two classes), over all ``n_classes``."""
    coef = np.asarray(lda.coef_, dtype=np.float64)
    if coef.shape[0] < 3:
        raise ValueError("lda_model: the discriminants need at least three classes in the training data")
    place = _full_scores(lda.classes_, n_classes)
    kernel = (coef.T @ place).astype(np.float32)
    bias = np.full(n_classes, ABSENT_LOGIT, dtype=np.float32)
    bias[np.asarray(lda.classes_, dtype=int)] = np.asarray(lda.intercept_, dtype=np.float32)
    window, patient = _inputs(window_shape, n_features)
    dense = layers.Dense(n_classes, activation="softmax", name="discriminants", dtype="float32")
    out = dense(patient)
    dense.set_weights([kernel, bias])
    return keras.Model([window, patient], out, name="lda")


def _float32_at_most(threshold: np.ndarray) -> np.ndarray:
    """The largest float32 not above each float64 threshold: for any float32 ``x``,
    ``x <= t`` exactly when ``x <= _float32_at_most(t)``."""
    t32 = threshold.astype(np.float32)
    above = t32.astype(np.float64) > threshold
    t32[above] = np.nextafter(t32[above], np.float32(-np.inf))
    return t32


def tree_arrays(gbt) -> dict[str, np.ndarray]:
    """A fitted HistGradientBoostingClassifier's trees as padded arrays, one row per tree: the feature
    and threshold of each split, each node's children (a leaf is its own child), the leaf values,
    and which class each tree scores. Trees on categorical features are not supported (none here)."""
    trees = [(k, tree.nodes) for stage in gbt._predictors for k, tree in enumerate(stage)]
    if any(nodes["is_categorical"].any() for _, nodes in trees):
        raise ValueError("tree_arrays: categorical splits are not supported")
    width = max(len(nodes) for _, nodes in trees)
    n = len(trees)
    feature = np.zeros((n, width), dtype=np.int32)
    threshold = np.full((n, width), np.inf, dtype=np.float32)
    left = np.tile(np.arange(width, dtype=np.int32), (n, 1))
    right = left.copy()
    value = np.zeros((n, width), dtype=np.float32)
    tree_class = np.zeros(n, dtype=np.int32)
    depth = 0
    for i, (k, nodes) in enumerate(trees):
        m = len(nodes)
        split = nodes["is_leaf"] == 0
        feature[i, :m] = np.where(split, nodes["feature_idx"], 0)
        threshold[i, :m] = np.where(split, _float32_at_most(nodes["num_threshold"]), np.inf)
        left[i, :m] = np.where(split, nodes["left"], np.arange(m))
        right[i, :m] = np.where(split, nodes["right"], np.arange(m))
        value[i, :m] = np.where(split, 0.0, nodes["value"])
        tree_class[i] = k
        depth = max(depth, int(nodes["depth"].max()))
    return {
        "feature": feature,
        "threshold": threshold,
        "left": left,
        "right": right,
        "value": value,
        "tree_class": tree_class,
        "depth": np.int32(depth),
    }


@keras.saving.register_keras_serializable(package="heartbeat")
class TreeEnsemble(layers.Layer):
    """Sums, per class, the leaf values that ``trees`` regression trees give each row of features.

    Every tree is walked at once, one level per step, ``depth`` steps: at a split node a row goes
    left when its feature is at most the threshold; a leaf points to itself, so rows that reached
    one stay there. The trees live in non-trainable weights, so the ``.keras`` file holds them.
    """

    def __init__(self, trees: int, width: int, depth: int, classes: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.trees, self.width, self.depth, self.classes = int(trees), int(width), int(depth), int(classes)

    def build(self, input_shape: tuple) -> None:
        shape = (self.trees * self.width,)

        def weight(name: str, dtype: str, shape: tuple = shape) -> keras.Variable:
            return self.add_weight(name=name, shape=shape, dtype=dtype, initializer="zeros", trainable=False)

        self.feature = weight("feature", "int32")
        self.threshold = weight("threshold", "float32")
        self.left = weight("left", "int32")
        self.right = weight("right", "int32")
        self.value = weight("value", "float32")
        self.baseline = weight("baseline", "float32", (self.classes,))
        self.placement = weight("placement", "float32", (self.trees, self.classes))

    def call(self, x: keras.KerasTensor) -> keras.KerasTensor:
        ops = keras.ops
        offset = ops.arange(self.trees, dtype="int32") * self.width  # each tree's first node, flattened
        node = ops.zeros_like(x[:, :1], dtype="int32") + ops.zeros((1, self.trees), dtype="int32")
        for _ in range(self.depth):
            flat = node + offset[None, :]
            features = ops.take(self.feature, flat)
            go_left = ops.take_along_axis(x, features, axis=1) <= ops.take(self.threshold, flat)
            node = ops.where(go_left, ops.take(self.left, flat), ops.take(self.right, flat))
        leaves = ops.take(self.value, node + offset[None, :])
        return ops.matmul(leaves, self.placement) + self.baseline[None, :]

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], self.classes)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "trees": self.trees,
            "width": self.width,
            "depth": self.depth,
            "classes": self.classes,
        }


@keras.saving.register_keras_serializable(package="heartbeat")
class WindowSamples(layers.Layer):
    """Every ``stride``-th sample of both leads of the window, as one flat row per beat: the window's
    shape for the trees, which take a row of numbers per beat."""

    def __init__(self, stride: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.stride = int(stride)

    def call(self, window: keras.KerasTensor) -> keras.KerasTensor:
        picked = window[:, :: self.stride, :]
        return keras.ops.reshape(picked, (-1, picked.shape[1] * picked.shape[2]))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], -(-input_shape[1] // self.stride) * input_shape[2])

    def get_config(self) -> dict:
        return {**super().get_config(), "stride": self.stride}


def tree_features(window: np.ndarray, patient: np.ndarray, stride: int) -> np.ndarray:
    """What the trees read: the patient features, then (``stride`` > 0) the window's samples, exactly
    as the Keras model computes them."""
    patient = np.asarray(patient, dtype=np.float32)
    if not stride:
        return patient
    samples = np.asarray(WindowSamples(stride)(np.asarray(window, dtype=np.float32)))
    return np.hstack([patient, samples])


def gbt_model(
    gbt, n_classes: int, window_shape: tuple[int, int], n_features: int, stride: int = 0
) -> keras.Model:
    """A Keras model whose output equals ``gbt.predict_proba`` (a fitted HistGradientBoostingClassifier
    with more than two classes, on :func:`tree_features` with ``stride``) to float32 rounding, over
    all ``n_classes``."""
    if gbt.n_trees_per_iteration_ < 3:
        raise ValueError("gbt_model: the trees need at least three classes in the training data")
    arrays = tree_arrays(gbt)
    n, width = arrays["feature"].shape
    place = _full_scores(gbt.classes_, n_classes)
    baseline = np.full(n_classes, ABSENT_LOGIT, dtype=np.float32)
    baseline[np.asarray(gbt.classes_, dtype=int)] = np.asarray(gbt._baseline_prediction, np.float32).ravel()
    ensemble = TreeEnsemble(n, width, int(arrays["depth"]), n_classes, name="trees", dtype="float32")
    window, patient = _inputs(window_shape, n_features)
    features = patient if not stride else layers.Concatenate()([patient, WindowSamples(stride)(window)])
    scores = ensemble(features)
    ensemble.set_weights(
        [
            arrays["feature"].ravel(),
            arrays["threshold"].ravel(),
            arrays["left"].ravel(),
            arrays["right"].ravel(),
            arrays["value"].ravel(),
            baseline,
            place[arrays["tree_class"]],
        ]
    )
    out = layers.Softmax(name="softmax", dtype="float32")(scores)
    return keras.Model([window, patient], out, name="gbt")


def has_trees(model: keras.Model) -> bool:
    """Whether ``model`` (or a model inside it) holds a :class:`TreeEnsemble`."""
    return any(
        isinstance(layer, TreeEnsemble) or (isinstance(layer, keras.Model) and has_trees(layer))
        for layer in model.layers
    )
