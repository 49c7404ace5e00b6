"""The population genome: round trip to IRs, and vectorized evaluation == golden model."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from approxmlp.approx import Population, allowed_weights, evaluate_population, project_weights
from approxmlp.emit import csd
from approxmlp.golden import evaluate
from tests.strategies import inputs_for, mlps


def test_allowed_weights():
    assert allowed_weights(4, "int").tolist() == list(range(-7, 8))
    assert allowed_weights(5, "pow2").tolist() == [-8, -4, -2, -1, 0, 1, 2, 4, 8]
    csd2 = allowed_weights(8, "csd2")
    assert 0 in csd2 and 127 in csd2 and 85 not in csd2 and 96 in csd2 and 7 in csd2
    assert all(len(csd(abs(int(v)))) <= 2 for v in csd2)


def test_project_weights():
    allowed = allowed_weights(8, "pow2")
    W = np.array([[0, 3, -3, 5, 6, 100, -127]])
    assert project_weights(W, allowed).tolist() == [[0, 2, -2, 4, 4, 64, -64]]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_population_equals_golden(data):
    base = data.draw(mlps())
    X = data.draw(inputs_for(base, n=50))
    pop = Population.from_mlp(base, 1)
    # Individuals: the base, plus variants with random genes of the same shapes.
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    variants = [pop]
    for _ in range(4):
        p = Population.from_mlp(base, 1)
        for li, layer in enumerate(base.layers):
            bits = base.operand_bits(li)
            p.weights[li] = rng.integers(-40, 41, size=p.weights[li].shape)
            p.masks[li] = rng.integers(0, 1 << bits, size=p.masks[li].shape)
            p.product_trunc[li] = rng.integers(0, 3, size=p.product_trunc[li].shape)
            if layer.activation == "qrelu":
                p.act_trunc[li] = rng.integers(0, layer.act_bits, size=p.act_trunc[li].shape)
        p.cmp_drop = rng.integers(0, 4, size=p.cmp_drop.shape)
        variants.append(p)
    pop = Population.concat(variants)
    got = evaluate_population(pop, X, chunk_bytes=1 << 12)
    for i in range(pop.size):
        mlp = pop.individual(i)
        assert got[i].tolist() == evaluate(mlp, X).classes.tolist(), i


def test_individual_roundtrip(tiny_approx):
    pop = Population.from_mlp(tiny_approx, 3)
    assert pop.individual(2) == tiny_approx
