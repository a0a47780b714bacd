"""``seqprop prepare arrays``: .npz files of any target kind into HDF5, stratified split."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from seqprop.corpora.arrays import stratified_split
from seqprop.data import open_dataset
from seqprop.heads import TargetKind


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "seqprop", "prepare", "arrays", *map(str, args)],
        capture_output=True,
        text=True,
    )


def _ragged(rng, n, width=3):
    out = np.empty(n, dtype=object)
    for i in range(n):
        out[i] = rng.normal(size=(int(rng.integers(2, 7)), width))
    return out


def test_sequence_classes_as_strings_split_stratified(tmp_path):
    rng = np.random.default_rng(0)
    x = _ragged(rng, 40)
    labels = np.array(["walk"] * 20 + ["run"] * 12 + ["sit"] * 8)
    np.savez(tmp_path / "a.npz", inputs=x, seq_targets=labels)
    r = _cli(tmp_path / "a.npz", tmp_path / "out", "--validation", "0.25", "--seed", "3")
    assert r.returncode == 0, r.stderr
    with (
        open_dataset(tmp_path / "out" / "train.h5") as train,
        open_dataset(tmp_path / "out" / "validation.h5") as valid,
    ):
        assert train.target_kind is valid.target_kind is TargetKind.SEQUENCE_CLASS
        assert train.class_names == ["run", "sit", "walk"]  # sorted names
        assert valid.class_counts().tolist() == [3, 2, 5]  # a quarter of each class
        assert train.class_counts().tolist() == [9, 6, 15]
        # every sequence lands in one file, unchanged
        seen = [train[i][0] for i in range(len(train))] + [valid[i][0] for i in range(len(valid))]
        assert sorted(float(s.sum()) for s in seen) == pytest.approx(
            sorted(float(np.asarray(s, np.float32).sum()) for s in x)
        )
    # the same seed gives the same split, another seed another one
    assert stratified_split(40, 0.25, 3, [0] * 20 + [1] * 20) == stratified_split(
        40, 0.25, 3, [0] * 20 + [1] * 20
    )
    assert stratified_split(40, 0.25, 3, None)[1] != stratified_split(40, 0.25, 4, None)[1]


def test_dense_float_targets_with_lengths_and_frame_classes(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 5, 2))
    lengths = np.array([5, 3, 1, 4, 5, 2])
    y = rng.normal(size=(6, 5, 2))
    np.savez(tmp_path / "v.npz", inputs=x, targets=y, lengths=lengths, target_names=["u", "v"])
    assert _cli(tmp_path / "v.npz", tmp_path / "v").returncode == 0
    with open_dataset(tmp_path / "v" / "train.h5") as ds:
        assert ds.target_kind is TargetKind.FRAME_VALUES
        assert ds.lengths.tolist() == lengths.tolist()
        assert ds.class_names == ["u", "v"]
        np.testing.assert_allclose(ds[3][1], y[3, :4], rtol=1e-6)
    ys = np.empty(6, dtype=object)
    for i, n in enumerate(lengths):
        ys[i] = rng.integers(0, 4, size=n)
    xs = np.empty(6, dtype=object)
    for i, n in enumerate(lengths):
        xs[i] = x[i, :n]
    np.savez(tmp_path / "f.npz", inputs=xs, targets=ys)
    r = _cli(tmp_path / "f.npz", tmp_path / "f", "--class-names", "a,b,c,d", "--name", "test")
    assert r.returncode == 0, r.stderr
    with open_dataset(tmp_path / "f" / "test.h5") as ds:
        assert ds.target_kind is TargetKind.FRAME_CLASS
        assert ds.class_names == ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    ("arrays", "args", "message"),
    [
        ({"x": np.zeros((2, 3, 1))}, (), "no array 'inputs'"),
        ({"inputs": np.zeros((2, 3, 1))}, (), "no targets"),
        ({"inputs": np.zeros((2, 3, 1)), "seq_targets": [0, 1, 1]}, (), r"shape \(2,\)"),
        ({"inputs": np.zeros((2, 3, 1)), "seq_targets": [0.5, 1]}, (), "integers or strings"),
        (
            {"inputs": np.zeros((2, 3, 1)), "seq_targets": [0, 3]},
            ("--class-names", "a,b"),
            "seq_targets, sequence 1 .* target 3, outside",
        ),
        (
            {"inputs": np.full((2, 3, 1), np.nan), "seq_targets": [0, 1]},
            (),
            "inputs, sequence 0 .* frame 0 feature 0 is NaN",
        ),
        ({"inputs": np.zeros((4, 3, 1)), "seq_targets": [0, 1, 0, 1]}, ("--validation", "1.5"), ""),
        ({"inputs": np.zeros((2, 3, 1)), "seq_targets": [0, 1]}, ("--validation", "0.1"), "leaves"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, arrays, args, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    r = _cli(tmp_path / "bad.npz", tmp_path / "out", *args)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    import re

    assert re.search(message, r.stderr), r.stderr


def test_missing_or_unreadable_file(tmp_path):
    r = _cli(tmp_path / "none.npz", tmp_path / "out")
    assert r.returncode == 2 and "no such file" in r.stderr
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    r = _cli(tmp_path / "junk.npz", tmp_path / "out")
    assert r.returncode == 2 and "not a readable .npz file" in r.stderr
