"""Checkpoints and model files: round trips, atomic writes, refusing non-checkpoints."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

import seqprop.checkpoint as ckpt
from seqprop.checkpoint import (
    FORMAT_VERSION,
    TrainingState,
    atomic_output,
    find_model_file,
    load_model,
    load_training_state,
    remove_stale_temporaries,
    save_model,
    save_training_state,
)
from seqprop.cli import main
from seqprop.config import config_from_dict, config_to_dict
from seqprop.data import write_dataset
from seqprop.errors import CheckpointError, ConfigError
from seqprop.network import make_network
from seqprop.training import Trainer
from tests import legacy
from tests.test_training import KillAt, SimulatedKill, assert_same_run, make_toy, toy_config

CLASSES = ["a", "b", "c"]


def make_state(seed: int = 0, **changes) -> TrainingState:
    net = make_network("blstm", 4, 3, 3, random_state=seed)
    rng = np.random.default_rng(seed)
    gen = np.random.default_rng(123)
    gen.permutation(10)
    fields = dict(
        config={"model": {"kind": "blstm", "delay": 2}, "data": {"train": "t.h5"}},
        spec=dict(net.spec),
        class_names=list(CLASSES),
        mean=rng.normal(size=4),
        std=rng.uniform(0.5, 2, size=4),
        parameters=net.flat_parameters.copy(),
        optimizer_name="sgd",
        optimizer_state={
            "learning_rate": 1e-5,
            "momentum": 0.9,
            "n_steps": 17,
            "velocity": rng.normal(size=net.num_parameters),
        },
        rng_state=gen.bit_generator.state,
        epoch=3,
        position=7,
        order=rng.permutation(10),
        order_offsets=np.arange(11),
        epoch_sums={"loss_sum": 12.3456789012345, "frames": 40, "errors": 9, "seconds": 1.5},
        history=[{"epoch": 1, "train_loss": 1.0, "validation_frame_error": None}],
        best_parameters=net.flat_parameters * 2,
        best_score=0.25,
        best_epoch=2,
        n_no_change=1,
    )
    fields.update(changes)
    return TrainingState(**fields)


def assert_states_equal(a: TrainingState, b: TrainingState) -> None:
    for name in ("parameters", "mean", "std", "order", "order_offsets"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            np.testing.assert_array_equal(x, y, err_msg=name)
    if a.best_parameters is None:
        assert b.best_parameters is None
    else:
        np.testing.assert_array_equal(a.best_parameters, b.best_parameters)
    assert_optimizer_states_equal(a.optimizer_state, b.optimizer_state)
    for name in (
        "config",
        "spec",
        "class_names",
        "optimizer_name",
        "rng_state",
        "epoch",
        "position",
        "epoch_sums",
        "history",
        "best_score",
        "best_epoch",
        "n_no_change",
        "finished",
        "stop_reason",
    ):
        assert getattr(a, name) == getattr(b, name), name


def assert_optimizer_states_equal(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for key, x in a.items():
        y = b[key]
        if isinstance(x, np.ndarray):
            assert isinstance(y, np.ndarray) and x.dtype == y.dtype, key
            np.testing.assert_array_equal(x, y, err_msg=key)
        else:
            assert type(x) is type(y) and x == y, key


def test_training_state_round_trip(tmp_path):
    state = make_state()
    path = save_training_state(tmp_path / "checkpoint.h5", state)
    loaded = load_training_state(path)
    assert_states_equal(state, loaded)
    # the RNG continues exactly
    a = np.random.default_rng(0)
    a.bit_generator.state = state.rng_state
    b = np.random.default_rng(0)
    b.bit_generator.state = loaded.rng_state
    assert np.array_equal(a.permutation(50), b.permutation(50))


def test_training_state_between_epochs_round_trip(tmp_path):
    state = make_state(order=None, order_offsets=None, position=0, best_parameters=None)
    state.best_score = float("inf")
    loaded = load_training_state(save_training_state(tmp_path / "c.h5", state))
    assert_states_equal(state, loaded)
    assert loaded.best_score == float("inf")


def test_load_model_from_checkpoint_best_and_last(tmp_path):
    state = make_state()
    path = save_training_state(tmp_path / "checkpoint.h5", state)
    net, meta = load_model(path)
    np.testing.assert_array_equal(net.flat_parameters, state.best_parameters)
    assert meta.content == "training" and meta.epoch == 2 and meta.score == 0.25
    assert meta.delay == 2 and meta.class_names == CLASSES
    np.testing.assert_array_equal(meta.mean, state.mean)
    net, meta = load_model(path, which="last")
    np.testing.assert_array_equal(net.flat_parameters, state.parameters)
    assert meta.epoch == 3


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_model_round_trip(tmp_path, dtype):
    net = make_network("lstm", 5, 4, 3, dtype=dtype, random_state=1)
    path = save_model(
        tmp_path / "best.h5",
        net.flat_parameters,
        spec=net.spec,
        class_names=CLASSES,
        delay=3,
        config={"x": 1},
        epoch=4,
        score=0.5,
    )
    loaded, meta = load_model(path)
    assert loaded.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(loaded.flat_parameters, net.flat_parameters)
    assert meta.mean is None and meta.std is None
    assert (meta.delay, meta.epoch, meta.score, meta.config) == (3, 4, 0.5, {"x": 1})
    assert meta.input_size == 5 and meta.num_classes == 3
    x = np.random.default_rng(0).normal(size=(7, 2, 5))
    np.testing.assert_array_equal(
        loaded.predict_proba(x, np.array([7, 4])), net.predict_proba(x, np.array([7, 4]))
    )
    with pytest.raises(CheckpointError, match="model file, not a training checkpoint"):
        load_training_state(path)


def test_run_directory_prefers_best(tmp_path):
    state = make_state()
    save_training_state(tmp_path / "checkpoint.h5", state)
    assert find_model_file(tmp_path) == tmp_path / "checkpoint.h5"
    save_model(tmp_path / "best.h5", state.parameters, spec=state.spec, class_names=CLASSES)
    assert find_model_file(tmp_path) == tmp_path / "best.h5"
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not a run directory"):
        find_model_file(tmp_path / "empty")


def test_non_checkpoints_are_refused(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.arange(3)
    data = tmp_path / "data.h5"
    write_dataset(data, [np.zeros((3, 2), np.float32)], [np.zeros(3, np.int32)], class_names=["a"])
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    for path, match in [
        (text, "not a seqprop checkpoint"),
        (other, "not a seqprop checkpoint"),
        (data, "not a seqprop checkpoint"),
        (empty, "not a seqprop checkpoint"),
        (tmp_path / "missing.h5", "no such file"),
    ]:
        with pytest.raises(CheckpointError, match=match) as info:
            load_model(path)
        assert "\n" not in str(info.value)
        with pytest.raises(CheckpointError):
            load_training_state(path)


def test_truncated_checkpoint_is_refused(tmp_path):
    path = save_training_state(tmp_path / "c.h5", make_state())
    raw = path.read_bytes()
    bad = tmp_path / "bad.h5"
    bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError):
        load_model(bad)
    with pytest.raises(CheckpointError):
        load_training_state(bad)


def test_inconsistent_checkpoint_is_refused(tmp_path):
    state = make_state()
    path = save_training_state(tmp_path / "c.h5", state)
    with h5py.File(path, "r+") as f:
        del f["best_parameters"]
        del f["parameters"]
        f["parameters"] = np.zeros(5)
    with pytest.raises(CheckpointError, match="holds 5 parameters"):
        load_model(path)
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = 99
    with pytest.raises(CheckpointError, match="version 99"):
        load_model(path)


def test_crash_during_checkpoint_write_keeps_previous(tmp_path, monkeypatch):
    """A failure in the middle of writing leaves the previous checkpoint intact."""
    path = tmp_path / "checkpoint.h5"
    old = make_state(seed=0)
    save_training_state(path, old)
    before = path.read_bytes()

    real = h5py.Group.create_dataset
    calls = {"n": 0}

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # after some datasets were written
            raise OSError("simulated crash: disk full")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", failing)
    with pytest.raises(OSError, match="simulated crash"):
        save_training_state(path, make_state(seed=1, epoch=4))
    monkeypatch.undo()
    assert calls["n"] == 4
    assert path.read_bytes() == before
    assert_states_equal(load_training_state(path), old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.h5"]


def test_crash_before_rename_keeps_previous(tmp_path, monkeypatch):
    """Killed after the new file is complete but before os.replace: old file still there."""
    path = tmp_path / "checkpoint.h5"
    old = make_state(seed=0)
    save_training_state(path, old)

    def killed(src, dst):
        raise KeyboardInterrupt  # stands in for the process dying here

    monkeypatch.setattr(ckpt.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        save_training_state(path, make_state(seed=1, epoch=9))
    monkeypatch.undo()
    assert_states_equal(load_training_state(path), old)


def test_stale_temporaries_are_removed(tmp_path):
    keep = tmp_path / "notes.tmp-1"  # not ours: no leading dot
    keep.write_text("x")
    stale = tmp_path / ".checkpoint.h5.tmp-4242"
    stale.write_bytes(b"partial")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert keep.exists() and not stale.exists()


def test_atomic_output_cleans_up_on_error(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
    with atomic_output(target) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"


def test_json_clean_makes_strict_json():
    import json

    value = {
        1: (np.float32(np.nan), np.int64(3), [float("inf"), np.array([1.5, np.nan])]),
        "ok": {"x": np.bool_(True), "s": "t", "n": None},
    }
    out = ckpt.json_clean(value)
    assert out == {"1": [None, 3, [None, [1.5, None]]], "ok": {"x": True, "s": "t", "n": None}}
    json.dumps(out, allow_nan=False)


def test_write_text_atomic_syncs_the_directory(tmp_path, monkeypatch):
    synced = []
    real = ckpt._fsync_dir
    monkeypatch.setattr(ckpt, "_fsync_dir", lambda d: (synced.append(d), real(d)))
    path = ckpt.write_text_atomic(tmp_path / "a.txt", "héllo\n")
    assert path.read_text(encoding="utf-8") == "héllo\n"
    assert synced == [tmp_path]
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


# ------------------------------------------------------------------ optimiser group
def test_optimizer_state_is_a_group(tmp_path):
    state = make_state()
    path = save_training_state(tmp_path / "c.h5", state)
    with h5py.File(path, "r") as f:
        assert f.attrs["format_version"] == FORMAT_VERSION == 2
        assert "velocity" not in f  # nothing specific to SGD at the root
        group = f["optimizer"]
        assert dict(group.attrs) == {
            "name": "sgd",
            "learning_rate": 1e-5,
            "momentum": 0.9,
            "n_steps": 17,
        }
        assert list(group) == ["velocity"]
        np.testing.assert_array_equal(group["velocity"][()], state.optimizer_state["velocity"])
        assert "optimizer" not in json.loads(f["state"][()])


def test_any_optimizer_state_round_trips(tmp_path):
    rng = np.random.default_rng(5)
    opt_state = {
        "m": rng.normal(size=7).astype(np.float32),
        "v": rng.uniform(size=(7, 2)),
        "beta1": 0.9,
        "eps": 1e-8,
        "n_steps": 2**40,
        "amsgrad": True,
        "count32": np.int32(3),
    }
    state = make_state(optimizer_name="adamish", optimizer_state=opt_state)
    loaded = load_training_state(save_training_state(tmp_path / "c.h5", state))
    assert loaded.optimizer_name == "adamish"
    expected = {**opt_state, "count32": 3}  # numpy scalars come back as Python numbers
    assert_optimizer_states_equal(expected, loaded.optimizer_state)


@pytest.mark.parametrize(
    ("name", "opt_state", "match"),
    [
        ("", {}, "optimizer name must be a non-empty string"),
        (None, {}, "optimizer name must be a non-empty string"),
        ("sgd", {"name": 1.0}, "optimizer state key 'name'"),
        ("sgd", {"a/b": 1.0}, "optimizer state key 'a/b'"),
        ("sgd", {"lr": "0.1"}, "optimizer state 'lr': must be a numpy array or a number, got str"),
        ("sgd", {"v": [1.0, 2.0]}, "optimizer state 'v': .* got list"),
        ("sgd", {"nested": {"x": 1}}, "got dict"),
    ],
)
def test_unstorable_optimizer_state_is_refused_before_writing(tmp_path, name, opt_state, match):
    path = tmp_path / "c.h5"
    save_training_state(path, make_state())
    before = path.read_bytes()
    state = make_state(optimizer_name=name, optimizer_state=opt_state)
    with pytest.raises(ValueError, match=match):
        save_training_state(path, state)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.h5"]


def test_damaged_optimizer_group_is_refused(tmp_path):
    path = save_training_state(tmp_path / "c.h5", make_state())
    with h5py.File(path, "r+") as f:
        f["optimizer"].create_group("sub")
    with pytest.raises(CheckpointError, match="optimizer state 'sub' is not one array"):
        load_training_state(path)
    with h5py.File(path, "r+") as f:
        del f["optimizer/sub"]
        del f["optimizer"].attrs["name"]
    with pytest.raises(CheckpointError, match="group does not name its optimizer"):
        load_training_state(path)
    with h5py.File(path, "r+") as f:
        del f["optimizer"]
    with pytest.raises(CheckpointError, match="lacks the group 'optimizer'") as info:
        load_training_state(path)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------ seqprop 0.1.0 files
def write_legacy_checkpoint(path, state: TrainingState):
    """``state`` in 0.1.0's layout (tests/legacy.py)."""
    assert state.optimizer_name == "sgd"
    scalars = dict(state.optimizer_state)
    velocity = scalars.pop("velocity")
    return legacy.write_training_checkpoint(
        path,
        config=legacy.config_0_1_0(state.config),
        spec=legacy.spec_0_1_0(state.spec),
        class_names=state.class_names,
        parameters=state.parameters,
        velocity=velocity,
        optimizer={"name": "sgd", **scalars},
        rng_state=state.rng_state,
        mean=state.mean,
        std=state.std,
        epoch=state.epoch,
        position=state.position,
        order=state.order,
        order_offsets=state.order_offsets,
        epoch_sums=state.epoch_sums,
        history=state.history,
        best_parameters=state.best_parameters,
        best_score=state.best_score,
        best_epoch=state.best_epoch,
        n_no_change=state.n_no_change,
        finished=state.finished,
        stop_reason=state.stop_reason,
    )


def write_legacy_model(path, model_path):
    net, meta = load_model(model_path)
    return legacy.write_model(
        path,
        net.flat_parameters,
        spec=legacy.spec_0_1_0(meta.spec),
        class_names=meta.class_names,
        mean=meta.mean,
        std=meta.std,
        delay=meta.delay,
        config=legacy.config_0_1_0(meta.config),
        epoch=meta.epoch,
        score=meta.score,
    )


@pytest.fixture(scope="module")
def legacy_runs(tmp_path_factory):
    """A BLSTM run trained for 2 epochs, and the same run killed mid-epoch 2 with its
    checkpoint.h5 and best.h5 rewritten as seqprop 0.1.0 wrote them."""
    root = tmp_path_factory.mktemp("legacy")
    data = make_toy(root / "data")
    cfg = toy_config(
        data,
        model={"kind": "blstm", "hidden_size": 2},
        train={"max_epochs": 2, "checkpoint_every": 5},
    )
    cfg["data"]["test"] = str(data["test"])
    ref = root / "ref"
    Trainer(cfg, run_dir=ref).fit().close()
    killed = root / "killed"
    with pytest.raises(SimulatedKill):
        Trainer(cfg, run_dir=killed, callbacks=[KillAt(19)]).fit()
    old = root / "old"
    old.mkdir()
    for name in ("config.toml", "metrics.jsonl"):
        shutil.copy(killed / name, old / name)
    write_legacy_checkpoint(old / "checkpoint.h5", load_training_state(killed / "checkpoint.h5"))
    write_legacy_model(old / "best.h5", killed / "best.h5")
    return {"ref": ref, "killed": killed, "old": old, **data}


def test_legacy_recipe_writes_the_0_1_0_layout(legacy_runs):
    """The files tests/legacy.py writes are structured as the ones 0.1.0 wrote."""
    old = legacy_runs["old"]
    expected = legacy.LAYOUT_0_1_0["training"]
    mid_epoch = {"order": ("int64", 1), "order_offsets": ("int64", 1)}  # 0.1.0 wrote these too
    expected = {**expected, "datasets": {**expected["datasets"], **mid_epoch}}
    assert legacy.layout(old / "checkpoint.h5") == expected
    assert legacy.layout(old / "best.h5") == legacy.LAYOUT_0_1_0["model"]


def test_load_legacy_training_state(legacy_runs):
    old = load_training_state(legacy_runs["old"] / "checkpoint.h5")
    new = load_training_state(legacy_runs["killed"] / "checkpoint.h5")
    assert 0 < old.position < old.order_offsets.size - 1  # in the middle of an epoch
    assert old.optimizer_name == "sgd"
    assert sorted(old.optimizer_state) == ["learning_rate", "momentum", "n_steps", "velocity"]
    assert old.optimizer_state["n_steps"] == 17
    assert "optimizer" not in old.config["train"]
    assert config_to_dict(config_from_dict(old.config)) == new.config
    assert old.spec == legacy.spec_0_1_0(new.spec)  # keys added since take their defaults
    old.config, old.spec = new.config, new.spec
    assert_states_equal(old, new)
    net, meta = load_model(legacy_runs["old"] / "best.h5")
    best, best_meta = load_model(legacy_runs["killed"] / "best.h5")
    np.testing.assert_array_equal(net.flat_parameters, best.flat_parameters)
    assert (meta.epoch, meta.score, meta.delay) == (best_meta.epoch, best_meta.score, 0)


def test_resume_legacy_run_is_bit_identical(legacy_runs, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(legacy_runs["old"], run)
    assert main(["train", "--resume", str(run), "--no-progress", "--quiet"]) == 0
    assert_same_run(legacy_runs["ref"], run)
    with h5py.File(run / "checkpoint.h5", "r") as f:  # rewritten in the current layout
        assert f.attrs["format_version"] == FORMAT_VERSION
        assert "velocity" not in f and f["optimizer"].attrs["name"] == "sgd"


def test_resume_legacy_run_refuses_another_optimizer(legacy_runs, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(legacy_runs["old"], run)
    with pytest.raises(ConfigError, match="train.optimizer: cannot be changed when resuming"):
        Trainer.resume(run, overrides=["train.optimizer=sgd"])
    with h5py.File(run / "checkpoint.h5", "r+") as f:
        del f["velocity"]
        f["velocity"] = np.zeros(5)
    rc = main(["train", "--resume", str(run), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "Traceback" not in err
    assert str(run / "checkpoint.h5") in err and "'velocity' must be a float64 array" in err


def test_evaluate_legacy_model(legacy_runs, capsys):
    test = str(legacy_runs["test"])
    results = []
    for run in (legacy_runs["old"], legacy_runs["killed"]):
        assert main(["evaluate", str(run / "best.h5"), test, "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        out.pop("model", None)
        results.append(out)
    assert results[0] == results[1]
    assert results[0]["n_frames"] > 0 and results[0]["epoch"] == 1
