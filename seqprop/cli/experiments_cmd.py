"""``seqprop experiments run|report``: the paper's experiments as a grid of runs."""

from __future__ import annotations

import argparse
import shlex

_RUN_EPILOG = """\
A grid file (TOML) lists experiments: a training configuration each, the values
to vary (e.g. model.delay = [0, 1, 2]) and the seeds to repeat them with; see
experiments/configs/small/grid.toml and seqprop.experiments. Every grid point
trains into OUT/<name>/ (e.g. OUT/lstm-d3-s0/) and ends with result.json
(train/validation/test frame accuracy of the best model). Finished runs are
skipped when the grid is run again; killed runs continue from their checkpoint;
failed runs leave error.txt and are tried again.

examples:
  seqprop experiments run experiments/configs/small/grid.toml --out runs/sample
  seqprop experiments run GRID --out runs/x --only 'lstm-*' --set train.max_epochs=5
  seqprop experiments run GRID --out /shared/runs --scheduler tcp://10.0.0.1:8786
"""


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not seeds or any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError(f"expected integers >= 0, got {text!r}")
    return seeds


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``experiments run`` and ``experiments report``."""
    p = subparsers.add_parser(
        "experiments",
        help="run a grid of training runs (the paper's experiments) and report the results",
        description=(
            "Run the paper's experiments (or your own) as a grid of independent training "
            "runs on dask.distributed, and write RESULTS.md with tables and figures."
        ),
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    _add_run(sub)
    _add_report(sub)


def _add_run(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser(
        "run",
        help="run every unfinished point of a grid",
        description=(
            "Run every point of the grid GRID that has no result yet, each as one job: "
            "on a local dask cluster (--workers processes, one thread each) by default, on "
            "an existing cluster with --scheduler, or one after another in this process "
            "with --serial. Exit status 1 when a run failed (the others still ran)."
        ),
        epilog=_RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("grid", metavar="GRID", help="grid file (TOML)")
    r.add_argument("--out", "-o", default=None, metavar="DIR",
                   help="output directory (default: runs/<grid name>)")  # fmt: skip
    r.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="address of a running dask scheduler (tcp://host:8786); its workers need "
        "seqprop installed and the data and DIR at the same paths",
    )
    r.add_argument(
        "--workers",
        "-j",
        type=_positive,
        default=2,
        metavar="N",
        help="worker processes of the local cluster (default 2)",
    )
    r.add_argument("--serial", action="store_true", help="no dask: run in this process")
    r.add_argument(
        "--threads",
        type=int,
        default=1,
        metavar="N",
        help="train.threads of every run (default 1: one core per job; 0 = library default)",
    )
    r.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override a config value in every run (repeatable), e.g. "
        "--set data.train=data/timit/train.h5",
    )
    r.add_argument("--seeds", type=_seeds, metavar="S,S,...", help="replace every seed list")
    r.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="PATTERN",
        help="run only the points whose name matches (fnmatch, repeatable), e.g. 'blstm-*'",
    )
    r.add_argument("--list", action="store_true", help="list the grid's points and exit")
    r.set_defaults(func=run_run)


def _add_report(sub: argparse._SubParsersAction) -> None:
    q = sub.add_parser(
        "report",
        help="write RESULTS.md and figures from a grid's output directory",
        description=(
            "Aggregate the runs in OUT (mean and spread over seeds), compare them with the "
            "paper's published figures, check the paper's qualitative findings and write "
            "Markdown with PNG figures (matplotlib)."
        ),
    )
    q.add_argument("out", metavar="OUT", help="the grid's output directory")
    q.add_argument(
        "--markdown", "--md", metavar="FILE", help="Markdown file (default OUT/RESULTS.md)"
    )
    q.add_argument(
        "--figures", metavar="DIR", help="figure directory (default: figures/ beside FILE)"
    )
    q.add_argument("--title", help="the report's title")
    q.add_argument(
        "--paper",
        choices=("graves2005", "graves2006"),
        default="graves2005",
        help="the paper whose sections the report holds: the 2005 framewise comparison "
        "(default) or the 2006 CTC paper (decoded phone error rates)",
    )
    q.add_argument(
        "--label", metavar="NAME", help="name of OUT's variant in a comparison (default: OUT)"
    )
    q.add_argument(
        "--compare",
        dest="variants",
        metavar="NAME=DIR",
        action="append",
        default=[],
        help="another variant's output directory to compare with (repeatable), e.g. "
        "--compare tanh=runs/sample-tanh",
    )
    q.set_defaults(func=run_report)


def _command_line(args: argparse.Namespace) -> str:
    """The command, rebuilt from the parsed arguments (recorded with the results)."""
    words = ["seqprop", "experiments", args.action]
    if args.action == "run":
        words += [args.grid]
        if args.out:
            words += ["--out", args.out]
        if args.serial:
            words += ["--serial"]
        elif args.scheduler:
            words += ["--scheduler", args.scheduler]
        else:
            words += ["--workers", str(args.workers)]
        if args.threads != 1:
            words += ["--threads", str(args.threads)]
        for o in args.overrides:
            words += ["--set", o]
        if args.seeds:
            words += ["--seeds", ",".join(str(s) for s in args.seeds)]
        for o in args.only:
            words += ["--only", o]
    else:
        words += [args.out]
        for flag, value in (
            ("--markdown", args.markdown),
            ("--figures", args.figures),
            ("--title", args.title),
            ("--paper", args.paper if args.paper != "graves2005" else None),
            ("--label", args.label),
        ):
            if value:
                words += [flag, value]
        for v in args.variants:
            words += ["--compare", v]
    return " ".join(shlex.quote(w) for w in words)


def run_run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from seqprop.experiments import load_grid, run_grid

    grid = load_grid(args.grid, overrides=args.overrides, seeds=args.seeds)
    points = grid.points(args.only)
    if args.list:
        for pt in points:
            params = ", ".join(f"{k}={v}" for k, v in pt.params)
            print(f"{pt.name}\t{Path(pt.config_path).name}\tseed {pt.seed}\t{params}")
        print(f"{len(points)} runs")
        return 0
    out = Path(args.out) if args.out else Path("runs") / grid.name
    where = (
        "in this process"
        if args.serial
        else f"on {args.scheduler}"
        if args.scheduler
        else f"on a local dask cluster of {args.workers} workers"
    )
    print(f"grid {grid.name}: {len(points)} runs into {out} {where}", flush=True)

    run = run_grid(
        grid,
        out,
        only=args.only,
        scheduler=args.scheduler,
        n_workers=args.workers,
        serial=args.serial,
        threads=None if args.threads < 0 else args.threads,
        command=_command_line(args),
        on_outcome=_show_outcome,
    )
    done, skipped, failed = run.names("done"), run.names("skipped"), run.failed
    print(
        f"finished in {run.wall_seconds:.0f} s: {len(done)} trained, {len(skipped)} already "
        f"done, {len(failed)} failed"
    )
    for o in failed:
        print(f"  failed: {o['name']}: {o['error']} (see {out / o['name'] / 'error.txt'})")
    print(f"results: seqprop experiments report {out}")
    return 1 if failed else 0


def _show_outcome(outcome: dict, i: int, n: int) -> None:
    """One line per finished run: its status, accuracies and epochs."""
    name, status = outcome["name"], outcome["status"]
    if status == "failed":
        print(f"[{i}/{n}] FAILED {name}: {outcome['error']}", flush=True)
        return
    r = outcome.get("result") or {}
    test = (r.get("splits", {}).get("test") or {}).get("frame_accuracy")
    valid = (r.get("splits", {}).get("validation") or {}).get("frame_accuracy")
    acc = ""
    if valid is not None:
        acc += f"  valid {100 * valid:.1f}%"
    if test is not None:
        acc += f"  test {100 * test:.1f}%"
    took = f"  {outcome['seconds']:.0f}s" if status == "done" else ""
    print(
        f"[{i}/{n}] {status:<7} {name}{acc}  epochs {r.get('epochs')} "
        f"(best {r.get('best_epoch')}{', capped' if r.get('capped') else ''}){took}",
        flush=True,
    )


def run_report(args: argparse.Namespace) -> int:
    import importlib

    from seqprop.errors import ConfigError
    from seqprop.experiments import write_report

    variants = {}
    for item in args.variants:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--compare {item!r}: expected NAME=DIR")
        variants[name] = path

    paper = importlib.import_module(f"seqprop.experiments.{args.paper}").REPORT
    path = write_report(
        args.out,
        markdown=args.markdown,
        figures=args.figures,
        command=_command_line(args),
        title=args.title,
        paper=paper,
        label=args.label,
        variants=variants,
    )
    print(f"wrote {path}")
    return 0
