"""``seqprop inspect FILE``: summarise an HDF5 sequence dataset."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``inspect`` subcommand."""
    p = subparsers.add_parser(
        "inspect",
        help="summarise an HDF5 sequence dataset (validates it)",
        description=(
            "Validate a seqprop.sequences HDF5 file and print a summary: sequences, "
            "frames, input size, classes, sequence length statistics, unlabelled "
            "frames and a class histogram sorted by count."
        ),
    )
    p.add_argument("file", metavar="FILE", help="HDF5 dataset file")
    p.add_argument("--group", "-g", help="the split's group, when the file holds several")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument(
        "--all", action="store_true", help="show every class in the histogram (default: top 20)"
    )
    p.set_defaults(func=run)


def format_summary(s: dict, show_all: bool = False, top: int = 20) -> str:
    """Human-readable text of :meth:`SequenceDataset.summary`."""
    where = s["path"] + (f" (group {s['group']})" if s["group"] else "")
    n_frames = s["n_frames"]
    lines = [
        f"file:              {where}",
        f"sequences:         {s['n_sequences']}",
        f"frames:            {n_frames}",
        f"input size:        {s['input_size']}",
        f"classes:           {s['num_classes']}",
        (
            f"length (frames):   min {s['length_min']}  mean {s['length_mean']:.1f}  "
            f"median {s['length_median']:g}  max {s['length_max']}"
        ),
        f"unlabelled frames: {s['unlabelled_frames']} ({_pct(s['unlabelled_frames'], n_frames)})",
        f"normalisation:     {'stored mean/std' if s['has_normalisation'] else 'none stored'}",
    ]
    if s.get("target_kind") == "frame_values":
        lines.append(f"targets:           {s['num_classes']} float values per frame")
    if s.get("source"):
        lines.append(f"source:            {s['source']}")
    hist = sorted(s["class_histogram"].items(), key=lambda kv: (-kv[1], kv[0]))
    if not hist:
        return "\n".join(lines)
    shown = hist if show_all else hist[:top]
    per_sequence = s.get("target_kind") == "sequence_class"  # the histogram counts sequences
    labelled = sum(c for _, c in hist) if per_sequence else n_frames - s["unlabelled_frames"]
    title = "class histogram" + (" (sequences)" if per_sequence else "")
    title += "" if show_all or len(hist) <= top else f" (top {top})"
    lines.append(f"{title}:")
    width = max((len(name) for name, _ in shown), default=0)
    for name, count in shown:
        lines.append(f"  {name:<{width}}  {count:>10}  {_pct(count, labelled):>6}")
    if len(shown) < len(hist):
        rest = sum(c for _, c in hist[len(shown) :])
        lines.append(
            f"  ... {len(hist) - len(shown)} more classes, {rest} "
            f"{'sequences' if per_sequence else 'frames'} (--all shows them)"
        )
    return "\n".join(lines)


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


def run(args: argparse.Namespace) -> int:
    from seqprop.cli.train_cmds import check_group_chosen
    from seqprop.data import open_dataset

    check_group_chosen(args.file, args.group)
    with open_dataset(args.file, group=args.group) as ds:
        summary = ds.summary()
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(format_summary(summary, show_all=args.all))
    return 0
