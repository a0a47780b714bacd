"""The training loop: the paper's online gradient descent, early stopping, checkpoints, resume.

Graves & Schmidhuber (2005), section 5: weights uniform in [-0.1, 0.1],
online gradient descent (one update per sequence) with learning rate 1e-5 on
the cross-entropy summed over the sequence's frames and momentum 0.9, the
training sequences shuffled every epoch, early stopping on a validation set
and the best-on-validation weights kept. Mini-batches of variable-length
sequences are an option (``train.batch_size``).

A run directory holds:

``config.toml``
    The resolved configuration (absolute paths).
``metrics.jsonl``
    One JSON object per finished epoch (see :meth:`Trainer.history`).
``checkpoint.h5``
    The latest training state (see :mod:`seqprop.checkpoint`), written at the
    end of every epoch and, within an epoch, every ``train.checkpoint_every``
    updates and every ``train.checkpoint_seconds`` seconds. When the run has
    ended its ``parameters`` are the last weights.
``best.h5``
    The best-on-validation model (what ``seqprop evaluate RUN_DIR`` uses).
``test.json``
    Scores of the best model on ``data.test``, when one is configured.

Resuming (:meth:`Trainer.resume`) restores weights, momentum, the shuffling
generator, the epoch's order and the position within it, so a run that is
killed at any moment and resumed ends with exactly the same weights as one
that never stopped (given ``train.threads = 1``, or any setting whose
arithmetic is deterministic).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from seqprop.checkpoint import (
    BEST_NAME,
    CHECKPOINT_NAME,
    TrainingState,
    json_clean,
    load_training_state,
    remove_stale_temporaries,
    save_model,
    save_training_state,
    write_text_atomic,
)
from seqprop.config import (
    RunConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
    loads_toml,
    resolve_paths,
    save_config,
)
from seqprop.errors import CheckpointError, ConfigError, DataError, SeqpropError
from seqprop.evaluation import (
    EvaluationResult,
    Preprocessor,
    check_dataset_matches,
    delay_sequence,
    evaluate,
    score,
)
from seqprop.optim import Optimizer, make_optimizer

__all__ = [
    "CONFIG_NAME",
    "METRICS_NAME",
    "Callback",
    "Trainer",
    "TrainingDiverged",
    "delay_sequence",
    "train",
]

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.toml"
METRICS_NAME = "metrics.jsonl"
TEST_NAME = "test.json"
RUN_FILES = (CONFIG_NAME, METRICS_NAME, CHECKPOINT_NAME, BEST_NAME, TEST_NAME)
"""Files seqprop writes into a run directory (``--overwrite`` removes exactly these)."""

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
    """The loss became NaN or infinite (learning rate too high?)."""


class Callback:
    """Hooks called by :class:`Trainer`; subclass and override what you need."""

    def on_train_begin(self, trainer: Trainer) -> None:
        """Before the first update (also when resuming)."""

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        """When epoch ``epoch`` (1-based) starts or resumes."""

    def on_update(self, trainer: Trainer) -> None:
        """After every weight update (``trainer.state.position`` batches done)."""

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """After an epoch's validation and checkpoint; ``record`` is its metrics."""

    def on_train_end(self, trainer: Trainer) -> None:
        """When training has stopped (not called when an exception escapes)."""


# --------------------------------------------------------------------- data
class _Split:
    """A dataset's sequences as the network sees them (normalised, delayed).

    Attributes
    ----------
    lengths : (N,) int64
        Frames per sequence after the delay (T_i + d).
    n_frames : int
        Labelled frames.
    """

    def __init__(self, dataset: Any, pre: Preprocessor, cache: bool) -> None:
        self.dataset = dataset
        self.pre = pre
        self.lengths = np.asarray(dataset.lengths, dtype=np.int64) + pre.delay
        self.tags = list(dataset.tags)
        self._xs: list[np.ndarray] | None = None
        self._ys: list[np.ndarray] | None = None
        if cache:
            self._xs, self._ys = [], []
            for x, y in dataset:
                xd, yd = pre(x, y)
                self._xs.append(np.ascontiguousarray(xd))
                self._ys.append(yd)

    def __len__(self) -> int:
        return int(self.lengths.shape[0])

    def sequence(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if self._xs is not None:
            return self._xs[i], self._ys[i]
        x, y = self.dataset[int(i)]
        return self.pre(x, y)

    def batch(self, indices: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray, Any]:
        """Padded batch: x (T, B, I), y (T, B) int32, lengths (B,) int64."""
        from seqprop.batching import pad_sequences

        if len(indices) == 1:
            x, y = self.sequence(int(indices[0]))
            return x[:, None, :], y[:, None], np.array([x.shape[0]], dtype=np.int64)
        pairs = [self.sequence(int(i)) for i in indices]
        return pad_sequences([p[0] for p in pairs], [p[1] for p in pairs], self.pre.dtype)


def _open(path: str, group: str | None, in_memory: bool, role: str) -> Any:
    """Open one split; in a file of several splits without ``data.group``, the one named ``role``."""
    from seqprop.data import list_groups, open_dataset

    if not Path(path).exists():
        raise DataError(f"data.{role} = {path}: no such file")
    if group is None:
        groups = list_groups(path)
        if len(groups) > 1 and role in groups:
            group = role
    return open_dataset(path, group=group, in_memory=in_memory)


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
        The one ``train.optimizer`` names (:data:`seqprop.optim.OPTIMIZERS`).
    state : TrainingState
        Epoch, position, history, best score ... (what a checkpoint stores).
    history : list of dict
        One metrics record per epoch: ``epoch``, ``train_loss`` (per labelled
        frame), ``train_loss_sum``, ``train_frame_error``, ``train_frames``,
        ``validation_loss``, ``validation_loss_sum``,
        ``validation_frame_error``, ``validation_frames``, ``best``,
        ``seconds`` (training), ``validation_seconds``, ``frames_per_second``,
        ``updates``.
    loss_curve_ : list of float
        Training loss per labelled frame, one per epoch.
    validation_scores_ : list of float
        Validation frame accuracy, one per epoch (NaN without validation set).
    best_epoch_, best_score_ : int, float
        Epoch of the kept weights and their validation frame error.
    n_epochs_ : int
        Epochs trained.
    stop_reason_ : str
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
        self.run_dir: Path | None = Path(cfg.run_dir) if cfg.run_dir else None
        self.overwrite = overwrite
        self.callbacks: list[Callback] = list(callbacks)
        self._resume_state: TrainingState | None = None
        self._resuming = False
        self.state: TrainingState | None = None
        self.net: Any = None
        self.optimizer: Optimizer | None = None
        self.test_result_: EvaluationResult | None = None
        self.train_data: Any = None
        self.validation_data: Any = None
        self._rng: np.random.Generator | None = None
        self._last_checkpoint_time = 0.0

    def close(self) -> None:
        """Close the datasets the trainer opened; its results stay readable."""
        for ds in (self.train_data, self.validation_data):
            if ds is not None:
                ds.close()

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
        run_dir = Path(run_dir).absolute()
        if not run_dir.is_dir():
            raise ConfigError(f"--resume {run_dir}: no such run directory")
        ckpt = run_dir / CHECKPOINT_NAME
        state = None
        if ckpt.exists():
            state = load_training_state(ckpt)
            try:
                base = config_from_dict(state.config)
            except ConfigError as exc:
                raise ConfigError(f"{ckpt}: stored configuration is invalid: {exc}") from None
        elif (run_dir / CONFIG_NAME).exists():
            try:
                base = loads_toml((run_dir / CONFIG_NAME).read_text(encoding="utf-8"))
            except ConfigError as exc:
                raise ConfigError(f"{run_dir / CONFIG_NAME}: {exc}") from None
        else:
            raise ConfigError(
                f"--resume {run_dir}: not a seqprop run directory (no {CHECKPOINT_NAME} "
                f"or {CONFIG_NAME})"
            )
        overrides = list(overrides)
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
        base = base.replace(run_dir=str(run_dir))
        trainer = cls(base, callbacks=callbacks, progress=progress)
        trainer._resuming = True
        trainer._resume_state = state
        return trainer

    # ------------------------------------------------------------ public API
    @property
    def history(self) -> list[dict[str, Any]]:
        return [] if self.state is None else self.state.history

    @property
    def loss_curve_(self) -> list[float]:
        return [r["train_loss"] for r in self.history]

    @property
    def validation_scores_(self) -> list[float]:
        out = []
        for r in self.history:
            e = r.get(f"validation_{self.net.head.selection}") if self.net else None
            out.append(float("nan") if e is None else 1.0 - e)
        return out

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
    def stop_reason_(self) -> str:
        return "" if self.state is None else self.state.stop_reason

    def fit(self) -> Trainer:
        """Train until early stopping or ``max_epochs``; returns ``self``.

        Raises
        ------
        DataError
            A dataset is missing, invalid or inconsistent with the others (or
            with the checkpoint when resuming).
        ConfigError
            The run directory is not empty (without ``overwrite``).
        TrainingDiverged
            The loss became NaN or infinite.
        """
        cfg = self.config
        try:
            with _thread_limit(cfg.train.threads):
                self._setup()
                if not self.state.finished:
                    for cb in self.callbacks:
                        cb.on_train_begin(self)
                    while not self.state.finished:
                        self._run_epoch()
                    self._finish()
                    for cb in self.callbacks:
                        cb.on_train_end(self)
                else:
                    self._restore_best()
                    if cfg.data.test and (
                        self.run_dir is None or not (self.run_dir / TEST_NAME).exists()
                    ):
                        # finished, but the test evaluation never happened (or was
                        # reconfigured with --set data.test=...)
                        self._evaluate_test()
        except BaseException:
            self.close()
            raise
        return self

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
        self.close()
        try:
            self.train_data = _open(d.train, d.group, d.in_memory, "train")
            self.validation_data = (
                _open(d.validation, d.group, d.in_memory, "validation") if d.validation else None
            )
            names = list(self.train_data.class_names)
            what = f"the training set ({d.train})"
            if self.validation_data is not None:
                check_dataset_matches(
                    self.validation_data,
                    input_size=self.train_data.input_size,
                    class_names=names,
                    what=what,
                )
            # the split that scores every epoch and picks the best one
            selecting = (
                self.validation_data if self.validation_data is not None else self.train_data
            )
            if int(np.asarray(selecting.class_counts()).sum()) == 0:
                role = "validation" if self.validation_data is not None else "train"
                raise DataError(
                    f"data.{role} = {getattr(d, role)}: no labelled frame (every target is "
                    "-1), so no epoch can be scored and no best model chosen"
                )
            if d.test:
                with _open(d.test, d.group, False, "test") as test:
                    check_dataset_matches(
                        test, input_size=self.train_data.input_size, class_names=names, what=what
                    )
        except BaseException:
            self.close()
            raise

    def _check_run_dir(self) -> bool:
        """Refuse an unusable run directory before any work; True if it must be cleaned."""
        run_dir = self.run_dir
        if run_dir is None or self._resuming or not run_dir.exists():
            return False
        if not run_dir.is_dir():
            raise ConfigError(f"run directory {run_dir} exists and is not a directory")
        if any(run_dir.iterdir()):
            if not self.overwrite:
                raise ConfigError(
                    f"run directory {run_dir} is not empty; continue the run in it with "
                    f"--resume {run_dir}, start over with --overwrite, or choose another "
                    "--run-dir"
                )
            return True
        return False

    def _prepare_run_dir(self) -> None:
        run_dir = self.run_dir
        if run_dir is None:
            return
        if self._resuming:
            remove_stale_temporaries(run_dir)
            return
        if run_dir.exists():
            if self._check_run_dir():
                for name in RUN_FILES:
                    with contextlib.suppress(FileNotFoundError):
                        (run_dir / name).unlink()
                remove_stale_temporaries(run_dir)
        else:
            run_dir.mkdir(parents=True)
        save_config(self.config, run_dir / CONFIG_NAME)

    def _setup(self) -> None:
        from seqprop.data import compute_normalisation
        from seqprop.network import make_network

        cfg = self.config
        self._check_run_dir()
        self._open_data()
        state = self._resume_state
        names = list(self.train_data.class_names)
        if state is not None:
            if state.class_names != names or state.spec.get("input_size") != (
                self.train_data.input_size
            ):
                raise DataError(
                    f"{cfg.data.train}: features or classes differ from the checkpoint's "
                    f"({state.spec.get('input_size')} inputs, {len(state.class_names)} classes); "
                    "was the dataset replaced?"
                )
            if (
                state.order is not None
                and state.order.size
                and (int(state.order.max()) >= len(self.train_data))
            ):
                raise DataError(
                    f"{cfg.data.train}: has {len(self.train_data)} sequences, fewer than the "
                    "checkpoint's epoch order refers to; was the dataset replaced?"
                )
            mean, std = state.mean, state.std
        elif cfg.data.normalise:
            mean, std = compute_normalisation(self.train_data)
        else:
            mean = std = None
        m = cfg.model
        try:
            if state is not None:
                net = make_network(**state.spec)
            else:
                net = make_network(
                    input_size=self.train_data.input_size,
                    num_classes=self.train_data.num_classes,
                    random_state=_new_rng(cfg.train.seed, 0),
                    **m.network_options(),
                )
        except ValueError as exc:
            raise ConfigError(f"[model]: {exc}") from None
        self.net = net
        self.optimizer = make_optimizer(net.flat_parameters, cfg.train)
        pre = Preprocessor(net.dtype, mean, std, m.delay)
        self.preprocessor = pre
        self._train = _Split(self.train_data, pre, cache=cfg.data.in_memory)
        self._valid = (
            _Split(self.validation_data, pre, cache=cfg.data.in_memory)
            if self.validation_data is not None
            else None
        )
        if state is None:
            self.state = TrainingState(
                config=config_to_dict(cfg),
                spec=dict(net.spec),
                class_names=names,
                mean=mean,
                std=std,
                parameters=net.flat_parameters,
                optimizer_name=self.optimizer.name,
                optimizer_state=self.optimizer.state_dict(),
                rng_state={},
            )
            self._rng = _new_rng(cfg.train.seed, 1)
        else:
            net.flat_parameters[...] = state.parameters
            self._restore_optimizer(state)
            state.parameters = net.flat_parameters
            state.config = config_to_dict(cfg)
            self._rng = _rng_from_state(state.rng_state)
            self.state = state
            if (
                state.finished
                and state.epoch < cfg.train.max_epochs
                and (state.stop_reason.startswith("max_epochs"))
            ):
                # max_epochs was raised on resume: continue
                state.finished = False
                state.stop_reason = ""
            elif (
                state.finished
                and state.stop_reason.startswith("early stopping")
                and state.n_no_change < cfg.train.n_iter_no_change
                and state.epoch < cfg.train.max_epochs
            ):
                state.finished = False
                state.stop_reason = ""
        self._prepare_run_dir()
        if self._resuming and self.run_dir is not None:
            self._rewrite_run_files()
        self._last_checkpoint_time = time.monotonic()

    def _restore_optimizer(self, state: TrainingState) -> None:
        """The checkpoint's optimiser state into :attr:`optimizer` (hyper-parameters too)."""
        ckpt = self.run_dir / CHECKPOINT_NAME if self.run_dir is not None else "checkpoint"
        if state.optimizer_name != self.optimizer.name:
            raise CheckpointError(
                f"{ckpt}: holds the state of optimizer {state.optimizer_name!r}, "
                f"train.optimizer is {self.optimizer.name!r}"
            )
        try:
            self.optimizer.load_state_dict(state.optimizer_state)
        except ValueError as exc:
            raise CheckpointError(f"{ckpt}: {exc}") from None

    def _rewrite_run_files(self) -> None:
        """On resume: metrics log and best model exactly as of the checkpoint."""
        assert self.run_dir is not None and self.state is not None
        save_config(self.config, self.run_dir / CONFIG_NAME)
        lines = "".join(json.dumps(json_clean(r)) + "\n" for r in self.state.history)
        write_text_atomic(self.run_dir / METRICS_NAME, lines)
        if self.state.best_parameters is not None:
            self._save_best()
        else:
            with contextlib.suppress(FileNotFoundError):
                (self.run_dir / BEST_NAME).unlink()

    # ------------------------------------------------------------ epochs
    def _new_epoch_order(self) -> None:
        from seqprop.batching import batch_order

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
            "seconds": 0.0,
        }

    def _run_epoch(self) -> None:
        from tqdm import tqdm

        st = self.state
        t = self.config.train
        if st.order is None:
            self._new_epoch_order()
        epoch = st.epoch + 1
        for cb in self.callbacks:
            cb.on_epoch_begin(self, epoch)
        offsets = st.order_offsets
        n_batches = offsets.size - 1
        sums = st.epoch_sums
        net, opt = self.net, self.optimizer
        reduction = t.reduction
        scored = net.head.count_names[0]
        bar = tqdm(
            total=n_batches,
            initial=st.position,
            desc=f"epoch {epoch}",
            unit="seq" if t.batch_size == 1 else "batch",
            disable=not t.progress,
            leave=False,
            dynamic_ncols=True,
            mininterval=0.5,
        )
        last_post = 0.0
        start = time.perf_counter()
        seconds0 = float(sums["seconds"])
        in_update = False
        try:
            for b in range(st.position, n_batches):
                idx = st.order[offsets[b] : offsets[b + 1]]
                x, y, lengths = self._train.batch(idx)
                result = net.step(x, y, lengths, reduction=reduction)
                loss = result.loss
                if not math.isfinite(loss):
                    i = int(idx[0])
                    raise TrainingDiverged(
                        f"training diverged: loss is {loss} at epoch {epoch}, update {b + 1} "
                        f"(sequence {i}, tag {self._train.tags[i]!r}); lower train.learning_rate"
                    )
                in_update = True  # weights change before position does
                opt.step(net.flat_gradient)
                sums["loss_sum"] += result.loss_sum
                for k, v in result.counts.items():
                    sums[k] += v
                sums["sequences"] += len(idx)
                sums["seconds"] = seconds0 + (time.perf_counter() - start)
                st.position = b + 1
                in_update = False
                for cb in self.callbacks:
                    cb.on_update(self)
                if t.progress:
                    bar.update(1)
                    now = time.perf_counter()
                    if now - last_post > 0.5:
                        last_post = now
                        n_scored = sums[scored]
                        fps = n_scored / max(sums["seconds"], 1e-9)
                        bar.set_postfix(
                            loss=f"{sums['loss_sum'] / max(n_scored, 1):.4f}",
                            fps=f"{fps:.0f}",
                            refresh=False,
                        )
                if b + 1 < n_batches and self._checkpoint_due(b + 1):
                    self._save_checkpoint()
        except KeyboardInterrupt:
            # Ctrl-C: keep the work done so far when the state is consistent
            if not in_update and self.run_dir is not None and st.position > 0:
                self._save_checkpoint()
            raise
        finally:
            bar.close()
        self._end_epoch()

    def _checkpoint_due(self, position: int) -> bool:
        if self.run_dir is None:
            return False
        t = self.config.train
        if t.checkpoint_every and position % t.checkpoint_every == 0:
            return True
        if t.checkpoint_seconds and (
            time.monotonic() - self._last_checkpoint_time >= t.checkpoint_seconds
        ):
            return True
        return False

    def _end_epoch(self) -> None:
        st = self.state
        t = self.config.train
        sums = st.epoch_sums
        epoch = st.epoch + 1
        head = self.net.head
        counts = {k: sums[k] for k in head.count_names}
        record: dict[str, Any] = {
            "epoch": epoch,
            **_split_record("train", head, float(sums["loss_sum"]), counts),
            "train_sequences": int(sums["sequences"]),
        }
        v0 = time.perf_counter()
        if self._valid is not None:
            r = score(self.net, self._valid, batch_size=t.eval_batch_size)
            record.update(_split_record("validation", head, r.loss_sum, r.counts))
            current = record[f"validation_{head.selection}"]
        else:
            record.update(_split_record("validation", head, None, None))
            current = record[f"train_{head.selection}"]
        frames = int(counts[head.count_names[0]])
        seconds = float(sums["seconds"])
        record["seconds"] = seconds
        record["validation_seconds"] = time.perf_counter() - v0
        record["frames_per_second"] = frames / seconds if seconds > 0 else None
        record["updates"] = self.optimizer.n_steps
        improved = current is not None and math.isfinite(current) and current < st.best_score
        if improved:
            st.best_score = float(current)
            st.best_epoch = epoch
            st.best_parameters = self.net.flat_parameters.copy()
            st.n_no_change = 0
        else:
            st.n_no_change += 1
        record["best"] = improved
        record["best_epoch"] = st.best_epoch
        st.history.append(json_clean(record))
        st.epoch = epoch
        st.order = None
        st.order_offsets = None
        st.position = 0
        st.epoch_sums = {}
        if st.n_no_change >= t.n_iter_no_change:
            st.finished = True
            st.stop_reason = (
                f"early stopping: no new best in {st.n_no_change} epochs "
                f"(best epoch {st.best_epoch})"
            )
        elif epoch >= t.max_epochs:
            st.finished = True
            st.stop_reason = f"max_epochs ({t.max_epochs}) reached"
        sel = head.selection
        valid_error = record[f"validation_{sel}"]
        logger.info(
            "epoch %d: train loss %.4f, train %s %.4f, validation %s %s%s",
            epoch,
            record["train_loss"],
            sel,
            record[f"train_{sel}"],
            sel,
            "n/a" if valid_error is None else f"{valid_error:.4f}",
            " (best)" if improved else "",
        )
        if self.run_dir is not None:
            # checkpoint first: a best.h5 never describes an epoch the checkpoint lacks
            self._save_checkpoint()
            if improved:
                self._save_best()
            with open(self.run_dir / METRICS_NAME, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(st.history[-1]) + "\n")
        for cb in self.callbacks:
            cb.on_epoch_end(self, st.history[-1])

    # ------------------------------------------------------------ saving
    def _save_checkpoint(self) -> None:
        st = self.state
        st.rng_state = json_clean(self._rng.bit_generator.state)
        st.optimizer_state = self.optimizer.state_dict()
        save_training_state(self.run_dir / CHECKPOINT_NAME, st)
        self._last_checkpoint_time = time.monotonic()

    def _save_best(self) -> None:
        st = self.state
        save_model(
            self.run_dir / BEST_NAME,
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
        if cfg.data.test:
            with _open(cfg.data.test, cfg.data.group, cfg.data.in_memory, "test") as test:
                self.test_result_ = evaluate(
                    self.net,
                    test,
                    self.preprocessor,
                    class_names=self.state.class_names,
                    batch_size=cfg.train.eval_batch_size,
                )
            if self.run_dir is not None:
                out = {
                    "dataset": cfg.data.test,
                    "epoch": self.state.best_epoch,
                    **self.test_result_.to_dict(),
                }
                write_text_atomic(
                    self.run_dir / TEST_NAME, json.dumps(json_clean(out), indent=1) + "\n"
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
