"""The corpus registry: what ``seqprop prepare NAME`` can prepare.

A corpus is a subclass of :class:`Corpus` with a ``name``, a one-line
``summary``, its command-line options (:meth:`Corpus.add_arguments`) and
:meth:`Corpus.prepare`, which writes one HDF5 dataset per split (format:
``docs/FORMAT.md``) and returns a :class:`Prepared` report. The
:func:`register` class decorator adds it to the registry; ``seqprop prepare``
lists the registered corpora (:func:`corpora`) and dispatches to one by name
(:func:`get_corpus`). ``docs/ARCHITECTURE.md`` shows where a new corpus plugs
in; :mod:`seqprop.corpora.synthetic` is a small complete example.

The module defining a corpus class must be cheap to import (no numpy, numba or
h5py at import time): listing the corpora imports every one of them. Heavy
work is imported inside :meth:`Corpus.prepare`.

The registry is filled only when corpus modules are imported (the built-in
ones, :data:`BUILTIN`, on first use); registering a second class under a name
already taken is an error, never a silent replacement.
"""

from __future__ import annotations

import argparse
import importlib
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from seqprop.errors import ConfigError

__all__ = [
    "BUILTIN",
    "Corpus",
    "CorpusRegistry",
    "Prepared",
    "corpora",
    "get_corpus",
    "register",
]

#: Modules of the built-in corpora, imported (and so registered) on first use.
BUILTIN = ("seqprop.corpora.timit", "seqprop.corpora.synthetic", "seqprop.corpora.arrays")

_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]*$")


@dataclass
class Prepared:
    """What :meth:`Corpus.prepare` wrote, and what ``seqprop prepare`` reports.

    Attributes
    ----------
    files : dict of split name -> Path
        The dataset files written, one per split.
    n_utterances, n_frames : dict of split name -> int
        Sequences and frames per split.
    headline : str
        First line of the report (what was prepared, from where, how long).
    notes : list of str
        Lines printed after the table of splits (e.g. what was left out).
    warnings : list of str
        Printed on stderr before the report (e.g. skipped input files).
    """

    files: dict[str, Path]
    n_utterances: dict[str, int]
    n_frames: dict[str, int]
    headline: str
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Corpus(ABC):
    """A corpus that ``seqprop prepare NAME`` turns into HDF5 datasets.

    Class attributes
    ----------------
    name : str
        The command-line name (lower case letters, digits, ``-``, ``_``).
    summary : str
        One line: the listing of ``seqprop prepare --list``.
    description : str
        Shown by ``seqprop prepare NAME --help`` above the options, verbatim
        (wrap it yourself); the summary when empty.
    epilog : str
        Shown verbatim after the options (details, examples); optional.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    description: ClassVar[str] = ""
    epilog: ClassVar[str] = ""

    @abstractmethod
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add this corpus's arguments and options to ``parser``."""

    @abstractmethod
    def prepare(self, args: argparse.Namespace, *, progress: bool = False) -> Prepared:
        """Write the datasets that ``args`` (parsed by :meth:`add_arguments`) ask for.

        Bad input raises :class:`seqprop.errors.SeqpropError` (one line naming
        what is wrong and where); ``progress`` asks for a progress bar.
        """


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class CorpusRegistry:
    """Corpus classes by name.

    Parameters
    ----------
    modules : sequence of str
        Modules that register corpora when imported; imported the first time
        the registry is read.
    """

    def __init__(self, modules: tuple[str, ...] = ()):
        self._modules = tuple(modules)
        self._imported = False
        self._classes: dict[str, type[Corpus]] = {}

    def register(self, cls: type[Corpus]) -> type[Corpus]:
        """Add a :class:`Corpus` subclass (usable as a class decorator).

        Raises
        ------
        ValueError
            Not a Corpus subclass, a bad name or summary, or the name taken
            by another class (importing the same module again is allowed).
        """
        if not (isinstance(cls, type) and issubclass(cls, Corpus)):
            raise ValueError(f"{cls!r} is not a subclass of seqprop.corpora.Corpus")
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ValueError(
                f"{_qualname(cls)}.name must be lower case letters, digits, '-' or '_', "
                f"got {name!r}"
            )
        summary = getattr(cls, "summary", None)
        if not isinstance(summary, str) or not summary.strip() or "\n" in summary:
            raise ValueError(f"{_qualname(cls)}.summary must be one non-empty line")
        taken = self._classes.get(name)
        if taken is not None and _qualname(taken) != _qualname(cls):
            raise ValueError(f"corpus name {name!r} is already taken by {_qualname(taken)}")
        self._classes[name] = cls
        return cls

    def _import_modules(self) -> None:
        if not self._imported:
            self._imported = True
            for module in self._modules:
                importlib.import_module(module)

    def names(self) -> tuple[str, ...]:
        """Registered corpus names, sorted."""
        self._import_modules()
        return tuple(sorted(self._classes))

    def get(self, name: str) -> Corpus:
        """A new instance of the corpus called ``name``.

        Raises
        ------
        ConfigError
            No such corpus (the message lists the known ones).
        """
        self._import_modules()
        cls = self._classes.get(name)
        if cls is None:
            raise ConfigError(f"unknown corpus {name!r}; known corpora: {', '.join(self.names())}")
        return cls()

    def __iter__(self) -> Iterator[Corpus]:
        """Instances of every registered corpus, sorted by name."""
        return (self.get(name) for name in self.names())


_registry = CorpusRegistry(BUILTIN)


def register(cls: type[Corpus]) -> type[Corpus]:
    """Class decorator: register a corpus for ``seqprop prepare`` (see :class:`Corpus`)."""
    return _registry.register(cls)


def get_corpus(name: str) -> Corpus:
    """The registered corpus called ``name`` (ConfigError listing the known ones if none)."""
    return _registry.get(name)


def corpora() -> list[Corpus]:
    """Every registered corpus (the built-in ones included), sorted by name."""
    return list(_registry)
