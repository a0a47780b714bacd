"""Reading speed of seqprop's HDF5 sequence datasets.

Writes a random dataset (default 2,000 sequences of 200-400 frames, mean 300,
26 features, 61 classes: TIMIT-sized per sequence) into a temporary directory,
in three layouts (contiguous, chunked, gzip-compressed chunks), and prints
frames/s for opening (with the full validation scan), iterating sequences,
and iterating shuffled batches of 1 and 16 sequences, streamed from the file
and from memory. For comparison, training runs at tens of thousands of
frames/s (``benchmarks/RESULTS.md``), so reading is never the bottleneck.

    python benchmarks/bench_data.py [--sequences N] [--frames T] [--features I]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from seqprop.data import open_dataset, write_dataset


def rate(n_frames: int, seconds: float) -> str:
    return f"{n_frames / seconds / 1e6:8.2f} M frames/s"


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def consume_sequences(ds) -> int:
    n = 0
    for x, _ in ds:
        n += x.shape[0]
    return n


def consume_batches(ds, batch_size: int, **kw) -> int:
    n = 0
    for b in ds.iter_batches(batch_size, **kw):
        n += b.n_frames
    return n


def consume_getitem(ds, order) -> int:
    n = 0
    for i in order:
        n += ds[int(i)][0].shape[0]
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sequences", type=int, default=2000)
    ap.add_argument("--frames", type=int, default=300, help="mean frames per sequence")
    ap.add_argument("--features", type=int, default=26)
    ap.add_argument("--classes", type=int, default=61)
    ap.add_argument("--repeat", type=int, default=2, help="best of this many runs")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    spread = args.frames // 3
    lengths = rng.integers(args.frames - spread, args.frames + spread + 1, size=args.sequences)
    xs = [rng.normal(size=(int(n), args.features)).astype(np.float32) for n in lengths]
    ys = [rng.integers(-1, args.classes, size=int(n)) for n in lengths]
    n_frames = int(lengths.sum())
    names = [f"p{k}" for k in range(args.classes)]
    print(
        f"dataset: {args.sequences} sequences, {n_frames} frames, {args.features} features "
        f"({n_frames * args.features * 4 / 2**20:.0f} MiB of inputs)"
    )

    layouts = {
        "contiguous": {},
        "chunked": {"chunks": True},
        "gzip": {"compression": "gzip", "compression_opts": 4},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for layout, kw in layouts.items():
            path = Path(tmp) / f"{layout}.h5"
            t = timed(lambda p=path, kw=kw: write_dataset(p, xs, ys, class_names=names, **kw))
            size = path.stat().st_size / 2**20
            print(f"\n[{layout}] file {size:.0f} MiB; write_dataset {rate(n_frames, t)}")
            t = min(timed(lambda p=path: open_dataset(p).close()) for _ in range(args.repeat))
            print(f"  open + validate                  {rate(n_frames, t)}  ({t:.3f} s)")
            t = min(
                timed(lambda p=path: open_dataset(p, in_memory=True).close())
                for _ in range(args.repeat)
            )
            print(f"  open in_memory (validate + load) {rate(n_frames, t)}  ({t:.3f} s)")
            order = rng.permutation(args.sequences)
            cases = {
                "for x, y in ds": consume_sequences,
                "ds[i], random order": lambda ds, o=order: consume_getitem(ds, o),
                "iter_batches(1, shuffle)": lambda ds: consume_batches(ds, 1, shuffle=True, seed=1),
                "iter_batches(16, shuffle)": lambda ds: consume_batches(
                    ds, 16, shuffle=True, seed=1
                ),
                "iter_batches(16, buckets)": lambda ds: consume_batches(
                    ds, 16, shuffle=True, seed=1, sort_by_length=True
                ),
                "iter_batches(16) file order": lambda ds: consume_batches(ds, 16),
            }
            with open_dataset(path, in_memory=True) as mem:
                for in_memory in (False, True):
                    mode = "in memory" if in_memory else "streamed "
                    for name, fn in cases.items():
                        best = float("inf")
                        for _ in range(args.repeat):
                            # streamed: a fresh open each time, so HDF5's chunk cache starts cold
                            ds = mem if in_memory else open_dataset(path, check_values=False)
                            best = min(best, timed(lambda fn=fn, ds=ds: fn(ds)))
                            if not in_memory:
                                ds.close()
                        print(f"  {mode} {name:<28} {rate(n_frames, best)}")


if __name__ == "__main__":
    main()
