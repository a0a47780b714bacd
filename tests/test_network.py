"""Core engine: kernels against the naive reference, finite-difference gradients,
padding invariance, precision, threads and argument validation."""

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import seqprop
from seqprop._parallel import blas_single_thread, set_num_threads
from seqprop.errors import GradientCheckError
from seqprop.gradient_check import gradcheck
from seqprop.layers import INPUT_SPLIT_STEPS, PIPELINE_CHUNK

from . import reference as ref

KINDS = ["blstm", "lstm", "brnn", "rnn", "mlp"]
I, H, K = 3, 3, 4
# every kind with its default units, plus the paper's units where they differ
VARIANTS = [pytest.param(k, {}, id=k) for k in KINDS] + [
    pytest.param("blstm", {"squash": "logistic2"}, id="blstm-logistic2"),
    pytest.param("lstm", {"squash": "logistic2"}, id="lstm-logistic2"),
    pytest.param("brnn", {"activation": "logistic"}, id="brnn-logistic"),
    pytest.param("rnn", {"activation": "logistic"}, id="rnn-logistic"),
    pytest.param("mlp", {"activation": "logistic"}, id="mlp-logistic"),
    # the paper's backwards LSTM and a backwards RNN (hidden layer run last frame first)
    pytest.param("lstm", {"squash": "logistic2", "reverse": True}, id="lstm-reverse"),
    pytest.param("rnn", {"activation": "logistic", "reverse": True}, id="rnn-reverse"),
    # the class-weighted softmax head (weights per target class, one of them 0)
    pytest.param("blstm", {"class_weights": [0.5, 2.0, 0.0, 1.3]}, id="blstm-weighted"),
    pytest.param("rnn", {"class_weights": [1.7, 0.2, 1.0, 0.9]}, id="rnn-weighted"),
]


def build(kind, *, gradient="full", dtype="float64", seed=0, window=None, **kw):
    if window is None:
        window = 2 if kind == "mlp" else 0
    net = seqprop.make_network(
        kind, I, H, K, window=window, gradient=gradient, dtype=dtype, random_state=seed, **kw
    )
    # weights larger than the paper's init, so every gradient is well above rounding noise
    net.flat_parameters[:] = np.random.default_rng(seed + 100).uniform(
        -0.7, 0.7, net.num_parameters
    )
    return net


def batch(T=6, lengths=(6, 3, 1), seed=1, unlabelled=0.2):
    rng = np.random.default_rng(seed)
    B = len(lengths)
    x = rng.normal(size=(T, B, I))
    y = rng.integers(0, K, size=(T, B))
    y[rng.random((T, B)) < unlabelled] = -1
    return x, y, np.array(lengths)


def params64(net):
    return {k: v.astype(np.float64) for k, v in net.parameters().items()}


def loss_and_grad_on(threads, net, x, y, lengths):
    """``net.loss_and_grad`` with seqprop held to ``threads`` threads; the gradients copied."""
    try:
        set_num_threads(threads)
        loss, grads = net.loss_and_grad(x, y, lengths)
    finally:
        set_num_threads(None)
    return loss, {k: v.copy() for k, v in grads.items()}


@pytest.mark.parametrize("kind, kw", VARIANTS)
def test_forward_matches_reference(kind, kw):
    net = build(kind, **kw)
    x, y, lengths = batch()
    expected, _ = ref.loss(net.spec, params64(net), x, y, lengths)
    assert net.loss(x, y, lengths) == pytest.approx(expected, rel=1e-12)
    loss, _ = net.loss_and_grad(x, y, lengths)
    assert loss == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(
        net.predict_proba(x, lengths),
        ref.probabilities(net.spec, params64(net), x, lengths),
        rtol=1e-11,
        atol=1e-14,
    )


@pytest.mark.parametrize("kind, kw", VARIANTS)
@pytest.mark.parametrize("gradient", ["full", "truncated"])
def test_gradient_matches_reference_finite_differences(kind, kw, gradient):
    """Analytic gradients vs central differences of the independent reference.

    For the truncated gradient the reference is differentiated with its
    recurrent inputs frozen, which is the truncated gradient's definition.
    """
    net = build(kind, gradient=gradient, **kw)
    x, y, lengths = batch(T=5, lengths=(5, 2, 4))
    _, grads = net.loss_and_grad(x, y, lengths)
    numeric = ref.numeric_gradient(
        net.spec, params64(net), x, y, lengths, truncated=gradient == "truncated"
    )
    assert set(grads) == set(numeric)
    for name in grads:
        scale = np.abs(numeric[name]).max()
        np.testing.assert_allclose(
            grads[name], numeric[name], rtol=1e-5, atol=1e-6 * scale, err_msg=name
        )


@pytest.mark.parametrize("kind", ["blstm", "lstm", "brnn", "rnn"])
@pytest.mark.parametrize("gradient", ["full", "truncated"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_one_sequence_gradient_matches_reference(kind, gradient, dtype):
    """Online training (one sequence): the recurrent products are matrix-vector products
    (float64 forward: with W_hh's rows) and the peephole gradients are summed inside the
    backward kernel."""
    net = build(kind, gradient=gradient, dtype=dtype)
    x, y, lengths = batch(T=9, lengths=(9,))
    _, grads = net.loss_and_grad(x, y, lengths)
    numeric = ref.numeric_gradient(
        net.spec, params64(net), x, y, lengths, truncated=gradient == "truncated"
    )
    rtol = 1e-5 if dtype == "float64" else 2e-3
    for name in grads:
        scale = np.abs(numeric[name]).max()
        np.testing.assert_allclose(
            grads[name], numeric[name], rtol=rtol, atol=rtol * 0.1 * scale, err_msg=name
        )


PIPELINED = [
    pytest.param({}, id="lstm"),
    pytest.param({"reverse": True, "squash": "logistic2"}, id="reverse"),
    pytest.param({"gradient": "truncated"}, id="truncated"),
    pytest.param({"num_layers": 2}, id="two-layers"),
    pytest.param({"class_weights": [0.5, 2.0, 0.0, 1.3]}, id="weighted"),
]


@pytest.mark.parametrize("kw", PIPELINED)
@pytest.mark.parametrize("T, L", [(2 * PIPELINE_CHUNK + 1, 2 * PIPELINE_CHUNK + 1),
                                  (2 * PIPELINE_CHUNK + 7, 2 * PIPELINE_CHUNK),
                                  (PIPELINE_CHUNK + 3, PIPELINE_CHUNK - 1),
                                  (2 * INPUT_SPLIT_STEPS + 1, 2 * INPUT_SPLIT_STEPS + 1)])  # fmt: skip
def test_pipelined_one_sequence_gradient_matches_reference(kw, T, L):
    """A one-direction LSTM over one sequence: the weight gradients (and dE/dx of the
    upper layer) follow the recurrence chunk by chunk, on the worker thread (which also
    projects the inputs of the steps past INPUT_SPLIT_STEPS, from 2 INPUT_SPLIT_STEPS + 1
    frames)."""
    net = build("lstm", **kw)
    x, y, lengths = batch(T=T, lengths=(L,))
    l1, g1 = loss_and_grad_on(2, net, x, y, lengths)
    numeric = ref.numeric_gradient(
        net.spec, params64(net), x, y, lengths, truncated=kw.get("gradient") == "truncated"
    )
    for name in g1:
        scale = np.abs(numeric[name]).max()
        np.testing.assert_allclose(
            g1[name], numeric[name], rtol=1e-5, atol=1e-6 * scale, err_msg=name
        )
    l2, g2 = loss_and_grad_on(1, net, x, y, lengths)  # the same sums on one thread
    assert l1 == l2
    for k in g1:
        np.testing.assert_array_equal(g1[k], g2[k], err_msg=k)


@pytest.mark.parametrize("kw", PIPELINED)
@pytest.mark.parametrize("L", [2 * INPUT_SPLIT_STEPS + 1, 2 * INPUT_SPLIT_STEPS + 40])
def test_input_projections_on_the_other_thread_change_nothing(monkeypatch, kw, L):
    """Past 2 INPUT_SPLIT_STEPS frames the other thread projects the inputs of the later
    steps: the same loss and gradients, bit for bit, on two threads or one, and the same
    to rounding as the calling thread projecting them all in one BLAS call (equal here,
    but a BLAS may round a product of fewer rows differently) (a padded sequence too)."""
    net = build("lstm", **kw)
    x, y, lengths = batch(T=L + 5, lengths=(L,))
    l1, g1 = loss_and_grad_on(2, net, x, y, lengths)
    l2, g2 = loss_and_grad_on(1, net, x, y, lengths)
    with monkeypatch.context() as m:  # the calling thread projects every input
        m.setattr(seqprop.layers, "INPUT_SPLIT_STEPS", 10**9)
        l3, g3 = loss_and_grad_on(2, net, x, y, lengths)
    assert l1 == l2 and l1 == pytest.approx(l3, rel=1e-12)
    for k in g1:
        np.testing.assert_array_equal(g1[k], g2[k], err_msg=k)
        np.testing.assert_allclose(g1[k], g3[k], rtol=1e-10, atol=1e-14, err_msg=k)


def test_pipelined_mean_reduction_matches_reference():
    net = build("lstm")
    x, y, lengths = batch(T=2 * PIPELINE_CHUNK + 5, lengths=(2 * PIPELINE_CHUNK + 2,))
    _, grads = net.loss_and_grad(x, y, lengths, reduction="mean")
    numeric = ref.numeric_gradient(net.spec, params64(net), x, y, lengths, reduction="mean")
    for name in grads:
        scale = np.abs(numeric[name]).max()
        np.testing.assert_allclose(
            grads[name], numeric[name], rtol=1e-5, atol=1e-6 * scale, err_msg=name
        )


@pytest.mark.parametrize(
    "where, target, head",
    [
        ("recurrences", "seqprop.layers.lstm_layer_step", "softmax"),
        ("input projections", "seqprop.layers.project_rows", "softmax"),
        ("head block", "seqprop.heads.softmax.FrameRows.__call__", "softmax"),
        ("head gradients", "seqprop.heads.softmax.FrameRows.param_grads", "softmax"),
        ("backward recurrence", "seqprop.layers.lstm_backward_chunks", "squared_error"),
        ("chunk gradients", "seqprop.layers.lstm_chunk_gradients", "squared_error"),
    ],
)
def test_pipelined_failure_does_not_leave_a_thread_waiting(monkeypatch, where, target, head):
    """If either thread's half of a pipelined step fails, the other stops waiting for it
    and the error reaches the caller; the next step runs normally (the softmax head
    follows the forward pass inside the layer's step; another head's error is handed to
    a pipelined backward pass)."""
    net = build("lstm", head=head)
    T = 2 * INPUT_SPLIT_STEPS + PIPELINE_CHUNK  # the other thread projects inputs too
    x, y, lengths = batch(T=T, lengths=(T,))
    if head == "squared_error":
        y = np.random.default_rng(7).normal(size=(*y.shape, K))
    expected = net.loss_and_grad(x, y, lengths)[0]

    def broken(*args):
        raise RuntimeError(f"broken {where}")

    try:
        set_num_threads(2)
        errors = []

        def step():
            try:
                net.loss_and_grad(x, y, lengths)
            except RuntimeError as exc:
                errors.append(exc)

        with monkeypatch.context() as m:
            m.setattr(target, broken)
            thread = threading.Thread(target=step, daemon=True)
            thread.start()
            thread.join(timeout=60)
        assert not thread.is_alive(), "the step hangs: one thread still waits for the other"
        assert [str(e) for e in errors] == [f"broken {where}"]
        assert net.loss_and_grad(x, y, lengths)[0] == expected
    finally:
        set_num_threads(None)


@pytest.mark.parametrize("kind", ["rnn", "brnn"])
@pytest.mark.parametrize("gradient", ["full", "truncated"])
def test_logistic_recurrent_units_are_logistic(kind, gradient):
    """activation="logistic" builds logistic units: h(t) in (0, 1), not tanh's loss.

    With all hidden weights zero every unit outputs logistic(0) = 1/2 within
    each sequence (tanh would give 0).
    """
    tanh_net = build(kind, gradient=gradient)
    net = build(kind, gradient=gradient, activation="logistic")
    x, y, lengths = batch(T=7, lengths=(7, 4, 6))
    assert net.loss(x, y, lengths) != pytest.approx(tanh_net.loss(x, y, lengths), rel=1e-3)
    xc, L, _ = net._prepare(x, lengths)
    h, _ = net.hidden[0][1].forward(net._layer_p[0], xc, L)
    valid = np.arange(7)[:, None] < L[None, :]
    assert (h[valid] > 0.0).all() and (h[valid] < 1.0).all()
    assert (h[~valid] == 0.0).all()
    # zero hidden weights: every unit is logistic(0) = 1/2 within each sequence
    for name, v in net.parameters().items():
        if name.startswith("hidden."):
            v[...] = 0.0
    h, _ = net.hidden[0][1].forward(net._layer_p[0], xc, L)
    np.testing.assert_array_equal(h[valid], 0.5)


@pytest.mark.parametrize(
    "kind, kw, match",
    [
        ("lstm", {"activation": "logistic"}, "activation"),
        ("blstm", {"activation": "logistic"}, "activation"),
        ("rnn", {"squash": "logistic2"}, "squash"),
        ("brnn", {"squash": "logistic2"}, "squash"),
        ("mlp", {"squash": "logistic2"}, "squash"),
        ("rnn", {"activation": "relu"}, "activation must be one of"),
        ("lstm", {"squash": "relu"}, "squash must be one of"),
        ("blstm", {"reverse": True}, "reverse applies to"),
        ("brnn", {"reverse": True}, "reverse applies to"),
        ("mlp", {"reverse": True}, "reverse applies to"),
        ("lstm", {"reverse": 1}, "reverse must be True or False"),
        ("rnn", {"class_weights": [1.0, 2.0]}, "class_weights must have one weight per class"),
        ("rnn", {"class_weights": [1.0, -1.0, 1.0]}, r"class_weights\[1\] = -1.0"),
        ("rnn", {"class_weights": [1.0, 1.0, np.nan]}, r"class_weights\[2\] = nan"),
        ("rnn", {"class_weights": "abc"}, "class_weights must be 3 numbers"),
    ],
)
def test_options_of_other_kinds_are_refused(kind, kw, match):
    with pytest.raises(ValueError, match=match):
        seqprop.make_network(kind, 3, 3, 3, **kw)


def test_truncated_differs_from_full_and_agrees_on_one_frame():
    x, y, lengths = batch()
    full = build("lstm")
    trunc = build("lstm", gradient="truncated")
    _, gf = full.loss_and_grad(x, y, lengths)
    gf = {k: v.copy() for k, v in gf.items()}
    _, gt = trunc.loss_and_grad(x, y, lengths)
    assert not np.allclose(gf["hidden.0.W_hh"], gt["hidden.0.W_hh"])
    # one frame: no recurrence, the two gradients coincide
    _, g1 = full.loss_and_grad(x[:1], y[:1], np.ones(3, int))
    g1 = {k: v.copy() for k, v in g1.items()}
    _, g2 = trunc.loss_and_grad(x[:1], y[:1], np.ones(3, int))
    for k in g1:
        np.testing.assert_array_equal(g1[k], g2[k])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_gradcheck_own_finite_differences(kind, reduction):
    net = build(kind, num_layers=2)
    x, y, lengths = batch(T=5, lengths=(4, 5))
    errors = gradcheck(net, x, y, lengths, reduction=reduction)
    assert set(errors) == set(net.parameters())
    assert max(errors.values()) < 1e-5


def test_gradcheck_raises_on_wrong_gradient(monkeypatch):
    net = build("lstm")
    x, y, lengths = batch()
    original = net.loss_and_grad

    def broken(*a, **kw):
        loss, grads = original(*a, **kw)
        grads["hidden.0.W_hh"][0, 0] += 1e-3
        return loss, grads

    monkeypatch.setattr(net, "loss_and_grad", broken)
    with pytest.raises(GradientCheckError, match="hidden.0.W_hh"):
        gradcheck(net, x, y, lengths)


def test_module_is_callable():
    net = build("rnn")
    x, y, lengths = batch()
    assert seqprop.gradcheck(net, x, y, lengths) == gradcheck(net, x, y, lengths)


@pytest.mark.parametrize("kind, kw", VARIANTS)
def test_padding_is_invisible(kind, kw):
    net = build(kind, **kw)
    x, y, lengths = batch(T=7, lengths=(7, 3, 5))
    loss, grads = net.loss_and_grad(x, y, lengths)
    grads = {k: v.copy() for k, v in grads.items()}
    probs = net.predict_proba(x, lengths)
    x2, y2 = x.copy(), y.copy()
    for b, L in enumerate(lengths):
        x2[L:, b] = 1e300 * (-1) ** np.arange(7 - L)[:, None]
        y2[L:, b] = 12345  # not even a valid class: ignored past the length
    loss2, grads2 = net.loss_and_grad(x2, y2, lengths)
    assert loss2 == loss
    for k in grads:
        np.testing.assert_array_equal(grads2[k], grads[k])
    np.testing.assert_array_equal(net.predict_proba(x2, lengths), probs)
    # a longer padded batch gives the same results too
    x3 = np.concatenate([x, np.full((4, 3, I), np.nan)])
    y3 = np.concatenate([y, np.zeros((4, 3), int)])
    loss3, grads3 = net.loss_and_grad(x3, y3, lengths)
    assert loss3 == pytest.approx(loss, rel=1e-13)
    for k in grads:
        np.testing.assert_allclose(grads3[k], grads[k], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kind", KINDS)
def test_batch_equals_sum_of_single_sequences(kind):
    net = build(kind)
    x, y, lengths = batch(T=6, lengths=(6, 2, 4))
    loss, grads = net.loss_and_grad(x, y, lengths)
    grads = {k: v.copy() for k, v in grads.items()}
    total = 0.0
    acc = {k: np.zeros_like(v) for k, v in grads.items()}
    for b, L in enumerate(lengths):
        lb, gb = net.loss_and_grad(x[:L, b : b + 1], y[:L, b : b + 1], [L])
        total += lb
        for k in acc:
            acc[k] += gb[k]
    assert loss == pytest.approx(total, rel=1e-12)
    for k in grads:
        np.testing.assert_allclose(grads[k], acc[k], rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("kind, kw", VARIANTS)
def test_float32_agrees_with_float64(kind, kw):
    n64 = build(kind, **kw)
    n32 = build(kind, dtype="float32", **kw)
    n32.flat_parameters[:] = n64.flat_parameters
    assert n32.flat_parameters.dtype == np.float32
    x, y, lengths = batch(T=20, lengths=(20, 13, 7))
    l64, g64 = n64.loss_and_grad(x, y, lengths)
    l32, g32 = n32.loss_and_grad(x, y, lengths)
    assert l32 == pytest.approx(l64, rel=1e-5)
    for k in g64:
        assert g32[k].dtype == np.float32
        scale = np.abs(g64[k]).max()
        np.testing.assert_allclose(g32[k], g64[k], rtol=1e-3, atol=1e-5 * scale, err_msg=k)
    np.testing.assert_allclose(
        n32.predict_proba(x, lengths), n64.predict_proba(x, lengths), atol=1e-5
    )


@pytest.mark.parametrize("kind, kw", VARIANTS)
def test_two_threads_bit_identical_to_one(kind, kw):
    """Directions (bidirectional) or shares of the batch (one direction) on two threads."""
    net = build(kind, **kw)
    x, y, lengths = batch(T=30, lengths=(30, 11, 24, 5, 30))
    l1, g1 = loss_and_grad_on(1, net, x, y, lengths)
    l2, g2 = loss_and_grad_on(2, net, x, y, lengths)
    assert l1 == l2
    for k in g1:
        np.testing.assert_array_equal(g1[k], g2[k])


def test_bidirectional_backward_direction_reads_each_sequence_backwards():
    """The bwd direction on a reversed sequence equals the fwd direction on the original."""
    net = build("blstm")
    p = net.parameters()
    for name in ("W_ih", "W_hh", "b", "w_peep"):
        p[f"hidden.0.bwd.{name}"][...] = p[f"hidden.0.fwd.{name}"]
    x, _, lengths = batch(T=6, lengths=(6, 4))
    layer = net.hidden[0][1]
    pl = net._layer_p[0]
    xc, lengths, _ = net._prepare(x, lengths)
    out, _ = layer.forward(pl, xc, lengths)
    for b, L in enumerate(lengths):
        xr = xc[:L, b : b + 1][::-1].copy()
        out_r, _ = layer.forward(pl, xr, np.array([L]))
        np.testing.assert_allclose(out[:L, b, H:], out_r[::-1, 0, :H], rtol=1e-13, atol=1e-15)


def test_layer_work_arrays_reused_once_released_never_while_held():
    """Workspace buffers: a held output is never overwritten, a released one is reused."""
    net = build("blstm")
    layer, pl = net.hidden[0][1], net._layer_p[0]
    x, _, lengths = batch(T=6, lengths=(6, 4))
    xc, lengths, _ = net._prepare(x, lengths)
    out1, cache1 = layer.forward(pl, xc, lengths)
    kept = out1.copy()
    out2, cache2 = layer.forward(pl, 2 * xc, lengths)
    assert not np.shares_memory(out1, out2)
    np.testing.assert_array_equal(out1, kept)  # the first call's output survives the second
    addresses = {out1.ctypes.data, out2.ctypes.data}
    del out1, cache1, out2, cache2
    out3, _ = layer.forward(pl, xc, lengths)
    assert out3.ctypes.data in addresses  # memory back from the released calls
    np.testing.assert_array_equal(out3, kept)
    # a training step gives the same gradient whether or not the buffers are fresh
    _, g1 = net.loss_and_grad(x, batch(T=6, lengths=(6, 4))[1], lengths)
    g1 = {k: v.copy() for k, v in g1.items()}
    fresh = net.copy()
    _, g2 = fresh.loss_and_grad(x, batch(T=6, lengths=(6, 4))[1], lengths)
    for k in g1:
        np.testing.assert_array_equal(g1[k], g2[k])


def test_parameter_contract_names_shapes_and_views():
    net = seqprop.make_network("blstm", 26, 93, 61, random_state=1)
    p = net.parameters()
    assert list(p) == [
        *(f"hidden.0.{d}.{n}" for d in ("fwd", "bwd") for n in ("W_ih", "W_hh", "b", "w_peep")),
        "output.W",
        "output.b",
    ]
    assert p["hidden.0.fwd.W_ih"].shape == (4 * 93, 26)
    assert p["hidden.0.bwd.W_hh"].shape == (4 * 93, 93)
    assert p["hidden.0.fwd.b"].shape == (4 * 93,)
    assert p["hidden.0.fwd.w_peep"].shape == (3, 93)
    assert p["output.W"].shape == (61, 186)
    assert net.num_parameters == sum(v.size for v in p.values()) == net.flat_parameters.size
    # the paper's BLSTM has about 100k weights
    assert 95_000 < net.num_parameters < 120_000
    assert np.abs(net.flat_parameters).max() <= 0.1
    # views: writing through either side is seen by the other
    p["output.b"][3] = 42.0
    assert 42.0 in net.flat_parameters
    net.flat_parameters[:] = 0.5
    assert (p["hidden.0.fwd.W_ih"] == 0.5).all()
    for name, shape in [
        ("rnn", {"hidden.0.W_ih": (7, 4), "hidden.0.W_hh": (7, 7), "hidden.0.b": (7,)}),
        ("mlp", {"hidden.0.W": (7, 12), "hidden.0.b": (7,)}),
        ("lstm", {"hidden.0.W_ih": (28, 4), "hidden.0.w_peep": (3, 7)}),
        ("brnn", {"hidden.0.bwd.W_hh": (7, 7), "output.W": (5, 14)}),
    ]:
        n = seqprop.make_network(name, 4, 7, 5, window=1 if name == "mlp" else 0)
        ps = n.parameters()
        for k, s in shape.items():
            assert ps[k].shape == s


def test_random_state_reproducible_and_uniform():
    a = seqprop.make_network("lstm", 4, 5, 3, random_state=7)
    b = seqprop.make_network("lstm", 4, 5, 3, random_state=7)
    c = seqprop.make_network("lstm", 4, 5, 3, random_state=8)
    np.testing.assert_array_equal(a.flat_parameters, b.flat_parameters)
    assert not np.array_equal(a.flat_parameters, c.flat_parameters)
    gen = seqprop.make_network("lstm", 4, 5, 3, random_state=np.random.default_rng(7))
    np.testing.assert_array_equal(gen.flat_parameters, a.flat_parameters)


def test_labelled_frames_only_and_all_unlabelled():
    net = build("blstm")
    x, y, lengths = batch()
    y[:] = -1
    loss, grads = net.loss_and_grad(x, y, lengths)
    assert loss == 0.0
    assert all((g == 0).all() for g in grads.values())
    loss, grads = net.loss_and_grad(x, y, lengths, reduction="mean")
    assert loss == 0.0


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda x, y, L: (x[0], y, L), "x must have shape"),
        (lambda x, y, L: (x[:, :, :2], y, L), "features per frame"),
        (lambda x, y, L: (x.astype(complex), y, L), "x must be a real"),
        (lambda x, y, L: (x, y, L[:2]), "lengths must have shape"),
        (lambda x, y, L: (x, y, L.astype(float)), "lengths must be integers"),
        (lambda x, y, L: (x, y, np.array([7, 3, 1])), r"lengths\[0\] = 7"),
        (lambda x, y, L: (x, y, np.array([6, -1, 1])), r"lengths\[1\] = -1"),
        (lambda x, y, L: (x, y[:5], L), "y must have shape"),
        (lambda x, y, L: (x, y.astype(float), L), "y must be integers"),
        (lambda x, y, L: (x, np.full_like(y, K), L), "not a class index"),
        (lambda x, y, L: (x, np.full_like(y, -2), L), "not a class index"),
        (lambda x, y, L: (np.where(np.arange(6)[:, None, None] == 2, np.nan, x), y, L), "NaN"),
    ],
)
def test_invalid_arguments_raise_value_error(change, match):
    net = build("blstm")
    x, y, lengths = batch()
    bad = change(x, y, lengths)
    with pytest.raises(ValueError, match=match):
        net.loss_and_grad(*bad)


@pytest.mark.parametrize("ydtype", [np.int64, np.int32, np.int8])
def test_targets_are_checked_within_the_lengths_only(ydtype):
    """Past a sequence's length the targets are not looked at; within it the first bad one
    (in frame order) is named."""
    net = build("blstm")
    x, y, lengths = batch()  # lengths (6, 3, 1)
    y = y.astype(ydtype)
    loss, _ = net.loss_and_grad(x, y, lengths)
    junk = y.copy()
    junk[4:, 1] = 99  # past the 3 frames of sequence 1
    junk[1:, 2] = K
    assert net.loss_and_grad(x, junk, lengths)[0] == loss
    junk[2, 1] = K
    junk[4, 0] = K + 1
    with pytest.raises(ValueError, match=rf"y\[2, 1\] = {K} is not a class index"):
        net.loss_and_grad(x, junk, lengths)


def test_invalid_make_network_arguments():
    with pytest.raises(ValueError, match="kind"):
        seqprop.make_network("gru", 3, 3, 3)
    with pytest.raises(ValueError, match="hidden_size"):
        seqprop.make_network("lstm", 3, 0, 3)
    with pytest.raises(ValueError, match="window"):
        seqprop.make_network("lstm", 3, 3, 3, window=2)
    with pytest.raises(ValueError, match="gradient"):
        seqprop.make_network("lstm", 3, 3, 3, gradient="partial")
    with pytest.raises(ValueError, match="dtype"):
        seqprop.make_network("lstm", 3, 3, 3, dtype="float16")
    with pytest.raises(ValueError, match="reduction"):
        build("lstm").loss_and_grad(*batch(), reduction="max")
    with pytest.raises(ValueError, match="flat_parameters"):
        build("lstm").flat_parameters = np.zeros(3)


def test_copy_and_spec_rebuild():
    net = build("blstm", gradient="truncated", squash="logistic2")
    other = net.copy()
    np.testing.assert_array_equal(other.flat_parameters, net.flat_parameters)
    other.flat_parameters[0] += 1
    assert other.flat_parameters[0] != net.flat_parameters[0]
    assert other.spec == net.spec


@settings(max_examples=40, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    lengths=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    extra=st.integers(0, 3),
    garbage=st.sampled_from([0.0, 1e300, -1e300, np.inf, np.nan, 7.5]),
    seed=st.integers(0, 2**16),
)
def test_property_padding_never_matters(kind, lengths, extra, garbage, seed):
    net = build(kind, seed=seed % 7)
    T = max(lengths) + extra
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(T, len(lengths), I))
    y = rng.integers(-1, K, size=(T, len(lengths)))
    L = np.array(lengths)
    loss, grads = net.loss_and_grad(x, y, L)
    grads = {k: v.copy() for k, v in grads.items()}
    for b, n in enumerate(lengths):
        x[n:, b] = garbage
        y[n:, b] = rng.integers(-50, 50)
    loss2, grads2 = net.loss_and_grad(x, y, L)
    assert loss2 == loss
    for k in grads:
        np.testing.assert_array_equal(grads2[k], grads[k])


def test_gradcheck_paper_init_and_float32_network():
    """Default (paper) initialisation and a float32 net are checked without false alarms."""
    net = seqprop.make_network("blstm", 4, 3, 5, random_state=1, dtype="float32")
    x, y, lengths = batch(T=6, lengths=(6, 4))
    y = np.clip(y, -1, 4)
    x = x[:, :, :1].repeat(4, axis=2)
    errors = gradcheck(net, x, y, lengths)
    assert max(errors.values()) < 1e-5
    assert net.dtype == np.float32  # left as it was


@pytest.mark.parametrize("kind", ["blstm", "mlp"])
def test_loss_and_grad_counts_correct_frames(kind):
    net = build(kind)
    x, y, lengths = batch(T=9, lengths=(9, 5, 7))
    scored = net.score(x, y, lengths)
    n, correct = scored.n_scored, scored.n_scored - scored.counts["errors"]
    stepped = net.step(x, y, lengths)
    assert (stepped.n_scored, stepped.counts) == (n, scored.counts)
    assert stepped.loss == pytest.approx(scored.loss_sum, rel=1e-12)
    assert scored.counts["frames"] == n
    pred = net.predict(x, lengths)
    valid = np.arange(9)[:, None] < lengths[None, :]
    assert correct == int(((pred == y) & (y >= 0) & valid).sum())
    assert n == int(((y >= 0) & valid).sum())


@pytest.mark.parametrize("kind", ["lstm", "mlp", "blstm"])
def test_large_batch_split_products_do_not_depend_on_thread_count(kind):
    """From SPLIT_MIN_FRAMES frames, frame-wide products are split in two halves."""
    from seqprop.products import SPLIT_MIN_FRAMES

    net = seqprop.make_network(kind, 5, 6, 7, window=1 if kind == "mlp" else 0, random_state=3)
    rng = np.random.default_rng(4)
    T, B = 300, 9
    assert T * B >= SPLIT_MIN_FRAMES
    x = rng.normal(size=(T, B, 5))
    y = rng.integers(-1, 7, size=(T, B))
    lengths = rng.integers(150, T + 1, size=B)
    results = []
    try:
        for n in (1, 2):
            set_num_threads(n)
            loss, _ = net.loss_and_grad(x, y, lengths)
            results.append((loss, net.flat_gradient.copy(), net.predict_proba(x, lengths)))
    finally:
        set_num_threads(None)
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])
    np.testing.assert_array_equal(results[0][2], results[1][2])
    # and the split products agree with unsplit ones to rounding
    single = [
        net.loss_and_grad(x[:, b : b + 1], y[:, b : b + 1], lengths[b : b + 1])[0] for b in range(B)
    ]
    assert results[0][0] == pytest.approx(sum(single), rel=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_weight_gradient_split_over_frames(dtype):
    """frame_grad_matmul: d^T x as two halves of the frames added in a fixed order, the
    same on one thread or two, and equal to the unsplit product to rounding."""
    from seqprop.products import SPLIT_MIN_FRAMES, frame_grad_matmul

    rng = np.random.default_rng(5)
    N = SPLIT_MIN_FRAMES + 7
    d = rng.normal(size=(N, 61)).astype(dtype)
    x = rng.normal(size=(N, 37)).astype(dtype)
    outs = []
    try:
        for n in (1, 2):
            set_num_threads(n)
            outs.append(frame_grad_matmul(d, x, np.empty((61, 37), dtype)))
    finally:
        set_num_threads(None)
    np.testing.assert_array_equal(outs[0], outs[1])
    h = N // 2
    with blas_single_thread():  # the products as the halves compute them
        np.testing.assert_array_equal(outs[0], d[:h].T @ x[:h] + d[h:].T @ x[h:])
        small = frame_grad_matmul(d[:100], x[:100], np.empty((61, 37), dtype))  # not split
        np.testing.assert_array_equal(small, d[:100].T @ x[:100])
    rtol = 1e-12 if dtype == "float64" else 1e-4
    np.testing.assert_allclose(outs[0], d.T @ x, rtol=rtol, atol=rtol * np.sqrt(N))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", ["tanh", "logistic"])
def test_mlp_split_products_with_activation_do_not_depend_on_thread_count(dtype, activation):
    """One sequence, products of SPLIT_MIN_MACS or more: each half does its product and
    its bias + activation (forward), its dE/dz and dE/dx (backward) on its own thread."""
    from seqprop.products import SPLIT_MIN_MACS

    T, H, window = 400, 300, 10
    net = seqprop.make_network(
        "mlp",
        26,
        H,
        61,
        window=window,
        num_layers=2,
        activation=activation,
        dtype=dtype,
        random_state=3,
    )
    assert T * (2 * window + 1) * 26 * H >= SPLIT_MIN_MACS  # first layer's forward product
    assert T * H * H >= SPLIT_MIN_MACS  # second layer's dE/dx product
    rng = np.random.default_rng(5)
    x = rng.normal(size=(T, 1, 26))
    y = rng.integers(-1, 61, size=(T, 1))
    lengths = np.array([T - 7])
    results = []
    try:
        for n in (1, 2, 1):
            set_num_threads(n)
            loss, _ = net.loss_and_grad(x, y, lengths)
            results.append((loss, net.flat_gradient.copy(), net.predict_proba(x, lengths)))
    finally:
        set_num_threads(None)
    for loss, grad, proba in results[1:]:
        assert loss == results[0][0]
        np.testing.assert_array_equal(grad, results[0][1])
        np.testing.assert_array_equal(proba, results[0][2])
    # split against unsplit: the same arithmetic per row, so agreement to rounding
    from seqprop import products

    saved = products.SPLIT_MIN_MACS
    products.SPLIT_MIN_MACS = 10**15
    try:
        loss1, _ = net.loss_and_grad(x, y, lengths)
        grad1 = net.flat_gradient.copy()
    finally:
        products.SPLIT_MIN_MACS = saved
    rel = 1e-4 if dtype == "float32" else 1e-12
    assert loss1 == pytest.approx(results[0][0], rel=rel)
    np.testing.assert_allclose(grad1, results[0][1], rtol=0, atol=rel * np.abs(grad1).max())


# ---------------------------------------------------------------- reverse, class weights
@pytest.mark.parametrize("kind, kw", [("lstm", {"squash": "logistic2"}), ("rnn", {})])
@pytest.mark.parametrize("gradient", ["full", "truncated"])
def test_reverse_reads_each_sequence_backwards(kind, kw, gradient):
    """reverse=True on x equals the forward net (same weights) on each sequence reversed
    within its own length, outputs reversed back; loss and gradients too."""
    fwd = build(kind, gradient=gradient, **kw)
    rev = build(kind, gradient=gradient, reverse=True, **kw)
    assert list(rev.parameters()) == list(fwd.parameters())  # no .fwd/.bwd: one direction
    rev.flat_parameters[:] = fwd.flat_parameters
    x, y, lengths = batch(T=6, lengths=(6, 4, 1))
    xr, yr = x.copy(), y.copy()
    for b, L in enumerate(lengths):
        xr[:L, b] = x[:L, b][::-1]
        yr[:L, b] = y[:L, b][::-1]
    p_rev, p_fwd = rev.predict_proba(x, lengths), fwd.predict_proba(xr, lengths)
    for b, L in enumerate(lengths):
        np.testing.assert_allclose(p_rev[:L, b], p_fwd[:L, b][::-1], rtol=1e-12, atol=1e-15)
    loss_r, g_r = rev.loss_and_grad(x, y, lengths)
    loss_f, g_f = fwd.loss_and_grad(xr, yr, lengths)
    assert loss_r == pytest.approx(loss_f, rel=1e-12)
    for name in g_f:
        np.testing.assert_allclose(g_r[name], g_f[name], rtol=1e-10, atol=1e-13, err_msg=name)
    # and it is not the forward net
    assert not np.allclose(rev.predict_proba(x, lengths), fwd.predict_proba(x, lengths))


def test_reverse_stored_in_spec_only_when_set():
    rev = build("lstm", reverse=True)
    assert rev.spec["reverse"] is True
    assert rev.copy().spec == rev.spec
    np.testing.assert_array_equal(rev.copy().flat_parameters, rev.flat_parameters)
    assert "reverse" not in build("lstm").spec
    assert "reverse" not in build("lstm", reverse=False).spec


def test_class_weights_scale_each_frames_loss_and_gradient():
    """Weighted loss = sum over frames of w[target] * (-ln p_target), from the network's own
    probabilities; all-ones weights give the unweighted loss and gradient; counts unweighted."""
    weights = [0.5, 2.0, 0.0, 1.3]
    plain = build("blstm")
    weighted = build("blstm", class_weights=weights)
    assert weighted.spec["class_weights"] == weights
    assert "class_weights" not in plain.spec
    weighted.flat_parameters[:] = plain.flat_parameters
    x, y, lengths = batch(T=6, lengths=(6, 4, 2))
    p = plain.predict_proba(x, lengths)
    naive = sum(
        weights[y[t, b]] * -np.log(p[t, b, y[t, b]])
        for b, L in enumerate(lengths)
        for t in range(L)
        if y[t, b] >= 0
    )
    r = weighted.step(x, y, lengths)
    assert r.loss == pytest.approx(naive, rel=1e-12)
    assert weighted.loss(x, y, lengths) == pytest.approx(naive, rel=1e-12)
    r_plain = plain.step(x, y, lengths)
    assert r.counts == r_plain.counts and r.n_scored == r_plain.n_scored
    mean = weighted.loss(x, y, lengths, reduction="mean")
    assert mean == pytest.approx(naive / r.n_scored, rel=1e-12)
    gradcheck(weighted, x, y, lengths, reduction="mean")

    ones = build("blstm", class_weights=[1.0] * K)
    ones.flat_parameters[:] = plain.flat_parameters
    loss1, g1 = ones.loss_and_grad(x, y, lengths)
    g1 = {k: v.copy() for k, v in g1.items()}
    loss0, g0 = plain.loss_and_grad(x, y, lengths)
    assert loss1 == pytest.approx(loss0, rel=1e-12)
    for name in g0:
        np.testing.assert_allclose(g1[name], g0[name], rtol=1e-12, atol=1e-15, err_msg=name)


def test_inverse_frequency_weights():
    from seqprop.heads.softmax import inverse_frequency_weights

    counts = np.array([10, 30, 0, 60])
    w = np.array(inverse_frequency_weights(counts))
    # w_c = N / (K' n_c) with K' = 3 classes present; 0 for the absent class
    np.testing.assert_allclose(w, [100 / 30, 100 / 90, 0.0, 100 / 180], rtol=1e-15)
    assert (counts * w).sum() == pytest.approx(counts.sum())  # mean weight per frame is 1
    assert w[0] / w[3] == pytest.approx(6.0)  # inversely proportional to frequency
    for bad in ([0, 0], [1, -1], [[1, 2]], []):
        with pytest.raises(ValueError):
            inverse_frequency_weights(bad)


@pytest.mark.parametrize("dtype", ["float16", ">f8", "<f4", "int32", "uint8", "float64"])
def test_input_dtypes_are_copied_into_the_network_dtype(dtype):
    """The compiled input copy takes any real dtype (others converted first) and checks
    finiteness only inside each sequence."""
    net = build("lstm", dtype="float32")
    x = (np.arange(4 * 2 * I).reshape(4, 2, I) % 5).astype(dtype)
    y, lengths = np.zeros((4, 2), dtype=int), np.array([4, 3])
    expected = net.loss(x.astype(np.float64), y, lengths)
    assert net.loss(x, y, lengths) == expected
    if np.dtype(dtype).kind == "f":
        x = x.copy()
        x[3, 1, 0] = np.inf  # past the second sequence's length: ignored
        assert net.loss(x, y, lengths) == expected
        x[2, 1, 1] = np.nan
        with pytest.raises(ValueError, match="frame 2 of sequence 1"):
            net.loss(x, y, lengths)
