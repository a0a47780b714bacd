"""Peak memory of ``seqprop train`` with in-memory data, as a ratio to the file's inputs.

Writes a random training file (default 0.6 GB of float32 inputs: sequences of
2,000 frames of 26 features) and a small validation file into a temporary
directory, then runs ``seqprop train`` for one epoch of a tiny network
(``data.in_memory = true``, the default) in a child process, once with a
float32 and once with a float64 network, and reports each child's peak
resident memory (``VmHWM`` of ``/proc/self/status``, Linux) as a ratio to the training file's
``inputs`` array (N_frames x I x 4 bytes). A run on a tiny file gives the
interpreter's own baseline (Python, numpy, numba, h5py), reported too, with the
ratio of the peak above that baseline.

Targets (issue 13): peak under 1.5x the inputs for a float32 net, 2.5x for
float64. The reading happens once, in blocks; normalisation statistics are
computed in bounded blocks; the training run preprocesses in-memory sequences
batch by batch instead of keeping a second, normalised copy.

    python benchmarks/bench_memory.py [--gigabytes G] [--frames T] [--features I] [--keep DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from seqprop.config import config_from_dict, dumps_toml
from seqprop.data import write_dataset


def write_split(path: Path, n_seq: int, frames: int, n_in: int, seed: int) -> int:
    """A random split of ``n_seq`` sequences; returns the bytes of its inputs array."""
    rng = np.random.default_rng(seed)
    xs = (rng.standard_normal((frames, n_in), dtype=np.float32) for _ in range(n_seq))
    ys = (rng.integers(0, 4, size=frames) for _ in range(n_seq))
    write_dataset(path, list(xs), list(ys), class_names=["a", "b", "c", "d"], overwrite=True)
    return n_seq * frames * n_in * 4


# VmHWM (the peak resident set of this process image) rather than ru_maxrss, which
# Linux carries over from the parent across fork and exec
_CHILD = """
import sys
from seqprop.cli import main
rc = main(sys.argv[2:])
with open("/proc/self/status") as fh:
    hwm = next(line.split()[1] for line in fh if line.startswith("VmHWM:"))
with open(sys.argv[1], "w") as fh:
    fh.write(hwm)
sys.exit(rc)
"""


def peak_rss_of_train(config: Path, run_dir: Path) -> int:
    """Peak resident bytes of ``seqprop train`` in a child process (Linux: VmHWM in KiB)."""
    report = run_dir.with_suffix(".maxrss")
    cmd = [sys.executable, "-c", _CHILD, str(report), "train", str(config)]
    cmd += ["--run-dir", str(run_dir), "--no-progress", "--quiet", "--overwrite"]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0:
        raise SystemExit(f"seqprop train failed: {proc.stderr.decode(errors='replace')[-2000:]}")
    return int(report.read_text()) * 1024


def write_config(path: Path, train: Path, valid: Path, dtype: str) -> Path:
    cfg = {
        "model": {"kind": "mlp", "hidden_size": 2, "dtype": dtype},
        "data": {"train": str(train), "validation": str(valid), "in_memory": True},
        "train": {"max_epochs": 1, "batch_size": 64, "threads": 1, "progress": False},
    }
    path.write_text(dumps_toml(config_from_dict(cfg)))
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gigabytes", type=float, default=0.6, help="training inputs (0.6 GB)")
    ap.add_argument("--frames", type=int, default=2000, help="frames per sequence (2000)")
    ap.add_argument("--features", type=int, default=26, help="features per frame (26)")
    ap.add_argument("--keep", type=Path, help="write the files here and keep them")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        seq_bytes = args.frames * args.features * 4
        n_seq = max(1, int(args.gigabytes * 1e9 / seq_bytes))
        big = write_split(root / "train.h5", n_seq, args.frames, args.features, 0)
        write_split(root / "valid.h5", 4, args.frames, args.features, 1)
        write_split(root / "tiny.h5", 4, args.frames, args.features, 2)
        print(f"training inputs: {n_seq} sequences, {big / 1e9:.2f} GB")
        head = ("net", "baseline", "peak", "peak/inputs", "above/inputs")
        print("{:8s} {:>10s} {:>10s} {:>12s} {:>13s}".format(*head))
        for dtype in ("float32", "float64"):
            valid = root / "valid.h5"
            tiny = write_config(root / f"tiny-{dtype}.toml", root / "tiny.h5", valid, dtype)
            baseline = peak_rss_of_train(tiny, root / f"run-tiny-{dtype}")
            cfg = write_config(root / f"big-{dtype}.toml", root / "train.h5", valid, dtype)
            peak = peak_rss_of_train(cfg, root / f"run-big-{dtype}")
            print(
                f"{dtype:8s} {baseline / 2**20:8.0f}Mi {peak / 2**20:8.0f}Mi "
                f"{peak / big:12.2f} {(peak - baseline) / big:13.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
