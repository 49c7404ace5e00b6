"""The search's memetic step: cost-guided structural cuts, repaired by retraining.

Random mutations of :mod:`approxmlp.search.operators` change a few genes at a time, and a cut that
costs accuracy is thrown away before the other constants have had a chance to adapt to
it: on a network that has to stay (Pendigits), the front stalls where every single cut
hurts. Every ``cfg.memetic_every`` generations, :func:`memetic_offspring`

1. picks ``cfg.memetic_parents`` designs of the archive, spread along it by area (with a
   random offset, so that successive rounds pick different ones);
2. makes ``cfg.memetic_children`` children of each by *cuts* only: an operand bit cleared,
   a connection removed, one more bit of product, activation or argmax truncation. The
   neuron a cut lands in is drawn in proportion to its share of the estimated area
   (:func:`approxmlp.backend.cost.neuron_features` with the cost model's coefficients), the bit
   within it favours low bits; the number of cuts per child is log-uniform in
   ``1..cfg.memetic_cuts``;
3. retrains every child's weights and biases with the structure fixed
   (:func:`approxmlp.search.retrain.retrain`): Lamarckian, the retrained constants are the
   child's genes.

The children are offspring like any other: scored, and kept by the NSGA-II selection only
if they earn it. Every random choice comes from the search's generator (the retraining's
batch order from a seed drawn from it), so a run stays a function of its seed, and resumes
from a checkpoint to the same front.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .genome import Population
from ..core.csd import csd
from ..backend.cost import CostModel, neuron_features
from .retrain import RetrainConfig, retrain


def _shares(mlp, cost: CostModel) -> dict[tuple[int, int], float]:
    coef = np.asarray(cost.area[1:])
    return {k: max(0.0, float(f @ coef)) for k, f in neuron_features(mlp).items()}


def cut_one(pop: Population, i: int, shares: dict[tuple[int, int], float], cuts: int,
            rng: np.random.Generator, max_cmp_drop: int = 8) -> None:
    """``cuts`` structural cuts of individual ``i`` in place (see the module docstring)."""
    base = pop.base
    keys = [k for k, v in shares.items() if v > 0]
    if not keys:
        return
    p = np.array([shares[k] for k in keys])
    p /= p.sum()
    last = len(base.layers) - 1
    for _ in range(cuts):
        li, j = keys[rng.choice(len(keys), p=p)]
        layer = base.layers[li]
        bits = base.operand_bits(li)
        W, M = pop.weights[li][i, j], pop.masks[li][i, j]
        live = np.flatnonzero((W != 0) & (M != 0))
        move = rng.random()
        if move < 0.55 and len(live):  # clear one operand bit (low bits more often)
            c = live[rng.integers(len(live))]
            set_bits = [b for b in range(bits) if M[c] >> b & 1]
            w = 2.0 ** -np.arange(len(set_bits))
            M[c] &= ~(1 << set_bits[rng.choice(len(set_bits), p=w / w.sum())])
        elif move < 0.75 and len(live):  # remove a connection, the smaller weights more often
            w = 1.0 / np.abs(W[live]).astype(float)
            M[live[rng.choice(len(live), p=w / w.sum())]] = 0
        elif move < 0.9:
            pop.product_trunc[li][i, j] = min(6, pop.product_trunc[li][i, j] + 1)
        elif li == last:
            pop.cmp_drop[i, j] = min(max_cmp_drop, pop.cmp_drop[i, j] + 1)
        elif layer.activation == "qrelu":
            pop.act_trunc[li][i, j] = min(layer.act_bits - 1, pop.act_trunc[li][i, j] + 1)


def memetic_offspring(archive, X: np.ndarray, y: np.ndarray, cost: CostModel, cfg, rng: np.random.Generator) -> Population:
    """Cut and retrained children of archive members (``archive``: a ``search.Scored`` sorted
    by area); ``cfg`` a ``search.SearchConfig``."""
    n = archive.pop.size
    k = min(cfg.memetic_parents, n)
    # evenly spread along the archive, from a random offset
    pos = (np.arange(k) + rng.random()) * n / k
    parents = np.unique(np.clip(pos.astype(np.int64), 0, n - 1))
    idx = np.repeat(parents, cfg.memetic_children)
    kids = Population.concat([archive.pop.take(idx)])
    for c, a in enumerate(idx):
        shares = _shares(archive.pop.individual(int(a)), cost)
        cuts = int(np.floor(2.0 ** rng.uniform(0.0, np.log2(max(1.0, cfg.memetic_cuts)) + 1e-9)))
        cut_one(kids, c, shares, max(1, cuts), rng)
    rcfg = RetrainConfig(steps=cfg.memetic_steps, lr=cfg.memetic_lr, multipliers=cfg.multipliers,
                         weight_bits=cfg.weight_bits)
    out, _ = retrain(kids, X, y, rcfg, seed=int(rng.integers(1 << 31)))
    return out


# -- greedy descent ---------------------------------------------------------------------
#: The kinds of single cut: an operand bit cleared, a weight less its lowest signed digit,
#: a connection removed, an input removed from every neuron of a layer (a pixel nobody
#: needs, a hidden neuron nobody reads), one more bit of product, activation or argmax
#: truncation.
_BIT, _DIGIT, _CONN, _INPUT, _PT, _AT, _CD = range(7)


@dataclass
class Cuts:
    """Single cuts of one design (:func:`single_cuts`): ``pop`` row ``k`` is the design with
    cut ``k``; ``table`` row ``k`` says what it is (:func:`_cut_table`); ``where[k]`` what it
    touches (``(layer, neuron, input)``, -1 for all), so that one step cuts each thing at
    most once; ``saving[k]`` a rough saving in adder bits, to rank by before the cost model
    prices the best ones."""

    pop: Population
    table: np.ndarray

    @property
    def where(self) -> list[tuple[int, int, int]]:
        return [tuple(r) for r in self.table[:, :3].tolist()]

    @property
    def saving(self) -> np.ndarray:
        return self.table[:, 5].astype(float)


def _cut_table(pop: Population, i: int) -> np.ndarray:
    """Every single cut of individual ``i`` as rows ``(layer, neuron, input, kind, value,
    saving)`` (-1 where a cut spans all neurons or all inputs), without building any design.
    Mask cuts carry the mask they AND in, so that cuts applied together commute."""
    base = pop.base
    last = len(base.layers) - 1
    rows = []

    def add(li, j, c, kind, value, saving):
        n = len(value)
        rows.append(np.stack([np.full(n, li), np.broadcast_to(j, (n,)), np.broadcast_to(c, (n,)),
                              np.full(n, kind), value, saving], axis=1))

    for li, layer in enumerate(base.layers):
        W, M = pop.weights[li][i], pop.masks[li][i]
        bits = base.operand_bits(li)
        A = np.abs(W)
        digits = {int(v): csd(int(v)) for v in np.unique(A)}
        n_digits = np.vectorize(lambda v: len(digits[int(v)]), otypes=[np.int64])(A)
        live = (W != 0) & (M != 0)
        kept = np.zeros_like(M)
        for b in range(bits):
            kept += (M >> b) & 1
        for b in range(bits):  # a live operand bit cleared: an adder bit per signed digit
            j, c = np.nonzero(live & ((M >> b) & 1).astype(bool))
            add(li, j, c, _BIT, np.full(len(j), ~(1 << b)), n_digits[j, c])
        j, c = np.nonzero(live & (n_digits > 1))  # a weight less its lowest digit: one adder row fewer
        if len(j):
            lower = {v: v - d[-1][1] * (1 << d[-1][0]) for v, d in digits.items() if len(d) > 1}
            add(li, j, c, _DIGIT, np.sign(W[j, c]) * np.array([lower[int(v)] for v in A[j, c]], dtype=np.int64),
                kept[j, c])
        j, c = np.nonzero(live & (kept > 1))  # a connection removed (one kept bit: that is a bit cut)
        add(li, j, c, _CONN, np.zeros(len(j), dtype=np.int64), kept[j, c] * n_digits[j, c])
        per_input = (live * kept * n_digits).sum(axis=0)
        c = np.flatnonzero(live.sum(axis=0) > 1)  # an input removed from every neuron of the layer
        add(li, -1, c, _INPUT, np.zeros(len(c), dtype=np.int64), per_input[c])
        neurons = np.arange(layer.n_out)
        for kind, arr, top, ok in ((_PT, pop.product_trunc[li][i], 6, True),
                                   (_AT, pop.act_trunc[li][i], layer.act_bits - 1, li < last and layer.activation == "qrelu"),
                                   (_CD, pop.cmp_drop[i], 8, li == last)):
            if ok:
                j = neurons[arr < top]
                add(li, j, -1, kind, arr[j] + 1, np.full(len(j), 2))
    return np.concatenate(rows).astype(np.int64) if rows else np.zeros((0, 6), dtype=np.int64)


def _assign(pop: Population, rows: np.ndarray, table: np.ndarray) -> None:
    """Cut ``table`` row ``r`` into individual ``rows[r]``, in place, for every ``r``."""
    li_, j_, c_, kind_, v_ = (table[:, k] for k in range(5))
    for li in range(len(pop.weights)):
        at = li_ == li
        for kind in (_BIT, _CONN):
            s = at & (kind_ == kind)
            np.bitwise_and.at(pop.masks[li], (rows[s], j_[s], c_[s]), v_[s])
        s = at & (kind_ == _INPUT)
        for r, c in zip(rows[s], c_[s]):
            pop.masks[li][r, :, c] = 0
        s = at & (kind_ == _DIGIT)
        pop.weights[li][rows[s], j_[s], c_[s]] = v_[s]
        for kind, arrs in ((_PT, pop.product_trunc), (_AT, pop.act_trunc)):
            s = at & (kind_ == kind)
            arrs[li][rows[s], j_[s]] = np.maximum(arrs[li][rows[s], j_[s]], v_[s])
    s = kind_ == _CD
    pop.cmp_drop[rows[s], j_[s]] = np.maximum(pop.cmp_drop[rows[s], j_[s]], v_[s])


def _sample(table: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``k`` rows of a cut table, drawn in proportion to their rough saving."""
    if len(table) <= k:
        return table
    w = table[:, 5].astype(float)
    return table[np.sort(rng.choice(len(table), size=k, replace=False, p=w / w.sum()))]


def single_cuts(pop: Population, i: int, *, at_most: int | None = None, rng: np.random.Generator | None = None) -> Cuts:
    """Individual ``i`` once per single cut (the kinds above), or, with ``at_most``, per cut
    of a sample of that many drawn by ``rng`` (only the sample is built: a big network has
    tens of thousands of cuts)."""
    table = _cut_table(pop, i)
    if at_most is not None:
        table = _sample(table, at_most, rng)
    kids = Population.concat([pop.take(np.full(len(table), i))])
    _assign(kids, np.arange(len(table)), table)
    return Cuts(kids, table)


def greedy_descent(pop: Population, i: int, X: np.ndarray, y: np.ndarray, evaluator, cost: CostModel, *,
                   steps: int, per_step: int = 4, shortlist: int = 48, candidates: int = 256,
                   step_area: float = 0.03, retrain_every: int = 4, retrain_cfg: RetrainConfig | None = None, seed: int = 0,
                   floor: float = 0.0) -> Population:
    """A descent from individual ``i`` by cuts. Each step takes the single cuts
    (:func:`single_cuts`), all of them or, on a big network, a sample of at least
    ``candidates`` (drawn in proportion to their rough saving); evaluates them on
    ``(X, y)``; prices with the cost model the ``shortlist`` that cost the least accuracy
    per adder bit; and applies the ones with the least accuracy lost per area saved, at
    most one per connection: ``per_step`` of them, or 1 % of all the cuts on a big network,
    but no more than save ``step_area`` of the area together or lose, added up cut by cut,
    a tenth of the accuracy left above ``floor`` (cuts that each cost little may cost a
    lot together: a step stays small).
    Every ``retrain_every`` steps the constants are retrained. Stops after ``steps`` steps
    or below accuracy ``floor``. Returns the retrained states of the path (the start
    excluded). Deterministic for ``seed``."""
    from .features import population_features

    cur = Population.concat([pop.take([i])])
    rcfg = retrain_cfg or RetrainConfig()
    rng = np.random.default_rng(seed)
    path = []
    acc0 = float((evaluator(cur)[0] == y).mean())
    area0 = float(cost.estimate(population_features(cur))[0][0])
    for step in range(1, steps + 1):
        n = len(_cut_table(cur, 0))
        if not n:
            break
        want = max(per_step, int(np.ceil(0.01 * n)))
        cuts = single_cuts(cur, 0, at_most=max(candidates, 4 * want), rng=rng)
        acc = (evaluator(cuts.pop) == y[None]).mean(axis=1)
        order = np.argsort((acc0 - acc + 1e-4) / cuts.saving, kind="stable")
        where = cuts.where
        taken, used, total, lost = [], set(), 0.0, 0.0
        budget = max(0.0, acc0 - floor) / 10  # the accuracy a step may spend, cut by cut
        enough = lambda: len(taken) == want or total >= step_area * area0  # noqa: E731
        for lo in range(0, min(len(order), 4 * shortlist), shortlist):  # shortlists until enough cuts save area
            short = order[lo:lo + shortlist]
            saved = area0 - cost.estimate(population_features(cuts.pop.take(short)))[0]
            ratio = (acc0 - acc[short] + 1e-4) / np.maximum(saved, 1e-9)
            for r in np.argsort(ratio, kind="stable"):
                k = int(short[r])
                loss = max(0.0, acc0 - float(acc[k]))
                if saved[r] <= 0 or where[k] in used or (taken and lost + loss > budget):
                    continue
                used.add(where[k])
                taken.append(k)
                total += float(saved[r])
                lost += loss
                if enough():
                    break
            if enough():
                break
        if not taken:
            break
        # the chosen cuts together; if together they cost more than the step's budget (cuts
        # interact), the better half of them, and so on down to the best one
        while True:
            trial = Population.concat([cur])
            _assign(trial, np.zeros(len(taken), dtype=np.int64), cuts.table[taken])
            acc_t = float((evaluator(trial)[0] == y).mean())
            if acc0 - acc_t <= budget or len(taken) == 1:
                break
            taken = taken[:len(taken) // 2]
        cur = trial
        if step % retrain_every == 0:
            cur, _ = retrain(cur, X, y, rcfg, seed=seed + step)
            path.append(Population.concat([cur]))
            acc_t = float((evaluator(cur)[0] == y).mean())
        acc0 = acc_t
        if acc0 < floor:
            break
        area0 = float(cost.estimate(population_features(cur))[0][0])
    return Population.concat(path) if path else cur


def greedy_offspring(pop: Population, X: np.ndarray, y: np.ndarray, cost: CostModel, cfg,
                     rng: np.random.Generator, floor: float = 0.0) -> Population:
    """The search's start: a greedy descent (:func:`greedy_descent`) from the seed design
    (row 0 of the initial population), its states as extra individuals."""
    from .evaluate import PopulationEvaluator

    rcfg = RetrainConfig(steps=cfg.memetic_steps, lr=cfg.memetic_lr, multipliers=cfg.multipliers,
                         weight_bits=cfg.weight_bits)
    return greedy_descent(pop, 0, X, y, PopulationEvaluator(X), cost, steps=cfg.greedy_steps,
                          per_step=cfg.greedy_per_step, retrain_every=cfg.greedy_retrain_every,
                          retrain_cfg=rcfg, seed=int(rng.integers(1 << 31)), floor=floor)
