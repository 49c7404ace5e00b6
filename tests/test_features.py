"""The population-wide cost features equal the per-IR reference on every individual."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from approxmlp.cost.design import features
from approxmlp.search.config import SearchConfig
from approxmlp.cost.population import bit_length, max_masked, population_features, swidth
from approxmlp.search.genome import Population, allowed_weights
from approxmlp.search.operators import mutate_one, seed_population

from tests.strategies import mlps, random_mlp


def _reference(pop: Population) -> np.ndarray:
    return np.vstack([features(pop.individual(i)) for i in range(pop.size)])


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(mlps(approx=True), st.integers(0, 2**31), st.sampled_from(["int", "pow2", "csd2"]))
def test_population_features_match_the_reference(mlp, seed, kind):
    rng = np.random.default_rng(seed)
    pop = Population.from_mlp(mlp, 5)
    allowed = allowed_weights(8, kind)
    for i in range(1, pop.size):  # mutants: removed connections, masks, truncations, dead neurons
        mutate_one(pop, i, SearchConfig(), rng, allowed, scale=float(rng.uniform(1, 40)))
    np.testing.assert_allclose(population_features(pop), _reference(pop), rtol=1e-12, atol=1e-12)


def test_population_features_on_a_wide_deep_network():
    """digits-sized (64-32-16-10), int and pow2 value sets, with product and activation
    truncations (multi-digit truncated products take their own adder path) and argmax drops."""
    rng = np.random.default_rng(3)
    for kind in ("pow2", "int"):
        pop = seed_population(random_mlp([64, 32, 16, 10], rng), SearchConfig(population=12, multipliers=kind), rng)
        for li in range(len(pop.weights)):
            pop.product_trunc[li][::3] = rng.integers(0, 4, size=pop.product_trunc[li][::3].shape)
        pop.act_trunc[0][::2] = rng.integers(0, 4, size=pop.act_trunc[0][::2].shape)
        pop.cmp_drop[::2] = rng.integers(0, 8, size=pop.cmp_drop[::2].shape)
        np.testing.assert_allclose(population_features(pop), _reference(pop), rtol=1e-12, atol=1e-12)


@given(st.integers(0, 1 << 40), st.integers(-(1 << 40), 1 << 40))
def test_width_helpers(a, b):
    from approxmlp.core.ir import signed_width

    assert bit_length(np.array([a]))[0] == a.bit_length()
    lo, hi = min(a, b), max(a, b)
    assert swidth(np.array([lo]), np.array([hi]))[0] == signed_width(lo, hi)


@given(st.integers(0, 255), st.integers(0, 255))
def test_max_masked(hi, mask):
    from approxmlp.core.ranges import _max_masked

    assert max_masked(np.array([hi]), np.array([mask]))[0] == _max_masked(hi, mask)
