"""Faults as they really happen (issue 13): full disks, overflowing normalisation,
huge models, files truncated under a running job, hand-edited run directories.

Full-disk tests mount a small tmpfs (root only; skipped cleanly elsewhere) and run
the real ``seqprop`` command in a subprocess: the answer must be exit 2 with one
line naming the file and "no space left on device", never a traceback or a crash.
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import h5py
import numpy as np
import pytest

from seqprop.checkpoint import save_model
from seqprop.data import write_dataset
from seqprop.errors import OutputError
from seqprop.network import make_network

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ a small filesystem
@contextlib.contextmanager
def _tmpfs(directory: Path, size: int):
    directory.mkdir(parents=True, exist_ok=True)
    if not shutil.which("mount") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], capture_output=True)


@pytest.fixture
def small_fs(tmp_path):
    """``small_fs(size)``: a fresh tmpfs of ``size`` bytes (unmounted after the test)."""
    stack = contextlib.ExitStack()

    def make(size: int) -> Path:
        return stack.enter_context(_tmpfs(tmp_path / f"fs-{uuid.uuid4().hex[:6]}", size))

    with stack:
        yield make


def seqprop_cli(*args, cwd=None, timeout=300):
    """Run the real ``seqprop`` command; returns the CompletedProcess."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONFAULTHANDLER": "1"}
    return subprocess.run(
        [sys.executable, "-m", "seqprop", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
    )


def assert_disk_full(r, path_fragment):
    """Exit 2, one line on stderr naming the file and "no space left on device"."""
    assert r.returncode == 2, (r.returncode, r.stderr[-3000:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    assert "no space left on device" in lines[0], lines[0]
    assert path_fragment in lines[0], lines[0]


def toy_split(path, n_seq=4, frames=50, n_in=3, k=3, seed=0, **kw):
    rng = np.random.default_rng(seed)
    xs = [rng.normal(size=(frames, n_in)).astype(np.float32) for _ in range(n_seq)]
    ys = [rng.integers(0, k, size=frames) for _ in range(n_seq)]
    return write_dataset(path, xs, ys, class_names=[f"c{i}" for i in range(k)], **kw)


def toy_model(path, n_in=3, k=3, hidden=4):
    net = make_network(kind="lstm", input_size=n_in, hidden_size=hidden, num_classes=k)
    return save_model(
        path, net.flat_parameters, spec=net.spec, class_names=[f"c{i}" for i in range(k)]
    )


def still_healthy(directory: Path) -> None:
    """HDF5 keeps working after the failure (its library state is not corrupt)."""
    gc.collect()
    p = directory / "after.h5"
    with h5py.File(p, "w") as f:
        f["x"] = np.arange(3)
    with h5py.File(p, "r") as f:
        assert f["x"][()].tolist() == [0, 1, 2]


# ------------------------------------------------------------------ 1. full disk, in process
def test_save_model_on_full_disk_raises_one_line_output_error(small_fs, tmp_path):
    fs = small_fs(64 * 1024)
    net = make_network(kind="lstm", input_size=20, hidden_size=60, num_classes=5)
    dest = fs / "model.h5"
    with pytest.raises(OutputError) as info:
        save_model(dest, net.flat_parameters, spec=net.spec, class_names=list("abcde"))
    msg = str(info.value)
    assert "\n" not in msg and str(dest) in msg and "no space left on device" in msg
    assert not dest.exists() and list(fs.iterdir()) == []  # no temporary left behind
    still_healthy(tmp_path)


def test_write_dataset_on_full_disk_leaves_the_old_file(small_fs, tmp_path):
    fs = small_fs(256 * 1024)
    dest = toy_split(fs / "d.h5", n_seq=2, frames=10)
    before = dest.read_bytes()
    with pytest.raises(OutputError, match="no space left on device"):
        toy_split(dest, n_seq=20, frames=2000, overwrite=True)
    assert dest.read_bytes() == before
    grouped = toy_split(fs / "g.h5", n_seq=2, frames=10, group="a")
    before = grouped.read_bytes()
    with pytest.raises(OutputError, match="g.h5: cannot write: no space left on device"):
        toy_split(grouped, n_seq=20, frames=2000, group="b")  # the copy-and-add path
    assert grouped.read_bytes() == before
    assert sorted(p.name for p in fs.iterdir()) == ["d.h5", "g.h5"]
    still_healthy(tmp_path)


def test_split_writer_on_full_disk_leaves_nothing(small_fs, tmp_path):
    from seqprop.corpora.writer import SplitWriter

    fs = small_fs(128 * 1024)
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(3000, 8)) for _ in range(3)]
    ys = [np.zeros(3000, dtype=np.int64) for _ in range(3)]
    with pytest.raises(OutputError, match="no space left on device"):
        with SplitWriter(fs / "corpus", ["train", "test"]) as w:
            w.write("train", xs, ys, class_names=["a"])
            w.write("test", xs, ys, class_names=["a"])
            w.commit()
    assert list(fs.iterdir()) == []
    still_healthy(tmp_path)


# ------------------------------------------------------------------ 1. full disk, real commands
def test_predict_on_full_disk_exits_2_with_one_line(small_fs, tmp_path):
    data = toy_split(tmp_path / "data.h5", n_seq=40, frames=1000)
    model = toy_model(tmp_path / "model.h5")
    fs = small_fs(128 * 1024)
    out = fs / "sub" / "post.h5"
    for _ in range(2):
        r = seqprop_cli("predict", model, data, out)
        assert_disk_full(r, str(out))
        assert r.returncode != 139
    assert not out.exists()


def test_train_on_full_disk_exits_2_with_one_line(small_fs, tmp_path):
    from seqprop.config import config_from_dict, dumps_toml

    train = toy_split(tmp_path / "train.h5", n_seq=4, frames=30, n_in=10)
    valid = toy_split(tmp_path / "valid.h5", n_seq=2, frames=30, n_in=10, seed=1)
    fs = small_fs(160 * 1024)
    cfg = {
        "model": {"kind": "lstm", "hidden_size": 60},
        "data": {"train": str(train), "validation": str(valid)},
        "train": {"learning_rate": 1e-3, "max_epochs": 3, "threads": 1, "progress": False},
    }
    config = tmp_path / "run.toml"
    config.write_text(dumps_toml(config_from_dict(cfg)))
    run = fs / "run"
    r = seqprop_cli("train", config, "--run-dir", run, "--no-progress")
    assert_disk_full(r, str(run))


def test_prepare_synthetic_on_full_disk_exits_2_with_one_line(small_fs):
    fs = small_fs(96 * 1024)
    out = fs / "corpus"
    r = seqprop_cli(
        "prepare",
        "synthetic",
        out,
        "--n-train",
        "6",
        "--n-validation",
        "2",
        "--n-test",
        "2",
        "--n-speakers",
        "1",
    )
    assert_disk_full(r, str(out / "train.h5"))
    assert not out.exists() or list(out.iterdir()) == []


# ------------------------------------------------------------------ 2. normalisation overflow
def _constant_feature_splits(directory: Path):
    rng = np.random.default_rng(3)

    def split(name, n, big_at=None):
        xs = []
        for _ in range(n):
            x = rng.normal(size=(8, 2)).astype(np.float32)
            x[:, 0] = 5.0  # constant in the training set
            xs.append(x)
        if big_at is not None:
            xs[big_at][5, 0] = 1e31  # finite in float32, but (1e31 - 5) / 1e-8 is not
        ys = [rng.integers(0, 2, size=8) for _ in range(n)]
        tags = [f"{name}-{i}" for i in range(n)]
        return write_dataset(directory / f"{name}.h5", xs, ys, class_names=["a", "b"], tags=tags)

    return split("train", 4), split("valid", 5, big_at=3)


@pytest.mark.parametrize("in_memory", [True, False])
def test_normalisation_overflow_names_the_file_and_its_own_sequence(tmp_path, capsys, in_memory):
    from seqprop.cli import main
    from seqprop.config import config_from_dict, dumps_toml

    train, valid = _constant_feature_splits(tmp_path)
    cfg = {
        "model": {"kind": "lstm", "hidden_size": 3, "dtype": "float32"},
        "data": {"train": str(train), "validation": str(valid), "in_memory": in_memory},
        "train": {"learning_rate": 1e-3, "max_epochs": 2, "threads": 1, "progress": False},
    }
    config = tmp_path / "run.toml"
    config.write_text(dumps_toml(config_from_dict(cfg)))
    rc = main(["train", str(config), "--run-dir", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2, err
    line = err.strip().splitlines()[-1]
    assert f"{valid}: sequence 3 (tag 'valid-3'): frame 5 feature 0" in line, line
    assert "float32" in line
    for cmd in (["evaluate"], ["predict"]):
        args = [*cmd, str(tmp_path / "run" / "checkpoint.h5"), str(valid)]
        if cmd == ["predict"]:
            args.append(str(tmp_path / "p.h5"))
        if not (tmp_path / "run" / "checkpoint.h5").exists():
            break  # in memory: refused before the first checkpoint
        rc = main(args)
        err = capsys.readouterr().err
        assert rc == 2 and "sequence 3 (tag 'valid-3'): frame 5 feature 0" in err, err


def test_normalised_inputs_that_fit_are_unchanged(tmp_path):
    from seqprop.data import Preprocessor

    pre = Preprocessor(np.float32, np.array([5.0, 0.0]), np.array([1e-8, 1.0]))
    x = np.array([[5.0, 1.0], [5.0 + 1e-7, 2.0]], dtype=np.float32)
    out, _ = pre(x)
    expect = ((x.astype(np.float64) - pre.mean) / pre.std).astype(np.float32)
    np.testing.assert_array_equal(out, expect)


# ------------------------------------------------------------------ 3. a huge model
def test_huge_model_is_refused_before_allocating(tmp_path, capsys):
    from seqprop.cli import main
    from seqprop.config import config_from_dict, dumps_toml

    train = toy_split(tmp_path / "train.h5", n_seq=3, frames=20)
    cfg = {
        "model": {"kind": "lstm", "hidden_size": 1000000, "dtype": "float32"},
        "data": {"train": str(train)},
        "train": {"max_epochs": 1, "threads": 1, "progress": False},
    }
    config = tmp_path / "run.toml"
    config.write_text(dumps_toml(config_from_dict(cfg)))
    rc = main(["train", str(config), "--run-dir", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "model.hidden_size = 1000000" in lines[0], err
    assert "TiB" in lines[0] and "available" in lines[0]


def test_memory_estimate_grows_with_the_model_and_passes_normal_runs():
    from seqprop.config import ModelConfig, TrainConfig
    from seqprop.network import make_network
    from seqprop.training.memory import check_fits, estimate_training_bytes

    train = TrainConfig(batch_size=1)
    for kind in ("lstm", "blstm", "rnn", "brnn", "mlp"):
        model = ModelConfig(kind=kind, hidden_size=20, dtype="float64")
        net = make_network(kind=kind, input_size=26, hidden_size=20, num_classes=61)
        need = estimate_training_bytes(model, train, input_size=26, num_classes=61, longest=1)
        # one frame: the estimate is the 4 parameter-sized vectors, within the layout's detail
        assert 4 * 8 * net.num_parameters <= need <= 1.2 * 4 * 8 * net.num_parameters + 8000
    paper = ModelConfig(kind="blstm", hidden_size=93, dtype="float64")
    need = check_fits(paper, train, input_size=26, num_classes=61, longest=800, available=2**30)
    assert need < 2**30 // 10  # the paper's BLSTM on TIMIT fits in far less than 1 GiB
    from seqprop.errors import ConfigError

    with pytest.raises(ConfigError, match="model.hidden_size = 93: .* more than the 1.0 KiB"):
        check_fits(paper, train, input_size=26, num_classes=61, longest=800, available=1024)


# ------------------------------------------------------------------ 5. a streamed file truncated
def test_streamed_reads_of_a_truncated_file_fail(tmp_path):
    from seqprop.data import open_dataset
    from seqprop.errors import DataError

    path = toy_split(tmp_path / "d.h5", n_seq=6, frames=500)
    with open_dataset(path, in_memory=False) as ds:
        x0, _ = ds[0]
        size = path.stat().st_size
        os.truncate(path, size // 2)
        with pytest.raises(DataError, match=r"d\.h5: changed while being read \(truncated"):
            ds[5]
        with pytest.raises(DataError, match="changed while being read"):
            ds[0]  # even a range still on disk: the file can no longer be trusted


def test_training_on_a_file_truncated_mid_run_stops_and_keeps_the_checkpoint(tmp_path):
    from seqprop.checkpoint import load_training_state
    from seqprop.errors import DataError
    from seqprop.training import Trainer
    from seqprop.training.callbacks import Callback

    train = toy_split(tmp_path / "train.h5", n_seq=8, frames=400, n_in=3)

    class Truncate(Callback):
        def on_update(self, trainer):
            if trainer.state.position == 3:
                os.truncate(train, train.stat().st_size // 3)

    cfg = {
        "model": {"kind": "lstm", "hidden_size": 3},
        "data": {"train": str(train), "in_memory": False},
        "train": {"max_epochs": 2, "threads": 1, "progress": False, "checkpoint_every": 1},
    }
    run = tmp_path / "run"
    with pytest.raises(DataError, match="changed while being read"):
        Trainer(cfg, run_dir=run, callbacks=[Truncate()]).fit()
    state = load_training_state(run / "checkpoint.h5")  # still valid
    assert state.position == 3 and state.epoch == 0


# ------------------------------------------------------------------ 9. MATLAB's defaults
def _matlab_file(path, lengths, targets_shape=None, targets_dtype=np.int16):
    rng = np.random.default_rng(0)
    n = int(sum(lengths))
    y = rng.integers(-1, 3, size=n)
    with h5py.File(path, "w") as f:
        f["inputs"] = rng.normal(size=(n, 2)).astype(np.float32)
        f["targets"] = y.astype(targets_dtype).reshape(targets_shape or (n,))
        f["seq_lengths"] = np.asarray(lengths, dtype=np.float64).reshape(-1, 1)
        f["seq_tags"] = np.array([f"s{i}" for i in range(len(lengths))], dtype=object)
        f.attrs["format"] = "seqprop.sequences"
        f.attrs["format_version"] = 1
        f.attrs["class_names"] = np.array(["a", "b", "c"], dtype=object)
    return path, y


@pytest.mark.parametrize("in_memory", [True, False])
@pytest.mark.parametrize("shape", [(10, 1), (1, 10)])
def test_matlab_float_lengths_and_column_targets_are_read(tmp_path, in_memory, shape, caplog):
    from seqprop.data import open_dataset

    path, y = _matlab_file(tmp_path / "m.h5", [3.0, 5.0, 2.0], targets_shape=shape)
    with open_dataset(path, in_memory=in_memory) as ds:
        assert ds.lengths.tolist() == [3, 5, 2] and ds.lengths.dtype == np.int64
        assert ds[1][1].tolist() == y[3:8].tolist()
        assert ds.read_targets().tolist() == y.tolist()
        assert ds.read_batch([0, 2]).y.shape == (3, 2)
    assert "seq_lengths" in caplog.text and "targets" in caplog.text


def test_matlab_files_that_cannot_be_read_say_how_to_write_them(tmp_path):
    from seqprop.data import open_dataset
    from seqprop.errors import DataError

    path, _ = _matlab_file(tmp_path / "a.h5", [3.5, 6.5])
    with pytest.raises(DataError, match=r"sequence 0 has length 3\.5.*int64\(L\(:\)\)"):
        open_dataset(path)
    path, _ = _matlab_file(tmp_path / "b.h5", [4, 6], targets_dtype=np.float64)
    with pytest.raises(DataError, match=r"targets.*float64.*int16\(y\(:\)\)"):
        open_dataset(path)
    path, _ = _matlab_file(tmp_path / "c.h5", [4, 6], targets_shape=(2, 5))
    with pytest.raises(DataError, match="scalar size"):
        open_dataset(path)


# ------------------------------------------------------------------ 8. smaller ones
def test_duplicate_class_names_are_refused_by_the_reader(tmp_path):
    from seqprop.data import open_dataset
    from seqprop.errors import DataError

    path = toy_split(tmp_path / "d.h5")
    with h5py.File(path, "r+") as f:
        f.attrs["class_names"] = np.array(["a", "b", "a"], dtype=object)
    with pytest.raises(DataError, match="'a' is class 0 and class 2; class names must be distinct"):
        open_dataset(path)


def test_a_file_locked_by_a_writer_is_reported_as_locked(tmp_path):
    from seqprop.checkpoint import load_model
    from seqprop.data import open_dataset
    from seqprop.errors import CheckpointError, DataError

    if os.environ.get("HDF5_USE_FILE_LOCKING", "").upper() == "FALSE":
        pytest.skip("HDF5 file locking is switched off here")
    data = toy_split(tmp_path / "d.h5")
    model = toy_model(tmp_path / "m.h5")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, h5py\n"
            "files = [h5py.File(p, 'r+') for p in sys.argv[1:]]\n"
            "print('open', flush=True)\n"
            "time.sleep(60)\n",
            str(data),
            str(model),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(DataError, match="d.h5: locked by another program"):
            open_dataset(data)
        with pytest.raises(CheckpointError, match="m.h5: locked by another program"):
            load_model(model)
    finally:
        holder.kill()
        holder.wait()


def _hold_lock(directory: Path):
    """A process holding ``directory``'s run lock, as a training seqprop does."""
    code = (
        "import sys, time\n"
        "from seqprop.training.rundir import RunDirectory\n"
        "RunDirectory(sys.argv[1]).lock()\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(directory)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_lost_job_never_writes_error_txt_into_a_finished_or_busy_run(tmp_path):
    from seqprop.experiments.files import ERROR_NAME, RESULT_NAME
    from seqprop.experiments.runner import _lost

    finished = tmp_path / "out" / "done-point"
    finished.mkdir(parents=True)
    (finished / RESULT_NAME).write_text("{}\n")

    class Point:
        name = "done-point"

    _lost(Point(), tmp_path / "out", "KilledWorker: worker lost")
    assert not (finished / ERROR_NAME).exists()

    busy = tmp_path / "out" / "busy-point"
    busy.mkdir()
    Point.name = "busy-point"
    holder = _hold_lock(busy)
    try:
        _lost(Point(), tmp_path / "out", "KilledWorker: worker lost")
        assert not (busy / ERROR_NAME).exists()
    finally:
        holder.kill()
        holder.wait()
    _lost(Point(), tmp_path / "out", "KilledWorker: worker lost")  # really lost now
    assert "worker lost" in (busy / ERROR_NAME).read_text()


def test_run_point_on_a_run_another_worker_trains_leaves_its_directory_alone(tmp_path):
    from seqprop.experiments.files import ERROR_NAME
    from seqprop.experiments.point import record_failure

    run = tmp_path / "run"
    run.mkdir()
    holder = _hold_lock(run)
    try:
        assert record_failure(run, "RunDirectoryLocked: in use\n") is False
    finally:
        holder.kill()
        holder.wait()
    assert not (run / ERROR_NAME).exists()
    assert record_failure(run, "ValueError: bad\n") is True
    assert (run / ERROR_NAME).read_text() == "ValueError: bad\n"


def test_hand_edits_to_config_toml_are_refused_or_applied_on_resume(tmp_path):
    from seqprop.errors import ConfigError
    from seqprop.training import Trainer

    train = toy_split(tmp_path / "train.h5", n_seq=3, frames=20)
    cfg = {
        "model": {"kind": "lstm", "hidden_size": 3},
        "data": {"train": str(train)},
        "train": {"max_epochs": 1, "threads": 1, "progress": False, "learning_rate": 0.01},
    }
    run = tmp_path / "run"
    Trainer(cfg, run_dir=run).fit().close()
    original = (run / "config.toml").read_text()
    edited = original.replace("learning_rate = 0.01", "learning_rate = 0.5")
    assert edited != original
    (run / "config.toml").write_text(edited)
    with pytest.raises(ConfigError, match=r"edited since the last checkpoint: train.learning_rate"):
        Trainer.resume(run).fit()
    assert (run / "config.toml").read_text() == edited  # left as the user wrote it
    (run / "config.toml").write_text(original.replace("max_epochs = 1", "max_epochs = 2"))
    with Trainer.resume(run) as trainer:  # a resumable key: applied, as --set would
        trainer.fit()
        assert trainer.n_epochs_ == 2


def _toy_train_config(train, **model):
    return {
        "model": {"kind": "lstm", "hidden_size": 4, **model},
        "data": {"train": str(train)},
        "train": {"max_epochs": 2, "threads": 1, "progress": False},
    }


def test_a_learning_rate_of_1e6_is_flagged_as_divergence(tmp_path):
    from seqprop.training import Trainer, TrainingDiverged

    train = toy_split(tmp_path / "train.h5", n_seq=12, frames=40, n_in=3)
    cfg = _toy_train_config(train)
    cfg["train"]["learning_rate"] = 1e6
    with pytest.raises(TrainingDiverged, match=r"training diverged: (loss per unit grew|loss is)"):
        Trainer(cfg).fit()


@pytest.mark.parametrize("lr", [1e-5, 1e-3, 0.05])
def test_ordinary_learning_rates_never_trip_the_divergence_rule(tmp_path, lr):
    from seqprop.training import Trainer

    train = toy_split(tmp_path / "train.h5", n_seq=12, frames=40, n_in=3)
    cfg = _toy_train_config(train)
    cfg["train"].update(learning_rate=lr, max_epochs=3)
    with Trainer(cfg) as trainer:
        trainer.fit()
        assert trainer.n_epochs_ == 3


def test_divergence_watch_rule():
    from seqprop.training.checks import GROWTH, DivergenceWatch

    w = DivergenceWatch()
    w.begin_epoch(None)
    assert w.update(2.0) is None  # the first update sets the reference
    assert all(w.update(v) is None for v in (1.9, 50.0, 1.5, 1.0))  # an outlier is no divergence
    assert w.update(GROWTH * 2.0 * 20) is not None
    w.begin_epoch(0.5)  # the previous epoch's loss is the reference from now on
    assert w.update(0.4) is None
    assert "grew" in w.update(GROWTH * 0.5 * 11)
    assert w.update(float("nan")) == "loss is nan"


def test_settings_that_leave_nothing_to_learn_are_warned_about(tmp_path, caplog):
    from seqprop.training import Trainer

    train = toy_split(tmp_path / "train.h5", n_seq=3, frames=20)
    cfg = _toy_train_config(train, delay=25)
    cfg["train"]["max_epochs"] = 1
    with Trainer(cfg) as trainer:
        trainer.fit()
    assert "model.delay = 25 is not shorter than the longest training sequence (20" in caplog.text
    cfg = _toy_train_config(train, kind="mlp", window=5000)
    cfg["train"]["max_epochs"] = 1
    with Trainer(cfg) as trainer:
        trainer.fit()
    assert "model.window = 5000: the MLP sees 10001 frames" in caplog.text


# ------------------------------------------------------------------ 7. splits from one file
@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.h5"
    for seed, group in enumerate(("train", "dev", "eval/core")):
        toy_split(path, n_seq=4, frames=20, seed=seed, group=group)
    return path


def test_each_role_names_its_own_group(corpus, tmp_path):
    from seqprop.training import Trainer

    cfg = {
        "model": {"kind": "lstm", "hidden_size": 3},
        "data": {
            "train": f"{corpus}:train",
            "validation": f"{corpus}:dev",
            "test": f"{corpus}:eval/core",
        },
        "train": {"max_epochs": 1, "threads": 1, "progress": False},
    }
    with Trainer(cfg, run_dir=tmp_path / "run") as trainer:
        trainer.fit()
        assert trainer.train_data.group == "train"
        assert trainer.validation_data.group == "dev"
        assert trainer.test_result_ is not None


def test_the_training_split_as_validation_is_refused_unless_allowed(corpus):
    from seqprop.errors import DataError
    from seqprop.training import Trainer

    cfg = {
        "model": {"kind": "lstm", "hidden_size": 3},
        "data": {"train": str(corpus), "validation": str(corpus), "group": "train"},
        "train": {"max_epochs": 1, "threads": 1, "progress": False},
    }
    with pytest.raises(DataError, match="is the training split itself.*allow_same_split"):
        Trainer(cfg).fit()
    cfg["data"]["validation"] = f"{corpus}:train"
    with pytest.raises(DataError, match="is the training split itself"):
        Trainer(cfg).fit()
    cfg["data"]["allow_same_split"] = True
    with Trainer(cfg) as trainer:
        trainer.fit()
    cfg["data"].update(validation=f"{corpus}:dev", allow_same_split=False)
    with Trainer(cfg) as trainer:  # data.group for train, its own group for validation
        trainer.fit()
        assert trainer.validation_data.group == "dev"


def test_a_file_of_several_splits_without_a_group_says_how_to_name_one(corpus, capsys):
    from seqprop.cli import main
    from seqprop.errors import DataError
    from seqprop.training import Trainer

    cfg = {
        "model": {"kind": "lstm", "hidden_size": 3},
        "data": {"train": f"{corpus}:train", "validation": str(corpus)},
        "train": {"max_epochs": 1, "threads": 1, "progress": False},
    }
    with pytest.raises(DataError, match=r'name one as data.validation = ".*corpus.h5:GROUP"'):
        Trainer(cfg).fit()
    model = toy_model(corpus.parent / "m.h5")
    for args in (["inspect", str(corpus)], ["evaluate", str(model), str(corpus)]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "several splits (dev, eval/core, train); choose one with --group" in err, err
        assert main([*args, "--group", "eval/core"]) == 0
        capsys.readouterr()


# ------------------------------------------------------------------ 6. memory of in-memory data
def test_in_memory_data_is_not_copied_again_for_training(tmp_path):
    import tracemalloc

    from seqprop.data import PreparedSplit, Preprocessor, compute_normalisation, open_dataset

    path = toy_split(tmp_path / "big.h5", n_seq=40, frames=5000, n_in=26)  # 20.8 MB of inputs
    with open_dataset(path, in_memory=True) as ds:
        array_bytes = ds.n_frames * ds.input_size * 4
        tracemalloc.start()
        try:
            mean, std = compute_normalisation(ds)
            for dtype in (np.float32, np.float64):
                split = PreparedSplit(ds, Preprocessor(dtype, mean, std, 2), cache=True)
                x, y, lengths = split.batch([3, 7])
                assert x.dtype == dtype and x.shape == (5002, 2, 26)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        # bounded temporaries (a few MiB), not copies of the array (4x before)
        assert peak < 0.5 * array_bytes, (peak, array_bytes)
        # the values are those the cache used to hold
        expect = ((ds[7][0].astype(np.float64) - mean) / std).astype(np.float32)
        np.testing.assert_array_equal(split.sequence(7)[0][:5000].astype(np.float32), expect)


def test_data_larger_than_memory_suggests_streaming(tmp_path, monkeypatch):
    from seqprop.data import open_dataset, reader
    from seqprop.errors import DataError

    path = toy_split(tmp_path / "d.h5", n_seq=4, frames=1000)
    monkeypatch.setattr(reader, "available_memory", lambda: 10_000)
    with pytest.raises(DataError, match=r"more than the .* available; stream .*in_memory = false"):
        open_dataset(path, in_memory=True)
    with open_dataset(path, in_memory=False) as ds:  # streaming still works
        assert len(ds) == 4
