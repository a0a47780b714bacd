"""``seqprop prepare NAME``: turn a registered corpus into HDF5 sequence datasets.

The corpora come from the registry of :mod:`seqprop.corpora`:
``seqprop prepare --list`` lists them, ``seqprop prepare NAME --help`` shows one
corpus's options, ``seqprop prepare NAME ARGS...`` parses ARGS with that
corpus's options and runs its ``prepare``. The corpus's options are read only
for the corpus named, so that other commands never import its code.
"""

from __future__ import annotations

import argparse
import sys

_DESCRIPTION = """\
Turn a corpus into seqprop HDF5 datasets, one file per split (features per
frame and a class per frame). NAME is one of the corpora below; ARGS are its
arguments: seqprop prepare NAME --help shows them."""


def _listing() -> str:
    from seqprop.corpora import corpora

    found = corpora()
    width = max((len(c.name) for c in found), default=0)
    lines = ["corpora:"]
    lines += [f"  {c.name:<{width}}  {c.summary}" for c in found]
    return "\n".join(lines)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``prepare [--list] [NAME [ARGS...]]``."""
    p = subparsers.add_parser(
        "prepare",
        help="prepare a corpus (TIMIT, synthetic speech, ...) as HDF5 datasets",
        description=_DESCRIPTION,
        epilog=_listing(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--list", action="store_true", help="list the corpora and exit")
    p.add_argument("corpus", nargs="?", metavar="NAME", help="the corpus to prepare")
    p.add_argument(
        "corpus_args",
        nargs=argparse.REMAINDER,
        metavar="ARGS",
        help="the corpus's arguments and options (seqprop prepare NAME --help)",
    )
    p.set_defaults(func=lambda args: run_prepare(args, p.prog))


def corpus_parser(corpus, prog: str) -> argparse.ArgumentParser:
    """The parser of ``seqprop prepare NAME`` for one corpus."""
    parser = argparse.ArgumentParser(
        prog=f"{prog} {corpus.name}",
        description=corpus.description or corpus.summary,
        epilog=corpus.epilog or None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    corpus.add_arguments(parser)
    return parser


def run_prepare(args: argparse.Namespace, prog: str) -> int:
    """List the corpora, or parse the named corpus's arguments, prepare it, report."""
    from seqprop.corpora import get_corpus

    if args.list or args.corpus is None:
        print(_listing())
        return 0 if args.list else 2
    corpus = get_corpus(args.corpus)
    corpus_args = corpus_parser(corpus, prog).parse_args(args.corpus_args)
    result = corpus.prepare(corpus_args, progress=sys.stderr.isatty())
    for msg in result.warnings:
        print(f"seqprop prepare: warning: {msg}", file=sys.stderr)
    print(result.headline)
    width = max((len(name) for name in result.files), default=0)
    for name, path in result.files.items():
        n_utts, n_frames = result.n_utterances[name], result.n_frames[name]
        print(f"  {name:<{width}}  {n_utts:>6} utterances  {n_frames:>9} frames  -> {path}")
    for line in result.notes:
        print(line)
    return 0
