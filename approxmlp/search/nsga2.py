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

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from deap import base as deap_base, tools

from ..search.genome import Population, PopulationEvaluator, allowed_weights, evaluate_population, project_weights
from ..backend.cost import CostModel, features
from ..errors import ApproxMLPError
from ..core.ir import MAX_BIAS_BITS

CHECKPOINT_FORMAT = "approxmlp-search/1"


@dataclass(frozen=True)
class SearchConfig:
    population: int = 96
    generations: int = 300
    multipliers: str = "pow2"       # value set of the constant multipliers
    weight_bits: int = 8
    max_loss: float = 0.05          # on training accuracy, against the seed model
    max_power_mw: float | None = None
    seed: int = 0
    p_weight: float = 0.04          # per-gene mutation probabilities
    p_mask: float = 0.04
    p_trunc: float = 0.05
    p_prune: float = 0.02           # remove a connection outright (mask 0), or restore one
    p_crossover: float = 0.7
    p_bias: float = 0.05            # per neuron: a bias step (lets a neuron re-centre after a cut)
    #: Mutation strength per child, in gene changes: drawn log-uniformly from 1..mutations
    #: and turned into per-gene probabilities (the p_* above set the mix). Fixed per-gene
    #: probabilities scale with the network: Pendigits' 130 connections took ~15 changes per
    #: child, nearly every child fell outside the loss budget and the search stalled at the
    #: seed (2.6x); a small net needs the strong moves to reach the tiny designs. Drawing the
    #: strength per child serves both (Pendigits 6.3x, estimated, at 5 % loss).
    mutations: float = 16.0


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


@dataclass
class SearchResult:
    front: Scored                      # feasible non-dominated individuals, by area
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
    feats = np.vstack([features(pop.individual(i)) for i in range(pop.size)])
    return acc, feats


# -- operators ------------------------------------------------------------------------
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


def score(pop: Population, evaluate: Evaluator, cost: CostModel, cfg: SearchConfig, seed_acc: float) -> Scored:
    acc, feats = evaluate(pop)
    area, power = cost.estimate(feats)
    ok = acc >= seed_acc - cfg.max_loss - 1e-12
    if cfg.max_power_mw is not None:
        ok &= power <= cfg.max_power_mw
    return Scored(pop=pop, acc=acc, area=area, power=power, feasible=ok)


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


def _spread(n: int, k: int) -> np.ndarray:
    """At most ``k`` of ``range(n)``, evenly spread, both ends kept."""
    if n <= k:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, k)).astype(np.int64))


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
    return take(front, _spread(front.pop.size, k))


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
    chosen = [keep[j] for j in _spread(len(keep), k)]
    return Front(acc=acc[chosen], area=area[chosen], power=power[chosen],
                 sources=[sources[i] for i in chosen], non_dominated=len(keep))


# -- checkpoints ----------------------------------------------------------------------
_GENES = ("weights", "masks", "biases", "product_trunc", "act_trunc")


def _arrays(s: Scored, prefix: str = "") -> dict[str, np.ndarray]:
    arrays = {"acc": s.acc, "area": s.area, "power": s.power, "feasible": s.feasible, "cmp_drop": s.pop.cmp_drop}
    for li in range(len(s.pop.weights)):
        for name in _GENES:
            arrays[f"{name}_{li}"] = getattr(s.pop, name)[li]
    return {prefix + k: v for k, v in arrays.items()}


def _scored(arrays: dict[str, np.ndarray], base, prefix: str = "") -> Scored:
    a = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
    n = len(base.layers)
    pop = Population(base=base, cmp_drop=a["cmp_drop"],
                     **{name: [a[f"{name}_{li}"] for li in range(n)] for name in _GENES})
    return Scored(pop=pop, acc=a["acc"], area=a["area"], power=a["power"], feasible=a["feasible"])


def save_checkpoint(path: Path, gen: int, s: Scored, rng: np.random.Generator, cfg: SearchConfig,
                    history: list[dict], seed_acc: float, evaluations: int, archive: Scored | None = None) -> None:
    """Atomic: written beside, then renamed, so an interrupt never leaves half a file.
    Holds the population and the archive of every non-dominated design seen so far."""
    arrays = _arrays(s)
    if archive is not None:
        arrays.update(_arrays(archive, "archive."))
    meta = {"format": CHECKPOINT_FORMAT, "generation": gen, "config": asdict(cfg), "history": history,
            "rng": rng.bit_generator.state, "base_digest": s.pop.base.digest, "seed_accuracy": seed_acc,
            "evaluations": evaluations}
    arrays["meta"] = np.array(json.dumps(meta))
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def load_checkpoint(path: Path, base, cfg: SearchConfig):
    try:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            arrays = {k: f[k] for k in f.files if k != "meta"}
    except (OSError, ValueError, KeyError) as exc:
        raise ApproxMLPError(f"cannot read checkpoint {path} ({exc}); delete it or run without --resume") from None
    if meta.get("format") != CHECKPOINT_FORMAT or meta.get("base_digest") != base.digest:
        raise ApproxMLPError(f"checkpoint {path} belongs to another model or version; delete it or run without --resume")
    if meta["config"] != asdict(cfg):
        raise ApproxMLPError(f"checkpoint {path} was written with other search settings; "
                             "resume with the same options or delete it")
    s = _scored({k: v for k, v in arrays.items() if not k.startswith("archive.")}, base)
    archive = _scored(arrays, base, "archive.") if "archive.acc" in arrays else pareto_front(s)
    rng = np.random.default_rng()
    rng.bit_generator.state = meta["rng"]
    return meta["generation"], s, rng, meta["history"], meta["seed_accuracy"], meta["evaluations"], archive


# -- the loop -------------------------------------------------------------------------
def run_search(base, X: np.ndarray, y: np.ndarray, cost: CostModel, cfg: SearchConfig, *,
               evaluate: Evaluator | None = None, checkpoint: Path | None = None, resume: bool = False,
               reference_accuracy: float | None = None,
               progress: Callable[[int, dict], None] | None = None) -> SearchResult:
    """NSGA-II from the seed model ``base`` on integer training inputs ``X``.

    ``cfg.max_loss`` is measured against ``reference_accuracy`` (the exact baseline's
    training accuracy when the seed is another model, e.g. a power-of-two QAT model),
    by default against the seed's own."""
    evaluate = evaluate or make_evaluator(X, y, cost)
    if resume and checkpoint is not None and checkpoint.is_file():
        gen, current, rng, history, seed_acc, evals, archive = load_checkpoint(checkpoint, base, cfg)
    else:
        rng = np.random.default_rng(cfg.seed)
        if reference_accuracy is not None:
            seed_acc = float(reference_accuracy)
        else:
            seed_acc = float((evaluate_population(Population.from_mlp(base, 1), X)[0] == y).mean())
        current = score(seed_population(base, cfg, rng), evaluate, cost, cfg, seed_acc)
        gen, history, evals = 0, [], cfg.population
        archive = pareto_front(current)
        history.append(_log(0, current))
        if checkpoint is not None:
            save_checkpoint(checkpoint, 0, current, rng, cfg, history, seed_acc, evals, archive)
    while gen < cfg.generations:
        gen += 1
        kids = score(offspring(current, cfg, rng), evaluate, cost, cfg, seed_acc)
        evals += kids.pop.size
        current = select(merge(current, kids), cfg.population)
        # The archive keeps every non-dominated design ever seen: the population alone
        # forgets front points that crowding pushes out.
        archive = pareto_front(merge(archive, kids))
        history.append(_log(gen, current))
        if checkpoint is not None:
            save_checkpoint(checkpoint, gen, current, rng, cfg, history, seed_acc, evals, archive)
        if progress:
            progress(gen, history[-1])
    return SearchResult(front=archive, history=history, seed_accuracy=seed_acc, evaluations=evals)


def _log(gen: int, s: Scored) -> dict:
    f = s.feasible
    return {"generation": gen, "feasible": int(f.sum()),
            "best_acc": float(s.acc[f].max()) if f.any() else None,
            "min_area": float(s.area[f].min()) if f.any() else None}
