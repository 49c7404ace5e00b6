"""Genetic training with hardware approximations in the loop (NSGA-II, after DATE'24).

Every gene is a hardware choice (see :mod:`approxmlp.search.genome`): the constant of each
multiplier (from the allowed value set), each connection's operand bit mask, each
neuron's product and activation truncation, each class's argmax compare bits. The two
objectives are training accuracy (up) and estimated area (down); the accuracy loss
against the seed model and an optional power budget are constraints: an infeasible
candidate is dominated by every feasible one.

The search is composed in one place (:func:`run_search`) from small pure operators that
take an explicit ``numpy.random.Generator``; nothing touches the global ``random``
module, so a run is a function of its seed. DEAP supplies the non-dominated sorting and
crowding selection (``tools.selNSGA2``). A checkpoint (plain ``.npz``, no pickle) is
written atomically after every generation, so a killed run resumes where it stopped and
reaches the same front as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..cost.model import CostModel
from ..cost.population import population_features
from ..progress import GenerationProgress
from .checkpoint import load_checkpoint, save_checkpoint
from .config import SearchConfig
from .evaluate import PopulationEvaluator, evaluate_population
from .front import Scored, merge, pareto_front, select
from .genome import Population
from .memetic import greedy_offspring, memetic_offspring
from .operators import offspring, seed_population


@dataclass
class SearchResult:
    front: Scored                      # feasible non-dominated individuals, by area
    # The greedy descent's states, from the seed down (None without one). Kept because the
    # fit part cannot rank them: where the exact model fits its training samples perfectly
    # (digits 64-16-10: 1006 samples, accuracy 1.0), a state ten times smaller still fits
    # them all and dominates every larger one on the front, yet loses 5.6 points on samples it
    # has not seen. The caller re-scores these on validation with the front.
    descent: Scored | None = None
    history: list[dict] = field(default_factory=list)
    seed_accuracy: float = 0.0
    evaluations: int = 0


Evaluator = Callable[[Population], tuple[np.ndarray, np.ndarray]]


def make_evaluator(X: np.ndarray, y: np.ndarray, cost: CostModel, mapper=map) -> Evaluator:
    """Accuracy and cost features of every individual; ``mapper`` may be a pool's or a
    Dask client's ``map`` (over chunks of the population). The samples' encodings are
    built once, here, and reused every generation (a remote worker rebuilds them)."""
    samples = PopulationEvaluator(X)

    def evaluate(pop: Population) -> tuple[np.ndarray, np.ndarray]:
        chunks = _chunks(pop)
        parts = list(mapper(_evaluate_chunk, [(c, samples, y) for c in chunks]))
        acc = np.concatenate([p[0] for p in parts])
        feats = np.vstack([p[1] for p in parts])
        return acc, feats

    return evaluate


def _chunks(pop: Population, n: int = 4) -> list[Population]:
    idx = np.array_split(np.arange(pop.size), min(n, pop.size))
    return [pop.take(i) for i in idx if len(i)]


def _evaluate_chunk(args) -> tuple[np.ndarray, np.ndarray]:
    pop, samples, y = args
    classes = samples(pop)
    acc = (classes == y[None, :]).mean(axis=1)
    feats = population_features(pop)  # = cost.features of each individual, all at once
    return acc, feats


def score(pop: Population, evaluate: Evaluator, cost: CostModel, cfg: SearchConfig, seed_acc: float) -> Scored:
    acc, feats = evaluate(pop)
    area, power = cost.estimate(feats)
    ok = acc >= seed_acc - cfg.max_loss - 1e-12
    if cfg.max_power_mw is not None:
        ok &= power <= cfg.max_power_mw
    return Scored(pop=pop, acc=acc, area=area, power=power, feasible=ok)


def run_search(base, X: np.ndarray, y: np.ndarray, cost: CostModel, cfg: SearchConfig, *,
               evaluate: Evaluator | None = None, checkpoint: Path | None = None, resume: bool = False,
               reference_accuracy: float | None = None,
               progress: GenerationProgress | None = None) -> SearchResult:
    """NSGA-II from the seed model ``base`` on integer training inputs ``X``.

    ``cfg.max_loss`` is measured against ``reference_accuracy`` (the exact baseline's
    training accuracy when the seed is another model, e.g. a power-of-two QAT model),
    by default against the seed's own."""
    evaluate = evaluate or make_evaluator(X, y, cost)
    samples = PopulationEvaluator(X)  # the greedy steps' own evaluations, in this process
    if resume and checkpoint is not None and checkpoint.is_file():
        gen, current, rng, history, seed_acc, evals, archive, descent = load_checkpoint(checkpoint, base, cfg)
    else:
        rng = np.random.default_rng(cfg.seed)
        if reference_accuracy is not None:
            seed_acc = float(reference_accuracy)
        else:
            seed_acc = float((evaluate_population(Population.from_mlp(base, 1), X)[0] == y).mean())
        current = score(seed_population(base, cfg, rng), evaluate, cost, cfg, seed_acc)
        gen, history, evals, descent = 0, [], cfg.population, None
        if cfg.greedy_steps:  # a greedy descent's states join the start (memetic.py)
            states = greedy_offspring(current.pop, X, y, cost, cfg, rng, floor=seed_acc - cfg.max_loss - 0.02,
                                      evaluator=samples)
            if states.size:  # none when its first step found no cut
                descent = score(states, evaluate, cost, cfg, seed_acc)
                evals += states.size
                current = select(merge(current, descent), cfg.population)
        archive = pareto_front(current if descent is None else merge(current, descent))
        history.append(_log(0, current))
        if checkpoint is not None:
            save_checkpoint(checkpoint, 0, current, rng, cfg, history, seed_acc, evals, archive, descent)
    while gen < cfg.generations:
        gen += 1
        kids = score(offspring(current, cfg, rng), evaluate, cost, cfg, seed_acc)
        # cut-and-retrain children of the archive (memetic.py); none while nothing is feasible
        if cfg.memetic_every and gen % cfg.memetic_every == 0 and archive.pop.size:
            kids = merge(kids, score(memetic_offspring(archive, X, y, cost, cfg, rng, samples), evaluate, cost, cfg,
                                      seed_acc))
        evals += kids.pop.size
        current = select(merge(current, kids), cfg.population)
        # The archive keeps every non-dominated design ever seen: the population alone
        # forgets front points that crowding pushes out.
        archive = pareto_front(merge(archive, kids))
        history.append(_log(gen, current))
        if checkpoint is not None:
            save_checkpoint(checkpoint, gen, current, rng, cfg, history, seed_acc, evals, archive, descent)
        if progress:
            progress(gen, history[-1])
    return SearchResult(front=archive, history=history, seed_accuracy=seed_acc, evaluations=evals, descent=descent)


def _log(gen: int, s: Scored) -> dict:
    f = s.feasible
    return {"generation": gen, "feasible": int(f.sum()),
            "best_acc": float(s.acc[f].max()) if f.any() else None,
            "min_area": float(s.area[f].min()) if f.any() else None}
