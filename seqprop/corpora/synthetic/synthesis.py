"""The source-filter synthesiser of the synthetic corpus: one utterance at a time.

:func:`synthesize_utterance` draws a phone sequence (:mod:`.model`), lays out
formant tracks with the coarticulation rules, builds the glottal and noise
sources, runs them through the resonator cascade, adds frication, bursts and
background noise. Every rule and constant is described in the docstring of
:mod:`seqprop.corpora.synthetic`. The random draws happen in a fixed order
(phones, token targets, transitions, pitch jitter, aspiration, frication, level,
noise), so a generator in a given state always gives the same utterance.
"""

from __future__ import annotations

import functools

import numpy as np

from seqprop.corpora.synthetic.model import (
    FS,
    PHONE_SPEC,
    PHONES,
    Speaker,
    phone_sequence,
)
from seqprop.kernels._jit import jit

__all__ = ["synthesize_utterance"]

# F2, F3 loci (Hz) by place: where formant transitions into a following vowel start
_LOCUS = {
    "labial": (800.0, 2150.0),
    "alveolar": (1750.0, 2750.0),
    "postalveolar": (2150.0, 2500.0),
    "velar": (2350.0, 2050.0),
}
_NEUTRAL = np.array([500.0, 1500.0, 2500.0])

# frication band edges (Hz, before speaker scaling) and amplitudes
_FRIC = {"f": (900.0, 7500.0, 0.06), "s": (3800.0, 7500.0, 0.35), "sh": (2000.0, 4300.0, 0.4)}
_FRIC["z"] = (3800.0, 7500.0, 0.2)
_BURST_BAND = (1200.0, 6000.0)

# formant/bandwidth parameters are updated every _HOP samples (1 ms), as in Klatt's synthesiser
_HOP = 16


# --------------------------------------------------------------------------- filters


@jit
def _cascade(x: np.ndarray, b0: np.ndarray, a1: np.ndarray, a2: np.ndarray, hop: int) -> np.ndarray:
    """Cascade of K time-varying two-pole resonators.

    ``y_k[t] = b0[k, j] y_{k-1}[t] - a1[k, j] y_k[t-1] - a2[k, j] y_k[t-2]`` with
    j = t // hop (coefficients held for ``hop`` samples), y_0 = x, zero
    initial state. x: (n,); b0, a1, a2: (K, ceil(n / hop)). Returns (n,).
    """
    y = x.copy()
    for k in range(b0.shape[0]):
        y1 = 0.0
        y2 = 0.0
        for t in range(y.shape[0]):
            j = t // hop
            v = b0[k, j] * y[t] - a1[k, j] * y1 - a2[k, j] * y2
            y2 = y1
            y1 = v
            y[t] = v
    return y


def _resonator_coefs(freq: np.ndarray, bw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Klatt resonator y = A x + B y1 + C y2 (unity DC gain) as b0, a1, a2."""
    c = -np.exp(-2.0 * np.pi * bw / FS)
    b = 2.0 * np.exp(-np.pi * bw / FS) * np.cos(2.0 * np.pi * freq / FS)
    return 1.0 - b - c, -b, -c


@functools.lru_cache(maxsize=256)
def _bandpass(lo: float, hi: float) -> np.ndarray:
    """Second-order Butterworth band-pass (as second-order sections)."""
    from scipy.signal import butter

    return butter(2, [lo, hi], btype="band", fs=FS, output="sos")


def _smooth_steps(n: int, pieces: list[tuple[int, int, float]], width: int) -> np.ndarray:
    """Piecewise-constant gain smoothed by a centred moving average of ``width`` samples.

    Adjacent pieces blend into each other (no dip at the boundary); a gain
    change becomes a linear ramp of ``width`` samples.
    """
    step = np.zeros(n)
    for start, stop, value in pieces:
        step[start:stop] = value
    width = max(1, width)
    padded = np.concatenate([np.zeros(width // 2 + 1), step, np.zeros(width)])
    csum = np.cumsum(padded)
    return (csum[width : width + n] - csum[:n]) / width


def _ramp_envelope(n: int, pieces: list[tuple[int, int, float]], ramp: int) -> np.ndarray:
    """Piecewise-constant gain with linear ramps of ``ramp`` samples at each change."""
    times, values = [0], [0.0]
    for start, stop, value in pieces:
        if stop <= start:
            continue
        r = min(ramp, max(1, (stop - start) // 4))
        times += [start, start + r, stop - r, stop]
        values += [values[-1], value, value, 0.0]
    times.append(n)
    values.append(0.0)
    t = np.asarray(times, dtype=np.float64)
    # strictly increasing sample positions for np.interp (equal times: later wins)
    t = t + np.arange(t.size) * 1e-6
    return np.interp(np.arange(n), t, np.asarray(values))


# --------------------------------------------------------------------------- formant tracks


def _token_targets(rng: np.random.Generator, phones: list[str]) -> list[np.ndarray]:
    """Formant targets (F1-F3, Hz) of each token, with per-token variation."""
    targets = []
    for p in phones:
        kind, _, f1, f2, f3 = PHONE_SPEC[p]
        t = np.array([f1, f2, f3])
        if kind in ("vowel", "glide"):
            t = t * np.exp(rng.normal(0.0, 0.04, 3))
        elif kind == "nasal":
            t = t * np.exp(rng.normal(0.0, 0.02, 3))  # the same distribution for m, n, ng
        targets.append(t)
    return targets


def _transition(
    rng: np.random.Generator,
    phones: list[str],
    i: int,
    target: np.ndarray,
    prev_end_value: np.ndarray,
    duration: int,
) -> tuple[np.ndarray, int]:
    """Onset formants of vowel/glide ``i`` and the samples it takes to reach its target.

    After a consonant the onset is given by the consonant's place (F2/F3 loci),
    after a glide (into a vowel) or a vowel it is where that one ended.
    """
    kind = PHONE_SPEC[phones[i]][0]
    prev_kind = PHONE_SPEC[phones[i - 1]][0] if i > 0 else "sil"
    if prev_kind in ("nasal", "vstop", "ustop", "fric") or (
        prev_kind == "glide" and kind == "vowel"
    ):
        if prev_kind == "glide":
            onset = prev_end_value.copy()
        else:
            l2, l3 = _LOCUS[PHONE_SPEC[phones[i - 1]][1]]
            f1_on = 250.0 if prev_kind in ("nasal", "vstop", "ustop") else 350.0
            onset = np.array([f1_on, l2 + 0.35 * (target[1] - l2), l3 + 0.35 * (target[2] - l3)])
        return onset, min(int(rng.uniform(0.030, 0.060) * FS), int(0.5 * duration))
    if prev_kind == "vowel":
        return prev_end_value.copy(), min(int(0.040 * FS), int(0.5 * duration))
    return target, 1


def _anticipation(phones: list[str], targets: list[np.ndarray], i: int) -> np.ndarray:
    """Formants at the end of vowel/glide ``i``: part of the way towards what follows."""
    target = targets[i]
    nxt_kind = PHONE_SPEC[phones[i + 1] if i + 1 < len(phones) else "sil"][0]
    if nxt_kind in ("vowel", "glide"):
        return target + 0.4 * (targets[i + 1] - target)
    if nxt_kind == "sil":
        return target
    return target + 0.2 * (_NEUTRAL - target)


def _formant_anchors(
    rng: np.random.Generator, phones: list[str], bounds: np.ndarray, targets: list[np.ndarray]
) -> np.ndarray:
    """Formant and bandwidth anchors: rows (time, F1, F2, F3, B1, B2, B3)."""
    anchors: list[tuple[float, ...]] = []
    prev_end_value = _NEUTRAL.copy()
    for i, p in enumerate(phones):
        s, e = int(bounds[i]), int(bounds[i + 1])
        kind = PHONE_SPEC[p][0]
        if kind in ("vowel", "glide"):
            bw = (70.0, 100.0, 140.0) if kind == "vowel" else (90.0, 130.0, 180.0)
            tgt = targets[i]
            onset, tr = _transition(rng, phones, i, tgt, prev_end_value, e - s)
            end_value = _anticipation(phones, targets, i)
            antic = s + int(0.6 * (e - s))
            anchors.append((s, *onset, *bw))
            anchors.append((max(s + tr, s + 1), *tgt, *bw))
            if antic > s + tr:
                anchors.append((antic, *tgt, *bw))
            anchors.append((e - 1, *end_value, *bw))
            prev_end_value = end_value
        elif kind == "nasal":
            bw = (110.0, 220.0, 320.0)
            anchors.append((s, *targets[i], *bw))
            anchors.append((e - 1, *targets[i], *bw))
            prev_end_value = targets[i]
        else:  # voice bar / aspiration shape: neutral tract, wide bandwidths
            bw = (150.0, 200.0, 250.0)
            f = (200.0, 1500.0, 2500.0) if kind in ("vstop", "fric") else tuple(_NEUTRAL)
            anchors.append((s, *f, *bw))
            anchors.append((e - 1, *f, *bw))
            prev_end_value = _NEUTRAL.copy()
    return np.asarray(anchors, dtype=np.float64)


def _formant_tracks(anc: np.ndarray, n: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Formants (scaled by the vocal-tract factor) and bandwidths, one column per hop."""
    times = anc[:, 0] + np.arange(len(anc)) * 1e-6  # keep strictly increasing
    coarse = np.arange(0, n, _HOP, dtype=np.float64) + (_HOP - 1) / 2  # parameter updates
    formants = np.stack([np.interp(coarse, times, anc[:, k]) for k in (1, 2, 3)]) * alpha
    bands = np.stack([np.interp(coarse, times, anc[:, k]) for k in (4, 5, 6)])
    return formants, bands


# --------------------------------------------------------------------------- sources


def _excitation_pieces(phones: list[str], bounds: np.ndarray) -> tuple[list, list, list]:
    """Voicing gains, aspiration gains and noise segments (frication or ``"burst"``)."""
    voice_pieces, asp_pieces, fric_pieces = [], [], []
    for i, p in enumerate(phones):
        s, e = int(bounds[i]), int(bounds[i + 1])
        kind = PHONE_SPEC[p][0]
        if kind == "vowel":
            voice_pieces.append((s, e, 1.0))
        elif kind == "glide":
            voice_pieces.append((s, e, 0.55))
        elif kind == "nasal":
            voice_pieces.append((s, e, 0.3))
        elif kind in ("vstop", "ustop"):
            burst = int(0.010 * FS)
            asp = int(0.025 * FS) if kind == "ustop" else 0
            close_end = max(s + int(0.02 * FS), e - burst - asp)
            if kind == "vstop":
                voice_pieces.append((s, close_end, 0.08))
            fric_pieces.append((close_end, close_end + burst, "burst"))
            if asp:
                asp_pieces.append((close_end + burst, e, 0.25))
        elif kind == "fric":
            fric_pieces.append((s, e, p))
            if p == "z":
                voice_pieces.append((s, e, 0.12))
    return voice_pieces, asp_pieces, fric_pieces


def _glottal_source(
    rng: np.random.Generator, f0_mean: float, av: np.ndarray, ah: np.ndarray
) -> np.ndarray:
    """Impulse train at a declining, jittered pitch, glottal shape and radiation, plus noise.

    ``av`` and ``ah`` are the voicing and aspiration gains per sample.
    """
    from scipy.signal import lfilter

    n = av.shape[0]
    grid = np.arange(n, dtype=np.float64)
    n_knots = max(2, n // 800 + 2)
    jitter = np.interp(grid, np.linspace(0, n, n_knots), rng.normal(0.0, 0.015, n_knots))
    f0 = f0_mean * (1.1 - 0.2 * grid / n) * (1.0 + jitter)
    phase = np.cumsum(f0 / FS)
    pulses = np.diff(np.floor(phase), prepend=0.0)
    glottal = lfilter([1.0, -1.0], [1.0, -2 * 0.97, 0.97**2], pulses)  # glottal shape + radiation
    glottal /= np.sqrt(np.mean(glottal**2)) + 1e-12
    return glottal * av + rng.normal(0.0, 1.0, n) * ah


def _vocal_tract(
    source: np.ndarray, formants: np.ndarray, bands: np.ndarray, alpha: float
) -> np.ndarray:
    """The source through time-varying F1-F3 and fixed F4, F5 resonators."""
    b0, a1, a2 = _resonator_coefs(formants, bands)
    ones = np.ones((1, formants.shape[1]))
    c45 = _resonator_coefs(
        np.array([[3500.0 * alpha], [4500.0 * alpha]]) * ones, np.array([[250.0], [300.0]]) * ones
    )
    return _cascade(
        source,
        np.concatenate([b0, c45[0]]),
        np.concatenate([a1, c45[1]]),
        np.concatenate([a2, c45[2]]),
        _HOP,
    )


def _frication(rng: np.random.Generator, pieces: list, n: int, alpha: float) -> np.ndarray:
    """Frication and bursts: band-passed noise per segment, with short ramps."""
    from scipy.signal import sosfilt

    noise_part = np.zeros(n)
    for start, stop, what in pieces:
        if stop <= start:
            continue
        if what == "burst":
            sos, amp = _bandpass(*_BURST_BAND), 0.6
        else:
            lo, hi, amp = _FRIC[what]
            sos = _bandpass(round(lo * alpha, 1), round(min(hi * alpha, 7800.0), 1))
        seg = sosfilt(sos, rng.normal(0.0, 1.0, stop - start))
        env = _ramp_envelope(stop - start, [(0, stop - start, amp)], int(0.004 * FS))
        noise_part[start:stop] += seg * env
    return noise_part


def _mix(
    rng: np.random.Generator,
    voiced: np.ndarray,
    noise_part: np.ndarray,
    snr_db: tuple[float, float],
) -> np.ndarray:
    """Voiced and noise parts at a random level (16-bit units) plus background noise."""
    speech = voiced + noise_part * 0.5 * np.sqrt(np.mean(voiced**2) + 1e-12) / 0.3
    level = rng.uniform(1000.0, 3000.0)
    speech *= level / (np.sqrt(np.mean(speech**2)) + 1e-12)
    snr = rng.uniform(*snr_db)
    return speech + rng.normal(0.0, level / 10 ** (snr / 20.0), speech.shape[0])


# --------------------------------------------------------------------------- utterance


def synthesize_utterance(
    rng: np.random.Generator,
    speaker: Speaker,
    *,
    min_seconds: float = 1.0,
    max_seconds: float = 3.0,
    snr_db: tuple[float, float] = (20.0, 35.0),
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Generate one utterance: waveform and its phone segments.

    Parameters
    ----------
    rng : numpy Generator
    speaker : Speaker
    min_seconds, max_seconds : float
        Range of the utterance length.
    snr_db : (low, high)
        Range of the background noise's signal-to-noise ratio.

    Returns
    -------
    signal : np.ndarray, shape (n_samples,), float64
        16 kHz waveform in 16-bit integer units.
    starts, ends : np.ndarray, shape (S,), int64
        Segment boundaries in samples (end exclusive; contiguous).
    classes : np.ndarray, shape (S,), int64
        Index of each segment's phone in :data:`PHONES`.
    """
    phones, durs = phone_sequence(rng, speaker, min_seconds, max_seconds)
    bounds = np.concatenate([[0], np.cumsum(durs)]).astype(np.int64)
    n = int(bounds[-1])
    alpha = speaker.vtl
    targets = _token_targets(rng, phones)
    formants, bands = _formant_tracks(_formant_anchors(rng, phones, bounds, targets), n, alpha)
    voice_pieces, asp_pieces, fric_pieces = _excitation_pieces(phones, bounds)
    av = _smooth_steps(n, voice_pieces, int(0.006 * FS))
    ah = _smooth_steps(n, asp_pieces, int(0.003 * FS)) + speaker.breathiness * av
    source = _glottal_source(rng, speaker.f0, av, ah)
    voiced = _vocal_tract(source, formants, bands, alpha)
    noise_part = _frication(rng, fric_pieces, n, alpha)
    signal = _mix(rng, voiced, noise_part, snr_db)
    classes = np.array([PHONES.index(p) for p in phones], dtype=np.int64)
    return signal, bounds[:-1].copy(), bounds[1:].copy(), classes
