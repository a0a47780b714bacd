"""``seqprop demo``: the paper's main comparison in miniature, offline, in about a minute.

Generates the synthetic speech corpus (:mod:`seqprop.corpora.synthetic`),
trains a bidirectional LSTM and a unidirectional LSTM of about the same
number of weights with the paper's training procedure (online gradient
descent with momentum, early stopping on the validation split), scores both
on the test split and prints a table. On this corpus, as on TIMIT in the
paper, the future context a BLSTM sees makes it the better classifier.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

MARKER = ".seqprop-demo"

# name, config overrides; chosen so that each trains in about a minute on one core
FULL = {
    "corpus": {"n_train": 200, "n_validation": 50, "n_test": 50},
    "nets": [
        ("BLSTM", {"kind": "blstm", "hidden_size": 64}),
        ("LSTM", {"kind": "lstm", "hidden_size": 96}),
    ],
    "train": {"learning_rate": 1e-4, "max_epochs": 40, "n_iter_no_change": 5},
}
QUICK = {
    "corpus": {
        "n_train": 16,
        "n_validation": 4,
        "n_test": 4,
        "n_speakers": (2, 1, 1),
        "min_seconds": 0.5,
        "max_seconds": 0.8,
    },
    "nets": [
        ("BLSTM", {"kind": "blstm", "hidden_size": 6}),
        ("LSTM", {"kind": "lstm", "hidden_size": 9}),
    ],
    "train": {"learning_rate": 1e-3, "max_epochs": 2, "n_iter_no_change": 2},
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` subcommand."""
    p = subparsers.add_parser(
        "demo",
        help="generate a synthetic corpus, train a BLSTM and an LSTM, compare them",
        description=(
            "Offline demonstration (under a minute on 2 cores once installed): generate the synthetic speech "
            "corpus, train a bidirectional and a unidirectional LSTM with early stopping, "
            "evaluate both on the test split, print a table and save learning curves "
            "(PNG, when matplotlib is installed)."
        ),
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        default="seqprop-demo",
        help="output directory (default: ./seqprop-demo; a previous demo there is replaced)",
    )
    p.add_argument(
        "--quick", action="store_true", help="a seconds-long smoke version (tiny corpus and nets)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of corpus and training (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run_demo)


def _prepare_out(out: Path) -> None:
    from seqprop.errors import ConfigError

    if out.exists():
        if not out.is_dir():
            raise ConfigError(f"--out {out} exists and is not a directory")
        if any(out.iterdir()):
            if not (out / MARKER).exists():
                raise ConfigError(
                    f"--out {out} is a non-empty directory that is not a previous demo's; "
                    "choose another --out"
                )
            for name in ("data", "runs"):
                if (out / name).is_dir():
                    shutil.rmtree(out / name)
            for name in ("results.json", "learning_curves.png"):
                (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by seqprop demo; rerunning the demo replaces this folder\n")


def _plot(results: list[dict[str, Any]], path: Path) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "skipped (matplotlib is not installed: pip install 'seqprop[plot]')"
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for r, color in zip(results, ("tab:blue", "tab:red", "tab:green"), strict=False):
        epochs = [h["epoch"] for h in r["history"]]
        for ax, key in ((axes[0], "loss"), (axes[1], "frame_error")):
            ax.plot(
                epochs,
                [h[f"train_{key}"] for h in r["history"]],
                color=color,
                label=f"{r['net']} train",
            )
            ax.plot(
                epochs,
                [h[f"validation_{key}"] for h in r["history"]],
                "--",
                color=color,
                label=f"{r['net']} validation",
            )
    axes[0].set_ylabel("cross-entropy per frame")
    axes[1].set_ylabel("frame error")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("seqprop demo: synthetic speech, framewise phone classification")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    tmp.replace(path)
    return str(path)


def _epoch_printer(name: str) -> Any:
    """A callback printing a line per epoch of net ``name``."""
    from seqprop.training import Callback

    class _Epochs(Callback):
        def on_train_begin(self, trainer) -> None:
            from seqprop.kernels.cache import cache_is_cold

            if cache_is_cold():
                print("  compiling kernels (first run only)...", flush=True)

        def on_epoch_end(self, trainer, r) -> None:
            print(
                f"  {name} epoch {r['epoch']:2d}: train error {r['train_frame_error']:.3f}"
                f"  validation error {r['validation_frame_error']:.3f}"
                f"{'  (best)' if r['best'] else ''}",
                flush=True,
            )

    return _Epochs()


def _train_net(name: str, model: dict, files: dict, plan: dict, args, out: Path) -> dict:
    """Train one net of the demo and return its row of the results."""
    from seqprop.training import Trainer

    config = {
        "model": {**model, "dtype": "float32"},
        "data": {
            "train": str(files["train"]),
            "validation": str(files["validation"]),
            "test": str(files["test"]),
        },
        "train": {**plan["train"], "seed": args.seed, "progress": not args.no_progress},
    }
    run_dir = out / "runs" / name.lower()
    print(
        f"training {name} ({model['kind']}, {model['hidden_size']} blocks"
        f"{' per direction' if model['kind'] == 'blstm' else ''}) -> {run_dir}",
        flush=True,
    )
    t0 = time.perf_counter()
    with Trainer(config, run_dir=run_dir, callbacks=[_epoch_printer(name)]) as trainer:
        trainer.fit()
    test = trainer.test_result_
    return {
        "net": name,
        "kind": model["kind"],
        "hidden_size": model["hidden_size"],
        "parameters": trainer.net.num_parameters,
        "epochs": trainer.n_epochs_,
        "best_epoch": trainer.best_epoch_,
        "validation_accuracy": 1.0 - trainer.best_score_,
        "test_accuracy": test.frame_accuracy,
        "test_majority_accuracy": test.majority_accuracy,
        "test_frames": test.n_frames,
        "seconds": time.perf_counter() - t0,
        "run_dir": str(run_dir),
        "history": trainer.history,
    }


def _print_table(results: list[dict[str, Any]], quick: bool) -> None:
    print()
    header = (
        f"{'net':<6} {'hidden':>8} {'parameters':>10} {'epochs':>6} {'best':>5} "
        f"{'valid acc':>9} {'test acc':>9} {'seconds':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        hidden = f"{r['hidden_size']}x2" if r["kind"] == "blstm" else str(r["hidden_size"])
        print(
            f"{r['net']:<6} {hidden:>8} {r['parameters']:>10} {r['epochs']:>6} "
            f"{r['best_epoch']:>5} {r['validation_accuracy']:>9.4f} {r['test_accuracy']:>9.4f} "
            f"{r['seconds']:>8.1f}"
        )
    print(
        f"(test split: {results[0]['test_frames']} frames; always answering the most "
        f"frequent class scores {results[0]['test_majority_accuracy']:.4f})"
    )
    blstm, lstm = results[0], results[1]
    diff = blstm["test_accuracy"] - lstm["test_accuracy"]
    if diff > 0:
        verdict = f"BLSTM beats LSTM by {diff * 100:.1f} points of test frame accuracy"
    else:
        verdict = f"BLSTM does not beat LSTM here ({diff * 100:+.1f} points of test accuracy)"
    print(verdict + (" (--quick: far too small to mean anything)" if quick else ""))


def run_demo(args: argparse.Namespace) -> int:
    from seqprop.checkpoint import json_clean, write_text_atomic
    from seqprop.corpora.synthetic import generate_corpus

    plan = QUICK if args.quick else FULL
    out = Path(args.out)
    _prepare_out(out)
    total0 = time.perf_counter()

    t0 = time.perf_counter()
    print(f"generating the synthetic speech corpus in {out / 'data'} ...", flush=True)
    files = generate_corpus(
        out / "data",
        seed=args.seed,
        overwrite=True,
        progress=not args.no_progress,
        **plan["corpus"],
    )
    print(f"  done in {time.perf_counter() - t0:.1f}s", flush=True)
    results = [_train_net(name, model, files, plan, args, out) for name, model in plan["nets"]]
    _print_table(results, args.quick)
    png = _plot(results, out / "learning_curves.png")
    print(f"learning curves: {png}")
    summary = {
        "quick": bool(args.quick),
        "seed": args.seed,
        "seconds": time.perf_counter() - total0,
        "nets": [{k: v for k, v in r.items() if k != "history"} for r in results],
    }
    write_text_atomic(out / "results.json", json.dumps(json_clean(summary), indent=1) + "\n")
    print(f"results: {out / 'results.json'}; total {summary['seconds']:.0f}s")
    sys.stdout.flush()
    return 0
