"""Optimisers: SGD with momentum (the paper's update rule), state dicts, the registry,
the ``train.optimizer`` key."""

from __future__ import annotations

import numpy as np
import pytest

from seqprop.config import TrainConfig, config_from_dict, config_to_dict, dumps_toml, loads_toml
from seqprop.errors import ConfigError
from seqprop.network import make_network
from seqprop.optim import OPTIMIZERS, SGD, Optimizer, make_optimizer


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


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("threads", [1, 2])
def test_large_updates_split_in_two_halves_give_the_same_result(monkeypatch, dtype, threads):
    """From SPLIT_MIN_BYTES the update runs as two halves on the two threads, split at a
    cache line: the same numbers as the rule applied in one pass, whatever the thread
    count."""
    from seqprop import _parallel, products

    calls = []
    real = products.run_pair
    monkeypatch.setattr(products, "run_pair", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(products, "SPLIT_MIN_BYTES", 64)
    monkeypatch.setattr(_parallel, "_num_threads", threads)
    rng = np.random.default_rng(5)
    n = 1001  # halves of 496 / 505 (float32: 16 to a 64-byte line) or 496 / 505 (8 to a line)
    w0 = rng.normal(size=n).astype(dtype)
    grads = [rng.normal(size=n).astype(dtype) for _ in range(3)]
    w = w0.copy()
    opt = SGD(w, learning_rate=0.1, momentum=0.9)
    for g in grads:
        opt.step(g)
    assert len(calls) == 3  # split each time
    w_ref, v_ref = reference_steps(w0, grads, dtype(0.1), dtype(0.9))
    np.testing.assert_array_equal(w, w_ref)
    np.testing.assert_array_equal(opt.velocity, v_ref)


def test_small_updates_are_not_split(monkeypatch):
    from seqprop import products

    calls = []
    monkeypatch.setattr(products, "run_pair", lambda *a, **k: calls.append(1))
    w = np.zeros(products.SPLIT_MIN_BYTES // 8 - 1)
    SGD(w, learning_rate=0.1, momentum=0.9).step(np.ones_like(w))
    assert not calls
    np.testing.assert_array_equal(w, -0.1)


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


def test_state_dict_is_a_flat_mapping_of_arrays_and_numbers():
    w = np.arange(5, dtype=np.float32)
    opt = SGD(w, learning_rate=0.25, momentum=0.5)
    opt.step(np.ones(5, dtype=np.float32))
    state = opt.state_dict()
    assert sorted(state) == ["learning_rate", "momentum", "n_steps", "velocity"]
    assert state["learning_rate"] == 0.25 and type(state["learning_rate"]) is float
    assert state["momentum"] == 0.5 and type(state["momentum"]) is float
    assert state["n_steps"] == 1 and type(state["n_steps"]) is int
    assert state["velocity"].dtype == np.float32 and state["velocity"].shape == (5,)
    np.testing.assert_array_equal(state["velocity"], np.full(5, -0.25, np.float32))


def test_load_state_dict_accepts_numpy_scalars():
    """As read back from HDF5 attributes."""
    opt = SGD(np.zeros(3), learning_rate=0.1, momentum=0.5)
    opt.load_state_dict(
        {
            "learning_rate": np.float64(0.2),
            "momentum": np.float64(0.75),
            "n_steps": np.int64(4),
            "velocity": np.ones(3),
        }
    )
    assert (opt.learning_rate, opt.momentum, opt.n_steps) == (0.2, 0.75, 4)
    assert type(opt.n_steps) is int and type(opt.learning_rate) is float


def good_state(p: int = 3, dtype=np.float64) -> dict:
    return {"learning_rate": 0.1, "momentum": 0.5, "n_steps": 2, "velocity": np.ones(p, dtype)}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"velocity": np.zeros(5)}, r"'velocity' must be a float64 array of shape \(3,\)"),
        ({"velocity": np.zeros(3, np.float32)}, "got float32 array of shape"),
        ({"velocity": [0.0, 0.0, 0.0]}, "got list"),
        ({"velocity": np.zeros((3, 1))}, r"shape \(3, 1\)"),
        ({"n_steps": -1}, "'n_steps' must be an integer >= 0"),
        ({"n_steps": 2.0}, "'n_steps' must be an integer"),
        ({"n_steps": True}, "'n_steps' must be an integer"),
        ({"learning_rate": "0.1"}, "'learning_rate' must be a number"),
        ({"learning_rate": 0.0}, "learning_rate must be > 0"),
        ({"learning_rate": float("inf")}, "learning_rate must be a finite number"),
        ({"momentum": 1.0}, r"momentum must be in \[0, 1\)"),
        ({"extra": 1}, "unknown extra"),
        ({"velocity": None, "momentum": None}, "missing momentum, velocity"),
    ],
)
def test_load_state_dict_refuses_bad_state_and_changes_nothing(change, match):
    opt = SGD(np.zeros(3), learning_rate=0.3, momentum=0.2)
    opt.step(np.ones(3))
    before = opt.state_dict()
    state = {**good_state(), **change}
    state = {k: v for k, v in state.items() if v is not None}
    with pytest.raises(ValueError, match=match) as info:
        opt.load_state_dict(state)
    assert "\n" not in str(info.value)
    after = opt.state_dict()
    assert {k: v for k, v in after.items() if k != "velocity"} == {
        k: v for k, v in before.items() if k != "velocity"
    }
    np.testing.assert_array_equal(after["velocity"], before["velocity"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"learning_rate": True}, "learning_rate"),
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
    with pytest.raises(ValueError, match="contiguous"):
        SGD(np.zeros(6)[::2])
    opt = SGD(np.zeros(3))
    with pytest.raises(ValueError, match="gradient has shape"):
        opt.step(np.zeros(4))
    assert opt.n_steps == 0


# ---------------------------------------------------------------- the base class
class Adagrad(Optimizer):
    """A second update rule written as the module docstring says (not part of seqprop):
    only the class, nothing in the state or checkpoint code is specific to it."""

    name = "adagrad"
    buffers = ("sum_squares",)
    hyper_parameters = ("learning_rate", "eps")

    def __init__(self, parameters, learning_rate=0.1, eps=1e-8):
        self._check_hyper_parameters({"learning_rate": learning_rate, "eps": eps})
        super().__init__(parameters)
        self.learning_rate, self.eps = float(learning_rate), float(eps)

    @classmethod
    def from_config(cls, parameters, train):
        return cls(parameters, learning_rate=train.learning_rate)

    @staticmethod
    def _check_hyper_parameters(values):
        if not values["eps"] > 0:
            raise ValueError(f"eps must be > 0, got {values['eps']!r}")

    def _update(self, gradient):
        self.sum_squares += gradient * gradient
        self.parameters -= self.learning_rate * gradient / (np.sqrt(self.sum_squares) + self.eps)


def test_a_new_optimizer_gets_state_dict_from_the_base_class():
    rng = np.random.default_rng(3)
    grads = [rng.normal(size=6) for _ in range(5)]
    w_a = rng.normal(size=6)
    w_b = w_a.copy()
    a = Adagrad(w_a, learning_rate=0.3)
    for g in grads:
        a.step(g)
    b = Adagrad(w_b, learning_rate=0.3)
    for g in grads[:2]:
        b.step(g)
    state = b.state_dict()
    assert sorted(state) == ["eps", "learning_rate", "n_steps", "sum_squares"]
    w_c = w_b.copy()
    c = Adagrad(w_c, learning_rate=1.0, eps=0.5)
    c.load_state_dict(state)
    for g in grads[2:]:
        c.step(g)
    np.testing.assert_array_equal(w_c, w_a)
    assert c.n_steps == 5 and c.eps == 1e-8
    with pytest.raises(ValueError, match="eps must be > 0"):
        c.load_state_dict({**state, "eps": 0.0})
    with pytest.raises(ValueError, match="adagrad optimizer state: missing sum_squares"):
        c.load_state_dict({k: v for k, v in state.items() if k != "sum_squares"})


def test_the_base_class_is_not_an_optimizer():
    opt = Optimizer(np.zeros(2))
    with pytest.raises(NotImplementedError):
        opt.step(np.zeros(2))
    with pytest.raises(NotImplementedError):
        Optimizer.from_config(np.zeros(2), TrainConfig())


# ---------------------------------------------------------------- registry and config
def test_registry():
    assert OPTIMIZERS["sgd"] is SGD
    assert all(cls.name == name for name, cls in OPTIMIZERS.items())
    assert all(issubclass(cls, Optimizer) for cls in OPTIMIZERS.values())
    with pytest.raises(TypeError):
        OPTIMIZERS["other"] = SGD  # read-only: one definition


def test_make_optimizer_from_train_config():
    w = np.zeros(4)
    opt = make_optimizer(w, TrainConfig(learning_rate=0.5, momentum=0.25))
    assert isinstance(opt, SGD) and opt.parameters is w
    assert (opt.learning_rate, opt.momentum) == (0.5, 0.25)
    with pytest.raises(ValueError, match="unknown optimizer 'nope'; choices: sgd"):
        make_optimizer(w, TrainConfig(optimizer="nope"))


def test_train_optimizer_key():
    cfg = config_from_dict({"data": {"train": "t.h5"}})
    assert cfg.train.optimizer == "sgd"
    assert config_to_dict(cfg)["train"]["optimizer"] == "sgd"
    assert loads_toml(dumps_toml(cfg)).train.optimizer == "sgd"
    cfg = config_from_dict({"data": {"train": "t.h5"}, "train": {"optimizer": "sgd"}})
    assert cfg.train.optimizer == "sgd"
    with pytest.raises(ConfigError, match="train.optimizer must be one of 'sgd'; got 'adam'"):
        config_from_dict({"data": {"train": "t.h5"}, "train": {"optimizer": "adam"}})
    with pytest.raises(ConfigError, match="train.optimizer"):
        config_from_dict({"data": {"train": "t.h5"}, "train": {"optimizer": 1}})
