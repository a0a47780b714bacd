"""Experiment grids, the runner (serial and on dask), the results report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from seqprop.config import load_config
from seqprop.errors import ConfigError, SeqpropError
from seqprop.experiments import (
    ERROR_NAME,
    GRID_NAME,
    INVOCATIONS_NAME,
    RESULT_FORMAT,
    RESULT_NAME,
    collect_results,
    curve_nets,
    findings,
    load_grid,
    main_nets,
    paper_figures,
    run_grid,
    run_point,
    summarise,
    write_report,
)

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "experiments" / "configs"
SMALL_GRID = CONFIGS / "small" / "grid.toml"
FULL_GRID = CONFIGS / "full" / "grid.toml"
CLASSES = ["a", "b", "c"]


# ------------------------------------------------------------------ grid files
def test_small_grid_expands_to_the_documented_runs():
    grid = load_grid(SMALL_GRID)
    points = grid.points()
    names = [p.name for p in points]
    # 5 seeds x (blstm + brnn + 8 lstm delays + 8 rnn delays + 7 mlp windows + truncated
    # + lstm backwards + blstm class-weighted)
    assert len(points) == 5 * (1 + 1 + 8 + 8 + 7 + 1 + 1 + 1) == 140
    assert len(set(names)) == len(names)
    assert {"blstm-s0", "brnn-s2", "lstm-d7-s1", "rnn-d10-s0", "mlp-w5-s2"} <= set(names)
    assert "blstm_truncated-s1" in names
    by_name = {p.name: p for p in points}
    cfg = by_name["lstm-d7-s1"].config()
    assert (cfg.model.kind, cfg.model.delay, cfg.train.seed) == ("lstm", 7, 1)
    cfg = by_name["mlp-w5-s2"].config()
    assert (cfg.model.kind, cfg.model.window, cfg.train.seed) == ("mlp", 5, 2)
    assert by_name["blstm_truncated-s0"].config().model.gradient == "truncated"
    assert dict(by_name["rnn-d3-s0"].params) == {"model.delay": 3}
    # data paths resolved against the directory the grid was loaded from
    assert Path(cfg.data.train).is_absolute()
    # the paper's functions here, tanh in the -tanh variant; the paper's extra rows
    assert by_name["blstm-s0"].config().model.squash == "logistic2"
    assert by_name["rnn-d3-s0"].config().model.activation == "logistic"
    assert by_name["mlp-w5-s2"].config().model.activation == "logistic"
    rev = by_name["lstm_reverse-s0"].config().model
    assert (rev.kind, rev.reverse, rev.delay, rev.squash) == ("lstm", True, 0, "logistic2")
    weighted = by_name["blstm_weighted-s0"].config().model
    assert weighted.class_weighting == "inverse_frequency"
    tanh = {
        p.name: p for p in load_grid(SMALL_GRID.parent.parent / "small-tanh" / "grid.toml").points()
    }
    assert sorted(tanh) == sorted(names)
    assert tanh["blstm-s0"].config().model.squash == "tanh"
    assert tanh["rnn-d3-s0"].config().model.activation == "tanh"
    assert tanh["lstm_reverse-s0"].config().model.reverse


def test_full_grid_has_the_papers_delays_and_windows():
    grid = load_grid(FULL_GRID)
    points = grid.points()
    assert len(points) == 1 + 1 + 11 + 11 + 11 + 1 + 1 + 1
    for variant, squash, activation in (
        (FULL_GRID, "logistic2", "logistic"),
        (FULL_GRID.parent.parent / "full-tanh" / "grid.toml", "tanh", "tanh"),
    ):
        for p in load_grid(variant).points():
            m = p.config().model
            assert (m.squash if m.kind in ("lstm", "blstm") else m.activation) == (
                squash if m.kind in ("lstm", "blstm") else activation
            ), p.name
    delays = sorted(p.config().model.delay for p in points if p.experiment == "lstm")
    assert delays == list(range(11))
    windows = sorted(p.config().model.window for p in points if p.experiment == "mlp")
    assert windows == list(range(11))
    assert len(load_grid(FULL_GRID, seeds=[0, 1, 2]).points()) == 3 * len(points)
    assert [p.name for p in grid.points(["rnn-d1*"])] == ["rnn-d1-s0", "rnn-d10-s0"]


def _weights(cfg) -> int:
    from seqprop.network import make_network

    m = cfg.model
    net = make_network(m.kind, 26, m.hidden_size, 61, window=m.window, gradient=m.gradient)
    return net.num_parameters


@pytest.mark.parametrize("scale, target", [("full", 100_000), ("small", 25_000)])
def test_configs_load_and_have_the_stated_weight_counts(scale, target):
    files = sorted((CONFIGS / scale).glob("*.toml"))
    names = {f.name for f in files}
    assert {"blstm.toml", "brnn.toml", "lstm.toml", "rnn.toml", "mlp.toml"} <= names
    assert "blstm_truncated.toml" in names
    for f in files:
        if f.name == "grid.toml":
            continue
        cfg = load_config(f)
        if cfg.model.kind == "mlp":
            # the paper keeps the MLP's hidden units and lets its weights grow with the
            # window; at the grid's largest window it is larger than the others
            w0 = _weights(load_config(f, ["model.window=0"]))
            w10 = _weights(load_config(f, ["model.window=10"]))
            assert w0 < target < w10, f.name
        else:
            n = _weights(cfg)
            assert abs(n - target) / target < 0.03, (f.name, n)
    if scale == "full":
        paper = {"blstm": 93, "lstm": 140, "brnn": 185, "rnn": 275, "mlp": 250}
        for kind, h in paper.items():
            assert load_config(CONFIGS / "full" / f"{kind}.toml").model.hidden_size == h
        t = load_config(CONFIGS / "full" / "blstm.toml").train
        assert (t.learning_rate, t.momentum, t.batch_size, t.reduction, t.shuffle) == (
            1e-5,
            0.9,
            1,
            "sum",
            True,
        )


def _write_grid(tmp_path: Path, text: str, config: str | None = None) -> Path:
    (tmp_path / "net.toml").write_text(
        config
        or """
[model]
kind = "lstm"
hidden_size = 3
[data]
train = "train.h5"
validation = "validation.h5"
test = "test.h5"
[train]
learning_rate = 0.01
max_epochs = 2
progress = false
""",
        encoding="utf-8",
    )
    path = tmp_path / "grid.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_grid_overrides_apply_in_order(tmp_path):
    path = _write_grid(
        tmp_path,
        """
name = "t"
seeds = [4, 5]
set = { "train.max_epochs" = 7, "train.learning_rate" = 0.5 }
[[experiment]]
name = "a"
config = "net.toml"
set = { train = { max_epochs = 9 } }
vary = { "model.delay" = [0, 2], "model.hidden_size" = [4, 8] }
[[experiment]]
name = "b"
config = "net.toml"
seeds = [1]
""",
    )
    grid = load_grid(path, overrides=["train.learning_rate=0.25", "model.delay=1"])
    points = grid.points()
    assert len(points) == 2 * 2 * 2 + 1
    names = [p.name for p in points]
    assert names[:2] == ["a-d0-h4-s4", "a-d0-h4-s5"]
    assert "a-d2-h8-s5" in names and names[-1] == "b-s1"
    by_name = {p.name: p for p in points}
    cfg = by_name["a-d2-h8-s5"].config()
    # experiment set beats grid set; --set beats both; vary and seed beat --set
    assert cfg.train.max_epochs == 9
    assert cfg.train.learning_rate == 0.25
    assert (cfg.model.delay, cfg.model.hidden_size, cfg.train.seed) == (2, 8, 5)
    cfg = by_name["b-s1"].config()
    assert (cfg.train.max_epochs, cfg.model.delay, cfg.train.seed) == (7, 1, 1)
    assert cfg.data.train == str(Path.cwd() / "train.h5")


@pytest.mark.parametrize(
    "text, message",
    [
        ('name = "t"\n', "no [[experiment]]"),
        ('bogus = 1\n[[experiment]]\nname = "a"\nconfig = "net.toml"\n', "unknown key 'bogus'"),
        ('[[experiment]]\nname = "a"\nconfig = "nope.toml"\n', "not found"),
        ('[[experiment]]\nname = "a-b"\nconfig = "net.toml"\n', "name must be"),
        (
            '[[experiment]]\nname = "a"\nconfig = "net.toml"\n[[experiment]]\nname = "a"\n'
            'config = "net.toml"\n',
            "used twice",
        ),
        (
            '[[experiment]]\nname = "a"\nconfig = "net.toml"\nvary = { "model.delay" = 3 }\n',
            "non-empty list",
        ),  # fmt: skip
        (
            '[[experiment]]\nname = "a"\nconfig = "net.toml"\nvary = { "model.bogus" = [1] }\n',
            "grid point a-bogus1-s0",
        ),
        (
            '[[experiment]]\nname = "a"\nconfig = "net.toml"\nvary = { "model.delay" = [-1] }\n',
            "model.delay must be >= 0",
        ),
        ('seeds = [1, 1]\n[[experiment]]\nname = "a"\nconfig = "net.toml"\n', "repeat"),
        ('[[experiment]]\nname = "a"\nconfig = "net.toml"\nset = { x = [1] }\n', "single"),
        ("[[experiment\n", "not valid TOML"),
    ],
)
def test_bad_grids_are_refused_with_a_clear_message(tmp_path, text, message):
    path = _write_grid(tmp_path, text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_grid(path)


def test_points_with_the_same_name_are_refused(tmp_path):
    path = _write_grid(
        tmp_path,
        '[[experiment]]\nname = "a"\nconfig = "net.toml"\n'
        'vary = { "model.kind" = ["rnn", "lstm"], "model.gradient" = ["full"] }\n'
        '[[experiment]]\nname = "a.x"\nconfig = "net.toml"\n',
    )
    assert [p.name for p in load_grid(path).points()] == [
        "a-kindrnn-gradientfull-s0",
        "a-kindlstm-gradientfull-s0",
        "a.x-s0",
    ]
    path = _write_grid(
        tmp_path,
        '[[experiment]]\nname = "a"\nconfig = "net.toml"\n'
        'vary = { "train.momentum" = [0.5, "0.5"] }\n',
    )
    with pytest.raises(ConfigError, match="both named"):
        load_grid(path).points()


# ------------------------------------------------------------------ the runner
def _tiny_data(directory: Path) -> None:
    from seqprop.data import write_dataset

    rng = np.random.default_rng(0)
    for name, n in (("train", 6), ("validation", 3), ("test", 3)):
        xs, ys = [], []
        for _ in range(n):
            t = int(rng.integers(5, 12))
            y = rng.integers(0, 3, size=t)
            x = rng.normal(size=(t, 4)).astype(np.float32) + y[:, None]
            xs.append(x)
            ys.append(y)
        write_dataset(directory / f"{name}.h5", xs, ys, class_names=CLASSES)


TINY_GRID = """
name = "tiny"
seeds = [0]
[[experiment]]
name = "lstm"
label = "LSTM"
config = "net.toml"
vary = { "model.delay" = [0, 1] }
[[experiment]]
name = "broken"
config = "net.toml"
set = { "data.train" = "missing.h5" }
"""


def test_runner_skips_finished_runs_and_reports_failures(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _tiny_data(tmp_path)
    grid = load_grid(_write_grid(tmp_path, TINY_GRID))
    out = tmp_path / "out"
    seen = []
    run = run_grid(grid, out, serial=True, on_outcome=lambda o, i, n: seen.append((o, i, n)))
    assert sorted(run.names("done")) == ["lstm-d0-s0", "lstm-d1-s0"]
    assert [o["name"] for o in run.failed] == ["broken-s0"]
    assert "missing.h5" in run.failed[0]["error"]
    assert [(i, n) for _, i, n in seen] == [(1, 3), (2, 3), (3, 3)]
    error = (out / "broken-s0" / ERROR_NAME).read_text()
    assert "DataError" in error and "Traceback" in error
    result = json.loads((out / "lstm-d1-s0" / RESULT_NAME).read_text())
    assert result["format"] == RESULT_FORMAT
    assert (result["delay"], result["seed"], result["params"]) == (1, 0, {"model.delay": 1})
    assert set(result["splits"]) == {"train", "validation", "test"}
    for split in result["splits"].values():
        assert 0.0 <= split["frame_accuracy"] <= 1.0
    assert result["epochs"] == 2 and len(result["curve"]) == 2
    assert 1 <= result["best_epoch"] <= 2
    assert result["capped"] is True  # max_epochs = 2 ended it
    assert (out / "lstm-d1-s0" / "best.h5").is_file()
    assert json.loads((out / GRID_NAME).read_text())["points"][0]["name"] == "lstm-d0-s0"

    # re-run: finished runs are skipped (their files untouched), the failed one retried
    mtime = (out / "lstm-d0-s0" / RESULT_NAME).stat().st_mtime_ns
    run2 = run_grid(grid, out, serial=True)
    assert sorted(run2.names("skipped")) == ["lstm-d0-s0", "lstm-d1-s0"]
    assert run2.names("done") == []
    assert [o["name"] for o in run2.failed] == ["broken-s0"]
    assert (out / "lstm-d0-s0" / RESULT_NAME).stat().st_mtime_ns == mtime
    invocations = json.loads((out / INVOCATIONS_NAME).read_text())
    assert len(invocations) == 2
    assert invocations[1]["skipped"] == ["lstm-d0-s0", "lstm-d1-s0"]
    assert invocations[1]["failed"][0]["name"] == "broken-s0"

    # the data appears: the failed run now succeeds and its error file goes away
    (tmp_path / "missing.h5").symlink_to(tmp_path / "train.h5")
    run3 = run_grid(grid, out, serial=True, only=["broken-*"])
    assert run3.names("done") == ["broken-s0"]
    assert not (out / "broken-s0" / ERROR_NAME).exists()


def test_run_point_resumes_a_killed_run(tmp_path, monkeypatch):
    from seqprop.training import Trainer

    monkeypatch.chdir(tmp_path)
    _tiny_data(tmp_path)
    grid = load_grid(_write_grid(tmp_path, TINY_GRID))
    point = grid.points(["lstm-d0-s0"])[0]
    out = tmp_path / "out"
    # a run stopped after its first epoch (as if killed), then resumed by the runner
    cfg = point.config()
    cfg.train.max_epochs = 1
    cfg.train.threads = 1
    Trainer(cfg, run_dir=out / point.name, progress=False).fit()
    outcome = run_point(point, out)
    assert outcome["status"] == "done"
    assert outcome["result"]["resumed"] is True
    assert outcome["result"]["epochs"] == 2

    reference = run_point(point, tmp_path / "fresh")
    assert reference["result"]["resumed"] is False
    assert reference["result"]["splits"]["test"] == outcome["result"]["splits"]["test"]


@pytest.mark.filterwarnings("ignore:Port .* is already in use")
def test_runner_on_a_local_dask_cluster(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.chdir(tmp_path)
    _tiny_data(tmp_path)
    grid = load_grid(_write_grid(tmp_path, TINY_GRID))
    out = tmp_path / "out"
    run = run_grid(grid, out, n_workers=1)
    assert sorted(run.names("done")) == ["lstm-d0-s0", "lstm-d1-s0"]
    assert [o["name"] for o in run.failed] == ["broken-s0"]
    assert (out / "broken-s0" / ERROR_NAME).is_file()
    run = run_grid(grid, out, n_workers=1, only=["lstm-*"])
    assert sorted(run.names("skipped")) == ["lstm-d0-s0", "lstm-d1-s0"]


def test_runner_without_dask_says_how_to_get_it(tmp_path, monkeypatch):
    import sys

    monkeypatch.chdir(tmp_path)
    _tiny_data(tmp_path)
    grid = load_grid(_write_grid(tmp_path, TINY_GRID))
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails
    with pytest.raises(SeqpropError, match=r"seqprop\[experiments\].*--serial"):
        run_grid(grid, tmp_path / "out", only=["lstm-d0-*"])
    assert not (tmp_path / "out" / "lstm-d0-s0" / RESULT_NAME).exists()


def test_cli_run_list_and_report(tmp_path, monkeypatch, capsys):
    from seqprop.cli import main

    monkeypatch.chdir(tmp_path)
    _tiny_data(tmp_path)
    grid = _write_grid(tmp_path, TINY_GRID)
    assert main(["experiments", "run", str(grid), "--list"]) == 0
    listed = capsys.readouterr().out
    assert "lstm-d1-s0" in listed and "3 runs" in listed
    rc = main(["experiments", "run", str(grid), "--out", "out", "--serial", "--only", "lstm-*"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "[2/2] done" in text and "2 trained" in text
    rc = main(["experiments", "run", grid.name, "--out", "out", "--serial"])
    assert rc == 1  # the broken run failed; the others were skipped
    text = capsys.readouterr().out
    assert "FAILED broken-s0" in text and "2 already done" in text
    rc = main(["experiments", "report", "out", "--markdown", "R.md", "--figures", "figs"])
    assert rc == 0
    md = (tmp_path / "R.md").read_text()
    assert "LSTM, delay 1" in md and "broken-s0" in md
    assert "`seqprop experiments report out --markdown R.md --figures figs`" in md
    assert "`seqprop experiments run grid.toml --out out --serial`" in md
    assert main(["experiments", "report", "nowhere"]) == 2
    assert "nowhere: no such directory" in capsys.readouterr().err
    assert main(["experiments", "run", "nowhere.toml"]) == 2


# ------------------------------------------------------------------ the report
def _fake(name, kind, *, seed, test, valid=None, train=0.8, best=10, epochs=20, capped=False,
          delay=0, window=0, gradient="full", experiment=None, params=None, label=None):  # fmt: skip
    splits = {
        "train": {"n_sequences": 8, "n_frames": 800, "loss": 1.0, "frame_accuracy": train,
                  "majority_accuracy": 0.1, "folded_accuracy": None},
        "validation": {"n_sequences": 2, "n_frames": 200, "loss": 1.0,
                       "frame_accuracy": test if valid is None else valid,
                       "majority_accuracy": 0.1, "folded_accuracy": None},
        "test": {"n_sequences": 2, "n_frames": 200, "loss": 1.0, "frame_accuracy": test,
                 "majority_accuracy": 0.12, "folded_accuracy": None},
    }  # fmt: skip
    return {
        "format": RESULT_FORMAT,
        "format_version": 1,
        "name": name,
        "experiment": experiment or kind,
        "label": label or kind.upper(),
        "params": params or {},
        "seed": seed,
        "kind": kind,
        "hidden_size": 10,
        "delay": delay,
        "window": window,
        "gradient": gradient,
        "n_parameters": 25000,
        "learning_rate": 3e-5,
        "max_epochs": 100,
        "n_iter_no_change": 15,
        "epochs": epochs,
        "best_epoch": best,
        "stop_reason": "max_epochs (100) reached" if capped else "early stopping",
        "capped": capped,
        "seconds_per_epoch": 0.5,
        "frames_per_second": 1000.0,
        "splits": splits,
        "curve": [
            {
                "epoch": e + 1,
                "validation_frame_error": 1 - test * (e + 1) / epochs,
                "train_frame_error": 0.5,
            }
            for e in range(epochs)
        ],  # fmt: skip
        "config": {"train": {"batch_size": 1, "reduction": "sum", "momentum": 0.9}},
        "data": {"train": "train.h5", "validation": "validation.h5", "test": "test.h5"},
    }


def _fake_results() -> list[dict]:
    out = []
    for s, jitter in enumerate((-0.01, 0.01)):
        out.append(_fake(f"blstm-s{s}", "blstm", seed=s, test=0.60 + jitter, best=20))
        out.append(_fake(f"brnn-s{s}", "brnn", seed=s, test=0.58 + jitter, best=100,
                         capped=s == 1, epochs=100))  # fmt: skip
        for d, acc in ((0, 0.50), (3, 0.55), (10, 0.45)):
            p = {"model.delay": d}
            out.append(_fake(f"lstm-d{d}-s{s}", "lstm", seed=s, test=acc + jitter, delay=d,
                             params=p, best=15))  # fmt: skip
            # the RNN's best delay on validation (3) is no better than delay 0 on test
            out.append(_fake(f"rnn-d{d}-s{s}", "rnn", seed=s, test=0.48 + jitter,
                             valid=0.5 + (d == 3) * 0.05, delay=d, params=p, best=60))  # fmt: skip
        for w, acc in ((0, 0.40), (5, 0.52)):
            out.append(_fake(f"mlp-w{w}-s{s}", "mlp", seed=s, test=acc + jitter, window=w,
                             params={"model.window": w}))  # fmt: skip
    return out


def test_summarise_groups_over_seeds():
    groups = summarise(_fake_results())
    by_key = {g.key: g for g in groups}
    assert [g.key for g in groups][:3] == ["blstm", "brnn", "lstm-d0"]
    assert by_key["lstm-d3"].label == "LSTM, delay 3"
    assert by_key["mlp-w5"].label == "MLP, window 5"
    assert len(by_key["blstm"].runs) == 2
    assert by_key["blstm"].mean("test") == pytest.approx(0.60)
    assert by_key["blstm"].std("test") == pytest.approx(math.sqrt(2) * 0.01)
    assert by_key["brnn"].n_capped == 1
    assert paper_figures(by_key["lstm-d0"].first)["test"] == "64.6"
    assert paper_figures(by_key["lstm-d3"].first) is None


def test_findings_follow_the_numbers():
    verdicts = {f.claim: f for f in findings(summarise(_fake_results()))}
    bi = verdicts["Bidirectional nets beat unidirectional ones at zero delay"]
    assert bi.verdict == "holds"
    assert "BLSTM 60.0 ± 1.4 vs LSTM (delay 0) 50.0 ± 1.4" in bi.evidence
    delay = verdicts["A target delay helps unidirectional nets, up to a few frames"]
    assert delay.verdict == "holds in part"  # LSTM yes (delay 3), RNN no gain
    assert "LSTM: best delay on validation 3 frames" in delay.evidence
    conv = verdicts["LSTM converges in far fewer epochs than plain RNNs"]
    assert conv.verdict == "holds"
    assert "ratio 4.00" in conv.evidence and "1 BRNN runs stopped at max_epochs" in conv.evidence
    mlp = verdicts["MLPs need a time window"]
    assert mlp.verdict == "holds" and "+12.0 points" in mlp.evidence

    # reversed numbers: the finding is reported as not holding
    flipped = [{**r, "best_epoch": 100} if r["kind"] == "lstm" else r for r in _fake_results()]
    conv = {f.claim: f for f in findings(summarise(flipped))}[
        "LSTM converges in far fewer epochs than plain RNNs"
    ]
    assert conv.verdict == "holds in part"  # BLSTM vs BRNN still holds
    only_lstm = [r for r in flipped if r["kind"] in ("lstm", "rnn")]
    conv = {f.claim: f for f in findings(summarise(only_lstm))}[
        "LSTM converges in far fewer epochs than plain RNNs"
    ]
    assert conv.verdict == "does not hold"
    verdicts = {f.claim: f.verdict for f in findings(summarise(only_lstm))}
    assert verdicts["MLPs need a time window"] == "not tested"


def test_report_from_result_files(tmp_path):
    out = tmp_path / "out"
    for r in _fake_results():
        (out / r["name"]).mkdir(parents=True)
        (out / r["name"] / RESULT_NAME).write_text(json.dumps(r))
    (out / "rnn-d5-s0").mkdir()
    (out / "rnn-d5-s0" / ERROR_NAME).write_text("run rnn-d5-s0 failed\nTrainingDiverged: nan\n")
    (out / GRID_NAME).write_text(
        json.dumps({"name": "fake", "grid": "g.toml", "points": [{"name": "mlp-w9-s0"}]})
    )
    md = write_report(out, markdown=tmp_path / "docs" / "RESULTS.md", command="make it")
    text = md.read_text()
    assert md == tmp_path / "docs" / "RESULTS.md"
    assert "Generated by `make it`" in text
    assert (
        "| BLSTM | 25,000 | 2 | 80.0 ± 0.0 | 60.0 ± 1.4 | 60.0 ± 1.4 | n/a | 20 (20-20) |" in text
    )
    assert "| 69.8-70.2 | ~20 |" in text
    assert "**Bidirectional nets beat unidirectional ones at zero delay: holds.**" in text
    assert "**Cut short by max_epochs**" in text and "BRNN (1/2)" in text
    assert "`rnn-d5-s0`: failed: TrainingDiverged: nan" in text
    assert "`mlp-w9-s0`: not run yet" in text
    assert "| lstm-d3-s1 | 25,000 | 80.0 | 56.0 | 56.0 | 15 | 20 | early |" in text
    assert "always answering the most frequent class scores 12.0 %" in text
    try:
        import matplotlib  # noqa: F401
    except ImportError:  # figures are optional; the report says so
        assert "matplotlib is not installed" in text
    else:
        for name in ("context", "learning_curves"):
            png = tmp_path / "docs" / "figures" / f"{name}.png"
            assert png.read_bytes()[:4] == b"\x89PNG"
            assert f"](figures/{name}.png)" in text
    results, errors = collect_results(out)
    assert len(results) == len(_fake_results()) and list(errors) == ["rnn-d5-s0"]


def _variant_rows(scale: float) -> list[dict]:
    """The backwards LSTM and the class-weighted BLSTM (accuracies scaled by ``scale``)."""
    out = []
    for s in (0, 1):
        r = _fake(f"lstm_reverse-s{s}", "lstm", seed=s, test=0.9 * scale,
                  experiment="lstm_reverse", label="LSTM (backwards)")  # fmt: skip
        out.append({**r, "reverse": True})
        r = _fake(f"blstm_weighted-s{s}", "blstm", seed=s, test=0.2 * scale,
                  experiment="blstm_weighted", label="BLSTM (class-weighted error)")  # fmt: skip
        r["splits"]["test"]["class_averaged_accuracy"] = 0.5 + 0.01 * s
        out.append({**r, "class_weighting": "inverse_frequency"})
    return out


def test_variant_rows_are_shown_but_kept_out_of_the_plain_comparisons(tmp_path):
    """The backwards LSTM and the class-weighted BLSTM are rows of their own: they never
    stand in for the LSTM at delay 0 or the BLSTM in a finding, nor get the paper's
    figures of those nets."""
    plain = findings(summarise(_fake_results()))
    groups = summarise(_fake_results() + _variant_rows(1.0))
    assert [(f.verdict, f.evidence) for f in findings(groups)] == [
        (f.verdict, f.evidence) for f in plain
    ]
    by_key = {g.key: g for g in groups}
    assert paper_figures(by_key["lstm_reverse"].first) is None
    assert paper_figures(by_key["blstm_weighted"].first) is None
    assert by_key["blstm_weighted"].mean("test.class_averaged_accuracy") == pytest.approx(0.505)
    shown = [g.key for g in main_nets(groups)]
    assert "lstm_reverse" in shown and "blstm_weighted" in shown
    assert "lstm_reverse" not in [g.key for g in curve_nets(groups)]


def test_report_compares_variants(tmp_path, capsys):
    from seqprop.cli import main

    dirs = {}
    for name, scale in (("paper", 1.0), ("tanh", 0.5)):
        out = tmp_path / name
        rows = _fake_results() + _variant_rows(scale)
        if name == "tanh":  # BLSTM no better than BRNN here
            rows = [{**r, "splits": {**r["splits"], "test": {**r["splits"]["test"],
                     "frame_accuracy": 0.5}}} if r["kind"] in ("blstm", "brnn") else r
                    for r in rows]  # fmt: skip
        for r in rows:
            (out / r["name"]).mkdir(parents=True)
            (out / r["name"] / RESULT_NAME).write_text(json.dumps(r))
        dirs[name] = out
    md = tmp_path / "R.md"
    rc = main(["experiments", "report", str(dirs["paper"]), "--markdown", str(md), "--label",
               "paper", "--compare", f"tanh={dirs['tanh']}"])  # fmt: skip
    assert rc == 0
    text = md.read_text()
    assert "## Variants compared: **paper**, **tanh**" in text
    assert "| LSTM (backwards) | 80.0 ± 0.0 | 90.0 ± 0.0 | n/a | 10 ± 0 | 80.0 ± 0.0 | 45.0" in text
    assert "| BLSTM (class-weighted error) | 80.0 ± 0.0 | 20.0 ± 0.0 | 50.5 ± 0.7 |" in text
    claim = "- **LSTM beats the plain RNN (BLSTM > BRNN, LSTM > RNN)**\n"
    section = text[text.index(claim) :]
    assert section.split("\n")[1].startswith("  - paper: **holds**. BLSTM 60.0 ± 1.4 vs BRNN")
    assert section.split("\n")[2].startswith(
        "  - tanh: **holds in part**. BLSTM 50.0 ± 0.0 vs BRNN 50.0 ± 0.0: +0.0 points"
    )
    assert f"--compare tanh={dirs['tanh']}" in text  # the command that regenerates it
    rc = main(["experiments", "report", str(dirs["paper"]), "--compare", "tanh"])
    assert rc == 2 and "expected NAME=DIR" in capsys.readouterr().err


def test_report_refuses_an_empty_or_corrupt_directory(tmp_path):
    with pytest.raises(SeqpropError, match="no finished run"):
        write_report(tmp_path)
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / RESULT_NAME).write_text("{not json")
    with pytest.raises(SeqpropError, match="not a readable result"):
        write_report(tmp_path)
    (tmp_path / "x" / RESULT_NAME).write_text('{"a": 1}')
    with pytest.raises(SeqpropError, match="not a seqprop experiment result"):
        collect_results(tmp_path)


# ------------------------------------------------------------------ review fixes
ONE_FILE_GRID = """
name = "one"
seeds = [0]
[[experiment]]
name = "x"
config = "net.toml"
"""
ONE_FILE_NET = """
[model]
kind = "lstm"
hidden_size = 3
[data]
train = "corpus.h5"
validation = "corpus.h5"
test = "corpus.h5"
[train]
learning_rate = 0.01
max_epochs = 1
progress = false
"""


def test_rerun_of_a_finished_one_file_run_scores_its_test_group(tmp_path, monkeypatch):
    """A finished run re-evaluated from its checkpoint (result.json lost) finds the
    test group of a one-file dataset as the trainer does (no data.group)."""
    from seqprop.data import write_dataset

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    for name, n in (("train", 5), ("validation", 3), ("test", 2)):
        xs = [rng.normal(size=(6, 4)).astype(np.float32) for _ in range(n)]
        ys = [rng.integers(0, 3, 6) for _ in range(n)]
        write_dataset(tmp_path / "corpus.h5", xs, ys, class_names=CLASSES, group=name)
    grid = load_grid(_write_grid(tmp_path, ONE_FILE_GRID, ONE_FILE_NET))
    point = grid.points()[0]
    first = run_point(point, tmp_path / "out")
    assert first["status"] == "done", first.get("error")
    (tmp_path / "out" / point.name / RESULT_NAME).unlink()
    (tmp_path / "out" / point.name / "test.json").unlink()
    again = run_point(point, tmp_path / "out")
    assert again["status"] == "done", again.get("error")
    assert again["result"]["resumed"] is True
    assert again["result"]["splits"]["test"] == first["result"]["splits"]["test"]
    assert again["result"]["splits"]["test"]["n_sequences"] == 2


def test_run_point_closes_the_trainer_when_evaluation_fails(tmp_path, monkeypatch):
    import seqprop.evaluation
    from seqprop.training import Trainer

    monkeypatch.chdir(tmp_path)
    _tiny_data(tmp_path)
    point = load_grid(_write_grid(tmp_path, TINY_GRID)).points(["lstm-d0-s0"])[0]
    closed = []
    real_close = Trainer.close
    monkeypatch.setattr(Trainer, "close", lambda self: (closed.append(self), real_close(self)))

    def broken(*args, **kwargs):
        raise RuntimeError("evaluation exploded")

    monkeypatch.setattr(seqprop.evaluation, "evaluate", broken)
    outcome = run_point(point, tmp_path / "out")
    assert outcome["status"] == "failed" and "evaluation exploded" in outcome["error"]
    assert closed, "the trainer's datasets were left open"


# ------------------------------------------------------------------ the package's parts
def test_importing_the_package_loads_neither_dask_nor_matplotlib():
    import subprocess
    import sys

    code = (
        "import sys, seqprop.experiments, seqprop.cli.experiments_cmd\n"
        "print(sorted(m for m in ('distributed', 'dask', 'matplotlib') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_report_with_another_papers_sections(tmp_path):
    from seqprop.experiments import PaperReport

    out = tmp_path / "out"
    for r in _fake_results():
        (out / r["name"]).mkdir(parents=True)
        (out / r["name"] / RESULT_NAME).write_text(json.dumps(r))
    seen = []

    def sections(groups):
        seen.append([g.key for g in groups])
        return ["## Another paper", "", f"{len(groups)} nets", ""]

    paper = PaperReport(reference=lambda r: {"test": "99.9"} if r["kind"] == "mlp" else None,
                        sections=sections)  # fmt: skip
    text = write_report(out, paper=paper).read_text()
    assert seen and seen[0][:2] == ["blstm", "brnn"]
    assert "## Another paper\n\n10 nets\n\n## Every net" in text
    assert "Main comparison" not in text and "## Figures" not in text
    assert "| MLP, window 5 | 25,000 | 2 |" in text and "| 99.9 |  |" in text
    assert "| BLSTM | 25,000 | 2 | 80.0 ± 0.0 | 60.0 ± 1.4 | 60.0 ± 1.4 | n/a | 20 (20-20) | 20 | " \
        "0/2 | 0.50 |  |  |" in text  # fmt: skip
    assert not (out / "figures").exists()
