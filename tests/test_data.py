"""Tests of seqprop.data: the HDF5 sequence format, its validation, reading and writing."""

import json
import os
import pickle

import h5py
import numpy as np
import pytest

import seqprop
import seqprop.data as data
from seqprop.cli import main as cli_main
from seqprop.data import (
    FORMAT,
    FORMAT_VERSION,
    Batch,
    compute_normalisation,
    list_groups,
    open_dataset,
    write_dataset,
)
from seqprop.errors import DataError

CLASSES = ["aa", "b", "sil"]


def make_sequences(n=12, n_in=4, k=3, seed=0, min_len=1, max_len=30):
    rng = np.random.default_rng(seed)
    xs = [
        rng.normal(size=(int(rng.integers(min_len, max_len + 1)), n_in)).astype(np.float32)
        for _ in range(n)
    ]
    ys = [rng.integers(-1, k, size=len(x)).astype(np.int64) for x in xs]
    return xs, ys


@pytest.fixture
def seqs():
    return make_sequences()


@pytest.fixture
def good_file(tmp_path, seqs):
    xs, ys = seqs
    tags = [f"dr1/spk{i}/sx{i}" for i in range(len(xs))]
    return write_dataset(tmp_path / "good.h5", xs, ys, class_names=CLASSES, tags=tags)


def write_raw(
    path,
    xs,
    ys,
    *,
    drop=(),
    replace=None,
    attrs=None,
    drop_attrs=(),
    fixed_strings=False,
    chunks=None,
    compression=None,
    group=None,
):
    """Write a file with plain h5py (not via write_dataset), optionally breaking it."""
    lengths = np.array([len(x) for x in xs], dtype=np.int64)
    items = {
        "inputs": np.concatenate(xs).astype(np.float32),
        "targets": np.concatenate(ys).astype(np.int32),
        "seq_lengths": lengths,
        "seq_tags": [f"utt{i}" for i in range(len(xs))],
    }
    items.update(replace or {})
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "class_names": CLASSES}
    meta.update(attrs or {})
    with h5py.File(path, "a" if group else "w") as f:
        root = f.require_group(group) if group else f
        for name, value in items.items():
            if name in drop:
                continue
            if name == "seq_tags" and isinstance(value, list):
                if fixed_strings:
                    root[name] = np.array([v.encode() for v in value], dtype="S")
                else:
                    root.create_dataset(name, data=value, dtype=h5py.string_dtype())
            else:
                kw = {}
                if name == "inputs" and (chunks or compression):
                    kw = {"chunks": chunks, "compression": compression}
                root.create_dataset(name, data=value, **kw)
        for name, value in meta.items():
            if name in drop_attrs:
                continue
            if name == "class_names" and isinstance(value, list):
                if fixed_strings:
                    root.attrs[name] = np.array([v.encode() for v in value], dtype="S")
                else:
                    root.attrs[name] = value  # h5py stores a list of str as vlen utf-8
            else:
                root.attrs[name] = value
    return path


def assert_same(ds, xs, ys):
    assert len(ds) == len(xs)
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        dx, dy = ds[i]
        assert dx.dtype == np.float32 and dy.dtype == np.int32
        np.testing.assert_array_equal(dx, x)
        np.testing.assert_array_equal(dy, y)


# ---------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------


def test_round_trip_streamed_and_in_memory(good_file, seqs):
    xs, ys = seqs
    with open_dataset(good_file) as st, open_dataset(good_file, in_memory=True) as mem:
        for ds in (st, mem):
            assert_same(ds, xs, ys)
            assert ds.input_size == 4 and ds.num_classes == 3
            assert ds.class_names == CLASSES
            assert ds.tags[3] == "dr1/spk3/sx3"
            assert ds.n_frames == sum(len(x) for x in xs)
            assert ds.lengths.dtype == np.int64 and ds.offsets.dtype == np.int64
            assert ds.offsets[0] == 0 and ds.offsets[-1] == ds.n_frames
            np.testing.assert_array_equal(np.diff(ds.offsets), ds.lengths)
        assert st.in_memory is False and mem.in_memory is True
        # iteration, negative indices, targets, batches agree between the two
        for (a, b), (c, d) in zip(st, mem, strict=True):
            np.testing.assert_array_equal(a, c)
            np.testing.assert_array_equal(b, d)
        np.testing.assert_array_equal(st[-1][0], xs[-1])
        np.testing.assert_array_equal(st.read_targets(), np.concatenate(ys))
        np.testing.assert_array_equal(mem.read_targets(), np.concatenate(ys))
        for bs, sort in ((1, False), (5, False), (4, True)):
            kw = {"shuffle": True, "seed": 11, "sort_by_length": sort}
            for b1, b2 in zip(st.iter_batches(bs, **kw), mem.iter_batches(bs, **kw), strict=True):
                np.testing.assert_array_equal(b1.indices, b2.indices)
                np.testing.assert_array_equal(b1.x, b2.x)
                np.testing.assert_array_equal(b1.y, b2.y)
        np.testing.assert_array_equal(st.class_counts(), mem.class_counts())


def test_written_file_layout(good_file, seqs):
    xs, _ = seqs
    with h5py.File(good_file, "r") as f:
        assert f["inputs"].dtype == np.float32 and f["inputs"].shape == (
            sum(map(len, xs)),
            4,
        )
        assert f["targets"].dtype == np.int16
        assert f["seq_lengths"].dtype == np.int64
        assert h5py.check_string_dtype(f["seq_tags"].dtype).encoding == "utf-8"
        assert f.attrs["format"] == FORMAT
        assert f.attrs["format_version"] == 1
        assert list(f.attrs["class_names"]) == CLASSES


def test_many_classes_use_int32_targets(tmp_path):
    k = 40000
    xs = [np.zeros((3, 2), np.float32)]
    ys = [np.array([0, k - 1, -1])]
    path = write_dataset(tmp_path / "k.h5", xs, ys, class_names=[f"c{i}" for i in range(k)])
    with h5py.File(path, "r") as f:
        assert f["targets"].dtype == np.int32
    with open_dataset(path) as ds:
        assert ds.num_classes == k
        assert ds[0][1].tolist() == [0, k - 1, -1]


def test_optional_attributes_round_trip(tmp_path, seqs):
    xs, ys = seqs
    mean, std = np.arange(4.0), np.arange(1.0, 5.0)
    path = write_dataset(
        tmp_path / "o.h5",
        xs,
        ys,
        class_names=CLASSES,
        feature_names=["c1", "c2", "c3", "énergie"],
        source="synthetic, seed 0",
        mean=mean,
        std=std,
    )
    with open_dataset(path) as ds:
        assert ds.feature_names == ["c1", "c2", "c3", "énergie"]
        assert ds.source == "synthetic, seed 0"
        np.testing.assert_array_equal(ds.mean, mean)
        np.testing.assert_array_equal(ds.std, std)
        assert ds.tags == [f"seq{i}" for i in range(len(xs))]
        assert ds.summary()["has_normalisation"] is True
    with open_dataset(path, normalise=True) as ds:
        np.testing.assert_allclose(ds[2][0], (xs[2] - mean) / std, rtol=1e-6)
    with open_dataset(path, normalise=(np.ones(4), 2 * np.ones(4)), in_memory=True) as ds:
        np.testing.assert_allclose(ds[2][0], (xs[2] - 1) / 2, rtol=1e-6)
        np.testing.assert_allclose(next(iter(ds))[0], (xs[0] - 1) / 2, rtol=1e-6)


def test_normalise_true_without_stats(good_file):
    with pytest.raises(DataError, match="mean"):
        open_dataset(good_file, normalise=True)


def test_unicode_tags_and_class_names(tmp_path):
    xs = [np.ones((2, 1), np.float32)] * 2
    ys = [np.array([0, 1])] * 2
    path = write_dataset(
        tmp_path / "u.h5", xs, ys, class_names=["ʃ", "ə"], tags=["утт/1", "発話/2"]
    )
    with open_dataset(path) as ds:
        assert ds.class_names == ["ʃ", "ə"]
        assert ds.tags == ["утт/1", "発話/2"]


@pytest.mark.parametrize("fixed_strings", [False, True])
@pytest.mark.parametrize(
    "layout", [{}, {"chunks": (7, 4)}, {"chunks": (16, 4), "compression": "gzip"}]
)
def test_plain_h5py_file_opens(tmp_path, seqs, fixed_strings, layout):
    """A file written by plain h5py following the documented schema opens."""
    xs, ys = seqs
    path = write_raw(tmp_path / "raw.h5", xs, ys, fixed_strings=fixed_strings, **layout)
    with h5py.File(path, "r") as f:  # int32 targets, the layout asked for
        assert f["targets"].dtype == np.int32
        assert f["inputs"].chunks == layout.get("chunks")
    for in_memory in (False, True):
        with open_dataset(path, in_memory=in_memory) as ds:
            assert_same(ds, xs, ys)
            assert ds.class_names == CLASSES
            assert ds.tags == [f"utt{i}" for i in range(len(xs))]
            assert [b.indices.tolist() for b in ds.iter_batches(5)] == [
                list(range(0, 5)),
                list(range(5, 10)),
                list(range(10, 12)),
            ]


def test_matlab_style_attributes_and_other_dtypes(tmp_path, seqs):
    """One-element array attributes, float64 inputs, uint8 targets, int32 lengths."""
    xs, ys = seqs
    ys = [np.where(y < 0, 0, y) for y in ys]
    path = write_raw(
        tmp_path / "m.h5",
        xs,
        ys,
        replace={
            "inputs": np.concatenate(xs).astype(np.float64),
            "targets": np.concatenate(ys).astype(np.uint8),
            "seq_lengths": np.array([len(x) for x in xs], dtype=np.int32),
        },
        attrs={
            "format_version": np.array([1.0]),
            "format": np.array([FORMAT.encode()]),
            "source": np.bytes_(b"matlab"),
        },
    )
    with open_dataset(path) as ds:
        assert_same(ds, xs, ys)
        assert ds.source == "matlab"


# ---------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------

BAD_CASES = {
    # name: (write_raw kwargs builder(xs, ys) -> kwargs, dataset named, sequence named)
    "missing inputs": (lambda xs, ys: {"drop": ["inputs"]}, "'/inputs'", None),
    "missing targets": (lambda xs, ys: {"drop": ["targets"]}, "'/targets'", None),
    "missing seq_lengths": (lambda xs, ys: {"drop": ["seq_lengths"]}, "'/seq_lengths'", None),
    "missing seq_tags": (lambda xs, ys: {"drop": ["seq_tags"]}, "'/seq_tags'", None),
    "float targets": (
        lambda xs, ys: {"replace": {"targets": np.concatenate(ys).astype(np.float32)}},
        "'/targets'",
        None,
    ),
    "integer inputs": (
        lambda xs, ys: {"replace": {"inputs": np.concatenate(xs).astype(np.int32)}},
        "'/inputs'",
        None,
    ),
    "1-D inputs": (
        lambda xs, ys: {"replace": {"inputs": np.concatenate(xs)[:, 0]}},
        "'/inputs'",
        None,
    ),
    "targets shape": (
        lambda xs, ys: {"replace": {"targets": np.concatenate(ys)[:-1]}},
        "'/targets'",
        None,
    ),
    "tags shape": (
        lambda xs, ys: {"replace": {"seq_tags": ["a", "b"]}},
        "'/seq_tags'",
        None,
    ),
    "fractional float lengths": (  # whole floats (MATLAB's double) are read
        lambda xs, ys: {"replace": {"seq_lengths": np.array([len(x) for x in xs], float) + 0.5}},
        "'/seq_lengths'",
        "sequence 0",
    ),
    "sum too large": (
        lambda xs, ys: {"replace": {"seq_lengths": np.array([len(x) for x in xs]) + 1}},
        "'/seq_lengths'",
        "sequence 1",
    ),
    "sum too small": (
        lambda xs, ys: {"replace": {"seq_lengths": np.array([len(x) for x in xs[:-1]] + [1])}},
        "'/seq_lengths'",
        None,
    ),
    "zero-length sequence": (
        lambda xs, ys: {
            "replace": {
                "seq_lengths": np.array([len(x) for x in xs[:4]] + [0] + [len(x) for x in xs[4:]]),
                "seq_tags": [f"utt{i}" for i in range(len(xs) + 1)],
            }
        },
        "'/seq_lengths'",
        "sequence 4 (tag 'utt4')",
    ),
    "target out of range": (
        lambda xs, ys: {"replace": {"targets": _poke(np.concatenate(ys), xs, 5, 2, 3)}},
        "'/targets'",
        "sequence 5 (tag 'utt5') frame 2",
    ),
    "target -2": (
        lambda xs, ys: {"replace": {"targets": _poke(np.concatenate(ys), xs, 7, 0, -2)}},
        "'/targets'",
        "sequence 7 (tag 'utt7') frame 0",
    ),
    "NaN input": (
        lambda xs, ys: {"replace": {"inputs": _poke(np.concatenate(xs), xs, 6, 1, np.nan)}},
        "'/inputs'",
        "sequence 6 (tag 'utt6') frame 1",
    ),
    "inf input": (
        lambda xs, ys: {"replace": {"inputs": _poke(np.concatenate(xs), xs, 9, 3, -np.inf)}},
        "'/inputs'",
        "sequence 9 (tag 'utt9') frame 3",
    ),
    "float64 overflow": (
        lambda xs, ys: {
            "replace": {"inputs": _poke(np.concatenate(xs).astype(float), xs, 2, 0, 1e300)}
        },
        "'/inputs'",
        "sequence 2 (tag 'utt2') frame 0",
    ),
}


def _poke(flat, xs, seq, frame, value):
    flat = flat.copy()
    flat[sum(len(x) for x in xs[:seq]) + frame] = value
    return flat


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_validation_errors_name_file_dataset_and_sequence(tmp_path, case):
    xs, ys = make_sequences(min_len=4)
    make_kwargs, dataset, sequence = BAD_CASES[case]
    path = write_raw(tmp_path / "bad.h5", xs, ys, **make_kwargs(xs, ys))
    with pytest.raises(DataError) as info:
        open_dataset(path)
    msg = str(info.value)
    assert str(path) in msg
    assert f"dataset {dataset}" in msg
    if sequence is not None:
        assert sequence in msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    "attrs, drop_attrs, match",
    [
        ({"format": "something.else"}, (), "'format'.*'something.else'"),
        ({"format_version": 2}, (), "'format_version' .* is 2"),
        ({"format_version": "one"}, (), "'format_version'.*integer"),
        ({}, ("format",), "'format'.*missing"),
        ({}, ("format_version",), "'format_version'.*missing"),
        ({}, ("class_names",), "'class_names'.*missing"),
        ({"class_names": np.array([1, 2, 3])}, (), "'class_names'.*strings"),
        ({"feature_names": ["a"]}, (), "'feature_names'.*1 names"),
        ({"mean": np.zeros(3)}, (), "'mean'"),
        ({"std": np.array([1.0, 0.0, 1.0, 1.0])}, (), r"'std'.*\[1\]"),
    ],
)
def test_attribute_errors(tmp_path, attrs, drop_attrs, match):
    xs, ys = make_sequences()
    path = write_raw(tmp_path / "bad.h5", xs, ys, attrs=attrs, drop_attrs=drop_attrs)
    with pytest.raises(DataError, match=match) as info:
        open_dataset(path)
    assert str(path) in str(info.value)


def test_validation_in_a_group_names_the_group(tmp_path):
    xs, ys = make_sequences(min_len=4)
    flat = _poke(np.concatenate(xs), xs, 3, 2, np.nan)
    path = write_raw(tmp_path / "g.h5", xs, ys, group="train", replace={"inputs": flat})
    with pytest.raises(DataError, match=r"dataset '/train/inputs': sequence 3 \(tag 'utt3'\)"):
        open_dataset(path, group="train")


def test_check_values_false_skips_the_scan(tmp_path):
    xs, ys = make_sequences(min_len=4)
    path = write_raw(
        tmp_path / "n.h5", xs, ys, replace={"inputs": _poke(np.concatenate(xs), xs, 3, 2, np.nan)}
    )
    with open_dataset(path, check_values=False) as ds:
        assert np.isnan(ds[3][0][2]).any()


def test_scan_in_blocks_finds_late_errors(tmp_path, monkeypatch):
    """With tiny blocks, the scan still finds the first offending sequence."""
    monkeypatch.setattr(data.schema, "BLOCK_BYTES", 64)
    xs, ys = make_sequences(n=30, min_len=4)
    flat = _poke(np.concatenate(ys), xs, 27, 3, 99)
    path = write_raw(tmp_path / "late.h5", xs, ys, replace={"targets": flat}, chunks=(5, 4))
    with pytest.raises(DataError, match=r"sequence 27 \(tag 'utt27'\) frame 3"):
        open_dataset(path)
    good = write_raw(tmp_path / "ok.h5", xs, ys, chunks=(5, 4))
    with open_dataset(good, in_memory=True) as mem, open_dataset(good) as st:
        assert_same(mem, xs, ys)
        assert [len(x) for x, _ in st] == [len(x) for x in xs]


def test_truncated_file(tmp_path, good_file):
    raw = good_file.read_bytes()
    for keep in (len(raw) // 2, len(raw) - 100, 100, 4):
        bad = tmp_path / f"trunc{keep}.h5"
        bad.write_bytes(raw[:keep])
        with pytest.raises(DataError) as info:
            open_dataset(bad)
        assert str(bad) in str(info.value)


def test_non_hdf5_missing_and_directory(tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("this is not HDF5\n")
    with pytest.raises(DataError, match="not an HDF5 file") as info:
        open_dataset(text)
    assert str(text) in str(info.value)
    with pytest.raises(DataError, match="no such file"):
        open_dataset(tmp_path / "missing.h5")
    with pytest.raises(DataError, match="directory"):
        open_dataset(tmp_path)
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    with pytest.raises(DataError):
        open_dataset(empty)


def test_hdf5_without_schema(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(DataError, match="not a seqprop sequence file"):
        open_dataset(path)


# ---------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------


def test_overwrite_protection(tmp_path, seqs):
    xs, ys = seqs
    path = write_dataset(tmp_path / "d.h5", xs, ys, class_names=CLASSES)
    before = path.read_bytes()
    with pytest.raises(DataError, match="exists"):
        write_dataset(path, xs[:2], ys[:2], class_names=CLASSES)
    assert path.read_bytes() == before
    write_dataset(path, xs[:2], ys[:2], class_names=CLASSES, overwrite=True)
    with open_dataset(path) as ds:
        assert len(ds) == 2


def _boom_in_the_middle(monkeypatch):
    calls = {"n": 0}
    real = np.concatenate

    def concatenate(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # after the inputs block was written
            raise RuntimeError("simulated failure while writing")
        return real(*args, **kwargs)

    monkeypatch.setattr(np, "concatenate", concatenate)


def test_atomic_write_new_file(tmp_path, seqs, monkeypatch):
    xs, ys = seqs
    _boom_in_the_middle(monkeypatch)
    with pytest.raises(RuntimeError, match="simulated"):
        write_dataset(tmp_path / "new.h5", xs, ys, class_names=CLASSES)
    assert list(tmp_path.iterdir()) == []  # no destination, no temporary left


def test_atomic_write_keeps_existing_file(tmp_path, seqs, monkeypatch):
    xs, ys = seqs
    path = write_dataset(tmp_path / "d.h5", xs, ys, class_names=CLASSES)
    before = path.read_bytes()
    _boom_in_the_middle(monkeypatch)
    with pytest.raises(RuntimeError, match="simulated"):
        write_dataset(path, xs[:3], ys[:3], class_names=CLASSES, overwrite=True)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.h5"]
    monkeypatch.undo()
    split_file = write_dataset(tmp_path / "s.h5", xs, ys, class_names=CLASSES, group="train")
    before = split_file.read_bytes()
    _boom_in_the_middle(monkeypatch)
    with pytest.raises(RuntimeError, match="simulated"):
        write_dataset(split_file, xs, ys, class_names=CLASSES, group="test")
    assert split_file.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.h5", "s.h5"]
    monkeypatch.undo()
    assert list_groups(split_file) == ["train"]


def test_validation_happens_before_writing(tmp_path, seqs):
    xs, ys = seqs
    xs = list(xs)
    xs[5] = np.ones((3, 4), np.float32)
    ys = list(ys)
    ys[5] = np.zeros(3, int)
    xs[5][1, 2] = np.nan
    with pytest.raises(
        DataError, match=r"inputs, sequence 5 \(tag 'x5'\): frame 1 feature 2 is NaN"
    ):
        write_dataset(
            tmp_path / "d.h5", xs, ys, class_names=CLASSES, tags=[f"x{i}" for i in range(12)]
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "change, match",
    [
        (
            lambda xs, ys, kw: ys.__setitem__(2, ys[2] + 3),
            r"targets, sequence 2.*outside \[-1, 3\)",
        ),
        (lambda xs, ys, kw: ys.__setitem__(2, ys[2] - 5), r"targets, sequence 2"),
        (lambda xs, ys, kw: ys.__setitem__(2, ys[2].astype(float)), "sequence 2.*integer"),
        (lambda xs, ys, kw: ys.__setitem__(2, ys[2][:-1]), r"targets, sequence 2.*shape"),
        (lambda xs, ys, kw: xs.__setitem__(4, np.zeros((0, 4))), r"sequence 4.*zero-length"),
        (lambda xs, ys, kw: xs.__setitem__(4, np.zeros((3, 5))), r"sequence 4.*5 features"),
        (lambda xs, ys, kw: xs.__setitem__(4, np.zeros(3)), r"sequence 4.*2-D"),
        (lambda xs, ys, kw: xs.__setitem__(4, np.full((3, 4), 1e39)), r"sequence 4.*infinite"),
        (lambda xs, ys, kw: ys.pop(), "12 input sequences but 11"),
        (lambda xs, ys, kw: kw.update(class_names=[]), "class_names is empty"),
        (lambda xs, ys, kw: kw.update(class_names=["a", "b", "a"]), "'a' twice"),
        (lambda xs, ys, kw: kw.update(class_names="abc"), "not one string"),
        (lambda xs, ys, kw: kw.update(class_names=["a", 2, "c"]), r"class_names\[1\]"),
        (lambda xs, ys, kw: kw.update(tags=["t"]), "1 tags for 12"),
        (lambda xs, ys, kw: kw.update(feature_names=["f"]), "feature_names"),
        (lambda xs, ys, kw: kw.update(mean=np.zeros(3)), "mean"),
        (lambda xs, ys, kw: kw.update(std=np.zeros(4)), r"std\[0\]"),
        (lambda xs, ys, kw: kw.update(source=3), "source"),
        (lambda xs, ys, kw: (xs.clear(), ys.clear()), "inputs is empty"),
    ],
)
def test_write_rejects(tmp_path, seqs, change, match):
    xs, ys = list(seqs[0]), list(seqs[1])
    kw = {"class_names": CLASSES}
    change(xs, ys, kw)
    with pytest.raises(DataError, match=match):
        write_dataset(tmp_path / "d.h5", xs, ys, **kw)
    assert list(tmp_path.iterdir()) == []


def test_write_into_missing_directory(tmp_path, seqs):
    with pytest.raises(DataError, match="does not exist"):
        write_dataset(tmp_path / "no" / "d.h5", *seqs, class_names=CLASSES)


def test_groups(tmp_path, seqs):
    xs, ys = seqs
    path = tmp_path / "splits.h5"
    write_dataset(path, xs, ys, class_names=CLASSES, group="train")
    assert list_groups(path) == ["train"]
    with open_dataset(path) as ds:  # the only split: opened without naming it
        assert ds.group == "train" and len(ds) == 12
    write_dataset(path, xs[:3], ys[:3], class_names=CLASSES, group="test")
    assert list_groups(path) == ["test", "train"]
    with pytest.raises(DataError, match="several splits.*test, train"):
        open_dataset(path)
    with pytest.raises(DataError, match="no group 'dev'.*test, train"):
        open_dataset(path, group="dev")
    with open_dataset(path, group="test") as ds:
        assert_same(ds, xs[:3], ys[:3])
    with pytest.raises(DataError, match="group 'test' exists"):
        write_dataset(path, xs[:1], ys[:1], class_names=CLASSES, group="test")
    write_dataset(path, xs[:1], ys[:1], class_names=CLASSES, group="test", overwrite=True)
    with open_dataset(path, group="/test", in_memory=True) as ds:
        assert len(ds) == 1 and ds.group == "test"
    with open_dataset(path, group="train") as ds:
        assert_same(ds, xs, ys)
    root_file = write_dataset(tmp_path / "root.h5", xs, ys, class_names=CLASSES)
    assert list_groups(root_file) == []
    with pytest.raises(DataError, match="split at its root"):
        write_dataset(root_file, xs, ys, class_names=CLASSES, group="test")
    text = tmp_path / "t.h5"
    text.write_text("x")
    with pytest.raises(DataError, match="not an HDF5 file"):
        write_dataset(text, xs, ys, class_names=CLASSES, group="test")


def test_chunked_and_compressed_writes(tmp_path, seqs):
    xs, ys = seqs
    for kw in ({"chunks": True}, {"chunks": (8, 4)}, {"compression": "gzip"}):
        path = write_dataset(tmp_path / "c.h5", xs, ys, class_names=CLASSES, overwrite=True, **kw)
        with h5py.File(path, "r") as f:
            assert f["inputs"].chunks is not None
        with open_dataset(path) as ds:
            assert_same(ds, xs, ys)


def test_file_mode_follows_umask(tmp_path, seqs):
    path = write_dataset(tmp_path / "d.h5", *seqs, class_names=CLASSES)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


# ---------------------------------------------------------------------------
# reading API
# ---------------------------------------------------------------------------


def test_indexing(good_file, seqs):
    xs, _ = seqs
    with open_dataset(good_file) as ds:
        np.testing.assert_array_equal(ds[np.int64(2)][0], xs[2])
        np.testing.assert_array_equal(ds[-12][0], xs[0])
        with pytest.raises(IndexError):
            ds[12]
        with pytest.raises(IndexError):
            ds[-13]
        with pytest.raises(TypeError):
            ds[1.0]
        x, _ = ds[0]
        x[:] = 123  # a fresh array: the dataset is not changed
        assert not np.array_equal(ds[0][0], x)
    assert ds.closed
    with pytest.raises(DataError, match="closed"):
        ds[0]


def test_batches_padding(good_file, seqs):
    xs, ys = seqs
    with open_dataset(good_file) as ds:
        seen = []
        for b in ds.iter_batches(5, shuffle=True, seed=3):
            assert isinstance(b, Batch)
            assert b.x.dtype == np.float32 and b.y.dtype == np.int32
            assert b.lengths.dtype == np.int64 and b.indices.dtype == np.int64
            assert b.x.shape == (b.lengths.max(), len(b.indices), 4)
            assert b.y.shape == b.x.shape[:2]
            for col, i in enumerate(b.indices):
                n = len(xs[i])
                assert b.lengths[col] == n
                np.testing.assert_array_equal(b.x[:n, col], xs[i])
                np.testing.assert_array_equal(b.y[:n, col], ys[i])
                assert np.all(b.x[n:, col] == 0)
                assert np.all(b.y[n:, col] == -1)
            seen.extend(b.indices.tolist())
        assert sorted(seen) == list(range(12))
        assert b.batch_size == len(b.indices) and b.n_frames == b.lengths.sum()


def test_batches_seeded_and_reproducible(good_file):
    with open_dataset(good_file) as ds:

        def order(**kw):
            return [b.indices.tolist() for b in ds.iter_batches(1, **kw)]

        assert order(shuffle=True, seed=1) == order(shuffle=True, seed=1)
        assert order(shuffle=True, seed=1) == order(shuffle=True, rng=np.random.default_rng(1))
        assert order(shuffle=True, seed=1) != order(shuffle=True, seed=2)
        flat = sum(order(shuffle=True, seed=1), [])
        assert sorted(flat) == list(range(12)) and flat != list(range(12))
        assert sum(order(), []) == list(range(12))
        with pytest.raises(ValueError, match="seed or rng"):
            order(seed=1, rng=np.random.default_rng(1))
        assert len(list(ds.iter_batches(5, drop_last=True))) == 2


def test_read_batch_with_repeated_and_unsorted_indices(good_file, seqs):
    xs, _ = seqs
    with open_dataset(good_file) as ds:
        b = ds.read_batch([3, 2, 3, 9])
        for col, i in enumerate([3, 2, 3, 9]):
            np.testing.assert_array_equal(b.x[: len(xs[i]), col], xs[i])
        with pytest.raises(IndexError):
            ds.read_batch([0, 99])


def test_class_counts_and_summary(good_file, seqs):
    _, ys = seqs
    flat = np.concatenate(ys)
    with open_dataset(good_file) as ds:
        counts = ds.class_counts()
        assert counts.tolist() == [int((flat == k).sum()) for k in range(3)]
        s = ds.summary()
    lengths = [len(y) for y in ys]
    assert s["n_sequences"] == 12 and s["n_frames"] == len(flat)
    assert s["input_size"] == 4 and s["num_classes"] == 3
    assert s["length_min"] == min(lengths) and s["length_max"] == max(lengths)
    assert s["length_mean"] == pytest.approx(np.mean(lengths))
    assert s["length_median"] == pytest.approx(np.median(lengths))
    assert s["unlabelled_frames"] == int((flat == -1).sum())
    assert s["class_histogram"] == dict(zip(CLASSES, counts.tolist(), strict=True))
    assert s["has_normalisation"] is False
    json.dumps(s)


def test_compute_normalisation(tmp_path, monkeypatch):
    monkeypatch.setattr(data.schema, "BLOCK_BYTES", 256)  # many blocks
    rng = np.random.default_rng(0)
    xs = [
        (1e4 + rng.normal(size=(rng.integers(5, 40), 3)) * [1, 2, 0]).astype(np.float32)
        for _ in range(20)
    ]
    ys = [np.zeros(len(x), int) for x in xs]
    path = write_dataset(tmp_path / "n.h5", xs, ys, class_names=["a"])
    flat = np.concatenate(xs).astype(np.float64)
    for in_memory in (False, True):
        with open_dataset(path, in_memory=in_memory) as ds:
            mean, std = compute_normalisation(ds)
            assert mean.dtype == np.float64 and std.shape == (3,)
            np.testing.assert_allclose(mean, flat.mean(axis=0), rtol=1e-12)
            np.testing.assert_allclose(std[:2], flat.std(axis=0)[:2], rtol=1e-9)
            assert std[2] == 1e-8  # constant feature: floored at eps
            assert compute_normalisation(ds, eps=0.5)[1][2] == 0.5
    with pytest.raises(ValueError, match="eps"):
        compute_normalisation(ds, eps=0)


def test_pickle_streamed_dataset_reopens(good_file, seqs):
    with open_dataset(good_file) as ds:
        clone = pickle.loads(pickle.dumps(ds))
    with clone:
        assert_same(clone, *seqs)


def test_lazy_export():
    assert seqprop.write_dataset is write_dataset
    assert seqprop.open_dataset is open_dataset


# ---------------------------------------------------------------------------
# seqprop inspect
# ---------------------------------------------------------------------------


def test_cli_inspect(good_file, capsys):
    assert cli_main(["inspect", str(good_file)]) == 0
    out = capsys.readouterr().out
    assert "sequences:         12" in out
    assert "input size:        4" in out
    assert "classes:           3" in out
    for name in CLASSES:
        assert name in out
    with open_dataset(good_file) as ds:
        counts = ds.class_counts()
    hist = [line.split()[0] for line in out.splitlines()[-3:]]
    assert hist == [CLASSES[k] for k in np.argsort(-counts, kind="stable")]


def test_cli_inspect_json_and_top(tmp_path, capsys):
    k = 30
    xs = [np.zeros((k, 1), np.float32)]
    ys = [np.arange(k)]
    path = write_dataset(tmp_path / "k.h5", xs, ys, class_names=[f"c{i}" for i in range(k)])
    assert cli_main(["inspect", str(path), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["num_classes"] == k and len(s["class_histogram"]) == k
    assert cli_main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "10 more classes" in out
    assert cli_main(["inspect", str(path), "--all"]) == 0
    assert "more classes" not in capsys.readouterr().out


def test_cli_inspect_group(tmp_path, seqs, capsys):
    path = tmp_path / "s.h5"
    write_dataset(path, *seqs, class_names=CLASSES, group="a")
    write_dataset(path, *seqs, class_names=CLASSES, group="b")
    assert cli_main(["inspect", str(path), "--group", "b"]) == 0
    assert "group b" in capsys.readouterr().out


def test_cli_inspect_bad_file(tmp_path, capsys):
    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    assert cli_main(["inspect", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("seqprop inspect: error:") and str(bad) in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_normalised_batches_agree_and_keep_zero_padding(tmp_path, seqs):
    xs, ys = seqs
    mean, std = np.full(4, 0.5), np.full(4, 2.0)
    path = write_dataset(tmp_path / "n.h5", xs, ys, class_names=CLASSES, mean=mean, std=std)
    with (
        open_dataset(path, normalise=True) as st,
        open_dataset(path, normalise=True, in_memory=True) as mem,
    ):
        for bs in (1, 5):
            for b1, b2 in zip(st.iter_batches(bs), mem.iter_batches(bs), strict=True):
                np.testing.assert_array_equal(b1.x, b2.x)
                for col, i in enumerate(b1.indices):
                    n = len(xs[i])
                    np.testing.assert_allclose(b1.x[:n, col], (xs[i] - 0.5) / 2, rtol=1e-6)
                    assert np.all(b1.x[n:, col] == 0)


def test_read_batch_bad_indices(good_file):
    with open_dataset(good_file) as ds:
        with pytest.raises(TypeError):
            ds.read_batch([0.5])
        with pytest.raises(TypeError):
            ds.read_batch([])
        with pytest.raises(IndexError, match="-13"):
            ds.read_batch([0, -13])
        np.testing.assert_array_equal(ds.read_batch([-1]).indices, [11])


def test_corrupt_compressed_data(tmp_path, seqs):
    """Damaged bytes inside compressed chunks: a DataError, not an h5py traceback."""
    xs, ys = make_sequences(n=40, min_len=50, max_len=60)
    path = write_dataset(
        tmp_path / "z.h5", xs, ys, class_names=CLASSES, compression="gzip", chunks=(64, 4)
    )
    with h5py.File(path, "r") as f:
        dset = f["inputs"]
        offset = dset.id.get_chunk_info(3).byte_offset
    raw = bytearray(path.read_bytes())
    raw[offset : offset + 200] = bytes(200)
    bad = tmp_path / "bad.h5"
    bad.write_bytes(bytes(raw))
    with pytest.raises(DataError) as info:
        open_dataset(bad)
    assert str(bad) in str(info.value) and "'/inputs'" in str(info.value)
    with open_dataset(bad, check_values=False) as ds:  # found on read instead
        with pytest.raises(DataError, match="cannot read"):
            for _ in ds:
                pass


# ---------------------------------------------------------------------------
# one padding, one normalisation, the shared preprocessing
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("in_memory", [False, True])
@pytest.mark.parametrize("normalise", [False, True])
def test_read_batch_is_pad_sequences_of_the_sequences(tmp_path, seqs, in_memory, normalise):
    xs, ys = seqs
    stats = {"mean": np.linspace(-1, 1, 4), "std": np.linspace(0.3, 3, 4)}
    path = write_dataset(tmp_path / "p.h5", xs, ys, class_names=CLASSES, chunks=(5, 4), **stats)
    with open_dataset(path, in_memory=in_memory, normalise=normalise) as ds:
        for idx in ([4], [0, 1, 2], [11, 3, 3, 0, 7], list(range(12))):
            batch = ds.read_batch(idx)
            x, y, lengths = data.pad_sequences([ds[i][0] for i in idx], [ds[i][1] for i in idx])
            assert batch.x.tobytes() == x.tobytes() and batch.y.tobytes() == y.tobytes()
            np.testing.assert_array_equal(batch.lengths, lengths)
            if normalise:  # float32 arithmetic, as apply_normalisation does it
                i = idx[-1]
                mean32, std32 = stats["mean"].astype(np.float32), stats["std"].astype(np.float32)
                expect = (xs[i] - mean32) / std32
                assert expect.dtype == np.float32
                assert batch.x[: len(xs[i]), -1].tobytes() == expect.tobytes()


def test_apply_normalisation_in_place_and_new():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 3)).astype(np.float32)
    mean, std = np.array([0.1, -2.0, 3.0]), np.array([0.5, 1.5, 4.0])
    out = data.apply_normalisation(x.astype(np.float64), mean, std)
    assert out.dtype == np.float64
    assert out.tobytes() == ((x.astype(np.float64) - mean) / std).tobytes()
    m32, s32 = mean.astype(np.float32), std.astype(np.float32)
    y = x.copy()
    assert data.apply_normalisation(y, m32, s32, out=y) is y
    assert y.tobytes() == ((x - m32) / s32).tobytes()
    col = np.zeros((4, 2, 3), np.float32)  # a strided view of a padded batch
    col[:3, 1] = x[:3]
    data.apply_normalisation(col[:3, 1], m32, s32, out=col[:3, 1])
    assert col[:3, 1].tobytes() == ((x[:3] - m32) / s32).tobytes()
    assert not col[3].any() and not col[:, 0].any()


@pytest.mark.parametrize("cache", [False, True])
def test_prepared_split_batches(good_file, seqs, cache):
    xs, ys = seqs
    pre = data.Preprocessor(np.float64, mean=np.full(4, 0.25), std=np.full(4, 2.0), delay=2)
    with open_dataset(good_file) as ds:
        split = data.PreparedSplit(ds, pre, cache=cache)
        assert len(split) == len(xs) and split.tags == ds.tags
        np.testing.assert_array_equal(split.lengths, [len(x) + 2 for x in xs])
        idx = [3, 0, 9]
        x, y, lengths = split.batch(np.array(idx))
        assert x.dtype == np.float64 and y.dtype == np.int32
        np.testing.assert_array_equal(lengths, [len(xs[i]) + 2 for i in idx])
        for b, i in enumerate(idx):
            n = len(xs[i])
            np.testing.assert_array_equal(x[:n, b], (xs[i].astype(np.float64) - 0.25) / 2.0)
            assert not x[n:, b].any()
            np.testing.assert_array_equal(y[2 : n + 2, b], ys[i])
            assert (y[:2, b] == -1).all() and (y[n + 2 :, b] == -1).all()
        one = split.batch([5])  # one sequence: a view, no copy
        assert np.shares_memory(one[0], split.sequence(5)[0]) is cache
        np.testing.assert_array_equal(one[0][:, 0], split.sequence(5)[0])
        # prediction's batches: the same preprocessing, without targets
        px, plen = pre.batch([ds[i][0] for i in idx])
        assert px.tobytes() == x.tobytes()
        np.testing.assert_array_equal(plen, lengths)


def test_open_split_picks_the_role_group(tmp_path, seqs):
    xs, ys = seqs
    path = tmp_path / "g.h5"
    write_dataset(path, xs[:3], ys[:3], class_names=CLASSES, group="train")
    write_dataset(path, xs[:5], ys[:5], class_names=CLASSES, group="test")
    with data.open_split(str(path), None, False, "test") as ds:
        assert ds.group == "test" and len(ds) == 5
    with pytest.raises(DataError, match=r"data.validation = .*no such file"):
        data.open_split(str(tmp_path / "none.h5"), None, False, "validation")
    with pytest.raises(DataError, match="several splits"):
        data.open_split(str(path), None, False, "validation")


def test_moved_names_stay_importable():
    import seqprop.evaluation
    import seqprop.training

    assert seqprop.evaluation.Preprocessor is data.Preprocessor
    assert seqprop.evaluation.check_dataset_matches is data.check_dataset_matches
    assert seqprop.evaluation.delay_sequence is data.delay_sequence
    assert seqprop.training.delay_sequence is data.delay_sequence


def test_no_private_names_cross_modules():
    """Modules share only public names: nothing imports an underscore name from seqprop.data."""
    import ast
    import pathlib

    root = pathlib.Path(seqprop.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("seqprop"):
                inside_data = path.parent.name == "data" or (node.module or "").startswith(
                    "seqprop.data"
                )
                for alias in node.names:
                    if inside_data and alias.name.startswith("_"):
                        offenders.append(f"{path.relative_to(root)}: {node.module}.{alias.name}")
    assert offenders == []
