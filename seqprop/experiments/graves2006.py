"""Graves, Fernandez, Gomez & Schmidhuber (2006): CTC against framewise BLSTM on TIMIT phones.

The 2006 paper trains the 2005 paper's BLSTM with connectionist temporal
classification (the ``ctc`` head) on TIMIT's phone sequences, without any
alignment, and compares the phone (label) error rate of its decoded outputs
with a framewise BLSTM whose outputs an HMM decodes. Its published figures
(61 phone labels, no language model, BLSTM of 100 blocks per direction,
online gradient descent with learning rate 1e-4 and momentum 0.9, Gaussian
input noise of standard deviation 0.6) are :data:`PAPER_RESULTS`.

This module adds, to every run of a grid whose splits hold label sequences
(``seqprop prepare timit`` writes them), the phone error rates of the best
model's decoded outputs (:func:`add_label_scores`): a ``ctc`` model by best
path and by prefix beam search, a framewise model by merging its most
probable phone per frame (no HMM), each on the 61 phones and on the standard
39-phone fold; and the report section comparing them (:data:`REPORT`,
``seqprop experiments report OUT --paper graves2006``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from seqprop.experiments.markdown import pct1
from seqprop.experiments.report import PaperReport
from seqprop.experiments.results import NetSummary

__all__ = ["BEAM_WIDTH", "PAPER_RESULTS", "REPORT", "add_label_scores", "sections"]

BEAM_WIDTH = 16
"""Prefix beam search width of the reported scores."""

PAPER_RESULTS = {
    "ctc_best_path": 0.315,
    "ctc_prefix_search": 0.305,
    "framewise_hmm": 0.338,
}
"""Label error rates on the TIMIT core test set, 61 phones (Graves et al. 2006, table 1)."""


def add_label_scores(
    summary: dict[str, Any], net: Any, dataset: Any, pre: Any, class_names: Sequence[str]
) -> None:
    """Add ``summary["labels"]``: decoded phone error rates, when ``dataset`` has label sequences.

    ``{decoder: {"per": ..., "per39": ..., "substitutions": ..., ...}}`` with
    decoders ``best_path`` and ``beam`` for a ``ctc`` model, ``framewise``
    for a framewise one; ``per39`` is None unless the classes are TIMIT's.
    """
    from seqprop.evaluation import evaluate
    from seqprop.heads import TargetKind

    if getattr(dataset, "label_sequences", None) is None:
        return
    kind = net.head.target_kind
    if kind is TargetKind.LABEL_SEQUENCE:
        decoders = ("best_path", "beam")
    elif kind is TargetKind.FRAME_CLASS:
        decoders = ("framewise",)
    else:
        return
    out = {}
    for decoder in decoders:
        r = evaluate(
            net, dataset, pre, class_names=class_names, decoder=decoder, beam_width=BEAM_WIDTH
        )
        sc = r.scores
        out[decoder] = {
            "per": sc["label_error_rate"],
            "per39": (r.folded or {}).get("label_error_rate"),
            "substitutions": sc["substitutions"],
            "deletions": sc["deletions"],
            "insertions": sc["insertions"],
            "reference_labels": sc["reference_labels"],
        }
    summary["labels"] = out


_DECODER_NAMES = {
    "best_path": "best path",
    "beam": f"prefix beam search (width {BEAM_WIDTH})",
    "framewise": "most probable phone per frame, repeats merged",
}
_PAPER_ROW = {
    "best_path": ("CTC, best path", "ctc_best_path"),
    "beam": ("CTC, prefix search", "ctc_prefix_search"),
    "framewise": ("framewise BLSTM + HMM", "framewise_hmm"),
}


def _values(g: NetSummary, split: str, decoder: str, key: str) -> list[float]:
    vals = []
    for r in g.runs:
        v = (((r.get("splits") or {}).get(split) or {}).get("labels") or {}).get(decoder) or {}
        x = v.get(key)
        if x is not None:
            vals.append(float(x))
    return vals


def _mean_sd(vals: list[float]) -> str:
    if not vals:
        return "—"
    m = sum(vals) / len(vals)
    if len(vals) == 1:
        return pct1(m)
    sd = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1))
    return f"{pct1(m)} ± {pct1(sd)}"


def comparison_rows(groups: Sequence[NetSummary]) -> list[str]:
    """The table: one row per net and decoder, test and validation PER, the paper's figure."""
    lines = [
        "| net | decoder | seeds | test PER 61 % | test PER 39 % | validation PER 61 % | "
        "test S / D / I (mean) | paper (LER 61 %) |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    for g in groups:
        decoders = [d for d in _DECODER_NAMES if _values(g, "test", d, "per")]
        for d in decoders:
            sdi = []
            for key in ("substitutions", "deletions", "insertions"):
                v = _values(g, "test", d, key)
                sdi.append(f"{sum(v) / len(v):.0f}" if v else "—")
            name, paper_key = _PAPER_ROW[d]
            lines.append(
                f"| {g.label} | {_DECODER_NAMES[d]} | {len(g.runs)} | "
                f"{_mean_sd(_values(g, 'test', d, 'per'))} | "
                f"{_mean_sd(_values(g, 'test', d, 'per39'))} | "
                f"{_mean_sd(_values(g, 'validation', d, 'per'))} | {' / '.join(sdi)} | "
                f"{name}: {pct1(PAPER_RESULTS[paper_key])} |"
            )
    return lines


def sections(groups: Sequence[NetSummary]) -> list[str]:
    """The paper's section of a report: decoded phone error rates next to its figures."""
    return [
        "## CTC against framewise BLSTM: phone error rate",
        "",
        "Phone error rate (edit distance / reference phones) of the best-on-validation "
        "weights' decoded outputs, mean ± standard deviation over seeds, on the 61 phones "
        "and on the standard 39-phone fold (each phone folded, those folding to nothing "
        "dropped). A CTC model is decoded by best path and by prefix beam search; a "
        "framewise model by taking the most probable phone per frame and merging repeats "
        "(no HMM, unlike the paper's framewise baseline). Paper figures: Graves et al. "
        "(2006), full TIMIT, 61 labels, nets of 100 blocks per direction.",
        "",
        *comparison_rows(groups),
        "",
    ]


def _no_reference(result: Mapping[str, Any]) -> None:
    """The 2005 paper's frame accuracies do not apply here."""
    return None


REPORT = PaperReport(reference=_no_reference, sections=sections, figures=())
"""The 2006 paper's part of :func:`seqprop.experiments.write_report`."""
