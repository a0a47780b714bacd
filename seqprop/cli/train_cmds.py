"""``seqprop train``, ``seqprop evaluate`` and ``seqprop predict``."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train``, ``evaluate`` and ``predict`` subcommands."""
    p = subparsers.add_parser(
        "train",
        help="train a network as a TOML config describes (or resume a run)",
        description=(
            "Train a network on HDF5 sequence datasets as the TOML configuration CONFIG "
            "describes (sections [model], [data], [train]; see seqprop.config). The run "
            "directory receives the resolved config.toml, metrics.jsonl (one JSON line per "
            "epoch), checkpoint.h5 (latest state) and best.h5 (best-on-validation model). "
            "A run that was stopped or killed continues with --resume RUN_DIR and ends with "
            "the same weights as an uninterrupted run (with train.threads = 1)."
        ),
    )
    p.add_argument("config", metavar="CONFIG", nargs="?", help="TOML configuration file")
    p.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override a config value, e.g. --set train.learning_rate=1e-4 (repeatable; "
        "VALUE is read as TOML, else as a string)",
    )
    p.add_argument(
        "--run-dir",
        metavar="DIR",
        help="run directory (default: the config's run_dir, else runs/<config name>)",
    )
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its latest checkpoint (no CONFIG)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="train into a non-empty run directory, replacing seqprop's files in it",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--quiet", "-q", action="store_true", help="no per-epoch lines")
    p.set_defaults(func=run_train)

    p = subparsers.add_parser(
        "evaluate",
        help="score a model on a dataset with its head's metrics (accuracy, F1, RMSE, "
        "label error rate for a ctc model or with --decoder)",
        description=(
            "Score a trained model on an HDF5 dataset with its head's report (docs/HEADS.md): "
            "softmax: framewise accuracy, cross-entropy, per-class accuracy and (with --json) "
            "the confusion matrix, for TIMIT's 61 phones also the 39 folded classes; "
            "sequence: sequence accuracy, per-class accuracy, confusion matrix; logistic: "
            "micro and per-output F1, exact match; squared_error: RMSE and R^2 per output "
            "and overall; ctc: label error rate of best path decoding (or --decoder). MODEL "
            "is a model file, a checkpoint or a run directory (its best.h5)."
        ),
    )
    p.add_argument("model", metavar="MODEL", help="model file, checkpoint or run directory")
    p.add_argument("data", metavar="DATA", help="HDF5 dataset")
    p.add_argument("--group", "-g", help="the split's group, when DATA holds several")
    p.add_argument("--json", action="store_true", help="print every result as JSON")
    p.add_argument(
        "--weights",
        choices=("best", "last"),
        default="best",
        help="for a training checkpoint: best-on-validation (default) or last weights",
    )
    p.add_argument("--batch-size", type=int, default=16, help="sequences per batch (speed only)")
    p.add_argument(
        "--decoder",
        choices=("best-path", "beam", "framewise"),
        help="score decoded label sequences against DATA's labels: a ctc model by best path "
        "(its default) or prefix beam search; a framewise model by 'framewise' (most "
        "probable class per frame, repeats merged), so both compare on one label error "
        "rate (for TIMIT also on the 39 folded phones)",
    )
    p.add_argument(
        "--beam-width", type=int, default=16, help="prefixes kept by --decoder beam (default 16)"
    )
    p.set_defaults(func=run_evaluate)

    p = subparsers.add_parser(
        "predict",
        help="write a model's outputs and decisions for a dataset to HDF5",
        description=(
            "Run a trained model over every sequence of DATA and write OUT (HDF5), rows in "
            "DATA's order (docs/HEADS.md section 5): softmax: posteriors (N_frames, K) "
            "float32, labels (N_frames,) int32; sequence: posteriors (N_seqs, K), labels "
            "(N_seqs,); logistic: posteriors (N_frames, K), labels (N_frames, K) bool; "
            "squared_error: values (N_frames, K) in the data's units; ctc: K + 1 posteriors "
            "(blank last) and the best path decoding: decoded, decoded_lengths and "
            "decoded_text; with targets, seq_lengths, seq_tags, attrs head and class_names. "
            "OUT's folder is created if needed."
        ),
    )
    p.add_argument("model", metavar="MODEL", help="model file, checkpoint or run directory")
    p.add_argument("data", metavar="DATA", help="HDF5 dataset")
    p.add_argument("out", metavar="OUT", help="output HDF5 file (replaced atomically)")
    p.add_argument("--group", "-g", help="the split's group, when DATA holds several")
    p.add_argument(
        "--weights",
        choices=("best", "last"),
        default="best",
        help="for a training checkpoint: best-on-validation (default) or last weights",
    )
    p.add_argument("--batch-size", type=int, default=16, help="sequences per batch (speed only)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing OUT that is not a predictions file",
    )
    p.set_defaults(func=run_predict)


# ------------------------------------------------------------------ train
def _epoch_printer(quiet: bool) -> Any:
    from seqprop.training import Callback

    class _Print(Callback):
        started = False

        def on_train_begin(self, trainer):
            self.started = True
            cfg = trainer.config
            net = trainer.net
            st = trainer.state
            what = "resuming" if st.epoch or st.position else "training"
            print(
                f"{what} {cfg.model.kind} ({net.num_parameters} parameters, "
                f"{net.input_size} inputs, {net.num_classes} classes) on "
                f"{len(trainer.train_data)} sequences; run directory {trainer.run_dir}",
                flush=True,
            )
            if st.position:
                print(f"  continuing epoch {st.epoch + 1} at update {st.position}", flush=True)
            from seqprop.kernels.cache import cache_is_cold

            if cache_is_cold():
                print("compiling kernels (first run only)...", flush=True)

        def on_epoch_end(self, trainer, r):
            if quiet:
                return
            sel = trainer.net.head.selection
            v = r.get(f"validation_{sel}")
            fps = r.get("frames_per_second") or 0.0
            print(
                f"epoch {r['epoch']:3d}  train loss {r['train_loss']:.4f}  "
                f"train err {r[f'train_{sel}']:.4f}  "
                f"valid err {'   n/a' if v is None else f'{v:.4f}'}"
                f"{'  *' if r['best'] else '   '}  {r['seconds']:.1f}s  {fps:.0f} frames/s",
                flush=True,
            )

    return _Print()


def run_train(args: argparse.Namespace) -> int:
    from seqprop.errors import ConfigError
    from seqprop.training import Trainer

    printer = _epoch_printer(args.quiet)
    progress = False if args.no_progress else None
    if args.resume:
        if args.config:
            raise ConfigError(
                "give either CONFIG (a new run) or --resume RUN_DIR (the run's own "
                "configuration is used), not both"
            )
        if args.run_dir or args.overwrite:
            raise ConfigError("--run-dir and --overwrite do not apply to --resume")
        trainer = Trainer.resume(
            args.resume, overrides=args.overrides, callbacks=[printer], progress=progress
        )
    else:
        if not args.config:
            raise ConfigError("give a CONFIG file to train, or --resume RUN_DIR")
        from seqprop.config import load_config

        config = load_config(args.config, args.overrides)
        run_dir = args.run_dir or config.run_dir or str(Path("runs") / Path(args.config).stem)
        trainer = Trainer(
            config,
            run_dir=run_dir,
            overwrite=args.overwrite,
            callbacks=[printer],
            progress=progress,
        )
    try:
        trainer.fit()
    except KeyboardInterrupt:
        st = trainer.state
        if trainer.run_dir is not None and st is not None:
            print(
                f"interrupted in epoch {st.epoch + 1} after {st.position} updates; continue "
                f"with: seqprop train --resume {trainer.run_dir}",
                file=sys.stderr,
            )
        raise
    finally:
        trainer.close()
    st = trainer.state
    if st.finished and not printer.started:
        print(f"the run in {trainer.run_dir} has already finished; nothing to do")
    print(f"stopped: {trainer.stop_message_}")
    if st.best_epoch:
        kind = "validation" if trainer.config.data.validation else "training"
        print(
            f"best epoch {st.best_epoch}: {kind} {trainer.net.head.selection.replace('_', ' ')} "
            f"{st.best_score:.4f}"
            + (
                f" (accuracy {1 - st.best_score:.4f})"
                if trainer.net.head.selection == "frame_error"
                else ""
            )
        )
    if trainer.test_result_ is not None:
        print(_test_line(trainer.test_result_))
    if trainer.run_dir is not None:
        print(f"model: {trainer.run_dir / 'best.h5'}")
    return 0


def _test_line(r: Any) -> str:
    """One line summing up a test result (framewise or label sequences)."""
    if not hasattr(r, "frame_accuracy") and not hasattr(r, "scores"):
        return test_summary(r)  # the sequence, logistic and squared_error heads
    if hasattr(r, "frame_accuracy"):
        line = f"test frame accuracy {r.frame_accuracy:.4f} on {r.n_frames} frames"
        if r.folded:
            line += f"; {r.folded['classes']}-class folded {r.folded['frame_accuracy']:.4f}"
        return line
    n = r.scores["reference_labels"]
    line = f"test label error rate {r.label_error_rate:.4f} ({n} labels)"
    if r.folded:
        line += f"; {r.folded['classes']}-class folded {r.folded['label_error_rate']:.4f}"
    return line


# ------------------------------------------------------------------ evaluate / predict
def _load(args: argparse.Namespace):
    """The model, its preprocessor and the (open) dataset; the caller closes the dataset.

    The dataset is checked against the model by ``evaluate`` / ``write_predictions``.
    """
    from seqprop.checkpoint import load_model
    from seqprop.data import Preprocessor, open_dataset
    from seqprop.errors import DataError

    if args.batch_size < 1:
        raise DataError(f"--batch-size must be >= 1, got {args.batch_size}")
    net, meta = load_model(args.model, which=args.weights)
    if not Path(args.data).exists():
        raise DataError(f"{args.data}: no such file")
    pre = Preprocessor(net.dtype, meta.mean, meta.std, meta.delay)
    check_group_chosen(args.data, args.group)
    dataset = open_dataset(
        args.data, group=args.group, in_memory=False, target_kind=net.head.target_kind
    )
    return net, meta, dataset, pre


def check_group_chosen(path: str, group: str | None) -> None:
    """DataError naming ``--group`` when ``path`` holds several splits and none is chosen."""
    from seqprop.data import list_groups
    from seqprop.errors import DataError

    if group is None:
        groups = list_groups(path)
        if len(groups) > 1:
            raise DataError(
                f"{path}: the file holds several splits ({', '.join(groups)}); choose one "
                "with --group"
            )


def _format_labels(r: Any, head: list[str]) -> str:
    """Text of a :class:`~seqprop.heads.ctc.LabelSequenceResult`."""
    decoder = r.decoder.replace("_", " ") + (f" (width {r.beam_width})" if r.beam_width else "")
    lines = [*head, f"decoder:          {decoder}"]
    if r.loss is not None:
        lines.append(f"CTC loss:         {r.loss:.4f} nats/sequence")
    for name, sc in (
        ("", r.scores),
        (f" ({r.folded['classes']} folded)" if r.folded else "", r.folded),
    ):
        if not sc:
            continue
        lines.append(
            f"label error rate{name}: {sc['label_error_rate']:.4f}  ({sc['edits']} edits: "
            f"{sc['substitutions']} S, {sc['deletions']} D, {sc['insertions']} I; "
            f"{sc['reference_labels']} reference labels)"
        )
    return "\n".join(lines)


def _header(r: Any, meta: Any, dataset: Any) -> list[str]:
    return [
        f"model:            {meta.path} (epoch {meta.epoch})",
        f"data:             {dataset.path}" + (f" group {dataset.group}" if dataset.group else ""),
        f"sequences:        {r.n_sequences}",
    ]


def _per_class(names, counts, accuracy, unit: str) -> list[str]:
    lines = [f"per-class accuracy ({unit}):"]
    width = max(len(n) for n in names)
    for name, n, acc in zip(names, counts, accuracy, strict=True):
        a = "   n/a" if n == 0 else f"{acc:.4f}"
        lines.append(f"  {name:<{width}}  {a}  ({int(n)})")
    return lines


def _format_frames(r: Any) -> list[str]:
    """The softmax head's :class:`~seqprop.evaluation.EvaluationResult`."""
    lines = [
        f"labelled frames:  {r.n_frames}",
        f"frame accuracy:   {r.frame_accuracy:.4f}  (error {r.frame_error:.4f})",
        f"class-averaged:   {r.class_averaged_accuracy:.4f}  (mean of the per-class accuracies)",
        f"cross-entropy:    {r.loss:.4f} nats/frame",
        f"majority class:   {r.majority_accuracy:.4f}  (always the most frequent class)",
    ]
    if r.folded:
        lines.append(
            f"{r.folded['classes']}-class folded: {r.folded['frame_accuracy']:.4f}  "
            f"({r.folded['n_frames']} frames)"
        )
    return lines + _per_class(r.class_names, r.class_frames, r.class_accuracy, "frames")


def _format_sequences(r: Any) -> list[str]:
    """The sequence head's result: accuracy, per-class accuracy, confusion matrix."""
    lines = [
        f"labelled seqs:    {r.n_scored}",
        f"sequence accuracy: {r.sequence_accuracy:.4f}  (error {r.sequence_error:.4f})",
        f"cross-entropy:    {r.loss:.4f} nats/sequence",
        f"majority class:   {r.majority_accuracy:.4f}  (always the most frequent class)",
    ]
    lines += _per_class(r.class_names, r.class_sequences, r.class_accuracy, "sequences")
    lines.append("confusion (rows: target, columns: predicted, in class order):")
    width = max(len(n) for n in r.class_names)
    cell = max(4, len(str(int(r.confusion.max(initial=0)))) + 1)
    for name, row in zip(r.class_names, r.confusion, strict=True):
        lines.append(f"  {name:<{width}} " + "".join(f"{int(v):>{cell}}" for v in row))
    return lines


def _format_multilabel(r: Any) -> list[str]:
    """The logistic head's result: micro F1, exact match, per-output F1."""
    lines = [
        f"scored frames:    {r.n_frames}",
        f"micro F1:         {r.micro_f1:.4f}",
        f"exact match:      {r.exact_match:.4f}  (frames with every output right)",
        f"cross-entropy:    {r.loss:.4f} nats/frame (summed over outputs)",
        "per output:        F1      precision recall",
    ]
    width = max(len(n) for n in r.class_names)
    for name, f1, p, rc in zip(r.class_names, r.f1, r.precision, r.recall, strict=True):
        pt = "   n/a" if math.isnan(p) else f"{p:.4f}"
        rt = "   n/a" if math.isnan(rc) else f"{rc:.4f}"
        lines.append(f"  {name:<{width}}  {f1:.4f}  {pt}  {rt}")
    return lines


def _format_regression(r: Any) -> list[str]:
    """The squared-error head's result: RMSE and R^2, overall and per output."""
    lines = [
        f"scored frames:    {r.n_frames}",
        f"RMSE:             {r.rmse:.6g}  (data units, over all outputs)",
        f"R^2:              {r.r2:.4f}",
        f"loss:             {r.loss:.6g} per frame (1/2 sum of squares, training units)",
        "per output:        RMSE       R^2",
    ]
    width = max(len(n) for n in r.class_names)
    for name, e, r2 in zip(r.class_names, r.rmse_per_output, r.r2_per_output, strict=True):
        r2t = "   n/a" if math.isnan(r2) else f"{r2:.4f}"
        lines.append(f"  {name:<{width}}  {e:<10.6g} {r2t}")
    return lines


def format_evaluation(result: Any, meta: Any, dataset: Any) -> str:
    """Human-readable text of a head's evaluation result (:func:`seqprop.evaluation.evaluate`)."""
    from seqprop.evaluation import EvaluationResult
    from seqprop.heads.ctc import LabelSequenceResult
    from seqprop.heads.logistic import MultiLabelResult
    from seqprop.heads.sequence import SequenceEvaluationResult
    from seqprop.heads.squared_error import RegressionResult

    if isinstance(result, LabelSequenceResult):
        return _format_labels(result, _header(result, meta, dataset))
    formatters = {
        EvaluationResult: _format_frames,
        SequenceEvaluationResult: _format_sequences,
        MultiLabelResult: _format_multilabel,
        RegressionResult: _format_regression,
    }
    lines = _header(result, meta, dataset) + formatters[type(result)](result)
    return "\n".join(lines)


def test_summary(result: Any) -> str:
    """One line on a test result, for any head (its ``to_dict``'s headline figures)."""
    d = result.to_dict()
    for key, unit in (
        ("frame_accuracy", "n_frames"),
        ("sequence_accuracy", "n_scored"),
        ("micro_f1", "n_frames"),
        ("rmse", "n_frames"),
    ):
        if key in d:
            what = "sequences" if unit == "n_scored" else "frames"
            line = f"test {key.replace('_', ' ')} {d[key]:.4f} on {d[unit]} {what}"
            if d.get("folded"):
                f = d["folded"]
                line += f"; {f['classes']}-class folded {f['frame_accuracy']:.4f}"
            return line
    return f"test loss {d.get('loss')}"


def run_evaluate(args: argparse.Namespace) -> int:
    from seqprop.evaluation import evaluate

    net, meta, dataset, pre = _load(args)
    with dataset:
        decoder = None if args.decoder is None else args.decoder.replace("-", "_")
        result = evaluate(
            net,
            dataset,
            pre,
            class_names=meta.class_names,
            batch_size=args.batch_size,
            decoder=decoder,
            beam_width=args.beam_width,
        )
    if args.json:
        out = {
            "model": str(meta.path),
            "epoch": meta.epoch,
            "data": str(dataset.path),
            "group": dataset.group,
            **result.to_dict(),
        }
        from seqprop.checkpoint import json_clean

        json.dump(json_clean(out), sys.stdout)
        sys.stdout.write("\n")
    else:
        print(format_evaluation(result, meta, dataset))
    return 0


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.samefile(b)
    except OSError:
        return False


def _is_predictions_file(path: Path) -> bool:
    import h5py

    try:
        if not h5py.is_hdf5(path):
            return False
        with h5py.File(path, "r") as f:
            return f.attrs.get("format") == "seqprop.predictions"
    except OSError:
        return False


def _check_predict_output(args: argparse.Namespace) -> Path:
    """Refuse an OUT that is an input, a file of the model's run directory, or (without
    ``--overwrite``) an existing file that is not a predictions file."""
    from seqprop.checkpoint import find_model_file
    from seqprop.errors import DataError
    from seqprop.training.rundir import LOCK_NAME, RUN_FILES

    out = Path(args.out)
    model_file = find_model_file(args.model)
    inputs = [Path(args.data), Path(args.model), model_file]
    run_files = [model_file.parent / name for name in (*RUN_FILES, LOCK_NAME)]
    for what, paths in (("an input", inputs), (f"a file of {model_file.parent}", run_files)):
        if any(_same_file(out, p) for p in paths):
            raise DataError(f"OUT {out} is also {what}; choose another output file")
    if out.exists() and not out.is_dir() and not args.overwrite and not _is_predictions_file(out):
        raise DataError(
            f"OUT {out} exists and is not a seqprop predictions file; use --overwrite to replace it"
        )
    return out


def run_predict(args: argparse.Namespace) -> int:
    from seqprop.evaluation import write_predictions

    out = _check_predict_output(args)
    net, meta, dataset, pre = _load(args)
    if not out.parent.exists():
        try:
            out.parent.mkdir(parents=True)
        except OSError as exc:
            dataset.close()
            raise OSError(f"cannot create the folder of OUT {out}: {exc.strerror}") from None
    with dataset:
        write_predictions(
            out,
            net,
            dataset,
            pre,
            class_names=meta.class_names,
            batch_size=args.batch_size,
            model_path=str(meta.path),
        )
        n_frames = dataset.n_frames
        n_seq = len(dataset)
    print(f"wrote {net.head.output_name} of {n_seq} sequences ({n_frames} frames) to {out}")
    return 0
