"""A/B speed comparison of two seqprop checkouts, measured in one run.

A refactoring must keep speed. This script runs the training step of
``seqprop bench`` (``seqprop.bench.training_step``: loss, gradient and the
momentum update on TIMIT-shaped random data) for every net, dtype and mode,
in child processes that import seqprop from checkout A or checkout B, taking
turns (A B B A ...) so that slow phases of a shared machine hit both alike.

Each child holds seqprop, BLAS and numba to one thread and reports the
**CPU time** per frame (``time.process_time``) next to the wall time: on a
loaded machine CPU time measures the work a step does, which is what a
refactoring may change, while wall time mostly measures the neighbours.

Usage::

    python benchmarks/bench_ab.py --a /path/to/old/checkout --b . [--rounds 4]
        [--nets blstm,lstm,brnn,rnn,mlp] [--dtypes float64,float32]
        [--modes online,batch16] [--threads 1|2] [--seconds 0.5] [--json out.json]

``--threads 2`` compares the wall time of the default two-thread step instead
(a quiet machine is needed: another process on a core disturbs it).

Prints, per configuration, the median CPU microseconds per frame of A and B
and the ratio B/A (below 1: B is faster), with the spread over rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

DTYPES = ("float64", "float32")
MODES = ("online", "batch16")


def _child(nets: list[str], seconds: float, threads: int = 1, dtypes=DTYPES, modes=MODES) -> None:
    """Measure every configuration once; print one JSON object."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    import seqprop
    from seqprop import bench
    from seqprop.network import make_network

    seqprop.set_num_threads(threads)
    out = {}
    with threadpool_limits(limits=1):
        for kind in nets:
            for dtype in dtypes:
                for mode in modes:
                    window = bench.MLP_WINDOW if kind == "mlp" else 0
                    net = make_network(
                        kind,
                        26,
                        bench.PAPER_SIZES[kind],
                        61,
                        window=window,
                        dtype=dtype,
                        random_state=0,
                    )
                    batches = (
                        [bench.make_online_data(dtype)]
                        if mode == "online"
                        else bench.make_batches(dtype)
                    )
                    frames = float(np.mean([b[2].sum() for b in batches]))
                    step = bench.training_step(net, batches)
                    step()  # compile or load the cache, warm up
                    n, c0, w0 = 0, time.process_time(), time.perf_counter()
                    while True:
                        step()
                        n += 1
                        if time.perf_counter() - w0 >= seconds:
                            break
                    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
                    out[f"{kind} {dtype} {mode}"] = {
                        "cpu_us_per_frame": 1e6 * cpu / (n * frames),
                        "wall_us_per_frame": 1e6 * wall / (n * frames),
                    }
    print(json.dumps(out))


def _run(tree: Path, nets: list[str], seconds: float, extra: list[str]) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree))
    child = ["--child", "--nets", ",".join(nets), "--seconds", str(seconds), *extra]
    proc = subprocess.run(
        [sys.executable, __file__, *child],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=tree,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--a", type=Path, help="checkout A (e.g. the commit before a refactoring)")
    p.add_argument("--b", type=Path, default=Path("."), help="checkout B (default: here)")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--nets", default="blstm,lstm,brnn,rnn,mlp")
    p.add_argument("--seconds", type=float, default=0.5)
    p.add_argument("--dtypes", default=",".join(DTYPES))
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument(
        "--threads",
        type=int,
        choices=(1, 2),
        default=1,
        help="1 (default): CPU time per frame on one thread; 2: wall time per frame with "
        "seqprop's two threads (needs a quiet machine)",
    )
    p.add_argument("--json", type=Path)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    nets = args.nets.split(",")
    dtypes, modes = args.dtypes.split(","), args.modes.split(",")
    if args.child:
        _child(nets, args.seconds, args.threads, dtypes, modes)
        return
    if args.a is None:
        p.error("--a is required")
    trees = {"A": args.a.resolve(), "B": args.b.resolve()}
    runs: dict[str, list[dict]] = {"A": [], "B": []}
    for r in range(args.rounds):
        for name in ("A", "B") if r % 2 == 0 else ("B", "A"):
            extra = ["--threads", str(args.threads), "--dtypes", args.dtypes, "--modes", args.modes]
            runs[name].append(_run(trees[name], nets, args.seconds, extra))
    rows = []
    metric = "cpu_us_per_frame" if args.threads == 1 else "wall_us_per_frame"
    what = "CPU us/frame, one thread" if args.threads == 1 else "wall us/frame, two threads"
    print(f"A = {trees['A']}\nB = {trees['B']}\n{what}, median of {args.rounds}")
    print(f"{'net dtype mode':<24} {'A':>8} {'B':>8} {'B/A':>6}  (B/A per round: min-max)")
    for key in runs["A"][0]:
        a = [r[key][metric] for r in runs["A"]]
        b = [r[key][metric] for r in runs["B"]]
        per_round = [y / x for x, y in zip(a, b, strict=True)]
        ratio = statistics.median(b) / statistics.median(a)
        rows.append({"config": key, "a": a, "b": b, "ratio": ratio})
        print(
            f"{key:<24} {statistics.median(a):8.2f} {statistics.median(b):8.2f} {ratio:6.3f}"
            f"  ({min(per_round):.3f}-{max(per_round):.3f})"
        )
    ratios = [row["ratio"] for row in rows]
    print(f"geometric mean B/A: {statistics.geometric_mean(ratios):.3f}")
    if args.json:
        args.json.write_text(
            json.dumps({"trees": {k: str(v) for k, v in trees.items()}, "rows": rows}, indent=1)
        )


if __name__ == "__main__":
    main()
