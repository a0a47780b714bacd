"""The sequence, logistic and squared_error heads end to end: data files, config, trainer,
checkpoints and resume, evaluate / predict, experiment grids, and bad input (issue 10)."""

from __future__ import annotations

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

from seqprop.config import ModelConfig, config_from_dict
from seqprop.data import PreparedSplit, Preprocessor, open_dataset, write_dataset
from seqprop.errors import ConfigError, DataError
from seqprop.heads import HEADS, TargetKind
from seqprop.training import Trainer

CLASSES = ["a", "b", "c"]


def _sequences(rng, n):
    xs, cls, vals, bins = [], [], [], []
    for _ in range(n):
        t = int(rng.integers(4, 10))
        c = int(rng.integers(0, 3))
        x = rng.normal(size=(t, 2))
        x[:, 0] += c - 1
        xs.append(x)
        cls.append(c)
        vals.append(np.stack([2 * x[:, 0] + 1, x[:, 1] - x[:, 0]], axis=1))
        bins.append((x > 0).astype(np.float64))
    return xs, cls, vals, bins


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """train/validation files of each target kind: (train, validation) paths per head."""
    d = tmp_path_factory.mktemp("heads")
    rng = np.random.default_rng(0)
    out = {}
    for split, n in (("train", 12), ("validation", 6)):
        xs, cls, vals, bins = _sequences(rng, n)
        frame_cls = [np.full(len(x), c) for x, c in zip(xs, cls, strict=True)]
        write_dataset(d / f"seq_{split}.h5", xs, seq_targets=cls, class_names=CLASSES)
        write_dataset(d / f"reg_{split}.h5", xs, vals, target_names=["u", "v"])
        write_dataset(d / f"bin_{split}.h5", xs, bins)
        write_dataset(d / f"frame_{split}.h5", xs, frame_cls, class_names=CLASSES)
    for head, stem in (
        ("sequence", "seq"),
        ("squared_error", "reg"),
        ("logistic", "bin"),
        ("softmax", "frame"),
    ):
        out[head] = (d / f"{stem}_train.h5", d / f"{stem}_validation.h5")
    return out


def _config(files, head, run_dir=None, **model):
    train, valid = files[head]
    cfg = {
        "model": {"kind": "blstm", "hidden_size": 3, "head": head, **model},
        "data": {"train": str(train), "validation": str(valid), "test": str(valid)},
        "train": {
            "learning_rate": 1e-2,
            "max_epochs": 3,
            "threads": 1,
            "progress": False,
            "checkpoint_every": 4,
        },
    }
    if run_dir is not None:
        cfg["run_dir"] = str(run_dir)
    return cfg


# ------------------------------------------------------------------ data files
def test_each_target_kind_round_trips_and_batches_in_its_heads_form(files):
    shapes = {}
    for head, (train, _) in files.items():
        kind = HEADS[head].target_kind
        for in_memory in (False, True):
            with open_dataset(train, in_memory=in_memory, target_kind=kind) as ds:
                assert ds.target_kind is kind
                pre = Preprocessor(np.float64)
                x, y, lengths = PreparedSplit(ds, pre, cache=in_memory).batch([0, 3, 5])
                shapes[head] = y.shape
                assert x.shape[:2] == (int(lengths.max()), 3)
                # the batch holds each sequence's targets as the reader gives them
                for b, i in enumerate([0, 3, 5]):
                    yi = ds[i][1]
                    if kind is TargetKind.SEQUENCE_CLASS:
                        assert y[b] == int(yi)
                    else:
                        np.testing.assert_array_equal(y[: lengths[b], b], yi)
    T = shapes["softmax"][0]
    assert shapes["softmax"] == (T, 3)
    assert shapes["sequence"] == (3,)
    assert shapes["logistic"] == shapes["squared_error"] == (T, 3, 2)
    with open_dataset(files["squared_error"][0]) as ds:  # detected from the file
        assert ds.target_kind is TargetKind.FRAME_VALUES
        assert ds.class_names == ["u", "v"]
    with open_dataset(files["logistic"][0]) as ds:
        assert ds.class_names == ["output0", "output1"]


def test_float_targets_delay_pads_with_nan_rows(files):
    with open_dataset(files["squared_error"][0]) as ds:
        x, y, lengths = PreparedSplit(ds, Preprocessor(np.float64, delay=2), True).batch([1])
        _, y0 = ds[1]
    assert y.shape == (len(y0) + 2, 1, 2)
    assert np.isnan(y[:2]).all()
    np.testing.assert_array_equal(y[2:, 0], y0)
    assert lengths[0] == len(y0) + 2


def test_a_framewise_file_given_to_a_sequence_head_names_the_missing_dataset(files, tmp_path):
    with pytest.raises(DataError, match=r"frame_train\.h5: dataset '/seq_targets' is missing"):
        open_dataset(files["softmax"][0], target_kind=TargetKind.SEQUENCE_CLASS)
    with pytest.raises(DataError, match=r"'/targets' must be float \(N_frames, K\)"):
        open_dataset(files["softmax"][0], target_kind=TargetKind.FRAME_VALUES)
    with pytest.raises(DataError, match=r"seq_train\.h5: dataset '/targets' is missing"):
        open_dataset(files["sequence"][0], target_kind=TargetKind.FRAME_VALUES)
    cfg = _config(files, "sequence")
    cfg["data"]["train"] = str(files["softmax"][0])
    with pytest.raises(DataError, match="seq_targets"):
        Trainer(cfg).fit()


def _copy_with(src, dst, **datasets):
    import shutil

    shutil.copyfile(src, dst)
    with h5py.File(dst, "r+") as f:
        for name, value in datasets.items():
            del f[name]
            f[name] = value
    return dst


def test_bad_target_values_name_file_dataset_and_sequence(files, tmp_path):
    train = files["squared_error"][0]
    with h5py.File(train) as f:
        y = f["targets"][()]
        lengths = f["seq_lengths"][()]
    partial = y.copy()
    partial[lengths[0] + 1, 1] = np.nan  # sequence 1, frame 1
    bad = _copy_with(train, tmp_path / "partial.h5", targets=partial)
    with pytest.raises(DataError, match=r"partial\.h5: dataset '/targets': sequence 1 .* frame 1"):
        open_dataset(bad)
    inf = y.copy()
    inf[2, 0] = np.inf
    with pytest.raises(DataError, match="sequence 0 .* output 0 is infinite"):
        open_dataset(_copy_with(train, tmp_path / "inf.h5", targets=inf))
    wrong = _copy_with(train, tmp_path / "rows.h5", targets=y[:-1])
    with pytest.raises(DataError, match=r"'/targets' must have \d+ rows"):
        open_dataset(wrong)

    seq = files["sequence"][0]
    with h5py.File(seq) as f:
        st = f["seq_targets"][()]
    out = st.copy()
    out[4] = 3
    with pytest.raises(DataError, match=r"'/seq_targets': sequence 4 .* target 3, outside"):
        open_dataset(_copy_with(seq, tmp_path / "range.h5", seq_targets=out))
    with pytest.raises(DataError, match=r"'/seq_targets' must have shape \(12,\)"):
        open_dataset(_copy_with(seq, tmp_path / "short.h5", seq_targets=st[:-1]))
    with pytest.raises(DataError, match=r"'/seq_targets' must be integer"):
        open_dataset(_copy_with(seq, tmp_path / "float.h5", seq_targets=st.astype(float)))


def test_write_dataset_refuses_bad_targets(tmp_path):
    x = [np.zeros((3, 2)), np.zeros((4, 2))]
    path = tmp_path / "w.h5"
    with pytest.raises(DataError, match="give targets .* or seq_targets"):
        write_dataset(path, x)
    with pytest.raises(DataError, match="seq_targets, sequence 1 .* target 5, outside"):
        write_dataset(path, x, seq_targets=[0, 5], class_names=CLASSES)
    with pytest.raises(DataError, match="seq_targets must be 2 integers"):
        write_dataset(path, x, seq_targets=[0], class_names=CLASSES)
    with pytest.raises(DataError, match="seq_targets .* need class_names"):
        write_dataset(path, x, seq_targets=[0, 1])
    y = [np.zeros((3, 2)), np.zeros((4, 2))]
    y[1][2, 0] = np.nan
    with pytest.raises(DataError, match="sequence 1 .* frame 2 output 0 is NaN"):
        write_dataset(path, x, y)
    with pytest.raises(DataError, match=r"float targets must have shape \(4, 2\)"):
        write_dataset(path, x, [np.zeros((3, 2)), np.zeros((4, 3))])
    with pytest.raises(DataError, match="1 target_names for 2 outputs"):
        write_dataset(path, x, [np.zeros((3, 2)), np.zeros((4, 2))], target_names=["u"])
    assert not path.exists()


# ------------------------------------------------------------------ config
def test_head_options_map_onto_make_network_and_the_wrong_ones_are_refused():
    cfg = config_from_dict({"data": {"train": "x"}, "model": {"head": "sequence"}})
    assert "pooling" not in cfg.model.network_options()  # the head's own default
    m = ModelConfig(head="sequence", pooling="mean")
    assert m.network_options()["pooling"] == "mean"
    for name in ModelConfig.HEAD_OPTIONS:  # every head option is some head's option
        assert any(name in h.option_names for h in HEADS.values())
    bad = [
        ({"head": "softmax", "pooling": "mean"}, "model.pooling applies to head 'sequence'"),
        ({"head": "sequence", "output_activation": "tanh"}, "output_activation applies"),
        ({"head": "sequence", "pooling": "max"}, "pooling must be one of"),
        ({"head": "logistic", "normalise_targets": True}, "normalise_targets applies"),
        ({"head": "sequence", "delay": 2}, "model.delay = 2: a target delay"),
        ({"head": "nope"}, "model.head must be one of"),
        ({"kind": "lstm", "num_layers": 0}, 'applies only to model.kind = "mlp"'),
    ]
    for model, message in bad:
        with pytest.raises(ConfigError, match=message):
            config_from_dict({"data": {"train": "x"}, "model": model})
    ok = config_from_dict({"data": {"train": "x"}, "model": {"kind": "mlp", "num_layers": 0}})
    assert ok.model.network_options()["num_layers"] == 0


# ------------------------------------------------------------------ training
@pytest.mark.parametrize(
    ("head", "model", "selection"),
    [
        ("sequence", {"pooling": "mean"}, "sequence_error"),
        ("sequence", {"kind": "lstm"}, "sequence_error"),
        ("logistic", {}, "f1_error"),
        ("squared_error", {"output_activation": "identity"}, "rmse"),
    ],
)
def test_every_head_trains_selects_on_its_metric_and_evaluates(files, head, model, selection):
    trainer = Trainer(_config(files, head, **model)).fit()
    rec = trainer.history[-1]
    assert trainer.selection_key == f"validation_{selection}"
    scores = [r[f"validation_{selection}"] for r in trainer.history]
    assert trainer.best_score_ == min(scores)
    # frames per second counts the frames read, not the units scored
    with open_dataset(files[head][0], target_kind=HEADS[head].target_kind) as ds:
        assert rec["frames_per_second"] == pytest.approx(ds.n_frames / rec["seconds"])
    d = trainer.test_result_.to_dict()
    assert d["n_sequences"] == 6
    if head == "sequence":
        assert 0 <= d["sequence_accuracy"] <= 1
        assert np.asarray(d["confusion"]).sum() == 6
        assert 1 - d["sequence_accuracy"] == pytest.approx(trainer.best_score_)
    elif head == "logistic":
        assert 1 - d["micro_f1"] == pytest.approx(trainer.best_score_)
    else:
        assert d["rmse"] == pytest.approx(trainer.best_score_)


def test_normalised_targets_are_stored_and_predictions_come_back_in_data_units(files, tmp_path):
    trainer = Trainer(_config(files, "squared_error", normalise_targets=True)).fit()
    spec = trainer.net.spec
    with open_dataset(files["squared_error"][0]) as ds:
        y = ds.read_targets().astype(np.float64)
    np.testing.assert_allclose(spec["target_mean"], y.mean(axis=0))
    np.testing.assert_allclose(spec["target_std"], y.std(axis=0))
    plain = Trainer(_config(files, "squared_error")).fit()
    assert "target_mean" not in plain.net.spec or plain.net.spec["target_mean"] is None
    # the RMSE of the normalised run is in the data's units too: both learn the same map
    assert trainer.test_result_.rmse < 3 * np.std(y)


class _Kill(Exception):
    pass


@pytest.mark.parametrize("head", ["sequence", "logistic", "squared_error"])
def test_resume_after_a_kill_is_bit_identical_for_every_head(files, tmp_path, head):
    from seqprop.training import Callback

    model = {"normalise_targets": True} if head == "squared_error" else {}
    ref = Trainer(_config(files, head, tmp_path / "ref", **model)).fit()

    class KillAt(Callback):
        n = 0

        def on_update(self, trainer):
            self.n += 1
            if self.n == 17:
                raise _Kill

    with pytest.raises(_Kill):
        Trainer(_config(files, head, tmp_path / "killed", **model), callbacks=[KillAt()]).fit()
    resumed = Trainer.resume(tmp_path / "killed").fit()
    np.testing.assert_array_equal(resumed.net.flat_parameters, ref.net.flat_parameters)

    def scores(history):  # the records without timing
        return [{k: v for k, v in r.items() if "second" not in k} for r in history]

    assert scores(resumed.history) == scores(ref.history)
    assert resumed.best_epoch_ == ref.best_epoch_


# ------------------------------------------------------------------ command line
def _cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "seqprop", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
    )


def test_cli_evaluate_and_predict_for_every_head(files, tmp_path):
    expected_text = {
        "sequence": "sequence accuracy:",
        "logistic": "micro F1:",
        "squared_error": "RMSE:",
    }
    for head, text in expected_text.items():
        run = tmp_path / head
        Trainer(_config(files, head, run)).fit()
        valid = files[head][1]
        r = _cli("evaluate", run, valid)
        assert r.returncode == 0, r.stderr
        assert text in r.stdout
        r = _cli("evaluate", run, valid, "--json")
        result = json.loads(r.stdout)
        out = tmp_path / f"{head}.h5"
        r = _cli("predict", run, valid, out)
        assert r.returncode == 0, r.stderr
        with h5py.File(out) as f, open_dataset(valid) as ds:
            assert f.attrs["head"] == head
            n = len(ds) if head == "sequence" else ds.n_frames
            name = "values" if head == "squared_error" else "posteriors"
            assert f[name].shape == (n, len(ds.class_names))
            np.testing.assert_array_equal(f["targets"][()], ds.read_targets())
            if head == "sequence":
                assert f["labels"].shape == (n,)
                np.testing.assert_array_equal(f["labels"][()], f["posteriors"][()].argmax(1))
                acc = np.mean(f["labels"][()] == f["targets"][()])
                assert acc == pytest.approx(result["sequence_accuracy"])
            elif head == "logistic":
                assert f["labels"].dtype == bool and f["labels"].shape == (n, 2)
                np.testing.assert_array_equal(f["labels"][()], f["posteriors"][()] > 0.5)
            else:
                assert "labels" not in f
                err = f["values"][()].astype(np.float64) - f["targets"][()]
                assert np.sqrt(np.mean(err**2)) == pytest.approx(result["rmse"], rel=1e-5)
        # a file of another kind of target: exit 2 naming the missing dataset
        other = files["softmax"][1]
        r = _cli("evaluate", run, other)
        assert r.returncode == 2
        missing = "seq_targets" if head == "sequence" else "targets"
        assert f"'/{missing}'" in r.stderr and "Traceback" not in r.stderr


def test_cli_train_refuses_an_option_of_another_head(files, tmp_path):
    cfg = tmp_path / "c.toml"
    train, valid = files["logistic"]
    cfg.write_text(f'[model]\nhead = "logistic"\npooling = "mean"\n[data]\ntrain = "{train}"\n')
    r = _cli("train", cfg, "--run-dir", tmp_path / "r")
    assert r.returncode == 2
    assert "model.pooling applies to head 'sequence'" in r.stderr


def test_a_grid_with_a_sequence_head_runs(files, tmp_path, monkeypatch):
    from seqprop.experiments import load_grid, run_grid

    monkeypatch.chdir(tmp_path)
    train, valid = files["sequence"]
    (tmp_path / "net.toml").write_text(
        '[model]\nkind = "lstm"\nhidden_size = 3\nhead = "sequence"\n'
        f'[data]\ntrain = "{train}"\nvalidation = "{valid}"\ntest = "{valid}"\n'
        "[train]\nlearning_rate = 1e-2\nmax_epochs = 2\nprogress = false\n"
    )
    (tmp_path / "grid.toml").write_text(
        'name = "seq"\nseeds = [0]\n[[experiment]]\nname = "pool"\nconfig = "net.toml"\n'
        'vary = { "model.pooling" = ["last", "mean"] }\n'
    )
    run = run_grid(load_grid(tmp_path / "grid.toml"), tmp_path / "out", serial=True)
    assert not run.failed, run.failed
    assert len(run.names("done")) == 2
    result = json.loads(next((tmp_path / "out").glob("pool-*/result.json")).read_text())
    assert 0 <= result["splits"]["test"]["sequence_accuracy"] <= 1
    assert result["curve"][0]["validation_sequence_error"] is not None


def test_logistic_targets_outside_0_1_are_refused_before_training(files, tmp_path):
    rng = np.random.default_rng(5)
    xs = [rng.normal(size=(4, 2)) for _ in range(3)]
    ys = [np.full((4, 2), 0.5) for _ in range(3)]
    ys[1][2, 1] = 2.0
    bad = write_dataset(tmp_path / "bad.h5", xs, ys)
    cfg = _config(files, "logistic", tmp_path / "run")
    cfg["data"] = {"train": str(bad)}
    with pytest.raises(
        DataError, match=r"bad\.h5: dataset 'targets', sequence 1 .* not in \[0, 1\]"
    ):
        Trainer(cfg).fit()
    assert not (tmp_path / "run" / "checkpoint.h5").exists()
