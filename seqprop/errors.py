"""Exception types raised by seqprop.

Every error seqprop raises on bad input derives from :class:`SeqpropError`; the
``seqprop`` command turns these into a one-line message and exit status 2.
"""


class SeqpropError(Exception):
    """Base class of seqprop's own errors."""


class DataError(SeqpropError, ValueError):
    """A dataset, corpus or audio file is missing, malformed or inconsistent."""


class ConfigError(SeqpropError, ValueError):
    """A configuration value or key is invalid."""


class CheckpointError(SeqpropError, ValueError):
    """A file is not a seqprop checkpoint, or does not match what it is used with."""


class GradientCheckError(SeqpropError, AssertionError):
    """Analytic and finite-difference gradients disagree beyond the tolerance."""


class RunDirectoryLocked(ConfigError):
    """Another process is writing into the run directory."""


class OutputError(SeqpropError, OSError):
    """A file could not be written (a full disk, a quota, an I/O error); names the file."""
