"""``seqprop gradcheck`` (finite-difference check of a small network) and ``seqprop bench``."""

from __future__ import annotations

import argparse

from seqprop.options import KINDS


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``gradcheck`` subcommand."""
    p = subparsers.add_parser(
        "gradcheck",
        help="check a small network's gradients against finite differences",
        description=(
            "Build a small float64 network of the chosen kind, draw random inputs of mixed "
            "lengths with some unlabelled frames, and compare loss_and_grad with central "
            "finite differences on every parameter. Prints the worst relative error per "
            "parameter array; exit status 1 when one exceeds --rtol. The truncated gradient "
            "is by definition not the derivative of the loss, except on one-frame sequences "
            "(no recurrence): with --gradient truncated the check uses such sequences."
        ),
    )
    p.add_argument(
        "--kind",
        choices=(*KINDS, "all"),
        default="blstm",
        help="network kind, or 'all' (default: blstm)",
    )
    p.add_argument(
        "--gradient",
        choices=("full", "truncated", "both"),
        default="full",
        help="LSTM/RNN gradient mode (default: full)",
    )
    p.add_argument(
        "--squash", choices=("tanh", "logistic2"), default="tanh", help="LSTM cell squashing"
    )
    p.add_argument(
        "--activation",
        choices=("tanh", "logistic"),
        default="tanh",
        help="RNN/BRNN/MLP hidden units",
    )
    p.add_argument("--hidden-size", type=int, default=3, help="units per direction (default 3)")
    p.add_argument("--input-size", type=int, default=3, help="features per frame (default 3)")
    p.add_argument("--classes", type=int, default=4, help="output classes (default 4)")
    p.add_argument("--window", type=int, default=1, help="MLP time window (default 1)")
    p.add_argument("--sequences", type=int, default=3, help="sequences in the batch (default 3)")
    p.add_argument("--max-length", type=int, default=6, help="longest sequence (default 6)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--eps", type=float, default=1e-5, help="finite-difference step (1e-5)")
    p.add_argument("--rtol", type=float, default=1e-5, help="largest accepted error (1e-5)")
    p.set_defaults(func=run_gradcheck)

    b = subparsers.add_parser(
        "bench",
        help="measure training speed (frames/s) of the paper's networks",
        description=(
            "Training frames per second (loss_and_grad + momentum update) of the paper's "
            "networks at full size on random TIMIT-shaped data: online (one 300-frame "
            "sequence per update) and batches of 16 sequences of 100-500 frames. The "
            "comparison with PyTorch, memory and cold start: benchmarks/bench_speed.py."
        ),
    )
    b.add_argument(
        "--nets", default="blstm", help="comma-separated kinds, or 'all' (default: blstm)"
    )
    b.add_argument("--dtypes", default="float64,float32", help="default: float64,float32")
    b.add_argument("--modes", default="online,batch16", help="default: online,batch16")
    b.add_argument("--threads", type=int, default=None, help="seqprop threads (1 or 2)")
    b.add_argument("--seconds", type=float, default=1.0, help="seconds per repeat (default 1)")
    b.add_argument("--repeats", type=int, default=3, help="repeats, median kept (default 3)")
    b.set_defaults(func=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    from seqprop._parallel import get_num_threads, set_num_threads
    from seqprop.bench import MODES, throughput
    from seqprop.errors import ConfigError

    nets = KINDS if args.nets == "all" else tuple(args.nets.split(","))
    dtypes = tuple(args.dtypes.split(","))
    modes = tuple(args.modes.split(","))
    for value, allowed, flag in (
        (nets, KINDS, "--nets"),
        (dtypes, ("float64", "float32"), "--dtypes"),
        (modes, MODES, "--modes"),
    ):
        bad = [v for v in value if v not in allowed]
        if bad:
            raise ConfigError(f"{flag}: unknown {bad[0]!r} (choose from {', '.join(allowed)})")
    if args.seconds <= 0 or args.repeats < 1:
        raise ConfigError("--seconds must be > 0 and --repeats >= 1")
    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError("--threads must be >= 1")
        set_num_threads(args.threads)
    print(f"seqprop training throughput, {get_num_threads()} thread(s), frames/s (median)")
    print(f"{'net':6} {'weights':>8} {'dtype':8} {'mode':8} {'frames/s':>10}")
    for kind in nets:
        for dtype in dtypes:
            for mode in modes:
                r = throughput(kind, dtype, mode, seconds=args.seconds, repeats=args.repeats)
                print(
                    f"{kind:6} {r['parameters']:>8} {dtype:8} {mode:8} {r['frames_per_s']:>10,.0f}",
                    flush=True,
                )
    return 0


def _check_args(args: argparse.Namespace) -> None:
    from seqprop.errors import ConfigError

    for name in ("hidden_size", "input_size", "classes", "sequences", "max_length"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1")
    if args.window < 0:
        raise ConfigError("--window must be >= 0")
    if not (args.eps > 0 and args.rtol > 0):
        raise ConfigError("--eps and --rtol must be > 0")


def run_gradcheck(args: argparse.Namespace) -> int:
    import numpy as np

    from seqprop.errors import GradientCheckError
    from seqprop.gradient_check import gradcheck
    from seqprop.network import make_network

    _check_args(args)
    kinds = KINDS if args.kind == "all" else (args.kind,)
    modes = ("full", "truncated") if args.gradient == "both" else (args.gradient,)
    rng = np.random.default_rng(args.seed)

    def batch(n_seq: int, t_max: int):
        lengths = rng.integers(1, t_max + 1, size=n_seq).astype(np.int64)
        lengths[0] = t_max
        x = rng.normal(size=(t_max, n_seq, args.input_size))
        y = rng.integers(0, args.classes, size=(t_max, n_seq)).astype(np.int64)
        y[rng.random(size=y.shape) < 0.2] = -1  # some frames without a target
        y[0, 0] = 0
        return x, y, lengths

    full_batch = batch(args.sequences, args.max_length)
    one_frame = batch(max(args.sequences, 4), 1)
    failed = 0
    for kind in kinds:
        for mode in modes if kind != "mlp" else ("full",):
            x, y, lengths = one_frame if mode == "truncated" else full_batch
            net = make_network(
                kind,
                args.input_size,
                args.hidden_size,
                args.classes,
                window=args.window if kind == "mlp" else 0,
                gradient=mode,
                dtype="float64",
                squash=args.squash if kind in ("blstm", "lstm") else "tanh",
                activation=args.activation if kind not in ("blstm", "lstm") else "tanh",
                random_state=args.seed,
            )
            # larger weights than the paper's init, so every gradient term matters
            net.flat_parameters[...] = rng.uniform(-0.5, 0.5, net.num_parameters)
            try:
                errors = gradcheck(net, x, y, lengths, eps=args.eps, rtol=args.rtol)
                status = "OK"
            except GradientCheckError:
                errors = gradcheck(
                    net, x, y, lengths, eps=args.eps, rtol=args.rtol, raise_on_failure=False
                )
                status = "FAIL"
                failed += 1
            label = kind if kind == "mlp" else f"{kind} ({mode} gradient)"
            if mode == "truncated":
                label += ", one-frame sequences"
            print(f"{label}: {net.num_parameters} parameters, lengths {lengths.tolist()}")
            width = max(len(k) for k in errors)
            for name, err in errors.items():
                mark = "" if err <= args.rtol else "  <-- exceeds rtol"
                print(f"  {name:<{width}}  {err:.2e}{mark}")
            print(f"  worst {max(errors.values()):.2e} (rtol {args.rtol:g}): {status}")
    if failed:
        print(f"gradient check FAILED for {failed} network(s)")
        return 1
    print("gradient check passed")
    return 0
