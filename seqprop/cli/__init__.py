"""The ``seqprop`` command.

Each group of subcommands lives in its own module with a ``register(subparsers)``
function; heavy imports (numba kernels, h5py) happen inside the command
functions so that ``seqprop --help`` is instant.

Errors that come from bad input (:class:`seqprop.errors.SeqpropError`,
``OSError``) print one line on stderr and exit with status 2; ``--debug`` shows
the traceback instead. A closed output pipe (``seqprop evaluate ... | head``)
ends the command quietly with status 141, as SIGPIPE ends other Unix tools.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Modules that provide subcommands, in the order they appear in --help.
COMMAND_MODULES = (
    "seqprop.cli.demo_cmd",
    "seqprop.cli.prepare_cmd",
    "seqprop.cli.inspect_cmd",
    "seqprop.cli.train_cmds",
    "seqprop.cli.tools_cmds",
    "seqprop.cli.experiments_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seqprop",
        description="Train framewise recurrent sequence classifiers (Graves & Schmidhuber 2005).",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback when a command fails"
    )
    from seqprop import __version__

    parser.add_argument("--version", action="version", version=f"seqprop {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a command group not built yet
            if exc.name == name:
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from seqprop.errors import SeqpropError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        rc = args.func(args)
    except KeyboardInterrupt:
        print("seqprop: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (``seqprop evaluate ... | head``): stop quietly, like
        # other Unix tools; route the rest of stdout to nowhere so that the
        # interpreter's final flush cannot fail again
        _silence_stdout()
        return 128 + 13  # as if killed by SIGPIPE
    except (SeqpropError, OSError) as exc:
        if args.debug:
            raise
        print(f"seqprop {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0 if rc is None else int(rc)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is no real file (captured in a test)
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
