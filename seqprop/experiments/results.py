"""Reading a grid's results: run directories into result dicts, grouped over seeds.

:func:`collect_results` reads every ``OUT/*/result.json``;
:func:`summarise` groups the runs of one grid point (one experiment at one set
of varied values) over their seeds into a :class:`NetSummary` with means and
spreads; :func:`nets_of`, :func:`sweep` and :func:`best_by_validation` pick
groups out the way a paper's comparison does (Graves & Schmidhuber 2005 choose
the target delay on the validation set).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqprop.errors import SeqpropError
from seqprop.experiments.files import ERROR_NAME, RESULT_FORMAT, RESULT_NAME
from seqprop.experiments.grid import point_key

__all__ = [
    "NetSummary",
    "best_by_validation",
    "collect_results",
    "mean_curve",
    "nets_of",
    "summarise",
    "sweep",
]

_KIND_ORDER = {"blstm": 0, "brnn": 1, "lstm": 2, "rnn": 3, "mlp": 4}
"""The order of the model kinds in a report."""


def collect_results(out: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Read every ``OUT/*/result.json``; also the errors of runs without a result.

    Returns
    -------
    results : list of dict
        Sorted by run name.
    errors : dict
        Run name -> first line of its ``error.txt`` (runs that failed and have
        not finished since).

    Raises
    ------
    SeqpropError
        ``out`` is not a directory.
    """
    out = Path(out)
    if not out.is_dir():
        raise SeqpropError(f"{out}: no such directory (the grid's output directory)")
    results, errors = [], {}
    for run_dir in sorted(p for p in out.iterdir() if p.is_dir()):
        rp = run_dir / RESULT_NAME
        if rp.is_file():
            results.append(_read_result(rp))
        elif (run_dir / ERROR_NAME).is_file():
            lines = (run_dir / ERROR_NAME).read_text(encoding="utf-8").splitlines()
            errors[run_dir.name] = lines[1] if len(lines) > 1 else (lines[0] if lines else "")
    return results, errors


def _read_result(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SeqpropError(f"{path}: not a readable result file: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != RESULT_FORMAT:
        raise SeqpropError(f"{path}: not a seqprop experiment result")
    return data


# ===================================================================== groups
@dataclass
class NetSummary:
    """The repeats (seeds) of one grid point, aggregated.

    Attributes
    ----------
    key : str
        ``experiment`` plus its varied values, e.g. ``lstm-d3``.
    label : str
        e.g. ``LSTM, delay 3``.
    experiment : str
    params : dict
    runs : list of dict
        The result dicts, by seed.
    """

    key: str
    label: str
    experiment: str
    params: dict[str, Any]
    runs: list[dict[str, Any]]

    @property
    def first(self) -> dict[str, Any]:
        return self.runs[0]

    def values(self, what: str) -> list[float]:
        """Per-run values: ``train``/``validation``/``test`` (frame accuracy),
        ``SPLIT.KEY`` (a key of a split's scores, e.g. ``test.class_averaged_accuracy``),
        or a result key."""
        out = []
        for r in self.runs:
            split, _, key = what.partition(".")
            if split in ("train", "validation", "test"):
                v = (r.get("splits", {}).get(split) or {}).get(key or "frame_accuracy")
            else:
                v = r.get(what)
            if v is not None:
                out.append(float(v))
        return out

    def mean(self, what: str) -> float:
        v = self.values(what)
        return sum(v) / len(v) if v else float("nan")

    def std(self, what: str) -> float:
        v = self.values(what)
        if len(v) < 2:
            return float("nan")
        m = sum(v) / len(v)
        return math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))

    @property
    def n_capped(self) -> int:
        return sum(bool(r.get("capped")) for r in self.runs)


def summarise(results: Iterable[Mapping[str, Any]]) -> list[NetSummary]:
    """Group results by experiment and varied values (over seeds), in a stable order.

    Order: by model kind (BLSTM, BRNN, LSTM, RNN, MLP, others), full gradient
    before truncated, then by experiment name and the varied values.
    """
    groups: dict[str, NetSummary] = {}
    for r in results:
        params = dict(r.get("params") or {})
        key = point_key(r["experiment"], params.items())
        label = r.get("label") or r["experiment"]
        if params:
            label = f"{label}, {_param_text(params)}"
        if key not in groups:
            groups[key] = NetSummary(key, label, r["experiment"], params, [])
        groups[key].runs.append(dict(r))
    for g in groups.values():
        g.runs.sort(key=lambda r: r.get("seed", 0))
    return sorted(
        groups.values(),
        key=lambda g: (
            _KIND_ORDER.get(g.first.get("kind"), 9),
            g.first.get("gradient") != "full",
            g.experiment,
            [_sort_value(v) for v in g.params.values()],
        ),
    )


def _param_text(params: Mapping[str, Any]) -> str:
    parts = []
    for k, v in params.items():
        if k == "model.delay":
            parts.append(f"delay {v}")
        elif k == "model.window":
            parts.append(f"window {v}")
        else:
            parts.append(f"{k.rsplit('.', 1)[-1]} {v}")
    return ", ".join(parts)


def _sort_value(v: Any) -> tuple[int, Any]:
    return (0, v) if isinstance(v, int | float) and not isinstance(v, bool) else (1, str(v))


# ===================================================================== choosing nets
_PLAIN = {"reverse": False, "class_weighting": "none"}
"""Result keys of the variants a plain net does not have (and their values in one):
a net run on the reversed sequence, a class-weighted error."""


def nets_of(groups: Sequence[NetSummary], kind: str, **params: Any) -> list[NetSummary]:
    """The groups of model ``kind`` trained with the full gradient whose results have
    the given values (e.g. ``delay=0``); plain nets (forwards, unweighted error) unless
    ``reverse`` or ``class_weighting`` is given."""
    want = {**_PLAIN, **params}
    out = []
    for g in groups:
        r = g.first
        if r.get("kind") != kind or r.get("gradient", "full") != "full":
            continue
        if all(r.get(k, _PLAIN.get(k)) == v for k, v in want.items()):
            out.append(g)
    return out


def sweep(groups: Sequence[NetSummary], kind: str, key: str) -> list[NetSummary]:
    """The groups of ``kind`` (full gradient) sorted by ``key`` (delay or window)."""
    return sorted(nets_of(groups, kind), key=lambda g: g.first.get(key, 0))


def best_by_validation(sweep: Sequence[NetSummary]) -> NetSummary | None:
    """The setting with the best mean validation accuracy (how the paper's delays were chosen)."""
    cands = [g for g in sweep if not math.isnan(g.mean("validation"))]
    return max(cands, key=lambda g: g.mean("validation")) if cands else None


def mean_curve(g: NetSummary, what: str) -> tuple[list[int], list[float]]:
    """Per-epoch mean of ``what`` (a curve key) over the seeds, for the epochs that at
    least half of the runs reached (runs stop at different epochs)."""
    curves = [[c.get(what) for c in r.get("curve", [])] for r in g.runs if r.get("curve")]
    if not curves:
        return [], []
    need = max(1, math.ceil(len(curves) / 2))
    xs, ys = [], []
    for e in range(max(len(c) for c in curves)):
        vals = [c[e] for c in curves if e < len(c) and c[e] is not None]
        if len(vals) < need:
            break
        xs.append(e + 1)
        ys.append(sum(vals) / len(vals))
    return xs, ys
