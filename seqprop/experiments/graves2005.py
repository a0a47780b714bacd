"""Graves & Schmidhuber (2005): its published figures, its findings, its report sections.

"Framewise phoneme classification with bidirectional LSTM and other neural
network architectures" (Neural Networks 18, 2005) compares BLSTM, BRNN, LSTM
and RNN with target delays of 0-10 frames and MLPs with time windows of 0-10
frames (section 5) on framewise phoneme classification of TIMIT (61 classes),
and reports test accuracies and training epochs (section 6). This module holds
what is specific to that paper: :data:`PAPER_RESULTS`, the paper's
qualitative findings checked on a grid's results (:func:`findings`), its
comparison table and its figures (accuracy against future context, learning
curves), and the comparison of variants of a grid (:func:`compare_variants`:
the paper's logistic units against tanh ones), assembled as :data:`REPORT`
for :func:`seqprop.experiments.write_report`. The grids that reproduce it are
``experiments/configs/{small,full}/grid.toml`` with the paper's unit functions
and ``experiments/configs/{small,full}-tanh/grid.toml`` with tanh
(``experiments/README.md``).
A later paper gets a module of its own beside this one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqprop.experiments.figures import Figure, pyplot, save
from seqprop.experiments.markdown import nets_table, pct, pm
from seqprop.experiments.report import PaperReport
from seqprop.experiments.results import (
    NetSummary,
    best_by_validation,
    mean_curve,
    nets_of,
    sweep,
)

__all__ = [
    "PAPER_RESULTS",
    "REPORT",
    "Finding",
    "compare_variants",
    "curve_nets",
    "findings",
    "main_nets",
    "paper_figures",
]

PAPER_RESULTS: tuple[dict[str, Any], ...] = (
    {"kind": "blstm", "gradient": "full", "test": "69.8-70.2", "epochs": "~20"},
    {"kind": "brnn", "test": "69.0", "epochs": "100+"},
    {"kind": "lstm", "delay": 0, "test": "64.6"},
    {"kind": "lstm", "delay": 5, "test": "66.0"},
    {"kind": "rnn", "delay": 3, "test": "65.2", "epochs": "100+"},
    {"kind": "mlp", "window": 10, "test": "63.1"},
)
"""Published framewise test accuracy (%, TIMIT, 61 classes) and epochs to the
best validation score (Graves & Schmidhuber 2005, section 6); keyed by the
model settings they belong to."""


def paper_figures(result: Mapping[str, Any]) -> dict[str, Any] | None:
    """The :data:`PAPER_RESULTS` entry for a run's model settings, if any."""
    if result.get("reverse") or result.get("class_weighting", "none") != "none":
        return None  # the backwards LSTM and the class-weighted BLSTM: no figure quoted here
    for entry in PAPER_RESULTS:
        if all(result.get(k) == v for k, v in entry.items() if k not in ("test", "epochs")):
            return entry
    return None


# ===================================================================== findings
@dataclass
class Finding:
    """One of the paper's qualitative findings, checked on the results."""

    claim: str
    verdict: str  # "holds", "holds weakly", "holds in part", "does not hold", "not tested"
    evidence: str


def findings(groups: Sequence[NetSummary]) -> list[Finding]:
    """Check the paper's qualitative findings on aggregated results.

    0. LSTM beats the plain RNN: BLSTM vs BRNN, LSTM vs RNN at delay 0 (test
       accuracy).
    1. Bidirectional nets beat unidirectional ones at zero delay (BLSTM vs
       LSTM delay 0, BRNN vs RNN delay 0; test accuracy).
    2. A target delay helps unidirectional nets up to a few frames: the best
       delay (chosen on validation) is between 1 and 6 frames and beats delay 0
       on the test set.
    3. LSTM converges in far fewer epochs than the plain RNNs (best epoch,
       averaged over every delay; "far" = at least twice as fast).
    4. MLPs need a time window: the best window (chosen on validation) beats
       no window on the test set.

    "holds" when the difference exceeds its seed-to-seed standard error,
    "holds weakly" when it has the right sign only.
    """
    return [
        _lstm_finding(groups),
        _bidirectional_finding(groups),
        _delay_finding(groups),
        _convergence_finding(groups),
        _window_finding(groups),
    ]


def _lstm_finding(groups: Sequence[NetSummary]) -> Finding:
    parts, verdicts = [], []
    for a, b, aname, bname, params in (
        ("blstm", "brnn", "BLSTM", "BRNN", {}),
        ("lstm", "rnn", "LSTM (delay 0)", "RNN (delay 0)", {"delay": 0}),
    ):
        ga, gb = nets_of(groups, a, **params), nets_of(groups, b, **params)
        if not ga or not gb:
            continue
        ga, gb = ga[0], gb[0]
        diff = ga.mean("test") - gb.mean("test")
        noise = _noise(ga, gb)
        verdicts.append(_verdict(diff, noise))
        parts.append(
            f"{aname} {pm(ga, 'test')} vs {bname} {pm(gb, 'test')}: {_points(diff, noise)}"
        )
    return Finding(
        "LSTM beats the plain RNN (BLSTM > BRNN, LSTM > RNN)",
        _combine(verdicts),
        "; ".join(parts) if parts else "needs BLSTM and BRNN, or LSTM and RNN at delay 0",
    )


def _points(diff: float, noise: float) -> str:
    """A difference of test accuracies in points, with its standard error and their ratio."""
    text = f"{100 * diff:+.1f} points (standard error {100 * noise:.1f}"
    return text + (f", {diff / noise:+.1f} SE)" if noise > 0 else ")")


def _bidirectional_finding(groups: Sequence[NetSummary]) -> Finding:
    parts, verdicts = [], []
    for bi, uni, bname, uname in (
        ("blstm", "lstm", "BLSTM", "LSTM"),
        ("brnn", "rnn", "BRNN", "RNN"),
    ):
        b = nets_of(groups, bi)
        u = nets_of(groups, uni, delay=0)
        if not b or not u:
            continue
        b, u = b[0], u[0]
        diff = b.mean("test") - u.mean("test")
        noise = _noise(b, u)
        verdicts.append(_verdict(diff, noise))
        parts.append(
            f"{bname} {pm(b, 'test')} vs {uname} (delay 0) {pm(u, 'test')}: {_points(diff, noise)}"
        )
    return Finding(
        "Bidirectional nets beat unidirectional ones at zero delay",
        _combine(verdicts),
        "; ".join(parts) if parts else "needs BLSTM/BRNN and LSTM/RNN with delay 0",
    )


def _delay_finding(groups: Sequence[NetSummary]) -> Finding:
    parts, verdicts = [], []
    for kind, name in (("lstm", "LSTM"), ("rnn", "RNN")):
        delays = sweep(groups, kind, "delay")
        zero = [g for g in delays if g.first.get("delay") == 0]
        if len(delays) < 2 or not zero:
            continue
        zero_g = zero[0]
        best = best_by_validation(delays)
        d = best.first.get("delay")
        diff = best.mean("test") - zero_g.mean("test")
        noise = _noise(best, zero_g)
        verdicts.append(_verdict(diff, noise) if 1 <= d <= 6 else "does not hold")
        curve = ", ".join(f"{g.first.get('delay')}: {100 * g.mean('test'):.1f}" for g in delays)
        last = delays[-1]
        vdiff = best.mean("validation") - zero_g.mean("validation")
        parts.append(
            f"{name}: best delay on validation {d} frames ({100 * vdiff:+.1f} points over "
            f"delay 0 there), test {pm(best, 'test')} vs "
            f"{pm(zero_g, 'test')} at delay 0 ({100 * diff:+.1f} points, standard error "
            f"{100 * noise:.1f}), {pm(last, 'test')} at the longest delay "
            f"({last.first.get('delay')}); test accuracy by delay {{{curve}}}"
        )
    return Finding(
        "A target delay helps unidirectional nets, up to a few frames",
        _combine(verdicts),
        "; ".join(parts) if parts else "needs LSTM/RNN delay sweeps including delay 0",
    )


_EARLY_EPOCH = 5


def _convergence_finding(groups: Sequence[NetSummary]) -> Finding:
    def runs(kind: str) -> list[dict[str, Any]]:
        return [r for g in nets_of(groups, kind) for r in g.runs]

    parts, verdicts = [], []
    for an, bn in (("LSTM", "RNN"), ("BLSTM", "BRNN")):
        a, b = runs(an.lower()), runs(bn.lower())
        if not a or not b:
            continue
        ea, sea = _mean_se([r["best_epoch"] for r in a])
        eb, seb = _mean_se([r["best_epoch"] for r in b])
        capped = sum(bool(r.get("capped")) for r in b)
        ratio = eb / ea if ea > 0 else float("inf")
        verdicts.append("holds" if ratio >= 2 else "holds weakly" if ratio > 1 else "does not hold")
        early_a, early_b = _early_error(a), _early_error(b)
        parts.append(
            f"{an} best epoch {_pm_num(ea, sea)} (mean ± standard error over {len(a)} runs) "
            f"vs {bn} {_pm_num(eb, seb)} over {len(b)} runs (ratio {ratio:.2f})"
            + (f"; {capped} {bn} runs stopped at max_epochs" if capped else "")
            + (
                f"; training frame error in epoch {_EARLY_EPOCH}: {an} {pct(early_a)}, "
                f"{bn} {pct(early_b)}"
                if not (math.isnan(early_a) or math.isnan(early_b))
                else ""
            )
        )
    return Finding(
        "LSTM converges in far fewer epochs than plain RNNs",
        _combine(verdicts),
        "; ".join(parts) if parts else "needs LSTM and RNN runs",
    )


def _window_finding(groups: Sequence[NetSummary]) -> Finding:
    windows = sweep(groups, "mlp", "window")
    zero = [g for g in windows if g.first.get("window") == 0]
    if len(windows) < 2 or not zero:
        return Finding("MLPs need a time window", "not tested", "needs an MLP window sweep with 0")
    best = best_by_validation(windows)
    diff = best.mean("test") - zero[0].mean("test")
    noise = _noise(best, zero[0])
    w = best.first.get("window")
    curve = ", ".join(f"{g.first.get('window')}: {100 * g.mean('test'):.1f}" for g in windows)
    vdiff = best.mean("validation") - zero[0].mean("validation")
    return Finding(
        "MLPs need a time window",
        _verdict(diff, noise) if w > 0 else "does not hold",
        f"best window on validation {w} frames either side ({100 * vdiff:+.1f} points "
        f"over no window there), test {pm(best, 'test')} vs "
        f"{pm(zero[0], 'test')} without a window ({100 * diff:+.1f} points, standard "
        f"error {100 * noise:.1f}); test accuracy by window {{{curve}}}",
    )


def _pm_num(mean: float, se: float) -> str:
    """``mean ± se`` with one decimal; the mean alone when ``se`` is unknown (one run)."""
    return f"{mean:.1f}" if math.isnan(se) else f"{mean:.1f} ± {se:.1f}"


def _mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (NaN with fewer than two values)."""
    n = len(values)
    m = sum(values) / n
    if n < 2:
        return m, float("nan")
    var = sum((v - m) ** 2 for v in values) / (n - 1)
    return m, math.sqrt(var / n)


def _noise(a: NetSummary, b: NetSummary, what: str = "test") -> float:
    """Seed-to-seed spread of a difference of means (0 when unknown)."""
    sa, sb = a.std(what), b.std(what)
    terms = [s * s / len(g.values(what)) for s, g in ((sa, a), (sb, b)) if not math.isnan(s)]
    return math.sqrt(sum(terms)) if terms else 0.0


def _verdict(diff: float, noise: float) -> str:
    if diff > 0 and diff > noise:
        return "holds"
    if diff > 0:
        return "holds weakly"
    return "does not hold"


def _combine(verdicts: list[str]) -> str:
    if not verdicts:
        return "not tested"
    if all(v == "holds" for v in verdicts):
        return "holds"
    if all(v == "does not hold" for v in verdicts):
        return "does not hold"
    if any(v == "does not hold" for v in verdicts):
        return "holds in part"
    return "holds weakly"


def _early_error(runs: Sequence[Mapping[str, Any]]) -> float:
    """Mean training frame error in epoch 5 (how fast training starts)."""
    vals = []
    for r in runs:
        curve = r.get("curve") or []
        if (
            len(curve) >= _EARLY_EPOCH
            and curve[_EARLY_EPOCH - 1].get("train_frame_error") is not None
        ):
            vals.append(float(curve[_EARLY_EPOCH - 1]["train_frame_error"]))
    return sum(vals) / len(vals) if vals else float("nan")


# ===================================================================== the nets shown
def main_nets(groups: Sequence[NetSummary]) -> list[NetSummary]:
    """The nets of the paper's main comparison: BLSTM, BRNN, LSTM and RNN at delay 0
    and at their best delay (validation), MLP without a window and at its best window,
    LSTM backwards, BLSTM with the class-weighted error, BLSTM truncated."""
    chosen: list[NetSummary] = []

    def add(g: NetSummary | None) -> None:
        if g is not None and g not in chosen:
            chosen.append(g)

    for kind in ("blstm", "brnn"):
        for g in nets_of(groups, kind):
            add(g)
    for kind, key in (("lstm", "delay"), ("rnn", "delay"), ("mlp", "window")):
        settings = sweep(groups, kind, key)
        add(next((g for g in settings if g.first.get(key) == 0), None))
        add(best_by_validation(settings))
    for g in nets_of(groups, "lstm", reverse=True):
        add(g)
    for g in nets_of(groups, "blstm", class_weighting="inverse_frequency"):
        add(g)
    for g in groups:
        if g.first.get("gradient") == "truncated":
            add(g)
    return chosen


def curve_nets(groups: Sequence[NetSummary]) -> list[NetSummary]:
    """The nets of the learning-curve figure: BLSTM, BRNN (full gradient), LSTM and RNN
    at their best delay, MLP at its best window (both chosen on validation)."""
    chosen = [g for kind in ("blstm", "brnn") for g in nets_of(groups, kind)]
    for kind, key in (("lstm", "delay"), ("rnn", "delay"), ("mlp", "window")):
        best = best_by_validation(sweep(groups, kind, key))
        if best is not None:
            chosen.append(best)
    return chosen


# ===================================================================== figures
def context_figure(groups: Sequence[NetSummary], path: Path) -> bool:
    """Test accuracy against frames of future context: LSTM and RNN by target delay,
    MLP by half-window, the bidirectional nets as horizontal lines."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    drew = False
    for kind, key, name, style in (
        ("lstm", "delay", "LSTM (target delay)", "o-"),
        ("rnn", "delay", "RNN (target delay)", "s-"),
        ("mlp", "window", "MLP (window either side)", "^-"),
    ):
        settings = sweep(groups, kind, key)
        if not settings:
            continue
        x = [g.first.get(key) for g in settings]
        y = [100 * g.mean("test") for g in settings]
        e = [0.0 if math.isnan(g.std("test")) else 100 * g.std("test") for g in settings]
        ax.errorbar(x, y, yerr=e, fmt=style, capsize=3, label=name)
        drew = True
    colors = iter(["black", "tab:gray", "tab:purple"])
    for g in groups:
        if g.first.get("kind") in ("blstm", "brnn"):
            trunc = g.first.get("gradient") == "truncated"
            ax.axhline(
                100 * g.mean("test"),
                linestyle=":" if trunc else "--",
                color=next(colors, "tab:brown"),
                label=g.label,
            )
            drew = True
    if not drew:
        plt.close(fig)
        return False
    ax.set_xlabel("frames of future context (target delay, or MLP half-window)")
    ax.set_ylabel("test frame accuracy (%)")
    ax.set_title("Test frame accuracy vs future context (mean ± sd over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    save(fig, path)
    return True


def curves_figure(groups: Sequence[NetSummary], path: Path) -> bool:
    """The paper's learning-curve figure: frame accuracy per epoch of :func:`curve_nets`
    (BLSTM, BRNN, LSTM, RNN, MLP) on one axis, epochs on a log scale; training set
    (measured during each epoch) solid, validation set dashed; mean over seeds."""
    nets = curve_nets(groups)
    if not nets:
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    cmap = plt.get_cmap("tab10")
    drew = False
    for i, g in enumerate(nets):
        color = cmap(i % 10)
        for what, style, suffix in (
            ("train_frame_error", "-", "training"),
            ("validation_frame_error", "--", "validation"),
        ):
            xs, ys = mean_curve(g, what)
            if not xs:
                continue
            ax.plot(
                xs, [100 * (1 - y) for y in ys], style, color=color, lw=1.5,
                label=f"{g.label} ({suffix})",
            )  # fmt: skip
            drew = True
            if what == "validation_frame_error":
                best = g.values("best_epoch")
                b = round(sum(best) / len(best)) if best else 0
                if 1 <= b <= len(xs):
                    ax.plot([xs[b - 1]], [100 * (1 - ys[b - 1])], "o", color=color, ms=5)
    if not drew:
        plt.close(fig)
        return False
    ax.set_xscale("log")
    ax.set_xlabel("epoch (log scale)")
    ax.set_ylabel("frame accuracy (%), mean over seeds")
    ax.set_title("Learning curves (solid: training set, dashed: validation; dot: mean best epoch)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="lower right", ncol=2)
    save(fig, path)
    return True


# ===================================================================== report sections
def sections(groups: Sequence[NetSummary]) -> list[str]:
    """The paper's sections of a report: the main comparison and the findings."""
    lines = [
        "## Main comparison",
        "",
        "Best delay and window chosen on the validation set. Frame accuracy (%) of the "
        "best-on-validation weights; paper figures: TIMIT, full-size nets (docs/NOTES.md, reference figures).",
        "",
        *nets_table(main_nets(groups), paper_figures),
        "",
        "## Qualitative findings of the paper, checked on these runs",
        "",
    ]
    for f in findings(groups):
        lines.append(f"- **{f.claim}: {f.verdict}.** {f.evidence}.")
    lines += ["", *_VERDICT_NOTE, ""]
    return lines


def compare_variants(variants: Sequence[tuple[str, Sequence[NetSummary]]]) -> list[str]:
    """The paper's comparison and findings side by side for variants of the grid
    (e.g. the paper's logistic units and the modern tanh ones)."""
    names = [name for name, _ in variants]
    lines = [
        "## Variants compared: " + ", ".join(f"**{n}**" for n in names),
        "",
        "Frame accuracy (%) of the best-on-validation weights on the training and test "
        "sets, class-averaged test accuracy, and the epoch of the best validation score "
        "(mean ± standard deviation over seeds; best delay and window chosen on each "
        "variant's validation set). The full tables of the other variants are in their "
        "own reports.",
        "",
        "| net | "
        + " | ".join(f"{n}: train % | test % | class-avg % | best epoch" for n in names)
        + " |",
        "|---|" + "---:|---:|---:|---:|" * len(names),
    ]
    rows: list[str] = []
    for _, groups in variants:
        for g in main_nets(groups):
            if g.key not in rows:
                rows.append(g.key)
    by_key = [{g.key: g for g in groups} for _, groups in variants]
    for key in rows:
        label = next(d[key].label for d in by_key if key in d)
        cells = []
        for d in by_key:
            g = d.get(key)
            if g is None:
                cells.append("n/a | n/a | n/a | n/a")
                continue
            be = g.values("best_epoch")
            bes = f"{sum(be) / len(be):.0f}" + (f" ± {_std(be):.0f}" if len(be) > 1 else "")
            cells.append(
                f"{pm(g, 'train')} | {pm(g, 'test')} | "
                f"{pm(g, 'test.class_averaged_accuracy')} | {bes}"
            )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "The paper's findings in each variant:", ""]
    per_variant = [findings(groups) for _, groups in variants]
    for i, first in enumerate(per_variant[0]):
        lines.append(f"- **{first.claim}**")
        for name, fs in zip(names, per_variant, strict=True):
            lines.append(f"  - {name}: **{fs[i].verdict}**. {fs[i].evidence}.")
    lines += ["", *_VERDICT_NOTE, ""]
    return lines


def _std(values: Sequence[float]) -> float:
    m = sum(values) / len(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


_VERDICT_NOTE = (
    '"holds": the difference has the paper\'s sign and exceeds one standard error of the '
    'difference (from the seed-to-seed spread); "holds weakly": right sign, within one '
    'standard error; "holds in part": some of the comparisons do not hold. One standard '
    "error is a weak criterion, not a significance test: with 2-5 seeds per net the "
    "standard errors are themselves rough (1-4 degrees of freedom), and a difference of "
    "less than about 3 standard errors could be seed noise.",
)


REPORT = PaperReport(
    reference=paper_figures,
    sections=sections,
    compare=compare_variants,
    figures=(
        Figure("context", "test accuracy vs context", context_figure),
        Figure("learning_curves", "learning curves", curves_figure),
    ),
)
"""The paper's part of :func:`seqprop.experiments.write_report` (its default)."""
