"""What the CTC head adds to a training step of the paper's BLSTM, measured in one run.

For the paper's BLSTM (26 inputs, 93 blocks per direction, 61 classes) this
times a training step (``loss_and_grad`` plus the momentum update, as
``seqprop bench`` does) with the framewise ``softmax`` head and with the
``ctc`` head (62 outputs, label sequences of one label per 8 frames, about
TIMIT's phone rate), online (one 300-frame sequence per update) and in
padded batches of 16 sequences of 100-500 frames, in float32 and float64.
The two heads take turns (framewise, ctc, ctc, framewise, ...) in the same
process for ``--rounds`` rounds, so slow phases of a shared machine hit both
alike, and each measurement is the **CPU time** per frame on one thread
(``time.process_time``): on a loaded machine CPU time measures the work a
step does, wall time mostly the neighbours. Reported per configuration: the
median CPU microseconds per frame of each head, the ratio ctc / framewise
(the issue's target: at most 1.15), and the spread of that ratio over
rounds (min - max), which is the noise of the figure.

If PyTorch is installed (never a dependency of seqprop), the same steps are
timed for ``torch.nn.LSTM`` (bidirectional, no peepholes) with a linear
output and ``F.cross_entropy`` or ``F.ctc_loss`` (blank last, padded and
masked), also on one thread, and the ratios seqprop / PyTorch are printed.

Usage::

    python benchmarks/bench_ctc.py [--rounds 5] [--seconds 0.5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

HIDDEN, INPUTS, CLASSES = 93, 26, 61
FRAMES_PER_LABEL = 8
DTYPES = ("float32", "float64")
MODES = ("online", "batch16")
HEADS = ("softmax", "ctc")


def _label_targets(lengths: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(B, U) label sequences, one label per ``FRAMES_PER_LABEL`` frames, padded with -1."""
    n = np.maximum(1, lengths // FRAMES_PER_LABEL)
    y = np.full((lengths.size, int(n.max())), -1, dtype=np.int64)
    for b, k in enumerate(n):
        y[b, :k] = rng.integers(0, CLASSES, size=k)
    return y


def make_data(mode: str, dtype: str, head: str) -> list[tuple]:
    """Batches (x, y, lengths) of ``seqprop.bench`` with targets for ``head``."""
    from seqprop import bench

    batches = [bench.make_online_data(dtype)] if mode == "online" else bench.make_batches(dtype)
    if head == "softmax":
        return batches
    rng = np.random.default_rng(1)
    return [(x, _label_targets(lengths, rng), lengths) for x, _, lengths in batches]


def seqprop_step(head: str, mode: str, dtype: str):
    """A seqprop training step for ``head``; returns (step, frames per step)."""
    from seqprop import bench
    from seqprop.network import make_network

    net = make_network("blstm", INPUTS, HIDDEN, CLASSES, dtype=dtype, random_state=0, head=head)
    batches = make_data(mode, dtype, head)
    step = bench.training_step(net, batches)
    step()  # compile / warm up
    return step, float(np.mean([b[2].sum() for b in batches]))


def torch_step(head: str, mode: str, dtype: str):
    """The same step in PyTorch (nn.LSTM, padded and masked); (step, frames per step)."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    tdtype = torch.float32 if dtype == "float32" else torch.float64
    out_size = CLASSES + (head == "ctc")
    lstm = torch.nn.LSTM(INPUTS, HIDDEN, bidirectional=True).to(tdtype)
    linear = torch.nn.Linear(2 * HIDDEN, out_size).to(tdtype)
    params = list(lstm.parameters()) + list(linear.parameters())
    opt = torch.optim.SGD(params, lr=1e-5, momentum=0.9)
    batches = []
    for x, y, lengths in make_data(mode, dtype, head):
        xt = torch.from_numpy(np.ascontiguousarray(x))
        lt = torch.from_numpy(np.asarray(lengths, dtype=np.int64))
        if head == "ctc":
            yt = torch.from_numpy(np.where(y < 0, 0, y))
            ul = torch.from_numpy((y >= 0).sum(axis=1).astype(np.int64))
            batches.append((xt, yt, lt, ul))
        else:
            batches.append((xt, torch.from_numpy(np.asarray(y, dtype=np.int64)), lt, None))
    state = {"i": 0}

    def step() -> None:
        x, y, lengths, label_lengths = batches[state["i"]]
        state["i"] = (state["i"] + 1) % len(batches)
        opt.zero_grad()
        h, _ = lstm(x)
        a = linear(h)
        if head == "ctc":
            logp = F.log_softmax(a, dim=2)
            loss = F.ctc_loss(
                logp, y, lengths, label_lengths, blank=CLASSES, reduction="sum", zero_infinity=False
            )
        else:
            loss = F.cross_entropy(
                a.reshape(-1, out_size), y.reshape(-1), ignore_index=-1, reduction="sum"
            )
        loss.backward()
        opt.step()

    step()
    return step, float(np.mean([b[2].sum().item() for b in batches]))


def cpu_us_per_frame(step, frames: float, seconds: float) -> float:
    """CPU microseconds per frame of ``step`` repeated for at least ``seconds`` of CPU time."""
    n = 0
    t0 = time.process_time()
    while True:
        step()
        n += 1
        elapsed = time.process_time() - t0
        if elapsed >= seconds:
            break
    return 1e6 * elapsed / (n * frames)


def _have_torch() -> bool:
    try:
        import torch

        torch.set_num_threads(1)
        return True
    except ImportError:
        return False


def run(rounds: int, seconds: float, with_torch: bool) -> dict:
    """Every configuration, heads interleaved; the raw measurements and their summary."""
    from threadpoolctl import threadpool_limits

    import seqprop

    seqprop.set_num_threads(1)
    impls = [("seqprop", seqprop_step)] + ([("torch", torch_step)] if with_torch else [])
    results = {}
    with threadpool_limits(limits=1):
        for dtype in DTYPES:
            for mode in MODES:
                steps = {
                    (impl, head): make(head, mode, dtype) for impl, make in impls for head in HEADS
                }
                times = {key: [] for key in steps}
                for r in range(rounds):
                    order = HEADS if r % 2 == 0 else HEADS[::-1]
                    for impl, _ in impls:
                        for head in order:
                            step, frames = steps[(impl, head)]
                            times[(impl, head)].append(cpu_us_per_frame(step, frames, seconds))
                results[f"{mode}/{dtype}"] = {f"{i}/{h}": v for (i, h), v in times.items()}
    return results


def summarise(results: dict) -> list[str]:
    lines = []
    header = (
        f"{'config':<17} {'framewise us/frame':>18} {'ctc us/frame':>13} {'ctc/framewise':>14} "
        f"{'(min-max)':>13}"
    )
    lines += [header, "-" * len(header)]
    torch_lines = []
    for config, t in results.items():
        fw, ct = t["seqprop/softmax"], t["seqprop/ctc"]
        ratios = [c / f for c, f in zip(ct, fw, strict=True)]
        lines.append(
            f"{config:<17} {statistics.median(fw):>18.2f} {statistics.median(ct):>13.2f} "
            f"{statistics.median(ratios):>14.3f} {min(ratios):>6.3f}-{max(ratios):.3f}"
        )
        if "torch/ctc" in t:
            tf, tc = statistics.median(t["torch/softmax"]), statistics.median(t["torch/ctc"])
            torch_lines.append(
                f"{config:<17} torch framewise {tf:8.2f}  torch ctc {tc:8.2f} us/frame; "
                f"seqprop ctc / torch ctc {statistics.median(ct) / tc:.3f}"
            )
    if torch_lines:
        lines += [
            "",
            "PyTorch (nn.LSTM, no peepholes, padded and masked; one thread):",
            *torch_lines,
        ]
    else:
        lines += ["", "PyTorch is not installed: no comparison with torch's CTC + LSTM step."]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument(
        "--seconds", type=float, default=0.5, help="CPU seconds per measurement (default 0.5)"
    )
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    parser.add_argument("--json", metavar="FILE", help="also write the raw measurements")
    args = parser.parse_args(argv)
    with_torch = not args.no_torch and _have_torch()
    results = run(args.rounds, args.seconds, with_torch)
    for line in summarise(results):
        print(line)  # noqa: T201 - a script's report
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
