"""The corpus registry and ``seqprop prepare NAME``: listing, dispatch, unknown names."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import seqprop
from seqprop.cli import main
from seqprop.corpora import (
    Corpus,
    CorpusRegistry,
    Prepared,
    SplitWriter,
    corpora,
    get_corpus,
    registry,
)
from seqprop.data import open_dataset
from seqprop.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parents[1]


class Ramp(Corpus):
    """A tiny corpus: sequences 0, 1, 2, ... with the class of each frame = its parity."""

    name = "ramp"
    summary = "integer ramps labelled odd/even (a test corpus)"
    description = "Write OUT_DIR/all.h5 with N ramps."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("out_dir", metavar="OUT_DIR")
        parser.add_argument("--n", type=int, default=3, help="sequences (3)")

    def prepare(self, args: argparse.Namespace, *, progress: bool = False) -> Prepared:
        if args.n < 1:
            raise DataError(f"--n must be at least 1, got {args.n}")
        xs = [np.arange(k + 2, dtype=np.float32)[:, None] for k in range(args.n)]
        ys = [np.arange(k + 2, dtype=np.int32) % 2 for k in range(args.n)]
        with SplitWriter(args.out_dir, ["all"]) as writer:
            writer.write("all", xs, ys, class_names=["even", "odd"])
            files = writer.commit()
        return Prepared(
            files=files,
            n_utterances={"all": args.n},
            n_frames={"all": sum(len(y) for y in ys)},
            headline=f"prepared {args.n} ramps",
            notes=["that was quick"],
            warnings=["ramps are not speech"],
        )


@pytest.fixture
def with_ramp(monkeypatch):
    """The process-wide registry replaced by one holding the built-in corpora and Ramp."""
    fresh = CorpusRegistry()
    for corpus in corpora():
        fresh.register(type(corpus))
    fresh.register(Ramp)
    monkeypatch.setattr(registry, "_registry", fresh)
    return fresh


# --------------------------------------------------------------------------- listing


def test_built_in_corpora_are_registered():
    names = [c.name for c in corpora()]
    assert names == ["arrays", "synthetic", "timit"]
    assert type(get_corpus("timit")).__module__ == "seqprop.corpora.timit"
    assert type(get_corpus("synthetic")).__module__ == "seqprop.corpora.synthetic"
    for corpus in corpora():
        assert corpus.summary and "\n" not in corpus.summary


@pytest.mark.parametrize("argv, rc", [(["prepare", "--list"], 0), (["prepare"], 2)])
def test_cli_lists_corpora_with_summaries(argv, rc, capsys):
    assert main(argv) == rc
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "corpora:"
    assert lines[1].split(None, 1) == ["arrays", get_corpus("arrays").summary]
    assert lines[2].split(None, 1) == ["synthetic", get_corpus("synthetic").summary]
    assert lines[3].split(None, 1) == ["timit", get_corpus("timit").summary]


def test_cli_prepare_help_lists_corpora(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["prepare", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--list" in out and "synthetic " in out and "timit " in out


@pytest.mark.parametrize(
    "name, options",
    [
        ("timit", ["SOURCE", "--split NAME=SPEC", "--include-sa", "--skip-incomplete"]),
        ("synthetic", ["OUT_DIR", "--n-speakers", "--min-seconds", "--overwrite"]),
    ],
)
def test_cli_corpus_help_shows_its_options(name, options, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["prepare", name, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: seqprop prepare {name} [-h]")
    for option in options:
        assert option in out
    other = "synthetic" if name == "timit" else "timit"
    assert f"seqprop prepare {other}" not in out


# --------------------------------------------------------------------------- unknown names


def test_cli_unknown_corpus_is_one_line_exit_2(tmp_path, capsys):
    rc = main(["prepare", "timitt", str(tmp_path), "--overwrite"])
    captured = capsys.readouterr()
    assert rc == 2 and captured.out == ""
    assert captured.err == (
        "seqprop prepare: error: unknown corpus 'timitt'; known corpora: arrays, synthetic, timit\n"
    )
    assert not any(tmp_path.iterdir())


def test_get_corpus_unknown_name():
    with pytest.raises(
        ConfigError, match=r"unknown corpus 'nope'; known corpora: arrays, synthetic"
    ):
        get_corpus("nope")


def test_cli_as_a_process():
    env = dict(os.environ, PYTHONPATH=str(REPO))
    run = [sys.executable, "-m", "seqprop", "prepare"]
    listed = subprocess.run([*run, "--list"], capture_output=True, text=True, env=env)
    assert listed.returncode == 0 and "timit" in listed.stdout and listed.stderr == ""
    unknown = subprocess.run([*run, "wsj", "x"], capture_output=True, text=True, env=env)
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert unknown.stderr.count("\n") == 1 and "unknown corpus 'wsj'" in unknown.stderr
    assert "Traceback" not in unknown.stderr


# --------------------------------------------------------------------------- dispatch


def test_cli_dispatches_to_a_registered_corpus(with_ramp, tmp_path, capsys):
    assert main(["prepare", "--list"]) == 0
    assert "ramp       integer ramps labelled odd/even" in capsys.readouterr().out
    out_dir = tmp_path / "ramps"
    assert main(["prepare", "ramp", str(out_dir), "--n", "4"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "seqprop prepare: warning: ramps are not speech\n"
    assert captured.out.splitlines() == [
        "prepared 4 ramps",
        f"  all       4 utterances         14 frames  -> {out_dir / 'all.h5'}",
        "that was quick",
    ]
    with open_dataset(out_dir / "all.h5") as ds:
        assert len(ds) == 4 and list(ds.class_names) == ["even", "odd"]
        x, y = ds[3]
        np.testing.assert_array_equal(y, np.arange(5) % 2)
    # the corpus's own errors: one line, exit 2; its argument errors: argparse's exit 2
    assert main(["prepare", "ramp", str(tmp_path / "r2"), "--n", "0"]) == 2
    assert capsys.readouterr().err == "seqprop prepare: error: --n must be at least 1, got 0\n"
    with pytest.raises(SystemExit) as exc:
        main(["prepare", "ramp", str(tmp_path / "r3"), "--n", "many"])
    assert exc.value.code == 2
    assert "seqprop prepare ramp: error: argument --n" in capsys.readouterr().err


# --------------------------------------------------------------------------- registry rules


def test_registry_refuses_bad_and_clashing_corpora():
    reg = CorpusRegistry()
    assert reg.register(Ramp) is Ramp
    assert reg.register(Ramp) is Ramp  # the same class again (a module imported twice)
    assert reg.names() == ("ramp",) and isinstance(reg.get("ramp"), Ramp)

    class OtherRamp(Ramp):
        pass

    with pytest.raises(ValueError, match="'ramp' is already taken by .*Ramp"):
        reg.register(OtherRamp)

    class BadName(Ramp):
        name = "Bad Name"

    with pytest.raises(ValueError, match="name must be lower case"):
        reg.register(BadName)

    class TwoLines(Ramp):
        name = "two"
        summary = "one\ntwo"

    with pytest.raises(ValueError, match="summary must be one non-empty line"):
        reg.register(TwoLines)
    with pytest.raises(ValueError, match="not a subclass"):
        reg.register(dict)
    assert reg.names() == ("ramp",)


def test_corpus_needs_add_arguments_and_prepare():
    class Incomplete(Corpus):
        name = "incomplete"
        summary = "no prepare"

        def add_arguments(self, parser):
            pass

    with pytest.raises(TypeError):
        Incomplete()


# --------------------------------------------------------------------------- layout


def test_listing_corpora_imports_no_heavy_modules():
    code = (
        "import sys\n"
        "from seqprop.cli import build_parser\n"
        "from seqprop.corpora import corpora\n"
        "build_parser()\n"
        "assert [c.name for c in corpora()] == ['arrays', 'synthetic', 'timit']\n"
        "heavy = sorted(m for m in ('numpy', 'numba', 'h5py', 'scipy') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_public_names_still_importable():
    from seqprop.corpora.synthetic import generate_corpus, synthesize_utterance
    from seqprop.corpora.synthetic.generate import generate_corpus as generate_corpus_impl
    from seqprop.corpora.timit import Utterance, fold_labels, phones61, prepare_timit
    from seqprop.corpora.timit.phones import phones61 as phones61_impl
    from seqprop.corpora.timit.recipe import prepare_timit as prepare_timit_impl

    assert prepare_timit is prepare_timit_impl and seqprop.prepare_timit is prepare_timit
    assert generate_corpus is generate_corpus_impl and seqprop.generate_corpus is generate_corpus
    assert phones61 is phones61_impl and callable(fold_labels) and callable(synthesize_utterance)
    assert Utterance.__module__ == "seqprop.corpora.timit.recipe"
    with pytest.raises(AttributeError, match="no attribute 'prepare_wsj'"):
        _ = seqprop.corpora.timit.prepare_wsj


def test_timit_data_files_live_with_the_code_and_are_linked_from_datasets():
    from seqprop.corpora.timit import FILES, data_file

    if Path(seqprop.__file__).resolve().parent != REPO / "seqprop":
        pytest.skip("seqprop is not imported from this source tree")
    package_dir = REPO / "seqprop" / "corpora" / "timit"
    for name in FILES:
        assert data_file(name).resolve() == (package_dir / name).resolve()
        link = REPO / "datasets" / "timit" / name
        assert link.is_symlink() and link.resolve() == (package_dir / name).resolve()
    assert not (REPO / "seqprop" / "recipes").exists()
    for recipe in ("timit", "synthetic"):
        script = REPO / "datasets" / recipe / "run.sh"
        assert script.is_file() and os.access(script, os.X_OK)
