"""SGD with momentum: the paper's update rule, in place, with restorable state."""

from __future__ import annotations

import numpy as np
import pytest

from seqprop.network import make_network
from seqprop.optim import SGD


def reference_steps(w, grads, lr, momentum):
    w = w.copy()
    v = np.zeros_like(w)
    for g in grads:
        v = momentum * v - lr * g
        w = w + v
    return w, v


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_momentum_update_rule(dtype):
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=50).astype(dtype)
    grads = [rng.normal(size=50).astype(dtype) for _ in range(5)]
    w = w0.copy()
    opt = SGD(w, learning_rate=0.1, momentum=0.9)
    for g in grads:
        opt.step(g)
    lr, mom = dtype(0.1), dtype(0.9)
    w_ref, v_ref = reference_steps(w0, grads, lr, mom)
    assert w.dtype == dtype and opt.velocity.dtype == dtype
    np.testing.assert_array_equal(w, w_ref)
    np.testing.assert_array_equal(opt.velocity, v_ref)
    assert opt.n_steps == 5


def test_zero_momentum_is_gradient_descent():
    w = np.ones(4)
    opt = SGD(w, learning_rate=0.5, momentum=0.0)
    opt.step(np.array([1.0, 2.0, -2.0, 0.0]))
    opt.step(np.array([1.0, 2.0, -2.0, 0.0]))
    np.testing.assert_array_equal(w, [0.0, -1.0, 3.0, 1.0])


def test_updates_network_parameters_in_place():
    net = make_network("lstm", 3, 4, 5, random_state=0)
    before = {k: v.copy() for k, v in net.parameters().items()}
    x = np.random.default_rng(1).normal(size=(6, 1, 3))
    y = np.zeros((6, 1), dtype=np.int64)
    opt = SGD(net.flat_parameters, learning_rate=0.01, momentum=0.9)
    loss0, _ = net.loss_and_grad(x, y, np.array([6]))
    opt.step(net.flat_gradient)
    views = net.parameters()
    assert any(not np.array_equal(views[k], before[k]) for k in before)
    loss1, _ = net.loss_and_grad(x, y, np.array([6]))
    assert loss1 < loss0


def test_state_dict_round_trip_continues_identically():
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=10) for _ in range(6)]
    w_a = rng.normal(size=10)
    w_b = w_a.copy()
    a = SGD(w_a, learning_rate=0.05, momentum=0.8)
    for g in grads:
        a.step(g)
    b = SGD(w_b, learning_rate=0.05, momentum=0.8)
    for g in grads[:3]:
        b.step(g)
    state = b.state_dict()
    w_c = w_b.copy()
    c = SGD(w_c, learning_rate=1.0, momentum=0.0)
    c.load_state_dict(state)
    assert c.learning_rate == 0.05 and c.momentum == 0.8 and c.n_steps == 3
    for g in grads[3:]:
        c.step(g)
    np.testing.assert_array_equal(w_c, w_a)
    state["velocity"][:] = 99  # the state is a copy
    assert not np.any(c.velocity == 99)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"momentum": 1.0}, "momentum"),
        ({"momentum": -0.1}, "momentum"),
    ],
)
def test_bad_hyper_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SGD(np.zeros(3), **kwargs)


def test_bad_shapes():
    with pytest.raises(ValueError, match="1-D"):
        SGD(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="float"):
        SGD(np.zeros(3, dtype=np.int64))
    opt = SGD(np.zeros(3))
    with pytest.raises(ValueError, match="gradient has shape"):
        opt.step(np.zeros(4))
    with pytest.raises(ValueError, match="velocity of shape"):
        opt.load_state_dict({"velocity": np.zeros(5)})
