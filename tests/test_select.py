"""approxmlp.pipeline.select: the pick rule and the designs made real."""

from __future__ import annotations

import numpy as np
import pytest

from approxmlp.pipeline.select import Rule, nondominated, smallest_within, validated_front


def _correct(n: int, worse: int, better: int, exact: np.ndarray) -> np.ndarray:
    """A design's per-sample correctness: wrong on ``worse`` samples the exact design gets
    right, right on ``better`` it gets wrong."""
    d = exact.copy()
    right, wrong = np.flatnonzero(exact), np.flatnonzero(~exact)
    d[right[:worse]] = False
    d[wrong[:better]] = True
    return d


def _point(pid: str, area: float, exact: np.ndarray, design: np.ndarray, rule: Rule) -> dict:
    return {"id": pid, "area": area, "ok": True, "loss_bound": rule.bound(exact, design),
            "estimate": float(exact.mean() - design.mean())}


def test_a_design_that_clears_the_budget_only_by_noise_is_not_picked():
    """``lucky`` loses 0.33 points on validation, inside a 1 % budget, but it is a different
    classifier (24 samples worse, 22 better of 600): its paired loss could well be 1.8 %.
    ``faithful`` is larger and loses as much, on 2 samples only: it is the pick. On the
    point estimate (confidence 0, the old rule) the lucky one would have been."""
    rng = np.random.default_rng(0)
    exact = rng.random(600) < 0.9
    lucky = _correct(600, 24, 22, exact)
    faithful = _correct(600, 2, 0, exact)
    for rule, want in ((Rule(0.9), "faithful"), (Rule(0.0), "lucky")):
        points = [_point("exact", 10.0, exact, exact, rule), _point("faithful", 4.0, exact, faithful, rule),
                  _point("lucky", 1.0, exact, lucky, rule)]
        assert points[1]["estimate"] == pytest.approx(2 / 600) == points[2]["estimate"]
        pick = smallest_within(points, 0.01, lambda p: p["area"], lambda p: p["ok"])
        assert pick["id"] == want
    # nothing certified: the exact design stays
    points = [_point("exact", 10.0, exact, exact, Rule()), _point("lucky", 1.0, exact, lucky, Rule())]
    assert smallest_within(points, 0.01, lambda p: p["area"], lambda p: p["ok"])["id"] == "exact"


def test_unverified_or_unmeasured_designs_are_never_picked():
    pts = [{"id": "a", "c": 1.0, "ok": False, "loss_bound": 0.0}, {"id": "b", "c": None, "ok": True, "loss_bound": 0.0},
           {"id": "s", "c": 0.5, "ok": True, "loss_bound": None}, {"id": "d", "c": 3.0, "ok": True, "loss_bound": 0.0}]
    assert smallest_within(pts, 0.05, lambda p: p["c"], lambda p: p["ok"])["id"] == "d"


def test_nondominated_keeps_the_first_of_identical_rows():
    o = np.array([[0, 1, 1], [1, 0, 1], [0, 1, 1], [1, 1, 1], [0, 0, 2]], dtype=float)
    assert nondominated(o).tolist() == [0, 1, 4]


def test_validated_front_keeps_each_budgets_pick_and_the_certain_design_of_equal_accuracy():
    """Two designs of equal validation accuracy and area are not equally certain: the one
    that agrees with the exact design on more samples has the tighter bound and is kept; each
    budget's smallest certified candidate is made real even where thinning would drop it."""
    from approxmlp.search.front import Scored
    from approxmlp.search.genome import Population
    from tests.conftest import tiny_mlp
    from approxmlp.core.golden import evaluate

    ir = tiny_mlp()
    X = np.array([[a, b, c] for a in range(16) for b in range(0, 16, 3) for c in (0, 7, 15)])
    y = evaluate(ir, X).classes
    exact = np.ones(len(y), bool)
    pop = Population.from_mlp(ir, 3)
    pop.masks[0][1, 0, :] = 0   # row 1: a cut that changes some decisions
    pop.masks[0][2, 0, :] = 0
    pop.masks[0][2, 1, :] = 0   # row 2: changes more of them
    scored = Scored(pop=pop, acc=np.ones(3), area=np.array([5.0, 3.0, 1.0]), power=np.zeros(3),
                    feasible=np.ones(3, bool))
    acc = (np.stack([evaluate(pop.individual(i), X).classes for i in range(3)]) == y).mean(axis=1)
    assert acc[0] == 1.0 > acc[1] > acc[2]
    rule = Rule(0.9)
    front = validated_front([scored], X, y, exact, rule, max_loss=1.0, max_power_mw=None, budgets=(1 - acc[2] + 0.2,),
                            k=1)
    # room for one design, but the budget's smallest certified candidate (the smallest) is kept
    assert 1.0 in front.area.tolist()
    front = validated_front([scored], X, y, exact, rule, max_loss=1.0, max_power_mw=None, budgets=(), k=3)
    assert front.area.tolist() == [1.0, 3.0, 5.0] and front.acc.tolist() == sorted(acc.tolist())
