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
def single_cuts(pop: Population, i: int) -> Population:
    """Every single cut of individual ``i``, as a population: each live operand bit
    cleared; each weight of several signed digits less its lowest digit (a cheaper
    constant multiplier); one more bit of product truncation per neuron, of activation
    truncation per hidden neuron, of compare bits per class."""
    base = pop.base
    last = len(base.layers) - 1
    moves = []  # (layer, neuron, input, kind, value)
    for li, layer in enumerate(base.layers):
        W, M = pop.weights[li][i], pop.masks[li][i]
        for j in range(layer.n_out):
            for c in np.flatnonzero((W[j] != 0) & (M[j] != 0)):
                for b in range(base.operand_bits(li)):
                    if M[j, c] >> b & 1:
                        moves.append((li, j, int(c), "mask", int(M[j, c]) & ~(1 << b)))
                d = csd(abs(int(W[j, c])))
                if len(d) > 1:
                    k, sgn = d[-1]
                    moves.append((li, j, int(c), "weight", int(np.sign(W[j, c])) * (abs(int(W[j, c])) - sgn * (1 << k))))
            if pop.product_trunc[li][i, j] < 6:
                moves.append((li, j, -1, "pt", int(pop.product_trunc[li][i, j]) + 1))
            if li < last and layer.activation == "qrelu" and pop.act_trunc[li][i, j] < layer.act_bits - 1:
                moves.append((li, j, -1, "at", int(pop.act_trunc[li][i, j]) + 1))
            if li == last and pop.cmp_drop[i, j] < 8:
                moves.append((li, j, -1, "cd", int(pop.cmp_drop[i, j]) + 1))
    kids = Population.concat([pop.take(np.full(len(moves), i))])
    for k, (li, j, c, kind, v) in enumerate(moves):
        if kind == "mask":
            kids.masks[li][k, j, c] = v
        elif kind == "weight":
            kids.weights[li][k, j, c] = v
        elif kind == "pt":
            kids.product_trunc[li][k, j] = v
        elif kind == "at":
            kids.act_trunc[li][k, j] = v
        else:
            kids.cmp_drop[k, j] = v
    kids.moves = [(li, j, c) for li, j, c, _, _ in moves]  # the connection (or neuron: -1) of each cut
    # a rough saving in adder bits, to shortlist by: a mask bit, one per signed digit of
    # its weight; a weight digit, one per operand bit; a truncation, a couple
    proxy = []
    for li, j, c, kind, v in moves:
        if kind == "mask":
            proxy.append(len(csd(abs(int(pop.weights[li][i, j, c])))))
        elif kind == "weight":
            proxy.append(bin(int(pop.masks[li][i, j, c]) & ((1 << base.operand_bits(li)) - 1)).count("1"))
        else:
            proxy.append(2)
    kids.saving_proxy = np.array(proxy, dtype=float)
    return kids


def greedy_descent(pop: Population, i: int, X: np.ndarray, y: np.ndarray, evaluator, cost: CostModel, *,
                   steps: int, per_step: int = 4, shortlist: int = 48, retrain_every: int = 4,
                   retrain_cfg: RetrainConfig | None = None, seed: int = 0, floor: float = 0.0) -> Population:
    """A descent from individual ``i`` by cuts: each step evaluates every single cut
    (:func:`single_cuts`) on ``(X, y)``, estimates the area of the ``shortlist`` that cost
    the least accuracy, and applies the ``per_step`` of those with the least accuracy lost
    per area saved (at most one per connection, and ``per_step`` at least 1 % of the
    candidate cuts); every ``retrain_every`` steps the constants are retrained. Stops
    after ``steps`` steps or below accuracy ``floor``. Returns the retrained states of the
    path (the start excluded)."""
    cur = Population.concat([pop.take([i])])
    rcfg = retrain_cfg or RetrainConfig()
    path = []
    acc0 = float((evaluator(cur)[0] == y).mean())
    area0 = cost.area_of(cur.individual(0))
    for step in range(1, steps + 1):
        kids = single_cuts(cur, 0)
        if not kids.size:
            break
        acc = (evaluator(kids) == y[None]).mean(axis=1)
        want = max(per_step, int(np.ceil(0.01 * kids.size)))
        order = np.argsort((acc0 - acc + 1e-4) / kids.saving_proxy, kind="stable")
        taken, used = [], set()
        for lo in range(0, min(len(order), 4 * shortlist), shortlist):  # shortlists until enough cuts save area
            short = order[lo:lo + shortlist]
            saved = np.array([area0 - cost.area_of(kids.individual(int(k))) for k in short])
            ratio = (acc0 - acc[short] + 1e-4) / np.maximum(saved, 1e-9)
            for r in np.argsort(ratio, kind="stable"):
                k = int(short[r])
                if saved[r] <= 0 or kids.moves[k] in used:
                    continue
                used.add(kids.moves[k])
                taken.append(k)
                if len(taken) == want:
                    break
            if len(taken) == want:
                break
        if not taken:
            break
        for k in taken:  # apply the chosen cuts together: each kid is ``cur`` with one cut
            li, j, _ = kids.moves[k]
            cur.masks[li][0, j] = kids.masks[li][k, j]
            cur.weights[li][0, j] = kids.weights[li][k, j]
            cur.product_trunc[li][0, j] = kids.product_trunc[li][k, j]
            cur.act_trunc[li][0, j] = kids.act_trunc[li][k, j]
            if li == len(cur.weights) - 1:
                cur.cmp_drop[0, j] = kids.cmp_drop[k, j]
        if step % retrain_every == 0:
            cur, _ = retrain(cur, X, y, rcfg, seed=seed + step)
            path.append(Population.concat([cur]))
        acc0 = float((evaluator(cur)[0] == y).mean())
        if acc0 < floor:
            break
        area0 = cost.area_of(cur.individual(0))
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
