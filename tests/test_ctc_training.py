"""Label sequences in the data pipeline, CTC training and evaluation, training noise."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from seqprop import ctc
from seqprop.config import config_from_dict
from seqprop.data import PreparedSplit, Preprocessor, open_dataset, write_dataset
from seqprop.errors import ConfigError, DataError
from seqprop.evaluation import evaluate
from seqprop.heads import TargetKind
from seqprop.heads.ctc import LabelSequenceResult
from seqprop.training import Trainer
from seqprop.training.noise import TrainingNoise

from .test_training import CLASSES, KillAt, SimulatedKill, assert_same_run, toy_sequences


def label_sequences(ys):
    return [ctc.merge_framewise(y) for y in ys]


def make_labelled(directory, n_train=12, n_valid=5, with_labels=True):
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, n, seed in (("train", n_train, 0), ("validation", n_valid, 1), ("test", 4, 2)):
        xs, ys = toy_sequences(n, seed)
        paths[name] = write_dataset(
            directory / f"{name}.h5",
            xs,
            ys,
            class_names=CLASSES,
            tags=[f"{name}/{i}" for i in range(n)],
            labels=label_sequences(ys) if with_labels else None,
        )
    return paths


@pytest.fixture
def labelled(tmp_path):
    return make_labelled(tmp_path / "data")


def ctc_config(paths, **train):
    return {
        "model": {"kind": "blstm", "hidden_size": 3, "head": "ctc"},
        "data": {
            "train": str(paths["train"]),
            "validation": str(paths["validation"]),
            "test": str(paths["test"]),
        },
        "train": {
            "learning_rate": 0.01,
            "max_epochs": 3,
            "n_iter_no_change": 100,
            "threads": 1,
            "progress": False,
            "checkpoint_every": 4,
            **train,
        },
    }


# ---------------------------------------------------------------- data
def test_labels_round_trip_and_batches(labelled):
    xs, ys = toy_sequences(12, 0)
    want = label_sequences(ys)
    with open_dataset(labelled["train"]) as ds:
        for i in range(len(ds)):
            np.testing.assert_array_equal(ds.labels(i), want[i])
        pre = Preprocessor(np.float64)
        split = PreparedSplit(ds, pre, True, TargetKind.LABEL_SEQUENCE)
        x, y, lengths = split.batch([3, 0, 5])
        assert x.shape[1] == 3 and y.shape == (3, max(len(want[i]) for i in (3, 0, 5)))
        for b, i in enumerate((3, 0, 5)):
            np.testing.assert_array_equal(y[b, : len(want[i])], want[i])
            assert (y[b, len(want[i]) :] == -1).all()
        with pytest.raises(ValueError, match="delay"):
            PreparedSplit(ds, Preprocessor(np.float64, delay=2), True, TargetKind.LABEL_SEQUENCE)
    with h5py.File(labelled["train"]) as f:
        assert f["labels"].dtype == np.int16 and f["label_lengths"].dtype == np.int64


def test_missing_labels_name_the_file_and_dataset(tmp_path):
    paths = make_labelled(tmp_path / "plain", with_labels=False)
    with open_dataset(paths["train"]) as ds:
        assert ds.label_sequences is None
        with pytest.raises(DataError, match=r"train\.h5: dataset '/labels' is missing"):
            ds.labels(0)
    with pytest.raises(DataError, match="labels' is missing"):
        Trainer(ctc_config(paths), run_dir=tmp_path / "run").fit()


def _edit(path, fn):
    with h5py.File(path, "r+") as f:
        fn(f)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda f: f["labels"].__setitem__(1, 3),
            r"'/labels': sequence 0 \(tag 'train/0'\) label 1 is 3",
        ),
        (lambda f: f["labels"].__setitem__(0, -1), "label 0 is -1, outside"),
        (
            lambda f: f["label_lengths"].__setitem__(2, f["label_lengths"][2] + 1),
            r"sum\(label_lengths\)",
        ),
        (lambda f: f.__delitem__("label_lengths"), "'/label_lengths' is missing"),
        (lambda f: f["label_lengths"].__setitem__(0, -1), "has -1 labels"),
    ],
)
def test_bad_label_datasets_are_refused(labelled, change, message):
    _edit(labelled["train"], change)
    with pytest.raises(DataError, match=message):
        open_dataset(labelled["train"])


def test_infeasible_label_sequence_is_refused(tmp_path):
    x = [np.zeros((3, 2), np.float32)]
    y = [np.zeros(3, np.int32)]
    with pytest.raises(DataError, match="needing 4 frames"):
        write_dataset(tmp_path / "a.h5", x, y, class_names=CLASSES, labels=[np.array([0, 0, 1])])
    with pytest.raises(DataError, match="outside"):
        write_dataset(tmp_path / "a.h5", x, y, class_names=CLASSES, labels=[np.array([5])])
    with pytest.raises(DataError, match="1 sequences"):
        write_dataset(tmp_path / "a.h5", x, y, class_names=CLASSES, labels=[[0], [1]])


# ---------------------------------------------------------------- config
def test_config_allows_ctc_and_noise_but_no_delay():
    cfg = config_from_dict({"model": {"head": "ctc"}, "data": {"train": "t.h5"}})
    assert cfg.model.head == "ctc"
    with pytest.raises(ConfigError, match="model.delay"):
        config_from_dict({"model": {"head": "ctc", "delay": 2}, "data": {"train": "t.h5"}})
    with pytest.raises(ConfigError, match="train.input_noise"):
        config_from_dict({"data": {"train": "t.h5"}, "train": {"input_noise": -0.1}})
    with pytest.raises(ConfigError, match="model.head"):
        config_from_dict({"model": {"head": "bogus"}, "data": {"train": "t.h5"}})


# ---------------------------------------------------------------- training
def test_ctc_training_selects_on_label_error(labelled, tmp_path):
    t = Trainer(ctc_config(labelled), run_dir=tmp_path / "run").fit()
    h = t.history
    assert len(h) == 3
    assert all(0 <= r["validation_label_error"] for r in h)
    assert h[-1]["train_loss"] < h[0]["train_loss"]
    best = min(range(3), key=lambda e: h[e]["validation_label_error"])
    assert t.state.best_epoch == best + 1
    assert isinstance(t.test_result_, LabelSequenceResult)
    assert t.test_result_.scores["reference_labels"] > 0


def test_noise_resume_is_bit_identical(labelled, tmp_path):
    cfg = ctc_config(labelled, input_noise=0.6, weight_noise=0.05)
    ref = tmp_path / "ref"
    Trainer(cfg, run_dir=ref).fit()
    run = tmp_path / "killed"
    with pytest.raises(SimulatedKill):
        Trainer(cfg, run_dir=run, callbacks=[KillAt(18)]).fit()
    Trainer.resume(run).fit()
    assert_same_run(ref, run)
    # the noise changes the run
    quiet = Trainer(ctc_config(labelled), run_dir=tmp_path / "quiet").fit()
    assert not np.array_equal(quiet.state.parameters, Trainer.resume(run).fit().state.parameters)


@pytest.mark.parametrize("head", ["softmax", "ctc"])
def test_noise_applies_to_every_head(labelled, tmp_path, head):
    base = ctc_config(labelled)
    base["model"]["head"] = head
    runs = {}
    for name, train in (
        ("none", {}),
        ("input", {"input_noise": 0.5}),
        ("weight", {"weight_noise": 0.1}),
    ):
        cfg = {**base, "train": {**base["train"], **train, "max_epochs": 1}}
        runs[name] = Trainer(cfg).fit().state.parameters.copy()
    assert not np.array_equal(runs["none"], runs["input"])
    assert not np.array_equal(runs["none"], runs["weight"])


def test_weight_noise_restores_the_clean_weights_exactly():
    noise = TrainingNoise(0.0, 0.3, seed=5)
    noise.start_update(0, 0)
    w = np.random.default_rng(0).normal(size=50)
    clean = w.copy()
    with noise.weights(w):
        assert not np.array_equal(w, clean)
        noisy = w.copy()
    assert np.array_equal(w, clean)
    noise.start_update(0, 0)
    with noise.weights(w):
        assert np.array_equal(w, noisy)  # the same update draws the same noise
    x = np.ones((4, 2, 3), np.float32)
    assert TrainingNoise(0, 0, 0).inputs(x, np.array([4, 2])) is x
    n = TrainingNoise(1.0, 0, 0)
    n.start_update(1, 2)
    xn = n.inputs(x, np.array([4, 2]))
    assert xn.dtype == np.float32 and (xn[2:, 1] == 1).all() and (xn[:, 0] != 1).all()
    assert (x == 1).all()  # the batch itself is not modified


# ---------------------------------------------------------------- evaluation
def test_evaluate_ctc_decoders_and_framewise_decoding(labelled, tmp_path):
    t = Trainer(ctc_config(labelled, max_epochs=1)).fit()
    pre = t.preprocessor
    with open_dataset(labelled["validation"]) as ds:
        best = evaluate(t.net, ds, pre, class_names=CLASSES)
        beam = evaluate(t.net, ds, pre, class_names=CLASSES, decoder="beam", beam_width=4)
        assert best.decoder == "best_path" and beam.decoder == "beam"
        assert best.n_sequences == 5 and best.loss > 0
        with pytest.raises(ConfigError, match="framewise"):
            evaluate(t.net, ds, pre, class_names=CLASSES, decoder="framewise")
    cfg = ctc_config(labelled, max_epochs=1)
    cfg["model"]["head"] = "softmax"
    fw = Trainer(cfg).fit()
    with open_dataset(labelled["validation"]) as ds:
        r = evaluate(fw.net, ds, fw.preprocessor, class_names=CLASSES, decoder="framewise")
        assert r.decoder == "framewise"
        want = label_sequences(toy_sequences(5, 1)[1])
        assert r.scores["reference_labels"] == sum(len(s) for s in want)
        with pytest.raises(ConfigError, match="ctc"):
            evaluate(fw.net, ds, fw.preprocessor, class_names=CLASSES, decoder="beam")


# ---------------------------------------------------------------- command line
def test_cli_trains_evaluates_and_predicts_ctc(labelled, tmp_path, capsys):
    import json

    from seqprop.cli import main
    from seqprop.config import dumps_toml

    from .test_cli_train import assert_one_line_error, run_cli

    config = tmp_path / "ctc.toml"
    config.write_text(dumps_toml(config_from_dict(ctc_config(labelled, max_epochs=2))))
    run = tmp_path / "run"
    rc, out, _ = run_cli(capsys, "train", str(config), "--run-dir", str(run), "--no-progress")
    assert rc == 0 and "validation label error" in out and "test label error rate" in out
    val = str(labelled["validation"])
    rc, out, _ = run_cli(capsys, "evaluate", str(run), val)
    assert rc == 0 and "decoder:          best path" in out and "label error rate:" in out
    rc, out, _ = run_cli(capsys, "evaluate", str(run), val, "--decoder", "beam", "--json")
    d = json.loads(out)
    assert rc == 0 and d["decoder"] == "beam" and d["beam_width"] == 16
    assert d["edits"] == d["substitutions"] + d["deletions"] + d["insertions"]
    rc, _, err = run_cli(capsys, "evaluate", str(run), val, "--decoder", "framewise")
    assert_one_line_error(rc, err, "decoder 'framewise'")
    rc, _, err = run_cli(
        capsys, "evaluate", str(run), val, "--decoder", "beam", "--beam-width", "0"
    )
    assert_one_line_error(rc, err, "beam width")
    plain = make_labelled(tmp_path / "plain", with_labels=False)
    rc, _, err = run_cli(capsys, "evaluate", str(run), str(plain["validation"]))
    assert_one_line_error(rc, err, "validation.h5", "'/labels' is missing")
    out_file = tmp_path / "pred.h5"
    assert main(["predict", str(run), val, str(out_file)]) == 0
    with h5py.File(out_file) as f:
        assert f["posteriors"].shape[1] == len(CLASSES) + 1
        n = f["decoded_lengths"][()]
        assert n.size == 5 and f["decoded"].shape == (n.sum(),)
        text = [t.decode() for t in f["decoded_text"][()]]
        flat = f["decoded"][()]
        first = " ".join(CLASSES[c] for c in flat[: n[0]])
        assert text[0] == first


def test_cli_decodes_a_framewise_model(labelled, tmp_path, capsys):
    from seqprop.config import dumps_toml

    from .test_cli_train import run_cli

    cfg = ctc_config(labelled, max_epochs=1)
    cfg["model"]["head"] = "softmax"
    config = tmp_path / "fw.toml"
    config.write_text(dumps_toml(config_from_dict(cfg)))
    run = tmp_path / "run"
    assert run_cli(capsys, "train", str(config), "--run-dir", str(run), "--no-progress")[0] == 0
    rc, out, _ = run_cli(
        capsys, "evaluate", str(run), str(labelled["validation"]), "--decoder", "framewise"
    )
    assert rc == 0 and "decoder:          framewise" in out and "CTC loss" not in out


# ---------------------------------------------------------------- the 2006 experiment
def test_grid_with_a_ctc_net_reports_decoded_phone_error_rates(labelled, tmp_path, monkeypatch):
    from seqprop.cli import main
    from seqprop.experiments import load_grid, run_grid

    monkeypatch.chdir(labelled["train"].parent)
    net = ctc_config(labelled, max_epochs=2, checkpoint_every=0)
    net["data"] = {k: v.split("/")[-1] for k, v in net["data"].items()}
    from seqprop.config import dumps_toml

    (labelled["train"].parent / "ctc.toml").write_text(dumps_toml(config_from_dict(net)))
    net["model"]["head"] = "softmax"
    (labelled["train"].parent / "fw.toml").write_text(dumps_toml(config_from_dict(net)))
    grid = labelled["train"].parent / "grid.toml"
    grid.write_text(
        'name = "g"\nseeds = [0, 1]\n'
        '[[experiment]]\nname = "ctc"\nlabel = "CTC"\nconfig = "ctc.toml"\n'
        '[[experiment]]\nname = "fw"\nlabel = "FW"\nconfig = "fw.toml"\n'
    )
    out = tmp_path / "out"
    run = run_grid(load_grid(grid), out, serial=True)
    assert not run.failed
    import json

    r = json.loads((out / "ctc-s0" / "result.json").read_text())
    labels = r["splits"]["test"]["labels"]
    assert set(labels) == {"best_path", "beam"}
    assert labels["best_path"]["per39"] is None  # not TIMIT's classes
    fw = json.loads((out / "fw-s1" / "result.json").read_text())
    assert set(fw["splits"]["validation"]["labels"]) == {"framewise"}
    md = tmp_path / "R.md"
    assert (
        main(["experiments", "report", str(out), "--paper", "graves2006", "--markdown", str(md)])
        == 0
    )
    text = md.read_text()
    assert "| CTC | best path | 2 |" in text and "CTC, prefix search: 30.5" in text
    assert "| FW | most probable phone per frame, repeats merged | 2 |" in text
    assert "--paper graves2006" in text
