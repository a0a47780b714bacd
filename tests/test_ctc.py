"""CTC loss, gradient, decoding and label error rate (seqprop.ctc, seqprop.kernels.ctc)."""

import itertools

import numpy as np
import pytest

from seqprop import ctc
from seqprop.kernels import ctc as kernels

# ---------------------------------------------------------------- references


def collapse(path, blank):
    out = []
    prev = None
    for s in path:
        if s != prev and s != blank:
            out.append(s)
        prev = s
    return tuple(out)


def brute_force_log_p(logits, target):
    """ln p(z|x) by enumerating all C^T paths (logits (T, C), blank last), in log space."""
    T, C = logits.shape
    logy = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    terms = []
    for path in itertools.product(range(C), repeat=T):
        if collapse(path, C - 1) == tuple(target):
            terms.append(logy[np.arange(T), list(path)].sum())
    return np.logaddexp.reduce(np.array(terms)) if terms else -np.inf


def exhaustive_best_labelling(logits, max_len):
    """The most probable labelling by enumeration over all collapsed paths."""
    T, C = logits.shape
    logy = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    totals = {}
    for path in itertools.product(range(C), repeat=T):
        z = collapse(path, C - 1)
        totals[z] = np.logaddexp(totals.get(z, -np.inf), logy[np.arange(T), list(path)].sum())
    best = max(totals.items(), key=lambda kv: kv[1])
    return best[0], best[1], totals


def pad_labels(targets, fill=-1):
    U = max([len(z) for z in targets] + [0])
    labels = np.full((len(targets), U), fill, dtype=np.int64)
    for b, z in enumerate(targets):
        labels[b, : len(z)] = z
    return labels, np.array([len(z) for z in targets], dtype=np.int64)


def naive_edit_distance(r, h):
    if not r:
        return len(h)
    if not h:
        return len(r)
    return min(
        naive_edit_distance(r[1:], h[1:]) + (r[0] != h[0]),
        naive_edit_distance(r[1:], h) + 1,
        naive_edit_distance(r, h[1:]) + 1,
    )


def kernel_run(x, lengths, labels, label_lengths, force_log, with_grad=True):
    """Call the kernel directly (to force the log-space path); returns (losses, grad, n_log)."""
    losses = np.empty(x.shape[1])
    grad = np.full_like(x, np.nan)
    B = x.shape[1]
    n_log = kernels.ctc_loss_grad(
        x, lengths, labels, label_lengths, 0, B, 1.0, with_grad, force_log, losses, grad
    )
    return losses, grad, n_log


# Tiny cases: (C, [(T_b, target), ...]); repeated labels, empty targets, tight fits.
TINY_CASES = [
    (3, [(1, []), (1, [0]), (2, [1, 1 - 1])]),
    (3, [(3, [0, 0]), (4, [1, 0, 1]), (2, [])]),
    (4, [(5, [2, 2, 2]), (6, [0, 1, 0]), (4, [2, 1])]),
    (4, [(6, [1, 1]), (3, [2]), (5, [0, 0])]),
    (3, [(6, []), (6, [1, 1, 1]), (5, [0, 1, 1])]),
]


def tiny_batch(C, seqs, seed):
    rng = np.random.default_rng(seed)
    T = max(t for t, _ in seqs)
    x = rng.normal(scale=1.5, size=(T, len(seqs), C))
    lengths = np.array([t for t, _ in seqs], dtype=np.int64)
    labels, label_lengths = pad_labels([z for _, z in seqs])
    return x, lengths, labels, label_lengths


# ---------------------------------------------------------------- loss


@pytest.mark.parametrize("case", range(len(TINY_CASES)))
def test_loss_equals_brute_force_sum_over_alignments(case):
    C, seqs = TINY_CASES[case]
    x, lengths, labels, label_lengths = tiny_batch(C, seqs, case)
    total, losses, _ = ctc.ctc_loss_and_grad(x, lengths, labels, label_lengths)
    expected = np.array(
        [-brute_force_log_p(x[:t, b], z) for b, (t, z) in enumerate(seqs)], dtype=np.float64
    )
    np.testing.assert_allclose(losses, expected, rtol=1e-12, atol=1e-13)
    assert total == pytest.approx(expected.sum(), rel=1e-12)
    log_losses, _, n_log = kernel_run(x, lengths, labels, label_lengths, True)
    assert n_log == len(seqs)
    np.testing.assert_allclose(log_losses, expected, rtol=1e-12, atol=1e-13)
    fwd_total, fwd_losses = ctc.ctc_loss(x, lengths, labels, label_lengths)
    np.testing.assert_array_equal(fwd_losses, losses)
    assert fwd_total == total


def test_empty_target_is_the_product_of_blanks():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(7, 2, 5))
    lengths = np.array([7, 3])
    labels = np.full((2, 0), -1)
    _, losses, grad = ctc.ctc_loss_and_grad(x, lengths, labels, np.zeros(2, dtype=int))
    logy = x - np.logaddexp.reduce(x, axis=2, keepdims=True)
    np.testing.assert_allclose(losses, [-logy[:7, 0, 4].sum(), -logy[:3, 1, 4].sum()], rtol=1e-13)
    y = np.exp(logy)
    onehot = np.zeros(5)
    onehot[4] = 1.0
    np.testing.assert_allclose(grad[:3, 1], y[:3, 1] - onehot, atol=1e-14)
    assert not grad[3:, 1].any()


def test_loss_reduction_mean():
    x, lengths, labels, label_lengths = tiny_batch(*TINY_CASES[2], seed=5)
    s_total, s_losses, s_grad = ctc.ctc_loss_and_grad(x, lengths, labels, label_lengths)
    m_total, m_losses, m_grad = ctc.ctc_loss_and_grad(
        x, lengths, labels, label_lengths, reduction="mean"
    )
    np.testing.assert_array_equal(m_losses, s_losses)
    assert m_total == pytest.approx(s_total / 3, rel=1e-15)
    np.testing.assert_allclose(m_grad, s_grad / 3, rtol=1e-15, atol=1e-18)


# ---------------------------------------------------------------- gradient


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_gradient_equals_central_differences(reduction):
    rng = np.random.default_rng(7)
    C, T = 5, 9
    x = rng.normal(size=(T, 4, C))
    lengths = np.array([9, 6, 8, 3])
    labels, label_lengths = pad_labels([[0, 1, 1, 3], [2, 2], [], [3]])
    _, _, grad = ctc.ctc_loss_and_grad(x, lengths, labels, label_lengths, reduction=reduction)
    h = 1e-6
    fd = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        lp = ctc.ctc_loss(xp, lengths, labels, label_lengths, reduction=reduction)[0]
        lm = ctc.ctc_loss(xm, lengths, labels, label_lengths, reduction=reduction)[0]
        fd[idx] = (lp - lm) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)
    # the gradient at the softmax input sums to zero over outputs at every frame
    np.testing.assert_allclose(grad.sum(axis=2), 0.0, atol=1e-14)


@pytest.mark.parametrize("case", range(len(TINY_CASES)))
def test_linear_and_log_space_paths_agree(case):
    C, seqs = TINY_CASES[case]
    x, lengths, labels, label_lengths = tiny_batch(C, seqs, 100 + case)
    lin, g_lin, n_lin = kernel_run(x, lengths, labels, label_lengths, False)
    log, g_log, n_log = kernel_run(x, lengths, labels, label_lengths, True)
    assert n_lin == 0 and n_log == len(seqs)
    np.testing.assert_allclose(lin, log, rtol=1e-13)
    np.testing.assert_allclose(g_lin, g_log, rtol=1e-11, atol=1e-14)


def test_long_sequences_linear_and_log_agree():
    rng = np.random.default_rng(3)
    T, B, C, U = 120, 3, 8, 30
    x = rng.normal(scale=3.0, size=(T, B, C))
    lengths = np.array([120, 90, 75])
    labels = rng.integers(0, C - 1, size=(B, U))
    label_lengths = np.array([30, 25, 0])
    lin, g_lin, n_lin = kernel_run(x, lengths, labels, label_lengths, False)
    log, g_log, _ = kernel_run(x, lengths, labels, label_lengths, True)
    assert n_lin == 0
    np.testing.assert_allclose(lin, log, rtol=1e-12)
    np.testing.assert_allclose(g_lin, g_log, rtol=1e-9, atol=1e-12)


def test_extreme_logits_fall_back_to_log_space_and_stay_exact():
    # gaps of hundreds of nats per frame: linear-space cells would underflow
    rng = np.random.default_rng(11)
    x = rng.normal(scale=400.0, size=(6, 2, 4))
    lengths = np.array([6, 5])
    labels, label_lengths = pad_labels([[0, 1, 1], [2, 2]])
    losses, grad, n_log = kernel_run(x, lengths, labels, label_lengths, False)
    assert n_log >= 1
    expected = [-brute_force_log_p(x[:6, 0], [0, 1, 1]), -brute_force_log_p(x[:5, 1], [2, 2])]
    np.testing.assert_allclose(losses, expected, rtol=1e-12)
    assert np.isfinite(grad[:5]).all() and np.isfinite(grad[:6, 0]).all()
    _, g_log, _ = kernel_run(x, lengths, labels, label_lengths, True)
    np.testing.assert_allclose(grad, g_log, rtol=1e-12, atol=1e-15)
    # a long confident sequence whose cells drift apart by more than 690 nats
    T, U = 200, 60
    labels = rng.integers(0, 9, size=(1, U))
    x = rng.normal(scale=30.0, size=(T, 1, 10))
    lin, g_auto, n_auto = kernel_run(x, np.array([T]), labels, np.array([U]), False)
    log, g_log, _ = kernel_run(x, np.array([T]), labels, np.array([U]), True)
    assert n_auto == 1
    np.testing.assert_array_equal(lin, log)
    np.testing.assert_array_equal(g_auto, g_log)
    assert np.isfinite(lin).all() and np.isfinite(g_auto).all()


def test_float32_agrees_with_float64():
    rng = np.random.default_rng(2)
    T, B, C = 40, 3, 12
    x = rng.normal(scale=2.0, size=(T, B, C))
    lengths = np.array([40, 31, 17])
    labels = rng.integers(0, C - 1, size=(B, 10))
    label_lengths = np.array([10, 7, 0])
    t64, l64, g64 = ctc.ctc_loss_and_grad(x, lengths, labels, label_lengths)
    x32 = x.astype(np.float32)
    t32, l32, g32 = ctc.ctc_loss_and_grad(x32, lengths, labels, label_lengths)
    assert g32.dtype == np.float32 and l32.dtype == np.float64
    # the only float32 error is the rounding of the logits themselves
    _, l_ref, g_ref = ctc.ctc_loss_and_grad(x32.astype(np.float64), lengths, labels, label_lengths)
    np.testing.assert_allclose(l32, l_ref, rtol=1e-14)
    np.testing.assert_allclose(g32, g_ref.astype(np.float32), rtol=0, atol=0)
    np.testing.assert_allclose(l32, l64, rtol=1e-6)
    np.testing.assert_allclose(g32, g64, atol=2e-6)
    assert t32 == pytest.approx(t64, rel=1e-6)


def test_padding_changes_nothing():
    rng = np.random.default_rng(4)
    T, B, C = 12, 3, 6
    x = rng.normal(size=(T, B, C))
    lengths = np.array([12, 7, 4])
    labels, label_lengths = pad_labels([[1, 2, 2, 0], [4], [3, 3]])
    total, losses, grad = ctc.ctc_loss_and_grad(x, lengths, labels, label_lengths)
    garbage = x.copy()
    for b, n in enumerate(lengths):
        garbage[n:, b] = rng.normal(scale=1e6, size=(T - n, C))
    garbage[8:, 1, 2] = np.nan
    garbage[5:, 2, 0] = np.inf
    g_labels = labels.copy()
    for b, n in enumerate(label_lengths):
        g_labels[b, n:] = rng.integers(-50, 50, size=labels.shape[1] - n)
    total2, losses2, grad2 = ctc.ctc_loss_and_grad(garbage, lengths, g_labels, label_lengths)
    assert total2 == total
    np.testing.assert_array_equal(losses2, losses)
    np.testing.assert_array_equal(grad2, grad)
    for b, n in enumerate(lengths):
        assert not grad[n:, b].any()
    # a longer padded batch (more frames, wider label matrix) changes nothing either
    wide_x = np.concatenate([x, rng.normal(size=(5, B, C))])
    wide_labels = np.concatenate([labels, np.full((B, 3), -1)], axis=1)
    total3, losses3, grad3 = ctc.ctc_loss_and_grad(wide_x, lengths, wide_labels, label_lengths)
    np.testing.assert_array_equal(losses3, losses)
    np.testing.assert_array_equal(grad3[:T], grad)
    assert not grad3[T:].any()
    # and each sequence alone gives what it gives in the batch
    for b in range(B):
        n = lengths[b]
        _, lb, gb = ctc.ctc_loss_and_grad(
            x[:n, b : b + 1], lengths[b : b + 1], labels[b : b + 1], label_lengths[b : b + 1]
        )
        assert lb[0] == losses[b]
        np.testing.assert_array_equal(gb[:, 0], grad[:n, b])


def test_label_lengths_from_minus_one_padding():
    x, lengths, labels, label_lengths = tiny_batch(*TINY_CASES[1], seed=9)
    a = ctc.ctc_loss_and_grad(x, lengths, labels, label_lengths)
    b = ctc.ctc_loss_and_grad(x, lengths, labels, None)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[2], b[2])


def test_two_dimensional_logits_and_out_array():
    x, lengths, labels, label_lengths = tiny_batch(*TINY_CASES[2], seed=6)
    T, B, C = x.shape
    total, losses, grad = ctc.ctc_loss_and_grad(x, lengths, labels, label_lengths)
    flat = x.reshape(T * B, C)
    out = np.empty_like(flat)
    total2, losses2, grad2 = ctc.ctc_loss_and_grad(flat, lengths, labels, label_lengths, out=out)
    assert grad2 is out and grad2.shape == (T * B, C)
    np.testing.assert_array_equal(grad2.reshape(T, B, C), grad)
    assert total2 == total


# ---------------------------------------------------------------- bad input


def test_infeasible_target_raises_naming_the_sequence():
    x = np.zeros((4, 3, 4))
    lengths = np.array([4, 2, 4])
    labels, label_lengths = pad_labels([[0, 1], [1, 1], [0]])  # [1, 1] needs 3 frames
    with pytest.raises(ValueError, match=r"sequence 1: .*needs at least 3 frames.* has 2"):
        ctc.ctc_loss_and_grad(x, lengths, labels, label_lengths)
    labels, label_lengths = pad_labels([[0, 1], [1], [0, 1, 2, 0, 1]])  # U > T
    with pytest.raises(ValueError, match=r"sequence 2: .*needs at least 5 frames"):
        ctc.ctc_loss(x, lengths, labels, label_lengths)
    # exactly feasible: U + repeats == T (a finite loss, not inf)
    labels, label_lengths = pad_labels([[2, 2, 2], [1], [0]])
    x = np.random.default_rng(0).normal(size=(5, 3, 4))
    _, losses, grad = ctc.ctc_loss_and_grad(x, np.array([5, 1, 1]), labels, label_lengths)
    assert np.isfinite(losses).all() and np.isfinite(grad).all()
    assert losses[0] == pytest.approx(-brute_force_log_p(x[:, 0], [2, 2, 2]), rel=1e-12)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(x=np.zeros((4, 2, 4), dtype=np.int64)), "float32 or float64"),
        (dict(x=np.zeros((4, 3, 4))), "B = 2 sequences"),
        (dict(x=np.zeros((7, 4))), r"\(T \* B, C\)"),
        (dict(x=np.zeros((4, 2, 1))), "labels and a blank"),
        (dict(lengths=np.array([4, 0])), r"sequence 1: length 0 is not in \[1, 4\]"),
        (dict(lengths=np.array([5, 2])), r"sequence 0: length 5"),
        (dict(lengths=np.array([4.0, 2.0])), "integers"),
        (dict(labels=np.array([[0, 3], [1, -1]])), r"sequence 0: label 3 at position 1"),
        (dict(labels=np.array([[0, 1], [-1, -1]]), label_lengths=np.array([2, 1])), "sequence 1"),
        (dict(labels=np.array([[0, -1], [1, 2]]), label_lengths=None), None),
        (dict(labels=np.array([[0, -1, 1], [1, 2, -1]]), label_lengths=None), "sequence 0"),
        (dict(label_lengths=np.array([3, 1])), r"sequence 0: label length 3 is not in \[0, 2\]"),
        (dict(label_lengths=np.array([-1, 1])), "sequence 0: label length -1"),
        (dict(label_lengths=np.array([1, 1, 1])), "3 entries for 2 sequences"),
        (dict(labels=np.array([[0, 1]])), "1 rows for 2 sequences"),
        (dict(labels=np.array([[0.0, 1.0], [1.0, 0.0]])), "integers"),
        (dict(reduction="avg"), "reduction"),
    ],
)
def test_bad_input_raises_value_error(change, message):
    args = dict(
        x=np.zeros((4, 2, 4)),
        lengths=np.array([4, 2]),
        labels=np.array([[0, 1], [2, -1]]),
        label_lengths=np.array([2, 1]),
        reduction="sum",
    )
    args.update(change)
    call = lambda: ctc.ctc_loss_and_grad(  # noqa: E731
        args["x"], args["lengths"], args["labels"], args["label_lengths"],
        reduction=args["reduction"],
    )  # fmt: skip
    if message is None:  # a valid variant
        call()
        return
    with pytest.raises(ValueError, match=message):
        call()


def test_non_finite_logits_within_a_sequence_raise():
    x = np.zeros((4, 2, 3))
    x[1, 1, 2] = np.nan
    with pytest.raises(ValueError, match="sequence 1: logits at frame 1 is not finite"):
        ctc.ctc_loss_and_grad(x, np.array([4, 3]), np.array([[0], [1]]), None)
    # past the sequence's length it is only padding
    ctc.ctc_loss_and_grad(x, np.array([4, 1]), np.array([[0], [1]]), None)


def test_out_array_is_checked():
    x = np.zeros((4, 2, 3))
    args = (np.array([4, 3]), np.array([[0], [1]]), None)
    with pytest.raises(ValueError, match="out must be"):
        ctc.ctc_loss_and_grad(x, *args, out=np.empty((4, 2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="out must be"):
        ctc.ctc_loss_and_grad(x, *args, out=np.empty((4, 3, 2)))


# ---------------------------------------------------------------- decoding


def test_best_path_on_hand_made_posteriors():
    # outputs 0, 1, 2 and the blank 3; frames of sequence 0: a a - a b b - -
    frames = [0, 0, 3, 0, 1, 1, 3, 3]
    p = np.full((8, 2, 4), 0.1)
    for t, k in enumerate(frames):
        p[t, 0, k] = 0.7
    p[:, 1, 3] = 0.7  # sequence 1: blanks only ...
    p[2, 1, :] = [0.1, 0.1, 0.7, 0.1]  # ... but one frame of label 2 ...
    p[5, 1, :] = [0.7, 0.1, 0.1, 0.1]  # ... and a label 0 past its length
    out = ctc.best_path_decode(p, np.array([8, 5]))
    np.testing.assert_array_equal(out[0], [0, 0, 1])
    np.testing.assert_array_equal(out[1], [2])
    assert out[0].dtype == np.int64
    # logits give the same path
    out_logits = ctc.best_path_decode(np.log(p), np.array([8, 5]))
    np.testing.assert_array_equal(out_logits[0], out[0])


@pytest.mark.parametrize("seed", range(6))
def test_prefix_search_exhaustive_on_tiny_cases(seed):
    rng = np.random.default_rng(seed)
    T, C = 5, 3 + seed % 2
    x = rng.normal(scale=1.5, size=(T, 1, C))
    p = np.exp(x - np.logaddexp.reduce(x, axis=2, keepdims=True))
    best, best_lp, totals = exhaustive_best_labelling(x[:, 0], T)
    wide, lp = ctc.prefix_beam_search(p, np.array([T]), beam_width=500, return_log_probs=True)
    assert tuple(wide[0]) == best
    assert lp[0] == pytest.approx(best_lp, rel=1e-12)
    # narrow beams: their result is never more probable than the best, and
    # the beam's probability is a lower bound of the result's true probability
    for width in (1, 2, 3):
        narrow, nlp = ctc.prefix_beam_search(p, np.array([T]), width, return_log_probs=True)
        true_lp = totals[tuple(narrow[0])]
        assert true_lp <= best_lp + 1e-12
        assert nlp[0] <= true_lp + 1e-12


def test_prefix_search_at_least_as_good_as_best_path():
    rng = np.random.default_rng(21)
    T, B, C = 30, 6, 6
    x = rng.normal(scale=2.0, size=(T, B, C))
    lengths = np.array([30, 25, 20, 11, 30, 5])
    p = np.exp(x - np.logaddexp.reduce(x, axis=2, keepdims=True))
    bp = ctc.best_path_decode(x, lengths)
    wide = ctc.prefix_beam_search(p, lengths, beam_width=64)
    one = ctc.prefix_beam_search(p.astype(np.float32), lengths, beam_width=1)
    for decoded in (bp, wide, one):
        assert all(d.dtype == np.int64 and (d >= 0).all() and (d < C - 1).all() for d in decoded)

    def log_p(seqs):
        labels, label_lengths = pad_labels([list(s) for s in seqs])
        return -ctc.ctc_loss(x, lengths, labels, label_lengths)[1]

    lp_bp, lp_wide, lp_one = log_p(bp), log_p(wide), log_p(one)
    assert (lp_wide >= lp_bp - 1e-9).all()
    assert (lp_wide >= lp_one - 1e-9).all()
    assert (lp_wide > lp_bp + 1e-6).any()  # the search finds better labellings than best path


def test_prefix_search_ignores_padding_and_checks_input():
    rng = np.random.default_rng(8)
    p = rng.dirichlet(np.ones(5), size=(10, 2))
    lengths = np.array([10, 6])
    out = ctc.prefix_beam_search(p, lengths, beam_width=8)
    q = p.copy()
    q[6:, 1] = rng.dirichlet(np.ones(5), size=4)
    out2 = ctc.prefix_beam_search(q, lengths, beam_width=8)
    np.testing.assert_array_equal(out[1], out2[1])
    alone = ctc.prefix_beam_search(p[:6, 1:2], lengths[1:], beam_width=8)
    np.testing.assert_array_equal(alone[0], out[1])
    with pytest.raises(ValueError, match="beam_width"):
        ctc.prefix_beam_search(p, lengths, beam_width=0)
    with pytest.raises(ValueError, match="beam_width"):
        ctc.prefix_beam_search(p, lengths, beam_width=2.5)
    q[3, 1, 2] = -0.1
    with pytest.raises(ValueError, match="sequence 1: probs at frame 3 are negative"):
        ctc.prefix_beam_search(q, lengths)


def test_merge_framewise_and_fold_labels():
    np.testing.assert_array_equal(ctc.merge_framewise([3, 3, 5, 5, 5, 3]), [3, 5, 3])
    np.testing.assert_array_equal(ctc.merge_framewise([2, -1, 2, 4, -1]), [2, 4])
    assert ctc.merge_framewise(np.array([], dtype=int)).size == 0
    post = np.array([[0.1, 0.9], [0.2, 0.8], [0.7, 0.3], [0.6, 0.4], [0.1, 0.9]])
    np.testing.assert_array_equal(ctc.merge_framewise(post), [1, 0, 1])
    mapping = np.array([0, 0, 1, -1, 2])
    np.testing.assert_array_equal(ctc.fold_labels([0, 1, 3, 2, 4, 4], mapping), [0, 0, 1, 2, 2])
    np.testing.assert_array_equal(
        ctc.fold_labels([0, 1, 3, 2, 4, 4], mapping, merge_repeats=True), [0, 1, 2]
    )
    with pytest.raises(ValueError, match="label 5 at position 1"):
        ctc.fold_labels([0, 5], mapping)
    with pytest.raises(ValueError, match="label -1 at position 0"):
        ctc.fold_labels([-1], mapping)


def test_fold_labels_with_timit_folding():
    from seqprop.corpora.timit import phones as timit
    from seqprop.evaluation import timit_folding

    names = list(timit.phones61())
    lut, folded = timit_folding(names)
    idx = {p: i for i, p in enumerate(names)}
    seq = [idx[p] for p in ["h#", "q", "aa", "ao", "pau", "bcl", "b", "h#"]]
    out = [folded[i] for i in ctc.fold_labels(seq, lut)]
    assert out == ["sil", "aa", "aa", "sil", "sil", "b", "sil"]


# ---------------------------------------------------------------- scoring


def test_edit_distance_hand_cases():
    assert ctc.edit_distance([1, 2, 3], [1, 2, 3]) == (0, 0, 0, 0)
    assert ctc.edit_distance([1, 2, 3], [1, 3]) == (1, 0, 1, 0)
    assert ctc.edit_distance([1, 3], [1, 2, 3]) == (1, 0, 0, 1)
    assert ctc.edit_distance([1, 2, 3], [1, 4, 3]) == (1, 1, 0, 0)
    assert ctc.edit_distance([], [5, 6]) == (2, 0, 0, 2)
    assert ctc.edit_distance([5, 6], []) == (2, 0, 2, 0)
    assert ctc.edit_distance([], []) == (0, 0, 0, 0)
    assert ctc.edit_distance([1, 2, 3, 4], [2, 3, 4, 5]) == (2, 0, 1, 1)
    assert ctc.edit_distance([1, 2], [2, 1]) == (2, 2, 0, 0)  # substitutions preferred


def test_edit_distance_against_naive_recursion():
    rng = np.random.default_rng(5)
    for _ in range(150):
        r = list(rng.integers(0, 3, size=rng.integers(0, 7)))
        h = list(rng.integers(0, 3, size=rng.integers(0, 7)))
        d, s, dl, ins = ctc.edit_distance(r, h)
        assert d == naive_edit_distance(r, h)
        assert d == s + dl + ins
        assert len(h) == len(r) - dl + ins
        assert s + dl <= len(r) and s + ins <= len(h)


def test_label_error_rate():
    refs = [[1, 2, 3, 4], [5, 6], []]
    hyps = [[1, 3, 4, 7], [5, 6], [2]]
    res = ctc.label_error_rate(refs, hyps)
    assert res["edits"] == 3
    assert (res["substitutions"], res["deletions"], res["insertions"]) == (0, 1, 2)
    assert res["reference_labels"] == 6 and res["sequences"] == 3
    assert res["label_error_rate"] == pytest.approx(0.5)
    arrays = [np.array(r, dtype=np.int32) for r in refs]
    assert ctc.label_error_rate(arrays, hyps) == res
    with pytest.raises(ValueError, match="3 reference sequences but 2 hypotheses"):
        ctc.label_error_rate(refs, hyps[:2])
    with pytest.raises(ValueError, match="no labels"):
        ctc.label_error_rate([[]], [[1]])
    with pytest.raises(ValueError, match="hypothesis 1"):
        ctc.label_error_rate(refs, [[1], [0.5], []])


def test_results_do_not_depend_on_the_number_of_threads():
    from seqprop import _parallel

    rng = np.random.default_rng(12)
    T, B, C = 300, 5, 20
    x = rng.normal(size=(T, B, C)).astype(np.float32)
    lengths = np.array([300, 250, 120, 300, 90])
    labels = rng.integers(0, C - 1, size=(B, 30))
    label_lengths = np.array([30, 25, 10, 0, 20])
    results = []
    try:
        for n in (1, 2):
            _parallel.set_num_threads(n)
            results.append(ctc.ctc_loss_and_grad(x, lengths, labels, label_lengths))
            results.append(ctc.ctc_loss(x, lengths, labels, label_lengths))
    finally:
        _parallel.set_num_threads(None)
    (t1, l1, g1), (f1, fl1), (t2, l2, g2), (f2, fl2) = results
    assert t1 == t2 == f1 == f2
    np.testing.assert_array_equal(l1, l2)
    np.testing.assert_array_equal(fl1, l1)
    np.testing.assert_array_equal(fl2, l1)
    np.testing.assert_array_equal(g1, g2)
