"""The population genome: round trip to IRs, and vectorized evaluation == golden model."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from approxmlp.search.genome import Population, allowed_weights, project_weights

from approxmlp.search.evaluate import evaluate_population
from approxmlp.core.csd import csd
from approxmlp.core.golden import evaluate
from tests.strategies import extreme_mlp, inputs_for, mlps


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


def _extreme_population(rng: np.random.Generator) -> tuple[Population, np.ndarray]:
    """Genes at the edges of what the IR allows: wide inputs and activations (no one-hot
    code), weights up to 2**23 (float64 and int64 accumulators), huge biases and shifts,
    product truncations past the product width, compare drops past 64 bits."""
    base = extreme_mlp(rng)
    n_in, in_bits = base.n_inputs, base.input_bits
    pop = Population.from_mlp(base, 6)
    for li, layer in enumerate(base.layers):
        bits = base.operand_bits(li)
        pop.masks[li] = rng.integers(0, 1 << bits, size=pop.masks[li].shape)
        pop.masks[li][0] = (1 << bits) - 1
        pop.product_trunc[li] = rng.choice([0, 0, 1, 5, 30, 40], size=pop.product_trunc[li].shape)
        if layer.activation == "qrelu":
            pop.act_trunc[li] = rng.integers(0, layer.act_bits, size=pop.act_trunc[li].shape)
    pop.cmp_drop = rng.choice([0, 3, 31, 32, 40, 62, 63], size=pop.cmp_drop.shape)
    X = rng.integers(0, 1 << in_bits, size=(40, n_in))
    X[0], X[1] = 0, (1 << in_bits) - 1
    return pop, X


@pytest.mark.parametrize("formats", ["chosen", "integers only", "float64, int64"])
def test_population_equals_golden_at_the_extremes(formats, monkeypatch):
    """The evaluator's number formats (float32/float64 GEMMs, int32/int64 arithmetic) and its
    masks for the truncations must never show: the golden model's classes, bit for bit.
    The bounds that pick the formats are lowered to force the other code paths too."""
    from approxmlp.search import evaluate as approx

    if formats == "integers only":
        monkeypatch.setattr(approx, "_F64_EXACT", 0)
    elif formats == "float64, int64":
        monkeypatch.setattr(approx, "_F32_EXACT", 0)
        monkeypatch.setattr(approx, "_I32_MAX", 0)
    for seed in range(150 if formats == "chosen" else 40):
        pop, X = _extreme_population(np.random.default_rng(seed))
        got = evaluate_population(pop, X, chunk_bytes=1 << 10 if seed % 2 else 16 << 20)
        for i in range(pop.size):
            assert got[i].tolist() == evaluate(pop.individual(i), X).classes.tolist(), (seed, i)


def test_evaluator_reuse_and_pickle():
    """A search calls one evaluator for generation after generation (its caches and working
    arrays kept), and ships it to other processes."""
    import pickle

    from approxmlp.search.evaluate import PopulationEvaluator

    rng = np.random.default_rng(7)
    for _ in range(5):
        pop, X = _extreme_population(rng)
        ev = PopulationEvaluator(X, chunk_bytes=1 << 12)
        first = ev(pop)
        assert ev(pop).tolist() == first.tolist()
        assert ev(pop.take([3, 1])).tolist() == first[[3, 1]].tolist()
        assert pickle.loads(pickle.dumps(ev))(pop).tolist() == first.tolist()


def test_individual_roundtrip(tiny_approx):
    pop = Population.from_mlp(tiny_approx, 3)
    assert pop.individual(2) == tiny_approx


def _search_setup():
    """A PTQ wine 13-4-3 IR, its training codes and labels, a made-up cost model: the search's
    test bed. Trained once per process (deterministic: seed 0); fresh arrays for every caller."""
    ir, X, y, cost = _trained_search_setup()
    return ir, X.copy(), y.copy(), cost


@functools.cache
def _trained_search_setup():
    from approxmlp.cost.features import FEATURES
    from approxmlp.cost.model import CostModel
    from approxmlp.frontend.data import load_dataset
    from approxmlp.frontend.input_quantizer import InputQuantizer
    from approxmlp.frontend.floatnet import train_float
    from approxmlp.frontend.float_model import FloatMLP
    from approxmlp.frontend.quantize import quantize_ptq

    d = load_dataset("wine")
    net = train_float(d.X_train, d.y_train, (4,), d.n_classes, epochs=150)
    fm = FloatMLP.from_state_dict(net.state_dict())
    q = InputQuantizer.fit(d.X_train, 4)
    ir = quantize_ptq(fm, q, q(d.X_train))
    n = len(FEATURES)
    cost = CostModel("printed", area=(10.0,) + tuple(1.0 + k % 3 for k in range(n)), power=(0.0,) + (0.001,) * n)
    return ir, q(d.X_train), d.y_train, cost


def test_search_is_deterministic_and_resumes_to_the_same_front(tmp_path):
    from approxmlp.search.config import SearchConfig
    from approxmlp.search.nsga2 import run_search

    ir, X, y, cost = _search_setup()
    cfg = SearchConfig(population=24, generations=8, seed=3)
    full = run_search(ir, X, y, cost, cfg)
    again = run_search(ir, X, y, cost, cfg)
    assert full.front.acc.tolist() == again.front.acc.tolist()
    assert full.front.area.tolist() == again.front.area.tolist()
    # "Kill" after 3 generations, then resume from the checkpoint.
    ck = tmp_path / "ck.npz"
    try:
        def stop(gen, _):
            if gen == 3:
                raise KeyboardInterrupt
        run_search(ir, X, y, cost, cfg, checkpoint=ck, progress=stop)
    except KeyboardInterrupt:
        pass
    resumed = run_search(ir, X, y, cost, cfg, checkpoint=ck, resume=True)
    assert resumed.front.acc.tolist() == full.front.acc.tolist()
    assert resumed.front.area.tolist() == full.front.area.tolist()
    for i in range(full.front.pop.size):
        assert resumed.front.pop.individual(i) == full.front.pop.individual(i)
    # the greedy descent's states (re-scored on validation by explore) come back from the checkpoint
    assert full.descent.pop.size > 1
    assert resumed.descent.acc.tolist() == full.descent.acc.tolist()
    assert [resumed.descent.pop.individual(i) for i in range(resumed.descent.pop.size)] == \
        [full.descent.pop.individual(i) for i in range(full.descent.pop.size)]
    # every front point respects the accuracy-loss constraint on the training data
    assert (full.front.acc >= full.seed_accuracy - cfg.max_loss - 1e-12).all()


def test_search_on_a_dask_cluster_matches_local(tmp_path):
    """`--scheduler ADDRESS`: the population is evaluated on a Dask cluster, same result."""
    from distributed import LocalCluster

    from approxmlp.pipeline.explore import ExploreOptions, _mapper
    from approxmlp.search.config import SearchConfig
    from approxmlp.search.nsga2 import make_evaluator, run_search

    ir, X, y, cost = _search_setup()
    cfg = SearchConfig(population=16, generations=3, seed=1)
    local = run_search(ir, X, y, cost, cfg)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        mapper, close = _mapper(ExploreOptions(scheduler=cluster.scheduler_address))
        try:
            remote = run_search(ir, X, y, cost, cfg, evaluate=make_evaluator(X, y, cost, mapper))
        finally:
            close()
    assert remote.front.acc.tolist() == local.front.acc.tolist()
    assert remote.front.area.tolist() == local.front.area.tolist()
