"""Grid files: reading and checking them, and expanding them into training runs.

A grid lists experiments (a training configuration each), the values to vary
and the seeds to repeat every point with; the file format, the order in which
overrides apply and how runs are named are described in the docstring of
:mod:`seqprop.experiments` and in ``experiments/README.md``. The grids of
Graves & Schmidhuber (2005, section 5: target delays and time windows of 0-10
frames) are ``experiments/configs/*/grid.toml``.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqprop.errors import ConfigError

__all__ = ["Experiment", "Grid", "GridPoint", "load_grid", "override", "point_key"]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+]*$")
_TAGS = {"model.delay": "d", "model.window": "w", "model.hidden_size": "h"}
_GRID_KEYS = ("name", "description", "seeds", "set", "experiment")
_EXPERIMENT_KEYS = ("name", "label", "config", "vary", "seeds", "set")


# ===================================================================== the grid
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
    """One ``[[experiment]]`` of a grid file."""

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
        """Every run of the grid, in file order; ``only``: fnmatch patterns on run names.

        Raises
        ------
        ConfigError
            Two points get the same name.
        """
        patterns = list(only)
        out: list[GridPoint] = []
        seen: dict[str, str] = {}
        for exp in self.experiments:
            for params in _combinations(exp.vary):
                for seed in exp.seeds:
                    name = f"{point_key(exp.name, params)}-s{seed}"
                    if name in seen:
                        raise ConfigError(
                            f"{self.path}: two grid points are both named {name!r} "
                            f"(experiments {seen[name]!r} and {exp.name!r})"
                        )
                    seen[name] = exp.name
                    point = self._point(exp, name, params, seed)
                    if not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns):
                        out.append(point)
        return out

    def _point(
        self, exp: Experiment, name: str, params: tuple[tuple[str, Any], ...], seed: int
    ) -> GridPoint:
        """The run ``name`` of ``exp`` at the varied values ``params`` with ``seed``."""
        overrides = (
            [override(k, v) for k, v in self.set.items()]
            + [override(k, v) for k, v in exp.set.items()]
            + list(self.overrides)
            + [override(k, v) for k, v in params]
            + [override("train.seed", seed)]
        )
        return GridPoint(
            name=name,
            experiment=exp.name,
            label=exp.label,
            config_path=str(exp.config),
            params=params,
            seed=int(seed),
            overrides=tuple(overrides),
            base_dir=str(self.base_dir),
        )

    def to_dict(self, points: Sequence[GridPoint] | None = None) -> dict[str, Any]:
        pts = self.points() if points is None else points
        return {
            "grid": str(self.path),
            "name": self.name,
            "description": self.description,
            "points": [p.to_dict() for p in pts],
        }


def _combinations(vary: Mapping[str, list[Any]]) -> list[tuple[tuple[str, Any], ...]]:
    """The cartesian product of the varied values, as ``((key, value), ...)`` tuples."""
    keys = list(vary)
    combos = itertools.product(*(vary[k] for k in keys)) if keys else [()]
    return [tuple(zip(keys, combo, strict=True)) for combo in combos]


# ===================================================================== naming
def point_key(experiment: str, params: Iterable[tuple[str, Any]]) -> str:
    """The run name without its seed: ``experiment`` and one ``-<tag><value>`` per varied key.

    The tag is ``d`` for ``model.delay``, ``w`` for ``model.window``, ``h`` for
    ``model.hidden_size`` and the key's last part otherwise: ``lstm-d3``.
    """
    return "-".join([experiment] + [f"{_tag(k)}{_value_text(v)}" for k, v in params])


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


def override(key: str, value: Any) -> str:
    """``key=value`` with ``value`` as a TOML literal, as ``--set`` takes it."""
    from seqprop.config import toml_literal

    try:
        return f"{key}={toml_literal(value)}"
    except TypeError:
        raise ConfigError(
            f"cannot use {type(value).__name__} {value!r} as a configuration value"
        ) from None


# ===================================================================== reading
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
    data = _read_toml(path)
    _check_keys(data, _GRID_KEYS, f"{path}", "a grid")
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
    for i, table in enumerate(raw):
        names = [e.name for e in experiments]
        experiments.append(_experiment(table, path, i, names, grid_seeds, seeds))
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


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: grid file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the grid: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _check_keys(table: Mapping[str, Any], allowed: Sequence[str], where: str, what: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key {key!r}; {what} accepts {', '.join(allowed)}")


def _experiment(
    table: Any,
    path: Path,
    index: int,
    names: Sequence[str],
    grid_seeds: list[int],
    seeds: Sequence[int] | None,
) -> Experiment:
    """The checked ``index``-th ``[[experiment]]`` table of the grid file ``path``.

    ``names``: the experiments before it; ``seeds`` (the command line's) replace
    the experiment's and the grid's ``grid_seeds``. The configuration path is
    relative to the grid file.
    """
    where = f"{path}: experiment {index + 1}"
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: must be a table")
    _check_keys(table, _EXPERIMENT_KEYS, where, "an experiment")
    name = table.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name) or "-" in name:
        raise ConfigError(
            f"{where}: name must be letters, digits, '_', '.' or '+' (it starts the run "
            f"names), got {name!r}"
        )
    if name in names:
        raise ConfigError(f"{where}: experiment name {name!r} used twice")
    where = f"{path}: experiment {name!r}"
    config = table.get("config")
    if not isinstance(config, str) or not config:
        raise ConfigError(f"{where}: config must name a configuration file")
    config_path = (path.parent / config).resolve()
    if not config_path.is_file():
        raise ConfigError(f"{where}: configuration file {config_path} not found")
    label = table.get("label", name)
    if not isinstance(label, str):
        raise ConfigError(f"{where}: label must be a string")
    vary = _vary_table(table.get("vary", {}), where)
    if seeds is not None:
        exp_seeds = _seed_list(list(seeds), "seeds")
    elif "seeds" in table:
        exp_seeds = _seed_list(table["seeds"], where)
    else:
        exp_seeds = list(grid_seeds)
    return Experiment(
        name=name,
        label=label,
        config=config_path,
        vary=vary,
        seeds=exp_seeds,
        set=_set_table(table.get("set", {}), where),
    )


def _vary_table(value: Any, where: str) -> dict[str, list[Any]]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: vary must be a table of key = [values]")
    vary = _flatten(value)
    for k, values in vary.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: vary.{k} must be a non-empty list, got {values!r}")
        if len({json.dumps(v) for v in values}) != len(values):
            raise ConfigError(f"{where}: vary.{k} repeats a value: {values}")
        if k == "train.seed":
            raise ConfigError(f"{where}: vary train.seed through seeds = [...] instead")
    return vary


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
