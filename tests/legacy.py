"""A pinned recipe for the HDF5 files seqprop 0.1.0 wrote (checkpoint format version 1).

The tests must show that checkpoints and run directories written by 0.1.0
still load and resume, without committing binary files. This module writes
those files with h5py alone, in exactly 0.1.0's layout, independent of
:mod:`seqprop.checkpoint` (which moves on). :data:`LAYOUT_0_1_0` pins the
structure of files 0.1.0 wrote (a BLSTM run: root attributes, datasets with
their dtypes and ranks, the keys of the JSON strings), taken from a real
0.1.0 run directory; :func:`layout` describes a file the same way so a test
can check that this writer still produces it.

Version 1 layout (root): attributes ``format``, ``format_version = 1``,
``content``, ``seqprop_version``, ``epoch``, ``delay`` (model files also
``score``); datasets ``parameters``, ``spec`` (JSON), ``class_names``,
``norm_mean`` / ``norm_std`` (optional), ``config`` (JSON); a training file
also ``velocity`` (the SGD momentum), ``best_parameters`` (optional), ``order``
/ ``order_offsets`` (mid-epoch only) and ``state`` (JSON, with the optimiser's
name and numbers under ``"optimizer"``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

VERSION = "0.1.0"

_STR = "str"  # a variable-length UTF-8 string (attribute or dataset)

SPEC_KEYS = (
    "activation",
    "dtype",
    "gradient",
    "hidden_size",
    "input_size",
    "kind",
    "num_classes",
    "num_layers",
    "squash",
    "window",
)
"""The ``make_network`` arguments a 0.1.0 ``spec`` holds."""

CONFIG_KEYS = {
    "data": ("group", "in_memory", "normalise", "test", "train", "validation"),
    "model": (
        "activation",
        "delay",
        "dtype",
        "gradient",
        "hidden_size",
        "kind",
        "num_layers",
        "squash",
        "window",
    ),
    "train": (
        "batch_size",
        "checkpoint_every",
        "checkpoint_seconds",
        "eval_batch_size",
        "learning_rate",
        "max_epochs",
        "momentum",
        "n_iter_no_change",
        "progress",
        "reduction",
        "seed",
        "shuffle",
        "sort_by_length",
        "threads",
    ),
}
"""The keys of each section of a 0.1.0 run configuration (besides top-level ``run_dir``)."""

_JSON_KEYS = {
    "spec": list(SPEC_KEYS),
    "config": ["data", "model", "run_dir", "train"],
    **{f"config.{name}": list(keys) for name, keys in CONFIG_KEYS.items()},
}

LAYOUT_0_1_0: dict[str, dict[str, Any]] = {
    "training": {
        "attrs": {
            "content": _STR,
            "delay": "int64",
            "epoch": "int64",
            "format": _STR,
            "format_version": "int64",
            "seqprop_version": _STR,
        },
        "datasets": {
            "best_parameters": ("float64", 1),
            "class_names": (_STR, 1),
            "config": (_STR, 0),
            "norm_mean": ("float64", 1),
            "norm_std": ("float64", 1),
            "parameters": ("float64", 1),
            "spec": (_STR, 0),
            "state": (_STR, 0),
            "velocity": ("float64", 1),
        },
        "groups": [],
        "json": {
            **_JSON_KEYS,
            "state": [
                "best_epoch",
                "best_score",
                "epoch",
                "epoch_sums",
                "finished",
                "history",
                "n_no_change",
                "optimizer",
                "position",
                "rng_state",
                "stop_reason",
            ],
            "state.optimizer": ["learning_rate", "momentum", "n_steps", "name"],
        },
        "values": {"format": "seqprop.checkpoint", "format_version": 1, "content": "training"},
    },
    "model": {
        "attrs": {
            "content": _STR,
            "delay": "int64",
            "epoch": "int64",
            "format": _STR,
            "format_version": "int64",
            "score": "float64",
            "seqprop_version": _STR,
        },
        "datasets": {
            "class_names": (_STR, 1),
            "config": (_STR, 0),
            "norm_mean": ("float64", 1),
            "norm_std": ("float64", 1),
            "parameters": ("float64", 1),
            "spec": (_STR, 0),
        },
        "groups": [],
        "json": _JSON_KEYS,
        "values": {"format": "seqprop.checkpoint", "format_version": 1, "content": "model"},
    },
}
"""The structure of a 0.1.0 ``checkpoint.h5`` (finished run, with best weights) and
``best.h5`` of a float64 network with normalisation."""


def spec_0_1_0(spec: dict) -> dict:
    """A network spec as 0.1.0 wrote it: only the keys it knew."""
    return {k: spec[k] for k in SPEC_KEYS}


def config_0_1_0(config: dict) -> dict:
    """A run configuration as 0.1.0 wrote it: only the keys it knew (no ``train.optimizer``)."""
    out: dict[str, Any] = {"run_dir": config.get("run_dir")}
    for name, keys in CONFIG_KEYS.items():
        out[name] = {k: config[name][k] for k in keys}
    return out


# ------------------------------------------------------------------ writing
def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, allow_nan=True)


def _write_common(f, *, content, parameters, spec, class_names, mean, std, delay, config, epoch):
    f.attrs["format"] = "seqprop.checkpoint"
    f.attrs["format_version"] = 1
    f.attrs["content"] = content
    f.attrs["seqprop_version"] = VERSION
    f.attrs["epoch"] = int(epoch)
    f.attrs["delay"] = int(delay)
    f.create_dataset("parameters", data=np.ascontiguousarray(parameters))
    f.create_dataset("spec", data=_json(spec))
    f.create_dataset(
        "class_names",
        data=np.array([str(c) for c in class_names], dtype=object),
        dtype=h5py.string_dtype("utf-8"),
    )
    if mean is not None and std is not None:
        f.create_dataset("norm_mean", data=np.asarray(mean, dtype=np.float64))
        f.create_dataset("norm_std", data=np.asarray(std, dtype=np.float64))
    f.create_dataset("config", data=_json(config))


def write_model(
    path: str | Path,
    parameters: np.ndarray,
    *,
    spec: dict,
    class_names: list[str],
    mean: np.ndarray | None = None,
    std: np.ndarray | None = None,
    delay: int = 0,
    config: dict | None = None,
    epoch: int = 0,
    score: float | None = None,
) -> Path:
    """A 0.1.0 model file (``best.h5``)."""
    with h5py.File(path, "w") as f:
        _write_common(
            f,
            content="model",
            parameters=parameters,
            spec=spec,
            class_names=class_names,
            mean=mean,
            std=std,
            delay=delay,
            config=config,
            epoch=epoch,
        )
        f.attrs["score"] = np.nan if score is None else float(score)
    return Path(path)


def write_training_checkpoint(
    path: str | Path,
    *,
    config: dict,
    spec: dict,
    class_names: list[str],
    parameters: np.ndarray,
    velocity: np.ndarray,
    optimizer: dict,
    rng_state: dict,
    mean: np.ndarray | None = None,
    std: np.ndarray | None = None,
    epoch: int = 0,
    position: int = 0,
    order: np.ndarray | None = None,
    order_offsets: np.ndarray | None = None,
    epoch_sums: dict | None = None,
    history: list | None = None,
    best_parameters: np.ndarray | None = None,
    best_score: float = float("inf"),
    best_epoch: int = 0,
    n_no_change: int = 0,
    finished: bool = False,
    stop_reason: str = "",
) -> Path:
    """A 0.1.0 training checkpoint (``checkpoint.h5``).

    ``optimizer`` holds what 0.1.0 kept in its state JSON: ``name`` ("sgd"),
    ``learning_rate``, ``momentum``, ``n_steps``; ``velocity`` becomes the
    root dataset.
    """
    scalars = {
        "epoch": int(epoch),
        "position": int(position),
        "rng_state": rng_state,
        "optimizer": optimizer,
        "epoch_sums": epoch_sums or {},
        "history": history or [],
        "best_score": float(best_score),
        "best_epoch": int(best_epoch),
        "n_no_change": int(n_no_change),
        "finished": bool(finished),
        "stop_reason": stop_reason,
    }
    with h5py.File(path, "w") as f:
        _write_common(
            f,
            content="training",
            parameters=parameters,
            spec=spec,
            class_names=class_names,
            mean=mean,
            std=std,
            delay=int(config.get("model", {}).get("delay", 0)),
            config=config,
            epoch=epoch,
        )
        f.create_dataset("velocity", data=np.ascontiguousarray(velocity))
        if best_parameters is not None:
            f.create_dataset("best_parameters", data=np.ascontiguousarray(best_parameters))
        if order is not None:
            f.create_dataset("order", data=np.asarray(order, dtype=np.int64))
            f.create_dataset("order_offsets", data=np.asarray(order_offsets, dtype=np.int64))
        f.create_dataset("state", data=_json(scalars))
    return Path(path)


# ------------------------------------------------------------------ describing
def _kind(dtype: np.dtype) -> str:
    return _STR if h5py.check_string_dtype(dtype) is not None else str(dtype)


def layout(path: str | Path) -> dict[str, Any]:
    """The structure of a checkpoint file, in the form of :data:`LAYOUT_0_1_0`."""
    with h5py.File(path, "r") as f:
        attrs = {}
        for name in f.attrs:
            attrs[name] = _kind(f.attrs.get_id(name).dtype)
        datasets, groups, texts = {}, [], {}
        for name, item in f.items():
            if isinstance(item, h5py.Group):
                groups.append(name)
                continue
            datasets[name] = (_kind(item.dtype), item.ndim)
            if item.ndim == 0 and h5py.check_string_dtype(item.dtype) is not None:
                texts[name] = json.loads(item[()])
        keys = {}
        for name in ("spec", "state", "config"):
            if isinstance(texts.get(name), dict):
                keys[name] = sorted(texts[name])
        for name, value in (texts.get("config") or {}).items():
            if isinstance(value, dict):
                keys[f"config.{name}"] = sorted(value)
        if isinstance(texts.get("state"), dict) and "optimizer" in texts["state"]:
            keys["state.optimizer"] = sorted(texts["state"]["optimizer"])
        values = {}
        for name in ("format", "format_version", "content"):
            value = f.attrs.get(name)
            values[name] = value.item() if isinstance(value, np.generic) else value
    return {
        "attrs": attrs,
        "datasets": datasets,
        "groups": sorted(groups),
        "json": keys,
        "values": values,
    }
