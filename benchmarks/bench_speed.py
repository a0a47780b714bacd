"""Training speed of the paper's networks: seqprop, and PyTorch when installed.

Measures, for the five networks of Graves & Schmidhuber (2005) (26 inputs, 61
outputs; BLSTM 93+93 LSTM blocks, LSTM 140, BRNN 185+185 tanh units, RNN 275,
MLP 250 tanh units over a window of 10 frames on each side), in float64 and
float32:

* training throughput, in frames per second. One training step is one
  ``Network.loss_and_grad`` plus a momentum update of the flat parameter vector
  (``v = 0.9 v - lr g; w += v``). Two workloads: *online* (batch 1, one
  300-frame sequence per update, as in the paper) and *batch16* (16 sequences
  of lengths drawn uniformly from 100-500 with a fixed seed, padded to the
  longest; only real frames are counted). After a warm-up (numba compilation),
  each figure is the median over ``--repeats`` timings of about one second.
  seqprop is timed with its default thread count (two threads on two cores:
  the directions of a bidirectional layer run concurrently) and with one.
* the nearest PyTorch equivalents when ``torch`` can be imported, timed in the
  same run, alternating with seqprop configuration by configuration:
  ``nn.LSTM`` (no peephole connections: PyTorch has none) / ``nn.RNN`` (tanh)
  + ``nn.Linear`` + ``cross_entropy(reduction="sum")`` + ``torch.optim.SGD``
  with momentum; the MLP as ``nn.Linear`` over a 21-frame window (``unfold``).
  Batches are run both packed (``pack_padded_sequence``) and padded with the
  padding masked out of the loss (for bidirectional nets padding then reaches
  the backward direction: faster, but not the same computation). Each torch
  figure is the better of ``torch.set_num_threads(1)`` and ``(2)``.
* peak memory of one BLSTM ``loss_and_grad`` (tracemalloc, in a fresh process)
  for a 700-frame sequence, a 1,400-frame one, a batch of 16 and one of 32.
* cold start: a fresh process with an empty numba cache directory imports
  seqprop, builds the BLSTM and runs its first ``loss_and_grad`` (numba
  compiles the kernels); a second fresh process with the same cache directory
  shows the compiled code being reused.

Usage::

    python benchmarks/bench_speed.py [--quick] [--torch | --no-torch]
                                     [--json OUT] [--repeats N] [--seconds S]

The library entry point is :func:`run_benchmark`; :func:`format_report` turns
its result into the printed tables.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from seqprop.bench import LEARNING_RATE, MOMENTUM, make_batches, make_online_data, measure
from seqprop.bench import training_step as seqprop_step

REPO = Path(__file__).resolve().parents[1]

INPUT_SIZE = 26
NUM_CLASSES = 61
WINDOW = 10

#: The paper's networks: kind for make_network and hidden size per direction.
NETS: dict[str, dict[str, Any]] = {
    "blstm": dict(kind="blstm", hidden=93, window=0),
    "lstm": dict(kind="lstm", hidden=140, window=0),
    "brnn": dict(kind="brnn", hidden=185, window=0),
    "rnn": dict(kind="rnn", hidden=275, window=0),
    "mlp": dict(kind="mlp", hidden=250, window=WINDOW),
}
DTYPES = ("float64", "float32")
MODES = ("online", "batch16")

#: Issue 5 targets for the paper's BLSTM (frames/s on a 2-core machine).
TARGETS = {
    ("online", "float64"): 25_000,
    ("online", "float32"): 45_000,
    ("batch16", "float64"): 25_000,
    ("batch16", "float32"): 50_000,
}
#: Issue 14 targets: seqprop / PyTorch's best, measured in the same run.
RATIO_TARGETS = {
    ("blstm", "online", "float32"): 2.0,
    ("blstm", "batch16", "float32"): 3.0,
    ("blstm", "online", "float64"): 8.0,
    ("lstm", "online", "float32"): 1.5,
    ("lstm", "batch16", "float32"): 1.5,
    ("rnn", "online", "float32"): 1.5,
    ("rnn", "batch16", "float32"): 1.5,
    **{("mlp", mode, dtype): 1.0 for mode in MODES for dtype in DTYPES},
}
#: RNNLIB (the paper authors' C++ library), BLSTM, float64, one thread, online
#: updates: quoted in docs/NOTES.md (reference figures), not measured by this script.
RNNLIB_QUOTED = "5,000-6,000"
#: A figure whose repeated timings differ by more than this factor is marked noisy.
NOISY = 1.25


# --------------------------------------------------------------------------- data
# --------------------------------------------------------------------------- seqprop
# --------------------------------------------------------------------------- torch
def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def make_torch_model(kind: str, input_size: int, hidden: int, num_classes: int, window: int):
    """The nearest PyTorch module to seqprop's ``kind`` (weights uniform in +-0.1)."""
    import torch
    from torch import nn

    class Recurrent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            bidirectional = kind in ("blstm", "brnn")
            if kind in ("blstm", "lstm"):
                self.rnn = nn.LSTM(input_size, hidden, bidirectional=bidirectional)
            else:
                self.rnn = nn.RNN(
                    input_size, hidden, nonlinearity="tanh", bidirectional=bidirectional
                )
            self.out = nn.Linear(hidden * (2 if bidirectional else 1), num_classes)

    class WindowMLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hidden = nn.Linear((2 * window + 1) * input_size, hidden)
            self.out = nn.Linear(hidden, num_classes)

    model = WindowMLP() if kind == "mlp" else Recurrent()
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-0.1, 0.1)
    return model


def torch_step(model, kind: str, window: int, batches, variant: str, dtype: str):
    """A PyTorch training step cycling through ``batches``.

    ``variant`` is ``"padded"`` (the whole padded batch through the network,
    padding frames ignored by the loss; for batch 1 this is the plain
    computation) or ``"packed"`` (``pack_padded_sequence``).
    """
    import torch
    import torch.nn.functional as F
    from torch.nn.utils.rnn import pack_padded_sequence

    tdtype = torch.float64 if dtype == "float64" else torch.float32
    model = model.to(tdtype)
    opt = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)
    data = []
    for x, y, lengths in batches:
        data.append(
            (
                torch.from_numpy(np.ascontiguousarray(x)).to(tdtype),
                torch.from_numpy(y).long(),
                torch.from_numpy(lengths).long(),
            )
        )
    state = {"i": 0}

    def forward_loss(x, y, lengths):
        if kind == "mlp":
            T, B, I = x.shape
            xp = F.pad(x, (0, 0, 0, 0, window, window))  # zeros outside the sequence
            win = xp.unfold(0, 2 * window + 1, 1)  # (T, B, I, 2w+1)
            win = win.permute(0, 1, 3, 2).reshape(T, B, (2 * window + 1) * I)
            logits = model.out(torch.tanh(model.hidden(win)))
            return F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]),
                y.reshape(-1),
                ignore_index=-1,
                reduction="sum",
            )
        if variant == "packed":
            packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
            targets = pack_padded_sequence(y, lengths, enforce_sorted=False).data
            out, _ = model.rnn(packed)
            logits = model.out(out.data)
            return F.cross_entropy(logits, targets, reduction="sum")
        out, _ = model.rnn(x)
        logits = model.out(out)
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-1, reduction="sum"
        )

    def step() -> None:
        x, y, lengths = data[state["i"]]
        state["i"] = (state["i"] + 1) % len(data)
        opt.zero_grad(set_to_none=False)
        loss = forward_loss(x, y, lengths)
        loss.backward()
        opt.step()

    return step


# --------------------------------------------------------------------------- timing
def _set_seqprop_threads(n: int | None) -> None:
    """Set seqprop's thread count, going through 1 first.

    Some versions of seqprop kept process-wide state (a BLAS thread limit)
    from the first two-thread call until ``set_num_threads(1)``; passing
    through 1 starts every measurement from the same state, whatever ran
    before it.
    """
    from seqprop import _parallel

    _parallel.set_num_threads(1)
    _parallel.set_num_threads(n)


def _set_torch_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def run_speed(
    nets: Sequence[str],
    dtypes: Sequence[str],
    modes: Sequence[str],
    *,
    use_torch: bool,
    repeats: int,
    seconds: float,
    seqprop_threads: Sequence[int],
    torch_threads: Sequence[int],
    torch_packed: bool,
    hidden_sizes: dict[str, int],
    input_size: int,
    num_classes: int,
    online_length: int,
    batch_size: int,
    min_length: int,
    max_length: int,
    seed: int,
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    """Throughput rows, one per (net, dtype, mode); see :func:`run_benchmark`."""
    from seqprop import make_network

    rows = []
    for name in nets:
        spec = NETS[name]
        hidden = hidden_sizes.get(name, spec["hidden"])
        for dtype in dtypes:
            for mode in modes:
                if mode == "online":
                    batches = [
                        make_online_data(dtype, input_size, num_classes, online_length, seed)
                    ]
                else:
                    batches = make_batches(
                        dtype,
                        input_size,
                        num_classes,
                        batch_size,
                        min_length,
                        max_length,
                        n_batches=4,
                        seed=seed,
                    )
                frames = sum(int(b[2].sum()) for b in batches) / len(batches)
                padded_frames = sum(b[0].shape[0] * b[0].shape[1] for b in batches) / len(batches)
                net = make_network(
                    spec["kind"],
                    input_size,
                    hidden,
                    num_classes,
                    window=spec["window"],
                    dtype=dtype,
                    random_state=seed,
                )
                # (label, step, setter) in the order they are alternated
                runs: list[tuple[str, Callable[[], None], Callable[[], None]]] = []
                sp_step = seqprop_step(net, batches)
                for n in seqprop_threads:
                    runs.append((f"seqprop:{n}", sp_step, lambda n=n: _set_seqprop_threads(n)))
                if use_torch:
                    variants = ["padded"]
                    if torch_packed and mode != "online" and spec["kind"] != "mlp":
                        variants.append("packed")
                    for variant in variants:
                        model = make_torch_model(
                            spec["kind"], input_size, hidden, num_classes, spec["window"]
                        )
                        t_step = torch_step(
                            model, spec["kind"], spec["window"], batches, variant, dtype
                        )
                        for n in torch_threads:
                            runs.append(
                                (f"torch-{variant}:{n}", t_step, lambda n=n: _set_torch_threads(n))
                            )
                # warm-up: numba compilation, thread pools, first allocations
                for _, step, setter in runs:
                    setter()
                    for _ in range(2):
                        step()
                samples: dict[str, list[float]] = {label: [] for label, _, _ in runs}
                for _ in range(repeats):
                    for label, step, setter in runs:
                        setter()
                        samples[label].append(measure(step, frames, seconds))
                _set_seqprop_threads(None)
                med = {label: statistics.median(v) for label, v in samples.items()}
                row: dict[str, Any] = dict(
                    net=name,
                    kind=spec["kind"],
                    hidden=hidden,
                    dtype=dtype,
                    mode=mode,
                    frames_per_step=frames,
                    padded_frames_per_step=padded_frames,
                    samples=samples,
                    median=med,
                    load=os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
                )
                _summarise(row, seqprop_threads)
                rows.append(row)
                log(_row_line(row))
    return rows


def _best(med: dict[str, float], prefix: str) -> tuple[float | None, str | None]:
    items = [(v, k) for k, v in med.items() if k.startswith(prefix)]
    if not items:
        return None, None
    v, k = max(items)
    return v, k


def _summarise(row: dict[str, Any], seqprop_threads: Sequence[int]) -> None:
    med = row["median"]
    default = max(seqprop_threads)
    row["seqprop"] = med[f"seqprop:{default}"]
    row["seqprop_threads"] = default
    row["seqprop_1thread"] = med.get("seqprop:1")
    row["torch_padded"], row["torch_padded_label"] = _best(med, "torch-padded")
    row["torch_packed"], row["torch_packed_label"] = _best(med, "torch-packed")
    torch_best, label = _best(med, "torch-")
    row["torch_best"] = torch_best
    row["torch_best_label"] = label
    row["ratio"] = row["seqprop"] / torch_best if torch_best else None
    # spread of every figure, and the ratio repeat by repeat: seqprop and torch
    # alternate within a repeat, so each paired ratio saw the same machine load
    samples = row["samples"]
    row["spread"] = {k: [min(v), statistics.median(v), max(v)] for k, v in samples.items()}
    torch_labels = [k for k in samples if k.startswith("torch-")]
    sp = samples[f"seqprop:{default}"]
    if torch_labels:
        paired = [sp[i] / max(samples[k][i] for k in torch_labels) for i in range(len(sp))]
        row["ratio_paired"] = paired
        row["ratio_spread"] = [min(paired), statistics.median(paired), max(paired)]
    else:
        row["ratio_paired"] = row["ratio_spread"] = None
    # figures whose timings spread by more than NOISY (max / min): disturbed
    row["noisy"] = sorted(k for k, v in row["samples"].items() if max(v) > NOISY * min(v))


def _row_line(row: dict[str, Any]) -> str:
    s = f"{row['net']:6s} {row['dtype']:8s} {row['mode']:8s} seqprop {row['seqprop']:10,.0f}"
    lo, _, hi = row["spread"][f"seqprop:{row['seqprop_threads']}"]
    s += f" [{lo:,.0f}-{hi:,.0f}]"
    if row["torch_best"]:
        s += f"  torch {row['torch_best']:10,.0f} ({row['torch_best_label']})"
        s += f"  ratio {row['ratio']:.2f}"
        r = row["ratio_spread"]
        s += f" (per repeat {r[0]:.2f}/{r[1]:.2f}/{r[2]:.2f})"
    return s


# --------------------------------------------------------------------------- subprocess probes
def _subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    if extra:
        env.update(extra)
    return env


def memory_probe(args: dict[str, Any]) -> dict[str, Any]:
    """Peak traced memory of one ``loss_and_grad`` (run in a fresh process).

    The network and the data exist before tracing starts; a warm-up call on a
    tiny input compiles the kernels first, so the figure is the working
    memory of the call itself: activations kept for the backward pass,
    deltas, gradients' temporaries.
    """
    import tracemalloc

    from seqprop import make_network

    dtype = args["dtype"]
    net = make_network(
        args["kind"],
        args["input_size"],
        args["hidden"],
        args["num_classes"],
        window=args.get("window", 0),
        dtype=dtype,
        random_state=0,
    )
    if args["batch_size"] == 1:
        x, y, lengths = make_online_data(
            dtype, args["input_size"], args["num_classes"], args["length"], args["seed"]
        )
    else:
        (x, y, lengths), *_ = make_batches(
            dtype,
            args["input_size"],
            args["num_classes"],
            args["batch_size"],
            args["min_length"],
            args["max_length"],
            n_batches=1,
            seed=args["seed"],
        )
    # warm-up on a tiny input of the same batch width (compilation, thread pool)
    wx, wy, wl = x[:3].copy(), y[:3].copy(), np.minimum(lengths, 3)
    net.loss_and_grad(wx, wy, wl)
    tracemalloc.start()
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()
    net.loss_and_grad(x, y, lengths)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    frames = int(lengths.sum())
    return dict(
        kind=args["kind"],
        dtype=dtype,
        batch_size=int(len(lengths)),
        frames=frames,
        padded_frames=int(x.shape[0] * x.shape[1]),
        peak_bytes=int(peak - base),
        bytes_per_frame=(peak - base) / frames,
        parameters=int(net.num_parameters),
    )


def _run_probe(probe: str, args: dict[str, Any], env_extra=None) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--probe", probe, json.dumps(args)]
    out = subprocess.run(
        cmd, capture_output=True, text=True, env=_subprocess_env(env_extra), check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"{probe} probe failed ({out.returncode}):\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_memory(
    *,
    dtypes: Sequence[str],
    hidden: int,
    input_size: int,
    num_classes: int,
    lengths: Sequence[int],
    batch_sizes: Sequence[int],
    min_length: int,
    max_length: int,
    seed: int,
) -> list[dict[str, Any]]:
    """BLSTM peak memory for single sequences of ``lengths`` and batches of ``batch_sizes``."""
    rows = []
    common = dict(
        kind="blstm",
        hidden=hidden,
        input_size=input_size,
        num_classes=num_classes,
        min_length=min_length,
        max_length=max_length,
        seed=seed,
    )
    for dtype in dtypes:
        for length in lengths:
            rows.append(
                _run_probe("memory", dict(common, dtype=dtype, batch_size=1, length=length))
            )
        for b in batch_sizes:
            rows.append(_run_probe("memory", dict(common, dtype=dtype, batch_size=b, length=0)))
    return rows


COLD_START_CODE = r"""
import json, time
t0 = time.perf_counter()
import numpy as np
import seqprop
from seqprop import make_network
t1 = time.perf_counter()
rng = np.random.default_rng(0)
res = {{"import_s": t1 - t0}}
for dtype in ("float64", "float32"):
    ta = time.perf_counter()
    net = make_network("blstm", {I}, {H}, {K}, dtype=dtype, random_state=0)
    x = rng.standard_normal(({T}, 1, {I})).astype(dtype)
    y = rng.integers(0, {K}, size=({T}, 1))
    L = np.array([{T}])
    tb = time.perf_counter()
    net.loss_and_grad(x, y, L)
    tc = time.perf_counter()
    net.loss_and_grad(x, y, L)
    td = time.perf_counter()
    res[dtype] = {{"make_network_s": tb - ta, "first_call_s": tc - tb, "second_call_s": td - tc}}
print(json.dumps(res))
"""


def run_cold_start(*, hidden: int, input_size: int, num_classes: int, length: int) -> dict:
    """Two fresh processes sharing one initially empty ``NUMBA_CACHE_DIR``."""
    code = COLD_START_CODE.format(I=input_size, H=hidden, K=num_classes, T=length)
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="seqprop-numba-cache-") as cache:
        for label in ("empty_cache", "filled_cache"):
            t0 = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", code],
                capture_output=True,
                text=True,
                env=_subprocess_env({"NUMBA_CACHE_DIR": cache}),
                check=False,
            )
            wall = time.perf_counter() - t0
            if out.returncode != 0:
                raise RuntimeError(f"cold-start probe failed:\n{out.stderr[-2000:]}")
            r = json.loads(out.stdout.strip().splitlines()[-1])
            r["process_wall_s"] = wall
            result[label] = r
        n_files = sum(len(files) for _, _, files in os.walk(cache))
        result["cache_files"] = n_files
    return result


# --------------------------------------------------------------------------- machine
ENGINE_PATHS = (
    "seqprop/kernels",
    "seqprop/layers.py",
    "seqprop/network.py",
    "seqprop/_parallel.py",
)


def _source_info() -> dict[str, Any] | None:
    """The measured engine's git commit, and whether its files had uncommitted changes."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        return dict(
            head=git("rev-parse", "--short", "HEAD"),
            engine_commit=git("log", "-1", "--format=%h %cd %s", "--date=iso", "--", *ENGINE_PATHS),
            engine_modified=bool(git("status", "--porcelain", "--", *ENGINE_PATHS)),
        )
    except (OSError, subprocess.CalledProcessError):
        return None


def machine_info() -> dict[str, Any]:
    """CPU, cores, load, library versions and the BLAS behind numpy."""
    import numba

    info: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "cpu_count": os.cpu_count(),
    }
    try:
        info["cpus_usable"] = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        info["cpus_usable"] = os.cpu_count()
    cpu = platform.processor() or "unknown"
    flags = ""
    ident: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key = line.split(":", 1)[0].strip()
                if key == "model name" and cpu in ("unknown", platform.machine()):
                    cpu = line.split(":", 1)[1].strip()
                elif key == "flags" and not flags:
                    flags = line.split(":", 1)[1]
                elif key in ("cpu family", "model", "stepping", "cache size") and key not in ident:
                    ident[key] = line.split(":", 1)[1].strip()
    except OSError:
        pass
    info["cpu"] = cpu
    # a virtual machine often names its CPU only "Intel Xeon Processor": family,
    # model and the newest SIMD extensions identify the generation
    info["cpu_id"] = ", ".join(f"{k} {v}" for k, v in ident.items())
    simd = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile")
    info["simd"] = " ".join(f for f in simd if f" {f} " in f" {flags} ")
    try:
        info["load_average"] = list(os.getloadavg())
    except OSError:  # pragma: no cover
        info["load_average"] = None
    try:
        from threadpoolctl import threadpool_info

        info["threadpools"] = [
            {k: d.get(k) for k in ("user_api", "internal_api", "version", "num_threads", "prefix")}
            for d in threadpool_info()
        ]
    except ImportError:  # pragma: no cover
        info["threadpools"] = None
    if torch_available():
        import torch

        info["torch"] = torch.__version__
    else:
        info["torch"] = None
    info["seqprop_source"] = _source_info()
    try:
        from seqprop import _parallel

        info["seqprop_default_threads"] = _parallel.get_num_threads()
    except ImportError:  # pragma: no cover
        pass
    return info


# --------------------------------------------------------------------------- entry point
def run_benchmark(
    nets: Sequence[str] = tuple(NETS),
    dtypes: Sequence[str] = DTYPES,
    modes: Sequence[str] = MODES,
    *,
    use_torch: bool | None = None,
    repeats: int = 3,
    seconds: float = 1.0,
    seqprop_threads: Sequence[int] = (2, 1),
    torch_threads: Sequence[int] = (1, 2),
    torch_packed: bool = True,
    hidden_sizes: dict[str, int] | None = None,
    input_size: int = INPUT_SIZE,
    num_classes: int = NUM_CLASSES,
    online_length: int = 300,
    batch_size: int = 16,
    min_length: int = 100,
    max_length: int = 500,
    memory: bool = True,
    memory_lengths: Sequence[int] = (700, 1400),
    memory_batch_sizes: Sequence[int] = (16, 32),
    cold_start: bool = True,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Measure training throughput, memory and cold start; see the module docstring.

    Parameters
    ----------
    nets : names from :data:`NETS` (``blstm``, ``lstm``, ``brnn``, ``rnn``, ``mlp``)
    dtypes : ``float64`` and/or ``float32``
    modes : ``online`` (batch 1, ``online_length`` frames) and/or ``batch16``
        (``batch_size`` sequences of ``min_length``-``max_length`` frames)
    use_torch : time the PyTorch equivalents; None: when torch can be imported
    repeats : timings per figure (the median is reported)
    seconds : duration of one timing (at least one step is always run)
    seqprop_threads, torch_threads : thread counts timed; seqprop's figure is
        the largest count's, torch's the best
    torch_packed : also time torch on packed batches (slow: seconds per step)
    hidden_sizes : override the paper's hidden size per net (tests use tiny ones)
    memory, cold_start : also run the (BLSTM) memory and cold-start probes
    memory_lengths, memory_batch_sizes : what the memory probe measures
    log : called with a line of progress per measured row

    Returns
    -------
    dict
        ``machine`` (:func:`machine_info`), ``settings``, ``speed`` (one dict
        per (net, dtype, mode) with frames/s medians and every sample),
        ``memory`` (list) and ``cold_start`` (dict) or None when not run, and
        ``load_after`` (load average at the end).
    """
    if log is None:

        def log(_: str) -> None:
            pass

    unknown = [n for n in nets if n not in NETS]
    if unknown:
        raise ValueError(f"nets: unknown {unknown}; choose from {list(NETS)}")
    if any(d not in DTYPES for d in dtypes):
        raise ValueError(f"dtypes must be among {DTYPES}, got {list(dtypes)}")
    if any(m not in MODES for m in modes):
        raise ValueError(f"modes must be among {MODES}, got {list(modes)}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if use_torch is None:
        use_torch = torch_available()
    elif use_torch and not torch_available():
        raise ValueError("use_torch=True but torch cannot be imported")
    hidden_sizes = dict(hidden_sizes or {})
    settings = dict(
        nets=list(nets),
        dtypes=list(dtypes),
        modes=list(modes),
        use_torch=use_torch,
        repeats=repeats,
        seconds=seconds,
        seqprop_threads=list(seqprop_threads),
        torch_threads=list(torch_threads),
        torch_packed=torch_packed,
        hidden_sizes={n: hidden_sizes.get(n, NETS[n]["hidden"]) for n in NETS},
        input_size=input_size,
        num_classes=num_classes,
        online_length=online_length,
        batch_size=batch_size,
        length_range=[min_length, max_length],
        learning_rate=LEARNING_RATE,
        momentum=MOMENTUM,
        seed=seed,
    )
    report: dict[str, Any] = {"machine": machine_info(), "settings": settings}
    report["speed"] = run_speed(
        nets,
        dtypes,
        modes,
        use_torch=use_torch,
        repeats=repeats,
        seconds=seconds,
        seqprop_threads=seqprop_threads,
        torch_threads=torch_threads if use_torch else (),
        torch_packed=torch_packed,
        hidden_sizes=hidden_sizes,
        input_size=input_size,
        num_classes=num_classes,
        online_length=online_length,
        batch_size=batch_size,
        min_length=min_length,
        max_length=max_length,
        seed=seed,
        log=log,
    )
    blstm_hidden = hidden_sizes.get("blstm", NETS["blstm"]["hidden"])
    report["memory"] = None
    if memory:
        log("memory probes ...")
        report["memory"] = run_memory(
            dtypes=dtypes,
            hidden=blstm_hidden,
            input_size=input_size,
            num_classes=num_classes,
            lengths=memory_lengths,
            batch_sizes=memory_batch_sizes,
            min_length=min_length,
            max_length=max_length,
            seed=seed,
        )
    report["cold_start"] = None
    if cold_start:
        log("cold-start probes ...")
        report["cold_start"] = run_cold_start(
            hidden=blstm_hidden,
            input_size=input_size,
            num_classes=num_classes,
            length=online_length,
        )
    report["load_after"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return report


# --------------------------------------------------------------------------- report
def _fmt(v: float | None, spec: str = ",.0f") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def _mark(row: dict[str, Any], label: str | None) -> str:
    return "*" if label and label in row.get("noisy", ()) else ""


def _span(row: dict[str, Any], label: str | None) -> str:
    """`` [min-max]`` of a figure's timings, in thousands of frames/s."""
    spread = row.get("spread", {}).get(label) if label else None
    if not spread or len(row["samples"].get(label, ())) < 2:
        return ""
    return f" [{spread[0] / 1000:,.0f}k-{spread[2] / 1000:,.0f}k]"


def _thr(label: str | None) -> str:
    return "" if not label else f" ({label.rsplit(':', 1)[1]}t)"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [
        "| "
        + " | ".join(
            c.rjust(w) if i >= 3 else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        + " |"
        for r in rows
    ]
    return "\n".join([line, sep, *body])


def memory_scaling(rows: list[dict[str, Any]]) -> list[str]:
    """Lines comparing peak memory growth with frame growth (single sequences, batches)."""
    lines = []
    for dtype in dict.fromkeys(r["dtype"] for r in rows):
        for single in (True, False):
            group = [r for r in rows if r["dtype"] == dtype and (r["batch_size"] == 1) == single]
            if len(group) < 2:
                continue
            a, b = group[0], group[-1]
            what = (
                f"{b['frames']} vs {a['frames']} frames"
                if single
                else f"batch {b['batch_size']} vs {a['batch_size']}"
            )
            lines.append(
                f"- {dtype}, {what}: peak x{b['peak_bytes'] / a['peak_bytes']:.2f}; "
                f"real frames x{b['frames'] / a['frames']:.2f}, "
                f"padded frames x{b['padded_frames'] / a['padded_frames']:.2f}"
            )
    return lines


def format_report(report: dict[str, Any]) -> str:
    """The tables of a :func:`run_benchmark` result, as Markdown text."""
    out = []
    m = report["machine"]
    s = report["settings"]
    out.append(
        f"Machine: {m['cpu']}"
        + (f" [{m['cpu_id']}]" if m.get("cpu_id") else "")
        + f" ({m.get('simd', '')}), {m['cpus_usable']} usable cores; "
        f"Python {m['python']}, numpy {m['numpy']}, numba {m['numba']}, torch {m['torch'] or 'absent'}"
    )
    pools = m.get("threadpools") or []
    out.append(
        "BLAS/OpenMP: "
        + (
            ", ".join(
                f"{p['internal_api']} {p['version'] or ''} ({p['prefix']}, {p['num_threads']} threads)"
                for p in pools
            )
            or "unknown"
        )
    )
    src = m.get("seqprop_source")
    if src:
        out.append(
            f"seqprop engine: last commit {src['engine_commit']}"
            + (" + uncommitted changes" if src["engine_modified"] else "")
            + f" (HEAD {src['head']})"
        )
    la = m.get("load_average")
    lb = report.get("load_after")
    if la:
        out.append(
            f"Load average before: {la[0]:.2f}"
            + (f", after: {lb[0]:.2f}" if lb else "")
            + f"; date {m['date']}"
        )
    out.append(
        f"Settings: median of {s['repeats']} timings of ~{s['seconds']:g} s each "
        "(seqprop and torch alternating within each repeat; [min-max] beside each figure); "
        f"online = 1 x {s['online_length']} frames; batch16 = {s['batch_size']} sequences of "
        f"{s['length_range'][0]}-{s['length_range'][1]} frames (4 fixed batches, real frames counted)"
    )
    out.append("")
    header = [
        "net",
        "dtype",
        "mode",
        "seqprop",
        "seqprop 1t",
        "torch padded",
        "torch packed",
        "seqprop/torch",
        "ratio per repeat",
    ]
    rows = []
    for r in report["speed"]:
        rows.append(
            [
                f"{r['net']} {r['hidden']}",
                r["dtype"],
                r["mode"],
                _fmt(r["seqprop"])
                + _mark(r, f"seqprop:{r['seqprop_threads']}")
                + f" ({r['seqprop_threads']}t)"
                + _span(r, f"seqprop:{r['seqprop_threads']}"),
                _fmt(r["seqprop_1thread"]) + _mark(r, "seqprop:1") + _span(r, "seqprop:1"),
                _fmt(r["torch_padded"])
                + _mark(r, r["torch_padded_label"])
                + _thr(r["torch_padded_label"])
                + _span(r, r["torch_padded_label"]),
                _fmt(r["torch_packed"])
                + _mark(r, r["torch_packed_label"])
                + _thr(r["torch_packed_label"]),
                _fmt(r["ratio"], ".2f"),
                "-"
                if not r.get("ratio_spread")
                else "{:.2f} / {:.2f} / {:.2f}".format(*r["ratio_spread"]),
            ]
        )
    out.append("Training throughput, frames/s (loss_and_grad + momentum update):")
    out.append("")
    out.append(_table(header, rows))
    out.append("")
    out.append(
        "seqprop: two threads (2t, the default on two cores) and one "
        "(1t: seqprop._parallel.set_num_threads(1)). torch: nn.LSTM/nn.RNN (no peepholes), "
        "best of 1 and 2 threads (threads in brackets); 'padded' runs the padded batch with the "
        "padding masked out of the loss (online: the plain computation), 'packed' uses "
        "pack_padded_sequence. Ratio: seqprop / the better torch figure (medians); "
        "ratio per repeat: min / median / max over the repeats of seqprop's figure over "
        "torch's best in the same repeat (the two ran back to back). [min-max]: the "
        "spread of a figure's timings. "
        f"*: its timings spread by more than x{NOISY} (disturbed by other load)."
    )
    blstm = [r for r in report["speed"] if r["net"] == "blstm"]
    if blstm:
        out.append("")
        out.append("Paper BLSTM against the issue's targets:")
        out.append("")
        trows = []
        for r in blstm:
            target = TARGETS.get((r["mode"], r["dtype"]))
            ok = "-" if target is None else ("pass" if r["seqprop"] >= target else "FAIL")
            rnnlib = (
                f"{RNNLIB_QUOTED} (quoted)"
                if (r["mode"], r["dtype"]) == ("online", "float64")
                else "-"
            )
            trows.append(
                [
                    "blstm",
                    r["dtype"],
                    r["mode"],
                    _fmt(r["seqprop"]),
                    _fmt(target),
                    ok,
                    _fmt(r["torch_best"]),
                    rnnlib,
                ]
            )
        out.append(
            _table(
                ["net", "dtype", "mode", "seqprop", "target", "", "torch best", "RNNLIB"],
                trows,
            )
        )
        out.append("")
        out.append(
            "RNNLIB figure: quoted in docs/NOTES.md (float64, one thread, online), "
            "not measured by this script."
        )
    targeted = [r for r in report["speed"] if (r["net"], r["mode"], r["dtype"]) in RATIO_TARGETS]
    if targeted and any(r.get("ratio") for r in targeted):
        out.append("")
        out.append("Ratios against the issue-14 targets (seqprop / torch's best, same run):")
        out.append("")
        rrows = []
        for r in targeted:
            target = RATIO_TARGETS[(r["net"], r["mode"], r["dtype"])]
            spread = r.get("ratio_spread")
            ok = "-" if r.get("ratio") is None else ("pass" if r["ratio"] >= target else "FAIL")
            rrows.append(
                [
                    r["net"],
                    r["dtype"],
                    r["mode"],
                    _fmt(r.get("ratio"), ".2f"),
                    "-" if not spread else f"{spread[0]:.2f}-{spread[2]:.2f}",
                    f">= {target:g}",
                    ok,
                ]
            )
        out.append(_table(["net", "dtype", "mode", "ratio", "per repeat", "target", ""], rrows))
    if report.get("memory"):
        out.append("")
        out.append("BLSTM peak traced memory of one loss_and_grad (tracemalloc, fresh process):")
        out.append("")
        mrows = []
        for r in report["memory"]:
            mrows.append(
                [
                    r["dtype"],
                    f"{r['batch_size']} seq",
                    f"{r['frames']} ({r['padded_frames']} padded)",
                    f"{r['peak_bytes'] / 2**20:.2f} MiB",
                    _fmt(r["bytes_per_frame"]),
                    _fmt(r["peak_bytes"] / r["padded_frames"]),
                ]
            )
        out.append(
            _table(["dtype", "batch", "frames", "peak", "bytes/frame", "bytes/padded frame"], mrows)
        )
        out.append("")
        out.extend(memory_scaling(report["memory"]))
    cs = report.get("cold_start")
    if cs:
        out.append("")
        out.append("Cold start (BLSTM, fresh processes sharing one NUMBA_CACHE_DIR):")
        out.append("")
        crow = []
        for label in ("empty_cache", "filled_cache"):
            c = cs[label]
            crow.append(
                [
                    label.replace("_", " "),
                    f"{c['import_s']:.2f}",
                    f"{c['float64']['first_call_s']:.2f}",
                    f"{c['float64']['second_call_s'] * 1000:.1f} ms",
                    f"{c['float32']['first_call_s']:.2f}",
                    f"{c['process_wall_s']:.2f}",
                ]
            )
        out.append(
            _table(
                [
                    "cache",
                    "import s",
                    "1st call f64 s",
                    "2nd call f64",
                    "1st call f32 s",
                    "process s",
                ],
                crow,
            )
        )
        out.append(f"({cs['cache_files']} files in the cache directory after the first process)")
    return "\n".join(out)


def _markdown(report_text: str) -> str:
    """The report as a Markdown page: a title and how it was made, then the tables."""
    cmd = "python benchmarks/bench_speed.py " + " ".join(sys.argv[1:])
    return (
        "# Training speed: seqprop and PyTorch\n\n"
        f"Written by `{cmd.strip()}`; every figure below comes from that one run.\n\n"
        + report_text
        + "\n"
    )


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a fast subset (seconds), for smoke tests")
    p.add_argument(
        "--torch",
        dest="torch",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="time PyTorch too (default: when it can be imported)",
    )
    p.add_argument("--json", metavar="OUT", help="also write every figure and sample as JSON")
    p.add_argument(
        "--output", metavar="MD", help="also write the report as Markdown (benchmarks/RESULTS.md)"
    )
    p.add_argument("--repeats", type=int, default=None, help="timings per figure (default 3)")
    p.add_argument("--seconds", type=float, default=None, help="seconds per timing (default 1)")
    p.add_argument("--nets", default=None, help=f"comma-separated subset of {','.join(NETS)}")
    p.add_argument("--dtypes", default=None, help="comma-separated subset of float64,float32")
    p.add_argument("--modes", default=None, help="comma-separated subset of online,batch16")
    p.add_argument("--no-memory", action="store_true", help="skip the memory probes")
    p.add_argument("--no-cold-start", action="store_true", help="skip the cold-start probes")
    p.add_argument("--probe", nargs=2, help=argparse.SUPPRESS)
    a = p.parse_args(argv)

    if a.probe:
        name, args = a.probe
        if name != "memory":
            p.error(f"unknown probe {name!r}")
        print(json.dumps(memory_probe(json.loads(args))))
        return 0

    def split(v, default):
        return tuple(x.strip() for x in v.split(",") if x.strip()) if v else default

    if a.quick:
        kw: dict[str, Any] = dict(
            nets=split(a.nets, ("blstm", "mlp")),
            dtypes=split(a.dtypes, ("float32",)),
            modes=split(a.modes, MODES),
            repeats=a.repeats or 1,
            seconds=a.seconds if a.seconds is not None else 0.2,
            seqprop_threads=(2,),
            torch_threads=(1,),
            torch_packed=False,
            memory_lengths=(700,),
            memory_batch_sizes=(16,),
            cold_start=False,
        )
    else:
        kw = dict(
            nets=split(a.nets, tuple(NETS)),
            dtypes=split(a.dtypes, DTYPES),
            modes=split(a.modes, MODES),
            repeats=a.repeats or 3,
            seconds=a.seconds if a.seconds is not None else 1.0,
        )
    if a.no_memory:
        kw["memory"] = False
    if a.no_cold_start:
        kw["cold_start"] = False
    try:
        report = run_benchmark(
            use_torch=a.torch, log=lambda s: print(s, file=sys.stderr, flush=True), **kw
        )
    except ValueError as e:
        p.error(str(e))
    text = format_report(report)
    print(text)
    if a.output:
        _write_atomic(Path(a.output), _markdown(text))
    if a.json:
        out = Path(a.json)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(report, indent=1) + "\n")
        os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
