"""A synthetic speech corpus with coarticulation, for the demo and the tests.

``seqprop prepare synthetic OUT_DIR`` (or :func:`generate_corpus`) writes
``train.h5``, ``validation.h5`` and ``test.h5`` in the format of the TIMIT
recipe: 26 MFCC features per 10 ms frame (:func:`seqprop.features.mfcc`) and a
phone class per frame (the segment covering the frame's centre). It is offline,
deterministic given the seed, and takes a few seconds at the default size (200 /
50 / 50 utterances of 1-3 s). It is not TIMIT: it is a small task that behaves
like framewise phoneme classification, in particular in the property the paper
(Graves & Schmidhuber 2005, sections 3 and 5) is about: the *future* context of
a frame helps to classify it, so a bidirectional network beats a unidirectional
one, and a unidirectional one gains from a target delay.

Phones (25 classes, :data:`PHONES`)
    ``sil``; vowels ``iy ih eh ae aa uw er`` (formant targets F1-F3 after
    Peterson & Barney); glides ``w y l r`` (formant targets, weaker voicing);
    nasals ``m n ng``; voiced stops ``b d g``; voiceless stops ``p t k``;
    fricatives ``f s sh z`` (``z`` voiced).

Phone sequence model
    An utterance is ``sil``, words, ``sil``; words are separated by a short
    ``sil`` pause with probability 0.15; a syllable is an optional onset
    consonant (probability 0.85; any stop, nasal, fricative or glide), a vowel
    and an optional coda (probability 0.3; ``f s sh z l r``). Syllables are
    added until the utterance reaches a length drawn uniformly from
    [``min_seconds``, ``max_seconds``]. Durations are log-normal per phone class
    (means: vowels 110 ms, glides 65, nasals 70, voiced stops 80, voiceless
    stops 95, fricatives 95 ms; at least 40 ms), scaled by the speaker's rate.

Source-filter synthesis (16 kHz)
    A glottal impulse train at the speaker's pitch (declining by about 20 %
    over the utterance, with 1.5 % slow jitter), shaped by a two-pole glottal
    filter and lip radiation, plus noise (aspiration, breathiness), goes through
    a cascade of time-varying Klatt resonators F1-F3 (per-sample coefficients)
    and fixed F4, F5. Fricatives are noise through a fixed band-pass per
    fricative (``s``/``z`` 3.8-7.5 kHz, ``sh`` 2-4.3 kHz, ``f`` weak and
    broad); stops are a closure (silence, or a low voice bar for ``b d g``), a
    10 ms burst and, for ``p t k``, aspiration; nasals are a weak low murmur.
    Background noise is added at 20-35 dB SNR. The signal is in 16-bit
    integer units.

Coarticulation (what makes future context useful)
    * Place transitions: a vowel or glide that follows a consonant starts at
      formants given by the consonant's place of articulation (labial,
      alveolar, post-alveolar, velar: F2/F3 "loci") and moves to its own
      target over 30-60 ms. The three nasals ``m n ng`` have *identical*
      murmurs, the closures and bursts of ``b d g`` are identical, and so are
      those of ``p t k``: in their own frames these triples are
      indistinguishable, and only the transition into the *following* phone
      tells them apart.
    * Anticipation: over the last 40 % of a vowel or glide, the formants move
      40 % of the way towards the next vowel's or glide's target (or 20 %
      towards a neutral vocal tract before a consonant, so that the place of
      the next consonant is not revealed in advance).
    * Per-token variation: each token's formant targets vary by about 4 %.

Speakers
    Each split has its own speakers (disjoint), ``n_speakers`` = (12, 4, 4) by
    default; each has a sex, a vocal-tract length factor scaling all formants
    (0.88-1.0 for men, 1.05-1.18 for women), a pitch (85-135 Hz or 165-235 Hz),
    a speaking rate (0.85-1.15) and a breathiness. Tags are
    ``<split>/s<speaker>/u<index>``, e.g. ``train/s03/u0012``.

Determinism
    Utterance i of split s is generated from ``numpy.random.default_rng([seed,
    s, 1, i])`` and the speakers of split s from ``default_rng([seed, s, 0])``,
    so the same seed gives identical files (on one machine), and a larger
    ``n_train`` extends a smaller corpus rather than changing it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqprop.corpora import SplitWriter
from seqprop.errors import ConfigError
from seqprop.features import FeatureConfig, feature_names, frame_centres, mfcc
from seqprop.kernels._jit import jit

__all__ = [
    "PHONES",
    "SPLITS",
    "Speaker",
    "generate_corpus",
    "make_speakers",
    "synthesize_utterance",
]

FS = 16000
SPLITS = ("train", "validation", "test")

# name: (kind, place, F1, F2, F3)  -- formants of vowels/glides in Hz (adult male)
_SPEC: dict[str, tuple[str, str | None, float, float, float]] = {
    "sil": ("sil", None, 500, 1500, 2500),
    "iy": ("vowel", None, 270, 2290, 3010),
    "ih": ("vowel", None, 390, 1990, 2550),
    "eh": ("vowel", None, 530, 1840, 2480),
    "ae": ("vowel", None, 660, 1720, 2410),
    "aa": ("vowel", None, 730, 1090, 2440),
    "uw": ("vowel", None, 300, 870, 2240),
    "er": ("vowel", None, 490, 1350, 1690),
    "w": ("glide", "labial", 300, 650, 2200),
    "y": ("glide", "postalveolar", 270, 2100, 2950),
    "l": ("glide", "alveolar", 380, 1050, 2750),
    "r": ("glide", "postalveolar", 330, 1100, 1450),
    "m": ("nasal", "labial", 270, 1000, 2200),
    "n": ("nasal", "alveolar", 270, 1000, 2200),
    "ng": ("nasal", "velar", 270, 1000, 2200),
    "b": ("vstop", "labial", 500, 1500, 2500),
    "d": ("vstop", "alveolar", 500, 1500, 2500),
    "g": ("vstop", "velar", 500, 1500, 2500),
    "p": ("ustop", "labial", 500, 1500, 2500),
    "t": ("ustop", "alveolar", 500, 1500, 2500),
    "k": ("ustop", "velar", 500, 1500, 2500),
    "f": ("fric", "labial", 500, 1500, 2500),
    "s": ("fric", "alveolar", 500, 1500, 2500),
    "sh": ("fric", "postalveolar", 500, 1500, 2500),
    "z": ("fric", "alveolar", 500, 1500, 2500),
}

#: Class names of the synthetic corpus, in class order.
PHONES: tuple[str, ...] = tuple(_SPEC)

# F2, F3 loci (Hz) by place: where formant transitions into a following vowel start
_LOCUS = {
    "labial": (800.0, 2150.0),
    "alveolar": (1750.0, 2750.0),
    "postalveolar": (2150.0, 2500.0),
    "velar": (2350.0, 2050.0),
}
_NEUTRAL = np.array([500.0, 1500.0, 2500.0])

# duration mean (ms) by kind; log-normal spread
_DUR_MS = {"vowel": 110, "glide": 65, "nasal": 70, "vstop": 80, "ustop": 95, "fric": 95}
_DUR_SIGMA = 0.25
_MIN_DUR = int(0.040 * FS)

_VOWELS = [p for p, s in _SPEC.items() if s[0] == "vowel"]
_ONSETS = [p for p, s in _SPEC.items() if s[0] in ("glide", "nasal", "vstop", "ustop", "fric")]
_CODAS = ["f", "s", "sh", "z", "l", "r"]

# frication band edges (Hz, before speaker scaling) and amplitudes
_FRIC = {"f": (900.0, 7500.0, 0.06), "s": (3800.0, 7500.0, 0.35), "sh": (2000.0, 4300.0, 0.4)}
_FRIC["z"] = (3800.0, 7500.0, 0.2)
_BURST_BAND = (1200.0, 6000.0)


@dataclass(frozen=True)
class Speaker:
    """A synthetic speaker.

    Attributes
    ----------
    sex : {"f", "m"}
    vtl : float
        Vocal-tract length factor; every formant is multiplied by it.
    f0 : float
        Mean pitch in Hz.
    rate : float
        Duration scale (above 1 = slower).
    breathiness : float
        Aspiration noise level during voicing.
    """

    sex: str
    vtl: float
    f0: float
    rate: float
    breathiness: float


def make_speakers(rng: np.random.Generator, n: int) -> list[Speaker]:
    """Draw ``n`` speakers, alternating women and men."""
    out = []
    for j in range(n):
        if j % 2 == 0:
            sex, vtl, f0 = "f", rng.uniform(1.05, 1.18), rng.uniform(165.0, 235.0)
        else:
            sex, vtl, f0 = "m", rng.uniform(0.88, 1.0), rng.uniform(85.0, 135.0)
        out.append(
            Speaker(
                sex,
                float(vtl),
                float(f0),
                float(rng.uniform(0.85, 1.15)),
                float(rng.uniform(0.01, 0.05)),
            )
        )
    return out


# --------------------------------------------------------------------------- sequences


def _phone_sequence(
    rng: np.random.Generator, speaker: Speaker, min_s: float, max_s: float
) -> tuple[list[str], list[int]]:
    """Phones and durations (samples) of one utterance."""

    def dur(phone: str) -> int:
        kind = _SPEC[phone][0]
        ms = _DUR_MS[kind] * (1.2 if phone in ("er", "aa", "ae") else 1.0) * speaker.rate
        ms *= float(np.exp(rng.normal(0.0, _DUR_SIGMA)))
        return max(_MIN_DUR, int(ms * FS / 1000))

    target = rng.uniform(min_s, max_s) * FS
    phones = ["sil"]
    durs = [int(rng.uniform(0.08, 0.2) * FS)]
    final_sil = int(rng.uniform(0.08, 0.2) * FS)
    syllables_in_word, word_len = 0, int(rng.integers(1, 4))
    while sum(durs) + final_sil < target:
        if syllables_in_word == word_len:
            syllables_in_word, word_len = 0, int(rng.integers(1, 4))
            if rng.random() < 0.15:
                phones.append("sil")
                durs.append(int(rng.uniform(0.06, 0.18) * FS))
        syl = []
        if rng.random() < 0.85:
            syl.append(_ONSETS[rng.integers(len(_ONSETS))])
        syl.append(_VOWELS[rng.integers(len(_VOWELS))])
        if rng.random() < 0.3:
            syl.append(_CODAS[rng.integers(len(_CODAS))])
        for p in syl:
            phones.append(p)
            durs.append(dur(p))
        syllables_in_word += 1
    phones.append("sil")
    durs.append(final_sil)
    return phones, durs


# --------------------------------------------------------------------------- synthesis


# formant/bandwidth parameters are updated every _HOP samples (1 ms), as in Klatt's synthesiser
_HOP = 16


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
    from scipy.signal import lfilter, sosfilt

    phones, durs = _phone_sequence(rng, speaker, min_seconds, max_seconds)
    bounds = np.concatenate([[0], np.cumsum(durs)]).astype(np.int64)
    n = int(bounds[-1])
    alpha = speaker.vtl
    kinds = [_SPEC[p][0] for p in phones]

    # per-token formant targets (with variation) and bandwidths
    targets = []
    for p in phones:
        kind, _, f1, f2, f3 = _SPEC[p]
        t = np.array([f1, f2, f3])
        if kind in ("vowel", "glide"):
            t = t * np.exp(rng.normal(0.0, 0.04, 3))
        elif kind == "nasal":
            t = t * np.exp(rng.normal(0.0, 0.02, 3))  # the same distribution for m, n, ng
        targets.append(t)

    # formant/bandwidth anchors: rows (time, F1, F2, F3, B1, B2, B3)
    anchors: list[tuple[float, ...]] = []
    prev_end_value = _NEUTRAL.copy()
    for i, p in enumerate(phones):
        s, e = int(bounds[i]), int(bounds[i + 1])
        kind, _, _, _, _ = _SPEC[p]
        d = e - s
        if kind in ("vowel", "glide"):
            bw = (70.0, 100.0, 140.0) if kind == "vowel" else (90.0, 130.0, 180.0)
            tgt = targets[i]
            prev_kind = kinds[i - 1] if i > 0 else "sil"
            if prev_kind in ("nasal", "vstop", "ustop", "fric") or (
                prev_kind == "glide" and kind == "vowel"
            ):
                prev_place = _SPEC[phones[i - 1]][1]
                if prev_kind == "glide":
                    onset = prev_end_value.copy()
                else:
                    l2, l3 = _LOCUS[prev_place]
                    f1_on = 250.0 if prev_kind in ("nasal", "vstop", "ustop") else 350.0
                    onset = np.array([f1_on, l2 + 0.35 * (tgt[1] - l2), l3 + 0.35 * (tgt[2] - l3)])
                tr = min(int(rng.uniform(0.030, 0.060) * FS), int(0.5 * d))
            elif prev_kind == "vowel":
                onset = prev_end_value.copy()
                tr = min(int(0.040 * FS), int(0.5 * d))
            else:
                onset, tr = tgt, 1
            nxt = phones[i + 1] if i + 1 < len(phones) else "sil"
            nxt_kind = _SPEC[nxt][0]
            if nxt_kind in ("vowel", "glide"):
                end_value = tgt + 0.4 * (targets[i + 1] - tgt)
            elif nxt_kind == "sil":
                end_value = tgt
            else:
                end_value = tgt + 0.2 * (_NEUTRAL - tgt)
            antic = s + int(0.6 * d)
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
    anc = np.asarray(anchors, dtype=np.float64)
    times = anc[:, 0] + np.arange(len(anc)) * 1e-6  # keep strictly increasing
    grid = np.arange(n, dtype=np.float64)
    coarse = np.arange(0, n, _HOP, dtype=np.float64) + (_HOP - 1) / 2  # parameter updates
    formants = np.stack([np.interp(coarse, times, anc[:, k]) for k in (1, 2, 3)]) * alpha
    bands = np.stack([np.interp(coarse, times, anc[:, k]) for k in (4, 5, 6)])

    # amplitude envelopes and burst/frication pieces
    voice_pieces, asp_pieces, fric_pieces = [], [], []
    for i, p in enumerate(phones):
        s, e = int(bounds[i]), int(bounds[i + 1])
        kind = kinds[i]
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
    ramp = int(0.006 * FS)
    av = _smooth_steps(n, voice_pieces, ramp)
    ah = _smooth_steps(n, asp_pieces, int(0.003 * FS)) + speaker.breathiness * av

    # glottal source: impulse train at a declining, jittered pitch
    n_knots = max(2, n // 800 + 2)
    jitter = np.interp(grid, np.linspace(0, n, n_knots), rng.normal(0.0, 0.015, n_knots))
    f0 = speaker.f0 * (1.1 - 0.2 * grid / n) * (1.0 + jitter)
    phase = np.cumsum(f0 / FS)
    pulses = np.diff(np.floor(phase), prepend=0.0)
    glottal = lfilter([1.0, -1.0], [1.0, -2 * 0.97, 0.97**2], pulses)  # glottal shape + radiation
    glottal /= np.sqrt(np.mean(glottal**2)) + 1e-12
    source = glottal * av + rng.normal(0.0, 1.0, n) * ah
    b0, a1, a2 = _resonator_coefs(formants, bands)
    ones = np.ones((1, coarse.size))
    c45 = _resonator_coefs(
        np.array([[3500.0 * alpha], [4500.0 * alpha]]) * ones, np.array([[250.0], [300.0]]) * ones
    )
    voiced = _cascade(
        source,
        np.concatenate([b0, c45[0]]),
        np.concatenate([a1, c45[1]]),
        np.concatenate([a2, c45[2]]),
        _HOP,
    )

    # frication and bursts: band-passed noise per segment
    noise_part = np.zeros(n)
    for start, stop, what in fric_pieces:
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

    speech = voiced + noise_part * 0.5 * np.sqrt(np.mean(voiced**2) + 1e-12) / 0.3
    level = rng.uniform(1000.0, 3000.0)
    speech *= level / (np.sqrt(np.mean(speech**2)) + 1e-12)
    snr = rng.uniform(*snr_db)
    signal = speech + rng.normal(0.0, level / 10 ** (snr / 20.0), n)
    classes = np.array([PHONES.index(p) for p in phones], dtype=np.int64)
    return signal, bounds[:-1].copy(), bounds[1:].copy(), classes


def _labels(
    starts: np.ndarray, ends: np.ndarray, classes: np.ndarray, n_frames: int, cfg: FeatureConfig
) -> np.ndarray:
    centres = frame_centres(n_frames, cfg)
    seg = np.searchsorted(starts, centres, side="right") - 1
    return classes[np.clip(seg, 0, len(classes) - 1)]


# --------------------------------------------------------------------------- corpus


def generate_corpus(
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    n_train: int = 200,
    n_validation: int = 50,
    n_test: int = 50,
    n_speakers: int | tuple[int, int, int] = (12, 4, 4),
    min_seconds: float = 1.0,
    max_seconds: float = 3.0,
    snr_db: tuple[float, float] = (20.0, 35.0),
    overwrite: bool = False,
    progress: bool | Callable[[int, int], None] = False,
) -> dict[str, Path]:
    """Generate the synthetic corpus and write ``train.h5``, ``validation.h5``, ``test.h5``.

    Parameters
    ----------
    out_dir : path
        Output directory (created if missing).
    seed : int
        Everything is determined by it (see the module docstring).
    n_train, n_validation, n_test : int
        Utterances per split (a split with 0 is not written; at least one
        split must be non-empty).
    n_speakers : int or (int, int, int)
        Speakers per split (disjoint across splits); one int = the same number
        for every split.
    min_seconds, max_seconds : float
        Range of utterance lengths.
    snr_db : (float, float)
        Range of the background noise's SNR in dB.
    overwrite : bool
        Replace existing files.
    progress : bool or callable(done, total)

    Returns
    -------
    dict of split name -> Path
        The files written.

    Raises
    ------
    ConfigError
        Invalid sizes or ranges.
    DataError
        Output files exist (without ``overwrite``) or cannot be written.
    """
    sizes = {"train": n_train, "validation": n_validation, "test": n_test}
    for name, k in sizes.items():
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
            raise ConfigError(f"n_{name} must be a non-negative integer, got {k!r}")
    if sum(sizes.values()) == 0:
        raise ConfigError("the synthetic corpus needs at least one utterance")
    spk = (n_speakers,) * 3 if isinstance(n_speakers, (int, np.integer)) else tuple(n_speakers)
    if len(spk) != 3 or any(
        isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 for k in spk
    ):
        raise ConfigError(
            f"n_speakers must be a positive int or three positive ints, got {n_speakers!r}"
        )
    if not (0.3 <= min_seconds <= max_seconds <= 60.0):
        raise ConfigError(
            f"need 0.3 <= min_seconds <= max_seconds <= 60, got {min_seconds}, {max_seconds}"
        )
    if not (len(snr_db) == 2 and -10.0 <= snr_db[0] <= snr_db[1] <= 100.0):
        raise ConfigError(f"snr_db must be (low, high) within [-10, 100] dB, got {snr_db!r}")
    cfg = FeatureConfig()
    names = feature_names(cfg)
    present = [name for name, k in sizes.items() if k > 0]
    with SplitWriter(
        out_dir,
        present,
        overwrite=overwrite,
        progress=progress,
        total=sum(sizes.values()),
        desc="synthetic corpus",
    ) as writer:
        for s_index, split in enumerate(SPLITS):
            count = sizes[split]
            if count == 0:
                continue
            speakers = make_speakers(np.random.default_rng([seed, s_index, 0]), spk[s_index])
            feats, labels, tags = [], [], []
            for i in range(count):
                rng = np.random.default_rng([seed, s_index, 1, i])
                who = i % len(speakers)
                signal, starts, ends, classes = synthesize_utterance(
                    rng,
                    speakers[who],
                    min_seconds=min_seconds,
                    max_seconds=max_seconds,
                    snr_db=snr_db,
                )
                x = mfcc(signal, FS, cfg)
                feats.append(x)
                labels.append(_labels(starts, ends, classes, x.shape[0], cfg))
                tags.append(f"{split}/s{who:02d}/u{i:04d}")
                writer.tick()
            writer.write(
                split,
                feats,
                labels,
                class_names=list(PHONES),
                tags=tags,
                feature_names=names,
                source="synthetic",
            )
        return writer.commit()
