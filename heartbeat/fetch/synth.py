"""Synthetic ECG beats for the offline ``demo`` source.

THE DATA IS SYNTHETIC. No patient recording is involved: every beat is a sum of
Gaussian waves (in the spirit of McSharry's ECGSYN) drawn from a seeded numpy
Generator, so ``dvc repro`` works on a fresh machine with no network and gives
bit-identical files for the same seed. Models trained on it say nothing about
real ECGs; it exists to exercise the pipeline end to end.

The rows mimic the Kaggle set ``shayanfazeli/heartbeat``: a segment starts at
the R peak (so rows begin near 1.0 and fall with the QRS down-stroke), shows
the S wave, ST segment and T wave, then the next beat's P wave and QRS, and is
1.2 x the beat's RR interval long at 125 Hz. It is min-max normalised to
[0, 1] (its maximum is exactly 1.0) and zero-padded to 187 samples. Each beat
has its own heart rate (RR 0.45-1.3 s), gain, white noise and baseline wander.

What each class looks like (MIT-BIH labels 0..4, then the two PTB files):

* N (normal): narrow QRS, upright T, normal P before the next beat.
* S (supraventricular premature): narrow QRS like N, but a short RR (a short
  row) and an abnormal P before the next beat: inverted, absent, biphasic or
  early (merged into the T wave).
* V (ventricular): wide, slurred QRS with a deep broad S, a large T of the
  opposite polarity, and usually no P before the next beat.
* F (fusion): a random blend of the N and V shapes (QRS width, S depth, T
  polarity), so it sits between them.
* Q (paced / unclassifiable): a wide QRS with a discordant T, a fixed pacing
  rate and a sharp pacing spike just before the next (also wide) QRS; a fifth
  of them are buried in heavy noise.
* PTB normal: like N, with PTB's slightly slower rates.
* PTB abnormal (myocardial infarction): one or more of ST elevation or
  depression, a pathological (deep, wide) Q wave and T inversion, each with a
  random severity.

Classes overlap on purpose (mild abnormalities, S beats with near-normal P or
rate, F blends close to N or V, noise), so a good classifier scores roughly
90-98 %, not 100 %. MIT-BIH class shares are imbalanced like the real data but
keep enough minority beats to learn: see ``MITBIH_SHARES``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from heartbeat.core.beatcsv import Beats
from heartbeat.core.beats import BEAT_LENGTH, MITBIH_CLASSES
from heartbeat.core.errors import ParamsError
from heartbeat.core.layout import RAW_FILES

FS = 125.0
"""Sampling rate of the Kaggle rows (Hz)."""

MITBIH_SHARES: dict[str, float] = {"N": 0.55, "S": 0.12, "V": 0.15, "F": 0.06, "Q": 0.12}
"""Class shares of the MIT-BIH files: N dominates as in the real data (about 83 %
there), but the minority classes get enough rows to be learnable from a few
thousand beats."""

SIZE_KEYS: tuple[str, ...] = ("mitbih_train", "mitbih_test", "ptb_normal", "ptb_abnormal")
"""Keys of ``sizes``, in the order of ``RAW_FILES``."""

# Morphology codes: the five MIT-BIH labels, then the two PTB classes.
_N, _S, _V, _F, _Q, _PTB_NORMAL, _PTB_MI = range(7)

# Per code: mean and spread of the RR interval (s). S and F are premature
# (short rows), Q is paced at a near-fixed rate, MI patients run faster.
_RR_MEAN = np.array([0.86, 0.62, 0.80, 0.66, 0.82, 0.92, 0.80])
_RR_SD = np.array([0.15, 0.10, 0.17, 0.10, 0.05, 0.14, 0.13])
_RR_RANGE = (0.45, 1.30)

_T = np.arange(BEAT_LENGTH) / FS  # seconds after the R peak


def class_counts(n: int, shares: Mapping[str, float] = MITBIH_SHARES) -> np.ndarray:
    """Split ``n`` rows by ``shares`` (largest remainder) so every class has a row whenever n >= #classes."""
    frac = np.array(list(shares.values()), dtype=float)
    raw = n * frac / frac.sum()
    counts = np.floor(raw).astype(np.int64)
    if n >= len(frac):
        counts = np.maximum(counts, 1)
    while counts.sum() < n:
        counts[np.argmax(raw - counts)] += 1
    while counts.sum() > n:
        counts[np.argmax(counts)] -= 1
    return counts


def generate_demo(seed: int, sizes: Mapping[str, int]) -> dict[str, Beats]:
    """Build the four Kaggle-format files from ``seed`` alone.

    Each file draws from its own child of the seed, so changing one file's size
    leaves the other files' rows unchanged.
    """
    counts = _check_sizes(sizes)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ParamsError(f"data.seed: must be an integer (got {seed!r})")
    root = np.random.SeedSequence([abs(int(seed)), int(seed < 0)])
    out: dict[str, Beats] = {}
    for name, key, child in zip(RAW_FILES, SIZE_KEYS, root.spawn(len(RAW_FILES)), strict=True):
        rng = np.random.default_rng(child)
        n = counts[key]
        if key.startswith("mitbih"):
            y = rng.permutation(np.repeat(np.arange(len(MITBIH_CLASSES)), class_counts(n)))
            codes = y
        else:
            label = 0 if key == "ptb_normal" else 1
            y = np.full(n, label)
            codes = np.full(n, _PTB_NORMAL + label)
        out[name] = Beats(X=_render(rng, codes), y=y.astype(np.int64))
    return out


def _check_sizes(sizes: Mapping[str, int]) -> dict[str, int]:
    unknown = sorted(set(sizes) - set(SIZE_KEYS))
    missing = [k for k in SIZE_KEYS if k not in sizes]
    if unknown or missing:
        raise ParamsError(
            f"data.demo: expected keys {', '.join(SIZE_KEYS)} (missing {missing}, unknown {unknown})"
        )
    for key in SIZE_KEYS:
        value = sizes[key]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ParamsError(f"data.demo.{key}: must be a whole number >= 0 (got {value!r})")
    return {k: int(sizes[k]) for k in SIZE_KEYS}


def _gauss(amp: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    return amp[:, None] * np.exp(-0.5 * ((_T[None, :] - mu[:, None]) / sigma[:, None]) ** 2)


def _plateau(height: np.ndarray, start: np.ndarray, stop: np.ndarray, edge: float = 0.02) -> np.ndarray:
    t = _T[None, :]
    return (
        0.5 * height[:, None] * (np.tanh((t - start[:, None]) / edge) - np.tanh((t - stop[:, None]) / edge))
    )


def _render(rng: np.random.Generator, codes: np.ndarray) -> np.ndarray:
    """Draw one beat per code; all rows at once, so 10k beats cost a fraction of a second."""
    n = len(codes)
    if n == 0:
        return np.zeros((0, BEAT_LENGTH), dtype=np.float32)
    u = rng.uniform

    def is_(*which: int) -> np.ndarray:
        return np.isin(codes, which)

    rr = np.clip(rng.normal(_RR_MEAN[codes], _RR_SD[codes]), *_RR_RANGE)
    length = np.minimum(np.rint(1.2 * rr * FS).astype(np.int64), BEAT_LENGTH)

    # How ventricular the current beat is: 0 for a normal QRS, 1 for a PVC.
    w = np.zeros(n)
    w[is_(_V)] = u(0.8, 1.0, is_(_V).sum())
    w[is_(_F)] = u(0.25, 0.75, is_(_F).sum())
    w[is_(_Q)] = u(0.65, 1.0, is_(_Q).sum())

    def mix(normal: np.ndarray, ventricular: np.ndarray) -> np.ndarray:
        return (1 - w) * normal + w * ventricular

    # Current beat: R at t=0 (the row starts on it), S, ST segment, T wave.
    r_mu = mix(u(-0.004, 0.004, n), u(-0.008, 0.02, n))
    r_sd = mix(u(0.008, 0.013, n), u(0.026, 0.045, n))
    s_amp = -mix(u(0.05, 0.35, n), u(0.25, 0.6, n))
    s_mu = r_mu + mix(u(0.026, 0.04, n), u(0.055, 0.085, n))
    s_sd = mix(u(0.008, 0.013, n), u(0.022, 0.04, n))
    qt = 0.4 * np.sqrt(rr)  # Bazett: the T wave moves with the heart rate
    t_mu = qt - 0.08 + mix(u(-0.02, 0.02, n), u(0.01, 0.05, n))
    t_amp = mix(u(0.1, 0.4, n), -u(0.3, 0.75, n))
    t_sd = mix(u(0.035, 0.055, n), u(0.055, 0.09, n))
    st = rng.normal(0.0, 0.02, n)

    # Next beat: P, Q, R, S at t = rr (normal unless paced).
    pr = u(0.13, 0.2, n)
    p_amp = u(0.06, 0.2, n)
    p_mu = rr - pr
    p_sd = u(0.018, 0.03, n)
    q_amp = -u(0.0, 0.1, n)
    q_sd = u(0.006, 0.01, n)
    r2_amp = u(0.8, 1.1, n)
    r2_sd = u(0.008, 0.013, n)
    s2_amp = -u(0.05, 0.3, n)
    extra = np.zeros((n, BEAT_LENGTH))

    # S: abnormal atrial activity: inverted, absent, biphasic, early; some look normal.
    m = is_(_S)
    mode = rng.choice(5, size=n, p=[0.3, 0.25, 0.15, 0.15, 0.15])
    p_amp = np.where(m & (mode == 0), -u(0.04, 0.14, n), p_amp)
    p_amp = np.where(m & (mode == 1), u(0.0, 0.03, n), p_amp)
    biphasic = m & (mode == 2)
    extra += _gauss(np.where(biphasic, -u(0.05, 0.12, n), 0.0), p_mu + 0.03, p_sd)
    p_mu = np.where(m & (mode == 3), p_mu - u(0.06, 0.14, n), p_mu)

    # V: the sinus P is usually hidden or dissociated.
    m = is_(_V)
    p_amp = np.where(m & (rng.random(n) < 0.75), u(0.0, 0.03, n), p_amp)
    p_amp = np.where(is_(_F), u(0.02, 0.15, n), p_amp)

    # Q: paced again: pacing spike (on a sample, so it is never missed) before a wide QRS.
    m = is_(_Q)
    p_amp = np.where(m, u(0.0, 0.06, n), p_amp)
    r2_sd = np.where(m, u(0.024, 0.04, n), r2_sd)
    spike_t = np.rint((rr - u(0.03, 0.06, n)) * FS) / FS
    extra += _gauss(np.where(m, u(0.4, 1.2, n), 0.0), spike_t, np.full(n, 0.003))
    extra += _gauss(np.where(m, -u(0.0, 0.15, n), 0.0), spike_t + 1 / FS, np.full(n, 0.004))

    # MI: ST shift, pathological Q, T inversion; at least one, random severity.
    m = is_(_PTB_MI)
    signs = rng.random((n, 3)) < 0.55
    signs[np.arange(n), rng.integers(0, 3, n)] = True
    has_st, has_q, has_t = (m & signs[:, i] for i in range(3))
    st = np.where(has_st, rng.choice([-1.0, 1.0], n, p=[0.35, 0.65]) * u(0.06, 0.3, n), st)
    q_amp = np.where(has_q, -u(0.12, 0.45, n), q_amp)
    q_sd = np.where(has_q, u(0.011, 0.018, n), q_sd)
    r2_amp = np.where(has_q, r2_amp * u(0.5, 0.95, n), r2_amp)
    t_amp = np.where(has_t, -u(0.04, 0.3, n), t_amp)

    wave = (
        _gauss(np.ones(n), r_mu, r_sd)
        + _gauss(s_amp, s_mu, s_sd)
        + _plateau(st, s_mu + 0.02, t_mu)
        + _gauss(t_amp, t_mu, t_sd)
        + _gauss(p_amp, p_mu, p_sd)
        + _gauss(q_amp, rr - 0.03 - (q_sd - 0.008), q_sd)
        + _gauss(r2_amp, rr, r2_sd)
        + _gauss(s2_amp, rr + 0.035, u(0.008, 0.013, n))
        + extra
    )

    # Recording conditions: gain, white noise, baseline wander and drift.
    noise_sd = np.clip(np.exp(rng.normal(np.log(0.012), 0.6, n)), 0.002, 0.06)
    noisy_q = is_(_Q) & (rng.random(n) < 0.2)
    noise_sd = np.where(noisy_q, u(0.05, 0.12, n), noise_sd)
    wander = _T[None, :] * u(-0.1, 0.1, n)[:, None] + u(0.0, 0.12, n)[:, None] * np.sin(
        2 * np.pi * u(0.1, 0.7, n)[:, None] * _T[None, :] + u(0, 2 * np.pi, n)[:, None]
    )
    x = u(0.5, 1.5, n)[:, None] * wave + wander + noise_sd[:, None] * rng.standard_normal((n, BEAT_LENGTH))

    valid = np.arange(BEAT_LENGTH)[None, :] < length[:, None]
    lo = np.where(valid, x, np.inf).min(axis=1, keepdims=True)
    hi = np.where(valid, x, -np.inf).max(axis=1, keepdims=True)
    x = np.where(valid, (x - lo) / (hi - lo), 0.0)
    return np.clip(x, 0.0, 1.0).astype(np.float32)
