"""The results report: ``RESULTS.md`` and its figures, from a grid's output directory.

The report has the parts every grid gets (how it was run, a table of every
net, the runs without a result, a table of every run) around the sections of
the paper the grid reproduces (:class:`PaperReport`): for Graves &
Schmidhuber (2005) those of :mod:`seqprop.experiments.graves2005`, the
default. ``experiments/README.md`` shows how the committed
``experiments/RESULTS.md`` is made.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqprop.errors import SeqpropError
from seqprop.experiments.figures import Figure, have_matplotlib, write_figures
from seqprop.experiments.files import (
    GRID_NAME,
    INVOCATIONS_NAME,
    RESULT_NAME,
    load_invocations,
    write_text,
)
from seqprop.experiments.markdown import (
    Reference,
    display_path,
    fmt_seconds,
    nets_table,
    num,
    pct,
    pct1,
)
from seqprop.experiments.results import NetSummary, collect_results, summarise

__all__ = ["PaperReport", "write_report"]

_NO_MATPLOTLIB = "(matplotlib is not installed: no figures; pip install 'seqprop[plot]')"


@dataclass(frozen=True)
class PaperReport:
    """What a paper adds to the report of a grid that reproduces it.

    Attributes
    ----------
    reference : callable(result) -> dict or None
        The paper's published figures for a run's model settings (the tables'
        "paper" columns).
    sections : callable(groups) -> list of str
        Markdown lines of the paper's own sections (its comparison, its
        findings checked on the runs), placed after the setup.
    figures : sequence of Figure
        The paper's figures, shown under "Figures" after its sections.
    compare : callable(variants) -> list of str, optional
        Markdown lines comparing variants of the grid (e.g. the paper's unit
        functions and tanh), given ``[(label, groups), ...]`` with the
        report's own runs first; placed before the paper's sections when
        :func:`write_report` is given other variants.
    """

    reference: Reference
    sections: Callable[[Sequence[NetSummary]], list[str]]
    figures: Sequence[Figure] = ()
    compare: Callable[[Sequence[tuple[str, Sequence[NetSummary]]]], list[str]] | None = None


def write_report(
    out: str | os.PathLike[str],
    *,
    markdown: str | os.PathLike[str] | None = None,
    figures: str | os.PathLike[str] | None = None,
    command: str | None = None,
    title: str | None = None,
    paper: PaperReport | None = None,
    label: str | None = None,
    variants: Mapping[str, str | os.PathLike[str]] | None = None,
) -> Path:
    """Write the results of the runs in ``out`` as Markdown (and PNG figures).

    Parameters
    ----------
    out : path
        The grid's output directory (``run_grid``'s ``out``).
    markdown : path, optional
        The Markdown file (default ``OUT/RESULTS.md``); written atomically.
    figures : path, optional
        Directory of the PNG figures (default: ``figures/`` beside the
        Markdown file). Without matplotlib the figures are left out and the
        report says so.
    command : str, optional
        The command that regenerates the report, quoted in it.
    title : str, optional
    paper : PaperReport, optional
        The paper's sections and figures; default: Graves & Schmidhuber (2005),
        :data:`seqprop.experiments.graves2005.REPORT`.
    label : str, optional
        Name of this grid's variant in a comparison (default: ``out``'s name).
    variants : mapping of label -> path, optional
        Output directories of other variants of the grid, compared with this
        one by the paper's ``compare`` section (their own reports are written
        separately).

    Returns
    -------
    Path
        The Markdown file.

    Raises
    ------
    SeqpropError
        ``out`` is missing or holds no finished run.
    """
    if paper is None:
        from seqprop.experiments.graves2005 import REPORT as paper
    out = Path(out)
    results, errors = collect_results(out)
    if not results:
        raise SeqpropError(f"{out}: no finished run (no */{RESULT_NAME}); run the grid first")
    md_path = Path(markdown) if markdown is not None else out / "RESULTS.md"
    fig_dir = Path(figures) if figures is not None else md_path.parent / "figures"
    groups = summarise(results)
    grid_info: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        grid_info = json.loads((out / GRID_NAME).read_text(encoding="utf-8"))
    planned = [p["name"] for p in grid_info.get("points", [])]
    have = {r["name"] for r in results}
    missing = [n for n in planned if n not in have and n not in errors]
    drawn = None  # without matplotlib, or for a paper without figures
    if paper.figures and have_matplotlib():
        drawn = write_figures(paper.figures, groups, fig_dir)

    def rel(p: Path) -> str:
        return os.path.relpath(p.absolute(), md_path.absolute().parent).replace(os.sep, "/")

    lines = _header(out, grid_info, command, title)
    lines += _setup(results, load_invocations(out / INVOCATIONS_NAME))
    if variants and paper.compare is not None:
        compared = [(label or out.name, groups)]
        for name, path in variants.items():
            other, _ = collect_results(path)
            if not other:
                raise SeqpropError(f"{path}: no finished run (no */{RESULT_NAME}) to compare")
            compared.append((name, summarise(other)))
        lines += paper.compare(compared)
    lines += paper.sections(groups)
    if paper.figures:
        lines += _figures_section(paper.figures, drawn, rel)
    lines += _every_net(groups, paper.reference)
    lines += _without_result(errors, missing)
    lines += _per_run(groups)
    md_path.parent.mkdir(parents=True, exist_ok=True)
    write_text(md_path, "\n".join(lines))
    return md_path


def _header(
    out: Path, grid_info: Mapping[str, Any], command: str | None, title: str | None
) -> list[str]:
    """Title, where the report comes from, the grid's description."""
    lines = [
        f"# {title or 'Results: ' + grid_info.get('name', out.name)}",
        "",
        "<!-- generated by seqprop.experiments.write_report; do not edit: rerun the command "
        "below -->",
        "",
    ]
    if command:
        source = f"Generated by `{command}` from the runs in `{display_path(out)}`"
    else:
        source = f"Generated from the runs in `{display_path(out)}`"
    if grid_info.get("grid"):
        source += f" (grid `{display_path(Path(grid_info['grid']))}`)"
    lines.append(source + ".")
    if grid_info.get("description"):
        lines += ["", grid_info["description"].strip()]
    lines.append("")
    return lines


def _setup(results: Sequence[Mapping[str, Any]], invocations: list[dict[str, Any]]) -> list[str]:
    """The data, the training settings, the seeds and how the grid was run."""
    lines = ["## Setup", ""]
    # a framewise run describes the data (a ctc run's splits count no labelled frames)
    r0 = next((r for r in results if "n_frames" in r.get("splits", {}).get("train", {})), None)
    r0 = r0 or results[0]
    splits0 = r0.get("splits", {})
    data = r0.get("data", {})
    for split in ("train", "validation", "test"):
        s = splits0.get(split)
        if s and "n_frames" in s:
            lines.append(
                f"- {split}: `{data.get(split)}`, {s['n_sequences']} utterances, "
                f"{s['n_frames']:,} labelled frames"
                + (
                    f"; always answering the most frequent class scores "
                    f"{pct(s['majority_accuracy'])}"
                    if split == "test"
                    else ""
                )
            )
    lines.append(_training_text(results))
    seeds = sorted({r.get("seed") for r in results})
    lines.append(
        f"- {len(results)} runs, seeds {', '.join(str(s) for s in seeds)}; mean ± standard "
        "deviation over seeds"
    )
    if invocations:
        lines.append(_invocations_text(invocations))
    lines.append("")
    return lines


def _training_text(results: Sequence[Mapping[str, Any]]) -> str:
    lrs = sorted({r.get("learning_rate") for r in results})
    caps = sorted({(r.get("experiment"), r.get("max_epochs")) for r in results})
    patience = sorted({r.get("n_iter_no_change") for r in results})
    cap_text = ", ".join(f"{e} {m}" for e, m in caps)
    cfg0 = results[0].get("config", {}).get("train", {})
    ctc = any(r.get("config", {}).get("model", {}).get("head") == "ctc" for r in results)
    over = "frames (sequences for the ctc nets)" if ctc else "frames"
    error = "frame error (label error rate for the ctc nets)" if ctc else "frame error"
    return (
        f"- training: online gradient descent (batch {cfg0.get('batch_size')}, loss "
        f"{cfg0.get('reduction')}med over {over}), learning rate "
        f"{', '.join(f'{x:g}' for x in lrs)}, momentum {cfg0.get('momentum')}, "
        f"early stopping after {', '.join(str(p) for p in patience)} epochs without a new best "
        f"validation {error}, best-on-validation weights kept; max_epochs: {cap_text}"
    )


def _invocations_text(invocations: Sequence[Mapping[str, Any]]) -> str:
    wall = sum(float(i.get("wall_seconds") or 0) for i in invocations)
    ex = invocations[-1]
    commands: dict[str, int] = {}
    for i in invocations:
        if i.get("command"):
            commands[i["command"]] = commands.get(i["command"], 0) + 1
    return (
        f"- grid wall time {fmt_seconds(wall)} over {len(invocations)} invocation(s) "
        f"({ex.get('executor')}, {ex.get('cpus')} CPUs on {ex.get('host')}); "
        + "; ".join(f"`{c}`" + (f" ({k} times)" if k > 1 else "") for c, k in commands.items())
    )


def _figures_section(
    figures: Sequence[Figure], drawn: Mapping[str, Path] | None, rel: Callable[[Path], str]
) -> list[str]:
    """The figures drawn (``drawn`` is None without matplotlib)."""
    lines = ["## Figures", ""]
    for figure in figures:
        if drawn and figure.name in drawn:
            lines += [f"![{figure.alt}]({rel(drawn[figure.name])})", ""]
    if drawn is None:
        lines += [_NO_MATPLOTLIB, ""]
    return lines


def _every_net(groups: Sequence[NetSummary], reference: Reference) -> list[str]:
    """The table of every net, and which were cut short by ``max_epochs``."""
    lines = ["## Every net", "", *nets_table(groups, reference), ""]
    capped = [g for g in groups if g.n_capped]
    if capped:
        lines.append(
            "**Cut short by max_epochs** (early stopping had not triggered; these nets might "
            "improve with more epochs): "
            + ", ".join(f"{g.label} ({g.n_capped}/{len(g.runs)})" for g in capped)
            + "."
        )
    else:
        lines.append("Every run ended by early stopping (none was cut short by max_epochs).")
    lines.append("")
    return lines


def _without_result(errors: Mapping[str, str], missing: Sequence[str]) -> list[str]:
    """The runs that failed or have not run yet (nothing when there are none)."""
    if not errors and not missing:
        return []
    lines = ["## Runs without a result", ""]
    for name, err in sorted(errors.items()):
        lines.append(f"- `{name}`: failed: {err}")
    for name in missing:
        lines.append(f"- `{name}`: not run yet")
    lines.append("")
    return lines


def _per_run(groups: Sequence[NetSummary]) -> list[str]:
    """One row per run, grouped like the nets."""
    lines = [
        "## Per run",
        "",
        "| run | weights | train % | validation % | test % | best epoch | epochs | "
        "stop | s/epoch | frames/s |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for g in groups:
        for r in g.runs:
            sp = r.get("splits", {})
            lines.append(
                f"| {r['name']} | {r.get('n_parameters', 0):,} | "
                f"{pct1((sp.get('train') or {}).get('frame_accuracy'))} | "
                f"{pct1((sp.get('validation') or {}).get('frame_accuracy'))} | "
                f"{pct1((sp.get('test') or {}).get('frame_accuracy'))} | "
                f"{r.get('best_epoch')} | {r.get('epochs')} | "
                f"{'max_epochs' if r.get('capped') else 'early'} | "
                f"{num(r.get('seconds_per_epoch'), 2)} | {num(r.get('frames_per_second'), 0)} |"
            )
    lines.append("")
    return lines
