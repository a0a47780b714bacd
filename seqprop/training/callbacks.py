"""Callbacks: what happens around the training loop, each in its own small class.

:class:`Callback` is the hook API a user extends; the trainer itself is built
from the same parts: :class:`~seqprop.training.stopping.EarlyStopping` (which
epoch is best, when to stop), :class:`Checkpointer` (the checkpoint and best
model), :class:`MetricsLog` (``metrics.jsonl``) and :class:`ProgressBar`
(tqdm). The trainer calls its own parts first, in that order, then the
user's callbacks.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from seqprop.training.rundir import RunDirectory
    from seqprop.training.trainer import Trainer

__all__ = ["Callback", "Checkpointer", "MetricsLog", "ProgressBar"]


class Callback:
    """Hooks called by :class:`~seqprop.training.Trainer`; subclass and override what you need."""

    def on_train_begin(self, trainer: Trainer) -> None:
        """Before the first update (also when resuming)."""

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        """When epoch ``epoch`` (1-based) starts or resumes."""

    def on_update(self, trainer: Trainer) -> None:
        """After every weight update (``trainer.state.position`` batches done)."""

    def on_updates_end(self, trainer: Trainer) -> None:
        """After an epoch's last update, or when its updates stop on an exception."""

    def on_interrupt(self, trainer: Trainer) -> None:
        """On Ctrl-C between two updates (the state is consistent), before it propagates."""

    def on_epoch_scored(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """The epoch's scores are in ``record``; a callback may add keys (before it is logged)."""

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """After an epoch's validation and checkpoint; ``record`` is its metrics."""

    def on_train_end(self, trainer: Trainer) -> None:
        """When training has stopped (not called when an exception escapes)."""


class Checkpointer(Callback):
    """Saves the training state into the run directory, and the best model after it.

    At the end of every epoch; within an epoch every ``every`` updates and
    whenever ``seconds`` have passed since the last checkpoint (0 = off);
    on Ctrl-C when at least one update of the epoch is done. The checkpoint is
    written before ``best.h5``, so a best model never describes an epoch the
    checkpoint lacks.
    """

    def __init__(self, run: RunDirectory, *, every: int = 0, seconds: float = 0.0) -> None:
        self.run = run
        self.every = int(every)
        self.seconds = float(seconds)
        self._last = time.monotonic()

    def on_train_begin(self, trainer: Trainer) -> None:
        self._last = time.monotonic()

    def _due(self, position: int) -> bool:
        if self.every and position % self.every == 0:
            return True
        return bool(self.seconds) and time.monotonic() - self._last >= self.seconds

    def save(self, trainer: Trainer) -> None:
        trainer.save_checkpoint(self.run.checkpoint)
        self._last = time.monotonic()

    def on_update(self, trainer: Trainer) -> None:
        st = trainer.state
        if st.position < st.order_offsets.size - 1 and self._due(st.position):
            self.save(trainer)

    def on_interrupt(self, trainer: Trainer) -> None:
        if trainer.state.position > 0:
            self.save(trainer)

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        self.save(trainer)
        if record["best"]:
            trainer.save_best(self.run.best)


class MetricsLog(Callback):
    """Appends each epoch's record to the run directory's ``metrics.jsonl``."""

    def __init__(self, run: RunDirectory) -> None:
        self.run = run

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        self.run.append_metrics(record)


class ProgressBar(Callback):
    """A tqdm bar per epoch (on stderr) with the running loss and frames per second."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._last_post = 0.0

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        from tqdm import tqdm

        st = trainer.state
        self._bar = tqdm(
            total=st.order_offsets.size - 1,
            initial=st.position,
            desc=f"epoch {epoch}",
            unit="seq" if trainer.config.train.batch_size == 1 else "batch",
            leave=False,
            dynamic_ncols=True,
            mininterval=0.5,
        )
        self._last_post = 0.0

    def on_update(self, trainer: Trainer) -> None:
        self._bar.update(1)
        now = time.perf_counter()
        if now - self._last_post > 0.5:
            self._last_post = now
            sums = trainer.state.epoch_sums
            n_scored = sums[trainer.net.head.count_names[0]]
            frames = sums.get("input_frames", n_scored)
            self._bar.set_postfix(
                loss=f"{sums['loss_sum'] / max(n_scored, 1):.4f}",
                fps=f"{frames / max(sums['seconds'], 1e-9):.0f}",
                refresh=False,
            )

    def on_updates_end(self, trainer: Trainer) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
