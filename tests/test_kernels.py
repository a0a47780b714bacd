"""The kernels' building blocks on their own: expm1 accuracy, the lockstep schedule and the
softmax kernel against a naive reference."""

import numpy as np
import pytest

from seqprop.kernels.activations import expm1_into, expm1_into_f32
from seqprop.kernels.lockstep import lockstep_schedule, step_frame, zero_past_lengths


def _expm1(x):
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty_like(x)
    expm1_into(x, out, np.empty(x.size, dtype=np.int64))
    return out


def _ulp_distance(a, b):
    """Number of representable values between a and b (same dtype; +0 and -0 coincide)."""
    bits = np.int64 if a.dtype == np.float64 else np.int32
    lowest = np.int64(np.iinfo(bits).min)

    def ordinal(v):
        i = v.view(bits).astype(np.int64)
        return np.where(i < 0, lowest - i, i)  # monotone in the float's value

    return np.abs(ordinal(a) - ordinal(b))


def _sweep(lo, hi):
    """A dense sweep of [lo, hi]: an even grid, a geometric one towards 0, random points."""
    rng = np.random.default_rng(0)
    edge = max(abs(lo), abs(hi))
    sign = -1.0 if lo < 0 else 1.0
    x = np.concatenate(
        [
            np.linspace(lo, hi, 1_000_001),
            sign * np.logspace(-300, np.log10(edge), 200_001),
            rng.uniform(lo, hi, 200_000),
            rng.uniform(lo, hi, 200_000) / edge,  # |x| <= 1, where most arguments are
        ]
    )
    return np.clip(x, lo, hi)


@pytest.mark.parametrize(
    "lo, hi, worst",
    [
        (-700.0, 0.0, 1),  # the kernels' range: arguments -|a|, -2|a|, clamped at -700
        (0.0, 700.0, 2),
    ],
)
def test_expm1_float64_ulp_error(lo, hi, worst):
    x = _sweep(lo, hi)
    err = _ulp_distance(_expm1(x), np.expm1(x))
    assert err.max() <= worst, f"{err.max()} ulp at x = {x[np.argmax(err)]!r}"
    assert (err == 0).mean() > 0.8  # mostly correctly rounded, not just close


def test_expm1_float32_ulp_error():
    """Float32 networks keep the kernels' float64 expm1 rounded to float32."""
    x = _sweep(-700.0, 0.0).astype(np.float32)
    got = _expm1(x).astype(np.float32)
    err = _ulp_distance(got, np.expm1(x))
    assert err.max() <= 2, f"{err.max()} float32 ulp at x = {x[np.argmax(err)]!r}"
    # the 2 ulp are numpy's float32 expm1's: against float64 expm1 rounded, at most 1
    rounded = np.expm1(x.astype(np.float64)).astype(np.float32)
    assert _ulp_distance(got, rounded).max() <= 1


def test_expm1_float32_arithmetic_ulp_error():
    """The float32 kernels' own expm1 (float32 arithmetic) against float64 expm1 rounded."""
    x = _sweep(-87.0, 0.0).astype(np.float32)
    x = np.concatenate([x, np.float32([-87.5, -100.0, -1e30, -np.inf])])
    got = np.empty_like(x)
    expm1_into_f32(x, got, np.empty(x.size, dtype=np.int32))
    assert got.dtype == np.float32
    rounded = np.expm1(x.astype(np.float64)).astype(np.float32)
    err = _ulp_distance(got, rounded)
    assert err.max() <= 1, f"{err.max()} float32 ulp at x = {x[np.argmax(err)]!r}"
    assert (err == 0).mean() > 0.95
    assert got[-4:].tolist() == [-1.0] * 4  # clamped at -87, where expm1 is -1 in float32


def test_expm1_edges():
    x = np.array([0.0, -0.0, -1e-300, 1e-300, -700.0, -800.0, -np.inf, 700.0])
    got = _expm1(x)
    np.testing.assert_array_equal(got[:4], [0.0, 0.0, -1e-300, 1e-300])
    assert got[4] == np.expm1(-700.0) == -1.0
    assert got[5] == got[6] == -1.0  # clamped at -700
    assert got[7] == pytest.approx(np.expm1(700.0), rel=4e-16)


def test_lockstep_schedule_counts_sequences_longer_than_each_step():
    lengths = np.array([3, 0, 5, 1, 5, 2], dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    active = lockstep_schedule(lengths, order)
    assert active.tolist() == [5, 4, 3, 2, 2]
    for k, n in enumerate(active):
        assert set(order[:n].tolist()) == set(np.flatnonzero(lengths > k).tolist())
    # a share of the batch, and none at all
    assert lockstep_schedule(lengths, order[1::2]).tolist() == [2, 2, 1, 1, 1]
    assert lockstep_schedule(lengths, order[:0]).size == 0
    assert lockstep_schedule(lengths, np.array([1], dtype=np.int64)).size == 0


def test_step_frame_and_zero_past_lengths():
    assert [step_frame(4, k, False) for k in range(4)] == [0, 1, 2, 3]
    assert [step_frame(4, k, True) for k in range(4)] == [3, 2, 1, 0]
    lengths = np.array([2, 4, 0], dtype=np.int64)
    arr = np.ones((4, 3, 2))
    zero_past_lengths(arr, lengths, np.array([0, 2], dtype=np.int64))
    assert arr[:2, 0].all() and not arr[2:, 0].any()
    assert arr[:, 1].all()  # not in the order: untouched
    assert not arr[:, 2].any()


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-13), (np.float32, 2e-6)])
@pytest.mark.parametrize("N, K", [(150, 61), (7, 5), (64, 3), (1, 1)])
def test_softmax_xent_against_naive_reference(dtype, rtol, N, K):
    """Blocks of rows (64), odd K, ties for the maximum (first index wins), unscored rows."""
    from seqprop.kernels.loss import softmax, softmax_xent, xent_counts

    rng = np.random.default_rng(N * 100 + K)
    logits = (rng.normal(size=(N, K)) * 4).astype(dtype)
    logits[::5, -1] = logits[::5].max(axis=1)  # a tie with an earlier maximum
    targets = rng.integers(-1, K, size=N)
    z = logits.astype(np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p_ref = e / e.sum(axis=1, keepdims=True)
    scored = targets >= 0
    nll = np.log(e.sum(axis=1)) + z.max(axis=1) - z[np.arange(N), np.maximum(targets, 0)]
    first_max = np.argmax(logits, axis=1)  # numpy: the first maximum
    probs, dlogits = np.empty_like(logits), np.empty_like(logits)
    total, n, correct = softmax_xent(logits, targets, probs, dlogits)
    np.testing.assert_allclose(probs, p_ref, rtol=rtol, atol=rtol * 1e-3)
    assert total == pytest.approx(nll[scored].sum(), rel=rtol * 10, abs=rtol)
    assert n == scored.sum()
    assert correct == (first_max[scored] == targets[scored]).sum()
    d_ref = p_ref.copy()
    d_ref[np.arange(N)[scored], targets[scored]] -= 1.0
    d_ref[~scored] = 0.0
    # p - 1 cancels: absolute error of a few ulp of 1
    np.testing.assert_allclose(dlogits, d_ref, rtol=rtol, atol=4 * np.finfo(dtype).eps)
    assert xent_counts(logits, targets) == pytest.approx((total, n, correct), rel=1e-12)
    only = np.empty_like(logits)
    softmax(logits, only)
    np.testing.assert_array_equal(only, probs)


def test_softmax_of_a_nan_row_stays_inside_the_row():
    """A NaN logit (a diverged net) gives a NaN loss, never a search past the row's end."""
    from seqprop.kernels.loss import softmax_xent

    logits = np.array([[np.nan, 1.0, 2.0], [1.0, np.nan, 0.0], [0.0, 1.0, 1.0]])
    probs, dlogits = np.empty_like(logits), np.empty_like(logits)
    total, n, correct = softmax_xent(logits, np.array([2, 0, 1]), probs, dlogits)
    assert np.isnan(total) and n == 3 and 0 <= correct <= 3
    e = np.e
    np.testing.assert_allclose(probs[2], [1 / (1 + 2 * e), e / (1 + 2 * e), e / (1 + 2 * e)])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_act", [1, 3])
def test_recurrent_product_either_way_equals_the_matrix_product(dtype, n_act):
    """One float64 sequence takes W_hh's rows, everything else W_hh^T: both W_hh h(t-1)."""
    from seqprop.kernels.lockstep import recurrent_product

    rng = np.random.default_rng(3)
    w_hh = rng.normal(size=(12, 5)).astype(dtype)
    hbuf = rng.normal(size=(4, 5)).astype(dtype)
    zbuf = np.full((4, 12), 7.0, dtype=dtype)
    recurrent_product(hbuf, w_hh, np.ascontiguousarray(w_hh.T), zbuf, n_act)
    expected = hbuf[:n_act].astype(np.float64) @ w_hh.T.astype(np.float64)
    rtol = 1e-13 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(zbuf[:n_act], expected, rtol=rtol, atol=rtol)
    assert (zbuf[n_act:] == 7.0).all()  # rows of inactive sequences untouched


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("N", [0, 1, 37, 300])
def test_gemm_tn_accumulates_into_its_output(dtype, N):
    """kernels.blas.gemm_tn: c = d^T x + beta c through scipy's BLAS, on row slices too."""
    from seqprop.kernels.blas import gemm_tn

    rng = np.random.default_rng(N)
    d = rng.normal(size=(N + 5, 61)).astype(dtype)[2 : N + 2]  # a slice of rows
    x = rng.normal(size=(N + 5, 19)).astype(dtype)[3 : N + 3]
    c0 = rng.normal(size=(61, 19)).astype(dtype)
    rtol = 1e-12 if dtype == np.float64 else 1e-4
    for beta in (0.0, 1.0):
        c = c0.copy()
        gemm_tn(d, x, c, dtype(beta))
        expected = d.astype(np.float64).T @ x.astype(np.float64) + beta * c0
        np.testing.assert_allclose(c, expected, rtol=rtol, atol=rtol * max(N, 1))
