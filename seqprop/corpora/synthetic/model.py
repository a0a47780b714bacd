"""What the synthetic corpus says and who says it: phones, speakers, phone sequences.

The phone inventory (:data:`PHONES`, their kind, place of articulation and
formant targets), the speakers (:class:`Speaker`) and the phone sequence model
with its durations (:func:`phone_sequence`). The model is described in the
docstring of :mod:`seqprop.corpora.synthetic`; :mod:`.synthesis` turns its
output into a waveform.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FS", "PHONES", "PHONE_SPEC", "Speaker", "make_speakers", "phone_sequence"]

#: Sampling rate (Hz).
FS = 16000

#: name: (kind, place, F1, F2, F3) -- formants of vowels/glides in Hz (adult male).
PHONE_SPEC: dict[str, tuple[str, str | None, float, float, float]] = {
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
PHONES: tuple[str, ...] = tuple(PHONE_SPEC)

# duration mean (ms) by kind; log-normal spread
_DUR_MS = {"vowel": 110, "glide": 65, "nasal": 70, "vstop": 80, "ustop": 95, "fric": 95}
_DUR_SIGMA = 0.25
_MIN_DUR = int(0.040 * FS)

_VOWELS = [p for p, s in PHONE_SPEC.items() if s[0] == "vowel"]
_ONSETS = [p for p, s in PHONE_SPEC.items() if s[0] in ("glide", "nasal", "vstop", "ustop", "fric")]
_CODAS = ["f", "s", "sh", "z", "l", "r"]


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


def phone_sequence(
    rng: np.random.Generator, speaker: Speaker, min_s: float, max_s: float
) -> tuple[list[str], list[int]]:
    """Phones and durations (samples) of one utterance."""

    def dur(phone: str) -> int:
        kind = PHONE_SPEC[phone][0]
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
