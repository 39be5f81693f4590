"""Tests of the synthetic demo data: format, determinism, class content and learnability."""

from __future__ import annotations

import numpy as np
import pytest

from heartbeat.core.beatcsv import read_beats_csv, write_beats_csv
from heartbeat.core.beats import BEAT_LENGTH
from heartbeat.core.errors import ParamsError
from heartbeat.core.layout import FILE_CLASSES, RAW_FILES
from heartbeat.fetch.synth import MITBIH_SHARES, class_counts, generate_demo

SIZES = {"mitbih_train": 600, "mitbih_test": 200, "ptb_normal": 150, "ptb_abnormal": 150}


@pytest.fixture(scope="module")
def demo() -> dict:
    return generate_demo(0, SIZES)


def _nonzero_length(X: np.ndarray) -> np.ndarray:
    """Index after the last non-zero sample of each row."""
    return BEAT_LENGTH - np.argmax(X[:, ::-1] != 0, axis=1)


def test_files_shapes_and_dtypes(demo: dict) -> None:
    assert list(demo) == list(RAW_FILES)
    for name, key in zip(RAW_FILES, SIZES, strict=True):
        beats = demo[name]
        assert beats.X.shape == (SIZES[key], BEAT_LENGTH)
        assert beats.X.dtype == np.float32
        assert beats.y.dtype == np.int64
        assert beats.y.shape == (SIZES[key],)


def test_values_finite_in_unit_range_with_max_one(demo: dict) -> None:
    for beats in demo.values():
        assert np.isfinite(beats.X).all()
        assert beats.X.min() >= 0.0
        assert beats.X.max() <= 1.0
        np.testing.assert_array_equal(beats.X.max(axis=1), 1.0)


def test_rows_start_near_the_r_peak(demo: dict) -> None:
    for beats in demo.values():
        assert np.median(beats.X[:, 0]) > 0.8


def test_every_class_present_with_expected_labels(demo: dict) -> None:
    for name, beats in demo.items():
        assert sorted(np.unique(beats.y)) == list(FILE_CLASSES[name])
    counts = np.bincount(demo["mitbih_train.csv"].y, minlength=5)
    assert counts.min() >= 24  # a few dozen minority beats even in a small file
    assert counts[0] == counts.max()  # N dominates, as in the real data


def test_rows_are_shuffled(demo: dict) -> None:
    y = demo["mitbih_train.csv"].y
    assert not (np.all(np.diff(y) >= 0) or np.all(np.diff(y) <= 0))


def test_zero_padding_follows_heart_rate(demo: dict) -> None:
    X = demo["mitbih_train.csv"].X
    length = _nonzero_length(X)
    assert len(np.unique(length)) > 30
    assert length.min() < 90  # fast beats are padded with many zeros
    assert (length == BEAT_LENGTH).any() or length.max() > 170  # slow beats fill (almost) all 187
    for row, n in zip(X, length, strict=True):
        assert not row[n:].any()


def test_s_beats_are_premature(demo: dict) -> None:
    beats = demo["mitbih_train.csv"]
    length = _nonzero_length(beats.X)
    assert np.median(length[beats.y == 1]) < np.median(length[beats.y == 0]) - 15


def test_same_seed_is_bit_identical_other_seed_differs(demo: dict) -> None:
    again = generate_demo(0, SIZES)
    other = generate_demo(1, SIZES)
    for name in RAW_FILES:
        np.testing.assert_array_equal(again[name].X, demo[name].X)
        np.testing.assert_array_equal(again[name].y, demo[name].y)
        assert not np.array_equal(other[name].X, demo[name].X)
    negative = generate_demo(-1, SIZES)
    assert not np.array_equal(negative["mitbih_train.csv"].X, other["mitbih_train.csv"].X)


def test_one_file_size_does_not_change_the_others(demo: dict) -> None:
    bigger = generate_demo(0, {**SIZES, "mitbih_train": 700})
    np.testing.assert_array_equal(bigger["mitbih_test.csv"].X, demo["mitbih_test.csv"].X)


def test_roundtrips_through_csv(demo: dict, tmp_path) -> None:
    for name, beats in demo.items():
        write_beats_csv(tmp_path / name, beats.X, beats.y)
        back = read_beats_csv(tmp_path / name, allowed_labels=FILE_CLASSES[name])
        np.testing.assert_array_equal(back.X, beats.X)
        np.testing.assert_array_equal(back.y, beats.y)


@pytest.mark.parametrize("n", [5, 10, 11, 37, 100, 1001])
def test_class_counts_cover_every_class(n: int) -> None:
    counts = class_counts(n)
    assert counts.sum() == n
    assert (counts >= 1).all()
    assert counts[0] == counts.max()


def test_class_counts_follow_shares() -> None:
    counts = class_counts(10_000)
    np.testing.assert_allclose(counts / 10_000, list(MITBIH_SHARES.values()), atol=1e-4)


def test_smallest_files_still_hold_every_class() -> None:
    beats = generate_demo(3, {"mitbih_train": 5, "mitbih_test": 10, "ptb_normal": 1, "ptb_abnormal": 1})
    assert sorted(beats["mitbih_train.csv"].y) == [0, 1, 2, 3, 4]
    assert set(beats["mitbih_test.csv"].y) == {0, 1, 2, 3, 4}


@pytest.mark.parametrize(
    ("seed", "sizes"),
    [
        (0, {"mitbih_train": 10, "mitbih_test": 10, "ptb_normal": 10}),
        (0, {**SIZES, "extra": 3}),
        (0, {**SIZES, "ptb_normal": -1}),
        (0, {**SIZES, "ptb_normal": 2.5}),
        ("0", SIZES),
    ],
)
def test_bad_arguments_raise_params_error(seed, sizes) -> None:
    with pytest.raises(ParamsError):
        generate_demo(seed, sizes)


def test_learnable_but_not_trivial() -> None:
    """A small random forest must learn the classes, but not perfectly (the classes overlap)."""
    from sklearn.ensemble import RandomForestClassifier

    data = generate_demo(
        7, {"mitbih_train": 1500, "mitbih_test": 500, "ptb_normal": 300, "ptb_abnormal": 300}
    )
    train, test = data["mitbih_train.csv"], data["mitbih_test.csv"]
    forest = RandomForestClassifier(n_estimators=60, random_state=0, n_jobs=1).fit(train.X, train.y)
    accuracy = (forest.predict(test.X) == test.y).mean()
    assert 0.7 < accuracy < 0.999
    per_class = [(forest.predict(test.X[test.y == c]) == c).mean() for c in range(5)]
    assert min(per_class) > 0.3  # every class, not just N, carries a learnable signal

    X = np.vstack([data["ptbdb_normal.csv"].X, data["ptbdb_abnormal.csv"].X])
    y = np.concatenate([data["ptbdb_normal.csv"].y, data["ptbdb_abnormal.csv"].y])
    order = np.random.default_rng(0).permutation(len(y))
    X, y = X[order], y[order]
    forest = RandomForestClassifier(n_estimators=60, random_state=0, n_jobs=1).fit(X[:450], y[:450])
    accuracy = (forest.predict(X[450:]) == y[450:]).mean()
    assert 0.7 < accuracy < 0.999
