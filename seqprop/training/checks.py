"""Runs that cannot learn: warnings before training, and the divergence rule during it.

Before training (:func:`warn_unlearnable`), a warning on the ``seqprop.training``
logger (shown by the ``seqprop`` command) when

* ``model.delay`` is at least the longest training sequence: every output
  comes after its sequence's last input frame (Graves & Schmidhuber 2005,
  section 5.2, use delays of a few frames);
* an MLP's window (``2 window + 1`` frames) is wider than the longest
  training sequence: most of its input is zero padding.

During training (:class:`DivergenceWatch`), a run is stopped as diverged
(:class:`~seqprop.training.TrainingDiverged`) not only when the loss becomes
NaN or infinite but also when it **grows by four orders of magnitude**: the
mean loss per scored unit over the last :data:`WINDOW` updates exceeds
:data:`GROWTH` (10^4) times the reference, which is the previous epoch's
training loss per scored unit, or in the first epoch the first update's.
A learning rate far too high (1e6 instead of the paper's 1e-5) trips it within
a few updates; a run that learns lowers its loss, and one that merely
fluctuates stays far below a factor of 10^4 over a window of updates.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from typing import Any

import numpy as np

__all__ = ["GROWTH", "WINDOW", "DivergenceWatch", "warn_unlearnable"]

logger = logging.getLogger("seqprop.training")

GROWTH = 1e4
"""Factor by which the recent loss must exceed the reference to count as diverged."""
WINDOW = 10
"""Updates averaged for the recent loss."""


def warn_unlearnable(model: Any, lengths: np.ndarray) -> list[str]:
    """Log (and return) warnings for settings that leave nothing to learn from ``lengths``."""
    longest = int(np.max(lengths))
    out = []
    if int(model.delay) >= longest:
        out.append(
            f"model.delay = {model.delay} is not shorter than the longest training sequence "
            f"({longest} frames): every output comes after its sequence's last input frame; "
            "delays of a few frames are usual"
        )
    span = 2 * int(model.window) + 1
    if model.kind == "mlp" and span > longest:
        out.append(
            f"model.window = {model.window}: the MLP sees {span} frames at once, more than the "
            f"longest training sequence ({longest} frames); most of its input is zero padding"
        )
    for text in out:
        logger.warning("warning: %s", text)
    return out


class DivergenceWatch:
    """The divergence rule of this module: feed it each update's loss per scored unit."""

    def __init__(self) -> None:
        self.reference: float | None = None
        self._recent: deque[float] = deque(maxlen=WINDOW)

    def begin_epoch(self, previous_loss: float | None) -> None:
        """Start an epoch; ``previous_loss`` is the last epoch's training loss per unit."""
        ok = previous_loss is not None and math.isfinite(previous_loss) and previous_loss > 0
        self.reference = float(previous_loss) if ok else None
        self._recent.clear()

    def update(self, loss_per_unit: float) -> str | None:
        """Record one update; a description when the run has diverged, else None."""
        if not math.isfinite(loss_per_unit):
            return f"loss is {loss_per_unit}"
        if self.reference is None:
            if loss_per_unit > 0:
                self.reference = loss_per_unit
            return None
        self._recent.append(loss_per_unit)
        recent = sum(self._recent) / len(self._recent)
        if recent > GROWTH * self.reference:
            return (
                f"loss per unit grew to {recent:.3g} (mean of the last {len(self._recent)} "
                f"updates) from {self.reference:.3g}, more than {GROWTH:.0e} times"
            )
        return None
