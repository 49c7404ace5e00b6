"""The cost model's estimate of shared subexpressions (cost/sharing.py): no saving where no
digit pair repeats, the plan's saving where they do (the emitter's own greedy,
core/sharing.py, is the reference), a layer of copies saves more than one of strangers, and a
differently masked operand is another operand."""

from __future__ import annotations

import numpy as np

from approxmlp.core.ir import MLP, Layer, NeuronApprox
from approxmlp.core.ranges import analyze
from approxmlp.core.sharing import share_layer
from approxmlp.cost.design import excess_ratios, features
from approxmlp.cost.features import ADDERS
from approxmlp.cost import sharing
from approxmlp.cost.sharing import saved_fraction

from tests.strategies import random_mlp


def _plan_saving(layer) -> float:
    before = share_layer(layer, share=False).additions
    return 1 - share_layer(layer).additions / before if before else 0.0


def _one_layer(W, masks=None) -> MLP:
    n = len(W)
    approx = tuple(NeuronApprox(input_masks=None if masks is None else tuple(masks[j])) for j in range(n))
    return MLP(n_inputs=len(W[0]), input_bits=4, layers=(Layer(weights=tuple(map(tuple, W)), biases=(0,) * n, shift=0,
                                                             activation="linear", act_bits=8, approx=approx),))


def test_no_repeated_pair_saves_nothing():
    # each neuron reads its own input with a one-digit weight: no pair exists at all
    mlp = _one_layer([[4, 0, 0], [0, 2, 0], [0, 0, 1]])
    assert excess_ratios(mlp) == (0.0,)


def test_copies_save_what_the_plan_saves_and_more_than_strangers(monkeypatch):
    rng = np.random.default_rng(1)
    row = rng.integers(-127, 128, size=8)
    copies = _one_layer([row] * 4)
    strangers = _one_layer(rng.integers(-127, 128, size=(4, 8)))
    (x_copies,), (x_strangers,) = excess_ratios(copies), excess_ratios(strangers)
    assert x_copies > x_strangers
    est_copies, est_strangers = saved_fraction(np.array(x_copies)), saved_fraction(np.array(x_strangers))
    assert est_copies > est_strangers
    assert abs(est_strangers - _plan_saving(analyze(strangers)[0])) < 0.1
    # the curve saturates (at A / B): copies save more than it says, never less
    assert est_copies <= _plan_saving(analyze(copies)[0])
    # the estimate lowers the adder features, nothing else
    shared = features(copies)
    monkeypatch.setattr(sharing, "A", 0.0)
    per_neuron = features(copies)
    others = [k for k in range(len(shared)) if k not in ADDERS]
    assert shared[ADDERS].sum() < 0.75 * per_neuron[ADDERS].sum()  # a layer of copies: a quarter off at least
    assert (shared[others] == per_neuron[others]).all()


def test_a_different_mask_is_a_different_operand():
    """Four copies whose operands are all masked differently share nothing in the plan; the
    estimate must not price them as copies."""
    row = [37, -83, 101, 55]
    same = _one_layer([row] * 4)
    masks = [[0b1111 ^ (1 << j)] * 4 for j in range(4)]
    different = _one_layer([row] * 4, masks)
    assert excess_ratios(different)[0] < excess_ratios(same)[0] / 2


def test_the_estimate_tracks_the_plan_on_random_layers():
    rng = np.random.default_rng(7)
    est, plan = [], []
    for sizes in ([6, 3, 3], [10, 4, 2], [16, 5, 10], [8, 8, 4]):
        for weights in ("int", "pow2"):
            mlp = random_mlp(sizes, rng, weights=weights)
            for x, layer in zip(excess_ratios(mlp), analyze(mlp)):
                est.append(float(saved_fraction(np.array(x))))
                plan.append(_plan_saving(layer))
    est, plan = np.array(est), np.array(plan)
    assert np.corrcoef(est, plan)[0, 1] > 0.8
    assert np.mean(np.abs(est - plan)) < 0.1
