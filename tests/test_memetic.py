"""The memetic step and the greedy descent: cuts only, cheaper, deterministic, resumable."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from approxmlp.search.evaluate import PopulationEvaluator  # noqa: E402
from approxmlp.search.genome import Population, allowed_weights, project_weights  # noqa: E402
from approxmlp.search.memetic import cut_one, greedy_descent, single_cuts  # noqa: E402
from approxmlp.search.retrain import RetrainConfig  # noqa: E402
from tests.test_approx import _search_setup  # noqa: E402


def _pow2(ir):
    pop = Population.from_mlp(ir, 1)
    for li in range(len(pop.weights)):
        pop.weights[li] = project_weights(pop.weights[li], allowed_weights(8, "pow2"))
    return pop


def test_single_cuts_change_one_gene_and_only_cut():
    ir, X, y, cost = _search_setup()
    pop = Population.from_mlp(ir, 1)
    cuts = single_cuts(pop, 0)
    kids = cuts.pop
    assert kids.size == len(cuts.where) == len(cuts.saving) > 0 and (cuts.saving > 0).all()
    kinds = set(cuts.table[:, 3].tolist())
    assert kinds >= {0, 2, 3, 4, 6}, kinds  # bits, connections, inputs, truncations, compare bits
    for k in range(kids.size):
        changed = 0
        for li in range(len(pop.weights)):
            m0, m1 = pop.masks[li][0], kids.masks[li][k]
            assert ((m1 & ~m0) == 0).all()  # masks only lose bits
            changed += int((m1 != m0).sum())
            w0, w1 = pop.weights[li][0], kids.weights[li][k]
            assert (np.abs(w1) <= 2 * np.abs(w0)).all()
            changed += int((w1 != w0).sum())
            for name in ("product_trunc", "act_trunc"):
                a0, a1 = getattr(pop, name)[li][0], getattr(kids, name)[li][k]
                assert (a1 >= a0).all()
                changed += int((a1 != a0).sum())
        changed += int((kids.cmp_drop[k] != pop.cmp_drop[0]).sum())
        kind = cuts.table[k, 3]
        if kind == 3:  # an input removed: every connection from it (its mask), at least two live ones
            li, c = cuts.table[k, 0], cuts.table[k, 2]
            live = ((pop.weights[li][0][:, c] != 0) & (pop.masks[li][0][:, c] != 0)).sum()
            assert changed == (pop.masks[li][0][:, c] != 0).sum() and live > 1, k
            assert (kids.masks[li][k][:, c] == 0).all()
        else:
            assert changed == 1, k


def test_cuts_applied_together_commute():
    """A step applies many cuts at once, several in one neuron: each must survive the others."""
    from approxmlp.search.memetic import _assign, _cut_table

    ir, X, y, cost = _search_setup()
    pop = Population.from_mlp(ir, 1)
    table = _cut_table(pop, 0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        pick = table[rng.choice(len(table), size=min(12, len(table)), replace=False)]
        a, b = Population.concat([pop]), Population.concat([pop])
        _assign(a, np.zeros(len(pick), dtype=np.int64), pick)
        _assign(b, np.zeros(len(pick), dtype=np.int64), pick[::-1])
        assert a.individual(0) == b.individual(0)
        for r in pick:  # every cut is in the result
            one = Population.concat([pop])
            _assign(one, np.zeros(1, dtype=np.int64), r[None])
            for li in range(len(pop.weights)):
                assert ((a.masks[li][0] & ~one.masks[li][0]) == 0).all()


def test_cut_one_is_seeded_and_cuts():
    ir, X, y, cost = _search_setup()
    a, b = Population.from_mlp(ir, 1), Population.from_mlp(ir, 1)
    shares = {(0, j): 1.0 for j in range(ir.layers[0].n_out)}
    cut_one(a, 0, shares, 6, np.random.default_rng(2))
    cut_one(b, 0, shares, 6, np.random.default_rng(2))
    assert a.individual(0) == b.individual(0) != ir


@pytest.mark.parametrize("candidates", [256, 8])  # 8: a sample of the cuts each step, as on a big network
def test_greedy_descent_goes_down_and_is_deterministic(candidates):
    ir, X, y, cost = _search_setup()
    ev = PopulationEvaluator(X)
    assert single_cuts(_pow2(ir), 0).pop.size > 4 * candidates or candidates == 256
    kw = dict(steps=8, per_step=2, retrain_every=2, retrain_cfg=RetrainConfig(steps=20, eval_every=10), seed=4,
              candidates=candidates)
    path = greedy_descent(_pow2(ir), 0, X, y, ev, cost, **kw)
    again = greedy_descent(_pow2(ir), 0, X, y, ev, cost, **kw)
    assert path.size == 4
    areas = [cost.area_of(path.individual(k)) for k in range(path.size)]
    assert areas[-1] < cost.area_of(_pow2(ir).individual(0))
    for k in range(path.size):
        assert path.individual(k) == again.individual(k)


def test_search_with_memetic_steps_resumes_to_the_same_front(tmp_path):
    from approxmlp.search.config import SearchConfig
    from approxmlp.search.nsga2 import run_search

    ir, X, y, cost = _search_setup()
    cfg = SearchConfig(population=16, generations=6, seed=3, memetic_every=2, memetic_parents=3,
                       memetic_steps=20, greedy_steps=4, greedy_retrain_every=2)
    full = run_search(ir, X, y, cost, cfg)
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
    assert (full.front.acc >= full.seed_accuracy - cfg.max_loss - 1e-12).all()
