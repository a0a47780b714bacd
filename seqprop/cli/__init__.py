"""The ``seqprop`` command.

Each group of subcommands lives in its own module with a ``register(subparsers)``
function; heavy imports (numba kernels, h5py) happen inside the command
functions so that ``seqprop --help`` is instant.

Errors that come from bad input (:class:`seqprop.errors.SeqpropError`,
``OSError``) print one line on stderr and exit with status 2; ``--debug`` shows
the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
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
    except (SeqpropError, OSError) as exc:
        if args.debug:
            raise
        print(f"seqprop {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0 if rc is None else int(rc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
