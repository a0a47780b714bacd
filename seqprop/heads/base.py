"""The output-head interface: what sits on top of a network's hidden layers.

A head owns everything specific to a kind of output (see ``docs/HEADS.md``):
the shapes of its parameters, its forward pass from the top hidden layer, its
loss and the gradient of that loss with respect to the head's input, its
predictions, and the counts its metric is computed from. The network below it
is the same for every head: hidden layers map inputs ``x`` (T, B, I) to ``h``
(T, B, D), the head maps ``h`` to outputs and a loss.

Heads hold no weights (like layers): the network passes each call a dict
``p`` of views into its flat parameter vector and ``g`` of views into its
flat gradient, keyed by the head's local parameter names (``W``, ``b``).

Adding a head is one class: subclass :class:`Head`, set ``name``, implement
the abstract methods and decorate it with :func:`register_head`;
``make_network(..., head=name)`` then builds it (``docs/ARCHITECTURE.md``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

__all__ = ["HEADS", "Head", "StepResult", "TargetKind", "get_head", "register_head"]


class TargetKind(enum.Enum):
    """What a head is trained on: the shape of ``y`` and the dataset(s) it comes from.

    See ``docs/HEADS.md`` and ``docs/FORMAT.md``.
    """

    FRAME_CLASS = "frame_class"
    """A class per frame: ``y`` (T, B) int, -1 = no target; dataset ``targets`` (N_frames,)."""
    FRAME_VALUES = "frame_values"
    """K values per frame: ``y`` (T, B, K) float, an all-NaN row = no target; dataset
    ``targets`` (N_frames, K) float."""
    SEQUENCE_CLASS = "sequence_class"
    """A class per sequence: ``y`` (B,) int, -1 = no target; dataset ``seq_targets``."""
    LABEL_SEQUENCE = "label_sequence"
    """An unaligned label sequence per sequence: ``y`` (B, U) int padded with -1; datasets
    ``labels`` and ``label_lengths``."""


@dataclass(frozen=True)
class StepResult:
    """What one pass of a batch through a network and its head gives a trainer.

    Attributes
    ----------
    loss : float
        The loss as reduced (summed, or divided by ``n_scored`` for ``"mean"``).
    loss_sum : float
        The summed loss (equal to ``loss`` for ``"sum"``).
    n_scored : int
        Units the loss was summed over (labelled frames, sequences, ...).
    counts : dict[str, int or float]
        The head's metric counts for this batch (:attr:`Head.count_names`);
        they add up over batches and :meth:`Head.metrics` turns their sums
        into metrics.
    """

    loss: float
    loss_sum: float
    n_scored: int
    counts: Mapping[str, float] = field(default_factory=dict)


class Head:
    """Base class of output heads.

    Parameters
    ----------
    input_size : int
        D, the size of the top hidden layer (or of the input window when the
        network has no hidden layer).
    num_classes : int
        K, the size of the problem's label set (or of its target vector).

    Class attributes a subclass sets
    --------------------------------
    name : str
        Registry name (``make_network(..., head=name)``, ``[model] head``).
    target_kind : TargetKind
        What ``y`` is, and which dataset of a file holds it.
    count_names : tuple of str
        Names of the counts in :attr:`StepResult.counts`; the first is the
        number of scored units. A head whose counts depend on its size (one
        per output) sets them per instance in ``__init__``; they must not
        clash with a trainer's own sums (``loss_sum``, ``sequences``,
        ``seconds``).
    selection : str
        The metric (a key of :meth:`metrics`) training minimises on the
        validation set to pick the best epoch.
    option_names : tuple of str
        Keyword options of the constructor (``make_network`` passes them on).
    structure_names : tuple of str
        Keyword arguments of the constructor that describe the hidden layers
        below the head; ``make_network`` fills them in from the network it
        builds (they are not user options and are not stored in ``spec``).
        Known: ``directions``, 2 when the top hidden layer is bidirectional
        (its output is ``concat(fwd, bwd)``, forward first, each half D/2
        wide), else 1.
    """

    name: ClassVar[str] = ""
    target_kind: ClassVar[TargetKind]
    output_name: ClassVar[str] = "posteriors"
    """Name of :meth:`predict_proba`'s outputs in a predictions file (``docs/HEADS.md``)."""
    option_names: ClassVar[tuple[str, ...]] = ()
    structure_names: ClassVar[tuple[str, ...]] = ()
    count_names: ClassVar[tuple[str, ...]] = ()
    selection: ClassVar[str] = ""

    def __init__(self, input_size: int, num_classes: int) -> None:
        self.input_size = int(input_size)
        self.num_classes = int(num_classes)

    # -- structure --------------------------------------------------------------
    @property
    def output_size(self) -> int:
        """K_out, units of the output layer."""
        return self.num_classes

    def options(self) -> dict[str, Any]:
        """The head's keyword options, as ``make_network`` takes them (stored in ``spec``)."""
        return {}

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Local parameter names and shapes: ``W`` (K_out, D), ``b`` (K_out,)."""
        return {"W": (self.output_size, self.input_size), "b": (self.output_size,)}

    # -- passes (subclasses implement) -----------------------------------------
    def prepare_targets(self, y: Any, valid: np.ndarray) -> Any:
        """Check ``y`` for a batch whose valid frames are ``valid`` (T, B) bool.

        Returns targets in the form the head's passes take (with nothing
        scored past each sequence's length). Raises ValueError naming ``y``.
        """
        raise NotImplementedError

    def loss_and_grad(
        self,
        p: Mapping[str, np.ndarray],
        g: Mapping[str, np.ndarray],
        h: np.ndarray,
        lengths: np.ndarray,
        targets: Any,
        reduction: str,
    ) -> tuple[StepResult, np.ndarray]:
        """Loss of a batch; writes the head's parameter gradients into ``g``.

        ``h`` is the top hidden layer (T, B, D). Returns the result and
        dE/dh (T, B, D). Callers hold a single-threaded BLAS.
        """
        raise NotImplementedError

    def score(
        self, p: Mapping[str, np.ndarray], h: np.ndarray, lengths: np.ndarray, targets: Any
    ) -> StepResult:
        """Summed loss and metric counts of a batch, without gradients."""
        raise NotImplementedError

    def predict_proba(
        self, p: Mapping[str, np.ndarray], h: np.ndarray, lengths: np.ndarray
    ) -> np.ndarray:
        """The head's outputs for a batch (zero where nothing was computed)."""
        raise NotImplementedError

    def predict(self, p: Mapping[str, np.ndarray], h: np.ndarray, lengths: np.ndarray) -> Any:
        """Decisions from :meth:`predict_proba` (classes, labels or values)."""
        raise NotImplementedError

    def decide(self, outputs: np.ndarray) -> np.ndarray | None:
        """The decisions :meth:`predict` takes from :meth:`predict_proba`'s outputs of
        sequences (rows along the first axes, outputs along the last); None when the
        outputs are the predictions themselves (``labels`` of a predictions file)."""
        return None

    # -- metrics -----------------------------------------------------------------
    def metrics(self, counts: Mapping[str, float]) -> dict[str, float]:
        """Metrics from summed counts; includes :attr:`selection` (NaN with nothing scored)."""
        raise NotImplementedError

    def evaluator(self, class_names: list[str]) -> Any:
        """An accumulator for a full evaluation report (see :mod:`seqprop.evaluation`)."""
        raise NotImplementedError


HEADS: dict[str, type[Head]] = {}
"""Registered heads by name."""


def register_head(cls: type[Head]) -> type[Head]:
    """Class decorator: make ``cls`` available as ``make_network(..., head=cls.name)``."""
    if not cls.name or cls.name in HEADS:
        raise ValueError(f"head name {cls.name!r} is empty or already registered")
    HEADS[cls.name] = cls
    return cls


def get_head(name: str) -> type[Head]:
    """The head class registered as ``name``; ValueError listing the known ones otherwise."""
    try:
        return HEADS[name]
    except (KeyError, TypeError):
        raise ValueError(f"head must be one of {tuple(HEADS)}, got {name!r}") from None
