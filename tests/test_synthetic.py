"""The synthetic speech corpus: determinism, labels, and that future context helps."""

from __future__ import annotations

import re

import numpy as np
import pytest

from seqprop.cli import main
from seqprop.corpora.synthetic import (
    PHONES,
    generate_corpus,
    make_speakers,
    synthesize_utterance,
)
from seqprop.data import open_dataset
from seqprop.errors import ConfigError, DataError


def read(path):
    with open_dataset(path) as ds:
        return list(ds.tags), [ds[i] for i in range(len(ds))], ds


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    return generate_corpus(out, seed=3, n_train=70, n_validation=4, n_test=30)


def test_files_and_metadata(corpus):
    assert set(corpus) == {"train", "validation", "test"}
    for split, path in corpus.items():
        assert path.name == f"{split}.h5"
        with open_dataset(path) as ds:
            assert list(ds.class_names) == list(PHONES) and len(PHONES) == 25
            assert ds.input_size == 26
            assert all(re.fullmatch(rf"{split}/s\d\d/u\d{{4}}", t) for t in ds.tags)
            for i in range(len(ds)):
                x, y = ds[i]
                assert x.shape == (len(y), 26) and np.all(np.isfinite(x))
                assert y.min() >= 0  # segments tile the utterance: every frame labelled
                assert 98 <= len(y) <= 360  # 1-3 s utterances (plus at most one syllable)


def test_labels_cover_all_classes_and_durations_plausible(corpus):
    _, seqs, _ = read(corpus["train"])
    y = np.concatenate([s[1] for s in seqs])
    counts = np.bincount(y, minlength=len(PHONES))
    assert np.all(counts > 0), dict(zip(PHONES, counts, strict=True))
    assert 0.05 < counts[PHONES.index("sil")] / y.size < 0.3
    # run lengths (frames) of each phone token, within utterances
    runs: dict[int, list[int]] = {}
    for _, lab in seqs:
        edges = np.flatnonzero(np.diff(lab)) + 1
        for seg in np.split(lab, edges):
            runs.setdefault(int(seg[0]), []).append(len(seg))
    for c, lengths in runs.items():
        mean = np.mean(lengths)
        if PHONES[c] == "sil":
            assert 5 < mean < 25
        else:
            assert 4 < mean < 16, (PHONES[c], mean)  # 40-160 ms


def test_deterministic_and_extendable(tmp_path):
    a = generate_corpus(tmp_path / "a", seed=11, n_train=3, n_validation=1, n_test=1)
    b = generate_corpus(tmp_path / "b", seed=11, n_train=5, n_validation=1, n_test=1)
    c = generate_corpus(tmp_path / "c", seed=12, n_train=3, n_validation=1, n_test=1)
    for split in ("train", "validation", "test"):
        tags_a, seq_a, _ = read(a[split])
        tags_b, seq_b, _ = read(b[split])
        assert tags_b[: len(tags_a)] == tags_a
        for (xa, ya), (xb, yb) in zip(seq_a, seq_b, strict=False):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)
    _, seq_c, _ = read(c["train"])
    _, seq_a, _ = read(a["train"])
    assert not np.array_equal(seq_a[0][1], seq_c[0][1]) or not np.array_equal(
        seq_a[0][0], seq_c[0][0]
    )
    again = generate_corpus(tmp_path / "a2", seed=11, n_train=3, n_validation=1, n_test=1)
    for split in a:
        _, s1, _ = read(a[split])
        _, s2, _ = read(again[split])
        for (x1, y1), (x2, y2) in zip(s1, s2, strict=True):
            np.testing.assert_array_equal(x1, x2)
            np.testing.assert_array_equal(y1, y2)


def test_utterance_segments():
    spk = make_speakers(np.random.default_rng(0), 2)
    assert spk[0].sex == "f" and spk[1].sex == "m" and spk[0].f0 > spk[1].f0
    signal, starts, ends, classes = synthesize_utterance(np.random.default_rng(5), spk[1])
    assert starts[0] == 0 and ends[-1] == signal.size
    np.testing.assert_array_equal(starts[1:], ends[:-1])
    assert np.all(ends - starts >= 640) and np.all(np.isfinite(signal))
    assert classes[0] == classes[-1] == PHONES.index("sil")
    assert 1.0 <= signal.size / 16000 <= 3.5
    assert 300 < signal.std() < 6000  # 16-bit integer units
    # silence is quiet, vowels are loud
    vowel = [i for i, c in enumerate(classes) if PHONES[c] in ("aa", "ae", "iy", "uw")]
    if vowel:
        i = vowel[0]
        loud = signal[starts[i] : ends[i]].std()
        quiet = signal[starts[0] : ends[0] - 200].std()
        assert loud > 10 * quiet


def _stack(seqs, offsets, mu, sd):
    xs, ys = [], []
    for x, y in seqs:
        x = (x - mu) / sd
        idx = np.arange(len(x))
        xs.append(np.concatenate([x[np.clip(idx + o, 0, len(x) - 1)] for o in offsets], axis=1))
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def _gaussian_classifier(train, test, offsets, mu, sd, reg=0.3):
    """Per-class full-covariance Gaussians (QDA), numpy only; returns predictions and truth."""
    xa, ya = _stack(train, offsets, mu, sd)
    xb, yb = _stack(test, offsets, mu, sd)
    scores = np.full((len(xb), len(PHONES)), -np.inf)
    for c in np.unique(ya):
        z = xa[ya == c]
        chol = np.linalg.cholesky(np.cov(z.T) + reg * np.eye(z.shape[1]))
        d = np.linalg.solve(chol, (xb - z.mean(0)).T)
        scores[:, c] = -0.5 * (d**2).sum(0) - np.log(np.diag(chol)).sum() + np.log(len(z) / len(xa))
    return scores.argmax(1), yb


def test_future_context_helps(corpus):
    """The corpus's point: frames are easier to classify with future than with past context."""
    _, train, _ = read(corpus["train"])
    _, test, _ = read(corpus["test"])
    feats = np.concatenate([x for x, _ in train])
    mu, sd = feats.mean(0), feats.std(0)
    acc = {}
    for name, offs in {"current": [0], "past": [-6, -3, 0], "future": [0, 3, 6]}.items():
        pred, truth = _gaussian_classifier(train, test, offs, mu, sd)
        acc[name] = float(np.mean(pred == truth))
        if name != "past":
            nasal = np.isin(truth, [PHONES.index(p) for p in ("m", "n", "ng")])
            acc[name + "_nasals"] = float(np.mean(pred[nasal] == truth[nasal]))
    print("frame accuracy:", {k: round(v, 3) for k, v in acc.items()})
    assert acc["future"] > acc["past"] + 0.03
    assert acc["future"] > acc["current"] + 0.03
    # m, n, ng have the same murmur: near chance alone, told apart by what follows
    assert acc["current_nasals"] < 0.6
    assert acc["future_nasals"] > acc["current_nasals"] + 0.2


def test_bad_arguments(tmp_path):
    with pytest.raises(ConfigError, match="n_train"):
        generate_corpus(tmp_path, n_train=-1)
    with pytest.raises(ConfigError, match="at least one utterance"):
        generate_corpus(tmp_path, n_train=0, n_validation=0, n_test=0)
    with pytest.raises(ConfigError, match="n_speakers"):
        generate_corpus(tmp_path, n_speakers=(1, 0, 1))
    with pytest.raises(ConfigError, match="min_seconds"):
        generate_corpus(tmp_path, min_seconds=3.0, max_seconds=1.0)
    generate_corpus(tmp_path / "o", n_train=1, n_validation=0, n_test=1)
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["test.h5", "train.h5"]
    with pytest.raises(DataError, match="already exists"):
        generate_corpus(tmp_path / "o", n_train=1, n_validation=0, n_test=1)


def test_cli(tmp_path, capsys):
    out = tmp_path / "syn"
    rc = main(
        [
            "prepare",
            "synthetic",
            str(out),
            "--n-train",
            "3",
            "--n-validation",
            "1",
            "--n-test",
            "1",
            "--n-speakers",
            "2",
            "--seed",
            "4",
        ]
    )
    text = capsys.readouterr().out
    assert rc == 0 and "3 utterances" in text
    assert {p.name for p in out.iterdir()} == {"train.h5", "validation.h5", "test.h5"}
    rc = main(["prepare", "synthetic", str(out), "--n-train", "3"])
    err = capsys.readouterr().err
    assert rc == 2 and "already exists" in err and err.count("\n") == 1
    rc = main(["prepare", "synthetic", str(tmp_path / "x"), "--n-speakers", "1", "2"])
    assert rc == 2 and "one or three" in capsys.readouterr().err


def test_split_writer_leaves_no_directory_behind(tmp_path):
    from seqprop.corpora import SplitWriter

    x, y = [np.zeros((3, 2), np.float32)], [np.zeros(3, np.int32)]
    out = tmp_path / "new" / "corpus"
    writer = SplitWriter(out, ["train", "test"])
    assert not (tmp_path / "new").exists()  # nothing created before any work
    with pytest.raises(RuntimeError), writer:
        writer.write("train", x, y, class_names=["a"])
        assert out.is_dir()
        raise RuntimeError("interrupted")
    assert not (tmp_path / "new").exists()
    # an existing directory is kept (empty), a committed one keeps its files
    existing = tmp_path / "existing"
    existing.mkdir()
    with pytest.raises(RuntimeError), SplitWriter(existing, ["train"]) as w:
        w.write("train", x, y, class_names=["a"])
        raise RuntimeError
    assert existing.is_dir() and not any(existing.iterdir())
    with SplitWriter(out, ["train"]) as w:
        w.write("train", x, y, class_names=["a"])
        files = w.commit()
    assert files == {"train": out / "train.h5"} and files["train"].is_file()
    assert [p.name for p in out.iterdir()] == ["train.h5"]


def test_phone_sequences_are_written_with_the_frame_labels(corpus):
    from seqprop.ctc import merge_framewise

    with open_dataset(corpus["test"]) as ds:
        assert ds.label_sequences is not None
        for i in range(len(ds)):
            labels = ds.labels(i)
            runs = merge_framewise(ds[i][1])
            # every run of frames is one segment's phone, in order (a segment
            # too short to cover a frame centre is in the labels only)
            it = iter(labels.tolist())
            assert all(any(c == r for c in it) for r in runs.tolist())
            assert 0 < len(labels) and labels.max() < len(PHONES)
