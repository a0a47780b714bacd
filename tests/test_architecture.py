"""docs/ARCHITECTURE.md's worked example: a new output head is one class, and it works."""

import re
from pathlib import Path

import numpy as np
import pytest

import seqprop
from seqprop.gradient_check import gradcheck
from seqprop.heads import HEADS

DOC = Path(__file__).resolve().parents[1] / "docs" / "ARCHITECTURE.md"


@pytest.fixture
def poisson_head():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 1, "the walkthrough has one python block"
    namespace: dict = {}
    exec(compile(blocks[0], str(DOC), "exec"), namespace)
    try:
        yield namespace["PoissonHead"]
    finally:
        HEADS.pop("poisson", None)


def counts_batch(T=7, B=3, K=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(T, B, 4))
    y = rng.poisson(2.0, size=(T, B, K)).astype(np.float64)
    y[1, 0] = np.nan  # a frame not scored
    lengths = np.array([T, T - 2, 3])
    return x, y, lengths


@pytest.mark.parametrize("kind", ["blstm", "lstm", "rnn", "mlp"])
def test_walkthrough_head_gradients_match_finite_differences(poisson_head, kind):
    net = seqprop.make_network(kind, 4, 3, 2, head="poisson", random_state=1)
    net.flat_parameters[...] = np.random.default_rng(2).uniform(-0.5, 0.5, net.num_parameters)
    assert isinstance(net.head, poisson_head)
    x, y, lengths = counts_batch()
    errors = gradcheck(net, x, y, lengths, rtol=1e-6)
    assert max(errors.values()) < 1e-6
    errors = gradcheck(net, x, y, lengths, rtol=1e-6, reduction="mean")
    assert max(errors.values()) < 1e-6


def test_walkthrough_head_loss_metrics_and_padding(poisson_head):
    net = seqprop.make_network("blstm", 4, 3, 2, head="poisson", random_state=1)
    x, y, lengths = counts_batch()
    result = net.step(x, y, lengths)
    rate = net.predict_proba(x, lengths)
    valid = (np.arange(7)[:, None] < lengths[None, :]) & ~np.isnan(y).all(axis=2)
    a = np.log(rate[valid])
    assert result.loss == pytest.approx(float(np.sum(rate[valid] - y[valid] * a)), rel=1e-10)
    assert result.n_scored == int(valid.sum()) == result.counts["frames"]
    assert net.head.metrics(result.counts)["mean_deviance"] > 0
    garbage = x.copy()
    garbage[6:, 2] = 1e30  # past sequence 2's end
    assert net.step(garbage, y, lengths).loss == result.loss
    with pytest.raises(ValueError, match="counts"):
        net.step(x, -np.abs(y), lengths)
