"""``seqprop prepare timit|synthetic``: turn a corpus into HDF5 sequence datasets."""

from __future__ import annotations

import argparse
import sys
import time

_TIMIT_EPILOG = """\
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


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``prepare`` with its ``timit`` and ``synthetic`` subcommands."""
    p = subparsers.add_parser(
        "prepare",
        help="prepare a corpus (TIMIT or synthetic speech) as HDF5 datasets",
        description=(
            "Turn a speech corpus into seqprop HDF5 datasets, one file per split: 26 MFCC "
            "features per 10 ms frame (12 cepstra + log energy + deltas) and a phone class "
            "per frame."
        ),
    )
    sub = p.add_subparsers(dest="corpus", metavar="CORPUS")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    t = sub.add_parser(
        "timit",
        help="TIMIT (LDC distribution or NLTK sample layout)",
        description=(
            "Read TIMIT audio (.wav, NIST SPHERE or RIFF) and phone alignments (.phn), compute "
            "the paper's features, label each frame with the phone covering its centre (61 "
            "classes) and write OUT_DIR/<split>.h5. The SA sentences are left out by default."
        ),
        epilog=_TIMIT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.add_argument("source", metavar="SOURCE", help="TIMIT directory (LDC or NLTK layout)")
    t.add_argument("out_dir", metavar="OUT_DIR", help="output directory")
    t.add_argument(
        "--split",
        action="append",
        type=_split_arg,
        metavar="NAME=SPEC",
        help="a split and its speakers/utterances (repeatable; see below)",
    )
    t.add_argument("--include-sa", action="store_true", help="keep the SA1/SA2 sentences")
    t.add_argument("--seed", type=int, default=0, help="seed of the validation draw (default 0)")
    t.add_argument(
        "--n-validation",
        type=int,
        default=184,
        metavar="N",
        help="TRAIN utterances held out for validation, LDC layout (default 184)",
    )
    t.add_argument(
        "--skip-incomplete",
        action="store_true",
        help="skip a .wav without .phn (or vice versa) with a warning instead of failing",
    )
    t.add_argument("--overwrite", action="store_true", help="replace existing split files")
    t.set_defaults(func=run_timit)

    s = sub.add_parser(
        "synthetic",
        help="generate the synthetic speech corpus (offline, seconds)",
        description=(
            "Generate speech-like audio from a phone sequence model with a source-filter "
            "synthesiser (formant transitions carry the place of nasals and stops into the "
            "following phone, so future context helps), compute the same features and write "
            "OUT_DIR/train.h5, validation.h5 and test.h5. Deterministic given --seed."
        ),
    )
    s.add_argument("out_dir", metavar="OUT_DIR", help="output directory")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument(
        "--n-train", type=int, default=200, metavar="N", help="training utterances (200)"
    )
    s.add_argument(
        "--n-validation", type=int, default=50, metavar="N", help="validation utterances (50)"
    )
    s.add_argument("--n-test", type=int, default=50, metavar="N", help="test utterances (50)")
    s.add_argument(
        "--n-speakers",
        type=int,
        nargs="+",
        default=[12, 4, 4],
        metavar="N",
        help="speakers per split: one number for all, or three for train validation test "
        "(default 12 4 4); splits never share speakers",
    )
    s.add_argument("--min-seconds", type=float, default=1.0, help="shortest utterance (1.0 s)")
    s.add_argument("--max-seconds", type=float, default=3.0, help="longest utterance (3.0 s)")
    s.add_argument("--overwrite", action="store_true", help="replace existing files")
    s.set_defaults(func=run_synthetic)


def _print_splits(files: dict, n_utts: dict, n_frames: dict) -> None:
    width = max(len(name) for name in files)
    for name, path in files.items():
        print(
            f"  {name:<{width}}  {n_utts[name]:>6} utterances  {n_frames[name]:>9} frames  -> {path}"
        )


def run_timit(args: argparse.Namespace) -> int:
    from seqprop.corpora.timit import prepare_timit

    report = prepare_timit(
        args.source,
        args.out_dir,
        splits=dict(args.split) if args.split else None,
        include_sa=args.include_sa,
        seed=args.seed,
        n_validation=args.n_validation,
        skip_incomplete=args.skip_incomplete,
        overwrite=args.overwrite,
        progress=sys.stderr.isatty(),
    )
    for msg in report.skipped:
        print(f"seqprop prepare: warning: skipped: {msg}", file=sys.stderr)
    print(f"prepared TIMIT ({report.layout} layout) from {args.source} in {report.seconds:.1f} s")
    _print_splits(report.files, report.n_utterances, report.n_frames)
    notes = []
    if report.excluded_sa:
        notes.append(f"{report.excluded_sa} SA utterances (--include-sa keeps them)")
    if report.left_out:
        notes.append(f"{report.left_out} utterances named by no --split")
    if report.skipped:
        notes.append(f"{len(report.skipped)} incomplete utterances")
    if notes:
        print("left out: " + "; ".join(notes))
    if report.ignored:
        print(
            f"ignored {len(report.ignored)} .wav/.phn files not named like TIMIT utterances "
            f"(e.g. {report.ignored[0]})"
        )
    return 0


def run_synthetic(args: argparse.Namespace) -> int:
    from seqprop.corpora.synthetic import generate_corpus
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
        progress=sys.stderr.isatty(),
    )
    seconds = time.perf_counter() - t0
    n_utts, n_frames = {}, {}
    for name, path in files.items():
        with open_dataset(path) as ds:
            n_utts[name], n_frames[name] = len(ds), int(ds.lengths.sum())
    print(f"generated the synthetic corpus (seed {args.seed}) in {seconds:.1f} s")
    _print_splits(files, n_utts, n_frames)
    return 0
