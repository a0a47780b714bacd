"""Run configuration: defaults, TOML round trip, --set overrides, errors naming the key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from seqprop.config import (
    RunConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    dumps_toml,
    load_config,
    loads_toml,
    parse_override,
    resolve_paths,
    save_config,
)
from seqprop.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "run.toml"
    p.write_text(text)
    return p


MINIMAL = '[data]\ntrain = "train.h5"\n'


def test_defaults_are_the_papers():
    cfg = config_from_dict({"data": {"train": "t.h5"}})
    assert cfg.model.kind == "blstm" and cfg.model.hidden_size == 93
    assert cfg.model.delay == 0 and cfg.model.gradient == "full"
    assert cfg.train.learning_rate == 1e-5 and cfg.train.momentum == 0.9
    assert cfg.train.batch_size == 1 and cfg.train.reduction == "sum"
    assert cfg.train.shuffle is True
    assert cfg.data.normalise is True
    assert cfg.run_dir is None


def test_load_and_override(tmp_path):
    p = write(
        tmp_path,
        MINIMAL + '[model]\nkind = "lstm"\nhidden_size = 140\ndelay = 5\n[train]\nmax_epochs = 3\n',
    )
    cfg = load_config(
        p,
        [
            "train.learning_rate=1e-4",
            "train.progress=false",
            "model.kind=rnn",  # bare word: a string
            'data.validation="my valid.h5"',
            "train.momentum=0",  # an int where a float is expected
            "run_dir=runs/x",
        ],
    )
    assert cfg.model.kind == "rnn" and cfg.model.hidden_size == 140 and cfg.model.delay == 5
    assert cfg.train.learning_rate == 1e-4 and cfg.train.max_epochs == 3
    assert cfg.train.progress is False
    assert cfg.train.momentum == 0.0 and isinstance(cfg.train.momentum, float)
    assert cfg.data.validation == "my valid.h5"
    assert cfg.run_dir == "runs/x"


def test_parse_override_values():
    assert parse_override("a.b=1e-4") == ("a.b", 1e-4)
    assert parse_override("a.b = 3") == ("a.b", 3)
    assert parse_override("a.b=true") == ("a.b", True)
    assert parse_override("a.b=hello world") == ("a.b", "hello world")
    assert parse_override('a.b="x=y"') == ("a.b", "x=y")
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("train.learning_rate")


def test_toml_round_trip_with_awkward_strings(tmp_path):
    cfg = config_from_dict(
        {
            "data": {"train": 'dir "quoted"\\x\u00e9\x7f\t.h5', "validation": "v.h5"},
            "model": {"kind": "mlp", "window": 4, "hidden_size": 250},
            "train": {"learning_rate": 3.3e-7, "checkpoint_seconds": 0},
            "run_dir": "r",
        }
    )
    text = dumps_toml(cfg)
    tomllib.loads(text)  # valid TOML
    assert loads_toml(text) == cfg
    path = save_config(cfg, tmp_path / "config.toml")
    assert load_config(path) == cfg
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert config_to_dict(cfg)["data"]["test"] is None


def test_resolve_paths_makes_absolute(tmp_path):
    cfg = config_from_dict({"data": {"train": "a/t.h5", "test": "/abs/x.h5"}, "run_dir": "r"})
    out = resolve_paths(cfg, tmp_path)
    assert out.data.train == str(tmp_path / "a" / "t.h5")
    assert out.data.test == "/abs/x.h5"
    assert out.data.validation is None
    assert out.run_dir == str(tmp_path / "r")
    assert cfg.data.train == "a/t.h5"  # the original is unchanged


@pytest.mark.parametrize(
    ("text", "overrides", "match"),
    [
        (MINIMAL + "[modle]\nkind = 'x'\n", [], "unknown key 'modle'"),
        (MINIMAL + "[model]\nhiden_size = 3\n", [], "unknown key model.hiden_size"),
        (MINIMAL + "[model]\nhidden_size = '93'\n", [], "model.hidden_size must be an integer"),
        (MINIMAL + "[model]\nhidden_size = 9.5\n", [], "model.hidden_size must be an integer"),
        (MINIMAL + "[model]\nhidden_size = true\n", [], "model.hidden_size must be an integer"),
        (MINIMAL + "[model]\nhidden_size = 0\n", [], "model.hidden_size must be >= 1"),
        (MINIMAL + "[model]\nkind = 'gru'\n", [], "model.kind must be one of"),
        (MINIMAL + "[model]\nkind = 'lstm'\nwindow = 2\n", [], "model.window"),
        (MINIMAL + "[model]\ndelay = -1\n", [], "model.delay must be >= 0"),
        (MINIMAL + "[model]\ndtype = 'float16'\n", [], "model.dtype"),
        (MINIMAL + "[model]\nsquash = 'relu'\n", [], "model.squash"),
        (MINIMAL + "[model]\nkind = 'rnn'\nsquash = 'logistic2'\n", [], "model.squash"),
        (MINIMAL + "[model]\nkind = 'lstm'\nactivation = 'logistic'\n", [], "model.activation"),
        (MINIMAL + "[model]\nkind = 'blstm'\nreverse = true\n", [], "model.reverse = true"),
        (MINIMAL + "[model]\nkind = 'mlp'\nreverse = true\n", [], "model.reverse = true"),
        (MINIMAL + "[model]\nkind = 'lstm'\nreverse = 1\n", [], "model.reverse must be a boolean"),
        (MINIMAL + "[model]\nclass_weighting = 'sqrt'\n", [], "model.class_weighting"),
        (MINIMAL + "[train]\nmomentum = 1.0\n", [], r"train.momentum must be in \[0, 1\)"),
        (MINIMAL + "[train]\nlearning_rate = 0\n", [], "train.learning_rate must be a positive"),
        (MINIMAL + "[train]\nlearning_rate = nan\n", [], "train.learning_rate"),
        (MINIMAL + "[train]\nreduction = 'max'\n", [], "train.reduction"),
        (MINIMAL + "[train]\nprogress = 1\n", [], "train.progress must be a boolean"),
        (MINIMAL + "[train]\nbatch_size = 0\n", [], "train.batch_size must be >= 1"),
        ("model = 3\n" + MINIMAL, [], r"\[model\] must be a table"),
        ("[model]\nkind = 'lstm'\n", [], "data.train is required"),
        (MINIMAL + "[data\n", [], "not valid TOML"),
        (MINIMAL, ["train.learning_rate=fast"], "train.learning_rate must be a number"),
        (MINIMAL, ["train.lr=1"], "unknown key train.lr"),
        (MINIMAL, ["optim.momentum=1"], "unknown key 'optim.momentum'"),
        (MINIMAL, ["nodot=1"], "unknown key 'nodot'"),
    ],
)
def test_config_errors_name_the_key(tmp_path, text, overrides, match):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError, match=match) as info:
        load_config(p, overrides)
    message = str(info.value)
    assert str(p) in message  # names the file too
    assert "\n" not in message


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_apply_overrides_copies():
    data = {"train": {"max_epochs": 3}}
    out = apply_overrides(data, ["train.max_epochs=5", "model.kind=lstm"])
    assert data == {"train": {"max_epochs": 3}}
    assert out == {"train": {"max_epochs": 5}, "model": {"kind": "lstm"}}


def test_validate_catches_bad_values_set_in_python():
    cfg = RunConfig()
    cfg.data.train = "t.h5"
    cfg.train.seed = "zero"
    with pytest.raises(ConfigError, match="train.seed must be an integer"):
        cfg.validate()


def test_save_config_is_atomic_with_directory_sync(tmp_path, monkeypatch):
    import seqprop.checkpoint as ckpt

    synced = []
    real = ckpt._fsync_dir
    monkeypatch.setattr(ckpt, "_fsync_dir", lambda d: (synced.append(d), real(d)))
    cfg = config_from_dict({"data": {"train": "t.h5"}})
    path = save_config(cfg, tmp_path / "config.toml")
    assert load_config(path) == cfg
    assert synced == [tmp_path]  # the rename itself is made durable
