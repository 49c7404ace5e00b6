"""Choosing designs: the evidence behind every pick, and the pick rules.

A search finds many designs that fit its training samples; which of them keeps its promise
on data it never saw is a question of evidence. The evidence is the validation part of the
training split, which the search never saw: per sample, is the candidate right, and is the
exact design right (`train` early-stops on this part, so the exact design's side is somewhat
optimistic, and a loss against it somewhat pessimistic). The *paired* loss between
them (:func:`approxmlp.stats.paired_loss`) and its one-sided upper bound at the run's
confidence drive every pick: the smallest verified design whose loss is within the budget
*with that confidence* (:func:`smallest_within`), not the one whose point estimate happens
to clear it (the winner's curse: among many designs near the budget, the one picked on a
point estimate is picked partly for its luck).

Why not k-fold cross-validation over the whole training split (retraining each candidate's
weights on k-1 folds, scoring the held-out one)? Measured on breast_cancer: the candidates'
structures and weights were fitted to the search's samples, so on those samples their
cross-validated loss came out 1.7 points *better* than the exact design's, against 2.2
points worse on the validation samples the search never saw. Warm-started retraining does
not forget; only samples the search never saw are evidence.

Which designs are made real (:func:`validated_front`): the candidates not dominated in
validation accuracy, loss bound and estimated area. The bound is the third objective
because two designs of equal accuracy are not equally certain: the one that agrees with the
exact design on more samples has the tighter bound, and is the one a tight budget can pick.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..stats import finest_budget, paired_loss

#: Default one-sided confidence that a pick's loss is within its budget.
CONFIDENCE = 0.9

#: The loss budgets every explore run picks a design for, in points of accuracy (fractions).
BUDGETS = (0.01, 0.02, 0.05)


@dataclass(frozen=True)
class Rule:
    """How picks are made: the one-sided ``confidence`` that a pick's loss is within its
    budget (0 picks on the point estimate, today's rule before this one)."""

    confidence: float = CONFIDENCE

    def bound(self, reference_correct: np.ndarray, design_correct: np.ndarray) -> float:
        """The loss the pick rule compares with a budget: the one-sided upper bound."""
        if self.confidence <= 0:
            r, d = np.asarray(reference_correct, bool), np.asarray(design_correct, bool)
            return float(r.mean() - d.mean())
        return paired_loss(reference_correct, design_correct, self.confidence, sided=1).high

    def finest(self, n: int) -> float:
        """The finest budget ``n`` samples can certify under this rule."""
        return 0.0 if self.confidence <= 0 else finest_budget(n, self.confidence)


def smallest_within(points: list[dict], budget: float, cost, verified, bound_key: str = "loss_bound") -> dict | None:
    """The cheapest verified point whose loss bound (``point[bound_key]``, the pick rule's
    upper bound on its paired loss against the exact design) is within ``budget``
    (ties: the smaller bound), or None: the pick behind every per-budget line, in explore,
    the demo and the bench."""
    ok = [p for p in points if verified(p) and cost(p) is not None and p.get(bound_key) is not None
          and p[bound_key] <= budget + 1e-12]
    return min(ok, key=lambda p: (cost(p), p[bound_key]), default=None)


def most_accurate_within_power(points: list[dict], max_power_mw: float, verified) -> dict | None:
    """The verified point of highest validation accuracy whose synthesized power fits
    ``max_power_mw`` (ties: the lower power), or None: the power-budget pick. Validation
    only: the test split is reported, never chosen on."""
    ok = [p for p in points if verified(p) and p.get("power_mw") is not None and p["power_mw"] <= max_power_mw]
    return max(ok, key=lambda p: (p["validation_accuracy"], -p["power_mw"]), default=None)


def nondominated(objectives: np.ndarray) -> np.ndarray:
    """Indices of the rows of ``objectives`` (``(P, m)``, every column minimized) that no
    other row dominates; of identical rows the first."""
    o = np.asarray(objectives, dtype=float)
    le = (o[:, None, :] <= o[None, :, :]).all(axis=2)
    lt = (o[:, None, :] < o[None, :, :]).any(axis=2)
    dominated = (le & lt).any(axis=0)
    same = (o[:, None, :] == o[None, :, :]).all(axis=2)
    first = ~np.triu(same, 1).any(axis=0)
    return np.flatnonzero(~dominated & first)


def validated_front(pools, X: np.ndarray, y: np.ndarray, exact_correct: np.ndarray, rule: Rule, *,
                    max_loss: float, max_power_mw: float | None, budgets: Sequence[float], k: int):
    """The designs of ``pools`` (``search.Scored`` candidates of one or more searches) worth
    making real, re-scored on the validation samples ``(X, y)``. Candidates are those within
    ``max_loss`` of the exact design (point estimate) and the power budget (estimate). Of
    them: always each budget's smallest certified candidate; then, spread along the log of
    the area (:func:`search.front.spread_in_log_area`: the widest gaps filled first),
    those not dominated in (validation accuracy, loss bound, estimated area); then, to fill
    ``k``, those not dominated in the search's own (fit accuracy, estimated area), then any
    candidate, so that the designs made real cover the whole area range even where a small
    validation part ties most of them. Returns a ``search.front.Front`` whose ``acc`` is validation accuracy."""
    from ..search.evaluate import evaluate_population
    from ..search.front import Front, spread_in_log_area

    acc, fit, bound, area, power, sources = [], [], [], [], [], []
    base_acc = float(np.mean(exact_correct))
    for pool in pools:
        if pool.pop.size == 0:
            continue
        correct = evaluate_population(pool.pop, X) == y[None, :]
        for i in range(pool.pop.size):
            a = float(correct[i].mean())
            if a < base_acc - max_loss - 1e-12 or (max_power_mw is not None and pool.power[i] > max_power_mw):
                continue
            acc.append(a)
            fit.append(float(pool.acc[i]))
            bound.append(rule.bound(exact_correct, correct[i]))
            area.append(float(pool.area[i]))
            power.append(float(pool.power[i]))
            sources.append((pool.pop, i))
    if not sources:
        return Front(acc=np.zeros(0), area=np.zeros(0), power=np.zeros(0), sources=[], non_dominated=0)
    acc, fit, bound, area, power = map(np.asarray, (acc, fit, bound, area, power))

    def by_area(idx: np.ndarray) -> np.ndarray:
        return idx[np.argsort(area[idx], kind="stable")]

    on_val = by_area(nondominated(np.column_stack([-acc, bound, area])))
    on_fit = by_area(nondominated(np.column_stack([-fit, area])))
    chosen: list[int] = []
    for b in budgets:  # each budget's smallest certified candidate
        ok = on_val[bound[on_val] <= b + 1e-12]
        if ok.size and int(ok[0]) not in chosen:
            chosen.append(int(ok[0]))
    everyone = by_area(np.arange(len(acc)))
    for idx in (on_val, on_fit, everyone):
        room = k - len(chosen)
        fresh = np.array([i for i in idx if i not in chosen], dtype=np.int64)
        if room > 0 and fresh.size:
            chosen += fresh[spread_in_log_area(area[fresh], room, taken=area[chosen])].tolist()
    keep = sorted(chosen, key=lambda i: (area[i], -acc[i]))
    return Front(acc=acc[keep], area=area[keep], power=power[keep], sources=[sources[i] for i in keep],
                 non_dominated=len(on_val))
