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

Modules
    :mod:`.model` (phones, speakers, phone sequences), :mod:`.synthesis` (the
    synthesiser, :func:`synthesize_utterance`), :mod:`.generate`
    (:func:`generate_corpus`); :class:`SyntheticCorpus` is the command line.
    Their public names can be imported from this package; they are loaded on
    first use, so that listing the corpora stays fast. The recipe script is
    the source tree's ``datasets/synthetic/run.sh``.
"""

from __future__ import annotations

import argparse
import importlib
import time

from seqprop.corpora import registry

_LAZY = {
    "FS": "model",
    "PHONES": "model",
    "Speaker": "model",
    "make_speakers": "model",
    "synthesize_utterance": "synthesis",
    "SPLITS": "generate",
    "generate_corpus": "generate",
}

__all__ = ["SyntheticCorpus", *_LAZY]


@registry.register
class SyntheticCorpus(registry.Corpus):
    """``seqprop prepare synthetic OUT_DIR``: :func:`generate_corpus` on the command line."""

    name = "synthetic"
    summary = "generate the synthetic speech corpus (offline, seconds)"
    description = """\
Generate speech-like audio from a phone sequence model with a source-filter
synthesiser (formant transitions carry the place of nasals and stops into the
following phone, so future context helps), compute the same features and write
OUT_DIR/train.h5, validation.h5 and test.h5. Deterministic given --seed."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("out_dir", metavar="OUT_DIR", help="output directory")
        parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        parser.add_argument(
            "--n-train", type=int, default=200, metavar="N", help="training utterances (200)"
        )
        parser.add_argument(
            "--n-validation", type=int, default=50, metavar="N", help="validation utterances (50)"
        )
        parser.add_argument(
            "--n-test", type=int, default=50, metavar="N", help="test utterances (50)"
        )
        parser.add_argument(
            "--n-speakers",
            type=int,
            nargs="+",
            default=[12, 4, 4],
            metavar="N",
            help="speakers per split: one number for all, or three for train validation test "
            "(default 12 4 4); splits never share speakers",
        )
        parser.add_argument(
            "--min-seconds", type=float, default=1.0, help="shortest utterance (1.0 s)"
        )
        parser.add_argument(
            "--max-seconds", type=float, default=3.0, help="longest utterance (3.0 s)"
        )
        parser.add_argument("--overwrite", action="store_true", help="replace existing files")

    def prepare(self, args: argparse.Namespace, *, progress: bool = False) -> registry.Prepared:
        from seqprop.corpora.synthetic.generate import generate_corpus
        from seqprop.data import open_dataset
        from seqprop.errors import ConfigError

        spk = args.n_speakers
        if len(spk) not in (1, 3):
            raise ConfigError(f"--n-speakers takes one or three numbers, got {len(spk)}")
        t0 = time.perf_counter()
        files = generate_corpus(
            args.out_dir,
            seed=args.seed,
            n_train=args.n_train,
            n_validation=args.n_validation,
            n_test=args.n_test,
            n_speakers=spk[0] if len(spk) == 1 else tuple(spk),
            min_seconds=args.min_seconds,
            max_seconds=args.max_seconds,
            overwrite=args.overwrite,
            progress=progress,
        )
        seconds = time.perf_counter() - t0
        n_utts, n_frames = {}, {}
        for name, path in files.items():
            with open_dataset(path) as ds:
                n_utts[name], n_frames[name] = len(ds), int(ds.lengths.sum())
        return registry.Prepared(
            files=files,
            n_utterances=n_utts,
            n_frames=n_frames,
            headline=f"generated the synthetic corpus (seed {args.seed}) in {seconds:.1f} s",
        )


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
