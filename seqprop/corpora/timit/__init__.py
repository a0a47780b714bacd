"""The TIMIT corpus: ``seqprop prepare timit`` (Graves & Schmidhuber 2005, section 4.1).

Everything TIMIT-specific is in this package:

* :mod:`seqprop.corpora.timit.recipe`: find the utterances (LDC and NLTK-sample
  layouts), read audio and ``.phn`` alignments, label frames, choose the splits
  and write them (:func:`prepare_timit`); its docstring states every rule.
* :mod:`seqprop.corpora.timit.phones`: the phone maps: the 61 phones in class
  order, the Lee & Hon 61 -> 48 -> 39 folding used for scoring, the 24 core test
  speakers, read from the data files ``phones61.txt``, ``phones61-48-39.txt``
  and ``core_test_speakers.txt`` beside it (the source tree's
  ``datasets/timit/`` links to them, next to the recipe script ``run.sh``).
* :class:`TimitCorpus`: the command line (options, report).

The names of the two modules (``prepare_timit``, ``find_utterances``,
``phones61``, ``fold_labels``, ...) can be imported from this package; they
are loaded on first use, so that listing the corpora stays fast.
"""

from __future__ import annotations

import argparse
import importlib

from seqprop.corpora import registry

_RECIPE = (
    "DEFAULT_SEED",
    "N_VALIDATION",
    "PHN_END_TOLERANCE",
    "Corpus",
    "PrepareReport",
    "Utterance",
    "assign_splits",
    "find_utterances",
    "frame_labels",
    "load_utterance",
    "prepare_timit",
    "read_audio",
    "read_phn",
)
_PHONES = (
    "FILES",
    "core_test_speakers",
    "data_file",
    "fold_labels",
    "fold_map",
    "folded_phones",
    "phones61",
)
_LAZY = {name: "recipe" for name in _RECIPE} | {name: "phones" for name in _PHONES}

__all__ = ["TimitCorpus", *_LAZY]

_EPILOG = """\
splits:
  LDC layout (TRAIN|TEST/DRn/SPEAKER/UTT.WAV): the paper's splits by default:
  TEST -> test.h5; 184 TRAIN utterances drawn with --seed -> validation.h5;
  the rest -> train.h5. Flat NLTK layout (drN-speaker/utt.wav): one split,
  all.h5. --split NAME=SPEC (repeatable) replaces the default: SPEC is a
  comma-separated list of speaker ids (fvmh0,mcpm0) or utterance ids
  (dr1/fvmh0/si836), or @FILE with one id per line; utterances no split names
  are left out.

examples:
  seqprop prepare timit /data/TIMIT data/timit
  seqprop prepare timit timit-sample out --split train=@train.txt --split test=fvmh0,mcpm0
"""


def _split_arg(text: str) -> tuple[str, str]:
    name, sep, spec = text.partition("=")
    if not sep or not name.strip() or not spec.strip():
        raise argparse.ArgumentTypeError(
            f"expected NAME=SPEC (e.g. test=fvmh0,mcpm0), got {text!r}"
        )
    return name.strip(), spec.strip()


@registry.register
class TimitCorpus(registry.Corpus):
    """``seqprop prepare timit SOURCE OUT_DIR``: :func:`prepare_timit` on the command line."""

    name = "timit"
    summary = "TIMIT (LDC distribution or NLTK sample layout)"
    description = """\
Read TIMIT audio (.wav, NIST SPHERE or RIFF) and phone alignments (.phn),
compute the paper's features, label each frame with the phone covering its
centre (61 classes) and write OUT_DIR/<split>.h5. The SA sentences are left
out by default."""
    epilog = _EPILOG

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("source", metavar="SOURCE", help="TIMIT directory (LDC or NLTK layout)")
        parser.add_argument("out_dir", metavar="OUT_DIR", help="output directory")
        parser.add_argument(
            "--split",
            action="append",
            type=_split_arg,
            metavar="NAME=SPEC",
            help="a split and its speakers/utterances (repeatable; see below)",
        )
        parser.add_argument("--include-sa", action="store_true", help="keep the SA1/SA2 sentences")
        parser.add_argument(
            "--seed", type=int, default=0, help="seed of the validation draw (default 0)"
        )
        parser.add_argument(
            "--n-validation",
            type=int,
            default=184,
            metavar="N",
            help="TRAIN utterances held out for validation, LDC layout (default 184)",
        )
        parser.add_argument(
            "--skip-incomplete",
            action="store_true",
            help="skip a .wav without .phn (or vice versa) with a warning instead of failing",
        )
        parser.add_argument("--overwrite", action="store_true", help="replace existing split files")

    def prepare(self, args: argparse.Namespace, *, progress: bool = False) -> registry.Prepared:
        from seqprop.corpora.timit.recipe import prepare_timit

        report = prepare_timit(
            args.source,
            args.out_dir,
            splits=dict(args.split) if args.split else None,
            include_sa=args.include_sa,
            seed=args.seed,
            n_validation=args.n_validation,
            skip_incomplete=args.skip_incomplete,
            overwrite=args.overwrite,
            progress=progress,
        )
        notes, left_out = [], []
        if report.excluded_sa:
            left_out.append(f"{report.excluded_sa} SA utterances (--include-sa keeps them)")
        if report.left_out:
            left_out.append(f"{report.left_out} utterances named by no --split")
        if report.skipped:
            left_out.append(f"{len(report.skipped)} incomplete utterances")
        if left_out:
            notes.append("left out: " + "; ".join(left_out))
        if report.ignored:
            notes.append(
                f"ignored {len(report.ignored)} .wav/.phn files not named like TIMIT utterances "
                f"(e.g. {report.ignored[0]})"
            )
        return registry.Prepared(
            files=report.files,
            n_utterances=report.n_utterances,
            n_frames=report.n_frames,
            headline=(
                f"prepared TIMIT ({report.layout} layout) from {args.source} "
                f"in {report.seconds:.1f} s"
            ),
            notes=notes,
            warnings=[f"skipped: {msg}" for msg in report.skipped],
        )


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
