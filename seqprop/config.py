"""Run configuration: typed dataclasses, TOML loading, ``--set`` overrides.

A run is described by three sections, each a dataclass whose defaults sit next
to the fields they configure:

* ``[model]`` (:class:`ModelConfig`): the network (``make_network`` arguments
  and the target delay);
* ``[data]`` (:class:`DataConfig`): the HDF5 datasets and feature normalisation;
* ``[train]`` (:class:`TrainConfig`): optimiser, epochs, early stopping,
  shuffling seed, checkpoints, progress display.

plus an optional top-level ``run_dir``. The defaults are the paper's (Graves &
Schmidhuber 2005, section 5): a BLSTM with 93 blocks per direction, online
gradient descent (one update per sequence) with learning rate 1e-5 on the
cross-entropy summed over the frames, momentum 0.9.

A configuration file is TOML, for example::

    [model]
    kind = "blstm"
    hidden_size = 93

    [data]
    train = "data/timit/train.h5"
    validation = "data/timit/validation.h5"

    [train]
    learning_rate = 1e-5
    max_epochs = 100

Unknown sections or keys, values of the wrong type and values out of range
raise :class:`seqprop.errors.ConfigError` naming the key path
(``train.learning_rate``). Relative data paths are relative to the current
directory; :func:`resolve_paths` makes them absolute, and the resolved
configuration saved in a run directory holds absolute paths.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqprop.errors import ConfigError
from seqprop.options import (
    ACTIVATIONS,
    CLASS_WEIGHTINGS,
    DTYPES,
    GRADIENTS,
    KINDS,
    REDUCTIONS,
    SQUASHES,
)

__all__ = [
    "DTYPES",
    "GRADIENTS",
    "KINDS",
    "REDUCTIONS",
    "DataConfig",
    "ModelConfig",
    "RunConfig",
    "TrainConfig",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "dumps_toml",
    "load_config",
    "parse_override",
    "resolve_paths",
    "save_config",
    "toml_literal",
]


@dataclass
class ModelConfig:
    """The network (arguments of :func:`seqprop.network.make_network`).

    Attributes
    ----------
    kind : {"blstm", "lstm", "brnn", "rnn", "mlp"}
        Architecture (paper, section 4).
    hidden_size : int
        Units (LSTM blocks, tanh units) per direction. The paper's nets, all
        about 100k weights: BLSTM 93, LSTM 140, BRNN 185, RNN 275, MLP 250.
    window : int
        MLP only: frames of context on either side of the current frame.
    gradient : {"full", "truncated"}
        LSTM gradient: full BPTT or the truncated gradient of the original
        LSTM (``docs/EQUATIONS.md``).
    squash : {"tanh", "logistic2"}
        LSTM cell input/output squashing: ``tanh`` or the 2005 paper's
        ``4 logistic(x) - 2``.
    activation : {"tanh", "logistic"}
        Hidden unit nonlinearity of the RNN, BRNN and MLP (LSTM kinds take
        only the default; ``squash`` only for LSTM kinds).
    num_layers : int
        Hidden layers stacked (paper: 1).
    dtype : {"float32", "float64"}
        Floating type of weights and computations.
    head : str
        The output head (``docs/HEADS.md``): ``"softmax"`` (the paper's
        framewise classifier), ``"sequence"``, ``"logistic"``, ``"squared_error"``,
        or ``"ctc"``, trained on the data's label sequences (``labels`` /
        ``label_lengths``) by connectionist temporal classification and
        selected on the validation label error rate.
    pooling : str or None
        Head option of ``"sequence"``: ``"last"`` (default) or ``"mean"``.
    output_activation : str or None
        Head option of ``"squared_error"``: ``"identity"`` (default),
        ``"logistic"`` or ``"tanh"``.
    normalise_targets : bool
        ``"squared_error"`` only: train on targets standardised with the
        training set's per-output mean and standard deviation; the statistics
        are stored in the model, whose predictions come back in the data's
        units.
    delay : int
        Target delay in frames (paper, section 5.2): the network must output
        frame ``t``'s class when it sees frame ``t + delay``. Meant for
        unidirectional nets; see :func:`seqprop.training.delay_sequence`.
    reverse : bool
        Run the hidden layers of a unidirectional recurrent net (``lstm``,
        ``rnn``) backwards in time: the paper's "backwards, no delay" row.
    class_weighting : {"none", "inverse_frequency"}
        Softmax head: ``"inverse_frequency"`` weights each frame's error by
        ``w_c = N / (K' n_c)`` for its target class ``c`` (``n_c`` labelled
        training frames of class c, ``N`` all of them, ``K'`` classes with
        ``n_c > 0``; 0 for classes absent from the training set), so the mean
        weight over training frames is 1 (``docs/HEADS.md`` section 3.1).
    """

    kind: str = "blstm"
    hidden_size: int = 93
    window: int = 0
    gradient: str = "full"
    squash: str = "tanh"
    activation: str = "tanh"
    num_layers: int = 1
    dtype: str = "float64"
    head: str = "softmax"
    pooling: str | None = None
    output_activation: str | None = None
    normalise_targets: bool = False
    delay: int = 0
    reverse: bool = False
    class_weighting: str = "none"

    NOT_NETWORK = frozenset({"delay", "normalise_targets", "class_weighting"})
    """Fields that describe the data's preprocessing, not the network."""
    HEAD_OPTIONS = frozenset({"pooling", "output_activation"})
    """Fields that are options of some head (``Head.option_names``); None = not given."""

    def network_options(self) -> dict[str, Any]:
        """The fields that are :func:`seqprop.network.make_network` keyword arguments.

        Head options are passed only when given (not None), so each head
        gets its own defaults; :meth:`validate` refuses one that does not
        apply to ``head``.
        """
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in self.NOT_NETWORK
            and not (f.name in self.HEAD_OPTIONS and getattr(self, f.name) is None)
        }

    def _validate_head(self, prefix: str) -> None:
        """``head`` registered; head options (and ``normalise_targets``, ``delay``) apply to it."""
        from seqprop.heads import HEADS, TargetKind  # here: importing heads loads numba

        _choice(self.head, tuple(HEADS), f"{prefix}.head")
        head = HEADS[self.head]
        for name in sorted(self.HEAD_OPTIONS):
            if getattr(self, name) is not None and name not in head.option_names:
                owners = [h for h, cls in HEADS.items() if name in cls.option_names]
                raise ConfigError(
                    f"{prefix}.{name} applies to head {' or '.join(map(repr, owners))}, not "
                    f"model.head = {self.head!r} (its options: "
                    f"{', '.join(o for o in head.option_names if o in self.HEAD_OPTIONS) or 'none'})"
                )
        given = {n: getattr(self, n) for n in self.HEAD_OPTIONS if getattr(self, n) is not None}
        try:
            head(2, 2, **given)  # the head checks its options' values
        except ValueError as exc:
            name = next(iter(sorted(given)), "head")
            raise ConfigError(f"{prefix}.{name}: {exc}") from None
        if self.normalise_targets and "target_mean" not in head.option_names:
            raise ConfigError(
                f"{prefix}.normalise_targets applies to a head that stores target statistics "
                f"(squared_error), not model.head = {self.head!r}"
            )
        if self.delay and head.target_kind is TargetKind.SEQUENCE_CLASS:
            raise ConfigError(
                f"{prefix}.delay = {self.delay}: a target delay shifts framewise targets; "
                f"model.head = {self.head!r} has one target per sequence (use delay = 0)"
            )
        if self.delay and head.target_kind is TargetKind.LABEL_SEQUENCE:
            raise ConfigError(
                f"{prefix}.delay = {self.delay}: a target delay applies to framewise targets; "
                f'model.head = "{self.head}" aligns its labels itself (use 0)'
            )

    def validate(self, prefix: str = "model") -> None:
        _choice(self.kind, KINDS, f"{prefix}.kind")
        _at_least(self.hidden_size, 1, f"{prefix}.hidden_size")
        _at_least(self.window, 0, f"{prefix}.window")
        if self.window and self.kind != "mlp":
            raise ConfigError(
                f"{prefix}.window = {self.window}: a time window applies only to "
                f'model.kind = "mlp", not {self.kind!r}'
            )
        _choice(self.gradient, GRADIENTS, f"{prefix}.gradient")
        _choice(self.squash, SQUASHES, f"{prefix}.squash")
        _choice(self.activation, ACTIVATIONS, f"{prefix}.activation")
        lstm = self.kind in ("blstm", "lstm")
        if lstm and self.activation != "tanh":
            raise ConfigError(
                f"{prefix}.activation = {self.activation!r} does not apply to "
                f"model.kind = {self.kind!r} (LSTM cells take model.squash)"
            )
        if not lstm and self.squash != "tanh":
            raise ConfigError(
                f"{prefix}.squash = {self.squash!r} applies only to LSTM kinds, not "
                f"model.kind = {self.kind!r} (its units take model.activation)"
            )
        if self.kind == "mlp":
            _at_least(self.num_layers, 0, f"{prefix}.num_layers")
        elif self.num_layers < 1:
            raise ConfigError(
                f"{prefix}.num_layers must be >= 1, got {self.num_layers!r} (0, no hidden "
                f'layer, applies only to model.kind = "mlp")'
            )
        _choice(self.dtype, DTYPES, f"{prefix}.dtype")
        _at_least(self.delay, 0, f"{prefix}.delay")
        if self.reverse and self.kind not in ("lstm", "rnn"):
            raise ConfigError(
                f'{prefix}.reverse = true applies only to model.kind = "lstm" or "rnn", '
                f"not {self.kind!r} (bidirectional nets read both directions; the MLP "
                "window is symmetric)"
            )
        _choice(self.class_weighting, CLASS_WEIGHTINGS, f"{prefix}.class_weighting")
        if self.class_weighting != "none" and self.head != "softmax":
            raise ConfigError(
                f"{prefix}.class_weighting = {self.class_weighting!r} applies only to "
                f'model.head = "softmax", not {self.head!r}'
            )
        self._validate_head(prefix)


@dataclass
class DataConfig:
    """Datasets (HDF5 files in seqprop's sequence format, ``docs/FORMAT.md``).

    Attributes
    ----------
    train : str
        Training set (required): a file, or ``FILE:GROUP`` for the split in
        group ``GROUP`` of a file of several splits (``"corpus.h5:train"``).
    validation : str or None
        Validation set for early stopping and best-model selection
        (``"corpus.h5:dev"``, ``"corpus.h5:eval/core"``). Without one, the
        training frame error measured during each epoch takes its place.
    test : str or None
        Test set, evaluated with the best model when training ends.
    group : str or None
        HDF5 group of the split in each file whose path names no group of
        its own. None: the file's root, or, in a file of several splits, the
        group named after the role (``train``, ``validation``, ``test``), so
        that one file with groups ``/train``, ``/validation``, ``/test`` can
        serve all three.
    allow_same_split : bool
        Allow the validation set to be the training split itself (refused by
        default: it would select the epoch that fits the training data best).
    in_memory : bool
        Load every split into memory when training starts (faster); False
        streams sequences from disk.
    normalise : bool
        Standardise every feature with the training set's mean and standard
        deviation (computed when training starts and stored with the model).
    """

    train: str = ""
    validation: str | None = None
    test: str | None = None
    group: str | None = None
    in_memory: bool = True
    normalise: bool = True
    allow_same_split: bool = False

    def validate(self, prefix: str = "data") -> None:
        if not self.train:
            raise ConfigError(f"{prefix}.train is required: the path of the training set")
        for name in ("validation", "test", "group"):
            value = getattr(self, name)
            if value is not None and not value:
                raise ConfigError(f"{prefix}.{name} must not be an empty string")


@dataclass
class TrainConfig:
    """Optimisation, stopping, checkpoints and display.

    Attributes
    ----------
    optimizer : str
        The update rule, a name in :data:`seqprop.optim.OPTIMIZERS`
        (``"sgd"``: gradient descent with momentum, the paper's).
    learning_rate : float
        SGD step size, applied to the loss as reduced by ``reduction``
        (paper: 1e-5 on the sum over a sequence's frames). With a summed
        loss the effective step grows with the number of scored frames per
        update: data labelled on few frames (one per sequence, say) needs a
        learning rate about 10x larger or more, or ``reduction = "mean"``,
        whose step does not depend on that number. A rate far too high stops
        the run as diverged: the loss became NaN or infinite, or grew 10^4-fold
        (the rule is in :mod:`seqprop.training.checks`).
    momentum : float
        SGD momentum in [0, 1) (paper: 0.9).
    batch_size : int
        Sequences per weight update (paper: 1, online learning).
    reduction : {"sum", "mean"}
        Cross-entropy summed over the labelled frames of a batch (paper) or
        averaged over them.
    sort_by_length : bool
        With ``batch_size > 1``: batches of sequences of similar length.
    max_epochs : int
        Upper bound on training epochs.
    n_iter_no_change : int
        Early stopping: stop after this many epochs without a new best
        validation frame error.
    seed : int
        Seeds weight initialisation and the per-epoch shuffling.
    shuffle : bool
        Shuffle the training sequences every epoch (paper: yes).
    threads : int
        Threads for BLAS and numba during training (0 = library default).
        Use 1 for bit-for-bit reproducible runs and resumes.
    checkpoint_every : int
        Also checkpoint after every this many weight updates within an epoch
        (0 = only at the end of each epoch and on ``checkpoint_seconds``).
    checkpoint_seconds : float
        Also checkpoint within an epoch when this many seconds have passed
        since the last checkpoint (0 = off).
    eval_batch_size : int
        Sequences per batch when computing validation/test scores.
    progress : bool
        Show a progress bar (tqdm, on stderr).
    input_noise : float
        Standard deviation of Gaussian noise added to the (normalised)
        inputs of every training sequence, a fresh draw each time it is seen
        (Graves et al. 2006 used 0.6); 0 = off. Validation, test and
        prediction never see noise.
    weight_noise : float
        Standard deviation of Gaussian noise added to every weight for the
        forward and backward pass of each update (a fresh draw per update),
        the update being applied to the clean weights; 0 = off.
    """

    optimizer: str = "sgd"
    learning_rate: float = 1e-5
    momentum: float = 0.9
    batch_size: int = 1
    reduction: str = "sum"
    sort_by_length: bool = False
    max_epochs: int = 100
    n_iter_no_change: int = 10
    seed: int = 0
    shuffle: bool = True
    threads: int = 0
    checkpoint_every: int = 0
    checkpoint_seconds: float = 300.0
    eval_batch_size: int = 16
    progress: bool = True
    input_noise: float = 0.0
    weight_noise: float = 0.0

    def validate(self, prefix: str = "train") -> None:
        from seqprop.optim import OPTIMIZERS  # here: importing it loads numba

        _choice(self.optimizer, tuple(OPTIMIZERS), f"{prefix}.optimizer")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ConfigError(
                f"{prefix}.learning_rate must be a positive number, got {self.learning_rate!r}"
            )
        if not (0.0 <= self.momentum < 1.0):
            raise ConfigError(f"{prefix}.momentum must be in [0, 1), got {self.momentum!r}")
        _at_least(self.batch_size, 1, f"{prefix}.batch_size")
        _choice(self.reduction, REDUCTIONS, f"{prefix}.reduction")
        _at_least(self.max_epochs, 1, f"{prefix}.max_epochs")
        _at_least(self.n_iter_no_change, 1, f"{prefix}.n_iter_no_change")
        _at_least(self.seed, 0, f"{prefix}.seed")
        _at_least(self.threads, 0, f"{prefix}.threads")
        _at_least(self.checkpoint_every, 0, f"{prefix}.checkpoint_every")
        if not (math.isfinite(self.checkpoint_seconds) and self.checkpoint_seconds >= 0):
            raise ConfigError(
                f"{prefix}.checkpoint_seconds must be >= 0, got {self.checkpoint_seconds!r}"
            )
        _at_least(self.eval_batch_size, 1, f"{prefix}.eval_batch_size")
        for name in ("input_noise", "weight_noise"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ConfigError(f"{prefix}.{name} must be >= 0 (a standard deviation), got {v!r}")


@dataclass
class RunConfig:
    """A whole training run: ``[model]``, ``[data]``, ``[train]`` and ``run_dir``."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    run_dir: str | None = None

    def validate(self) -> RunConfig:
        """Check every value; raise :class:`ConfigError` naming the first bad key."""
        for name in ("model", "data", "train"):
            section = getattr(self, name)
            _check_types(section, name)
            section.validate(name)
        if self.run_dir is not None and not isinstance(self.run_dir, str):
            raise ConfigError(f"run_dir must be a string, got {_tname(self.run_dir)}")
        if self.run_dir == "":
            raise ConfigError("run_dir must not be an empty string")
        return self

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with top-level fields replaced."""
        return dataclasses.replace(self, **changes)


_SECTIONS: dict[str, type] = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig}
_TOP_LEVEL = ("run_dir",)


# --------------------------------------------------------------------- checks
def _tname(value: object) -> str:
    return type(value).__name__


def _choice(value: object, choices: tuple[str, ...], key: str) -> None:
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ConfigError(f"{key} must be one of {options}; got {value!r}")


def _at_least(value: int, low: int, key: str) -> None:
    if value < low:
        raise ConfigError(f"{key} must be >= {low}, got {value!r}")


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _convert(value: Any, annotation: Any, key: str) -> Any:
    """Check ``value`` against a field annotation; ints are accepted for floats."""
    options = (
        typing.get_args(annotation)
        if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union
        else (annotation,)
    )
    if value is None:
        if type(None) in options:
            return None
        raise ConfigError(f"{key} must not be empty")
    for option in options:
        if option is bool and isinstance(value, bool):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if option is str and isinstance(value, str):
            return value
    wanted = " or ".join(
        {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(o, str(o))
        for o in options
        if o is not type(None)
    )
    raise ConfigError(f"{key} must be {wanted}, got {_tname(value)} {value!r}")


def _check_types(section: object, prefix: str) -> None:
    for name, annotation in _field_types(type(section)).items():
        value = getattr(section, name)
        setattr(section, name, _convert(value, annotation, f"{prefix}.{name}"))


# ------------------------------------------------------------ dict <-> config
def config_from_dict(data: Mapping[str, Any]) -> RunConfig:
    """Build and validate a :class:`RunConfig` from nested mappings (as TOML gives).

    Missing keys take their defaults; unknown sections or keys, wrong types
    and out-of-range values raise :class:`ConfigError` naming the key path.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"a configuration must be a table, got {_tname(data)}")
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key in _SECTIONS:
            cls = _SECTIONS[key]
            if not isinstance(value, Mapping):
                raise ConfigError(f"[{key}] must be a table, got {_tname(value)} {value!r}")
            known = _field_types(cls)
            section_kwargs = {}
            for sub, sub_value in value.items():
                if sub not in known:
                    raise ConfigError(
                        f"unknown key {key}.{sub}; [{key}] accepts: {', '.join(known)}"
                    )
                section_kwargs[sub] = _convert(sub_value, known[sub], f"{key}.{sub}")
            kwargs[key] = cls(**section_kwargs)
        elif key in _TOP_LEVEL:
            kwargs[key] = _convert(value, str | None, key)
        else:
            accepted = ", ".join([*(f"[{s}]" for s in _SECTIONS), *_TOP_LEVEL])
            raise ConfigError(f"unknown key {key!r}; a configuration accepts: {accepted}")
    return RunConfig(**kwargs).validate()


def config_to_dict(config: RunConfig) -> dict[str, Any]:
    """Nested plain dict (JSON-serialisable) of a configuration; None values kept."""
    return dataclasses.asdict(config)


# ------------------------------------------------------------------ overrides
def parse_override(text: str) -> tuple[str, Any]:
    """Split ``"section.key=value"``; the value is read as a TOML literal.

    ``1e-4`` gives a float, ``true`` a boolean, ``"x"`` or a bare word a
    string (anything that is not a valid TOML value is taken as a string).
    """
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. train.learning_rate=1e-4")
    key, raw = text.split("=", 1)
    key = key.strip()
    raw = raw.strip()
    if not key:
        raise ConfigError(f"--set {text!r}: missing key before '='")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def apply_overrides(data: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of the nested dict ``data`` with ``section.key=value`` overrides.

    Keys are checked against the configuration's sections and fields.
    """
    out = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in data.items()}
    for text in overrides:
        key, value = parse_override(text)
        parts = key.split(".")
        if len(parts) == 1 and parts[0] in _TOP_LEVEL:
            out[parts[0]] = value
            continue
        if len(parts) != 2 or parts[0] not in _SECTIONS:
            raise ConfigError(
                f"--set {text!r}: unknown key {key!r}; use SECTION.KEY with SECTION one of "
                f"{', '.join(_SECTIONS)}, or run_dir"
            )
        section, name = parts
        known = _field_types(_SECTIONS[section])
        if name not in known:
            raise ConfigError(
                f"--set {text!r}: unknown key {key}; [{section}] accepts: {', '.join(known)}"
            )
        table = out.setdefault(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"[{section}] must be a table")
        table[name] = value
    return out


# ------------------------------------------------------------------ file I/O
def load_config(path: str | os.PathLike[str], overrides: Iterable[str] = ()) -> RunConfig:
    """Read a TOML configuration file, apply ``--set`` overrides and validate.

    Raises
    ------
    ConfigError
        The file is missing, not valid TOML, or holds an invalid configuration
        (the message names the file and the key).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return config_from_dict(apply_overrides(data, overrides))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def resolve_paths(config: RunConfig, base: str | os.PathLike[str] | None = None) -> RunConfig:
    """Copy of ``config`` with data paths and ``run_dir`` made absolute (relative to ``base``).

    ``base`` defaults to the current directory.
    """
    base_path = Path.cwd() if base is None else Path(base)

    def absolute(p: str | None) -> str | None:
        if p is None:
            return None
        q = Path(p).expanduser()
        return str(q if q.is_absolute() else (base_path / q).absolute())

    data = dataclasses.replace(
        config.data,
        train=absolute(config.data.train) or "",
        validation=absolute(config.data.validation),
        test=absolute(config.data.test),
    )
    return dataclasses.replace(
        config,
        model=dataclasses.replace(config.model),
        train=dataclasses.replace(config.train),
        data=data,
        run_dir=absolute(config.run_dir),
    )


def toml_literal(value: Any) -> str:
    """``value`` (bool, int, float or str) as a TOML literal; TypeError for anything else."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def dumps_toml(config: RunConfig) -> str:
    """The configuration as TOML text (keys with value None are left out)."""
    data = config_to_dict(config)
    lines = ["# seqprop run configuration (resolved)"]
    for key in _TOP_LEVEL:
        if data.get(key) is not None:
            lines.append(f"{key} = {toml_literal(data[key])}")
    for section in _SECTIONS:
        lines.append("")
        lines.append(f"[{section}]")
        for name, value in data[section].items():
            if value is not None:
                lines.append(f"{name} = {toml_literal(value)}")
    return "\n".join(lines) + "\n"


def loads_toml(text: str) -> RunConfig:
    """Parse TOML text (as :func:`dumps_toml` writes it) into a validated config."""
    try:
        return config_from_dict(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}") from None


def save_config(config: RunConfig, path: str | os.PathLike[str]) -> Path:
    """Write the configuration as TOML, atomically (:func:`seqprop.checkpoint.atomic_output`)."""
    from seqprop.checkpoint import write_text_atomic

    return write_text_atomic(path, dumps_toml(config))
