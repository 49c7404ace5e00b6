"""Retraining of a population's constants: the torch model is bit-exact with the golden
model, the structure stays fixed, the result is deterministic and never worse."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

import torch

from approxmlp.search.evaluate import PopulationEvaluator
from approxmlp.search.genome import Population, allowed_weights, project_weights
from approxmlp.core.golden import evaluate
from approxmlp.search.retrain import RetrainConfig, _Model, retrain
from tests.strategies import inputs_for, mlps


def _random_population(base, rng, n=4, kind="int", bits=8):
    """``base`` plus ``n`` variants with random genes; weights on the ``kind`` value set."""
    allowed = allowed_weights(bits, kind)
    parts = [Population.from_mlp(base, 1)]
    for li in range(len(base.layers)):
        parts[0].weights[li] = project_weights(parts[0].weights[li], allowed)
    for _ in range(n):
        p = Population.from_mlp(base, 1)
        for li, layer in enumerate(base.layers):
            ob = base.operand_bits(li)
            p.weights[li] = project_weights(rng.integers(-100, 101, size=p.weights[li].shape), allowed)
            p.masks[li] = rng.integers(0, 1 << ob, size=p.masks[li].shape)
            p.product_trunc[li] = rng.integers(0, 4, size=p.product_trunc[li].shape)
            if layer.activation == "qrelu":
                p.act_trunc[li] = rng.integers(0, layer.act_bits, size=p.act_trunc[li].shape)
        p.cmp_drop = rng.integers(0, 4, size=p.cmp_drop.shape)
        parts.append(p)
    return Population.concat(parts)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_torch_model_is_bit_exact(data):
    base = data.draw(mlps())
    X = data.draw(inputs_for(base, n=40))
    kind = data.draw(st.sampled_from(["int", "pow2", "csd2"]))
    pop = _random_population(base, np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))), kind=kind)
    model = _Model(pop, X, RetrainConfig(multipliers=kind), torch)
    with torch.no_grad():
        got = model.forward().argmax(dim=1).numpy()
    for i in range(pop.size):
        assert got[i].tolist() == evaluate(pop.individual(i), X).classes.tolist(), i
    # the genes read back are the ones given (the weights were on the value set)
    W, B = model.genes()
    for li in range(len(W)):
        assert (W[li] == pop.weights[li] * ((pop.masks[li] != 0))).all()
        assert (B[li] == pop.biases[li]).all()


def test_float64_when_float32_would_not_be_exact():
    from approxmlp.core.ir import Layer, MLP

    big = 1 << 30  # a bias far past 2**24
    ir = MLP(n_inputs=2, input_bits=4, layers=(
        Layer(weights=[[3, -2], [1, 1]], biases=[big, 5], shift=2, act_bits=8),
        Layer(weights=[[1, -1], [-1, 2]], biases=[0, 1], activation="linear")))
    X = np.random.default_rng(0).integers(0, 16, size=(50, 2))
    pop = Population.from_mlp(ir, 1)
    model = _Model(pop, X, RetrainConfig(multipliers="int"), torch)
    assert model.dtype == torch.float64
    with torch.no_grad():
        assert model.forward().argmax(dim=1).numpy()[0].tolist() == evaluate(ir, X).classes.tolist()


def _problem():
    from tests.test_approx import _search_setup

    ir, X, y, _ = _search_setup()
    return ir, X, y


def test_retrain_keeps_structure_is_deterministic_and_never_worse():
    ir, X, y = _problem()
    rng = np.random.default_rng(5)
    pop = Population.from_mlp(ir, 4)
    allowed = allowed_weights(8, "pow2")
    for li in range(len(pop.weights)):
        pop.weights[li] = project_weights(pop.weights[li], allowed)
        cut = rng.random(pop.masks[li].shape) < 0.3  # a structure to repair
        pop.masks[li][cut] = 0
    before = (PopulationEvaluator(X)(pop) == y).mean(axis=1)
    cfg = RetrainConfig(steps=40, eval_every=10)
    new, acc = retrain(pop, X, y, cfg, seed=1)
    again, acc2 = retrain(pop, X, y, cfg, seed=1)
    assert acc.tolist() == acc2.tolist()
    for li in range(len(pop.weights)):
        assert (new.weights[li] == again.weights[li]).all() and (new.biases[li] == again.biases[li]).all()
        # structure: masks and truncations untouched, removed connections stay removed,
        # weights on the value set
        assert (new.masks[li] == pop.masks[li]).all()
        assert (new.product_trunc[li] == pop.product_trunc[li]).all()
        assert (new.act_trunc[li] == pop.act_trunc[li]).all()
        assert (new.weights[li][(pop.weights[li] == 0) | (pop.masks[li] == 0)] == 0).all()
        assert np.isin(new.weights[li], allowed).all()
    # the reported accuracy is the circuit's, and never below the start
    assert np.allclose((PopulationEvaluator(X)(new) == y).mean(axis=1), acc)
    assert (acc >= before - 1e-12).all()
    assert (acc > before).any()


def test_retrain_of_no_individuals_is_a_no_op():
    """A memetic step whose archive holds nothing feasible (a power budget nothing meets)
    hands over no children: that is an empty population back, not a torch reshape error."""
    ir, X, y = _problem()
    empty = Population.from_mlp(ir, 2).take(np.arange(0, dtype=np.int64))
    new, acc = retrain(empty, X, y, RetrainConfig(steps=5), seed=0)
    assert new.size == 0 and acc.shape == (0,)
