"""``seqprop train / evaluate / predict / gradcheck / demo`` from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import seqprop
from seqprop.checkpoint import load_model, save_model
from seqprop.cli import main
from seqprop.config import config_from_dict, dumps_toml
from seqprop.data import open_dataset, write_dataset
from seqprop.network import make_network
from tests.test_training import make_toy, toy_config

REPO = Path(__file__).resolve().parents[1]


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(dumps_toml(config_from_dict(cfg)))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished run of a delayed LSTM (the delay exercises the output alignment)."""
    root = tmp_path_factory.mktemp("cli")
    paths = make_toy(root / "data")
    cfg = toy_config(paths, model={"delay": 1}, train={"max_epochs": 3})
    cfg["data"]["test"] = str(paths["test"])
    config = write_config(root / "run.toml", cfg)
    run = root / "run"
    rc = main(["train", str(config), "--run-dir", str(run), "--no-progress"])
    assert rc == 0
    return {"root": root, "run": run, "config": config, **paths}


def run_cli(capsys, *args):
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(rc, err, *fragments):
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for f in fragments:
        assert f in lines[0], lines[0]


def test_train_writes_run_directory(trained):
    run = trained["run"]
    names = {p.name for p in run.iterdir()}
    assert {"config.toml", "metrics.jsonl", "checkpoint.h5", "best.h5", "test.json"} <= names
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3]
    test = json.loads((run / "test.json").read_text())
    assert 0 <= test["frame_accuracy"] <= 1


def test_train_prints_epochs_and_summary(trained, capsys, tmp_path):
    rc, out, err = run_cli(
        capsys,
        "train",
        str(trained["config"]),
        "--run-dir",
        str(tmp_path / "r"),
        "--no-progress",
        "--set",
        "train.max_epochs=2",
    )
    assert rc == 0, err
    assert "epoch   1" in out and "epoch   2" in out and "epoch   3" not in out
    assert "stopped: max_epochs (2) reached" in out
    assert "test frame accuracy" in out


def test_evaluate_text_and_json(trained, capsys):
    rc, out, err = run_cli(capsys, "evaluate", str(trained["run"]), str(trained["test"]))
    assert rc == 0, err
    assert "frame accuracy:" in out and "per-class accuracy" in out
    assert "class-averaged:" in out
    rc, out, _ = run_cli(capsys, "evaluate", str(trained["run"]), str(trained["test"]), "--json")
    assert rc == 0
    result = json.loads(out)
    confusion = np.array(result["confusion"])
    assert confusion.shape == (3, 3)
    assert confusion.sum() == result["n_frames"]
    # class-averaged accuracy: the mean over classes with frames of the per-class accuracy
    frames, acc = np.array(result["class_frames"]), result["class_accuracy"]
    per_class = [a for a, n in zip(acc, frames, strict=True) if n > 0]
    assert result["class_averaged_accuracy"] == pytest.approx(np.mean(per_class), rel=1e-12)
    diag = np.diag(confusion) / np.maximum(confusion.sum(axis=1), 1)
    assert result["class_averaged_accuracy"] == pytest.approx(diag[frames > 0].mean())
    assert result["frame_accuracy"] == pytest.approx(np.trace(confusion) / confusion.sum())
    assert result["folded"] is None  # not TIMIT
    # the same numbers the trainer stored for the test split
    test = json.loads((trained["run"] / "test.json").read_text())
    assert result["frame_accuracy"] == test["frame_accuracy"]
    assert result["confusion"] == test["confusion"]
    ds = open_dataset(trained["test"])
    assert result["n_frames"] == int((ds.read_targets() >= 0).sum())
    assert result["class_frames"] == np.bincount(ds.read_targets()[ds.read_targets() >= 0]).tolist()


def test_evaluate_checkpoint_last_weights(trained, capsys):
    ckpt = trained["run"] / "checkpoint.h5"
    rc, out, _ = run_cli(
        capsys, "evaluate", str(ckpt), str(trained["test"]), "--json", "--weights", "last"
    )
    assert rc == 0
    assert json.loads(out)["epoch"] == 3


def test_predict_writes_aligned_posteriors(trained, capsys, tmp_path):
    out_file = tmp_path / "pred.h5"
    rc, out, err = run_cli(
        capsys, "predict", str(trained["run"]), str(trained["test"]), str(out_file)
    )
    assert rc == 0, err
    net, meta = load_model(trained["run"])
    ds = open_dataset(trained["test"])
    with h5py.File(out_file, "r") as f:
        assert f.attrs["format"] == "seqprop.predictions"
        post = f["posteriors"][()]
        labels = f["labels"][()]
        assert post.dtype == np.float32 and post.shape == (ds.n_frames, 3)
        np.testing.assert_array_equal(f["seq_lengths"][()], ds.lengths)
        assert [t.decode() for t in f["seq_tags"][()]] == ds.tags
        np.testing.assert_array_equal(f["targets"][()], ds.read_targets())
        assert list(f.attrs["class_names"]) == meta.class_names
    np.testing.assert_allclose(post.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(labels, post.argmax(axis=1))
    # row t of sequence i is the output for frame t, delay undone
    x, _ = ds[2]
    xn = (x - meta.mean) / meta.std
    xd = np.concatenate([xn, np.zeros((meta.delay, x.shape[1]))])
    direct = net.predict_proba(xd[:, None, :], np.array([len(xd)]))[meta.delay :, 0]
    a = int(ds.offsets[2])
    np.testing.assert_allclose(post[a : a + len(x)], direct, rtol=1e-5, atol=1e-7)
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_bad_input_gives_one_line_and_exit_2(trained, capsys, tmp_path):
    run, test = str(trained["run"]), str(trained["test"])
    text = tmp_path / "notes.txt"
    text.write_text("not a model")
    wide = make_toy(tmp_path / "wide", input_size=6)["test"]
    other = make_toy(tmp_path / "other", classes=4)["test"]
    bad_cfg = tmp_path / "bad.toml"
    bad_cfg.write_text('[model]\nkind = "gru"\n[data]\ntrain = "x.h5"\n')
    cases = [
        (["evaluate", str(text), test], ["not a seqprop checkpoint"]),
        (["evaluate", test, test], ["not a seqprop checkpoint"]),
        (["evaluate", str(tmp_path / "none.h5"), test], ["no such file"]),
        (["evaluate", run, str(tmp_path / "none.h5")], ["no such file"]),
        (["evaluate", run, str(text)], ["notes.txt"]),
        (["evaluate", run, str(wide)], ["6 features per frame", "expects 4"]),
        (["evaluate", run, str(other)], ["4 classes"]),
        (["predict", run, str(wide), str(tmp_path / "p.h5")], ["6 features per frame"]),
        (["predict", run, test, test], ["also an input"]),
        (["train", str(tmp_path / "none.toml")], ["not found"]),
        (["train", str(bad_cfg), "--run-dir", str(tmp_path / "r1")], ["model.kind"]),
        (["train", str(trained["config"]), "--set", "train.nope=1"], ["train.nope"]),
        (
            ["train", str(trained["config"]), "--set", "train.momentum=2", "--run-dir", run],
            ["train.momentum"],
        ),
        (["train", str(trained["config"]), "--run-dir", run], ["not empty", "--resume"]),
        (["train", str(trained["config"]), "--resume", run], ["not both"]),
        (["train", "--resume", str(tmp_path)], ["not a seqprop run directory"]),
        (["train"], ["CONFIG"]),
    ]
    before = {p.name: p.read_bytes() for p in trained["run"].iterdir()}
    for args, fragments in cases:
        rc, _, err = run_cli(capsys, *args)
        assert_one_line_error(rc, err, *fragments)
    after = {p.name: p.read_bytes() for p in trained["run"].iterdir()}
    assert after == before  # the existing run directory is untouched
    assert not (tmp_path / "r1").exists()
    assert not (tmp_path / "p.h5").exists()


def test_resume_of_finished_run_via_cli(trained, capsys, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(trained["run"], run)
    rc, out, _ = run_cli(capsys, "train", "--resume", str(run), "--no-progress")
    assert rc == 0 and "already finished" in out
    rc, out, _ = run_cli(
        capsys, "train", "--resume", str(run), "--no-progress", "--set", "train.max_epochs=4"
    )
    assert rc == 0 and "epoch   4" in out
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 4


def test_evaluate_timit_reports_39_folded_classes(tmp_path, capsys):
    from seqprop.corpora.timit import phones as timit

    phones = list(timit.phones61())
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(30, 5)).astype(np.float32) for _ in range(4)]
    ys = [rng.integers(-1, 61, 30).astype(np.int32) for _ in range(4)]
    data = write_dataset(tmp_path / "t.h5", xs, ys, class_names=phones, source="timit")
    net = make_network("blstm", 5, 3, 61, random_state=0)
    net.flat_parameters[...] = rng.uniform(-2, 2, net.num_parameters)
    model = save_model(tmp_path / "m.h5", net.flat_parameters, spec=net.spec, class_names=phones)
    rc, out, _ = run_cli(capsys, "evaluate", str(model), str(data), "--json")
    assert rc == 0
    result = json.loads(out)
    # reference: fold targets and predictions frame by frame
    y = np.concatenate(ys)
    pred = np.concatenate(
        [net.predict_proba(x[:, None, :], np.array([30]))[:, 0].argmax(axis=1) for x in xs]
    )
    keep = y >= 0
    ft, fp = timit.fold_labels(y[keep]), timit.fold_labels(pred[keep])
    scored = ft >= 0
    assert result["folded"]["classes"] == 39
    assert result["folded"]["n_frames"] == int(scored.sum())
    assert result["folded"]["frame_accuracy"] == pytest.approx(
        float(np.mean(ft[scored] == fp[scored]))
    )
    assert result["frame_accuracy"] == pytest.approx(float(np.mean(y[keep] == pred[keep])))
    rc, out, _ = run_cli(capsys, "evaluate", str(model), str(data))
    assert "39-class folded" in out


def test_gradcheck_command(capsys, monkeypatch):
    rc, out, _ = run_cli(capsys, "gradcheck", "--kind", "lstm", "--gradient", "both")
    assert rc == 0
    assert "hidden.0.W_hh" in out and "gradient check passed" in out
    assert "one-frame sequences" in out
    # each kind takes the option that applies to it: squash for LSTMs, activation otherwise
    argv = ["gradcheck", "--kind", "all", "--squash", "logistic2", "--activation", "logistic"]
    rc, out, _ = run_cli(capsys, *argv)
    assert rc == 0 and "mlp:" in out and "gradient check passed" in out

    import seqprop.gradient_check as gc
    from seqprop.errors import GradientCheckError

    def failing(net, *a, raise_on_failure=True, **k):
        if raise_on_failure:
            raise GradientCheckError("disagree")
        return {"output.W": 0.5}

    monkeypatch.setattr(gc, "gradcheck", failing)
    rc, out, _ = run_cli(capsys, "gradcheck", "--kind", "rnn")
    assert rc == 1 and "FAIL" in out
    rc, _, err = run_cli(capsys, "gradcheck", "--hidden-size", "0")
    assert_one_line_error(rc, err, "--hidden-size")


def test_demo_quick(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "seqprop", "demo", "--quick", "--no-progress", "--out", str(out)],
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "BLSTM" in proc.stdout and "LSTM" in proc.stdout and "test acc" in proc.stdout
    results = json.loads((out / "results.json").read_text())
    assert [n["net"] for n in results["nets"]] == ["BLSTM", "LSTM"]
    for n in results["nets"]:
        assert 0 <= n["test_accuracy"] <= 1 and n["epochs"] >= 1
        assert (Path(n["run_dir"]) / "best.h5").exists()
    try:
        import matplotlib  # noqa: F401

        assert (out / "learning_curves.png").stat().st_size > 1000
    except ImportError:
        assert "skipped" in proc.stdout
    # running it again replaces the previous demo; a foreign directory is refused
    again = subprocess.run(
        [sys.executable, "-m", "seqprop", "demo", "--quick", "--no-progress", "--out", str(out)],
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0, again.stderr
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    refused = subprocess.run(
        [sys.executable, "-m", "seqprop", "demo", "--quick", "--out", str(foreign)],
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert refused.returncode == 2 and "not a previous demo" in refused.stderr
    assert (foreign / "thesis.tex").read_text() == "precious"


def test_predict_never_overwrites_the_models_run(trained, capsys, tmp_path):
    import shutil

    run = tmp_path / "r1"
    shutil.copytree(trained["run"], run)
    test = str(trained["test"])
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert {"best.h5", "checkpoint.h5", "metrics.jsonl", "config.toml", "test.json"} <= set(before)
    for model in (run, run / "checkpoint.h5", run / "best.h5"):
        for name in before:
            rc, _, err = run_cli(capsys, "predict", str(model), test, str(run / name))
            assert_one_line_error(rc, err, "OUT", name, "choose another output file")
    rc, _, err = run_cli(capsys, "predict", str(run), test, str(run / "best.h5"), "--overwrite")
    assert_one_line_error(rc, err, "best.h5")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_predict_replaces_only_predictions_unless_overwrite(trained, capsys, tmp_path):
    run, test = str(trained["run"]), str(trained["test"])
    notes = tmp_path / "notes.h5"
    notes.write_text("someone's notes")
    rc, _, err = run_cli(capsys, "predict", run, test, str(notes))
    assert_one_line_error(rc, err, "notes.h5", "not a seqprop predictions file", "--overwrite")
    assert notes.read_text() == "someone's notes"
    other = tmp_path / "other.h5"
    write_dataset(other, [np.zeros((3, 4), np.float32)], [np.zeros(3, np.int32)], class_names=["a"])
    rc, _, err = run_cli(capsys, "predict", run, test, str(other))
    assert_one_line_error(rc, err, "other.h5", "--overwrite")
    # a predictions file is replaced; --overwrite replaces anything else
    pred = tmp_path / "p.h5"
    assert run_cli(capsys, "predict", run, test, str(pred))[0] == 0
    assert run_cli(capsys, "predict", run, test, str(pred))[0] == 0
    assert run_cli(capsys, "predict", run, test, str(notes), "--overwrite")[0] == 0
    with h5py.File(notes, "r") as f:
        assert f.attrs["format"] == "seqprop.predictions"


def test_evaluate_and_predict_check_the_dataset_once(trained, capsys, tmp_path, monkeypatch):
    import seqprop.evaluation as evaluation

    calls = []
    real = evaluation.check_dataset_matches

    def counting(*args, **kwargs):
        calls.append(args[0].path)
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluation, "check_dataset_matches", counting)
    run, test = str(trained["run"]), str(trained["test"])
    assert run_cli(capsys, "evaluate", run, test)[0] == 0
    assert len(calls) == 1
    assert run_cli(capsys, "predict", run, test, str(tmp_path / "p.h5"))[0] == 0
    assert len(calls) == 2


def test_evaluate_closes_a_mismatched_dataset(trained, capsys, tmp_path, monkeypatch):
    import seqprop.data as data

    opened = []
    real = data.open_dataset

    def recording(*args, **kwargs):
        ds = real(*args, **kwargs)
        opened.append(ds)
        return ds

    monkeypatch.setattr(data, "open_dataset", recording)
    wide = make_toy(tmp_path / "wide", input_size=6)["test"]
    for args in (("evaluate",), ("predict",)):
        extra = [str(tmp_path / "p.h5")] if args[0] == "predict" else []
        rc, _, err = run_cli(capsys, *args, str(trained["run"]), str(wide), *extra)
        assert_one_line_error(rc, err, "6 features per frame")
    assert len(opened) == 2 and all(ds.closed for ds in opened)


def test_evaluate_json_is_strict_json(trained, capsys, tmp_path):
    # a test set with a class that never occurs: its accuracy is NaN -> null
    xs = [np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)]
    data = write_dataset(
        tmp_path / "one.h5", xs, [np.zeros(6, np.int32)], class_names=["a", "b", "c"]
    )
    rc, out, _ = run_cli(capsys, "evaluate", str(trained["run"]), str(data), "--json")
    assert rc == 0
    result = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert result["class_accuracy"][1] is None


# ---------------------------------------------------------------- first contact
def test_version_flag(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"seqprop {seqprop.__version__}"


def test_closed_pipe_ends_quietly(trained):
    """``seqprop evaluate ... | head``: no "Broken pipe" error, SIGPIPE-like status."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "seqprop", "evaluate", str(trained["run"]), str(trained["test"])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader goes away before the command writes
    err = proc.stderr.read().decode()
    rc = proc.wait(timeout=120)
    assert "Broken pipe" not in err and "Traceback" not in err, err
    assert rc == 141


def test_predict_creates_the_output_folder(trained, capsys, tmp_path):
    out = tmp_path / "new" / "deeper" / "pred.h5"
    rc, _, err = run_cli(capsys, "predict", str(trained["run"]), str(trained["test"]), str(out))
    assert rc == 0, err
    assert out.exists()


def test_cold_kernel_cache_is_announced(trained, capsys, tmp_path, monkeypatch):
    import seqprop.kernels.cache as cache

    cfg = write_config(
        tmp_path / "c.toml",
        {
            "data": {"train": str(trained["train"])},
            "model": {"kind": "lstm", "hidden_size": 3},
            "train": {"max_epochs": 1},
        },
    )
    monkeypatch.setattr(cache, "cache_is_cold", lambda: True)
    rc, out, _ = run_cli(
        capsys, "train", str(cfg), "--run-dir", str(tmp_path / "r"), "--no-progress"
    )
    assert rc == 0 and "compiling kernels (first run only)" in out
    monkeypatch.setattr(cache, "cache_is_cold", lambda: False)
    rc, out, _ = run_cli(
        capsys, "train", str(cfg), "--run-dir", str(tmp_path / "r2"), "--no-progress"
    )
    assert rc == 0 and "compiling" not in out


def test_cache_is_cold_reads_the_numba_index(tmp_path, monkeypatch):
    """Cold while some kernel has no index file in numba's cache, warm once all have one
    (each kernel's index pointed at a file of this test's own, so that the answer does
    not depend on which kernels the tests before this one happened to compile)."""
    import importlib

    from numba.core.registry import CPUDispatcher

    from seqprop.kernels.cache import KERNEL_MODULES, cache_is_cold
    from seqprop.kernels.lstm import lstm_forward

    kernels = [
        obj
        for name in KERNEL_MODULES
        for obj in vars(importlib.import_module(name)).values()
        if isinstance(obj, CPUDispatcher) and obj.__module__ == name
    ]
    assert lstm_forward in kernels
    for i, kernel in enumerate(kernels):
        index = tmp_path / f"{i}.nbi"
        index.write_bytes(b"")
        monkeypatch.setattr(kernel._cache._cache_file, "_index_path", str(index))
    assert cache_is_cold() is False
    monkeypatch.setattr(lstm_forward._cache._cache_file, "_index_path", str(tmp_path / "x.nbi"))
    assert cache_is_cold() is True
