"""Scored populations and the Pareto machinery: non-domination, crowding, selection,
the front, thinning it to the designs worth realizing, combining searches.

Objectives: accuracy up, estimated area down; an infeasible candidate (outside the loss
budget or the power budget) is dominated by every feasible one. DEAP supplies the
non-dominated sorting and crowding (``tools.sortNondominated``, ``selNSGA2``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from deap import base as deap_base, tools

from .genome import Population


class _Fitness(deap_base.Fitness):
    weights = (1.0, -1.0)  # accuracy up, area down


class _Individual:
    """What DEAP's selection needs: a fitness; the genes stay in the Population arrays."""

    __slots__ = ("index", "fitness")

    def __init__(self, index: int, acc: float, area: float):
        self.index = index
        self.fitness = _Fitness((acc, area))


@dataclass
class Scored:
    """A population with its objectives."""

    pop: Population
    acc: np.ndarray           # training accuracy
    area: np.ndarray          # estimated area (µm²)
    power: np.ndarray         # estimated static power (mW)
    feasible: np.ndarray


def _individuals(s: Scored) -> list[_Individual]:
    """DEAP's view of a population: infeasible candidates are pushed behind every feasible
    one (accuracy shortfall first), so that selection prefers any feasible design."""
    worst = float(s.area.max()) + 1.0
    return [_Individual(i, float(s.acc[i]) if s.feasible[i] else float(s.acc[i]) - 2.0,
                        float(s.area[i]) if s.feasible[i] else worst + float(s.area[i]))
            for i in range(s.pop.size)]


def rank_and_crowding(s: Scored) -> tuple[np.ndarray, np.ndarray]:
    """Non-domination rank (0 = front) and crowding distance of every individual."""
    inds = _individuals(s)
    rank = np.zeros(len(inds), dtype=np.int64)
    crowd = np.zeros(len(inds))
    for r, front in enumerate(tools.sortNondominated(inds, len(inds))):
        tools.emo.assignCrowdingDist(front)
        for ind in front:
            rank[ind.index] = r
            crowd[ind.index] = ind.fitness.crowding_dist
    return rank, crowd


def select(s: Scored, k: int) -> Scored:
    """NSGA-II environmental selection (DEAP's ``selNSGA2``) over :func:`_individuals`."""
    inds = _individuals(s)
    chosen = sorted(ind.index for ind in tools.selNSGA2(inds, k))
    return take(s, np.array(chosen))


def _nondominated(acc: np.ndarray, area: np.ndarray, idx: np.ndarray) -> list[int]:
    """Those of ``idx`` that no other of ``idx`` dominates, one per (accuracy, area),
    sorted by area (then accuracy, highest first)."""
    a, c = acc[idx], area[idx]
    # j dominates i: at least as good on both objectives and better on one
    dom = ((a[:, None] >= a[None, :]) & (c[:, None] <= c[None, :])
           & ((a[:, None] > a[None, :]) | (c[:, None] < c[None, :])))
    seen, keep = set(), []
    for i in sorted(idx[~dom.any(axis=0)].tolist(), key=lambda i: (area[i], -acc[i])):
        key = (round(float(acc[i]), 9), round(float(area[i]), 6))
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return keep


def spread(n: int, k: int) -> np.ndarray:
    """At most ``k`` of ``range(n)``, evenly spread, both ends kept."""
    if n <= k:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, k)).astype(np.int64))


def spread_in_log_area(area: np.ndarray, k: int, taken: np.ndarray | Sequence[float] = ()) -> np.ndarray:
    """At most ``k`` indices of ``area``, sorted: each in turn the design farthest, in log
    area, from those already chosen and from the areas ``taken`` (designs chosen before);
    with nothing taken, the smallest first, so both ends are kept. Log area because the
    tool reports areas as ratios (a 2x step is as wide at 0.1 cm² as at 10 cm²), and
    farthest-point because it fills the widest gaps first, whatever was chosen before:
    spread evenly by rank instead, a stretch the search crowded (e.g. a descent's many
    states near the exact end) took the places of the sparse ones (on Pendigits' bench
    front: none between 5.7 and 7.0 cm²)."""
    area = np.asarray(area, dtype=float)
    if area.size <= k:
        return np.arange(area.size)
    floor = 1e-6 * max(float(area.max()), 1e-300)  # a design of no area still has a place
    logs = np.log(np.maximum(area, floor))
    near = np.full(area.size, np.inf)  # each design's distance to the nearest one chosen
    for t in np.log(np.maximum(np.asarray(taken, dtype=float), floor)):
        near = np.minimum(near, np.abs(logs - t))
    chosen: list[int] = []
    for _ in range(k):
        if np.isinf(near).all():  # nothing chosen or taken yet: the smallest
            j = int(np.argmin(logs))
        else:
            gap = near.copy()
            gap[chosen] = -1.0  # (ties: the first, the smaller area where ``area`` is sorted)
            j = int(np.argmax(gap))
        chosen.append(j)
        near = np.minimum(near, np.abs(logs - logs[j]))
    return np.array(sorted(chosen), dtype=np.int64)


def pareto_front(s: Scored) -> Scored:
    """Feasible, non-dominated, one per (accuracy, area), sorted by area."""
    return take(s, np.array(_nondominated(s.acc, s.area, np.flatnonzero(s.feasible)), dtype=np.int64))


def take(s: Scored, idx: np.ndarray) -> Scored:
    return Scored(pop=s.pop.take(idx), acc=s.acc[idx], area=s.area[idx], power=s.power[idx], feasible=s.feasible[idx])


def merge(a: Scored, b: Scored) -> Scored:
    return Scored(pop=Population.concat([a.pop, b.pop]), acc=np.concatenate([a.acc, b.acc]),
                  area=np.concatenate([a.area, b.area]), power=np.concatenate([a.power, b.power]),
                  feasible=np.concatenate([a.feasible, b.feasible]))


def thin(front: Scored, k: int) -> Scored:
    """At most ``k`` points of a front sorted by area, spread evenly along it, always
    keeping both ends (the smallest design and the most accurate one)."""
    if front.pop.size <= k:
        return front
    return take(front, spread(front.pop.size, k))


@dataclass
class Front:
    """Non-dominated designs of one or more searches (from different seed models, so with
    different base IRs): per point the training accuracy, the estimates and where it lives."""

    acc: np.ndarray
    area: np.ndarray
    power: np.ndarray
    sources: list[tuple[Population, int]]  # per point: its search's population and row
    non_dominated: int = 0  # points of the combined front before thinning

    @property
    def size(self) -> int:
        return len(self.sources)

    def design(self, k: int, name: str | None = None):
        pop, i = self.sources[k]
        return pop.individual(i, name=name)


def combine(fronts: Sequence[Scored], k: int) -> Front:
    """The points of ``fronts`` that no point of another front dominates, sorted by area and
    thinned to ``k`` as :func:`thin` does; for one front, exactly ``thin(front, k)``."""
    acc = np.concatenate([f.acc for f in fronts])
    area = np.concatenate([f.area for f in fronts])
    power = np.concatenate([f.power for f in fronts])
    sources = [(f.pop, i) for f in fronts for i in range(f.pop.size)]
    keep = _nondominated(acc, area, np.arange(len(acc)))
    chosen = [keep[j] for j in spread(len(keep), k)]
    return Front(acc=acc[chosen], area=area[chosen], power=power[chosen],
                 sources=[sources[i] for i in chosen], non_dominated=len(keep))
