"""Record what seqprop computes, and compare two records: the check a refactoring must pass.

``record OUT.npz`` saves, for every kind x gradient mode x dtype x squashing /
activation x reduction, the loss, the flat gradient and the outputs of a
two-layer network on a fixed batch with variable lengths; and, for a BLSTM,
an MLP and a delayed LSTM trained online and in batches of 4 for four epochs
on a generated synthetic-speech corpus with fixed seeds, the final
parameters, the metrics history (without timings) and the test scores.

``compare A.npz B.npz`` reports every entry that differs by more than
``--rtol`` (default 1e-12, relative to the entry's largest value) and exits 1
if any does. Run ``record`` with the code before a change (e.g. a
``git worktree`` of the previous commit on ``PYTHONPATH``) and after it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

KINDS = ("blstm", "lstm", "brnn", "rnn", "mlp")
T, B, I, K = 9, 3, 4, 5


def _networks():
    for kind in KINDS:
        for gradient in ("full", "truncated"):
            for dtype in ("float64", "float32"):
                for variant in ("tanh", "logistic"):
                    kw = dict(gradient=gradient, dtype=dtype, random_state=3, num_layers=2)
                    if kind == "mlp":
                        kw.update(window=2, activation=variant)
                    elif kind in ("blstm", "lstm"):
                        kw.update(squash="logistic2" if variant == "logistic" else "tanh")
                    elif variant != "tanh":
                        continue  # kept as recorded before rnn/brnn had logistic units
                    yield f"{kind}-{gradient}-{dtype}-{variant}", kind, kw


def _record_passes(out: dict) -> None:
    from seqprop import make_network

    rng = np.random.default_rng(0)
    x = rng.normal(size=(T, B, I))
    lengths = np.array([9, 5, 7])
    y = rng.integers(-1, K, size=(T, B))
    for key, kind, kw in _networks():
        net = make_network(kind, I, 6, K, **kw)
        for reduction in ("sum", "mean"):
            loss, _ = net.loss_and_grad(x, y, lengths, reduction=reduction)
            out[f"{key}-{reduction}/loss"] = np.array(loss)
            out[f"{key}-{reduction}/grad"] = net.flat_gradient.copy()
        out[f"{key}/proba"] = net.predict_proba(x, lengths)


def _record_training(out: dict, directory: Path) -> None:
    import seqprop
    from seqprop.corpora.synthetic import generate_corpus

    paths = generate_corpus(
        directory / "corpus",
        seed=1,
        n_train=24,
        n_validation=8,
        n_test=8,
        n_speakers=(4, 2, 2),
        max_seconds=1.5,
    )
    timing = {"seconds", "validation_seconds", "frames_per_second"}
    for kind, extra in (("blstm", {}), ("mlp", {"window": 2}), ("lstm", {"delay": 2})):
        for batch_size in (1, 4):
            config = {
                "data": {k: str(paths[k]) for k in ("train", "validation", "test")},
                "model": {"kind": kind, "hidden_size": 8, **extra},
                "train": {
                    "learning_rate": 1e-3,
                    "max_epochs": 4,
                    "batch_size": batch_size,
                    "seed": 5,
                    "progress": False,
                },
            }
            trainer = seqprop.train(config, run_dir=directory / f"run-{kind}-{batch_size}")
            key = f"train-{kind}-{batch_size}"
            history = [{k: v for k, v in r.items() if k not in timing} for r in trainer.history]
            out[f"{key}/params"] = trainer.net.flat_parameters.copy()
            out[f"{key}/history"] = np.array(json.dumps(history, sort_keys=True))
            out[f"{key}/test"] = np.array(
                json.dumps(trainer.test_result_.to_dict(), sort_keys=True, default=str)
            )
            trainer.close()


def compare(a_path: Path, b_path: Path, rtol: float) -> int:
    a, b = np.load(a_path), np.load(b_path)
    bad = 0
    for key in a.files:
        if key not in b.files:
            print(f"{key}: missing from {b_path}")
            bad += 1
            continue
        x, y = a[key], b[key]
        if x.dtype.kind in "US":
            ax, bx = json.loads(str(x)), json.loads(str(y))
            if ax != bx:
                print(f"{key}: differs")
                bad += 1
            continue
        err = float(np.max(np.abs(x - y)) / max(float(np.max(np.abs(x))), 1e-300))
        if err > rtol:
            print(f"{key}: relative difference {err:.3g}")
            bad += 1
    print(f"compared {len(a.files)} entries: {bad} differ beyond rtol={rtol:g}")
    return 1 if bad else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("record")
    r.add_argument("out", type=Path)
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    c.add_argument("--rtol", type=float, default=1e-12)
    args = p.parse_args()
    if args.command == "compare":
        return compare(args.a, args.b, args.rtol)
    out: dict = {}
    _record_passes(out)
    with tempfile.TemporaryDirectory() as tmp:
        _record_training(out, Path(tmp))
    np.savez(args.out, **out)
    print(f"{len(out)} entries -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
