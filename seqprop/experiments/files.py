"""The files of a grid's output directory, and how they are written.

``OUT/grid.json`` holds the expanded grid, ``OUT/grid-runs.json`` one record per
invocation of the runner, and every run directory ``OUT/<run name>/`` ends with
``result.json`` (finished) or ``error.txt`` (failed); see the package docstring
of :mod:`seqprop.experiments` and ``experiments/README.md``.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

RESULT_NAME = "result.json"
"""A finished run's result (in its run directory); its presence marks the run done."""
ERROR_NAME = "error.txt"
"""A failed run's error and traceback (in its run directory)."""
GRID_NAME = "grid.json"
"""The expanded grid (in the output directory)."""
INVOCATIONS_NAME = "grid-runs.json"
"""A record of every invocation of the runner (in the output directory)."""
RESULT_FORMAT = "seqprop.experiment-result"
"""The ``format`` field of ``result.json``."""


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically (non-finite floats become null)."""
    from seqprop.checkpoint import json_clean, write_text_atomic

    write_text_atomic(path, json.dumps(json_clean(data), indent=1) + "\n")


def write_text(path: Path, text: str) -> None:
    """Write ``text`` atomically."""
    from seqprop.checkpoint import write_text_atomic

    write_text_atomic(path, text)


def load_invocations(path: Path) -> list[dict[str, Any]]:
    """The records of ``grid-runs.json``; an empty list when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return data if isinstance(data, list) else []
