"""The training loop: the paper's online gradient descent, early stopping, checkpoints, resume.

Graves & Schmidhuber (2005), section 5: weights uniform in [-0.1, 0.1],
online gradient descent (one update per sequence) with learning rate 1e-5 on
the loss summed over the sequence's frames and momentum 0.9, the training
sequences shuffled every epoch, early stopping on a validation set and the
best-on-validation weights kept. Mini-batches of variable-length sequences
are an option (``train.batch_size``).

The :class:`Trainer` composes parts, each in its own module: the run
directory and its lock (:mod:`~seqprop.training.rundir`), the training state
and checkpoints (:mod:`seqprop.checkpoint`), early stopping
(:mod:`~seqprop.training.stopping`), and the checkpointer, metrics log and
progress bar as callbacks (:mod:`~seqprop.training.callbacks`). What a run
directory holds is described in :mod:`~seqprop.training.rundir`.

Resuming (:meth:`Trainer.resume`) restores weights, optimiser state, the
shuffling generator, the epoch's order and the position within it, so a run
that is killed at any moment and resumed ends with exactly the same weights
as one that never stopped (given ``train.threads = 1``, or any setting whose
arithmetic is deterministic).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from seqprop.checkpoint import (
    TrainingState,
    json_clean,
    load_training_state,
    save_model,
    save_training_state,
)
from seqprop.config import (
    RunConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    dumps_toml,
    load_config,
    loads_toml,
    resolve_paths,
)
from seqprop.data import (
    PreparedSplit,
    Preprocessor,
    batch_order,
    check_dataset_matches,
    compute_normalisation,
    open_split,
    same_split,
)
from seqprop.errors import CheckpointError, ConfigError, DataError, SeqpropError
from seqprop.evaluation import EvaluationResult, evaluate, score
from seqprop.heads import TargetKind, get_head
from seqprop.heads.softmax import inverse_frequency_weights
from seqprop.optim import Optimizer, make_optimizer
from seqprop.training.callbacks import Callback, Checkpointer, MetricsLog, ProgressBar
from seqprop.training.checks import DivergenceWatch, warn_unlearnable
from seqprop.training.memory import check_fits
from seqprop.training.noise import TrainingNoise
from seqprop.training.rundir import RunDirectory
from seqprop.training.stopping import EarlyStopping, StopReason, describe_stop

__all__ = ["RESUMABLE_KEYS", "Trainer", "TrainingDiverged", "train"]

logger = logging.getLogger(__name__)

# resume may change these keys of a run's configuration (they do not change the result
# of any epoch already started, except max_epochs / n_iter_no_change, which only decide
# when to stop)
RESUMABLE_KEYS = frozenset(
    {
        "train.max_epochs",
        "train.n_iter_no_change",
        "train.progress",
        "train.checkpoint_every",
        "train.checkpoint_seconds",
        "train.threads",
        "train.eval_batch_size",
        "data.in_memory",
        "data.test",
    }
)


class TrainingDiverged(SeqpropError):
    """The loss became NaN or infinite, or grew by orders of magnitude (learning rate too
    high?); the rule is in :mod:`seqprop.training.checks`."""


# --------------------------------------------------------------------- helpers
def _coerce_config(config: RunConfig | Mapping[str, Any] | str | os.PathLike[str]) -> RunConfig:
    if isinstance(config, RunConfig):
        return config.validate()
    if isinstance(config, Mapping):
        return config_from_dict(config)
    if isinstance(config, (str, os.PathLike)):
        return load_config(config)
    raise ConfigError(
        f"config must be a RunConfig, a dict or a TOML file path, got {type(config).__name__}"
    )


@contextlib.contextmanager
def _thread_limit(n: int) -> Iterator[None]:
    """Limit BLAS, numba and seqprop's own threads to ``n`` (0 = leave as is)."""
    if n <= 0:
        yield
        return
    import numba
    from threadpoolctl import threadpool_limits

    from seqprop import _parallel

    old_par = getattr(_parallel, "_num_threads", None)
    old_numba = numba.get_num_threads()
    _parallel.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        _parallel.set_num_threads(old_par)
        numba.set_num_threads(old_numba)


def _new_rng(seed: int, stream: int) -> np.random.Generator:
    """Independent generators from one seed: 0 = weights, 1 = shuffling."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[stream])


def _rng_from_state(state: Mapping[str, Any]) -> np.random.Generator:
    name = state.get("bit_generator")
    cls = getattr(np.random, str(name), None)
    if cls is None or not isinstance(cls, type) or not issubclass(cls, np.random.BitGenerator):
        raise SeqpropError(f"checkpoint RNG state names an unknown bit generator {name!r}")
    bg = cls()
    bg.state = dict(state)
    return np.random.Generator(bg)


def _split_record(
    prefix: str, head: Any, loss_sum: float | None, counts: Mapping[str, float] | None
) -> dict[str, Any]:
    """An epoch's metrics of one split: loss per scored unit, summed loss, the head's metrics.

    ``counts`` None (no such split): every value None, the scored count 0.
    """
    scored = head.count_names[0]
    if counts is None:
        metrics = {k: None for k in head.metrics({scored: 0})}
        metrics[scored] = 0
        return {f"{prefix}_loss": None, f"{prefix}_loss_sum": None} | {
            f"{prefix}_{k}": v for k, v in metrics.items()
        }
    n = counts[scored]
    return {
        f"{prefix}_loss": loss_sum / n if n else float("nan"),
        f"{prefix}_loss_sum": loss_sum,
        **{f"{prefix}_{k}": v for k, v in head.metrics(counts).items()},
    }


def _flat(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _with_hand_edits(run: RunDirectory, base: RunConfig) -> RunConfig:
    """The checkpoint's configuration ``base`` with the edits made to ``config.toml`` since.

    Edits of :data:`RESUMABLE_KEYS` are applied (as ``--set`` would); an edit
    of any other key is refused with the keys, since it would change the
    run's results (it used to be overwritten silently).
    """
    if not run.config.exists():
        return base
    try:
        edited = loads_toml(run.config.read_text(encoding="utf-8"))
    except (ConfigError, OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{run.config}: {exc}") from None
    ours = _flat(config_to_dict(base.replace(run_dir=None)))
    theirs = _flat(config_to_dict(edited.replace(run_dir=None)))
    changed = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
    refused = [k for k in changed if k not in RESUMABLE_KEYS]
    if refused:
        what = ", ".join(f"{k} = {theirs.get(k)!r} (checkpoint: {ours.get(k)!r})" for k in refused)
        raise ConfigError(
            f"{run.config}: edited since the last checkpoint: {what}; these keys cannot change "
            "when resuming (would change the run's results): undo the edit, or start a new run"
        )
    if not changed:
        return base
    data = config_to_dict(base)
    for key in changed:
        section, name = key.split(".", 1)
        data[section][name] = theirs.get(key)
    return config_from_dict(data)


def _resume_config(run: RunDirectory, overrides: list[str]) -> RunConfig:
    """The configuration of the run in ``run``, with the (resumable) ``overrides`` applied."""
    if run.checkpoint.exists():
        state = load_training_state(run.checkpoint)
        try:
            base = config_from_dict(state.config)
        except ConfigError as exc:
            raise ConfigError(f"{run.checkpoint}: stored configuration is invalid: {exc}") from None
        base = _with_hand_edits(run, base)
    elif run.config.exists():
        try:
            base = loads_toml(run.config.read_text(encoding="utf-8"))
        except ConfigError as exc:
            raise ConfigError(f"{run.config}: {exc}") from None
    else:
        raise ConfigError(
            f"--resume {run.path}: not a seqprop run directory (no {run.checkpoint.name} "
            f"or {run.config.name})"
        )
    if overrides:
        changed = apply_overrides(config_to_dict(base), overrides)
        for text in overrides:
            key = text.split("=", 1)[0].strip()
            if key not in RESUMABLE_KEYS:
                raise ConfigError(
                    f"--set {key}: cannot be changed when resuming (would change the "
                    f"run's results); resumable keys: {', '.join(sorted(RESUMABLE_KEYS))}"
                )
        base = config_from_dict(changed)
    return base.replace(run_dir=str(run.path))


# --------------------------------------------------------------------- trainer
class Trainer:
    """Train a network as configured; keep the best-on-validation weights.

    Parameters
    ----------
    config : RunConfig, dict or path of a TOML file
        The run (see :mod:`seqprop.config`); relative data paths are taken
        relative to the current directory.
    run_dir : path, optional
        Where to write the resolved config, metrics, checkpoints and the
        best model (default: ``config.run_dir``; with neither, nothing is
        written and nothing can be resumed).
    overwrite : bool
        Allow a non-empty ``run_dir``: seqprop's own files in it are replaced.
        Without it a non-empty run directory is refused (use
        :meth:`resume` to continue a run).
    callbacks : iterable of Callback
    progress : bool, optional
        Override ``train.progress``.

    Attributes
    ----------
    config : RunConfig
    run_dir : Path or None
    net : Network
        After :meth:`fit`, holds the best-on-validation weights.
    optimizer : Optimizer
    noise : TrainingNoise
        ``train.input_noise`` / ``train.weight_noise`` (:mod:`seqprop.training.noise`).
    state : TrainingState
        Epoch, position, history, best score ... (what a checkpoint stores).
    history : list of dict
        One metrics record per epoch: ``epoch``, ``train_loss`` (per scored
        unit), ``train_loss_sum``, the head's training metrics
        (``train_frame_error``, ``train_frames`` for the softmax head),
        ``train_sequences``, the same for ``validation_*``, ``seconds``
        (training), ``validation_seconds``, ``frames_per_second``,
        ``updates``, ``best``, ``best_epoch``.
    loss_curve_ : list of float
        Training loss per scored unit, one per epoch.
    validation_scores_ : list of float
        1 - the validation selection metric (frame accuracy for the softmax
        head), one per epoch (NaN without validation set).
    best_epoch_, best_score_ : int, float
        Epoch of the kept weights and their selection metric.
    n_epochs_ : int
        Epochs trained.
    stop_reason_ : StopReason or None
    test_result_ : EvaluationResult or None
        Best model on ``data.test``.
    """

    def __init__(
        self,
        config: RunConfig | Mapping[str, Any] | str | os.PathLike[str],
        *,
        run_dir: str | os.PathLike[str] | None = None,
        overwrite: bool = False,
        callbacks: Iterable[Callback] = (),
        progress: bool | None = None,
    ) -> None:
        cfg = resolve_paths(_coerce_config(config))
        if run_dir is not None:
            cfg = cfg.replace(run_dir=str(Path(run_dir).absolute()))
        if progress is not None:
            cfg.train.progress = bool(progress)
        self.config: RunConfig = cfg
        self.run: RunDirectory | None = RunDirectory(cfg.run_dir) if cfg.run_dir else None
        self.overwrite = overwrite
        self.callbacks: list[Callback] = list(callbacks)
        self._resuming = False
        self._parts: list[Callback] = []
        self.state: TrainingState | None = None
        self.net: Any = None
        self.optimizer: Optimizer | None = None
        self.preprocessor: Preprocessor | None = None
        self.test_result_: EvaluationResult | None = None
        self.train_data: Any = None
        self.validation_data: Any = None
        self._rng: np.random.Generator | None = None

    @property
    def run_dir(self) -> Path | None:
        return None if self.run is None else self.run.path

    def close(self) -> None:
        """Close the datasets the trainer opened and unlock its run directory.

        Its results stay readable.
        """
        for ds in (self.train_data, self.validation_data):
            if ds is not None:
                ds.close()
        if self.run is not None:
            self.run.release()

    def __enter__(self) -> Trainer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ construction
    @classmethod
    def resume(
        cls,
        run_dir: str | os.PathLike[str],
        *,
        overrides: Iterable[str] = (),
        callbacks: Iterable[Callback] = (),
        progress: bool | None = None,
    ) -> Trainer:
        """A trainer that continues the run in ``run_dir`` from its latest checkpoint.

        A run directory without a checkpoint yet (killed before the first one)
        starts again from its ``config.toml``. ``overrides`` (``"train.max_epochs=50"``)
        may change only keys that leave the run's arithmetic alone
        (:data:`RESUMABLE_KEYS`).

        Raises
        ------
        ConfigError
            ``run_dir`` is not a run directory, or an override is not allowed.
        CheckpointError
            The checkpoint is unreadable.
        """
        run = RunDirectory(Path(run_dir).absolute())
        if not run.path.is_dir():
            raise ConfigError(f"--resume {run.path}: no such run directory")
        base = _resume_config(run, list(overrides))
        trainer = cls(base, callbacks=callbacks, progress=progress)
        trainer._resuming = True
        return trainer

    # ------------------------------------------------------------ public API
    @property
    def history(self) -> list[dict[str, Any]]:
        return [] if self.state is None else self.state.history

    @property
    def loss_curve_(self) -> list[float]:
        return [r["train_loss"] for r in self.history]

    @property
    def selection_key(self) -> str:
        """The record key early stopping minimises (``validation_frame_error`` ...)."""
        role = "validation" if self.config.data.validation else "train"
        return f"{role}_{self.net.head.selection}"

    @property
    def validation_scores_(self) -> list[float]:
        key = f"validation_{self.net.head.selection}" if self.net is not None else ""
        return [float("nan") if r.get(key) is None else 1.0 - r[key] for r in self.history]

    @property
    def best_epoch_(self) -> int:
        return 0 if self.state is None else self.state.best_epoch

    @property
    def best_score_(self) -> float:
        return float("inf") if self.state is None else self.state.best_score

    @property
    def n_epochs_(self) -> int:
        return 0 if self.state is None else self.state.epoch

    @property
    def stop_reason_(self) -> StopReason | None:
        return None if self.state is None else self.state.stop_reason

    @property
    def stop_message_(self) -> str:
        """Why the run ended, in words ("" while it has not)."""
        if self.state is None:
            return ""
        return describe_stop(self.state, self.config.train.max_epochs)

    def fit(self) -> Trainer:
        """Train until early stopping or ``max_epochs``; returns ``self``.

        The run directory is locked from the start of the call to its end.

        Raises
        ------
        DataError
            A dataset is missing, invalid or inconsistent with the others (or
            with the checkpoint when resuming).
        ConfigError
            The run directory is not empty (without ``overwrite``) or another
            process trains in it (:class:`~seqprop.errors.RunDirectoryLocked`).
        TrainingDiverged
            The loss became NaN or infinite.
        """
        cfg = self.config
        try:
            with _thread_limit(cfg.train.threads):
                self._setup()
                if not self.state.finished:
                    self._fire("on_train_begin")
                    while not self.state.finished:
                        self._run_epoch()
                    self._finish()
                    self._fire("on_train_end")
                else:
                    self._restore_best()
                    if cfg.data.test and (self.run is None or not self.run.test.exists()):
                        # finished, but the test evaluation never happened (or was
                        # reconfigured with --set data.test=...)
                        self._evaluate_test()
        except BaseException:
            self.close()
            raise
        if self.run is not None:
            self.run.release()
        return self

    def _fire(self, hook: str, *args: Any) -> None:
        """Call ``hook`` on the trainer's own parts, then on the user's callbacks."""
        for cb in (*self._parts, *self.callbacks):
            getattr(cb, hook)(self, *args)

    # ------------------------------------------------------------ setup
    def _open_data(self) -> None:
        """Open the training and validation splits and check every split before any work.

        Raises
        ------
        DataError
            A split is missing or unreadable, does not match the training set's
            features and classes, or the split that picks the best epoch
            (validation, else training) has no labelled frame.
        """
        d = self.config.data
        kind = self.target_kind
        self.close()
        try:
            self.train_data = open_split(d.train, d.group, d.in_memory, "train", kind)
            self.validation_data = (
                open_split(d.validation, d.group, d.in_memory, "validation", kind)
                if d.validation
                else None
            )
            self._check_splits()
        except BaseException:
            self.close()
            raise

    def _check_splits(self) -> None:
        d = self.config.data
        names = list(self.train_data.class_names)
        what = f"the training set ({d.train})"
        if self.validation_data is not None and not d.allow_same_split:
            if same_split(self.train_data, self.validation_data):
                raise DataError(
                    f"data.validation = {d.validation}: is the training split itself "
                    f"({self.train_data!r}); name another split (data.validation = "
                    '"FILE:GROUP"), or set data.allow_same_split = true'
                )
        if self.validation_data is not None:
            check_dataset_matches(
                self.validation_data,
                input_size=self.train_data.input_size,
                class_names=names,
                what=what,
            )
        for role, ds in (("train", self.train_data), ("validation", self.validation_data)):
            if ds is not None:
                self._check_values_fit_head(ds, role)
        # the split that scores every epoch and picks the best one
        selecting = self.validation_data if self.validation_data is not None else self.train_data
        if get_head(self.config.model.head).target_kind is TargetKind.LABEL_SEQUENCE:
            for split in (self.train_data, self.validation_data):
                if split is not None:
                    split.require_labels()
        elif selecting.n_scored() == 0:
            role = "validation" if self.validation_data is not None else "train"
            raise DataError(
                f"data.{role} = {getattr(d, role)}: no labelled frame or sequence (every "
                "target is -1, or every row NaN), so no epoch can be scored and no best "
                "model chosen"
            )
        if d.test:
            with open_split(d.test, d.group, False, "test", self.target_kind) as test:
                check_dataset_matches(
                    test, input_size=self.train_data.input_size, class_names=names, what=what
                )
                if get_head(self.config.model.head).target_kind is TargetKind.LABEL_SEQUENCE:
                    test.require_labels()

    def _check_values_fit_head(self, ds: Any, role: str) -> None:
        """Float targets the head refuses (the logistic head's outside [0, 1]): DataError
        naming the file and sequence before any training. Class targets are checked on open."""
        if ds.target.class_valued:
            return
        from seqprop.data.schema import tag_text
        from seqprop.heads import get_head

        head = get_head(self.config.model.head)(1, ds.num_classes)
        y = ds.read_targets()
        for i in range(len(ds)):
            rows = y[ds.offsets[i] : ds.offsets[i + 1], None, :]
            try:
                head.prepare_targets(rows, np.ones(rows.shape[:2], dtype=bool))
            except ValueError as exc:
                raise DataError(
                    f"data.{role} = {ds.path}: dataset 'targets', {tag_text(ds.tags, i)}: "
                    f"not targets of the {head.name} head: {exc} (y[frame, 0, output])"
                ) from None

    def _load_resume_state(self) -> TrainingState | None:
        """The checkpoint to continue from (read with the run directory locked)."""
        if not self._resuming or not self.run.checkpoint.exists():
            return None
        state = load_training_state(self.run.checkpoint)
        names = list(self.train_data.class_names)
        if state.class_names != names or state.spec.get("input_size") != (
            self.train_data.input_size
        ):
            raise DataError(
                f"{self.config.data.train}: features or classes differ from the checkpoint's "
                f"({state.spec.get('input_size')} inputs, {len(state.class_names)} classes); "
                "was the dataset replaced?"
            )
        if state.order is not None and state.order.size:
            if int(state.order.max()) >= len(self.train_data):
                raise DataError(
                    f"{self.config.data.train}: has {len(self.train_data)} sequences, fewer "
                    "than the checkpoint's epoch order refers to; was the dataset replaced?"
                )
        return state

    @property
    def target_kind(self) -> Any:
        """What the configured head is trained on: which targets the splits are read for."""
        from seqprop.heads import get_head

        return get_head(self.config.model.head).target_kind

    def _target_statistics(self) -> dict[str, list[float]]:
        """``target_mean``/``target_std`` of the training targets (``model.normalise_targets``).

        Per output over the scored frames (population std; an output that
        does not vary gets std 1).
        """
        if not self.config.model.normalise_targets:
            return {}
        y = self.train_data.read_targets().astype(np.float64)
        y = y[~np.isnan(y).all(axis=1)]
        mean = y.mean(axis=0)
        std = y.std(axis=0)
        std[~(std > 1e-12)] = 1.0
        return {"target_mean": mean.tolist(), "target_std": std.tolist()}

    def _build_network(self, state: TrainingState | None) -> Any:
        from seqprop.network import make_network

        cfg = self.config
        check_fits(
            cfg.model,
            cfg.train,
            input_size=self.train_data.input_size,
            num_classes=self.train_data.num_classes,
            longest=int(np.max(self.train_data.lengths)),
        )
        try:
            if state is not None:
                return make_network(**state.spec)
            weights = {}
            if cfg.model.class_weighting == "inverse_frequency":
                weights["class_weights"] = inverse_frequency_weights(self.train_data.class_counts())
            return make_network(
                input_size=self.train_data.input_size,
                num_classes=self.train_data.num_classes,
                random_state=_new_rng(cfg.train.seed, 0),
                **cfg.model.network_options(),
                **self._target_statistics(),
                **weights,
            )
        except ValueError as exc:
            raise ConfigError(f"[model]: {exc}") from None

    def _setup(self) -> None:

        cfg = self.config
        if self.run is not None and not self._resuming:
            self.run.check_new(self.overwrite)
        self._open_data()
        if self._resuming:
            self.run.reopen()  # locked before the checkpoint is read
        state = self._load_resume_state()
        if state is not None:
            mean, std = state.mean, state.std
        elif cfg.data.normalise:
            mean, std = compute_normalisation(self.train_data)
        else:
            mean = std = None
        self.net = net = self._build_network(state)
        self.optimizer = make_optimizer(net.flat_parameters, cfg.train)
        self.preprocessor = pre = Preprocessor(net.dtype, mean, std, cfg.model.delay)
        kind = net.head.target_kind
        self._train = PreparedSplit(self.train_data, pre, cfg.data.in_memory, kind)
        self._valid = (
            PreparedSplit(self.validation_data, pre, cfg.data.in_memory, kind)
            if self.validation_data is not None
            else None
        )
        self.noise = TrainingNoise(cfg.train.input_noise, cfg.train.weight_noise, cfg.train.seed)
        self._build_parts()
        self._watch = DivergenceWatch()
        if state is None:
            warn_unlearnable(cfg.model, self.train_data.lengths)
            self._new_state(mean, std)
        else:
            self._restore_state(state)
        self._prepare_run_dir()

    def _build_parts(self) -> None:
        t = self.config.train
        self.stopping = EarlyStopping(t.n_iter_no_change, t.max_epochs)
        self._parts = [self.stopping]
        if self.run is not None:
            checkpoint_every, checkpoint_seconds = t.checkpoint_every, t.checkpoint_seconds
            self._parts += [
                Checkpointer(self.run, every=checkpoint_every, seconds=checkpoint_seconds),
                MetricsLog(self.run),
            ]
        if t.progress:
            self._parts.append(ProgressBar())

    def _new_state(self, mean: np.ndarray | None, std: np.ndarray | None) -> None:
        net = self.net
        self.state = TrainingState(
            config=config_to_dict(self.config),
            spec=dict(net.spec),
            class_names=list(self.train_data.class_names),
            mean=mean,
            std=std,
            parameters=net.flat_parameters,
            optimizer_name=self.optimizer.name,
            optimizer_state=self.optimizer.state_dict(),
            rng_state={},
        )
        self._rng = _new_rng(self.config.train.seed, 1)

    def _restore_state(self, state: TrainingState) -> None:
        cfg = self.config
        self.net.flat_parameters[...] = state.parameters
        self._restore_optimizer(state)
        state.parameters = self.net.flat_parameters
        state.config = config_to_dict(cfg)
        self._rng = _rng_from_state(state.rng_state)
        self.state = state
        self.stopping.reopen(state)

    def _restore_optimizer(self, state: TrainingState) -> None:
        """The checkpoint's optimiser state into :attr:`optimizer` (hyper-parameters too)."""
        ckpt = self.run.checkpoint if self.run is not None else "checkpoint"
        if state.optimizer_name != self.optimizer.name:
            raise CheckpointError(
                f"{ckpt}: holds the state of optimizer {state.optimizer_name!r}, "
                f"train.optimizer is {self.optimizer.name!r}"
            )
        try:
            self.optimizer.load_state_dict(state.optimizer_state)
        except ValueError as exc:
            raise CheckpointError(f"{ckpt}: {exc}") from None

    def _prepare_run_dir(self) -> None:
        run = self.run
        if run is None:
            return
        if self._resuming:
            if self.state.finished:
                return  # nothing will change: leave the finished run's files alone
            # metrics log and best model exactly as of the checkpoint
            run.write_config(dumps_toml(self.config))
            run.rewrite_metrics(self.state.history)
            if self.state.best_parameters is not None:
                self.save_best(run.best)
            else:
                run.remove_best()
        else:
            run.create(self.overwrite)
            run.write_config(dumps_toml(self.config))

    # ------------------------------------------------------------ epochs
    def _new_epoch_order(self) -> None:

        t = self.config.train
        batches = batch_order(
            self._train.lengths,
            t.batch_size,
            rng=self._rng,
            shuffle=t.shuffle,
            sort_by_length=t.sort_by_length,
        )
        st = self.state
        st.order = np.concatenate(batches).astype(np.int64)
        st.order_offsets = np.concatenate([[0], np.cumsum([len(b) for b in batches])]).astype(
            np.int64
        )
        st.position = 0
        st.epoch_sums = {
            "loss_sum": 0.0,
            **dict.fromkeys(self.net.head.count_names, 0),
            "sequences": 0,
            "input_frames": 0,
            "seconds": 0.0,
        }

    def _run_epoch(self) -> None:
        st = self.state
        if st.order is None:
            self._new_epoch_order()
        self._watch.begin_epoch(st.history[-1].get("train_loss") if st.history else None)
        self._fire("on_epoch_begin", st.epoch + 1)
        start = time.perf_counter()
        seconds0 = float(st.epoch_sums["seconds"])
        in_update = False
        try:
            for b in range(st.position, st.order_offsets.size - 1):
                in_update = True  # weights change before position does
                self._train_batch(b)
                st.epoch_sums["seconds"] = seconds0 + (time.perf_counter() - start)
                st.position = b + 1
                in_update = False
                self._fire("on_update")
        except KeyboardInterrupt:
            # Ctrl-C: keep the work done so far when the state is consistent
            if not in_update:
                self._fire("on_interrupt")
            raise
        finally:
            self._fire("on_updates_end")
        self._end_epoch()

    def _train_batch(self, b: int) -> None:
        """One weight update on batch ``b`` of the epoch's order; adds to the epoch's sums."""
        st = self.state
        idx = st.order[st.order_offsets[b] : st.order_offsets[b + 1]]
        x, y, lengths = self._train.batch(idx)
        self.noise.start_update(st.epoch, b)
        x = self.noise.inputs(x, lengths)
        with self.noise.weights(self.net.flat_parameters):
            result = self.net.step(x, y, lengths, reduction=self.config.train.reduction)
        per_unit = result.loss_sum / result.n_scored if result.n_scored else 0.0
        problem = (
            self._watch.update(per_unit) if math.isfinite(result.loss) else f"loss is {result.loss}"
        )
        if problem is not None:
            i = int(idx[0])
            raise TrainingDiverged(
                f"training diverged: {problem} at epoch {st.epoch + 1}, update "
                f"{b + 1} (sequence {i}, tag {self._train.tags[i]!r}); lower train.learning_rate"
            )
        self.optimizer.step(self.net.flat_gradient)
        sums = st.epoch_sums
        sums["loss_sum"] += result.loss_sum
        for k, v in result.counts.items():
            sums[k] += v
        sums["sequences"] += len(idx)
        sums["input_frames"] = sums.get("input_frames", 0) + int(lengths.sum())

    def _end_epoch(self) -> None:
        st = self.state
        record = self._score_epoch()
        self._fire("on_epoch_scored", record)
        st.history.append(json_clean(record))
        st.epoch = record["epoch"]
        st.order = None
        st.order_offsets = None
        st.position = 0
        st.epoch_sums = {}
        sel = self.net.head.selection
        valid_error = record[f"validation_{sel}"]
        logger.info(
            "epoch %d: train loss %.4f, train %s %.4f, validation %s %s%s",
            record["epoch"],
            record["train_loss"],
            sel,
            record[f"train_{sel}"],
            sel,
            "n/a" if valid_error is None else f"{valid_error:.4f}",
            " (best)" if record["best"] else "",
        )
        self._fire("on_epoch_end", st.history[-1])

    def _score_epoch(self) -> dict[str, Any]:
        """The epoch's record: training sums, validation scores, timing."""
        st = self.state
        sums = st.epoch_sums
        head = self.net.head
        counts = {k: sums[k] for k in head.count_names}
        record: dict[str, Any] = {
            "epoch": st.epoch + 1,
            **_split_record("train", head, float(sums["loss_sum"]), counts),
            "train_sequences": int(sums["sequences"]),
        }
        v0 = time.perf_counter()
        if self._valid is not None:
            r = score(self.net, self._valid, batch_size=self.config.train.eval_batch_size)
            record.update(_split_record("validation", head, r.loss_sum, r.counts))
        else:
            record.update(_split_record("validation", head, None, None))
        # frames the network read (every head; older checkpoints: the scored units)
        frames = int(sums.get("input_frames", counts[head.count_names[0]]))
        seconds = float(sums["seconds"])
        record["seconds"] = seconds
        record["validation_seconds"] = time.perf_counter() - v0
        record["frames_per_second"] = frames / seconds if seconds > 0 else None
        record["updates"] = self.optimizer.n_steps
        return record

    # ------------------------------------------------------------ saving
    def save_checkpoint(self, path: str | os.PathLike[str]) -> None:
        """Write the complete training state to ``path`` (atomically)."""
        st = self.state
        st.rng_state = json_clean(self._rng.bit_generator.state)
        st.optimizer_state = self.optimizer.state_dict()
        save_training_state(path, st)

    def save_best(self, path: str | os.PathLike[str]) -> None:
        """Write the best-on-validation weights as a model file (atomically)."""
        st = self.state
        save_model(
            path,
            st.best_parameters,
            spec=st.spec,
            class_names=st.class_names,
            mean=st.mean,
            std=st.std,
            delay=self.config.model.delay,
            config=config_to_dict(self.config),
            epoch=st.best_epoch,
            score=st.best_score,
        )

    def _restore_best(self) -> None:
        st = self.state
        self.last_parameters_ = self.net.flat_parameters.copy()
        if st.best_parameters is not None:
            self.net.flat_parameters[...] = st.best_parameters

    def _finish(self) -> None:
        """After the last epoch: best weights into ``net``, test evaluation."""
        self._restore_best()
        self._evaluate_test()

    def _evaluate_test(self) -> None:
        """Score ``net`` on ``data.test`` (if set) into ``test_result_`` and ``test.json``."""
        cfg = self.config
        if not cfg.data.test:
            return
        with open_split(
            cfg.data.test, cfg.data.group, cfg.data.in_memory, "test", self.target_kind
        ) as test:
            self.test_result_ = evaluate(
                self.net,
                test,
                self.preprocessor,
                class_names=self.state.class_names,
                batch_size=cfg.train.eval_batch_size,
            )
        if self.run is not None:
            self.run.write_test(
                {"dataset": cfg.data.test, "epoch": self.state.best_epoch}
                | self.test_result_.to_dict()
            )


def train(
    config: RunConfig | Mapping[str, Any] | str | os.PathLike[str],
    *,
    run_dir: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    resume: bool = False,
    callbacks: Iterable[Callback] = (),
    progress: bool | None = None,
) -> Trainer:
    """Train as configured and return the fitted :class:`Trainer`.

    Parameters
    ----------
    config : RunConfig, dict or TOML path
        Ignored when ``resume`` (the run directory's configuration is used).
    run_dir : path, optional
        See :class:`Trainer`.
    overwrite : bool
        Replace seqprop's files in a non-empty ``run_dir``.
    resume : bool
        Continue the run in ``run_dir`` (required then).
    callbacks : iterable of Callback
    progress : bool, optional
        Override ``train.progress``.

    Examples
    --------
    >>> trainer = seqprop.train({"data": {"train": "train.h5", "validation": "valid.h5"},
    ...                          "model": {"kind": "blstm", "hidden_size": 32}},
    ...                         run_dir="runs/blstm")                    # doctest: +SKIP
    >>> trainer.best_score_, trainer.net                                  # doctest: +SKIP
    """
    if resume:
        if run_dir is None:
            raise ConfigError("resume=True needs run_dir")
        trainer = Trainer.resume(run_dir, callbacks=callbacks, progress=progress)
    else:
        trainer = Trainer(
            config, run_dir=run_dir, overwrite=overwrite, callbacks=callbacks, progress=progress
        )
    return trainer.fit()
