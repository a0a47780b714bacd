"""PNG figures of a results report, drawn with matplotlib (an optional dependency).

A report names its figures (:class:`Figure`: a file name, the Markdown alt text
and a function that draws it); :func:`write_figures` draws them into a
directory, each written atomically.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqprop.experiments.results import NetSummary

__all__ = ["Figure", "have_matplotlib", "pyplot", "save", "write_figures"]

DPI = 110


@dataclass(frozen=True)
class Figure:
    """One figure of a report.

    Attributes
    ----------
    name : str
        File name without ``.png``.
    alt : str
        The image's alt text in the Markdown.
    draw : callable(groups, path) -> bool
        Draws the figure of the grouped results into the PNG file ``path``;
        False (and no file) when the results hold nothing to draw.
    """

    name: str
    alt: str
    draw: Callable[[Sequence[NetSummary], Path], bool]


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, path: Path) -> None:
    """Lay out ``fig``, write it to ``path`` as PNG and close it."""
    plt = pyplot()
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def write_figures(
    figures: Sequence[Figure], groups: Sequence[NetSummary], directory: Path
) -> dict[str, Path]:
    """Draw ``figures`` into ``directory/<name>.png``; the name -> file of those drawn."""
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for figure in figures:
        target = directory / f"{figure.name}.png"
        tmp = directory / f".{figure.name}.tmp.png"
        try:
            if figure.draw(groups, tmp):
                os.replace(tmp, target)
                written[figure.name] = target
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return written
