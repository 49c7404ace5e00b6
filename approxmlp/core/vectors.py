"""Vectors beyond the test split: random inputs and the corners where circuits go wrong.

The test split exercises the inputs the data set happens to contain (45 on a small set),
which says little about the rest of the input space: an overflowing accumulator, a
saturation comparator off by one or an argmax tie broken the wrong way may sit where no
test sample goes. These vectors are simulated with the test split in the same Verilator
build (:func:`approxmlp.pipeline.steps.run_verification`), each kind counted in the
report:

* ``random``: uniform random inputs (seeded by the IR's hash: a design always gets the
  same ones);
* ``corner``: all-zero and all-max inputs, and for every first-layer neuron the inputs
  of its largest and smallest sum (each input at 0 or its maximum by the weight's sign,
  as the interval analysis of :mod:`approxmlp.core.ranges` bounds it); for deeper
  neurons, the vectors of a pool that drive their output highest and lowest;
* ``qrelu_edge``: the inputs on either side of each hidden neuron's QReLU edges (where
  its output leaves 0 and where it reaches saturation), found by walking one input step
  at a time from a first-layer neuron's smallest sum to its largest;
* ``argmax_tie``: exact ties found one input step away from the pool's closest calls,
  then the pool's vectors whose two best scores are closest (a tie must keep the lower
  index).
"""

from __future__ import annotations

import numpy as np

from .golden import evaluate
from .ir import MLP
from .ranges import analyze

#: Random vectors per design by default.
N_RANDOM = 2000
#: Most vectors per neuron and edge, and most near-tie vectors in all.
EDGE_PER_NEURON = 4
N_TIES = 200

KINDS = ("random", "corner", "qrelu_edge", "argmax_tie")


def _path(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Inputs from ``lo`` to ``hi``, one input one step at a time (both ends included)."""
    rows = [lo.copy()]
    x = lo.copy()
    for i in range(len(lo)):
        step = 1 if hi[i] > x[i] else -1
        while x[i] != hi[i]:
            x[i] += step
            rows.append(x.copy())
    return np.array(rows, dtype=np.int64)


def _extremes(mlp: MLP) -> list[np.ndarray]:
    """Per first-layer neuron, its smallest-sum and largest-sum inputs (ranges decide
    which connections matter: only those with a non-constant product)."""
    top = (1 << mlp.input_bits) - 1
    out = []
    for r in analyze(mlp)[0]:
        lo = np.zeros(mlp.n_inputs, dtype=np.int64)
        hi = np.zeros(mlp.n_inputs, dtype=np.int64)
        for p in r.pos:
            hi[p.index] = top
        for p in r.neg:
            lo[p.index] = top
        out += [lo, hi]
    return out


def extra_vectors(mlp: MLP, *, n_random: int = N_RANDOM, seed: int = 0) -> dict[str, np.ndarray]:
    """The extra vectors of ``mlp`` by kind (see the module docstring), each ``(N, n_inputs)``."""
    top = (1 << mlp.input_bits) - 1
    rng = np.random.default_rng([int(mlp.digest[:16], 16), seed])
    rand = rng.integers(0, top + 1, size=(n_random, mlp.n_inputs), dtype=np.int64)
    ext = _extremes(mlp)
    corners = [np.zeros(mlp.n_inputs, dtype=np.int64), np.full(mlp.n_inputs, top, dtype=np.int64)] + ext
    paths = [_path(ext[k], ext[k + 1]) for k in range(0, len(ext), 2)]
    walk = np.concatenate(paths) if paths else np.empty((0, mlp.n_inputs), dtype=np.int64)
    pool = np.concatenate([rand, walk, np.array(corners)])
    ev = evaluate(mlp, pool, trace=True)
    # deeper neurons' extremes: the pool's vectors that drive them highest and lowest
    for out in ev.outputs[1:]:
        for j in range(out.shape[1]):
            corners += [pool[int(np.argmax(out[:, j]))], pool[int(np.argmin(out[:, j]))]]
    # QReLU edges along the walks: consecutive walk vectors where a hidden output crosses 0 or saturation
    edges = []
    if len(walk):
        wev = evaluate(mlp, walk, trace=True)
        bounds = np.cumsum([0] + [len(p) for p in paths])
        same_path = np.ones(len(walk) - 1, dtype=bool)
        same_path[bounds[1:-1] - 1] = False
        for li, layer in enumerate(mlp.layers):
            if layer.activation != "qrelu":
                continue
            sat = (1 << layer.act_bits) - 1
            o = wev.outputs[li]
            for j in range(o.shape[1]):
                a, b = o[:-1, j], o[1:, j]
                for crossing in (((a == 0) != (b == 0)), ((a >= sat) != (b >= sat))):
                    idx = np.flatnonzero(crossing & same_path)[:EDGE_PER_NEURON]
                    for t in idx:
                        edges += [walk[t], walk[t + 1]]
    # argmax near-ties: the smallest gaps between the two best scores of the pool
    near = pool[np.argsort(_gaps(mlp, pool), kind="stable")[:N_TIES]]
    # ... and their neighbours one input step away that tie exactly
    steps = [np.clip(near + d * np.eye(mlp.n_inputs, dtype=np.int64)[i], 0, top)
             for i in range(mlp.n_inputs) for d in (-1, 1)]
    around = np.concatenate(steps) if steps else near
    exact = around[_gaps(mlp, around) == 0]
    ties = np.concatenate([exact[:N_TIES // 2], near])[:N_TIES]
    as_array = lambda rows: (np.array(rows, dtype=np.int64).reshape(-1, mlp.n_inputs)  # noqa: E731
                             if len(rows) else np.empty((0, mlp.n_inputs), dtype=np.int64))
    return {"random": rand, "corner": as_array(corners), "qrelu_edge": as_array(edges), "argmax_tie": ties}


def _gaps(mlp: MLP, X: np.ndarray) -> np.ndarray:
    """Per vector, the best score minus the second best (0: a tie)."""
    s = np.sort(evaluate(mlp, X).scores, axis=1)
    return s[:, -1] - s[:, -2]


def exact_ties(mlp: MLP, X: np.ndarray) -> int:
    """How many of ``X`` have two equal best scores (the argmax tie rule decides them)."""
    return int(np.sum(_gaps(mlp, X) == 0))
