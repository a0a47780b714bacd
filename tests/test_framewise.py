"""The MLP's training step by blocks of frames (seqprop.framewise) against the
layer-by-layer passes, the time window's strided copy against the concatenated
frames, and the softmax head's row-block pass against the whole-batch kernel."""

import numpy as np
import pytest

import seqprop
from seqprop import products
from seqprop._parallel import set_num_threads
from seqprop.gradient_check import gradcheck
from seqprop.kernels.loss import ordered_sum, softmax_xent, softmax_xent_rows
from seqprop.layers import TimeWindow

I, K = 4, 5


def naive_window(x, w):
    """Frames t-w .. t+w of (T, B, I) side by side, zeros outside [0, T)."""
    T, B, n = x.shape
    out = np.zeros((T, B, (2 * w + 1) * n), dtype=x.dtype)
    for t in range(T):
        for j, k in enumerate(range(-w, w + 1)):
            if 0 <= t + k < T:
                out[t, :, j * n : (j + 1) * n] = x[t + k]
    return out


@pytest.mark.parametrize("T, B, w", [(7, 1, 2), (5, 3, 0), (3, 2, 4), (1, 1, 1), (11, 4, 3)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_time_window_copies_shifted_frames(T, B, w, dtype):
    x = np.random.default_rng(T * 10 + B).normal(size=(T, B, I)).astype(dtype)
    layer = TimeWindow(I, w)
    out, _ = layer.forward({}, x, np.full(B, T))
    np.testing.assert_array_equal(out, naive_window(x, w))
    if w:
        # any blocks of rows, and any frames gathered, give the same rows
        flat = naive_window(x, w).reshape(T * B, -1)
        rows = np.full_like(flat, np.nan)
        h = (T * B) // 3
        layer.window_rows(x, rows, h, T * B)
        layer.window_rows(x, rows, 0, h)
        np.testing.assert_array_equal(rows, flat)
        frames = np.array([T * B - 1, 0, (T * B) // 2])
        picked = np.full((3, flat.shape[1]), np.nan, dtype=dtype)
        layer.window_rows(x, picked, 0, 3, frames)
        np.testing.assert_array_equal(picked, flat[frames])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_rows_kernel_sums_like_the_whole_batch_kernel(dtype):
    rng = np.random.default_rng(3)
    N = 57
    logits = (rng.normal(size=(N, K)) * 4).astype(dtype)
    targets = rng.integers(-1, K, size=N)
    p1, d1 = np.empty_like(logits), np.empty_like(logits)
    total, n, correct = softmax_xent(logits, targets, p1, d1)
    p2, d2 = np.empty_like(logits), np.empty_like(logits)
    nll = np.full(N, np.nan)
    counts = [
        softmax_xent_rows(logits[a:b], targets[a:b], p2[a:b], d2[a:b], nll[a:b])
        for a, b in ((0, 20), (20, 21), (21, N))
    ]
    assert ordered_sum(nll) == total  # bit for bit: the same terms added in the same order
    assert sum(c[0] for c in counts) == n == np.count_nonzero(targets >= 0)
    assert sum(c[1] for c in counts) == correct
    np.testing.assert_array_equal(p1, p2)
    np.testing.assert_array_equal(d1, d2)
    assert (nll[targets < 0] == 0).all() and (nll[targets >= 0] > 0).all()


def mlp(dtype="float64", *, window=2, num_layers=1, hidden=6, seed=0, **kw):
    net = seqprop.make_network(
        "mlp",
        I,
        hidden,
        K,
        window=window,
        num_layers=num_layers,
        dtype=dtype,
        random_state=seed,
        **kw,
    )
    net.flat_parameters[:] = np.random.default_rng(seed + 7).uniform(-0.6, 0.6, net.num_parameters)
    return net


def data(T=9, lengths=(9, 4, 7), seed=1, unlabelled=0.2):
    rng = np.random.default_rng(seed)
    B = len(lengths)
    x = rng.normal(size=(T, B, I))
    y = rng.integers(0, K, size=(T, B))
    y[rng.random((T, B)) < unlabelled] = -1
    return x, y, np.array(lengths)


def layer_by_layer(net, x, y, lengths, reduction="sum"):
    """Loss, gradient and counts through the layers one after the other (the generic path)."""
    saved, net._framewise = net._framewise, None
    try:
        result = net.step(x, y, lengths, reduction=reduction)
        return result, net.flat_gradient.copy()
    finally:
        net._framewise = saved


@pytest.fixture
def split_everything(monkeypatch):
    """Every product split in two, so that the two-block path runs on tiny nets."""
    monkeypatch.setattr(products, "SPLIT_MIN_MACS", 1)


MLPS = [
    pytest.param({}, id="window2"),
    pytest.param({"window": 0}, id="window0"),
    pytest.param({"num_layers": 2, "activation": "logistic"}, id="two-logistic"),
    pytest.param({"num_layers": 0, "window": 1}, id="no-hidden"),
    pytest.param({"class_weights": [0.5, 2.0, 0.0, 1.3, 1.0]}, id="weighted"),
]


@pytest.mark.parametrize("kw", MLPS)
@pytest.mark.parametrize("split", [False, True])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_framewise_step_agrees_with_layer_by_layer(kw, split, reduction, monkeypatch):
    if split:
        monkeypatch.setattr(products, "SPLIT_MIN_MACS", 1)
    net = mlp(**kw)
    assert net._framewise is not None
    x, y, lengths = data()
    ref, ref_grad = layer_by_layer(net, x, y, lengths, reduction)
    got = net.step(x, y, lengths, reduction=reduction)
    assert got.counts == ref.counts and got.n_scored == ref.n_scored
    assert got.loss_sum == pytest.approx(ref.loss_sum, rel=1e-13)
    assert got.loss == pytest.approx(ref.loss, rel=1e-13)
    np.testing.assert_allclose(net.flat_gradient, ref_grad, rtol=1e-12, atol=1e-14)
    if not split:  # one block: the same products as the layers compute
        assert got.loss_sum == ref.loss_sum


@pytest.mark.parametrize("kw", MLPS)
def test_framewise_step_gradients_match_finite_differences(kw, split_everything):
    net = mlp(**kw)
    x, y, lengths = data(T=6, lengths=(6, 2, 5))
    errors = gradcheck(net, x, y, lengths)
    assert max(errors.values()) < 1e-6


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kw", MLPS)
def test_framewise_step_does_not_depend_on_thread_count(dtype, kw, split_everything):
    net = mlp(dtype, **kw)
    x, y, lengths = data(T=13, lengths=(13, 1, 8, 12))
    results = []
    try:
        for n in (1, 2, 1):
            set_num_threads(n)
            result = net.step(x, y, lengths)
            results.append((result, net.flat_gradient.copy()))
    finally:
        set_num_threads(None)
    for result, grad in results[1:]:
        assert result == results[0][0]
        np.testing.assert_array_equal(grad, results[0][1])


def test_frames_without_target_and_padding_change_nothing():
    """Unscored frames are skipped: the step equals the one on all frames and their
    padding, and a batch with no target at all gives a zero loss and gradient."""
    net = mlp()
    x, y, lengths = data(unlabelled=0.0)
    full, full_grad = layer_by_layer(net, x, y, lengths)
    got = net.step(x, y, lengths)
    assert got.counts == full.counts
    assert got.loss_sum == pytest.approx(full.loss_sum, rel=1e-13)
    np.testing.assert_allclose(net.flat_gradient, full_grad, rtol=1e-12, atol=1e-14)
    # the same sequences padded further, with garbage past each length: nothing changes
    xp = np.concatenate([x, np.full((4, *x.shape[1:]), 1e6)])
    yp = np.concatenate([y, np.full((4, y.shape[1]), 3)])
    again = net.step(xp, yp, lengths)
    assert again.counts == got.counts
    assert again.loss_sum == pytest.approx(got.loss_sum, rel=1e-13)
    np.testing.assert_allclose(net.flat_gradient, full_grad, rtol=1e-12, atol=1e-14)
    nothing = net.step(x, np.full_like(y, -1), lengths)
    assert (nothing.loss, nothing.n_scored, nothing.counts["errors"]) == (0.0, 0, 0)
    assert not net.flat_gradient.any()


def test_paper_mlp_online_split_step_agrees_with_layer_by_layer():
    """The paper's MLP on one 300-frame sequence: split in two blocks by its size alone."""
    net = seqprop.make_network("mlp", 26, 250, 61, window=10, random_state=0)
    rng = np.random.default_rng(2)
    T = 300
    x, y, lengths = rng.normal(size=(T, 1, 26)), rng.integers(0, 61, (T, 1)), np.array([T])
    ref, ref_grad = layer_by_layer(net, x, y, lengths)
    got = net.step(x, y, lengths)
    assert got.counts == ref.counts
    assert got.loss_sum == ref.loss_sum  # the loss is summed in frame order either way
    np.testing.assert_allclose(
        net.flat_gradient, ref_grad, rtol=0, atol=1e-13 * np.abs(ref_grad).max()
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_delta_kernels_round_like_the_numpy_expressions(dtype):
    from seqprop.kernels.dense import logistic_delta, tanh_delta

    rng = np.random.default_rng(4)
    z = rng.normal(size=(37, 11)) * 3
    dy = rng.normal(size=z.shape).astype(dtype)
    one = dtype(1.0)
    y = np.tanh(z).astype(dtype)
    out = np.empty_like(y)
    tanh_delta(y, dy, out, one)
    expected = np.subtract(1.0, y * y) * dy
    assert expected.dtype == dtype
    np.testing.assert_array_equal(out, expected)
    y = (1.0 / (1.0 + np.exp(-z))).astype(dtype)
    logistic_delta(y, dy, out, one)
    np.testing.assert_array_equal(out, (np.subtract(1.0, y) * y) * dy)


@pytest.mark.parametrize("kw", MLPS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_steps_of_the_same_shape_reuse_nothing_but_memory(kw, dtype, split_everything):
    """Work arrays are kept from one step to the next of the same shape (online training):
    each step still computes from its own batch, as the layer-by-layer passes do."""
    net = mlp(dtype, **kw)
    full, padded = (9, 9, 9), (9, 4, 7)
    for seed, lengths, unlabelled in (
        (1, full, 0.0), (2, full, 0.0), (3, padded, 0.3), (4, padded, 0.3), (5, full, 0.0)
    ):  # fmt: skip
        x, y, lengths = data(lengths=lengths, seed=seed, unlabelled=unlabelled)
        ref, ref_grad = layer_by_layer(net, x, y, lengths)
        got = net.step(x, y, lengths)
        assert got.counts == ref.counts
        assert got.loss_sum == pytest.approx(
            ref.loss_sum, rel=1e-5 if dtype == "float32" else 1e-13
        )
        scale = np.abs(ref_grad).max()
        tol = 1e-5 if dtype == "float32" else 1e-13
        np.testing.assert_allclose(net.flat_gradient, ref_grad, rtol=0, atol=tol * scale)
