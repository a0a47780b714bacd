"""Estimate the running time of the full-size grid from a short measurement.

Trains each full-size net of ``experiments/configs/full/`` (the paper's unit
functions; ``--configs experiments/configs/full-tanh`` for the tanh variant) for
two epochs on a
small dataset (default: the TIMIT sample prepared by ``run_sample.sh``),
measures training and evaluation frames per second with the grid's settings
(one thread per run), and scales to TIMIT: 3,512 training utterances of about
1.12M frames, 184 validation utterances (about 57k frames) evaluated after every
epoch.

    python experiments/estimate_time.py [--data data/timit-sample] [--threads 1]
                                        [--nets blstm,lstm,...] [--configs DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FULL = HERE / "configs" / "full"
TIMIT_TRAIN_FRAMES = 1_124_823  # 3,696 TRAIN SI/SX utterances minus 184, ~320 frames each
TIMIT_VALID_FRAMES = 57_000
NETS = ("blstm", "blstm_truncated", "lstm", "brnn", "rnn", "mlp")
# epochs a run may take: best epoch as published (BLSTM/LSTM about 20, the RNNs
# 100+; experiments/README.md) plus the 20 epochs of patience of the full-size configs
EPOCH_GUESS = {"blstm": 40, "blstm_truncated": 40, "lstm": 40, "brnn": 120, "rnn": 120}


def measure(name: str, data: Path, threads: int, configs: Path = FULL) -> dict:
    from seqprop.config import load_config
    from seqprop.training import Trainer

    cfg = load_config(
        configs / f"{name}.toml",
        [
            f'data.train="{data / "train.h5"}"',
            f'data.validation="{data / "validation.h5"}"',
            "train.max_epochs=2",
            f"train.threads={threads}",
            "train.progress=false",
        ],
    )
    cfg.data.test = None
    with tempfile.TemporaryDirectory() as tmp:
        # epoch 1 pays numba's compilation (or cache load); epoch 2 is timed
        trainer = Trainer(cfg, run_dir=Path(tmp) / "run").fit()
    rec = trainer.history[-1]
    return {
        "net": name,
        "weights": trainer.net.num_parameters,
        "train_fps": rec["train_frames"] / rec["seconds"],
        "eval_fps": rec["validation_frames"] / max(rec["validation_seconds"], 1e-9),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path("data/timit-sample"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--nets", default=",".join(NETS))
    p.add_argument("--configs", type=Path, default=FULL, help="directory of the nets' configs")
    args = p.parse_args()
    rows = []
    t0 = time.perf_counter()
    for name in args.nets.split(","):
        r = measure(name, args.data, args.threads, args.configs)
        epoch = TIMIT_TRAIN_FRAMES / r["train_fps"] + TIMIT_VALID_FRAMES / r["eval_fps"]
        r["epoch_seconds"] = epoch
        rows.append(r)
        print(
            f"{name:<16} {r['weights']:>7,} weights  train {r['train_fps']:>8,.0f} frames/s  "
            f"eval {r['eval_fps']:>8,.0f} frames/s  -> TIMIT epoch {epoch / 60:5.1f} min",
            flush=True,
        )
    print()
    print(
        "| net | weights | training frames/s | evaluation frames/s | TIMIT epoch | run (epochs) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        n = EPOCH_GUESS.get(r["net"])
        run = f"{n * r['epoch_seconds'] / 3600:.1f} h ({n})" if n else "see text"
        print(
            f"| {r['net']} | {r['weights']:,} | {r['train_fps']:,.0f} | {r['eval_fps']:,.0f} | "
            f"{r['epoch_seconds'] / 60:.1f} min | {run} |"
        )
    print(f"\nmeasured in {time.perf_counter() - t0:.0f} s with {args.threads} thread(s) per run")


if __name__ == "__main__":
    main()
