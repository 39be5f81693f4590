"""Synthetic patients' continuous ECG records for the offline ``demo`` source.

THE DATA IS SYNTHETIC. No patient recording is involved: every record is a sum of Gaussian waves
(P, Q, R, S, T, in the spirit of McSharry's ECGSYN) placed at beat times that a rhythm model
draws from a seeded numpy Generator, plus baseline wander, mains hum and noise. So ``dvc repro``
works on a fresh machine with no network and gives bit-identical files for the same seed. Models
trained on it say nothing about real ECGs; it exists to run the shipped recipe end to end.

The records look like the two PhysioNet databases the physionet source reads, and the demo
source cuts them with the same code (:func:`heartbeat.signal.record_beats.cut_record`), so beats, R-R
and record features come out exactly as they would from real records:

* **MIT-BIH-like** (:func:`mitdb_records`): one lead (MLII) at 360 Hz in mV, with an R-peak
  annotation and beat symbol per beat, named after MIT-BIH records (:func:`mitdb_record_names`):
  de Chazal's DS1 and DS2 lists alternately and every tenth a paced record, so the params'
  ``preprocess.patient`` lists give an inter-patient split.
* **PTB-like** (:func:`ptbdb_records`): lead ii at 1000 Hz, healthy controls (some with a flat T
  wave or slight ST depression) and myocardial infarction patients (ST shift, pathological Q wave,
  T inversion, from mild to marked), named ``patientNNN/sNNNN_re``; like PTB, beats are found by
  the detector and labelled by the record's diagnosis.

Every patient has their own heart rate, heart-rate variability (respiratory sinus arrhythmia
plus a slow random walk), morphology (wave amplitudes, widths, intervals, bundle-branch block for
some) and recording conditions. Non-paced MIT-BIH patients follow one of seven profiles (few
ectopic beats, frequent atrial premature beats, frequent PVCs with bigeminy, PVCs with fusion,
mixed, ectopy-dominated, atrial fibrillation), assigned in turn so that both DS1 and DS2 hold every
profile:

* S (``A``, aberrated ``a``, nodal ``J``): a normal QRS after 55-90 % of the sinus R-R, after an
  abnormal or missing P; the sinus node resets, so the pause after it is not compensatory.
* V (``V``): a wide QRS of the patient's own ectopic focus with a discordant T, after 50-78 % of the R-R,
  and a full compensatory pause (the blocked sinus P is drawn where it falls).
* F (``F``): a late ventricular beat that fuses with the sinus beat: a blend of the two shapes,
  at about the sinus time, with its P wave.
* Q (paced ``/`` and fusion ``f``): a pacing spike before a wide QRS at a fixed rate.

Two profiles are there because a patient's usual beat need not be a normal one, nor an irregular
rhythm an ectopic one:

* ectopy-dominated, as MIT-BIH 232: sinus bradycardia (38-52 bpm) with sinus pauses, broken by runs
  of one ectopic atrial focus (one abnormal P shape, the sinus QRS) at 1.4-2 times the sinus rate,
  so that most beats are S (58-72 % on average); the sinus node recovers from each run with a long
  pause, so a sinus beat follows a pause.
* atrial fibrillation: sinus stretches and episodes of fibrillation (R-R irregularly irregular, no
  P waves, f waves on the baseline) or, after the first, flutter (a sawtooth, every 2nd-4th wave
  conducted); every beat is N (or the patient's L/R), and the record's ``profile`` lists the
  episodes as MIT-BIH's rhythm annotations name them (``AFIB``, ``AFL``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from heartbeat.core.config import DS1_RECORDS, DS2_RECORDS, PACED_RECORDS

MITDB_FS = 360.0
"""Sampling rate of the MIT-BIH-like records (Hz), as MIT-BIH."""
PTBDB_FS = 1000.0
"""Sampling rate of the PTB-like records (Hz), as PTB."""
MAX_MITDB_RECORDS = len(DS1_RECORDS) + len(DS2_RECORDS) + len(PACED_RECORDS)
"""Record names there are: MIT-BIH's 48."""
PACED_EVERY = 10
"""Every tenth MIT-BIH-like record is a paced patient (MIT-BIH: 4 of 48)."""
ECTOPY_DOMINATED = "ectopy-dominated"
"""Sinus bradycardia with sinus pauses and frequent runs of ectopic atrial beats: most beats are S."""
ATRIAL_FIBRILLATION = "atrial fibrillation"
"""Episodes of atrial fibrillation or flutter between sinus stretches: every beat N, R-R irregular."""
PROFILES: tuple[str, ...] = (
    "few ectopics",
    "atrial premature",
    "ventricular bigeminy",
    "fusion",
    "mixed",
    ECTOPY_DOMINATED,
    ATRIAL_FIBRILLATION,
)
"""Rhythm profiles of the non-paced MIT-BIH-like patients, assigned in this order to DS1/DS2 pairs:
16 records or more hold every profile on both sides. The two rhythms without normal beats as the
usual ones come last, so a small demo (10 records) still has every class on both sides."""
_PACED_ORDER = ("107", "217", "102", "104")  # the two paced records with an MLII lead first
HEALTHY_SHARE = 0.4
"""Share of PTB-like patients who are healthy controls (PTB: 52 of 200 patients with these two diagnoses)."""

# Ectopic rates per profile: (atrial premature, ventricular premature, fusion), each a (low, high)
# range drawn per patient. Bigeminy episodes come on top for "ventricular bigeminy".
_RATES: dict[str, tuple[tuple[float, float], ...]] = {
    "few ectopics": ((0.0, 0.01), (0.0, 0.01), (0.0, 0.0)),
    "atrial premature": ((0.12, 0.25), (0.0, 0.01), (0.0, 0.0)),
    "ventricular bigeminy": ((0.0, 0.01), (0.08, 0.15), (0.0, 0.01)),
    "fusion": ((0.0, 0.01), (0.06, 0.1), (0.12, 0.2)),
    "mixed": ((0.06, 0.12), (0.06, 0.12), (0.0, 0.03)),
}

# Beat kinds of the rhythm model (not labels: the symbols below carry those). _CONDUCTED: a
# normally conducted beat with no P wave before it (atrial fibrillation or flutter), labelled N.
_SINUS, _ATRIAL, _VENTRICULAR, _FUSION, _PACED, _PACED_FUSION, _CONDUCTED = range(7)


@dataclass(frozen=True)
class SynthRecord:
    """One synthetic record: a lead in mV and its beats (the truth, like a reference annotation)."""

    database: str
    """``mitdb`` or ``ptbdb``: which PhysioNet database it imitates."""
    name: str
    patient: str
    fs: float
    signal: np.ndarray
    """The lead, float64, in mV."""
    peaks: np.ndarray
    """Sample of every beat's R-peak (the centre of its QRS), int64, increasing."""
    symbols: np.ndarray
    """MIT-BIH annotation symbol of every beat (``N``, ``L``, ``R``, ``A``, ``a``, ``J``, ``V``, ``F``, ``/``, ``f``)."""
    diagnosis: str | None = None
    """PTB's "Reason for admission": ``Healthy control`` or ``Myocardial infarction``; None for mitdb."""
    profile: dict[str, Any] = field(default_factory=dict)
    """The patient as drawn (heart rate, profile, ...), for the source's report."""


# ----------------------------------------------------------------------------- names and seeds


def mitdb_record_names(n: int) -> list[str]:
    """Names of ``n`` MIT-BIH-like records: DS1 and DS2 in turn, every :data:`PACED_EVERY`-th a paced one.

    With the params' DS1/DS2 lists (``preprocess.patient``) the first ``n`` records then split into
    training and test patients as MIT-BIH's do, and the paced ones are excluded alike.
    """
    if not 1 <= n <= MAX_MITDB_RECORDS:
        raise ValueError(f"mitdb_record_names: n must be 1 to {MAX_MITDB_RECORDS}, got {n}")
    ds = (iter(DS1_RECORDS), iter(DS2_RECORDS))
    paced = iter(_PACED_ORDER)
    names, plain = [], 0
    for i in range(n):
        name = next(paced, None) if (i + 1) % PACED_EVERY == 0 else None
        if name is None:
            name = next(ds[plain % 2], None) or next(ds[(plain + 1) % 2])
            plain += 1
        names.append(name)
    return names


def _children(seed: int, database: str, n: int) -> list[np.random.SeedSequence]:
    """One seed per record, so adding records leaves the earlier ones unchanged."""
    tag = {"mitdb": 1, "ptbdb": 2}[database]
    return np.random.SeedSequence([abs(int(seed)), int(seed < 0), tag]).spawn(n)


# ----------------------------------------------------------------------------- waves


@dataclass
class _Waves:
    """Gaussian waves to add to a lead: centre (s), amplitude (mV) and width (standard deviation, s)."""

    centre: list[np.ndarray] = field(default_factory=list)
    amp: list[np.ndarray] = field(default_factory=list)
    width: list[np.ndarray] = field(default_factory=list)

    def add(self, centre: np.ndarray, amp: np.ndarray, width: np.ndarray) -> None:
        n = np.broadcast(centre, amp, width).shape
        self.centre.append(np.broadcast_to(centre, n).astype(np.float64))
        self.amp.append(np.broadcast_to(amp, n).astype(np.float64))
        self.width.append(np.broadcast_to(width, n).astype(np.float64))

    def render(self, n_samples: int, fs: float) -> np.ndarray:
        """The sum of all waves on ``n_samples`` samples at ``fs``, each drawn within ±4 widths."""
        out = np.zeros(n_samples)
        centre, amp, width = (np.concatenate(v) for v in (self.centre, self.amp, self.width))
        keep = amp != 0
        centre, amp, width = centre[keep] * fs, amp[keep], np.maximum(width[keep] * fs, 0.6)
        # Render in groups of similar width, so a narrow wave does not get a T wave's window.
        for lo, hi in ((0, 4), (4, 16), (16, 64), (64, np.inf)):
            g = (width >= lo) & (width < hi)
            if not g.any():
                continue
            half = int(np.ceil(4 * width[g].max()))
            idx = np.rint(centre[g]).astype(np.int64)[:, None] + np.arange(-half, half + 1)[None, :]
            values = amp[g][:, None] * np.exp(-0.5 * ((idx - centre[g][:, None]) / width[g][:, None]) ** 2)
            inside = (idx >= 0) & (idx < n_samples)
            out += np.bincount(idx[inside], weights=values[inside], minlength=n_samples)
        return out


def _draw_morphology(rng: np.random.Generator, bbb: bool) -> dict[str, float]:
    """One patient's sinus beat: wave amplitudes (mV), offsets from the R-peak and widths (s)."""
    u = rng.uniform
    m = {
        "p_amp": u(0.08, 0.22),
        "pr": u(0.13, 0.2),
        "p_width": u(0.018, 0.03),
        "q_amp": -u(0.02, 0.15),
        "q_width": u(0.007, 0.011),
        "r_amp": u(0.8, 1.8),
        "r_width": u(0.008, 0.013),
        "s_amp": -u(0.1, 0.45),
        "s_offset": u(0.026, 0.04),
        "s_width": u(0.008, 0.014),
        "t_amp": u(0.15, 0.45),
        "t_width": u(0.04, 0.065),
        "qt": u(0.36, 0.42),  # QT at R-R 1 s; scaled by sqrt(R-R) (Bazett)
        "st": 0.0,
        "r2_amp": 0.0,
    }
    if bbb:  # bundle-branch block: a wide, notched QRS that is still a normal (N-class) beat
        m["r_width"] *= u(1.8, 2.4)
        m["r2_amp"] = m["r_amp"] * u(0.3, 0.7)
        m["s_offset"] *= 1.6
        m["t_amp"] = -abs(m["t_amp"]) * u(0.3, 0.8)
    return m


def _draw_ectopic_focus(rng: np.random.Generator) -> dict[str, float]:
    """A patient's ventricular focus: wide main deflection of either sign, discordant T."""
    u = rng.uniform
    sign = rng.choice([-1.0, 1.0], p=[0.35, 0.65])
    return {
        "v_amp": sign * u(1.0, 2.2),
        "v_width": u(0.025, 0.042),
        "v2_amp": -sign * u(0.2, 0.7),
        "v2_offset": u(0.045, 0.07),
        "v2_width": u(0.025, 0.04),
        "vt_amp": -sign * u(0.3, 0.7),
        "vt_offset": u(0.26, 0.34),
        "vt_width": u(0.06, 0.09),
    }


def _draw_infarction(rng: np.random.Generator, m: dict[str, float]) -> dict[str, float]:
    """Myocardial infarction signs, at least one of: ST shift, pathological Q wave, T inversion,
    each from mild (close to a healthy beat) to marked."""
    u = rng.uniform
    signs = rng.random(3) < 0.55
    signs[rng.integers(0, 3)] = True
    m = dict(m)
    if signs[0]:
        m["st"] = rng.choice([-1.0, 1.0], p=[0.35, 0.65]) * u(0.03, 0.3)
    if signs[1]:
        m["q_amp"] = -u(0.08, 0.5)
        m["q_width"] = u(0.01, 0.02)
        m["r_amp"] *= u(0.45, 0.95)
    if signs[2]:
        m["t_amp"] = -u(0.0, 0.35)
    m["infarction"] = {"st_shift": bool(signs[0]), "q_wave": bool(signs[1]), "t_inversion": bool(signs[2])}
    return m


def _draw_nonspecific(rng: np.random.Generator, m: dict[str, float]) -> dict[str, float]:
    """What some healthy people's ECGs show too: a flat T wave or a slight ST depression."""
    m = dict(m)
    if rng.random() < 0.5:
        m["t_amp"] = rng.uniform(-0.03, 0.08)
    else:
        m["st"] = -rng.uniform(0.02, 0.06)
    return m


# ----------------------------------------------------------------------------- rhythm


def _sinus_rr(rng: np.random.Generator, rr0: float, n: int, hrv: float) -> np.ndarray:
    """Sinus R-R intervals: respiratory sinus arrhythmia plus a slow random walk, around ``rr0``."""
    t = np.cumsum(np.full(n, rr0))
    resp = rng.uniform(0.18, 0.33)
    rsa = hrv * np.sin(2 * np.pi * resp * t + rng.uniform(0, 2 * np.pi))
    walk = np.zeros(n)
    noise = rng.normal(0.0, hrv * 0.35, n)
    for i in range(1, n):
        walk[i] = 0.97 * walk[i - 1] + noise[i]
    return rr0 * (1 + rsa + walk + rng.normal(0.0, hrv * 0.2, n))


def _rhythm(
    rng: np.random.Generator,
    duration: float,
    rr0: float,
    hrv: float,
    rates: tuple[float, float, float],
    bigeminy_episodes: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Beat times (s), kinds, the R-R before each beat and the times of blocked sinus P waves.

    Ectopic beats replace sinus ones as their kind dictates: an atrial premature beat resets the
    sinus node; a ventricular one blocks the next sinus beat (compensatory pause); a fusion beat
    comes at about the sinus time. ``bigeminy_episodes`` adds runs of a PVC after every sinus beat.
    """
    p_atrial, p_ventricular, p_fusion = rates
    n_max = int(duration / (rr0 * 0.5)) + 8
    sinus = _sinus_rr(rng, rr0, n_max, hrv)
    draws = rng.random((n_max, 4))
    coupling = rng.uniform(0.0, 1.0, (n_max, 2))
    times, kinds, blocked = [], [], []
    t, k, bigeminy = rng.uniform(0.25, 0.8) - rr0, 0, 0  # the first beat 0.25-0.8 s in
    while k < n_max - 2:
        rr = sinus[k]
        d = draws[k]
        if bigeminy_episodes and bigeminy == 0 and d[3] < 0.015:
            bigeminy = int(rng.integers(8, 30))  # an episode of V after every sinus beat
        if kinds and kinds[-1] == _SINUS and (bigeminy > 0 or d[0] < p_ventricular):
            bigeminy = max(bigeminy - 1, 0)
            early = t + rr * (0.5 + 0.28 * coupling[k, 0])
            if early > duration:
                break
            times.append(early)
            kinds.append(_VENTRICULAR)
            blocked.append(t + rr)  # the sinus beat it pre-empts: its P wave still shows
            t += 2 * rr  # full compensatory pause
            kind = _SINUS
            k += 2
        elif kinds and d[1] < p_atrial:
            t += rr * (0.55 + 0.35 * coupling[k, 1])
            kind = _ATRIAL
            k += 1
        elif kinds and d[2] < p_fusion:
            t += rr * (0.93 + 0.06 * coupling[k, 1])
            kind = _FUSION
            k += 1
        else:
            t += rr
            kind = _SINUS
            k += 1
        if t > duration:
            break
        times.append(t)
        kinds.append(kind)
    order = np.argsort(times, kind="stable")
    times_a = np.asarray(times)[order]
    kinds_a = np.asarray(kinds, dtype=np.int64)[order]
    rr_before = np.diff(times_a, prepend=times_a[0] - rr0)
    return times_a, kinds_a, rr_before, np.asarray(blocked)


def _paced_rhythm(
    rng: np.random.Generator, duration: float, rate_bpm: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rr = 60.0 / rate_bpm
    n = int(duration / rr) + 2
    times = rng.uniform(0.2, 0.7) + rr * np.arange(n) + rng.normal(0, 0.002, n)
    times = times[times < duration]
    kinds = np.where(rng.random(times.size) < rng.uniform(0.03, 0.1), _PACED_FUSION, _PACED)
    return times, kinds, np.diff(times, prepend=times[0] - rr), np.zeros(0)


def _atrial_runs(
    rng: np.random.Generator, duration: float, rr0: float, hrv: float, s_share: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sinus bradycardia broken by runs of an ectopic atrial focus, ``s_share`` of the beats on average.

    As in MIT-BIH record 232: a few sinus beats (often one) between runs, some after a sinus pause;
    a run starts early and goes on at the focus's own, faster rate; when it stops, the suppressed
    sinus node takes a long pause to recover, so a sinus beat usually follows a pause.
    """
    sinus_mean = rng.uniform(1.3, 2.5)  # sinus beats between two runs, on average
    run_mean = sinus_mean * s_share / (1 - s_share)
    focus_rr = rr0 * rng.uniform(0.5, 0.72)
    p_arrest = rng.uniform(0.05, 0.15)
    n_max = int(duration / (0.5 * rr0)) + 8  # more sinus intervals than the sinus beats can use
    sinus = _sinus_rr(rng, rr0, n_max, hrv)
    times, kinds = [], []
    t, k, after_run = rng.uniform(0.25, 0.8) - rr0, 0, False
    while t <= duration and k < n_max:
        for _ in range(1 + rng.poisson(sinus_mean - 1)):
            if after_run:
                rr = rr0 * rng.uniform(1.15, 2.0)  # the sinus node recovers from the run
            elif rng.random() < p_arrest:
                rr = sinus[k] * rng.uniform(1.5, 2.3)  # a sinus pause
            else:
                rr = sinus[k]
            t, k, after_run = t + rr, k + 1, False
            times.append(t)
            kinds.append(_SINUS)
            if k >= n_max:
                break
        steps = (
            focus_rr * rng.uniform(0.92, 1.08) * (1 + rng.normal(0.0, 0.03, 1 + rng.poisson(run_mean - 1)))
        )
        steps[0] = sinus[min(k, n_max - 1)] * rng.uniform(0.6, 0.85)  # the run's premature onset
        run = t + np.cumsum(steps)
        times.extend(run.tolist())
        kinds.extend([_ATRIAL] * run.size)
        t, after_run = float(run[-1]), True
    times_a, kinds_a = np.asarray(times), np.asarray(kinds, dtype=np.int64)
    inside = times_a <= duration
    times_a, kinds_a = times_a[inside], kinds_a[inside]
    return times_a, kinds_a, np.diff(times_a, prepend=times_a[0] - rr0), np.zeros(0)


def _fibrillation_rhythm(
    rng: np.random.Generator, duration: float, rr0: float, hrv: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple[float, float, float]]]:
    """Sinus stretches and episodes of atrial fibrillation or flutter: beat times, kinds, the R-R
    before each beat and the episodes (start, end, flutter cycle in s; cycle 0 for fibrillation).

    In fibrillation the AV node passes the chaotic atrial activity on at random: R-R intervals are
    irregularly irregular (independent, log-normal around the episode's rate). In flutter every 2nd
    to 4th flutter wave conducts, so each R-R is a multiple of the flutter cycle. After an episode
    the sinus node resumes after a pause.
    """
    af_rr = rng.uniform(0.45, 0.75)
    spread = rng.uniform(0.2, 0.35)  # R-R coefficient of variation about the same
    sinus = _sinus_rr(rng, rr0, int(duration / (0.5 * rr0)) + 8, hrv)
    times: list[float] = []
    kinds: list[int] = []
    episodes: list[tuple[float, float, float]] = []
    start, fibrillating, k = 0.0, bool(rng.random() < 0.5), 0
    t = rng.uniform(0.25, 0.8) - rr0
    while start < duration:
        end = min(start + (rng.uniform(40, 150) if fibrillating else rng.uniform(15, 50)), duration)
        if not fibrillating:
            if times:
                t = max(t, start - rr0) + rr0 * rng.uniform(1.2, 2.0)  # the sinus node resumes
                times.append(t)
                kinds.append(_SINUS)
            while t + sinus[k] < end:
                t += sinus[k]
                k += 1
                times.append(t)
                kinds.append(_SINUS)
        elif episodes and rng.random() < 0.3:  # flutter (not first): waves every ``cycle``, some conducted
            cycle = rng.uniform(0.19, 0.25)
            ratios = np.array([2, 3, 4])
            p = rng.dirichlet(np.ones(3) * 0.7)
            av = rng.uniform(0.16, 0.26)
            wave = int(np.ceil((t + 0.3 - start - av) / cycle))  # the first wave that can conduct
            while start + wave * cycle + av < end:
                t = start + wave * cycle + av + rng.normal(0.0, 0.004)
                times.append(t)
                kinds.append(_CONDUCTED)
                wave += int(rng.choice(ratios, p=p))
            episodes.append((start, end, cycle))
        else:
            steps = af_rr * rng.lognormal(-0.5 * spread**2, spread, int((end - start) / 0.25) + 8)
            run = t + np.cumsum(np.maximum(steps, 0.28))
            run = run[(run > start) & (run < end)]
            times.extend(run.tolist())
            kinds.extend([_CONDUCTED] * run.size)
            t = float(run[-1]) if run.size else t
            episodes.append((start, end, 0.0))
        start, fibrillating = end, not fibrillating
    times_a, kinds_a = np.asarray(times), np.asarray(kinds, dtype=np.int64)
    inside = (times_a > 0) & (times_a <= duration)
    times_a, kinds_a = times_a[inside], kinds_a[inside]
    return times_a, kinds_a, np.diff(times_a, prepend=times_a[0] - rr0), episodes


def _atrial_activity(
    rng: np.random.Generator, n_samples: int, fs: float, episodes: list[tuple[float, float, float]]
) -> np.ndarray:
    """The baseline that fibrillation (f waves, 4-9 Hz, irregular in rate and size) or flutter (a
    sawtooth at the flutter cycle) draws during each episode, in mV."""
    out = np.zeros(n_samples)
    for start, end, cycle in episodes:
        lo, hi = int(start * fs), min(int(end * fs), n_samples)
        t = np.arange(lo, hi) / fs
        if cycle:  # flutter: a slow descent, then a quick return, every cycle
            frac = ((t - start) / cycle) % 1.0
            wave = np.where(frac < 0.75, 1 - frac / 0.375, -1 + (frac - 0.75) / 0.125)
            out[lo:hi] = 0.5 * rng.uniform(0.08, 0.2) * wave
            continue
        knots = np.arange(start, end + 1.0, 0.5)
        rate = np.clip(
            rng.uniform(4.5, 8.0) + np.interp(t, knots, rng.normal(0.0, 0.8, knots.size)), 3.5, 10.0
        )
        size = rng.uniform(0.02, 0.1) * np.exp(np.interp(t, knots, rng.normal(0.0, 0.35, knots.size)))
        phase = 2 * np.pi * np.cumsum(rate) / fs + rng.uniform(0, 2 * np.pi)
        out[lo:hi] = size * (np.sin(phase) + 0.3 * np.sin(2 * phase + rng.uniform(0, 2 * np.pi)))
        ramp = min(int(0.3 * fs), (hi - lo) // 2)  # fade in and out over 0.3 s
        if ramp:
            out[lo : lo + ramp] *= np.linspace(0.0, 1.0, ramp)
            out[hi - ramp : hi] *= np.linspace(1.0, 0.0, ramp)
    return out


# ----------------------------------------------------------------------------- rendering


def _beat_waves(
    rng: np.random.Generator,
    times: np.ndarray,
    kinds: np.ndarray,
    rr_before: np.ndarray,
    blocked: np.ndarray,
    m: dict[str, float],
    focus: dict[str, float],
    atrial_p: int | None = None,
) -> _Waves:
    """Every wave of every beat; shapes blend by how ventricular (or paced) each beat is.

    An S beat's P wave is one of four abnormal shapes, drawn per beat, or ``atrial_p``'s for every
    S beat (a patient whose S beats come from one ectopic focus).
    """
    n = times.size
    u = rng.uniform
    jitter = 1 + rng.normal(0, 0.04, (n, 6))
    w = np.zeros(n)  # 0: conducted normally, 1: the ventricular focus
    w[kinds == _VENTRICULAR] = u(0.9, 1.0, (kinds == _VENTRICULAR).sum())
    w[kinds == _FUSION] = u(0.3, 0.7, (kinds == _FUSION).sum())
    paced = np.isin(kinds, (_PACED, _PACED_FUSION))
    w[kinds == _PACED] = 1.0
    w[kinds == _PACED_FUSION] = u(0.35, 0.65, (kinds == _PACED_FUSION).sum())
    normal = 1 - w
    waves = _Waves()

    # Atrial activity: a sinus P for sinus, fusion and blocked beats; an abnormal one for S.
    p_time = times - m["pr"] * u(0.95, 1.05, n)
    p_amp = m["p_amp"] * jitter[:, 0]
    atrial = kinds == _ATRIAL
    mode = rng.integers(0, 4, n)  # S: inverted, flat (nodal), biphasic, early and small
    if atrial_p is not None:
        mode[:] = atrial_p
    p_amp = np.where(atrial & (mode == 0), -0.6 * p_amp, p_amp)
    p_amp = np.where(atrial & (mode == 1), 0.05 * p_amp, p_amp)
    p_amp = np.where(atrial & (mode == 3), 0.6 * p_amp, p_amp)
    p_time = np.where(atrial & (mode == 3), p_time - u(0.02, 0.06, n), p_time)
    p_amp = np.where(np.isin(kinds, (_VENTRICULAR, _PACED, _PACED_FUSION, _CONDUCTED)), 0.0, p_amp)
    waves.add(p_time, p_amp, m["p_width"])
    biphasic = atrial & (mode == 2)
    waves.add(p_time + 0.03, np.where(biphasic, -0.7 * m["p_amp"], 0.0), m["p_width"])
    if blocked.size:
        waves.add(blocked - m["pr"], np.full(blocked.size, m["p_amp"]), m["p_width"])

    # Aberrant conduction of some S beats widens their QRS.
    aberrant = atrial & (rng.random(n) < 0.12)
    widen = np.where(aberrant, u(1.4, 1.8, n), 1.0)

    # The conducted QRS and T, scaled by (1 - w).
    qt = m["qt"] * np.sqrt(np.clip(rr_before, 0.3, 2.0))
    waves.add(times - 0.03 * widen, normal * m["q_amp"] * jitter[:, 1], m["q_width"] * widen)
    waves.add(times, normal * m["r_amp"] * jitter[:, 2], m["r_width"] * widen)
    waves.add(times + 0.04 * widen, normal * m["r2_amp"] * jitter[:, 2], m["r_width"] * widen)
    waves.add(times + m["s_offset"] * widen, normal * m["s_amp"] * jitter[:, 3], m["s_width"] * widen)
    waves.add(times + qt - 0.1, normal * m["t_amp"] * jitter[:, 4], m["t_width"])
    if m["st"]:  # an ST shift: overlapping waves that fill the segment between S and T
        for frac in (0.2, 0.45, 0.7):
            waves.add(times + m["s_offset"] + frac * (qt - 0.1 - m["s_offset"]), normal * m["st"], 0.025)

    # The ventricular focus (or the pacemaker's): wide QRS and a discordant T, scaled by w.
    f = focus
    waves.add(times, w * f["v_amp"] * jitter[:, 5], f["v_width"])
    waves.add(times + f["v2_offset"], w * f["v2_amp"], f["v2_width"])
    waves.add(times + f["vt_offset"] * np.sqrt(np.clip(rr_before, 0.3, 2.0)), w * f["vt_amp"], f["vt_width"])
    if paced.any():  # the pacing spike, 40-60 ms before the paced QRS's centre
        spike = np.where(paced, u(1.5, 3.0, n), 0.0)
        waves.add(times - u(0.04, 0.06), spike, 0.0015)
    return waves


def _noise(rng: np.random.Generator, n: int, fs: float, mains_hz: float, level: float) -> np.ndarray:
    """Baseline wander, mains hum and broadband noise of one recording, scaled by ``level``."""
    t = np.arange(n) / fs
    out = np.zeros(n)
    for _ in range(3):
        out += (
            level
            * rng.uniform(0.02, 0.12)
            * np.sin(2 * np.pi * rng.uniform(0.05, 0.45) * t + rng.uniform(0, 2 * np.pi))
        )
    out += rng.uniform(0.0, 0.012) * np.sin(2 * np.pi * mains_hz * t + rng.uniform(0, 2 * np.pi))
    out += rng.normal(0.0, level * np.exp(rng.normal(np.log(0.012), 0.5)), n)
    return out


def _record(
    rng: np.random.Generator,
    database: str,
    name: str,
    patient: str,
    n_samples: int,
    fs: float,
    kind: str,
    diagnosis: str | None = None,
) -> SynthRecord:
    duration = n_samples / fs
    u = rng.uniform
    bbb = kind != "paced" and database == "mitdb" and rng.random() < 0.15
    m = _draw_morphology(rng, bbb)
    if diagnosis == "Myocardial infarction":
        m = _draw_infarction(rng, m)
    elif diagnosis == "Healthy control" and rng.random() < 0.3:
        m = _draw_nonspecific(rng, m)
    focus = _draw_ectopic_focus(rng)
    atrial_waves, atrial_p = np.zeros(n_samples), None  # fibrillation's or flutter's; S beats' P shape
    if kind == "paced":
        rate = float(u(60, 80))
        times, kinds, rr_before, blocked = _paced_rhythm(rng, duration - 0.5, rate)
        focus.update(v_amp=u(1.0, 1.8), v_width=u(0.03, 0.04), vt_amp=-u(0.3, 0.6))
        profile: dict[str, Any] = {"profile": "paced", "pacing_bpm": round(rate, 1)}
    elif kind == ECTOPY_DOMINATED:
        heart_rate, hrv, s_share = float(u(38, 52)), float(u(0.02, 0.05)), float(u(0.58, 0.72))
        times, kinds, rr_before, blocked = _atrial_runs(rng, duration - 0.5, 60.0 / heart_rate, hrv, s_share)
        atrial_p = int(rng.integers(0, 4))
        profile = {"profile": kind, "heart_rate_bpm": round(heart_rate, 1), "hrv": round(hrv, 3)}
        profile["s_share"] = round(s_share, 3)
    elif kind == ATRIAL_FIBRILLATION:
        heart_rate, hrv = float(u(55, 90)), float(u(0.02, 0.07))
        times, kinds, rr_before, episodes = _fibrillation_rhythm(rng, duration - 0.5, 60.0 / heart_rate, hrv)
        blocked = np.zeros(0)
        atrial_waves = _atrial_activity(rng, n_samples, fs, episodes)
        profile = {"profile": kind, "heart_rate_bpm": round(heart_rate, 1), "hrv": round(hrv, 3)}
        profile["episodes"] = [
            {"rhythm": "AFL" if cycle else "AFIB", "start_s": round(a, 2), "end_s": round(b, 2)}
            for a, b, cycle in episodes
        ]
    else:
        rates = tuple(float(u(lo, hi)) for lo, hi in _RATES.get(kind, ((0.0, 0.005),) * 3))
        heart_rate = float(u(55, 95)) if database == "mitdb" else float(u(55, 85))
        hrv = float(u(0.02, 0.07))
        times, kinds, rr_before, blocked = _rhythm(
            rng, duration - 0.5, 60.0 / heart_rate, hrv, rates, kind == "ventricular bigeminy"
        )
        profile = {"profile": kind, "heart_rate_bpm": round(heart_rate, 1), "hrv": round(hrv, 3)}
        profile.update(
            {k: round(r, 3) for k, r in zip(("p_atrial", "p_ventricular", "p_fusion"), rates, strict=True)}
        )
    profile["bundle_branch_block"] = bbb
    if "infarction" in m:
        profile["infarction"] = m.pop("infarction")
    waves = _beat_waves(rng, times, kinds, rr_before, blocked, m, focus, atrial_p)
    # Breathing moves the heart: the whole lead's amplitude follows it a little.
    t = np.arange(n_samples) / fs
    breathing = 1 + u(0.02, 0.08) * np.sin(2 * np.pi * u(0.15, 0.35) * t + u(0, 2 * np.pi))
    gain = u(0.7, 1.3)
    level = 0.3 if database == "ptbdb" else 1.0  # PTB's recordings are the cleaner ones
    mains = 50.0 if database == "ptbdb" else 60.0
    heart = waves.render(n_samples, fs) + atrial_waves
    signal = gain * breathing * heart + _noise(rng, n_samples, fs, mains, level)
    symbols = _symbols(rng, kinds, bbb)
    peaks = np.rint(times * fs).astype(np.int64)
    return SynthRecord(database, name, patient, fs, signal, peaks, symbols, diagnosis, profile)


def _symbols(rng: np.random.Generator, kinds: np.ndarray, bbb: bool) -> np.ndarray:
    """MIT-BIH annotation symbols of the beats."""
    normal = rng.choice(["L", "R"]) if bbb else "N"
    table = np.array([normal, "A", "V", "F", "/", "f", normal], dtype=object)
    symbols = table[kinds]
    atrial = np.flatnonzero(kinds == _ATRIAL)
    other = rng.random(atrial.size)
    symbols[atrial[other < 0.1]] = "a"
    symbols[atrial[(other >= 0.1) & (other < 0.18)]] = "J"
    return symbols


# ----------------------------------------------------------------------------- the two databases


def mitdb_records(seed: int, n: int, minutes: float) -> Iterator[SynthRecord]:
    """``n`` MIT-BIH-like records of ``minutes`` each, one at a time (each from its own child seed)."""
    names = mitdb_record_names(n)
    n_samples = round(minutes * 60 * MITDB_FS)
    plain = 0
    for name, child in zip(names, _children(seed, "mitdb", n), strict=True):
        if name in PACED_RECORDS:
            kind = "paced"
        else:
            kind = PROFILES[(plain // 2) % len(PROFILES)]  # DS1 and DS2 in turn: each pair shares one
            plain += 1
        yield _record(np.random.default_rng(child), "mitdb", name, name, n_samples, MITDB_FS, kind)


def ptbdb_records(seed: int, n: int, minutes: float) -> Iterator[SynthRecord]:
    """``n`` PTB-like records (``n >= 2``) of ``minutes`` each: healthy controls first, then infarction
    patients, at least one of each."""
    n_samples = round(minutes * 60 * PTBDB_FS)
    healthy = min(max(1, round(HEALTHY_SHARE * n)), n - 1)
    for i, child in enumerate(_children(seed, "ptbdb", n)):
        diagnosis = "Healthy control" if i < healthy else "Myocardial infarction"
        patient = f"patient{i + 1:03d}"
        rng = np.random.default_rng(child)
        yield _record(
            rng,
            "ptbdb",
            f"{patient}/s{i + 1:04d}_re",
            patient,
            n_samples,
            PTBDB_FS,
            "few ectopics",
            diagnosis,
        )
