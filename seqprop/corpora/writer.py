"""Write a corpus's splits into a directory, all of them or none.

Every corpus recipe (:mod:`seqprop.corpora.timit`, :mod:`seqprop.corpora.synthetic`)
writes its HDF5 files through :class:`SplitWriter`, so that a failed or
interrupted preparation never leaves a half-written corpus behind. The file
format is the one of :func:`seqprop.data.write_dataset`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from seqprop.errors import DataError, OutputError

__all__ = ["SplitWriter"]


class SplitWriter:
    """Write one dataset file per split into a directory, all of them or none.

    Every split is written to a hidden temporary file first; :meth:`commit`
    renames them all into place. Leaving the ``with`` block without a commit
    (an error, an interrupt) removes the temporary files, so a failed
    preparation never leaves a half-written corpus behind.

    Parameters
    ----------
    out_dir : path
        Created (with its parents) when the first split is written; must not
        be a file. A directory this writer created and left empty (nothing
        committed) is removed again on leaving the ``with`` block.
    splits : iterable of str
        Split names; the files are ``out_dir/<split>.h5``.
    overwrite : bool
        Replace existing split files (else :class:`DataError` before any work).
    progress : bool or callable(done, total)
        A tqdm bar with ``desc``, or a function called after each :meth:`tick`.
    total : int
        Units of work for the progress report.
    """

    def __init__(
        self, out_dir, splits: Iterable[str], *, overwrite=False, progress=False, total=0, desc=""
    ):
        out = Path(out_dir)
        if out.exists() and not out.is_dir():
            raise DataError(f"output {out} exists and is not a directory")
        self.targets = {name: out / f"{name}.h5" for name in splits}
        if not overwrite:
            for path in self.targets.values():
                if path.exists():
                    raise DataError(f"{path} already exists (use --overwrite to replace it)")
        self.out_dir = out
        self._created: list[Path] = []
        self._partial: dict[str, Path] = {}
        self.written: dict[str, Path] = {}
        self._total = total
        self._done = 0
        self._bar = None
        self._callback: Callable[[int, int], None] | None = None
        if progress is True:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, unit="utt", desc=desc)
        elif callable(progress):
            self._callback = progress

    def tick(self) -> None:
        """One unit of work done (progress report)."""
        self._done += 1
        if self._bar is not None:
            self._bar.update(1)
        elif self._callback is not None:
            self._callback(self._done, self._total)

    def write(self, split: str, inputs, targets, **kwargs) -> None:
        """Write ``split`` to its temporary file (arguments of :func:`seqprop.data.write_dataset`)."""
        from seqprop.data import write_dataset

        if not self.out_dir.is_dir():
            missing = [self.out_dir, *self.out_dir.parents]
            missing = [p for p in missing if not p.exists()]
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self._created = missing  # deepest first
        tmp = self.targets[split].with_name(f".{split}.h5.partial-{os.getpid()}")
        self._partial[split] = tmp
        try:
            write_dataset(tmp, inputs, targets, overwrite=True, **kwargs)
        except OutputError as exc:  # name the split's file, not the temporary one
            from seqprop.checkpoint import output_error

            raise output_error(
                self.targets[split],
                OSError(exc.errno, os.strerror(exc.errno) if exc.errno else str(exc)),
            ) from None

    def commit(self) -> dict[str, Path]:
        """Rename every written split into place; returns split -> path."""
        for split, tmp in self._partial.items():
            os.replace(tmp, self.targets[split])
            self.written[split] = self.targets[split]
        return dict(self.written)

    def __enter__(self) -> SplitWriter:
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.close()
        for split, tmp in self._partial.items():
            if split not in self.written and tmp.exists():
                tmp.unlink()
        for directory in self._created:  # deepest first; only the still empty ones
            try:
                directory.rmdir()
            except OSError:
                break
