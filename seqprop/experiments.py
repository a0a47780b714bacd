"""Grids of training runs (the paper's experiments), a runner on dask.distributed, a report.

Graves & Schmidhuber (2005) compare BLSTM, BRNN, LSTM and RNN with target
delays of 0-10 frames, and MLPs with time windows of 0-10 frames (section 5).
This module turns such a comparison into independent training runs, runs them
(in this process, or as jobs on a dask.distributed cluster) and aggregates
their results into ``RESULTS.md`` with figures.

Grid files
----------
A grid is a TOML file that lists experiments; each names a training
configuration (a TOML file that :func:`seqprop.config.load_config` reads,
relative to the grid file) and the values to vary::

    name = "small"
    description = "miniature reproduction on the TIMIT sample"
    seeds = [0, 1]                              # repeats of every grid point
    set = { "train.n_iter_no_change" = 20 }     # applied to every run

    [[experiment]]
    name = "lstm"                               # run names start with it
    label = "LSTM"                              # shown in the report
    config = "lstm.toml"
    vary = { "model.delay" = [0, 1, 2, 3] }     # cartesian product over keys
    set = { "train.max_epochs" = 200 }          # this experiment only
    seeds = [0, 1, 2]                           # replaces the grid's seeds

The values of a run's configuration come, last one winning, from: the
configuration file, the grid's ``set``, the experiment's ``set``, the
command line's ``--set``, the grid point's ``vary`` values and finally
``train.seed``. Run names are the experiment's name, one ``-<tag><value>``
per varied key (``d`` for ``model.delay``, ``w`` for ``model.window``, the key's
last part otherwise) and ``-s<seed>``: ``lstm-d3-s1``.

Relative data paths are taken relative to the directory the grid is loaded
from (the current directory), as ``seqprop train`` does.

Run directories
---------------
Each run trains into ``OUT/<run name>/`` (the trainer's files:
``config.toml``, ``metrics.jsonl``, ``checkpoint.h5``, ``best.h5``,
``test.json``) and, when it has finished, ``result.json``: the best model's
frame accuracy on the training, validation and test sets, epochs, timing and
the learning curve (:func:`run_point`). A run whose ``result.json`` exists is
skipped when the grid is run again; a run that was killed continues from its
checkpoint; a run that failed leaves ``error.txt`` (the traceback) and is
tried again on the next invocation. ``OUT/grid.json`` holds the expanded grid
and ``OUT/grid-runs.json`` a record of every invocation (command, wall time,
runs done, skipped and failed).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fnmatch
import itertools
import json
import logging
import math
import os
import platform
import re
import statistics
import time
import tomllib
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqprop.errors import ConfigError, SeqpropError

__all__ = [
    "ERROR_NAME",
    "GRID_NAME",
    "INVOCATIONS_NAME",
    "PAPER_RESULTS",
    "RESULT_NAME",
    "Experiment",
    "Grid",
    "GridPoint",
    "GridRun",
    "NetSummary",
    "collect_results",
    "findings",
    "load_grid",
    "run_grid",
    "run_point",
    "summarise",
    "write_report",
]

logger = logging.getLogger(__name__)

RESULT_NAME = "result.json"
ERROR_NAME = "error.txt"
GRID_NAME = "grid.json"
INVOCATIONS_NAME = "grid-runs.json"
RESULT_FORMAT = "seqprop.experiment-result"

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+]*$")
_TAGS = {"model.delay": "d", "model.window": "w", "model.hidden_size": "h"}

PAPER_RESULTS: tuple[dict[str, Any], ...] = (
    {"kind": "blstm", "gradient": "full", "test": "69.8-70.2", "epochs": "~20"},
    {"kind": "brnn", "test": "69.0", "epochs": "100+"},
    {"kind": "lstm", "delay": 0, "test": "64.6"},
    {"kind": "lstm", "delay": 5, "test": "66.0"},
    {"kind": "rnn", "delay": 3, "test": "65.2", "epochs": "100+"},
    {"kind": "mlp", "window": 10, "test": "63.1"},
)
"""Published framewise test accuracy (%, TIMIT, 61 classes) and epochs to the
best validation score, as DESIGN.md section 1 quotes them (Graves & Schmidhuber
2005, section 6); keyed by the model settings they belong to."""


# ===================================================================== grids
@dataclass(frozen=True)
class GridPoint:
    """One training run of a grid.

    Attributes
    ----------
    name : str
        Run directory name, e.g. ``lstm-d3-s1``.
    experiment, label : str
        The experiment's name and display label.
    config_path : str
        Absolute path of the experiment's configuration file.
    params : tuple of (key, value)
        The varied keys at this point, e.g. ``(("model.delay", 3),)``.
    seed : int
    overrides : tuple of str
        Every ``key=value`` applied to the configuration file, in order.
    base_dir : str
        Directory relative data paths are taken from.
    """

    name: str
    experiment: str
    label: str
    config_path: str
    params: tuple[tuple[str, Any], ...]
    seed: int
    overrides: tuple[str, ...]
    base_dir: str

    def config(self) -> Any:
        """The run's validated :class:`~seqprop.config.RunConfig` (absolute data paths)."""
        from seqprop.config import load_config, resolve_paths

        cfg = load_config(self.config_path, self.overrides)
        return resolve_paths(cfg, base=self.base_dir)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "experiment": self.experiment,
            "label": self.label,
            "config": self.config_path,
            "params": dict(self.params),
            "seed": self.seed,
            "overrides": list(self.overrides),
        }


@dataclass
class Experiment:
    """One ``[[experiment]]`` of a grid file (see the module docstring)."""

    name: str
    label: str
    config: Path
    vary: dict[str, list[Any]] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    set: dict[str, Any] = field(default_factory=dict)


@dataclass
class Grid:
    """A grid file, expanded into :class:`GridPoint` runs by :meth:`points`."""

    path: Path
    name: str
    description: str
    experiments: list[Experiment]
    set: dict[str, Any] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    base_dir: Path = field(default_factory=Path.cwd)

    def points(self, only: Iterable[str] = ()) -> list[GridPoint]:
        """Every run of the grid, in file order; ``only``: fnmatch patterns on run names."""
        patterns = list(only)
        out: list[GridPoint] = []
        seen: dict[str, str] = {}
        for exp in self.experiments:
            keys = list(exp.vary)
            combos = itertools.product(*(exp.vary[k] for k in keys)) if keys else [()]
            for combo in combos:
                params = tuple(zip(keys, combo, strict=True))
                for seed in exp.seeds:
                    name = "-".join(
                        [exp.name]
                        + [f"{_tag(k)}{_value_text(v)}" for k, v in params]
                        + [f"s{seed}"]
                    )
                    if name in seen:
                        raise ConfigError(
                            f"{self.path}: two grid points are both named {name!r} "
                            f"(experiments {seen[name]!r} and {exp.name!r})"
                        )
                    seen[name] = exp.name
                    overrides = (
                        [_override(k, v) for k, v in self.set.items()]
                        + [_override(k, v) for k, v in exp.set.items()]
                        + list(self.overrides)
                        + [_override(k, v) for k, v in params]
                        + [_override("train.seed", seed)]
                    )
                    point = GridPoint(
                        name=name,
                        experiment=exp.name,
                        label=exp.label,
                        config_path=str(exp.config),
                        params=params,
                        seed=int(seed),
                        overrides=tuple(overrides),
                        base_dir=str(self.base_dir),
                    )
                    if not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns):
                        out.append(point)
        return out

    def to_dict(self, points: Sequence[GridPoint] | None = None) -> dict[str, Any]:
        pts = self.points() if points is None else points
        return {
            "grid": str(self.path),
            "name": self.name,
            "description": self.description,
            "points": [p.to_dict() for p in pts],
        }


def _tag(key: str) -> str:
    return _TAGS.get(key, key.rsplit(".", 1)[-1])


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = f"{value:g}"
    else:
        text = str(value)
    return re.sub(r"[^A-Za-z0-9_.+]", "_", text)


def _toml_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    raise ConfigError(f"cannot use {type(value).__name__} {value!r} as a configuration value")


def _override(key: str, value: Any) -> str:
    return f"{key}={_toml_literal(value)}"


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"delay": 1}}`` and ``{"model.delay": 1}`` both to ``{"model.delay": 1}``."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{full}."))
        else:
            out[full] = value
    return out


def _seed_list(value: Any, where: str) -> list[int]:
    if isinstance(value, bool) or not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: seeds must be a non-empty list of integers, got {value!r}")
    for s in value:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ConfigError(f"{where}: seeds must be integers >= 0, got {s!r}")
    if len(set(value)) != len(value):
        raise ConfigError(f"{where}: seeds {value} repeat a seed")
    return [int(s) for s in value]


def _set_table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(
            f'{where}: set must be a table of key = value, e.g. {{ "train.max_epochs" = 50 }}'
        )
    flat = _flatten(value)
    for k, v in flat.items():
        if isinstance(v, list | dict):
            raise ConfigError(f"{where}: set.{k} must be a single value, got {v!r}")
    return flat


_GRID_KEYS = ("name", "description", "seeds", "set", "experiment")
_EXPERIMENT_KEYS = ("name", "label", "config", "vary", "seeds", "set")


def load_grid(
    path: str | os.PathLike[str],
    *,
    overrides: Iterable[str] = (),
    seeds: Sequence[int] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
) -> Grid:
    """Read and check a grid file; every grid point's configuration is validated.

    Parameters
    ----------
    path : path
        The grid's TOML file.
    overrides : iterable of str
        ``section.key=value`` applied to every run (the command line's ``--set``).
    seeds : sequence of int, optional
        Replace every experiment's seeds.
    base_dir : path, optional
        Directory relative data paths are resolved against (default: the
        current directory).

    Raises
    ------
    ConfigError
        The grid or one of its configurations is invalid; the message names the
        file, the experiment and the key.
    """
    path = Path(path).absolute()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: grid file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the grid: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    for key in data:
        if key not in _GRID_KEYS:
            raise ConfigError(
                f"{path}: unknown key {key!r}; a grid accepts {', '.join(_GRID_KEYS)}"
            )
    name = data.get("name", path.stem)
    description = data.get("description", "")
    if not isinstance(name, str) or not isinstance(description, str):
        raise ConfigError(f"{path}: name and description must be strings")
    grid_seeds = _seed_list(data.get("seeds", [0]), f"{path}")
    grid_set = _set_table(data.get("set", {}), f"{path}")
    raw = data.get("experiment")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{path}: no [[experiment]] tables")
    experiments: list[Experiment] = []
    names: set[str] = set()
    for i, table in enumerate(raw):
        where = f"{path}: experiment {i + 1}"
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where}: must be a table")
        for key in table:
            if key not in _EXPERIMENT_KEYS:
                raise ConfigError(
                    f"{where}: unknown key {key!r}; an experiment accepts "
                    f"{', '.join(_EXPERIMENT_KEYS)}"
                )
        ename = table.get("name")
        if not isinstance(ename, str) or not _NAME_RE.match(ename) or "-" in ename:
            raise ConfigError(
                f"{where}: name must be letters, digits, '_', '.' or '+' (it starts the run "
                f"names), got {ename!r}"
            )
        if ename in names:
            raise ConfigError(f"{where}: experiment name {ename!r} used twice")
        names.add(ename)
        where = f"{path}: experiment {ename!r}"
        config = table.get("config")
        if not isinstance(config, str) or not config:
            raise ConfigError(f"{where}: config must name a configuration file")
        config_path = (path.parent / config).resolve()
        if not config_path.is_file():
            raise ConfigError(f"{where}: configuration file {config_path} not found")
        label = table.get("label", ename)
        if not isinstance(label, str):
            raise ConfigError(f"{where}: label must be a string")
        vary_raw = table.get("vary", {})
        if not isinstance(vary_raw, Mapping):
            raise ConfigError(f"{where}: vary must be a table of key = [values]")
        vary = _flatten(vary_raw)
        for k, values in vary.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{where}: vary.{k} must be a non-empty list, got {values!r}")
            if len({json.dumps(v) for v in values}) != len(values):
                raise ConfigError(f"{where}: vary.{k} repeats a value: {values}")
            if k == "train.seed":
                raise ConfigError(f"{where}: vary train.seed through seeds = [...] instead")
        exp_seeds = (
            list(seeds)
            if seeds is not None
            else _seed_list(table["seeds"], where)
            if "seeds" in table
            else list(grid_seeds)
        )
        if seeds is not None:
            exp_seeds = _seed_list(exp_seeds, "seeds")
        experiments.append(
            Experiment(
                name=ename,
                label=label,
                config=config_path,
                vary=vary,
                seeds=exp_seeds,
                set=_set_table(table.get("set", {}), where),
            )
        )
    grid = Grid(
        path=path,
        name=name,
        description=description,
        experiments=experiments,
        set=grid_set,
        overrides=list(overrides),
        base_dir=Path(base_dir).absolute() if base_dir is not None else Path.cwd(),
    )
    for point in grid.points():
        try:
            point.config()
        except ConfigError as exc:
            raise ConfigError(f"{path}: grid point {point.name}: {exc}") from None
    return grid


# ===================================================================== one run
def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _write_json(path: Path, data: Any) -> None:
    from seqprop.checkpoint import json_clean, write_text_atomic

    write_text_atomic(path, json.dumps(json_clean(data), indent=1) + "\n")


def _write_text(path: Path, text: str) -> None:
    from seqprop.checkpoint import write_text_atomic

    write_text_atomic(path, text)


def _split_summary(result: Any) -> dict[str, Any]:
    folded = result.folded or {}
    return {
        "n_sequences": int(result.n_sequences),
        "n_frames": int(result.n_frames),
        "loss": float(result.loss),
        "frame_accuracy": float(result.frame_accuracy),
        "majority_accuracy": float(result.majority_accuracy),
        "folded_accuracy": folded.get("frame_accuracy"),
    }


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
            out.append(_override(key, value))
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
        _write_json(result_path, result)
        return {**base, "status": "done", "result": result, "seconds": time.perf_counter() - t0}
    except Exception as exc:  # noqa: BLE001 - a failed run must not stop the grid
        message = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(OSError):
            run_dir.mkdir(parents=True, exist_ok=True)
            _write_text(
                run_dir / ERROR_NAME,
                f"run {point.name} failed at {_now()} on {platform.node()}\n{message}\n\n"
                + traceback.format_exc(),
            )
        logger.warning("run %s failed: %s", point.name, message)
        return {**base, "status": "failed", "error": message, "seconds": time.perf_counter() - t0}


def _train_and_evaluate(point: GridPoint, run_dir: Path, threads: int | None) -> dict[str, Any]:
    from seqprop.checkpoint import CHECKPOINT_NAME
    from seqprop.config import config_to_dict
    from seqprop.evaluation import evaluate
    from seqprop.training import Trainer, _open

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
    with trainer:
        t0 = time.perf_counter()
        trainer.fit()
        train_wall = time.perf_counter() - t0
        cfg = trainer.config
        net, pre, names = trainer.net, trainer.preprocessor, trainer.state.class_names
        batch = cfg.train.eval_batch_size
        splits: dict[str, Any] = {}
        t1 = time.perf_counter()
        splits["train"] = _split_summary(
            evaluate(net, trainer.train_data, pre, class_names=names, batch_size=batch)
        )
        if trainer.validation_data is not None:
            splits["validation"] = _split_summary(
                evaluate(net, trainer.validation_data, pre, class_names=names, batch_size=batch)
            )
        if trainer.test_result_ is not None:
            splits["test"] = _split_summary(trainer.test_result_)
        elif cfg.data.test:
            with _open(cfg.data.test, cfg.data.group, False, "test") as test:
                splits["test"] = _split_summary(
                    evaluate(net, test, pre, class_names=names, batch_size=batch)
                )
        eval_seconds = time.perf_counter() - t1
    history = trainer.history
    seconds = [float(r.get("seconds") or 0.0) for r in history]
    vseconds = [float(r.get("validation_seconds") or 0.0) for r in history]
    # the median: the first epoch of a worker also pays numba's compilation or cache load
    frames = sum(int(r.get("train_frames") or 0) for r in history)
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
        "window": m.window,
        "gradient": m.gradient,
        "n_parameters": int(net.num_parameters),
        "learning_rate": cfg.train.learning_rate,
        "max_epochs": cfg.train.max_epochs,
        "n_iter_no_change": cfg.train.n_iter_no_change,
        "epochs": int(trainer.n_epochs_),
        "best_epoch": int(trainer.best_epoch_),
        "best_validation_error": trainer.best_score_,
        "stop_reason": trainer.stop_reason_,
        "capped": trainer.stop_reason_.startswith("max_epochs"),
        "seconds_per_epoch": statistics.median(seconds) if seconds else None,
        "validation_seconds_per_epoch": statistics.median(vseconds) if vseconds else None,
        "frames_per_second": frames / sum(seconds) if sum(seconds) > 0 else None,
        "train_seconds": sum(seconds),
        "wall_seconds": train_wall,
        "evaluation_seconds": eval_seconds,
        "resumed": resumed,
        "splits": splits,
        "curve": [
            {
                "epoch": r.get("epoch"),
                "train_loss": r.get("train_loss"),
                "train_frame_error": r.get("train_frame_error"),
                "validation_loss": r.get("validation_loss"),
                "validation_frame_error": r.get("validation_frame_error"),
                "seconds": r.get("seconds"),
                "validation_seconds": r.get("validation_seconds"),
            }
            for r in history
        ],
        "config": config_to_dict(cfg),
        "data": {
            name: (getattr(cfg.data, name) and Path(getattr(cfg.data, name)).name)
            for name in ("train", "validation", "test")
        },
        "host": platform.node(),
        "threads": cfg.train.threads,
        "finished_at": _now(),
    }


# ===================================================================== the grid
@dataclass
class GridRun:
    """What one invocation of :func:`run_grid` did.

    Attributes
    ----------
    out : Path
    outcomes : list of dict
        :func:`run_point`'s return value for every selected point, in the
        order they finished (skipped ones first).
    wall_seconds : float
    """

    out: Path
    outcomes: list[dict[str, Any]]
    wall_seconds: float

    def names(self, status: str) -> list[str]:
        return [o["name"] for o in self.outcomes if o["status"] == status]

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [o for o in self.outcomes if o["status"] == "failed"]


def _load_invocations(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return data if isinstance(data, list) else []


def _dask_client(scheduler: str | None, n_workers: int) -> tuple[Any, Any]:
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise SeqpropError(
            "running a grid on a cluster needs dask.distributed: pip install "
            "'seqprop[experiments]' (or run the grid in this process with --serial)"
        ) from None
    if scheduler:
        try:
            return Client(scheduler, timeout="30s"), None
        except (OSError, TimeoutError) as exc:
            raise SeqpropError(f"cannot connect to the dask scheduler {scheduler}: {exc}") from None
    cluster = LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
    )
    return Client(cluster), cluster


def run_grid(
    grid: Grid,
    out: str | os.PathLike[str],
    *,
    only: Iterable[str] = (),
    scheduler: str | None = None,
    n_workers: int = 2,
    serial: bool = False,
    threads: int | None = 1,
    command: str | None = None,
    on_outcome: Callable[[dict[str, Any], int, int], None] | None = None,
) -> GridRun:
    """Run every point of ``grid`` that has not finished yet.

    Parameters
    ----------
    grid : Grid
    out : path
        Output directory; one run directory per point.
    only : iterable of str
        fnmatch patterns: run only the points whose name matches one.
    scheduler : str, optional
        Address of a running dask scheduler (``tcp://host:8786``): its workers
        run the jobs; they need seqprop importable and ``out`` and the data at
        the same paths. Default: a ``LocalCluster`` of ``n_workers`` processes
        with one thread each.
    n_workers : int
        Worker processes of the local cluster.
    serial : bool
        Run the points one after another in this process (no dask).
    threads : int or None
        ``train.threads`` of every run (see :func:`run_point`).
    command : str, optional
        The command line, recorded in ``grid-runs.json``.
    on_outcome : callable(outcome, i, n), optional
        Called as each run finishes (``i`` of ``n``), in this process.

    Returns
    -------
    GridRun
    """
    if n_workers < 1:
        raise ConfigError(f"n_workers must be >= 1, got {n_workers}")
    out = Path(out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    points = grid.points(only)
    if not points:
        raise ConfigError(f"no grid point of {grid.path} matches {list(only)}")
    _write_json(out / GRID_NAME, grid.to_dict())
    started, t0 = _now(), time.perf_counter()
    outcomes: list[dict[str, Any]] = []
    n = len(points)

    def record(outcome: dict[str, Any]) -> None:
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome, len(outcomes), n)

    todo = []
    for p in points:
        if (out / p.name / RESULT_NAME).is_file():
            record(run_point(p, out, threads=threads))
        else:
            todo.append(p)
    # longest jobs first: the ones allowed the most epochs
    todo.sort(key=lambda p: -_max_epochs(p))
    if todo and serial:
        for p in todo:
            record(run_point(p, out, threads=threads))
    elif todo:
        client, cluster = _dask_client(scheduler, n_workers)
        from distributed import as_completed

        try:
            stamp = f"{os.getpid()}-{int(time.time())}"
            futures = {}
            for rank, p in enumerate(todo):
                fut = client.submit(
                    run_point,
                    p,
                    str(out),
                    threads=threads,
                    key=f"seqprop-run-{p.name}-{stamp}",
                    pure=False,
                    priority=len(todo) - rank,
                )
                futures[fut] = p
            for fut in as_completed(list(futures)):
                p = futures[fut]
                try:
                    outcome = fut.result()
                except Exception as exc:  # noqa: BLE001 - worker lost, cancelled...
                    message = f"{type(exc).__name__}: {exc}"
                    with contextlib.suppress(OSError):
                        (out / p.name).mkdir(parents=True, exist_ok=True)
                        _write_text(out / p.name / ERROR_NAME, f"run {p.name}: {message}\n")
                    outcome = {"name": p.name, "status": "failed", "error": message,
                               "result": None, "seconds": None}  # fmt: skip
                record(outcome)
        finally:
            with contextlib.suppress(Exception):
                client.close()
            if cluster is not None:
                with contextlib.suppress(Exception):
                    cluster.close()
    wall = time.perf_counter() - t0
    run = GridRun(out=out, outcomes=outcomes, wall_seconds=wall)
    invocations = _load_invocations(out / INVOCATIONS_NAME)
    invocations.append(
        {
            "grid": str(grid.path),
            "command": command,
            "only": list(only),
            "started": started,
            "finished": _now(),
            "wall_seconds": wall,
            "executor": "serial" if serial else (scheduler or f"LocalCluster({n_workers})"),
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "done": run.names("done"),
            "skipped": run.names("skipped"),
            "failed": [{"name": o["name"], "error": o["error"]} for o in run.failed],
        }
    )
    _write_json(out / INVOCATIONS_NAME, invocations)
    return run


def _max_epochs(point: GridPoint) -> int:
    try:
        return int(point.config().train.max_epochs)
    except ConfigError:
        return 0


# ===================================================================== results
def collect_results(out: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Read every ``OUT/*/result.json``; also the errors of runs without a result.

    Returns
    -------
    results : list of dict
        Sorted by run name.
    errors : dict
        Run name -> first line of its ``error.txt`` (runs that failed and have
        not finished since).

    Raises
    ------
    SeqpropError
        ``out`` is not a directory.
    """
    out = Path(out)
    if not out.is_dir():
        raise SeqpropError(f"{out}: no such directory (the grid's output directory)")
    results, errors = [], {}
    for run_dir in sorted(p for p in out.iterdir() if p.is_dir()):
        rp = run_dir / RESULT_NAME
        if rp.is_file():
            try:
                data = json.loads(rp.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise SeqpropError(f"{rp}: not a readable result file: {exc}") from None
            if not isinstance(data, dict) or data.get("format") != RESULT_FORMAT:
                raise SeqpropError(f"{rp}: not a seqprop experiment result")
            results.append(data)
        elif (run_dir / ERROR_NAME).is_file():
            lines = (run_dir / ERROR_NAME).read_text(encoding="utf-8").splitlines()
            errors[run_dir.name] = lines[1] if len(lines) > 1 else (lines[0] if lines else "")
    return results, errors


@dataclass
class NetSummary:
    """The repeats (seeds) of one grid point, aggregated.

    Attributes
    ----------
    key : str
        ``experiment`` plus its varied values, e.g. ``lstm-d3``.
    label : str
        e.g. ``LSTM, delay 3``.
    experiment : str
    params : dict
    runs : list of dict
        The result dicts, by seed.
    """

    key: str
    label: str
    experiment: str
    params: dict[str, Any]
    runs: list[dict[str, Any]]

    @property
    def first(self) -> dict[str, Any]:
        return self.runs[0]

    def values(self, what: str) -> list[float]:
        """Per-run values: ``train``/``validation``/``test`` (accuracy), or a result key."""
        out = []
        for r in self.runs:
            if what in ("train", "validation", "test"):
                v = (r.get("splits", {}).get(what) or {}).get("frame_accuracy")
            else:
                v = r.get(what)
            if v is not None:
                out.append(float(v))
        return out

    def mean(self, what: str) -> float:
        v = self.values(what)
        return sum(v) / len(v) if v else float("nan")

    def std(self, what: str) -> float:
        v = self.values(what)
        if len(v) < 2:
            return float("nan")
        m = sum(v) / len(v)
        return math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))

    @property
    def n_capped(self) -> int:
        return sum(bool(r.get("capped")) for r in self.runs)

    @property
    def paper(self) -> dict[str, Any] | None:
        return paper_figures(self.first)


def paper_figures(result: Mapping[str, Any]) -> dict[str, Any] | None:
    """The :data:`PAPER_RESULTS` entry for a run's model settings, if any."""
    for entry in PAPER_RESULTS:
        if all(result.get(k) == v for k, v in entry.items() if k not in ("test", "epochs")):
            return entry
    return None


def _param_text(params: Mapping[str, Any]) -> str:
    parts = []
    for k, v in params.items():
        if k == "model.delay":
            parts.append(f"delay {v}")
        elif k == "model.window":
            parts.append(f"window {v}")
        else:
            parts.append(f"{k.rsplit('.', 1)[-1]} {v}")
    return ", ".join(parts)


def summarise(results: Iterable[Mapping[str, Any]]) -> list[NetSummary]:
    """Group results by experiment and varied values (over seeds), in a stable order.

    Order: experiments in order of first appearance... sorted by experiment
    name then by the varied values.
    """
    groups: dict[str, NetSummary] = {}
    for r in results:
        params = dict(r.get("params") or {})
        key = "-".join(
            [r["experiment"], *(f"{_tag(k)}{_value_text(v)}" for k, v in params.items())]
        )
        label = r.get("label") or r["experiment"]
        if params:
            label = f"{label}, {_param_text(params)}"
        if key not in groups:
            groups[key] = NetSummary(key, label, r["experiment"], params, [])
        groups[key].runs.append(dict(r))
    for g in groups.values():
        g.runs.sort(key=lambda r: r.get("seed", 0))
    return sorted(
        groups.values(),
        key=lambda g: (
            _EXPERIMENT_ORDER.get(g.first.get("kind"), 9),
            g.first.get("gradient") != "full",
            g.experiment,
            [_sort_value(v) for v in g.params.values()],
        ),
    )


_EXPERIMENT_ORDER = {"blstm": 0, "brnn": 1, "lstm": 2, "rnn": 3, "mlp": 4}


def _sort_value(v: Any) -> tuple[int, Any]:
    return (0, v) if isinstance(v, int | float) and not isinstance(v, bool) else (1, str(v))


# --------------------------------------------------------------------- findings
@dataclass
class Finding:
    """One of the paper's qualitative findings, checked on the results."""

    claim: str
    verdict: str  # "holds", "holds weakly", "does not hold", "not tested"
    evidence: str


def _pct(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f} %"


def _pm(g: NetSummary, what: str) -> str:
    m, s = g.mean(what), g.std(what)
    if math.isnan(m):
        return "n/a"
    if math.isnan(s):
        return f"{100 * m:.1f}"
    return f"{100 * m:.1f} ± {100 * s:.1f}"


def _noise(a: NetSummary, b: NetSummary, what: str = "test") -> float:
    """Seed-to-seed spread of a difference of means (0 when unknown)."""
    sa, sb = a.std(what), b.std(what)
    terms = [s * s / len(g.values(what)) for s, g in ((sa, a), (sb, b)) if not math.isnan(s)]
    return math.sqrt(sum(terms)) if terms else 0.0


def _find(groups: Sequence[NetSummary], kind: str, **params: Any) -> list[NetSummary]:
    out = []
    for g in groups:
        r = g.first
        if r.get("kind") != kind or r.get("gradient", "full") != "full":
            continue
        if all(r.get(k) == v for k, v in params.items()):
            out.append(g)
    return out


def _sweep(groups: Sequence[NetSummary], kind: str, key: str) -> list[NetSummary]:
    """The groups of ``kind`` (full gradient) sorted by ``key`` (delay or window)."""
    return sorted(_find(groups, kind), key=lambda g: g.first.get(key, 0))


def best_by_validation(sweep: Sequence[NetSummary]) -> NetSummary | None:
    """The setting with the best mean validation accuracy (how the paper's delays were chosen)."""
    cands = [g for g in sweep if not math.isnan(g.mean("validation"))]
    return max(cands, key=lambda g: g.mean("validation")) if cands else None


def _verdict(diff: float, noise: float) -> str:
    if diff > 0 and diff > noise:
        return "holds"
    if diff > 0:
        return "holds weakly"
    return "does not hold"


def findings(groups: Sequence[NetSummary]) -> list[Finding]:
    """Check the paper's qualitative findings on aggregated results.

    1. Bidirectional nets beat unidirectional ones at zero delay (BLSTM vs
       LSTM delay 0, BRNN vs RNN delay 0; test accuracy).
    2. A target delay helps unidirectional nets up to a few frames: the best
       delay (chosen on validation) is between 1 and 6 frames and beats delay 0
       on the test set.
    3. LSTM converges in far fewer epochs than the plain RNNs (best epoch,
       averaged over every delay; "far" = at least twice as fast).
    4. MLPs need a time window: the best window (chosen on validation) beats
       no window on the test set.

    "holds" when the difference exceeds its seed-to-seed standard error,
    "holds weakly" when it has the right sign only.
    """
    out: list[Finding] = []
    # 1 -------------------------------------------------------------------
    parts, verdicts = [], []
    for bi, uni, bname, uname in (
        ("blstm", "lstm", "BLSTM", "LSTM"),
        ("brnn", "rnn", "BRNN", "RNN"),
    ):
        b = _find(groups, bi)
        u = _find(groups, uni, delay=0)
        if not b or not u:
            continue
        b, u = b[0], u[0]
        diff = b.mean("test") - u.mean("test")
        noise = _noise(b, u)
        verdicts.append(_verdict(diff, noise))
        parts.append(
            f"{bname} {_pm(b, 'test')} vs {uname} (delay 0) {_pm(u, 'test')}: "
            f"{100 * diff:+.1f} points (seed-to-seed standard error {100 * noise:.1f})"
        )
    out.append(
        Finding(
            "Bidirectional nets beat unidirectional ones at zero delay",
            _combine(verdicts),
            "; ".join(parts) if parts else "needs BLSTM/BRNN and LSTM/RNN with delay 0",
        )
    )
    # 2 -------------------------------------------------------------------
    parts, verdicts = [], []
    for kind, name in (("lstm", "LSTM"), ("rnn", "RNN")):
        sweep = _sweep(groups, kind, "delay")
        zero = [g for g in sweep if g.first.get("delay") == 0]
        if len(sweep) < 2 or not zero:
            continue
        zero_g = zero[0]
        best = best_by_validation(sweep)
        d = best.first.get("delay")
        diff = best.mean("test") - zero_g.mean("test")
        noise = _noise(best, zero_g)
        v = _verdict(diff, noise) if 1 <= d <= 6 else "does not hold"
        verdicts.append(v)
        curve = ", ".join(f"{g.first.get('delay')}: {100 * g.mean('test'):.1f}" for g in sweep)
        last = sweep[-1]
        vdiff = best.mean("validation") - zero_g.mean("validation")
        parts.append(
            f"{name}: best delay on validation {d} frames ({100 * vdiff:+.1f} points over "
            f"delay 0 there), test {_pm(best, 'test')} vs "
            f"{_pm(zero_g, 'test')} at delay 0 ({100 * diff:+.1f} points, standard error "
            f"{100 * noise:.1f}), {_pm(last, 'test')} at the longest delay "
            f"({last.first.get('delay')}); test accuracy by delay {{{curve}}}"
        )
    out.append(
        Finding(
            "A target delay helps unidirectional nets, up to a few frames",
            _combine(verdicts),
            "; ".join(parts) if parts else "needs LSTM/RNN delay sweeps including delay 0",
        )
    )
    # 3 -------------------------------------------------------------------
    lstm = [r for g in _find(groups, "lstm") for r in g.runs]
    rnn = [r for g in _find(groups, "rnn") for r in g.runs]
    blstm = [r for g in _find(groups, "blstm") for r in g.runs]
    brnn = [r for g in _find(groups, "brnn") for r in g.runs]
    parts, verdicts = [], []
    for a, b, an, bn in ((lstm, rnn, "LSTM", "RNN"), (blstm, brnn, "BLSTM", "BRNN")):
        if not a or not b:
            continue
        ea = sum(r["best_epoch"] for r in a) / len(a)
        eb = sum(r["best_epoch"] for r in b) / len(b)
        capped = sum(bool(r.get("capped")) for r in b)
        ratio = eb / ea if ea > 0 else float("inf")
        verdicts.append("holds" if ratio >= 2 else "holds weakly" if ratio > 1 else "does not hold")
        early_a, early_b = _early_error(a), _early_error(b)
        parts.append(
            f"{an} best epoch {ea:.1f} on average over {len(a)} runs vs {bn} {eb:.1f} over "
            f"{len(b)} runs (ratio {ratio:.2f})"
            + (f"; {capped} {bn} runs stopped at max_epochs" if capped else "")
            + (
                f"; training frame error in epoch {_EARLY_EPOCH}: {an} {_pct(early_a)}, "
                f"{bn} {_pct(early_b)}"
                if not (math.isnan(early_a) or math.isnan(early_b))
                else ""
            )
        )
    out.append(
        Finding(
            "LSTM converges in far fewer epochs than plain RNNs",
            _combine(verdicts),
            "; ".join(parts) if parts else "needs LSTM and RNN runs",
        )
    )
    # 4 -------------------------------------------------------------------
    sweep = _sweep(groups, "mlp", "window")
    zero = [g for g in sweep if g.first.get("window") == 0]
    if len(sweep) >= 2 and zero:
        best = best_by_validation(sweep)
        diff = best.mean("test") - zero[0].mean("test")
        noise = _noise(best, zero[0])
        w = best.first.get("window")
        curve = ", ".join(f"{g.first.get('window')}: {100 * g.mean('test'):.1f}" for g in sweep)
        vdiff = best.mean("validation") - zero[0].mean("validation")
        out.append(
            Finding(
                "MLPs need a time window",
                _verdict(diff, noise) if w > 0 else "does not hold",
                f"best window on validation {w} frames either side ({100 * vdiff:+.1f} points "
                f"over no window there), test {_pm(best, 'test')} vs "
                f"{_pm(zero[0], 'test')} without a window ({100 * diff:+.1f} points, standard "
                f"error {100 * noise:.1f}); test accuracy by window {{{curve}}}",
            )
        )
    else:
        out.append(
            Finding("MLPs need a time window", "not tested", "needs an MLP window sweep with 0")
        )
    return out


_EARLY_EPOCH = 5


def _early_error(runs: Sequence[Mapping[str, Any]]) -> float:
    """Mean training frame error in epoch 5 (how fast training starts)."""
    vals = []
    for r in runs:
        curve = r.get("curve") or []
        if (
            len(curve) >= _EARLY_EPOCH
            and curve[_EARLY_EPOCH - 1].get("train_frame_error") is not None
        ):
            vals.append(float(curve[_EARLY_EPOCH - 1]["train_frame_error"]))
    return sum(vals) / len(vals) if vals else float("nan")


def _combine(verdicts: list[str]) -> str:
    if not verdicts:
        return "not tested"
    if all(v == "holds" for v in verdicts):
        return "holds"
    if all(v == "does not hold" for v in verdicts):
        return "does not hold"
    if any(v == "does not hold" for v in verdicts):
        return "holds in part"
    return "holds weakly"


# --------------------------------------------------------------------- figures
def _context_figure(groups: Sequence[NetSummary], path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    drew = False
    for kind, key, name, style in (
        ("lstm", "delay", "LSTM (target delay)", "o-"),
        ("rnn", "delay", "RNN (target delay)", "s-"),
        ("mlp", "window", "MLP (window either side)", "^-"),
    ):
        sweep = _sweep(groups, kind, key)
        if not sweep:
            continue
        x = [g.first.get(key) for g in sweep]
        y = [100 * g.mean("test") for g in sweep]
        e = [0.0 if math.isnan(g.std("test")) else 100 * g.std("test") for g in sweep]
        ax.errorbar(x, y, yerr=e, fmt=style, capsize=3, label=name)
        drew = True
    colors = iter(["black", "tab:gray", "tab:purple"])
    for g in groups:
        if g.first.get("kind") in ("blstm", "brnn"):
            trunc = g.first.get("gradient") == "truncated"
            ax.axhline(
                100 * g.mean("test"),
                linestyle=":" if trunc else "--",
                color=next(colors, "tab:brown"),
                label=g.label,
            )
            drew = True
    if not drew:
        plt.close(fig)
        return False
    ax.set_xlabel("frames of future context (target delay, or MLP half-window)")
    ax.set_ylabel("test frame accuracy (%)")
    ax.set_title("Test frame accuracy vs future context (mean ± sd over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main_nets(groups: Sequence[NetSummary]) -> list[NetSummary]:
    """The nets of the paper's main comparison: BLSTM, BRNN, LSTM and RNN at delay 0
    and at their best delay (validation), MLP at its best window, BLSTM truncated."""
    chosen: list[NetSummary] = []

    def add(g: NetSummary | None) -> None:
        if g is not None and g not in chosen:
            chosen.append(g)

    for kind in ("blstm", "brnn"):
        for g in _find(groups, kind):
            add(g)
    for kind in ("lstm", "rnn"):
        sweep = _sweep(groups, kind, "delay")
        add(next((g for g in sweep if g.first.get("delay") == 0), None))
        add(best_by_validation(sweep))
    sweep = _sweep(groups, "mlp", "window")
    add(next((g for g in sweep if g.first.get("window") == 0), None))
    add(best_by_validation(sweep))
    for g in groups:
        if g.first.get("gradient") == "truncated":
            add(g)
    return chosen


def curve_nets(groups: Sequence[NetSummary]) -> list[NetSummary]:
    """The nets of the learning-curve figure: BLSTM, BRNN (full gradient), LSTM and RNN
    at their best delay, MLP at its best window (both chosen on validation)."""
    chosen = [g for kind in ("blstm", "brnn") for g in _find(groups, kind)]
    for kind, key in (("lstm", "delay"), ("rnn", "delay"), ("mlp", "window")):
        best = best_by_validation(_sweep(groups, kind, key))
        if best is not None:
            chosen.append(best)
    return chosen


def mean_curve(g: NetSummary, what: str) -> tuple[list[int], list[float]]:
    """Per-epoch mean of ``what`` (a curve key) over the seeds, for the epochs that at
    least half of the runs reached (runs stop at different epochs)."""
    curves = [[c.get(what) for c in r.get("curve", [])] for r in g.runs if r.get("curve")]
    if not curves:
        return [], []
    need = max(1, math.ceil(len(curves) / 2))
    xs, ys = [], []
    for e in range(max(len(c) for c in curves)):
        vals = [c[e] for c in curves if e < len(c) and c[e] is not None]
        if len(vals) < need:
            break
        xs.append(e + 1)
        ys.append(sum(vals) / len(vals))
    return xs, ys


def _curves_figure(groups: Sequence[NetSummary], path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nets = curve_nets(groups)
    if not nets:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    cmap = plt.get_cmap("tab10")
    for i, g in enumerate(nets):
        color = cmap(i % 10)
        for ax, what in zip(axes, ("validation_frame_error", "train_frame_error"), strict=True):
            xs, ys = mean_curve(g, what)
            if not xs:
                continue
            ax.plot(xs, [100 * y for y in ys], color=color, lw=1.5, label=g.label)
            if what == "validation_frame_error":
                best = g.values("best_epoch")
                b = round(sum(best) / len(best)) if best else 0
                if 1 <= b <= len(xs):
                    ax.plot([xs[b - 1]], [100 * ys[b - 1]], "o", color=color, ms=5)
    axes[0].set_title("validation set (dot: mean best epoch)")
    axes[1].set_title("training set (during each epoch)")
    axes[0].set_ylabel("frame error (%), mean over seeds")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("epoch (log scale)")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=8, loc="lower left")
    fig.suptitle("Learning curves")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# --------------------------------------------------------------------- report
def _fmt_seconds(s: float | None) -> str:
    if s is None or (isinstance(s, float) and math.isnan(s)):
        return "n/a"
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def _epochs_text(g: NetSummary) -> str:
    be = g.values("best_epoch")
    text = f"{sum(be) / len(be):.0f}" if be else "n/a"
    if len(be) > 1:
        text += f" ({min(be):.0f}-{max(be):.0f})"
    return text


def _table(groups: Sequence[NetSummary]) -> list[str]:
    lines = [
        "| net | weights | runs | train % | validation % | test % | best epoch | "
        "epochs run | stopped by cap | s/epoch | paper test % | paper epochs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for g in groups:
        p = g.paper or {}
        ep = g.values("epochs")
        lines.append(
            f"| {g.label} | {g.first.get('n_parameters', 'n/a'):,} | {len(g.runs)} | "
            f"{_pm(g, 'train')} | {_pm(g, 'validation')} | {_pm(g, 'test')} | "
            f"{_epochs_text(g)} | {sum(ep) / len(ep):.0f} | "
            f"{g.n_capped}/{len(g.runs)} | {g.mean('seconds_per_epoch'):.2f} | "
            f"{p.get('test', '')} | {p.get('epochs', '')} |"
        )
    return lines


def write_report(
    out: str | os.PathLike[str],
    *,
    markdown: str | os.PathLike[str] | None = None,
    figures: str | os.PathLike[str] | None = None,
    command: str | None = None,
    title: str | None = None,
) -> Path:
    """Write the results of the runs in ``out`` as Markdown (and PNG figures).

    Parameters
    ----------
    out : path
        The grid's output directory (``run_grid``'s ``out``).
    markdown : path, optional
        The Markdown file (default ``OUT/RESULTS.md``); written atomically.
    figures : path, optional
        Directory of the PNG figures (default: ``figures/`` beside the
        Markdown file). Without matplotlib the figures are left out and the
        report says so.
    command : str, optional
        The command that regenerates the report, quoted in it.
    title : str, optional

    Returns
    -------
    Path
        The Markdown file.

    Raises
    ------
    SeqpropError
        ``out`` is missing or holds no finished run.
    """
    out = Path(out)
    results, errors = collect_results(out)
    if not results:
        raise SeqpropError(f"{out}: no finished run (no */{RESULT_NAME}); run the grid first")
    md_path = Path(markdown) if markdown is not None else out / "RESULTS.md"
    fig_dir = Path(figures) if figures is not None else md_path.parent / "figures"
    groups = summarise(results)
    grid_info: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        grid_info = json.loads((out / GRID_NAME).read_text(encoding="utf-8"))
    invocations = _load_invocations(out / INVOCATIONS_NAME)
    planned = [p["name"] for p in grid_info.get("points", [])]
    have = {r["name"] for r in results}
    missing = [n for n in planned if n not in have and n not in errors]

    figs: dict[str, Path] = {}
    fig_note = ""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        fig_note = "(matplotlib is not installed: no figures; pip install 'seqprop[plot]')"
    else:
        fig_dir.mkdir(parents=True, exist_ok=True)
        for name, fn in (("context", _context_figure), ("learning_curves", _curves_figure)):
            target = fig_dir / f"{name}.png"
            tmp = fig_dir / f".{name}.tmp.png"
            try:
                if fn(groups, tmp):
                    os.replace(tmp, target)
                    figs[name] = target
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()

    def rel(p: Path) -> str:
        return os.path.relpath(p.absolute(), md_path.absolute().parent).replace(os.sep, "/")

    r0 = results[0]
    splits0 = r0.get("splits", {})
    lines: list[str] = []
    lines.append(f"# {title or 'Results: ' + grid_info.get('name', out.name)}")
    lines.append("")
    lines.append(
        "<!-- generated by seqprop.experiments.write_report; do not edit: rerun the command "
        "below -->"
    )
    lines.append("")
    if command:
        lines.append(f"Generated by `{command}` from the runs in `{_display_path(out)}`")
    else:
        lines.append(f"Generated from the runs in `{_display_path(out)}`")
    if grid_info.get("grid"):
        lines[-1] += f" (grid `{_display_path(Path(grid_info['grid']))}`)"
    lines[-1] += "."
    if grid_info.get("description"):
        lines += ["", grid_info["description"].strip()]
    lines.append("")
    lines.append("## Setup")
    lines.append("")
    data = r0.get("data", {})
    for split in ("train", "validation", "test"):
        s = splits0.get(split)
        if s:
            lines.append(
                f"- {split}: `{data.get(split)}`, {s['n_sequences']} utterances, "
                f"{s['n_frames']:,} labelled frames"
                + (
                    f"; always answering the most frequent class scores "
                    f"{_pct(s['majority_accuracy'])}"
                    if split == "test"
                    else ""
                )
            )
    lrs = sorted({r.get("learning_rate") for r in results})
    caps = sorted({(r.get("experiment"), r.get("max_epochs")) for r in results})
    patience = sorted({r.get("n_iter_no_change") for r in results})
    cap_text = ", ".join(f"{e} {m}" for e, m in caps)
    cfg0 = r0.get("config", {}).get("train", {})
    lines.append(
        f"- training: online gradient descent (batch {cfg0.get('batch_size')}, loss "
        f"{cfg0.get('reduction')}med over frames), learning rate "
        f"{', '.join(f'{x:g}' for x in lrs)}, momentum {cfg0.get('momentum')}, "
        f"early stopping after {', '.join(str(p) for p in patience)} epochs without a new best "
        f"validation frame error, best-on-validation weights kept; max_epochs: {cap_text}"
    )
    seeds = sorted({r.get("seed") for r in results})
    lines.append(
        f"- {len(results)} runs, seeds {', '.join(str(s) for s in seeds)}; mean ± standard "
        "deviation over seeds"
    )
    if invocations:
        wall = sum(float(i.get("wall_seconds") or 0) for i in invocations)
        ex = invocations[-1]
        commands: dict[str, int] = {}
        for i in invocations:
            if i.get("command"):
                commands[i["command"]] = commands.get(i["command"], 0) + 1
        lines.append(
            f"- grid wall time {_fmt_seconds(wall)} over {len(invocations)} invocation(s) "
            f"({ex.get('executor')}, {ex.get('cpus')} CPUs on {ex.get('host')}); "
            + "; ".join(f"`{c}`" + (f" ({k} times)" if k > 1 else "") for c, k in commands.items())
        )
    lines.append("")

    lines.append("## Main comparison")
    lines.append("")
    lines.append(
        "Best delay and window chosen on the validation set. Frame accuracy (%) of the "
        "best-on-validation weights; paper figures: TIMIT, full-size nets (DESIGN.md section 1)."
    )
    lines.append("")
    lines += _table(main_nets(groups))
    lines.append("")

    lines.append("## Qualitative findings of the paper, checked on these runs")
    lines.append("")
    for f in findings(groups):
        lines.append(f"- **{f.claim}: {f.verdict}.** {f.evidence}.")
    lines.append("")
    lines.append(
        '"holds": the difference has the paper\'s sign and exceeds its seed-to-seed standard '
        'error; "holds weakly": right sign, within the noise.'
    )
    lines.append("")

    lines.append("## Figures")
    lines.append("")
    if "context" in figs:
        lines.append(f"![test accuracy vs context]({rel(figs['context'])})")
        lines.append("")
    if "learning_curves" in figs:
        lines.append(f"![learning curves]({rel(figs['learning_curves'])})")
        lines.append("")
    if fig_note:
        lines += [fig_note, ""]

    lines.append("## Every net")
    lines.append("")
    lines += _table(groups)
    lines.append("")
    capped = [g for g in groups if g.n_capped]
    if capped:
        lines.append(
            "**Cut short by max_epochs** (early stopping had not triggered; these nets might "
            "improve with more epochs): "
            + ", ".join(f"{g.label} ({g.n_capped}/{len(g.runs)})" for g in capped)
            + "."
        )
    else:
        lines.append("Every run ended by early stopping (none was cut short by max_epochs).")
    lines.append("")
    if errors or missing:
        lines.append("## Runs without a result")
        lines.append("")
        for name, err in sorted(errors.items()):
            lines.append(f"- `{name}`: failed: {err}")
        for name in missing:
            lines.append(f"- `{name}`: not run yet")
        lines.append("")
    lines.append("## Per run")
    lines.append("")
    lines.append("| run | weights | train % | validation % | test % | best epoch | epochs | "
                 "stop | s/epoch | frames/s |")  # fmt: skip
    lines.append("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for g in groups:
        for r in g.runs:
            sp = r.get("splits", {})
            lines.append(
                f"| {r['name']} | {r.get('n_parameters', 0):,} | "
                f"{_pct1((sp.get('train') or {}).get('frame_accuracy'))} | "
                f"{_pct1((sp.get('validation') or {}).get('frame_accuracy'))} | "
                f"{_pct1((sp.get('test') or {}).get('frame_accuracy'))} | "
                f"{r.get('best_epoch')} | {r.get('epochs')} | "
                f"{'max_epochs' if r.get('capped') else 'early'} | "
                f"{_num(r.get('seconds_per_epoch'), 2)} | {_num(r.get('frames_per_second'), 0)} |"
            )
    lines.append("")
    md_path.parent.mkdir(parents=True, exist_ok=True)
    _write_text(md_path, "\n".join(lines))
    return md_path


def _pct1(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"


def _num(x: float | None, digits: int) -> str:
    return "n/a" if x is None else f"{x:,.{digits}f}"


def _display_path(p: Path) -> str:
    try:
        return str(Path(p).absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(p)
