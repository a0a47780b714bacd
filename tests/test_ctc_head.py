"""The ctc head: whole-network gradients, the loss against seqprop.ctc, padding, dtypes, bad input.

The CTC loss and its kernels are checked against brute force in
``tests/test_ctc.py``; here the head that puts them on a network is.
"""

import numpy as np
import pytest

import seqprop
from seqprop import ctc
from seqprop.gradient_check import gradcheck
from seqprop.heads import CTCHead, TargetKind, get_head
from seqprop.heads.ctc import LabelErrorCounter

I, H, K = 3, 3, 4
LENGTHS = np.array([6, 4, 5])
# repeated labels, a short target, an empty target
Y = np.array([[1, 1, 2], [3, -1, -1], [-1, -1, -1]])


def build(kind="blstm", dtype="float64", seed=0, scale=0.5):
    net = seqprop.make_network(kind, I, H, K, head="ctc", dtype=dtype)
    net.init_parameters(seed)
    rng = np.random.default_rng(seed + 100)
    net.flat_parameters[...] = rng.normal(scale=scale, size=net.flat_parameters.size)
    return net


def inputs(T=6, B=3, seed=1):
    return np.random.default_rng(seed).normal(size=(T, B, I))


def test_registered_with_label_sequence_targets():
    assert get_head("ctc") is CTCHead
    assert CTCHead.target_kind is TargetKind.LABEL_SEQUENCE
    net = build()
    assert net.parameters()["output.W"].shape == (K + 1, 2 * H)
    assert net.parameters()["output.b"].shape == (K + 1,)
    assert net.spec["head"] == "ctc"


@pytest.mark.parametrize("kind", ["blstm", "lstm"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_whole_network_gradient_matches_central_differences(kind, reduction):
    net = build(kind)
    errors = gradcheck(net, inputs(), Y, LENGTHS, reduction=reduction, rtol=1e-6)
    assert max(errors.values()) < 1e-6
    assert set(errors) == set(net.parameters())


def test_loss_equals_seqprop_ctc_on_the_logits():
    # no hidden layer: the logits are W x + b, computable by hand
    net = seqprop.make_network("mlp", I, 1, K, head="ctc", num_layers=0)
    net.flat_parameters[...] = np.random.default_rng(3).normal(size=net.flat_parameters.size)
    x = inputs()
    p = net.parameters()
    logits = x @ p["output.W"].T + p["output.b"]
    want, losses = ctc.ctc_loss(logits, LENGTHS, Y)
    assert net.loss(x, Y, LENGTHS) == pytest.approx(want, rel=1e-12)
    assert net.loss(x, Y, LENGTHS, reduction="mean") == pytest.approx(want / 3, rel=1e-12)
    r = net.step(x, Y, LENGTHS, reduction="mean")
    assert r.loss_sum == pytest.approx(want, rel=1e-12)
    assert r.n_scored == 3
    _, _, dlogits = ctc.ctc_loss_and_grad(logits, LENGTHS, Y)
    _, g = net.loss_and_grad(x, Y, LENGTHS)
    want_gb = dlogits.sum(axis=(0, 1))
    np.testing.assert_allclose(g["output.b"], want_gb, rtol=1e-10, atol=1e-12)
    probs = net.predict_proba(x, LENGTHS)
    assert probs.shape == (6, 3, K + 1)
    np.testing.assert_allclose(probs[:4, 1].sum(axis=1), 1.0)
    assert not probs[4:, 1].any()
    decoded = net.predict(x, LENGTHS)
    assert len(decoded) == 3
    for got, want_seq in zip(decoded, ctc.best_path_decode(logits, LENGTHS), strict=True):
        np.testing.assert_array_equal(got, want_seq)


def test_padding_frames_and_labels_change_nothing():
    net = build()
    x = inputs()
    loss, g = net.loss_and_grad(x, Y, LENGTHS)
    g = {k: v.copy() for k, v in g.items()}
    x2 = np.concatenate([x, np.random.default_rng(9).normal(size=(3, 3, I)) * 50], axis=0)
    for b, n in enumerate(LENGTHS):
        x2[n:, b] = 1e3 * (b + 1)
    y2 = np.concatenate([Y, np.full((3, 2), -1)], axis=1)
    loss2, g2 = net.loss_and_grad(x2, y2, LENGTHS)
    assert loss2 == pytest.approx(loss, rel=1e-13)
    for k in g:
        np.testing.assert_allclose(g2[k], g[k], rtol=1e-11, atol=1e-14)


def test_float32_agrees_with_float64():
    n64 = build(dtype="float64")
    n32 = build(dtype="float32")
    n32.flat_parameters[...] = n64.flat_parameters
    x = inputs()
    l64, g64 = n64.loss_and_grad(x, Y, LENGTHS)
    l32, g32 = n32.loss_and_grad(x.astype(np.float32), Y, LENGTHS)
    assert l32 == pytest.approx(l64, rel=1e-5)
    for k in g64:
        scale = np.abs(g64[k]).max()
        assert np.abs(g32[k] - g64[k]).max() <= 1e-4 * max(scale, 1e-3), k


def test_empty_targets_score_the_all_blank_path():
    net = seqprop.make_network("mlp", I, 1, K, head="ctc", num_layers=0)
    net.flat_parameters[...] = np.random.default_rng(4).normal(size=net.flat_parameters.size)
    x = inputs()
    y = np.full((3, 0), -1)
    probs = net.predict_proba(x, LENGTHS)
    want = -sum(np.log(probs[: LENGTHS[b], b, K]).sum() for b in range(3))
    assert net.loss(x, y, LENGTHS) == pytest.approx(want, rel=1e-10)
    gradcheck(net, x, y, LENGTHS, rtol=1e-6)


def test_infeasible_target_names_the_sequence():
    net = build()
    y = np.array([[1, 2, 3], [1, 1, 1], [0, -1, -1]])  # sequence 1 needs 5 frames, has 4
    with pytest.raises(ValueError, match="sequence 1"):
        net.loss_and_grad(inputs(), y, LENGTHS)


@pytest.mark.parametrize("bad", [K, K + 1, -2])
def test_out_of_range_labels_are_refused(bad):
    net = build()
    y = Y.copy()
    y[0, 1] = bad
    with pytest.raises(ValueError, match="sequence 0"):
        net.loss(inputs(), y, LENGTHS)


def test_bad_target_shapes_and_dtypes():
    net = build()
    with pytest.raises(ValueError, match=r"\(B, U\)"):
        net.loss(inputs(), Y[:2], LENGTHS)
    with pytest.raises(ValueError, match="integers"):
        net.loss(inputs(), Y.astype(float), LENGTHS)


def test_counts_add_up_to_the_label_error_rate():
    net = build()
    x = inputs()
    r = net.step(x, Y, LENGTHS)
    hyps = net.predict(x, LENGTHS)
    refs = [Y[b][Y[b] >= 0] for b in range(3)]
    want = ctc.label_error_rate(refs, hyps)
    assert r.counts["label_edits"] == want["edits"]
    assert r.counts["reference_labels"] == 4
    m = net.head.metrics(r.counts)
    assert m["label_error"] == pytest.approx(want["label_error_rate"])
    # counts of two halves add up to those of the whole batch
    r0 = net.score(x[:, :1], Y[:1], LENGTHS[:1])
    r1 = net.score(x[:, 1:], Y[1:], LENGTHS[1:])
    for k in net.head.count_names:
        assert r0.counts[k] + r1.counts[k] == r.counts[k]
    assert net.score(x, Y, LENGTHS).loss_sum == pytest.approx(r.loss_sum)
    assert np.isnan(net.head.metrics({})["label_error"])


def test_evaluator_decoders_and_timit_folding():
    from seqprop.corpora.timit import phones as timit

    names = list(timit.phones61())
    rng = np.random.default_rng(0)
    T = 12
    proba = rng.dirichlet(np.ones(len(names) + 1) * 0.3, size=T)
    ref = np.array([names.index(p) for p in ("h#", "sh", "iy", "q", "pau")])
    best = LabelErrorCounter(names)
    beam = LabelErrorCounter(names, decoder="beam", beam_width=8)
    for ev in (best, beam):
        ev.add(proba, ref)
    rb, rs = best.result(1), beam.result(1)
    hyp = ctc.best_path_decode(proba[:, None, :], [T])[0]
    assert rb.scores["edits"] == ctc.edit_distance(ref, hyp)[0]
    assert rs.decoder == "beam" and rs.beam_width == 8
    assert rb.folded["classes"] == 39
    # q folds to nothing; h# and pau both fold to sil: 4 reference labels
    assert rb.folded["reference_labels"] == 4
    assert rb.loss > 0
    d = rb.to_dict()
    assert d["label_error_rate"] == rb.label_error_rate
    frame = LabelErrorCounter(names, decoder="framewise")
    frame.add(proba[:, :-1], ref)
    want = ctc.merge_framewise(proba[:, :-1])
    assert frame.result(1).scores["edits"] == ctc.edit_distance(ref, want)[0]
    with pytest.raises(ValueError, match="decoder"):
        LabelErrorCounter(names, decoder="viterbi")
    with pytest.raises(ValueError, match="beam width"):
        LabelErrorCounter(names, decoder="beam", beam_width=0)
