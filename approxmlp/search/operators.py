"""Variation operators: how children are made from parents.

Each is a small function of the population arrays and an explicit
``numpy.random.Generator`` (never the global ``random`` module), so a search is a function
of its seed. Mutation moves along the hardware choices of :mod:`approxmlp.search.genome`:
a constant one step through the allowed value set (or to zero), a connection removed or
restored, an operand bit flipped, a bias nudged, a truncation deepened or relaxed.
"""

from __future__ import annotations

import numpy as np

from ..core.ir import MAX_BIAS_BITS
from .config import SearchConfig
from .front import Scored, rank_and_crowding
from .genome import Population, allowed_weights, project_weights


def seed_population(base, cfg: SearchConfig, rng: np.random.Generator) -> Population:
    """The seed model (weights projected onto the allowed set) plus mutants of it, from
    gentle to strong, so the first front already spans accuracy and area."""
    allowed = allowed_weights(cfg.weight_bits, cfg.multipliers)
    pop = Population.from_mlp(base, cfg.population)
    for li in range(len(pop.weights)):
        pop.weights[li] = project_weights(pop.weights[li], allowed)
    changes = np.geomspace(1.0, 4.0 * max(1.0, cfg.mutations), max(1, cfg.population - 1))
    per_change = 1.0 / expected_changes(base, cfg)
    for i in range(1, cfg.population):
        mutate_one(pop, i, cfg, rng, allowed, scale=changes[i - 1] * per_change)
    return pop


def mutate_one(pop: Population, i: int, cfg: SearchConfig, rng: np.random.Generator,
               allowed: np.ndarray, scale: float = 1.0) -> None:
    """Mutate individual ``i`` in place. ``scale`` multiplies every per-gene probability;
    callers derive it from a number of gene changes (see :func:`expected_changes`)."""
    base = pop.base
    for li, layer in enumerate(base.layers):
        W, M = pop.weights[li][i], pop.masks[li][i]
        bits = base.operand_bits(li)
        hit = rng.random(W.shape) < min(1.0, cfg.p_weight * scale)
        if hit.any():
            pos = np.searchsorted(allowed, W[hit])
            step = rng.choice([-1, 1], size=pos.shape)
            zero = rng.random(pos.shape) < 0.3
            new = allowed[np.clip(pos + step, 0, len(allowed) - 1)]
            W[hit] = np.where(zero, 0, new)
        hit = rng.random(M.shape) < min(1.0, cfg.p_prune * scale)
        if hit.any():  # DATE'24 removes 40-70% of connections: make that a single step
            full = (1 << bits) - 1
            M[hit] = np.where(M[hit] == 0, full, 0)
        hit = rng.random(M.shape) < min(1.0, cfg.p_mask * scale)
        if hit.any():
            # flip one bit, low bits more often: they cost adders and matter least
            weights = 2.0 ** -np.arange(bits)
            b = rng.choice(bits, size=int(hit.sum()), p=weights / weights.sum())
            M[hit] ^= (1 << b)
        B = pop.biases[li][i]
        hit = rng.random(B.shape) < min(1.0, cfg.p_bias * scale)
        if hit.any():  # steps of ~5 % of the layer's bias range, at least an output LSB
            spread = float(np.abs(base.layers[li].bias_vector).max()) + (1 << layer.shift)
            step = np.rint(rng.normal(0.0, 0.05 * spread, size=int(hit.sum()))).astype(np.int64)
            B[hit] = np.clip(B[hit] + step, -(1 << (MAX_BIAS_BITS - 1)), (1 << (MAX_BIAS_BITS - 1)) - 1)
        for arr, top in ((pop.product_trunc[li][i], 6),
                         (pop.act_trunc[li][i], layer.act_bits - 1 if layer.activation == "qrelu" else 0)):
            hit = rng.random(arr.shape) < min(1.0, cfg.p_trunc * scale)
            if hit.any() and top > 0:
                arr[hit] = np.clip(arr[hit] + rng.choice([-1, 1], size=int(hit.sum())), 0, top)
    hit = rng.random(pop.cmp_drop[i].shape) < min(1.0, cfg.p_trunc * scale)
    if hit.any():
        pop.cmp_drop[i][hit] = np.clip(pop.cmp_drop[i][hit] + rng.choice([-1, 1], size=int(hit.sum())), 0, 8)


def expected_changes(base, cfg: SearchConfig) -> float:
    """Gene changes :func:`mutate_one` makes on average at ``scale=1`` (the p_* of ``cfg``)."""
    conn = sum(layer.n_in * layer.n_out for layer in base.layers)
    neurons = sum(layer.n_out for layer in base.layers)
    trunc = sum(layer.n_out * (2 if layer.activation == "qrelu" else 1) for layer in base.layers)
    return (conn * (cfg.p_weight + cfg.p_prune + cfg.p_mask) + neurons * cfg.p_bias
            + (trunc + base.layers[-1].n_out) * cfg.p_trunc)


def crossover(pop: Population, a: int, b: int, rng: np.random.Generator) -> None:
    """Uniform crossover of whole neurons (a neuron's genes travel together)."""
    for li in range(len(pop.weights)):
        n_out = pop.weights[li].shape[1]
        swap = rng.random(n_out) < 0.5
        for arrs in (pop.weights, pop.masks, pop.biases, pop.product_trunc, pop.act_trunc):
            arr = arrs[li]
            tmp = arr[a, swap].copy()
            arr[a, swap] = arr[b, swap]
            arr[b, swap] = tmp
    swap = rng.random(pop.cmp_drop.shape[1]) < 0.5
    tmp = pop.cmp_drop[a, swap].copy()
    pop.cmp_drop[a, swap] = pop.cmp_drop[b, swap]
    pop.cmp_drop[b, swap] = tmp


def offspring(parents: Scored, cfg: SearchConfig, rng: np.random.Generator) -> Population:
    """Children of ``parents``: binary tournaments on (non-domination rank, crowding) pick
    the mates, as in NSGA-II; then neuron crossover and mutation."""
    allowed = allowed_weights(cfg.weight_bits, cfg.multipliers)
    rank, crowd = rank_and_crowding(parents)
    a, b = rng.integers(0, parents.pop.size, size=(2, cfg.population))
    a_wins = (rank[a] < rank[b]) | ((rank[a] == rank[b]) & (crowd[a] >= crowd[b]))
    kids = parents.pop.take(np.where(a_wins, a, b))
    kids = Population.concat([kids])  # own copies
    for k in range(0, kids.size - 1, 2):
        if rng.random() < cfg.p_crossover:
            crossover(kids, k, k + 1, rng)
    per_change = 1.0 / expected_changes(kids.base, cfg)
    for k in range(kids.size):
        changes = 2.0 ** rng.uniform(0.0, np.log2(max(1.0, cfg.mutations)))
        mutate_one(kids, k, cfg, rng, allowed, scale=changes * per_change)
    return kids
