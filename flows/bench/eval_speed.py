"""Fitness-evaluation throughput: the vectorized population evaluator against a per-sample
Python loop over the golden model's semantics, on the same population and samples.

    python -m flows.bench.eval_speed [--data wine|PATH] [--hidden 3] [--population 64]

Without ``--data``: the built-in wine set and, when ../shared is present, the reference
split Cardio (21-3-3). Prints individual-samples per second for both and their ratio (the
search needs >= 100x).

What is timed is what the search does every generation: one
:class:`~approxmlp.search.evaluate.PopulationEvaluator`, built once for the training samples, called
on a population (best of several calls: the machine may be shared and noisy). The loop is
:func:`approxmlp.core.golden.reference_class`, one sample at a time in plain Python, timed on a
subset of the individuals (best of a few passes) and scaled; both sides run on one core.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from approxmlp.search.genome import Population, allowed_weights

from approxmlp.search.evaluate import PopulationEvaluator
from approxmlp.frontend.data import load_dataset
from approxmlp.frontend.input_quantizer import InputQuantizer
from approxmlp.frontend.floatnet import train_float
from approxmlp.core.golden import reference_class
from approxmlp.frontend.float_model import FloatMLP
from approxmlp.frontend.quantize import quantize_ptq
from flows.bench.suite import BENCHES  # the literature's topologies
from approxmlp.search.config import SearchConfig
from approxmlp.search.operators import mutate_one

SPLITS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "splits"


def per_sample_loop(mlp, X) -> list[int]:
    """The reference: one sample at a time in plain Python (what a naive fitness does)."""
    return [reference_class(mlp, x) for x in X.tolist()]


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def measure(ir, X: np.ndarray, *, population: int = 64, seed: int = 0, data: str = "") -> dict:
    """Time both evaluators on a population of ``population`` mutants of ``ir`` (the first
    unchanged) over the integer samples ``X``; returns the rates and their ratio."""
    rng = np.random.default_rng(seed)
    pop = Population.from_mlp(ir, population)
    allowed = allowed_weights(8, "int")
    for i in range(1, population):
        mutate_one(pop, i, SearchConfig(), rng, allowed, scale=3.0)

    evaluator = PopulationEvaluator(X)  # once per search: the samples' encodings are kept
    fast = evaluator(pop)  # warm-up (caches, working arrays)
    t_fast = _best(lambda: evaluator(pop), 7)
    sub = min(population, 8)  # the loop is slow: time a subset and scale
    individuals = [pop.individual(i) for i in range(sub)]
    slow = [per_sample_loop(m, X) for m in individuals]
    t_slow = _best(lambda: [per_sample_loop(m, X) for m in individuals], 3) * population / sub
    assert all(fast[i].tolist() == slow[i] for i in range(sub)), "vectorized and loop evaluations disagree"
    evals = population * len(X)
    res = {"data": str(data), "topology": ir.topology_str, "population": population, "samples": len(X),
           "vectorized_per_s": evals / t_fast, "loop_per_s": evals / t_slow, "ratio": t_slow / t_fast}
    print(f"{Path(str(data)).name or ir.name} {ir.topology_str}: {population} individuals x {len(X)} samples; "
          f"vectorized {res['vectorized_per_s']:.3g}/s, per-sample loop {res['loop_per_s']:.3g}/s, "
          f"ratio {res['ratio']:.0f}x", flush=True)
    return res


def run(data: str = "wine", hidden=None, population: int = 64, seed: int = 0) -> dict:
    """Train and quantize an MLP of ``hidden`` layers (default: the literature's for a
    reference split, else one of 4) on ``data`` (a built-in name or a split folder), then
    :func:`measure` on its training samples."""
    if hidden is None:
        hidden = {b.name: b.hidden for b in BENCHES}.get(Path(str(data)).name, (4,))
    hidden = tuple(int(h) for h in hidden)
    d = load_dataset(data)
    net = train_float(d.X_train, d.y_train, hidden, d.n_classes, epochs=100, seed=seed)
    q = InputQuantizer.fit(d.X_train, 4)
    ir = quantize_ptq(FloatMLP.from_state_dict(net.state_dict()), q, q(d.X_train))
    return measure(ir, q(d.X_train), population=population, seed=seed, data=data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="built-in name or split folder (default: wine, and Cardio if ../shared exists)")
    ap.add_argument("--hidden", help="hidden layer sizes, comma-separated (default: per data set)")
    ap.add_argument("--population", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    hidden = None if a.hidden is None else tuple(int(h) for h in a.hidden.split(",") if h.strip())
    if a.data is not None:
        sets = [a.data]
    else:
        sets = ["wine"] + ([str(SPLITS / "Cardio")] if (SPLITS / "Cardio").is_dir() else [])
    for data in sets:
        run(data, hidden=hidden, population=a.population, seed=a.seed)


if __name__ == "__main__":
    main()
