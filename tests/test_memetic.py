"""The memetic step and the greedy descent: cuts only, cheaper, deterministic, resumable."""

from __future__ import annotations

import numpy as np
import pytest

from approxmlp.search.evaluate import PopulationEvaluator
from approxmlp.search.genome import Population, allowed_weights, project_weights
from approxmlp.search.memetic import faithful_descent, greedy_descent, memetic_offspring, pick_cuts, single_cuts
from approxmlp.search.retrain import RetrainConfig
from tests.test_approx import _search_setup


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


def test_pick_cuts_takes_the_cheapest_accuracy_per_area_once_per_place():
    from approxmlp.cost.population import population_features

    ir, X, y, cost = _search_setup()
    pop = _pow2(ir)
    cuts = single_cuts(pop, 0)
    ev = PopulationEvaluator(X)
    acc0 = float((ev(pop)[0] == y).mean())
    area0 = cost.area_of(pop.individual(0))
    acc = (ev(cuts.pop) == y[None]).mean(axis=1)
    taken = pick_cuts(cuts, acc, acc0, area0, cost, population_features, want=5)
    assert len(taken) == 5 and len({cuts.where[k] for k in taken}) == 5
    saved = area0 - cost.estimate(population_features(cuts.pop))[0]
    assert (saved[taken] > 0).all()
    # the first pick is the best ratio among the cuts that were priced (a shortlist of the
    # best rough ratios): nothing in that shortlist beats it
    order = np.argsort((acc0 - acc + 1e-4) / cuts.saving, kind="stable")[:48]
    ratio = (acc0 - acc + 1e-4) / np.maximum(saved, 1e-9)
    assert ratio[taken[0]] == pytest.approx(ratio[order][saved[order] > 0].min())
    # an accuracy budget stops it (the best cut is always taken)
    tight = pick_cuts(cuts, acc, acc0, area0, cost, population_features, want=50, max_loss=0.0)
    assert all(acc[k] >= acc0 for k in tight[1:])


def test_memetic_children_only_cut_their_parents_and_are_seeded():
    from approxmlp.search.config import SearchConfig
    from approxmlp.search.front import Scored
    from approxmlp.cost.population import population_features

    ir, X, y, cost = _search_setup()
    parents = Population.concat([_pow2(ir), _pow2(ir)])
    acc = (PopulationEvaluator(X)(parents) == y[None]).mean(axis=1)
    area, power = cost.estimate(population_features(parents))
    archive = Scored(pop=parents, acc=acc, area=area, power=power, feasible=np.ones(2, dtype=bool))
    cfg = SearchConfig(memetic_parents=2, memetic_children=3, memetic_steps=10, memetic_candidates=32)
    kids = memetic_offspring(archive, X, y, cost, cfg, np.random.default_rng(5))
    again = memetic_offspring(archive, X, y, cost, cfg, np.random.default_rng(5))
    assert kids.size == 6
    cut = 0
    for k in range(kids.size):
        assert kids.individual(k) == again.individual(k)
        for li in range(len(parents.weights)):
            assert ((kids.masks[li][k] & ~parents.masks[li][0]) == 0).all()   # masks only lose bits
            assert (kids.product_trunc[li][k] >= parents.product_trunc[li][0]).all()
            assert (kids.act_trunc[li][k] >= parents.act_trunc[li][0]).all()
        structure = [kids.masks[li][k] for li in range(len(parents.weights))]
        cut += any((m != parents.masks[li][0]).any() for li, m in enumerate(structure)) or \
            (kids.cmp_drop[k] != parents.cmp_drop[0]).any() or \
            any((kids.product_trunc[li][k] != 0).any() or (kids.act_trunc[li][k] != 0).any()
                for li in range(len(parents.weights))) or \
            any((np.abs(kids.weights[li][k]) != 0).sum() < (np.abs(parents.weights[li][0]) != 0).sum()
                for li in range(len(parents.weights)))
    assert cut == kids.size  # every child lost some hardware


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


def test_faithful_descent_keeps_the_exact_designs_decisions_and_shrinks_it():
    """The states of the faithful descent are the exact design (not a power-of-two seed,
    not retrained) cut: each agrees with it on at least ``floor`` of the samples, each is
    smaller than it, and a rerun gives the same states. (Not every step is smaller than the
    one before: cuts chosen one by one may together share fewer terms.)"""
    ir, X, _, cost = _search_setup()
    exact = Population.from_mlp(ir, 1)
    ev = PopulationEvaluator(X)
    own = ev(exact)[0]
    path = faithful_descent(exact, X, cost, steps=30, floor=0.97, seed=2)
    again = faithful_descent(exact, X, cost, steps=30, floor=0.97, seed=2)
    assert path.size >= 5
    agree = (ev(path) == own[None]).mean(axis=1)
    assert agree.min() >= 0.97 and agree.max() < 1.0 + 1e-12
    area0 = cost.area_of(exact.individual(0))
    areas = [cost.area_of(path.individual(k)) for k in range(path.size)]
    assert max(areas) < area0 and areas[-1] < 0.9 * area0
    for k in range(path.size):
        assert path.individual(k) == again.individual(k)
    # a floor the exact design's own decisions already meet only when nothing changes: no state
    # disagrees anywhere
    strict = faithful_descent(exact, X, cost, steps=10, floor=1.0, seed=2)
    assert strict.size == 0 or ((ev(strict) == own[None]).all())


def test_a_descent_that_takes_no_step_offers_no_design():
    """No step, no state: the start is not a state of its own path (a copy of the exact design
    would otherwise join the candidates as if it were a new design)."""
    ir, X, y, cost = _search_setup()
    ev = PopulationEvaluator(X)
    assert greedy_descent(_pow2(ir), 0, X, y, ev, cost, steps=0, retrain_every=0).size == 0
    assert faithful_descent(Population.from_mlp(ir, 1), X, cost, steps=0, floor=0.9).size == 0


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
    from dataclasses import replace

    from approxmlp.errors import ApproxMLPError

    with pytest.raises(ApproxMLPError, match="other search settings"):  # another search
        run_search(ir, X, y, cost, replace(cfg, p_bias=0.1), checkpoint=ck, resume=True)
    # the faithful descent runs after the search, from the exact design: its settings do not
    # make the checkpoint another search's
    resumed = run_search(ir, X, y, cost, replace(cfg, faithful_step_areas=(0.01,), faithful_floor=0.9),
                         checkpoint=ck, resume=True)
    assert resumed.front.acc.tolist() == full.front.acc.tolist()
    assert resumed.front.area.tolist() == full.front.area.tolist()
    for i in range(full.front.pop.size):
        assert resumed.front.pop.individual(i) == full.front.pop.individual(i)
    assert (full.front.acc >= full.seed_accuracy - cfg.max_loss - 1e-12).all()
