"""Front selection (search/front.py): the front is exactly the feasible non-dominated points,
thinning and combining keep both ends and only front points, NSGA-II's ranks and selection
put every feasible design before an infeasible one."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from approxmlp.search.front import Scored, combine, pareto_front, rank_and_crowding, select, spread, spread_in_log_area, thin
from approxmlp.search.genome import Population
from tests.conftest import tiny_mlp


def _scored(acc, area, feasible=None) -> Scored:
    n = len(acc)
    return Scored(pop=Population.from_mlp(tiny_mlp(), n), acc=np.asarray(acc, float), area=np.asarray(area, float),
                  power=np.zeros(n), feasible=np.ones(n, bool) if feasible is None else np.asarray(feasible))


def _dominated(i: int, acc, area, among) -> bool:
    return any(acc[j] >= acc[i] and area[j] <= area[i] and (acc[j] > acc[i] or area[j] < area[i]) for j in among)


#: Populations of scored designs: few distinct values, so ties and duplicates are common.
populations = st.integers(1, 30).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 6), min_size=n, max_size=n).map(lambda v: np.array(v) / 6),
    st.lists(st.integers(1, 8), min_size=n, max_size=n).map(lambda v: np.array(v, float)),
    st.lists(st.booleans(), min_size=n, max_size=n).map(np.array)))


def test_pareto_front_equals_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(1, 30))
        acc, area = rng.integers(0, 6, n) / 5, rng.integers(0, 6, n).astype(float)
        feas = rng.random(n) < 0.8
        got = pareto_front(_scored(acc, area, feas))
        want = {(acc[i], area[i]) for i in range(n) if feas[i] and not any(
            feas[j] and acc[j] >= acc[i] and area[j] <= area[i] and (acc[j] > acc[i] or area[j] < area[i])
            for j in range(n))}
        assert set(zip(got.acc.tolist(), got.area.tolist())) == want
        assert got.pop.size == len(want) and list(got.area) == sorted(got.area)


def test_thin_keeps_both_ends_and_at_most_k():
    front = pareto_front(_scored(np.linspace(0.5, 0.9, 40), np.arange(40.0)))
    t = thin(front, 7)
    assert t.pop.size == 7
    assert t.area[0] == front.area[0] and t.area[-1] == front.area[-1]
    assert thin(front, 100).pop.size == 40


def test_combine_keeps_what_no_front_dominates_and_thins_like_thin():
    rng = np.random.default_rng(1)
    a = pareto_front(_scored(rng.integers(0, 20, 30) / 20, rng.integers(1, 40, 30).astype(float)))
    b = pareto_front(_scored(rng.integers(0, 20, 30) / 20, rng.integers(1, 40, 30).astype(float)))
    a.pop.biases[0][:, 0] = np.arange(a.pop.size)  # every design distinct
    b.pop.biases[0][:, 0] = 100 + np.arange(b.pop.size)
    one = combine([a], 5)  # a single search: exactly what thin() realizes
    t = thin(a, 5)
    assert one.acc.tolist() == t.acc.tolist() and one.area.tolist() == t.area.tolist()
    both = combine([a, b], 1000)
    pts = list(zip(a.acc, a.area)) + list(zip(b.acc, b.area))
    want = {(x, y) for x, y in pts if not any(u >= x and v <= y and (u > x or v < y) for u, v in pts)}
    assert set(zip(both.acc.tolist(), both.area.tolist())) == want
    assert both.non_dominated == len(want) == both.size and list(both.area) == sorted(both.area)
    # each point materializes the design it came from
    for k in range(both.size):
        src = a if (both.acc[k], both.area[k]) in set(zip(a.acc, a.area)) else b
        i = [j for j in range(src.pop.size) if (src.acc[j], src.area[j]) == (both.acc[k], both.area[k])][0]
        assert both.design(k).digest == src.pop.individual(i).digest


@settings(max_examples=300, deadline=None)
@given(populations)
def test_the_front_is_the_feasible_non_dominated_points_once_each(case):
    acc, area, feas = case
    got = pareto_front(_scored(acc, area, feas))
    feasible = np.flatnonzero(feas)
    want = {(acc[i], area[i]) for i in feasible if not _dominated(i, acc, area, feasible)}
    pts = list(zip(got.acc.tolist(), got.area.tolist()))
    assert set(pts) == want and len(pts) == len(want)
    assert pts == sorted(pts, key=lambda p: (p[1], -p[0]))
    assert got.feasible.all()


@settings(max_examples=300, deadline=None)
@given(populations, st.integers(1, 12))
def test_thinning_keeps_both_ends_and_only_front_points(case, k):
    acc, area, feas = case
    front = pareto_front(_scored(acc, area, feas))
    t = thin(front, k)
    assert t.pop.size == min(k, front.pop.size)
    assert set(zip(t.acc, t.area)) <= set(zip(front.acc, front.area))
    if front.pop.size and k >= 2:
        # the smallest design and the most accurate one
        assert t.area[0] == front.area.min() and t.acc[-1] == front.acc.max()
    assert list(t.area) == sorted(t.area)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 200), st.integers(1, 40))
def test_spread_is_at_most_k_distinct_indices_with_both_ends(n, k):
    idx = spread(n, k).tolist()
    assert idx == sorted(set(idx)) and all(0 <= i < n for i in idx)
    assert len(idx) == min(n, k)
    if n and k >= 2:
        assert idx[0] == 0 and idx[-1] == n - 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 1e9, allow_nan=False), min_size=0, max_size=60), st.integers(1, 30),
       st.lists(st.floats(0.0, 1e9, allow_nan=False), max_size=5))
def test_spread_in_log_area_is_at_most_k_distinct_indices_with_both_ends(area, k, taken):
    area = np.sort(np.asarray(area, dtype=float))
    idx = spread_in_log_area(area, k, taken=taken).tolist()
    assert idx == sorted(set(idx)) and all(0 <= i < len(area) for i in idx)
    assert len(idx) == min(len(area), k)
    if len(area) > k >= 2 and not taken and area[0] < area[-1]:
        assert area[idx[0]] == area[0] and area[idx[-1]] == area[-1]


def test_spread_in_log_area_fills_the_widest_gap_in_ratio_first():
    """Designs crowded at one end and sparse at the other: spread by rank, the crowded end
    takes most places; spread in log area, each chosen design halves the widest ratio gap
    left, and a design chosen before (``taken``) counts as a place already filled."""
    area = np.array([1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 4.0, 16.0])
    assert area[spread(len(area), 4)].tolist() == [1.0, 1.3, 1.7, 16.0]  # by rank: none between 1.7 and 16
    assert area[spread_in_log_area(area, 4)].tolist() == [1.0, 1.8, 4.0, 16.0]
    assert area[spread_in_log_area(area, 2, taken=[1.0, 16.0])].tolist() == [1.8, 4.0]


@settings(max_examples=200, deadline=None)
@given(st.lists(populations, min_size=1, max_size=3), st.integers(2, 10))
def test_combined_fronts_keep_both_ends_and_only_points_no_front_dominates(cases, k):
    fronts = [pareto_front(_scored(*c)) for c in cases]
    acc = np.concatenate([f.acc for f in fronts])
    area = np.concatenate([f.area for f in fronts])
    got = combine(fronts, k)
    everyone = range(len(acc))
    undominated = {(acc[i], area[i]) for i in everyone if not _dominated(i, acc, area, everyone)}
    assert set(zip(got.acc.tolist(), got.area.tolist())) <= undominated
    assert got.non_dominated == len(undominated) and got.size == min(k, len(undominated))
    if got.size:
        assert got.area[0] == min(a for _, a in undominated) and got.acc[-1] == max(a for a, _ in undominated)


@settings(max_examples=200, deadline=None)
@given(populations)
def test_rank_zero_is_the_front_and_feasible_designs_rank_first(case):
    acc, area, feas = case
    s = _scored(acc, area, feas)
    rank, crowd = rank_and_crowding(s)
    if feas.any():
        first = {(acc[i], area[i]) for i in np.flatnonzero(rank == 0)}
        assert first == set(zip(pareto_front(s).acc.tolist(), pareto_front(s).area.tolist()))
        assert rank[feas].max() < rank[~feas].min(initial=10**9)
    assert (crowd >= 0).all()


@settings(max_examples=200, deadline=None)
@given(populations, st.integers(1, 30))
def test_selection_takes_k_and_prefers_every_feasible_design(case, k):
    acc, area, feas = case
    s = _scored(acc, area, feas)
    k = min(k, s.pop.size)
    chosen = select(s, k)
    assert chosen.pop.size == k
    assert chosen.feasible.sum() == min(k, int(feas.sum()))
    rank, _ = rank_and_crowding(s)
    if k >= int((rank == 0).sum()) and feas.any():  # room for the whole front: it is all kept
        assert set(zip(pareto_front(s).acc, pareto_front(s).area)) <= set(zip(chosen.acc, chosen.area))


def test_an_empty_front_thins_and_combines_to_nothing():
    empty = pareto_front(_scored([0.5, 0.9], [1.0, 2.0], [False, False]))
    assert empty.pop.size == 0 and thin(empty, 3).pop.size == 0 and combine([empty], 3).size == 0
