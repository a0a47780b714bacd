"""One grid point: train it into its run directory, evaluate its best model, write ``result.json``.

A run trains with :class:`seqprop.training.Trainer`, continues from its
checkpoint when it was killed (and its configuration is unchanged), and ends
by scoring the best-on-validation weights on the training, validation and test
sets (framewise accuracy, as Graves & Schmidhuber 2005 report it). A failed
run leaves ``error.txt`` instead. The files are listed in
:mod:`seqprop.experiments.files` and ``experiments/README.md``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import statistics
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from seqprop.errors import ConfigError
from seqprop.experiments.files import (
    ERROR_NAME,
    RESULT_FORMAT,
    RESULT_NAME,
    now,
    write_json,
    write_text,
)
from seqprop.experiments.grid import GridPoint, override

__all__ = ["record_failure", "run_point"]

logger = logging.getLogger(__name__)


def run_point(
    point: GridPoint, out: str | os.PathLike[str], *, threads: int | None = 1
) -> dict[str, Any]:
    """Train one grid point into ``OUT/<name>/`` and evaluate its best model.

    Meant to run as a dask task (it only needs seqprop importable and the data
    paths readable where it runs), but works anywhere. Never raises for a
    failing run: the error and traceback go to ``error.txt`` in the run
    directory and the returned status is ``"failed"``.

    Parameters
    ----------
    point : GridPoint
    out : path
        The grid's output directory.
    threads : int or None
        ``train.threads`` for the run (1 when several runs share a machine;
        None keeps the configuration's value).

    Returns
    -------
    dict
        ``name``, ``status`` (``"done"``, ``"skipped"``: ``result.json`` was
        already there, or ``"failed"``), ``result`` (the contents of
        ``result.json``), ``error`` (one line) and ``seconds``.
    """
    t0 = time.perf_counter()
    run_dir = Path(out) / point.name
    result_path = run_dir / RESULT_NAME
    base = {"name": point.name, "result": None, "error": None}
    if result_path.is_file():
        with contextlib.suppress(OSError, ValueError):
            base["result"] = json.loads(result_path.read_text(encoding="utf-8"))
        return {**base, "status": "skipped", "seconds": 0.0}
    try:
        result = _train_and_evaluate(point, run_dir, threads)
        with _run_lock(run_dir):  # a lost job's error.txt never outlives the result
            write_json(result_path, result)
            with contextlib.suppress(FileNotFoundError):
                (run_dir / ERROR_NAME).unlink()
        return {**base, "status": "done", "result": result, "seconds": time.perf_counter() - t0}
    except Exception as exc:  # noqa: BLE001 - a failed run must not stop the grid
        message = f"{type(exc).__name__}: {exc}"
        record_failure(
            run_dir,
            f"run {point.name} failed at {now()} on {platform.node()}\n{message}\n\n"
            + traceback.format_exc(),
        )
        logger.warning("run %s failed: %s", point.name, message)
        return {**base, "status": "failed", "error": message, "seconds": time.perf_counter() - t0}


@contextlib.contextmanager
def _run_lock(run_dir: Path) -> Iterator[bool]:
    """Hold the run directory's lock (:mod:`seqprop.training.rundir`) for the block;
    yields False, holding nothing, when another process trains in it."""
    from seqprop.errors import RunDirectoryLocked
    from seqprop.training.rundir import RunDirectory

    run = RunDirectory(run_dir)
    try:
        run.lock()
    except (RunDirectoryLocked, OSError):
        yield False
        return
    try:
        yield True
    finally:
        run.release()


def record_failure(run_dir: str | os.PathLike[str], text: str) -> bool:
    """Write ``error.txt`` into ``run_dir`` unless the run finished or is being trained.

    A job whose worker was dropped may come back and finish the run (or be
    training it still): ``result.json`` present, or the run directory locked
    by another process, means the failure report is stale, and nothing is
    written. Returns whether ``error.txt`` was written.
    """
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with _run_lock(run_dir) as held:
            if not held or (run_dir / RESULT_NAME).exists():
                return False
            write_text(run_dir / ERROR_NAME, text)
            return True
    except OSError:
        return False


def _train_and_evaluate(point: GridPoint, run_dir: Path, threads: int | None) -> dict[str, Any]:
    """Train (or resume) the run in ``run_dir``, evaluate it; the contents of ``result.json``."""
    trainer, resumed = _start(point, run_dir, threads)
    with trainer:
        t0 = time.perf_counter()
        trainer.fit()
        train_wall = time.perf_counter() - t0
        t1 = time.perf_counter()
        splits = _evaluate_splits(trainer)
        eval_seconds = time.perf_counter() - t1
    run = {
        **_timing(trainer.history),
        "wall_seconds": train_wall,
        "evaluation_seconds": eval_seconds,
        "resumed": resumed,
    }
    return _result(point, trainer, splits, run)


def _start(point: GridPoint, run_dir: Path, threads: int | None) -> tuple[Any, bool]:
    """A trainer for ``point`` in ``run_dir``: resumed from its checkpoint if it has one
    from the same configuration, else a fresh one; and whether it was resumed."""
    from seqprop.checkpoint import CHECKPOINT_NAME
    from seqprop.training import Trainer

    config = point.config()
    config.train.progress = False
    if threads is not None:
        config.train.threads = int(threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        (run_dir / ERROR_NAME).unlink()
    resumed = (run_dir / CHECKPOINT_NAME).is_file() and _same_config(run_dir, config)
    if resumed:
        trainer = Trainer.resume(run_dir, overrides=_resume_overrides(config), progress=False)
    else:
        trainer = Trainer(config, run_dir=run_dir, overwrite=True, progress=False)
    return trainer, resumed


def _evaluate_splits(trainer: Any) -> dict[str, Any]:
    """The best model's scores on the training, validation and test sets (those it has),
    with the phone error rates of decoded label sequences where a split has them."""
    from seqprop.data import open_split
    from seqprop.evaluation import evaluate
    from seqprop.experiments.graves2006 import add_label_scores

    cfg = trainer.config
    net, pre, names = trainer.net, trainer.preprocessor, trainer.state.class_names
    batch = cfg.train.eval_batch_size
    splits: dict[str, Any] = {}
    splits["train"] = _split_summary(
        evaluate(net, trainer.train_data, pre, class_names=names, batch_size=batch)
    )
    if trainer.validation_data is not None:
        splits["validation"] = _split_summary(
            evaluate(net, trainer.validation_data, pre, class_names=names, batch_size=batch)
        )
    if trainer.validation_data is not None:
        add_label_scores(splits["validation"], net, trainer.validation_data, pre, names)
    if cfg.data.test:
        with open_split(cfg.data.test, cfg.data.group, False, "test", trainer.target_kind) as test:
            if trainer.test_result_ is not None:
                splits["test"] = _split_summary(trainer.test_result_)
            else:
                splits["test"] = _split_summary(
                    evaluate(net, test, pre, class_names=names, batch_size=batch)
                )
            add_label_scores(splits["test"], net, test, pre, names)
    return splits


def _split_summary(result: Any) -> dict[str, Any]:
    from seqprop.evaluation import EvaluationResult
    from seqprop.heads.ctc import LabelSequenceResult

    if isinstance(result, LabelSequenceResult):  # label sequences: add_label_scores adds them
        return {"n_sequences": int(result.n_sequences), "loss": result.loss}
    if not isinstance(result, EvaluationResult):  # another head's: its scalar scores
        return {
            k: v
            for k, v in result.to_dict().items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
    folded = result.folded or {}
    return {
        "n_sequences": int(result.n_sequences),
        "n_frames": int(result.n_frames),
        "loss": float(result.loss),
        "frame_accuracy": float(result.frame_accuracy),
        "class_averaged_accuracy": float(result.class_averaged_accuracy),
        "majority_accuracy": float(result.majority_accuracy),
        "folded_accuracy": folded.get("frame_accuracy"),
    }


_CURVE_KEYS = (
    *("epoch", "train_loss", "train_frame_error", "validation_loss"),
    *("validation_frame_error", "seconds", "validation_seconds"),
)


def _curve_keys(trainer: Any) -> tuple[str, ...]:
    """The keys of each epoch's record kept in ``result.json``, the head's selection metric's
    included."""
    sel = trainer.net.head.selection
    extra = tuple(k for k in (f"train_{sel}", f"validation_{sel}") if k not in _CURVE_KEYS)
    return _CURVE_KEYS + extra


def _result(
    point: GridPoint, trainer: Any, splits: dict[str, Any], run: Mapping[str, Any]
) -> dict[str, Any]:
    """The contents of ``result.json``: the run's settings, its training (``run``: timing,
    whether it was resumed) and its scores (``splits``)."""
    from seqprop.checkpoint import StopReason
    from seqprop.config import config_to_dict

    cfg = trainer.config
    m = cfg.model
    return {
        "format": RESULT_FORMAT,
        "format_version": 1,
        "name": point.name,
        "experiment": point.experiment,
        "label": point.label,
        "params": dict(point.params),
        "seed": point.seed,
        "kind": m.kind,
        "hidden_size": m.hidden_size,
        "delay": m.delay,
        "reverse": m.reverse,
        "class_weighting": m.class_weighting,
        "window": m.window,
        "gradient": m.gradient,
        "n_parameters": int(trainer.net.num_parameters),
        "learning_rate": cfg.train.learning_rate,
        "max_epochs": cfg.train.max_epochs,
        "n_iter_no_change": cfg.train.n_iter_no_change,
        "epochs": int(trainer.n_epochs_),
        "best_epoch": int(trainer.best_epoch_),
        "best_validation_error": trainer.best_score_,
        "stop_reason": trainer.stop_message_,
        "capped": trainer.stop_reason_ is StopReason.MAX_EPOCHS,
        **run,
        "splits": splits,
        "curve": [{k: r.get(k) for k in _curve_keys(trainer)} for r in trainer.history],
        "config": config_to_dict(cfg),
        "data": {
            name: (getattr(cfg.data, name) and Path(getattr(cfg.data, name)).name)
            for name in ("train", "validation", "test")
        },
        "host": platform.node(),
        "threads": cfg.train.threads,
        "finished_at": now(),
    }


def _timing(history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Seconds per epoch (training and validation) and training speed from the metrics log."""
    seconds = [float(r.get("seconds") or 0.0) for r in history]
    vseconds = [float(r.get("validation_seconds") or 0.0) for r in history]
    # the median: the first epoch of a worker also pays numba's compilation or cache load
    frames = sum(int(r.get("train_frames") or 0) for r in history)
    return {
        "seconds_per_epoch": statistics.median(seconds) if seconds else None,
        "validation_seconds_per_epoch": statistics.median(vseconds) if vseconds else None,
        "frames_per_second": frames / sum(seconds) if sum(seconds) > 0 else None,
        "train_seconds": sum(seconds),
    }


# ===================================================================== resuming
def _comparable(config: Mapping[str, Any]) -> dict[str, Any]:
    """A configuration dict without ``run_dir`` and the keys a resumed run may change."""
    from seqprop.training import RESUMABLE_KEYS

    out = {k: dict(v) if isinstance(v, Mapping) else v for k, v in config.items()}
    out.pop("run_dir", None)
    for key in RESUMABLE_KEYS:
        section, name = key.split(".", 1)
        out.get(section, {}).pop(name, None)
    return out


def _resume_overrides(config: Any) -> list[str]:
    """``--set`` overrides that give a resumed run the new values of the resumable keys."""
    from seqprop.config import config_to_dict
    from seqprop.training import RESUMABLE_KEYS

    data = config_to_dict(config)
    out = []
    for key in sorted(RESUMABLE_KEYS):
        section, name = key.split(".", 1)
        value = data.get(section, {}).get(name)
        if value is not None:
            out.append(override(key, value))
    return out


def _same_config(run_dir: Path, config: Any) -> bool:
    """True if ``run_dir`` holds a run started with the same configuration."""
    from seqprop.config import config_to_dict, loads_toml
    from seqprop.training import CONFIG_NAME

    try:
        stored = loads_toml((run_dir / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ConfigError):
        return False
    return _comparable(config_to_dict(stored)) == _comparable(config_to_dict(config))
