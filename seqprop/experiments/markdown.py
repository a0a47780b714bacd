"""Markdown pieces of a results report: number formats and the table of nets.

Accuracies are framewise (the share of labelled frames classified correctly,
as Graves & Schmidhuber 2005 report them), shown in percent, as the mean ±
standard deviation over a grid point's seeds. The class-averaged accuracy is
the mean over the classes of each class's frame accuracy (every phone counts
once, however rare).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from seqprop.experiments.results import NetSummary

__all__ = ["Reference", "nets_table"]

Reference = Callable[[Mapping[str, Any]], Mapping[str, Any] | None]
"""The published figures for a run's model settings (``test``: accuracy in
percent, ``epochs``), or None: the table's paper columns."""


def pct(x: float | None) -> str:
    """``0.123`` as ``12.3 %``; ``n/a`` for None or NaN."""
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f} %"


def pct1(x: float | None) -> str:
    """``0.123`` as ``12.3``; ``n/a`` for None."""
    return "n/a" if x is None else f"{100 * x:.1f}"


def num(x: float | None, digits: int) -> str:
    """``x`` with thousands separators and ``digits`` decimals; ``n/a`` for None."""
    return "n/a" if x is None else f"{x:,.{digits}f}"


def pm(g: NetSummary, what: str) -> str:
    """Mean ± standard deviation over the seeds of an accuracy, in percent."""
    m, s = g.mean(what), g.std(what)
    if math.isnan(m):
        return "n/a"
    if math.isnan(s):
        return f"{100 * m:.1f}"
    return f"{100 * m:.1f} ± {100 * s:.1f}"


def fmt_seconds(s: float | None) -> str:
    """A duration in seconds, minutes or hours."""
    if s is None or (isinstance(s, float) and math.isnan(s)):
        return "n/a"
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def display_path(p: Path) -> str:
    """``p`` relative to the current directory when it is below it, else as given."""
    try:
        return str(Path(p).absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def _epochs_text(g: NetSummary) -> str:
    be = g.values("best_epoch")
    text = f"{sum(be) / len(be):.0f}" if be else "n/a"
    if len(be) > 1:
        text += f" ({min(be):.0f}-{max(be):.0f})"
    return text


def nets_table(groups: Sequence[NetSummary], reference: Reference) -> list[str]:
    """One row per net: weights, runs, accuracies, epochs, speed and the published
    figures that ``reference`` gives for it."""
    lines = [
        "| net | weights | runs | train % | validation % | test % | test class-avg % | "
        "best epoch | epochs run | stopped by cap | s/epoch | paper test % | paper epochs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for g in groups:
        p = reference(g.first) or {}
        ep = g.values("epochs")
        lines.append(
            f"| {g.label} | {g.first.get('n_parameters', 'n/a'):,} | {len(g.runs)} | "
            f"{pm(g, 'train')} | {pm(g, 'validation')} | {pm(g, 'test')} | "
            f"{pm(g, 'test.class_averaged_accuracy')} | {_epochs_text(g)} | {sum(ep) / len(ep):.0f} | "
            f"{g.n_capped}/{len(g.runs)} | {g.mean('seconds_per_epoch'):.2f} | "
            f"{p.get('test', '')} | {p.get('epochs', '')} |"
        )
    return lines
