"""Run a grid: every unfinished point as one job on dask.distributed (or in this process).

Jobs go to a ``LocalCluster`` of single-threaded worker processes, or to the
workers of a running scheduler (``--scheduler tcp://host:8786``). Finished runs
(those with ``result.json``) are skipped, a failed run is reported and retried
on the next invocation while the others go on, and every invocation is recorded
in ``grid-runs.json``; see ``experiments/README.md``. dask is imported only
here, and only when a grid runs on it.
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqprop.errors import ConfigError, SeqpropError
from seqprop.experiments.files import (
    GRID_NAME,
    INVOCATIONS_NAME,
    RESULT_NAME,
    load_invocations,
    now,
    write_json,
)
from seqprop.experiments.grid import Grid, GridPoint
from seqprop.experiments.point import record_failure, run_point

__all__ = ["GridRun", "run_grid"]

Outcome = dict[str, Any]
"""What :func:`~seqprop.experiments.point.run_point` returns for one run."""


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
    outcomes: list[Outcome]
    wall_seconds: float

    def names(self, status: str) -> list[str]:
        return [o["name"] for o in self.outcomes if o["status"] == status]

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o["status"] == "failed"]


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
    on_outcome: Callable[[Outcome, int, int], None] | None = None,
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
    only = list(only)
    points = grid.points(only)
    if not points:
        raise ConfigError(f"no grid point of {grid.path} matches {only}")
    write_json(out / GRID_NAME, grid.to_dict())
    started, t0 = now(), time.perf_counter()
    outcomes: list[Outcome] = []

    def record(outcome: Outcome) -> None:
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome, len(outcomes), len(points))

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
        _run_on_dask(todo, out, threads, scheduler, n_workers, record)
    run = GridRun(out=out, outcomes=outcomes, wall_seconds=time.perf_counter() - t0)
    executor = "serial" if serial else (scheduler or f"LocalCluster({n_workers})")
    _record_invocation(run, grid, only, command, started, executor)
    return run


def _max_epochs(point: GridPoint) -> int:
    try:
        return int(point.config().train.max_epochs)
    except ConfigError:
        return 0


def _run_on_dask(
    todo: Sequence[GridPoint],
    out: Path,
    threads: int | None,
    scheduler: str | None,
    n_workers: int,
    record: Callable[[Outcome], None],
) -> None:
    """Submit ``todo`` (in priority order) to dask; ``record`` each outcome as it comes."""
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
                outcome = _lost(p, out, f"{type(exc).__name__}: {exc}")
            record(outcome)
    finally:
        with contextlib.suppress(Exception):
            client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()


def _lost(point: GridPoint, out: Path, message: str) -> Outcome:
    """The outcome of a job that ended without a result of its own (its worker died...)."""
    record_failure(out / point.name, f"run {point.name}: {message}\n")
    return {"name": point.name, "status": "failed", "error": message, "result": None,
            "seconds": None}  # fmt: skip


def _dask_client(scheduler: str | None, n_workers: int) -> tuple[Any, Any]:
    """A client of the scheduler at ``scheduler``, or of a new local cluster (also returned)."""
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


def _record_invocation(
    run: GridRun,
    grid: Grid,
    only: list[str],
    command: str | None,
    started: str,
    executor: str,
) -> None:
    """Append what this invocation did to ``OUT/grid-runs.json``."""
    invocations = load_invocations(run.out / INVOCATIONS_NAME)
    invocations.append(
        {
            "grid": str(grid.path),
            "command": command,
            "only": only,
            "started": started,
            "finished": now(),
            "wall_seconds": run.wall_seconds,
            "executor": executor,
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "done": run.names("done"),
            "skipped": run.names("skipped"),
            "failed": [{"name": o["name"], "error": o["error"]} for o in run.failed],
        }
    )
    write_json(run.out / INVOCATIONS_NAME, invocations)
