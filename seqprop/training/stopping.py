"""Early stopping: which epoch's weights are kept, and when training ends.

Graves & Schmidhuber (2005), section 5: training stops when the validation
error has not improved for a number of epochs, and the weights of the best
epoch are kept. The error is the head's selection metric (frame error for
the paper's framewise classifier) on the validation set, or on the training
set when there is none. A tie is no improvement.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from seqprop.checkpoint import StopReason, TrainingState
from seqprop.training.callbacks import Callback

if TYPE_CHECKING:  # pragma: no cover
    from seqprop.training.trainer import Trainer

__all__ = ["EarlyStopping", "StopReason", "describe_stop"]


class EarlyStopping(Callback):
    """Tracks the best epoch in the training state and ends the run.

    Parameters
    ----------
    n_iter_no_change : int
        Stop after this many epochs without a new best score.
    max_epochs : int
        Stop after this many epochs in any case.
    """

    def __init__(self, n_iter_no_change: int, max_epochs: int) -> None:
        self.n_iter_no_change = int(n_iter_no_change)
        self.max_epochs = int(max_epochs)

    def on_epoch_scored(self, trainer: Trainer, record: dict[str, Any]) -> None:
        st = trainer.state
        current = record[trainer.selection_key]
        improved = current is not None and math.isfinite(current) and current < st.best_score
        if improved:
            st.best_score = float(current)
            st.best_epoch = record["epoch"]
            st.best_parameters = trainer.net.flat_parameters.copy()
            st.n_no_change = 0
        else:
            st.n_no_change += 1
        record["best"] = improved
        record["best_epoch"] = st.best_epoch
        if st.n_no_change >= self.n_iter_no_change:
            st.finished, st.stop_reason = True, StopReason.EARLY_STOPPING
        elif record["epoch"] >= self.max_epochs:
            st.finished, st.stop_reason = True, StopReason.MAX_EPOCHS

    def reopen(self, st: TrainingState) -> None:
        """On resume: continue a finished run whose limit was raised (``--set``)."""
        if not st.finished or st.epoch >= self.max_epochs:
            return
        if st.stop_reason is StopReason.MAX_EPOCHS or (
            st.stop_reason is StopReason.EARLY_STOPPING and st.n_no_change < self.n_iter_no_change
        ):
            st.finished, st.stop_reason = False, None


def describe_stop(st: TrainingState, max_epochs: int) -> str:
    """One line saying why the run in ``st`` ended ("" while it has not)."""
    if st.stop_reason is StopReason.EARLY_STOPPING:
        return (
            f"early stopping: no new best in {st.n_no_change} epochs (best epoch {st.best_epoch})"
        )
    if st.stop_reason is StopReason.MAX_EPOCHS:
        return f"max_epochs ({max_epochs}) reached"
    return ""
