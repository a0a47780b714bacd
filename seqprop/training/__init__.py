"""Training: a trainer built from parts (``docs/ARCHITECTURE.md``).

:mod:`~seqprop.training.trainer`
    :class:`Trainer` and :func:`train`: the loop (Graves & Schmidhuber 2005,
    section 5), setup and resume.
:mod:`~seqprop.training.rundir`
    The run directory's files and its lock.
:mod:`~seqprop.training.stopping`
    Early stopping and :class:`StopReason`.
:mod:`~seqprop.training.noise`
    Gaussian input and weight noise (``train.input_noise``, ``train.weight_noise``).
:mod:`~seqprop.training.callbacks`
    The :class:`Callback` API, and the checkpointer, metrics log and
    progress bar built on it.
"""

from seqprop.data import delay_sequence
from seqprop.training.callbacks import Callback, Checkpointer, MetricsLog, ProgressBar
from seqprop.training.rundir import CONFIG_NAME, METRICS_NAME, RUN_FILES, TEST_NAME, RunDirectory
from seqprop.training.stopping import EarlyStopping, StopReason
from seqprop.training.trainer import RESUMABLE_KEYS, Trainer, TrainingDiverged, train

__all__ = [
    "CONFIG_NAME",
    "METRICS_NAME",
    "RESUMABLE_KEYS",
    "RUN_FILES",
    "TEST_NAME",
    "Callback",
    "Checkpointer",
    "EarlyStopping",
    "MetricsLog",
    "ProgressBar",
    "RunDirectory",
    "StopReason",
    "Trainer",
    "TrainingDiverged",
    "delay_sequence",
    "train",
]
