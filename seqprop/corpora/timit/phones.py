"""TIMIT phone maps: phone list, phone folding, core test speakers.

The files ship inside the package, next to this module (so that an installed
package has them); the source tree's ``datasets/timit/`` links to them. Files
(plain text, ``#`` comments, one entry per line):

``phones61.txt``
    The 61 TIMIT phones in class order (ASCII sort order): class k of a
    prepared TIMIT dataset is line k.
``phones61-48-39.txt``
    Lee & Hon (1989) folding, columns ``phone61 phone48 phone39``; ``q`` has a
    single column (deleted: no folded label).
``core_test_speakers.txt``
    The 24 core test set speakers (lower case), usable as a split spec
    (``--split core_test=@core_test_speakers.txt``).
"""

from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path

__all__ = [
    "FILES",
    "core_test_speakers",
    "data_file",
    "fold_map",
    "fold_labels",
    "folded_phones",
    "phones61",
]

FILES = ("phones61.txt", "phones61-48-39.txt", "core_test_speakers.txt")


def data_file(name: str) -> Path:
    """Path of one of the TIMIT data files (see :data:`FILES`)."""
    if name not in FILES:
        raise ValueError(f"unknown TIMIT recipe file {name!r}; known: {', '.join(FILES)}")
    return Path(str(importlib.resources.files(__package__).joinpath(name)))


def _lines(name: str) -> list[list[str]]:
    text = data_file(name).read_text(encoding="utf-8")
    rows = []
    for line in text.splitlines():
        # '#' starts a comment only at the beginning of a line (h# is a phone)
        if line.strip() and not line.startswith("#"):
            rows.append(line.split())
    return rows


@functools.cache
def phones61() -> tuple[str, ...]:
    """The 61 TIMIT phones in class order."""
    phones = tuple(row[0] for row in _lines("phones61.txt"))
    if len(phones) != 61 or len(set(phones)) != 61:
        raise RuntimeError(f"{data_file('phones61.txt')} does not list 61 distinct phones")
    return phones


@functools.cache
def _fold_table() -> dict[str, tuple[str | None, str | None]]:
    table: dict[str, tuple[str | None, str | None]] = {}
    for row in _lines("phones61-48-39.txt"):
        table[row[0]] = (row[1], row[2]) if len(row) == 3 else (None, None)
    if set(table) != set(phones61()):
        raise RuntimeError(f"{data_file('phones61-48-39.txt')} does not cover the 61 phones")
    return table


def fold_map(target: int = 39) -> dict[str, str | None]:
    """Map each of the 61 phones to its 48- or 39-class phone (``q`` -> None).

    Parameters
    ----------
    target : {39, 48}
    """
    if target not in (39, 48):
        raise ValueError(f"target must be 39 or 48, got {target}")
    col = 0 if target == 48 else 1
    return {p: folded[col] for p, folded in _fold_table().items()}


def folded_phones(target: int = 39) -> tuple[str, ...]:
    """The folded phone set, sorted (39 or 48 names)."""
    return tuple(sorted({v for v in fold_map(target).values() if v is not None}))


def fold_labels(labels, target: int = 39):
    """Fold 61-class frame labels to ``target`` classes.

    Parameters
    ----------
    labels : np.ndarray of int, any shape
        Class indices into :func:`phones61`; -1 = unlabelled.
    target : {39, 48}

    Returns
    -------
    np.ndarray of int64, same shape
        Indices into :func:`folded_phones`; -1 where the input is -1 or the
        phone is ``q``.
    """
    import numpy as np

    mapping = fold_map(target)
    index = {p: i for i, p in enumerate(folded_phones(target))}
    lut = np.array(
        [index[mapping[p]] if mapping[p] is not None else -1 for p in phones61()] + [-1],
        dtype=np.int64,
    )
    labels = np.asarray(labels)
    if labels.size and (labels.min() < -1 or labels.max() >= 61):
        raise ValueError("labels must be in [-1, 61)")
    return lut[labels]  # -1 indexes the trailing -1


def core_test_speakers() -> tuple[str, ...]:
    """The 24 TIMIT core test set speaker ids (lower case)."""
    return tuple(row[0] for row in _lines("core_test_speakers.txt"))
