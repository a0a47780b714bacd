"""The trainer: delay, normalisation, early stopping, run directories, exact resume."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import seqprop
import seqprop.training as training
import seqprop.training.trainer as trainer_module
from seqprop.checkpoint import load_model, load_training_state
from seqprop.config import config_from_dict
from seqprop.data import compute_normalisation, open_dataset, write_dataset
from seqprop.errors import ConfigError, DataError
from seqprop.evaluation import Preprocessor, delay_sequence, iter_posteriors
from seqprop.heads import StepResult
from seqprop.training import Callback, Trainer, TrainingDiverged

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["a", "b", "c"]
TIMING = {"seconds", "validation_seconds", "frames_per_second"}


# ---------------------------------------------------------------- toy data
def toy_sequences(n: int, seed: int, input_size: int = 4, classes: int = 3):
    """Sequences whose class shows in the current and in the *next* frame's input."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for _ in range(n):
        t = int(rng.integers(4, 13))
        y = rng.integers(0, classes, t)
        x = rng.normal(scale=0.7, size=(t, input_size)).astype(np.float32) + 3.0
        x[:, 0] += y
        x[:-1, 1] += y[1:]  # the next frame's class: future context
        y[rng.random(t) < 0.1] = -1  # a few unlabelled frames
        xs.append(x)
        ys.append(y.astype(np.int32))
    return xs, ys


def make_toy(directory: Path, n_train: int = 12, n_valid: int = 5, n_test: int = 5, **kw):
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, n, seed in (("train", n_train, 0), ("validation", n_valid, 1), ("test", n_test, 2)):
        xs, ys = toy_sequences(n, seed, **kw)
        names = kw.get("classes") and [f"c{k}" for k in range(kw["classes"])] or CLASSES
        paths[name] = write_dataset(
            directory / f"{name}.h5",
            xs,
            ys,
            class_names=names,
            tags=[f"{name}/{i}" for i in range(n)],
        )
    return paths


def toy_config(paths, **sections) -> dict:
    cfg = {
        "model": {"kind": "lstm", "hidden_size": 3},
        "data": {"train": str(paths["train"]), "validation": str(paths["validation"])},
        "train": {
            "learning_rate": 0.01,
            "max_epochs": 4,
            "n_iter_no_change": 100,
            "threads": 1,
            "progress": False,
        },
    }
    for name, values in sections.items():
        cfg.setdefault(name, {}).update(values)
    return cfg


@pytest.fixture
def toy(tmp_path):
    return make_toy(tmp_path / "data")


def strip_timing(history):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in history]


def run_files(run_dir: Path):
    """Everything a finished run leaves, minus wall-clock times."""
    state = load_training_state(run_dir / "checkpoint.h5")
    best, _ = load_model(run_dir / "best.h5")
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return state, best.flat_parameters.copy(), strip_timing(metrics)


def assert_same_run(a: Path, b: Path) -> None:
    sa, best_a, ma = run_files(a)
    sb, best_b, mb = run_files(b)
    assert np.array_equal(sa.parameters, sb.parameters)  # bit for bit
    assert np.array_equal(sa.optimizer_state["velocity"], sb.optimizer_state["velocity"])
    assert np.array_equal(best_a, best_b)
    assert np.array_equal(sa.best_parameters, sb.best_parameters)
    assert sa.rng_state == sb.rng_state
    assert (sa.epoch, sa.best_epoch, sa.best_score) == (sb.epoch, sb.best_epoch, sb.best_score)
    assert strip_timing(sa.history) == strip_timing(sb.history)
    assert ma == mb == strip_timing(sa.history)


# ---------------------------------------------------------------- delay
def test_delay_sequence_shifts_targets():
    x = np.arange(12, dtype=np.float32).reshape(6, 2) + 1
    y = np.array([0, 1, 2, -1, 1, 0], dtype=np.int32)
    xd, yd = delay_sequence(x, y, 3)
    assert xd.shape == (9, 2) and yd.shape == (9,)
    np.testing.assert_array_equal(xd[:6], x)
    np.testing.assert_array_equal(xd[6:], 0)
    np.testing.assert_array_equal(yd, [-1, -1, -1, 0, 1, 2, -1, 1, 0])
    # the output at frame t + d is scored against the class of frame t
    for t in range(6):
        assert yd[t + 3] == y[t]
    x0, y0 = delay_sequence(x, y, 0)
    assert x0 is x and y0 is y
    xn, yn = delay_sequence(x, None, 2)
    assert yn is None and xn.shape == (8, 2)
    with pytest.raises(ValueError, match="delay"):
        delay_sequence(x, y, -1)


def test_trainer_applies_delay_and_normalisation(toy):
    trainer = Trainer(toy_config(toy, model={"delay": 2}, train={"max_epochs": 1})).fit()
    ds = open_dataset(toy["train"], in_memory=True)
    mean, std = compute_normalisation(ds)
    np.testing.assert_array_equal(trainer.state.mean, mean)
    np.testing.assert_array_equal(trainer.state.std, std)
    for i in range(len(ds)):
        x, y = ds[i]
        xd, yd = trainer._train.sequence(i)
        assert xd.shape == (x.shape[0] + 2, x.shape[1])
        np.testing.assert_allclose(xd[:-2], (x - mean) / std, rtol=1e-12)
        np.testing.assert_array_equal(xd[-2:], 0)
        np.testing.assert_array_equal(yd[:2], -1)
        np.testing.assert_array_equal(yd[2:], y)
    # every original labelled frame is scored once per epoch
    assert trainer.history[0]["train_frames"] == int((ds.read_targets() >= 0).sum())


def test_posteriors_undo_the_delay(toy):
    trainer = Trainer(toy_config(toy, model={"delay": 3}, train={"max_epochs": 1})).fit()
    ds = open_dataset(toy["validation"])
    pre = trainer.preprocessor
    seen = set()
    for i, proba, y in iter_posteriors(trainer.net, ds, pre, batch_size=2):
        x, y_raw = ds[i]
        xd, _ = pre(x, y_raw)
        full = trainer.net.predict_proba(xd[:, None, :], np.array([xd.shape[0]]))[:, 0]
        assert proba.shape == (x.shape[0], 3)
        np.testing.assert_allclose(proba, full[3:], rtol=1e-10, atol=1e-14)
        np.testing.assert_array_equal(y, y_raw)
        seen.add(i)
    assert seen == set(range(len(ds)))


def test_preprocessor_without_normalisation():
    pre = Preprocessor(np.float32)
    x, y = pre(np.ones((3, 2), dtype=np.float64), np.array([0, 1, 2]))
    assert x.dtype == np.float32 and y.dtype == np.int32
    with pytest.raises(ValueError):
        Preprocessor(np.float64, mean=np.zeros(2))


# ---------------------------------------------------------------- training
def test_training_learns_and_python_api(toy):
    trainer = seqprop.train(
        toy_config(toy, data={"test": str(toy["test"])}, train={"max_epochs": 8})
    )
    assert len(trainer.history) == trainer.n_epochs_ == 8
    assert trainer.loss_curve_[-1] < trainer.loss_curve_[0]
    assert trainer.best_score_ < 0.5  # chance is about 0.67
    assert trainer.stop_reason_.startswith("max_epochs")
    assert trainer.test_result_ is not None and trainer.test_result_.frame_accuracy > 0.4
    assert trainer.run_dir is None
    r = trainer.history[0]
    for key in (
        "epoch",
        "train_loss",
        "train_loss_sum",
        "train_frame_error",
        "validation_loss",
        "validation_frame_error",
        "seconds",
        "frames_per_second",
        "best",
    ):
        assert key in r
    assert r["train_loss"] == pytest.approx(r["train_loss_sum"] / r["train_frames"])


def test_streaming_equals_in_memory(toy, tmp_path):
    a = Trainer(toy_config(toy, data={"in_memory": True})).fit()
    b = Trainer(toy_config(toy, data={"in_memory": False})).fit()
    assert np.array_equal(a.net.flat_parameters, b.net.flat_parameters)
    assert strip_timing(a.history) == strip_timing(b.history)


def test_same_seed_same_weights_other_seed_differs(toy):
    a = Trainer(toy_config(toy, train={"max_epochs": 2})).fit()
    b = Trainer(toy_config(toy, train={"max_epochs": 2})).fit()
    c = Trainer(toy_config(toy, train={"max_epochs": 2, "seed": 1})).fit()
    assert np.array_equal(a.net.flat_parameters, b.net.flat_parameters)
    assert not np.array_equal(a.net.flat_parameters, c.net.flat_parameters)


def test_shuffled_every_epoch_from_the_seed(toy):
    orders = []

    class Record(Callback):
        def on_epoch_begin(self, trainer, epoch):
            orders.append(trainer.state.order.copy())

    Trainer(toy_config(toy, train={"max_epochs": 3}), callbacks=[Record()]).fit()
    assert len(orders) == 3
    for o in orders:
        assert sorted(o.tolist()) == list(range(12))
    assert not np.array_equal(orders[0], orders[1])


@pytest.mark.parametrize(
    "kind, model",
    [
        ("blstm", {"kind": "blstm", "hidden_size": 2}),
        ("mlp", {"kind": "mlp", "hidden_size": 4, "window": 1}),
        ("rnn", {"kind": "rnn", "hidden_size": 3, "delay": 1, "dtype": "float32"}),
    ],
)
def test_other_kinds_and_minibatches(toy, kind, model):
    cfg = toy_config(
        toy, model=model, train={"batch_size": 3, "sort_by_length": True, "max_epochs": 2}
    )
    trainer = Trainer(cfg).fit()
    assert trainer.net.spec["kind"] == kind
    assert trainer.history[-1]["updates"] == 2 * 4  # 12 sequences in batches of 3
    assert trainer.history[0]["train_sequences"] == 12


def test_reverse_and_class_weighting_reach_the_network(toy):
    """model.reverse builds a backwards net; class_weighting = "inverse_frequency" gives
    w_c = N / (K' n_c) from the training set's frame counts, stored in the spec."""
    from seqprop.data import open_split

    cfg = toy_config(
        toy,
        model={"kind": "lstm", "hidden_size": 3, "reverse": True},
        train={"max_epochs": 1},
    )
    trainer = Trainer(cfg).fit()
    assert trainer.net.spec["reverse"] is True and "class_weights" not in trainer.net.spec
    cfg = toy_config(
        toy,
        model={"kind": "blstm", "hidden_size": 2, "class_weighting": "inverse_frequency"},
        train={"max_epochs": 2},
    )
    trainer = Trainer(cfg).fit()
    with open_split(str(toy["train"]), None, True, "train") as train_set:
        counts = np.asarray(train_set.class_counts(), dtype=np.float64)
    w = np.array(trainer.net.spec["class_weights"])
    np.testing.assert_allclose(w, counts.sum() / (len(counts) * counts), rtol=1e-14)
    assert (w * counts).sum() == pytest.approx(counts.sum())
    assert trainer.best_score_ < 0.67  # it trains


def test_mean_reduction_reports_summed_loss(toy):
    a = Trainer(toy_config(toy, train={"max_epochs": 1, "reduction": "mean"})).fit()
    r = a.history[0]
    assert r["train_loss_sum"] == pytest.approx(r["train_loss"] * r["train_frames"])


def test_one_file_with_split_groups(tmp_path):
    path = tmp_path / "corpus.h5"
    for name, n, seed in (("train", 8, 0), ("validation", 3, 1), ("test", 3, 2)):
        xs, ys = toy_sequences(n, seed)
        write_dataset(path, xs, ys, class_names=CLASSES, group=name)
    cfg = toy_config({"train": path, "validation": path}, train={"max_epochs": 1})
    cfg["data"]["test"] = str(path)
    trainer = Trainer(cfg).fit()
    assert len(trainer.train_data) == 8 and len(trainer.validation_data) == 3
    assert trainer.test_result_.n_sequences == 3


def test_without_validation_uses_training_error(toy):
    cfg = toy_config(toy, train={"max_epochs": 3})
    cfg["data"]["validation"] = None
    trainer = Trainer(cfg).fit()
    assert all(r["validation_frame_error"] is None for r in trainer.history)
    errors = [r["train_frame_error"] for r in trainer.history]
    assert trainer.best_score_ == min(errors)
    assert trainer.best_epoch_ == 1 + int(np.argmin(errors))


# ---------------------------------------------------------------- early stopping
def scripted_validation(monkeypatch, errors):
    """Make the validation pass report the given frame errors, epoch by epoch."""
    calls = iter(errors)

    def fake_score(net, split, *, batch_size=16):
        e = next(calls)
        errors = int(round(1000 * e))
        return StepResult(100.0 * e, 100.0 * e, 1000, {"frames": 1000, "errors": errors})

    monkeypatch.setattr(trainer_module, "score", fake_score)


def test_early_stopping_picks_the_best_epoch(toy, tmp_path, monkeypatch):
    errors = [0.5, 0.4, 0.3, 0.35, 0.3, 0.31, 0.1, 0.1]
    scripted_validation(monkeypatch, errors)
    weights = {}

    class Snapshot(Callback):
        def on_epoch_end(self, trainer, record):
            weights[record["epoch"]] = trainer.net.flat_parameters.copy()

    run = tmp_path / "run"
    cfg = toy_config(toy, train={"max_epochs": 20, "n_iter_no_change": 3})
    trainer = Trainer(cfg, run_dir=run, callbacks=[Snapshot()]).fit()
    # epochs 4, 5 (a tie is no improvement) and 6 without a new best: stop after 6
    assert trainer.n_epochs_ == 6
    assert trainer.best_epoch_ == 3
    assert trainer.best_score_ == pytest.approx(0.3)
    assert [r["best"] for r in trainer.history] == [True, True, True, False, False, False]
    assert "early stopping" in trainer.stop_reason_
    # the trainer keeps the best epoch's weights; the checkpoint the last ones
    assert np.array_equal(trainer.net.flat_parameters, weights[3])
    best, meta = load_model(run)
    assert meta.path.name == "best.h5" and meta.epoch == 3
    assert np.array_equal(best.flat_parameters, weights[3])
    state = load_training_state(run / "checkpoint.h5")
    assert state.finished and np.array_equal(state.parameters, weights[6])
    assert not np.array_equal(weights[3], weights[6])
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["validation_frame_error"] for x in lines] == pytest.approx(errors[:6])


def test_max_epochs_stops(toy, monkeypatch):
    scripted_validation(monkeypatch, [0.5, 0.4, 0.3, 0.2, 0.1])
    trainer = Trainer(toy_config(toy, train={"max_epochs": 2})).fit()
    assert trainer.n_epochs_ == 2 and trainer.best_epoch_ == 2
    assert trainer.stop_reason_.startswith("max_epochs")


# ---------------------------------------------------------------- run directory
def test_refuses_non_empty_run_dir_and_overwrite_keeps_other_files(toy, tmp_path):
    run = tmp_path / "run"
    Trainer(toy_config(toy, train={"max_epochs": 1}), run_dir=run).fit()
    snapshot = {p.name: p.read_bytes() for p in run.iterdir()}
    with pytest.raises(ConfigError, match="not empty.*--resume"):
        Trainer(toy_config(toy), run_dir=run).fit()
    assert {p.name: p.read_bytes() for p in run.iterdir()} == snapshot
    # a bad dataset with --overwrite must not touch the run either
    bad = toy_config(toy)
    bad["data"]["train"] = str(tmp_path / "missing.h5")
    with pytest.raises(DataError, match="missing.h5"):
        Trainer(bad, run_dir=run, overwrite=True).fit()
    assert {p.name: p.read_bytes() for p in run.iterdir()} == snapshot
    (run / "notes.txt").write_text("mine")
    Trainer(toy_config(toy, train={"max_epochs": 2}), run_dir=run, overwrite=True).fit()
    assert (run / "notes.txt").read_text() == "mine"
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
    assert (run / "config.toml").exists()


def test_dataset_mismatch_is_a_data_error(tmp_path):
    a = make_toy(tmp_path / "a")
    b = make_toy(tmp_path / "b", input_size=5)
    c = make_toy(tmp_path / "c", classes=3)  # same count, other names
    cfg = toy_config(a)
    cfg["data"]["validation"] = str(b["validation"])
    with pytest.raises(DataError, match="5 features per frame"):
        Trainer(cfg).fit()
    cfg["data"]["validation"] = str(c["validation"])
    with pytest.raises(DataError, match="class names differ"):
        Trainer(cfg).fit()


def test_divergence_is_reported_and_checkpoint_kept(toy, tmp_path):
    run = tmp_path / "run"

    class Poison(Callback):
        def __init__(self):
            self.n = 0

        def on_update(self, trainer):
            self.n += 1
            if self.n == 15:  # epoch 2: the next loss is NaN
                real = trainer.net.step

                def nan_loss(*a, **k):
                    return dataclasses.replace(real(*a, **k), loss=float("nan"))

                trainer.net.step = nan_loss

    with pytest.raises(TrainingDiverged, match="learning_rate"):
        Trainer(toy_config(toy), run_dir=run, callbacks=[Poison()]).fit()
    state = load_training_state(run / "checkpoint.h5")
    assert state.epoch == 1 and not state.finished


# ---------------------------------------------------------------- resume
class SimulatedKill(Exception):
    pass


class KillAt(Callback):
    """Raise after the k-th weight update (before any checkpoint for it)."""

    def __init__(self, k: int):
        self.k = k
        self.n = 0

    def on_update(self, trainer):
        self.n += 1
        if self.n == self.k:
            raise SimulatedKill


@pytest.fixture
def reference_run(toy, tmp_path):
    def make(**train):
        cfg = toy_config(toy, train={"checkpoint_every": 5, **train})
        run = tmp_path / f"ref-{len(list(tmp_path.iterdir()))}"
        Trainer(cfg, run_dir=run).fit()
        return cfg, run

    return make


@pytest.mark.parametrize("kill_at", [1, 5, 7, 12, 13, 30, 48])
def test_resume_after_kill_is_bit_identical(reference_run, tmp_path, kill_at):
    cfg, ref = reference_run()
    run = tmp_path / "killed"
    with pytest.raises(SimulatedKill):
        Trainer(cfg, run_dir=run, callbacks=[KillAt(kill_at)]).fit()
    if (run / "checkpoint.h5").exists():
        assert not load_training_state(run / "checkpoint.h5").finished
    resumed = Trainer.resume(run).fit()
    assert resumed.n_epochs_ == 4
    assert_same_run(ref, run)


def test_ctrl_c_saves_a_checkpoint_at_the_current_update(reference_run, tmp_path):
    cfg, ref = reference_run(checkpoint_every=0, checkpoint_seconds=0)
    run = tmp_path / "interrupted"

    class CtrlC(Callback):
        def on_update(self, trainer):
            if trainer.optimizer.n_steps == 17:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, run_dir=run, callbacks=[CtrlC()]).fit()
    state = load_training_state(run / "checkpoint.h5")
    assert (state.epoch, state.position) == (1, 5)  # 12 updates per epoch
    Trainer.resume(run).fit()
    assert_same_run(ref, run)


def test_resume_twice_with_minibatches(reference_run, tmp_path):
    cfg, ref = reference_run(batch_size=3, sort_by_length=True, checkpoint_every=1)
    run = tmp_path / "killed"
    with pytest.raises(SimulatedKill):
        Trainer(cfg, run_dir=run, callbacks=[KillAt(6)]).fit()
    with pytest.raises(SimulatedKill):
        Trainer.resume(run, callbacks=[KillAt(3)]).fit()
    Trainer.resume(run).fit()
    assert_same_run(ref, run)


def test_crash_in_validation_and_in_checkpoint_write(reference_run, tmp_path, monkeypatch):
    cfg, ref = reference_run()
    run = tmp_path / "killed"
    real_save = trainer_module.save_training_state
    calls = {"n": 0}

    def crashing_save(path, state):
        calls["n"] += 1
        if calls["n"] == 4:  # some checkpoint write dies half way
            raise SimulatedKill
        return real_save(path, state)

    monkeypatch.setattr(trainer_module, "save_training_state", crashing_save)
    with pytest.raises(SimulatedKill):
        Trainer(cfg, run_dir=run).fit()
    monkeypatch.setattr(trainer_module, "save_training_state", real_save)

    real_score = trainer_module.score

    def crashing_score(*a, **k):
        raise SimulatedKill

    monkeypatch.setattr(trainer_module, "score", crashing_score)
    with pytest.raises(SimulatedKill):
        Trainer.resume(run).fit()
    monkeypatch.setattr(trainer_module, "score", real_score)
    Trainer.resume(run).fit()
    assert_same_run(ref, run)


def test_resume_raising_max_epochs_continues_like_a_longer_run(toy, tmp_path):
    long_run = tmp_path / "long"
    Trainer(toy_config(toy, train={"max_epochs": 4}), run_dir=long_run).fit()
    short = tmp_path / "short"
    Trainer(toy_config(toy, train={"max_epochs": 2}), run_dir=short).fit()
    assert Trainer.resume(short).fit().n_epochs_ == 2  # finished: nothing to do
    Trainer.resume(short, overrides=["train.max_epochs=4"]).fit()
    sa, _, _ = run_files(long_run)
    sb, _, _ = run_files(short)
    assert np.array_equal(sa.parameters, sb.parameters)
    with pytest.raises(ConfigError, match="cannot be changed when resuming"):
        Trainer.resume(short, overrides=["train.learning_rate=1"])


def test_resume_errors(toy, tmp_path):
    with pytest.raises(ConfigError, match="no such run directory"):
        Trainer.resume(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="not a seqprop run directory"):
        Trainer.resume(tmp_path / "empty")
    # a run whose dataset was replaced by one with other classes
    run = tmp_path / "run"
    cfg = toy_config(toy, train={"max_epochs": 1})
    Trainer(cfg, run_dir=run).fit()
    other = make_toy(tmp_path / "other", classes=4)
    with h5py.File(run / "checkpoint.h5", "r+") as f:
        c = json.loads(f["config"][()])
        c["data"]["train"] = str(other["train"])
        c["data"]["validation"] = None
        del f["config"]
        f["config"] = json.dumps(c)
    (run / "config.toml").unlink()  # else refused as a hand edit (config.toml differs)
    with pytest.raises(DataError, match="differ from the checkpoint"):
        Trainer.resume(run, overrides=["train.max_epochs=2"]).fit()


def test_resume_before_first_checkpoint_restarts_from_config(reference_run, tmp_path):
    cfg, ref = reference_run(checkpoint_every=0, checkpoint_seconds=0)
    run = tmp_path / "killed"
    with pytest.raises(SimulatedKill):
        Trainer(cfg, run_dir=run, callbacks=[KillAt(3)]).fit()
    assert not (run / "checkpoint.h5").exists() and (run / "config.toml").exists()
    Trainer.resume(run).fit()
    assert_same_run(ref, run)


def _wait_for(predicate, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_sigkill_at_random_moments_then_resume_is_bit_identical(tmp_path):
    """A real process killed with SIGKILL, twice, then resumed: same weights as uninterrupted."""
    paths = make_toy(tmp_path / "data", n_train=40, n_valid=5)
    cfg = toy_config(paths, train={"max_epochs": 30, "checkpoint_every": 2})
    ref = tmp_path / "ref"
    Trainer(cfg, run_dir=ref).fit()
    config_file = tmp_path / "run.toml"
    from seqprop.config import dumps_toml

    config_file.write_text(dumps_toml(config_from_dict(cfg)))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    run = tmp_path / "run"
    rng = np.random.default_rng()
    metrics = run / "metrics.jsonl"

    def epochs_done() -> int:
        try:
            return len(metrics.read_text().splitlines())
        except FileNotFoundError:
            return 0

    for attempt, args in enumerate(
        (["train", str(config_file), "--run-dir", str(run)], ["train", "--resume", str(run)])
    ):
        start = epochs_done()
        proc = subprocess.Popen(
            [sys.executable, "-m", "seqprop", *args, "--no-progress", "--quiet"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            assert _wait_for(lambda s=start: epochs_done() >= s + 2, 120), "training too slow"
            time.sleep(float(rng.uniform(0, 0.05)))
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
        state = load_training_state(run / "checkpoint.h5")
        assert not state.finished, f"attempt {attempt}: finished before the kill"
    done = subprocess.run(
        [sys.executable, "-m", "seqprop", "train", "--resume", str(run), "--no-progress"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "stopped: max_epochs" in done.stdout
    assert_same_run(ref, run)
    assert not [p for p in run.iterdir() if ".tmp-" in p.name]


# ---------------------------------------------------------------- review fixes
def test_bad_test_set_is_refused_before_training(toy, tmp_path):
    wide = make_toy(tmp_path / "wide", input_size=6)["test"]
    run = tmp_path / "run"
    cfg = toy_config(toy, data={"test": str(wide), "in_memory": False})
    trainer = Trainer(cfg, run_dir=run)
    with pytest.raises(DataError, match="6 features per frame"):
        trainer.fit()
    assert trainer.state is None  # not a single update
    assert not run.exists()
    assert trainer.train_data.closed and trainer.validation_data.closed


def test_resume_of_finished_run_evaluates_a_newly_set_test_set(toy, tmp_path):
    run = tmp_path / "run"
    Trainer(toy_config(toy, train={"max_epochs": 1}), run_dir=run).fit()
    assert not (run / training.TEST_NAME).exists()
    with Trainer.resume(run, overrides=[f"data.test={toy['test']}"]) as trainer:
        trainer.fit()
    assert trainer.n_epochs_ == 1  # no more training
    assert trainer.test_result_ is not None and trainer.test_result_.n_sequences == 5
    saved = json.loads((run / training.TEST_NAME).read_text())
    assert saved["frame_accuracy"] == pytest.approx(trainer.test_result_.frame_accuracy)
    # once test.json exists, resuming again leaves it alone
    mtime = (run / training.TEST_NAME).stat().st_mtime_ns
    with Trainer.resume(run) as again:
        again.fit()
    assert again.test_result_ is None
    assert (run / training.TEST_NAME).stat().st_mtime_ns == mtime


@pytest.mark.parametrize("role", ["validation", "train"])
def test_split_without_labelled_frames_is_refused(toy, tmp_path, role):
    xs, ys = toy_sequences(4, 7)
    bad = write_dataset(
        tmp_path / "unlabelled.h5", xs, [np.full_like(y, -1) for y in ys], class_names=CLASSES
    )
    cfg = toy_config(toy, data={"in_memory": False})
    if role == "train":
        cfg["data"] = {"train": str(bad), "in_memory": False}
    else:
        cfg["data"]["validation"] = str(bad)
    trainer = Trainer(cfg, run_dir=tmp_path / "run")
    with pytest.raises(DataError, match=rf"data\.{role} = .*unlabelled\.h5: no labelled frame"):
        trainer.fit()
    assert not (tmp_path / "run").exists()
    assert trainer.train_data.closed


def test_failed_setup_closes_the_datasets(toy, tmp_path):
    other = make_toy(tmp_path / "other", classes=4)["validation"]
    trainer = Trainer(toy_config(toy, data={"validation": str(other), "in_memory": False}))
    with pytest.raises(DataError, match="4 classes"):
        trainer.fit()
    assert trainer.train_data.closed and trainer.validation_data.closed


def test_failed_training_closes_the_datasets(toy):
    class Poison(Callback):
        def on_train_begin(self, trainer):
            real = trainer.net.step

            def nan_loss(*a, **k):
                return dataclasses.replace(real(*a, **k), loss=float("nan"))

            trainer.net.step = nan_loss

    trainer = Trainer(toy_config(toy, data={"in_memory": False}), callbacks=[Poison()])
    with pytest.raises(TrainingDiverged):
        trainer.fit()
    assert trainer.train_data.closed and trainer.validation_data.closed


def test_train_frames_come_from_the_network_count(toy):
    """The trainer takes its counts from ``net.step``'s result rather than counting again."""

    class Spy(Callback):
        def on_train_begin(self, trainer):
            net = trainer.net
            inner = net.step

            def step(*args, **kwargs):
                out = inner(*args, **kwargs)
                return dataclasses.replace(out, n_scored=5, counts={"frames": 5, "errors": 0})

            net.step = step

    trainer = Trainer(toy_config(toy, train={"max_epochs": 1}), callbacks=[Spy()]).fit()
    record = trainer.history[0]
    assert record["train_frames"] == 5 * record["updates"]
    assert record["train_frame_error"] == 0.0


def test_checkpoint_is_written_before_best_model(toy, tmp_path, monkeypatch):
    calls = []
    save_state, save_best = trainer_module.save_training_state, trainer_module.save_model
    monkeypatch.setattr(
        trainer_module,
        "save_training_state",
        lambda *a, **k: (calls.append("checkpoint"), save_state(*a, **k))[1],
    )
    monkeypatch.setattr(
        trainer_module, "save_model", lambda *a, **k: (calls.append("best"), save_best(*a, **k))[1]
    )
    Trainer(toy_config(toy, train={"max_epochs": 1}), run_dir=tmp_path / "run").fit()
    assert calls == ["checkpoint", "best"]
