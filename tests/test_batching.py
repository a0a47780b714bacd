"""Tests of seqprop.data.batching: padding and batch orders."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqprop.data import as_rng, batch_order, pad_sequences

lengths_st = st.lists(st.integers(0, 40), min_size=1, max_size=60)


def test_pad_sequences_layout():
    xs = [np.ones((3, 2)), 2 * np.ones((1, 2)), 3 * np.ones((5, 2))]
    ys = [np.array([0, 1, 2]), np.array([4]), np.array([-1, 1, 1, 1, 0])]
    x, y, lengths = pad_sequences(xs, ys)
    assert x.shape == (5, 3, 2) and x.dtype == np.float32
    assert y.shape == (5, 3) and y.dtype == np.int32
    assert lengths.dtype == np.int64 and lengths.tolist() == [3, 1, 5]
    assert np.all(x[:3, 0] == 1) and np.all(x[3:, 0] == 0)
    assert np.all(x[:1, 1] == 2) and np.all(x[1:, 1] == 0)
    assert np.all(x[:, 2] == 3)
    assert y[:, 0].tolist() == [0, 1, 2, -1, -1]
    assert y[:, 1].tolist() == [4, -1, -1, -1, -1]
    assert y[:, 2].tolist() == [-1, 1, 1, 1, 0]


def test_pad_sequences_dtype_and_no_targets():
    x, y, lengths = pad_sequences([np.zeros((2, 3))], None, dtype=np.float64)
    assert x.dtype == np.float64 and y is None and lengths.tolist() == [2]


@pytest.mark.parametrize(
    "xs, ys, match",
    [
        ([], [], "xs"),
        ([np.zeros(3)], [np.zeros(3, int)], r"xs\[0\]"),
        ([np.zeros((2, 3)), np.zeros((2, 4))], [np.zeros(2, int)] * 2, r"xs\[1\]"),
        ([np.zeros((2, 3))], [np.zeros(3, int)], r"ys\[0\]"),
        ([np.zeros((2, 3))], [np.zeros(2)], r"ys\[0\].*integer"),
        ([np.zeros((2, 3))], [np.zeros(2, int)] * 2, "ys has 2"),
    ],
)
def test_pad_sequences_rejects(xs, ys, match):
    with pytest.raises(ValueError, match=match):
        pad_sequences(xs, ys)


@settings(max_examples=50, deadline=None)
@given(lengths=lengths_st.filter(lambda v: max(v) > 0), n_in=st.integers(1, 4))
def test_pad_sequences_property(lengths, n_in):
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(n, n_in)) + 5 for n in lengths]  # never zero
    ys = [rng.integers(0, 7, size=n) for n in lengths]
    x, y, out_len = pad_sequences(xs, ys)
    assert x.shape == (max(lengths), len(lengths), n_in)
    assert out_len.tolist() == lengths
    for b, n in enumerate(lengths):
        np.testing.assert_array_equal(x[:n, b], xs[b].astype(np.float32))
        assert np.all(x[n:, b] == 0)
        np.testing.assert_array_equal(y[:n, b], ys[b])
        assert np.all(y[n:, b] == -1)


def test_batch_order_shuffle_is_seeded_permutation():
    lengths = np.arange(1, 101)
    a = batch_order(lengths, 1, rng=np.random.default_rng(3))
    b = batch_order(lengths, 1, rng=np.random.default_rng(3))
    c = batch_order(lengths, 1, rng=np.random.default_rng(4))
    flat_a = np.concatenate(a)
    assert all(len(batch) == 1 for batch in a)
    assert sorted(flat_a.tolist()) == list(range(100))
    assert flat_a.tolist() != list(range(100))
    assert flat_a.tolist() == np.concatenate(b).tolist()
    assert flat_a.tolist() != np.concatenate(c).tolist()
    assert flat_a.dtype == np.int64


def test_batch_order_integer_seed_same_as_generator():
    lengths = np.arange(30)
    assert [b.tolist() for b in batch_order(lengths, 4, rng=7)] == [
        b.tolist() for b in batch_order(lengths, 4, rng=np.random.default_rng(7))
    ]


def test_batch_order_no_shuffle_is_file_order():
    batches = batch_order([5, 1, 3, 2, 2], 2, shuffle=False)
    assert [b.tolist() for b in batches] == [[0, 1], [2, 3], [4]]
    batches = batch_order([5, 1, 3, 2, 2], 2, shuffle=False, drop_last=True)
    assert [b.tolist() for b in batches] == [[0, 1], [2, 3]]


def test_batch_order_buckets_hold_similar_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(10, 1000, size=400)
    batches = batch_order(lengths, 16, rng=np.random.default_rng(1), sort_by_length=True)
    # every sequence exactly once
    assert sorted(np.concatenate(batches).tolist()) == list(range(400))
    # the batches, sorted by their shortest member, do not overlap in length
    spans = sorted((lengths[b].min(), lengths[b].max()) for b in batches)
    for (_, hi), (lo, _) in zip(spans, spans[1:], strict=False):
        assert hi <= lo

    # padding waste far below that of random batches
    def waste(bs):
        return sum(len(b) * lengths[b].max() - lengths[b].sum() for b in bs)

    random_batches = batch_order(lengths, 16, rng=np.random.default_rng(1))
    assert waste(batches) < 0.1 * waste(random_batches)
    # the order of the batches is shuffled (not shortest first)
    firsts = [lengths[b].min() for b in batches]
    assert firsts != sorted(firsts)


def test_batch_order_buckets_without_shuffle_run_shortest_first():
    batches = batch_order([5, 1, 3, 2, 4], 2, shuffle=False, sort_by_length=True)
    assert [b.tolist() for b in batches] == [[1, 3], [2, 4], [0]]


def test_batch_order_buckets_are_seeded():
    lengths = np.random.default_rng(0).integers(1, 20, size=100)  # many ties
    a = batch_order(lengths, 8, rng=5, sort_by_length=True)
    b = batch_order(lengths, 8, rng=5, sort_by_length=True)
    c = batch_order(lengths, 8, rng=6, sort_by_length=True)
    assert [x.tolist() for x in a] == [x.tolist() for x in b]
    assert [x.tolist() for x in a] != [x.tolist() for x in c]


@settings(max_examples=50, deadline=None)
@given(
    lengths=lengths_st,
    batch_size=st.integers(1, 9),
    shuffle=st.booleans(),
    sort_by_length=st.booleans(),
    drop_last=st.booleans(),
    seed=st.integers(0, 2**32),
)
def test_batch_order_property(lengths, batch_size, shuffle, sort_by_length, drop_last, seed):
    n = len(lengths)
    batches = batch_order(
        lengths,
        batch_size,
        rng=np.random.default_rng(seed),
        shuffle=shuffle,
        sort_by_length=sort_by_length,
        drop_last=drop_last,
    )
    flat = np.concatenate(batches).tolist() if batches else []
    assert len(set(flat)) == len(flat)
    assert set(flat) <= set(range(n))
    assert all(1 <= len(b) <= batch_size for b in batches)
    if drop_last:
        assert all(len(b) == batch_size for b in batches)
        assert len(flat) == n - n % batch_size
    else:
        assert sorted(flat) == list(range(n))
        assert sum(len(b) < batch_size for b in batches) <= 1
    again = batch_order(
        lengths,
        batch_size,
        rng=np.random.default_rng(seed),
        shuffle=shuffle,
        sort_by_length=sort_by_length,
        drop_last=drop_last,
    )
    assert [b.tolist() for b in batches] == [b.tolist() for b in again]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lengths": [[1, 2]], "batch_size": 1}, "lengths"),
        ({"lengths": [1.5, 2], "batch_size": 1}, "lengths"),
        ({"lengths": [1, -2], "batch_size": 1}, r"lengths\[1\]"),
        ({"lengths": [1, 2], "batch_size": 0}, "batch_size"),
        ({"lengths": [1, 2], "batch_size": 2.0}, "batch_size"),
        ({"lengths": [1, 2], "batch_size": True}, "batch_size"),
        ({"lengths": [1, 2], "batch_size": 1, "rng": "seed"}, "rng"),
        ({"lengths": [1, 2], "batch_size": 1, "rng": -1}, "rng"),
    ],
)
def test_batch_order_rejects(kwargs, match):
    with pytest.raises(ValueError, match=match):
        batch_order(**kwargs)


def test_as_rng():
    g = np.random.default_rng(0)
    assert as_rng(g) is g
    assert isinstance(as_rng(None), np.random.Generator)
    assert as_rng(3).integers(1000) == np.random.default_rng(3).integers(1000)


def test_pad_sequences_copy_false_views_one_sequence_of_the_dtype():
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    y = np.array([0, -1, 2], dtype=np.int32)
    px, py, lengths = pad_sequences([x], [y], np.float32, copy=False)
    assert px.shape == (3, 1, 2) and py.shape == (3, 1) and lengths.tolist() == [3]
    assert np.shares_memory(px, x) and np.shares_memory(py, y)
    # copies: by default, for another dtype, for int64 targets, for several sequences
    for args, kw in (
        (([x], [y], np.float32), {}),
        (([x], [y], np.float64), {"copy": False}),
        (([x], [y.astype(np.int64)], np.float32), {"copy": False}),
        (([x, x], [y, y], np.float32), {"copy": False}),
    ):
        px, py, _ = pad_sequences(*args, **kw)
        assert not np.shares_memory(px, x) and not np.shares_memory(py, y)
        assert py.dtype == np.int32 and px.dtype == args[2]
        np.testing.assert_array_equal(px[:, 0], x)
    px, py, _ = pad_sequences([x], None, np.float32, copy=False)
    assert py is None and np.shares_memory(px, x)
    # validation still applies to the shortcut
    with pytest.raises(ValueError, match=r"ys\[0\]"):
        pad_sequences([x], [y[:2]], np.float32, copy=False)


def test_seqprop_batching_still_importable():
    import seqprop.batching
    import seqprop.data

    for name in seqprop.batching.__all__:
        assert getattr(seqprop.batching, name) is getattr(seqprop.data, name)


def test_pad_sequences_check_false_pads_the_same():
    rng = np.random.default_rng(1)
    xs = [rng.normal(size=(n, 3)).astype(np.float32) for n in (4, 1, 6)]
    ys = [rng.integers(-1, 5, size=len(x)).astype(np.int32) for x in xs]
    for a, b in zip(pad_sequences(xs, ys), pad_sequences(xs, ys, check=False), strict=True):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
