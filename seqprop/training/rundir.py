"""A run directory: the files of one training run, and the lock that keeps it one writer's.

Layout (``docs/ARCHITECTURE.md``):

``config.toml``
    The resolved configuration (absolute paths).
``metrics.jsonl``
    One JSON object per finished epoch.
``checkpoint.h5``
    The latest training state (:mod:`seqprop.checkpoint`).
``best.h5``
    The best-on-validation model (what ``seqprop evaluate RUN_DIR`` uses).
``test.json``
    Scores of the best model on ``data.test``, when one is configured.
``.seqprop.lock``
    Holds an OS lock (``flock``) while a process trains in the directory,
    and that process's id. The lock dies with its process, so a killed run
    never leaves the directory locked; a second writer is refused with the
    holder's pid.

Every file is replaced atomically (written to a temporary name, fsync'ed,
renamed), so a run killed at any moment leaves a directory that
``seqprop train --resume`` continues.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from seqprop.checkpoint import (
    BEST_NAME,
    CHECKPOINT_NAME,
    TMP_MARK,
    json_clean,
    output_error,
    remove_stale_temporaries,
    write_text_atomic,
)
from seqprop.errors import ConfigError, RunDirectoryLocked

__all__ = [
    "CONFIG_NAME",
    "LOCK_NAME",
    "METRICS_NAME",
    "RUN_FILES",
    "TEST_NAME",
    "RunDirectory",
]

CONFIG_NAME = "config.toml"
METRICS_NAME = "metrics.jsonl"
TEST_NAME = "test.json"
LOCK_NAME = ".seqprop.lock"
RUN_FILES = (CONFIG_NAME, METRICS_NAME, CHECKPOINT_NAME, BEST_NAME, TEST_NAME)
"""Files seqprop writes into a run directory (``--overwrite`` removes exactly these)."""


class RunDirectory:
    """The files of one run in ``path``; :meth:`lock` before writing any of them."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock_fd: int | None = None

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"

    # -- names ---------------------------------------------------------------------
    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT_NAME

    @property
    def best(self) -> Path:
        return self.path / BEST_NAME

    @property
    def config(self) -> Path:
        return self.path / CONFIG_NAME

    @property
    def metrics(self) -> Path:
        return self.path / METRICS_NAME

    @property
    def test(self) -> Path:
        return self.path / TEST_NAME

    def has_run(self) -> bool:
        """True when the directory holds a run's configuration or checkpoint."""
        return self.checkpoint.exists() or self.config.exists()

    def _contents(self) -> list[Path]:
        """What is in the directory besides the lock and stale temporary files."""
        if not self.path.is_dir():
            return []
        return [
            p
            for p in self.path.iterdir()
            if p.name != LOCK_NAME and not (p.name.startswith(".") and TMP_MARK in p.name)
        ]

    # -- checks and creation -------------------------------------------------------
    def check_new(self, overwrite: bool) -> None:
        """Refuse a directory a new run cannot use, before any work is done.

        A directory holding only what a run killed during its very first write
        leaves (the lock, temporary files) counts as empty.
        """
        if not self.path.exists():
            return
        if not self.path.is_dir():
            raise ConfigError(f"run directory {self.path} exists and is not a directory")
        if self._contents() and not overwrite:
            raise ConfigError(
                f"run directory {self.path} is not empty; continue the run in it with "
                f"--resume {self.path}, start over with --overwrite, or choose another "
                "--run-dir"
            )

    def create(self, overwrite: bool) -> None:
        """Create (or with ``overwrite`` clear seqprop's files from) the directory, locked."""
        self.check_new(overwrite)
        self.path.mkdir(parents=True, exist_ok=True)
        self.lock()
        self.check_new(overwrite)  # again, now that no other seqprop process can write
        for name in RUN_FILES:
            with contextlib.suppress(FileNotFoundError):
                (self.path / name).unlink()
        remove_stale_temporaries(self.path)

    def reopen(self) -> None:
        """Lock an existing run's directory to continue it; clear stale temporary files."""
        self.lock()
        remove_stale_temporaries(self.path)

    # -- the lock ------------------------------------------------------------------
    def lock(self) -> None:
        """Take the directory's OS lock (idempotent); RunDirectoryLocked names the holder."""
        if self._lock_fd is not None:
            return
        fd = os.open(self.path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise RunDirectoryLocked(
                f"run directory {self.path} is in use by process {holder} (another seqprop "
                "command is training in it); wait for it to end or stop it"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def release(self) -> None:
        """Give up the lock (also happens when the process ends, however it ends)."""
        if self._lock_fd is not None:
            fd, self._lock_fd = self._lock_fd, None
            os.close(fd)

    @property
    def locked(self) -> bool:
        return self._lock_fd is not None

    # -- files ---------------------------------------------------------------------
    def write_config(self, text: str) -> None:
        write_text_atomic(self.config, text)

    def append_metrics(self, record: Mapping[str, Any]) -> None:
        """Add one epoch's line to ``metrics.jsonl`` (``record`` is already strict JSON)."""
        try:
            with open(self.metrics, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
        except OSError as exc:  # a full disk: one line naming the file
            raise output_error(self.metrics, exc) from None

    def rewrite_metrics(self, history: Iterable[Mapping[str, Any]]) -> None:
        """``metrics.jsonl`` exactly as ``history`` (when resuming from a checkpoint)."""
        write_text_atomic(self.metrics, "".join(json.dumps(json_clean(r)) + "\n" for r in history))

    def remove_best(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.best.unlink()

    def write_test(self, result: Mapping[str, Any]) -> None:
        write_text_atomic(self.test, json.dumps(json_clean(result), indent=1) + "\n")
