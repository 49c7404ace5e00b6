"""Calibrate the search's cost model against real synthesis, and report its error.

    python -m flows.bench.calibrate_cost [--targets printed,printed-cnt,fpga-ice40]
                                         [--cache DIR] [--workers 2] [--validate bench-out] [--write]
    python -m flows.bench.calibrate_cost --sharing [DIR ...]

The sample is what the search visits, from the exact design down to the most strongly
approximated ones. Per seed model (float + PTQ, QAT, and QAT with power-of-two weights, of
the built-in data sets in several topologies; ``int``/``pow2``/``csd2`` multipliers):

* the exact design (weights projected onto the multiplier set);
* random mutants of it, gentle to strong;
* points of NSGA-II fronts at accuracy losses of 2, 8 and 25 %, searched with two *proxy*
  costs fixed here: partial-product bits only (what the first model counted; its fronts
  are full of designs whose real cost is the part it ignored: accumulators, QReLU,
  argmax), and partial-product plus accumulator bits;
* then :data:`ROUNDS` adaptive rounds: the model is fitted to everything synthesized so far
  (EGFET), the same searches run with it, and the points of its fronts are added. A search
  goes wherever its model errs in its favour; these rounds put those designs in the sample.

Every design is synthesized with Yosys (results cached by IR digest and emitted circuit in ``--cache``, so a
rerun only synthesizes new designs; the pool itself is cached per settings). The model of
:mod:`approxmlp.cost.model` is fitted on half of the designs (every other one by measured size,
so both halves span the range) and evaluated on the other half: Spearman rank correlation,
median, 90th percentile and largest relative error, overall and on the smallest third of
the held-out designs (the ones a tight power budget picks). ``--validate DIR`` also reports
the error on the designs of earlier `approxmlp explore` runs found below ``DIR`` (never
fitted). ``--extra DIR`` puts such designs into the sample itself, fitted and held out like
the rest: the fronts a real search finds on real workloads (`make bench`'s ``bench-out``)
are exactly where a model fitted on small built-in sets errs in the search's favour
(Pendigits 16-5-10 fronts: estimates 10 % low on median, 28 % low on the designs with
two-digit weights); their synthesized figures are read from the runs' ``report.json``
when the run synthesized for that target, with this very flow. With ``--write`` the coefficients fitted on all designs, and these figures, are
stored in ``approxmlp/cost/cost_coefficients.json``, the file the search loads.

``--sharing DIR`` only refits the two constants of the shared-subexpression estimate
(:mod:`approxmlp.cost.sharing`) to the emitter's own sharing plan on the layers of the
explore runs below ``DIR``: no synthesis, seconds.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from approxmlp.search.genome import Population, allowed_weights, project_weights

from approxmlp.search.evaluate import PopulationEvaluator
from approxmlp.cost.design import features
from approxmlp.cost.features import FEATURES, FEATURES_VERSION
from approxmlp.cost.model import COEFF_FILE, FIT_SCALE, CostModel, calibrate
from approxmlp.frontend.data import load_dataset
from approxmlp.frontend.input_quantizer import InputQuantizer
from approxmlp.backend.verilog import emit_verilog
from approxmlp.backend.verilog.primitives import bundle
from approxmlp.frontend.floatnet import train_float
from approxmlp.core.ir import MLP
from approxmlp.frontend.float_model import FloatMLP
from approxmlp.frontend.quantize import quantize_ptq
from approxmlp.core.ranges import analyze
from approxmlp.search.config import SearchConfig
from approxmlp.search.nsga2 import run_search
from approxmlp.search.operators import mutate_one
from flows.bench.common import REPO

DEFAULT_CACHE = REPO / "bench-out" / "calibrate-cost"
#: (data set, hidden layers, multiplier sets, seed model: float net + PTQ, QAT, QAT with
#: power-of-two weights (what `approxmlp train [--weights pow2]` writes))
SEEDS = [("iris", (3,), ("int", "pow2", "csd2"), "ptq"), ("wine", (2,), ("int", "pow2", "csd2"), "ptq"),
         ("wine", (4,), ("int", "pow2", "csd2"), "ptq"), ("breast_cancer", (3,), ("int", "pow2", "csd2"), "ptq"),
         ("digits", (5,), ("pow2",), "ptq"),
         ("iris", (3,), ("int", "pow2"), "qat"), ("wine", (2,), ("int", "pow2"), "qat"),
         ("wine", (4,), ("pow2",), "qat"), ("breast_cancer", (3,), ("int", "pow2"), "qat"),
         ("wine", (2,), ("pow2",), "qat-pow2"), ("breast_cancer", (3,), ("pow2",), "qat-pow2")]
LOSSES = (0.02, 0.08, 0.25)
PER_FRONT = 3
MUTANT_STRENGTHS = (1.0, 4.0, 12.0)
#: Adaptive rounds: search with the model fitted so far (EGFET), synthesize the fronts it
#: finds, add them, refit. The search goes wherever the model is wrong in its favour;
#: these rounds put exactly those designs into the sample.
ROUNDS = 2
ROUND_PER_FRONT = 2
ROUND_TARGET = "printed"
ROUND_SEEDS = [s for s in SEEDS if s[0] != "digits"]  # 64 inputs: minutes per synthesis
#: bump when the sampling code changes (the cached pool is keyed by it and the settings)
SAMPLE_VERSION = 2


# ----------------------------------------------------------------------------- the sample
def _proxy_features(mlp: MLP) -> np.ndarray:
    """Frozen proxy cost features for sampling: partial-product bits and accumulator bits."""
    pp = acc = 0
    for layer_ranges in analyze(mlp):
        for r in layer_ranges:
            if r.out_lo == r.out_hi:
                continue
            for p in r.pos + r.neg:
                kept = bin(p.mask & ((1 << p.operand_max.bit_length()) - 1)).count("1")
                pp += max(0, kept - p.trunc) * bin(abs(p.weight)).count("1")
            acc += r.acc_width
    return np.array([pp, acc], dtype=float)


#: name -> coefficients (intercept, pp, acc) of the proxy cost the sampling searches minimize
PROXIES = {"pp": (0.0, 1.0, 0.0), "pp+acc": (0.0, 1.0, 1.0)}


def _proxy_evaluator(X: np.ndarray, y: np.ndarray):
    samples = PopulationEvaluator(X)

    def evaluate(pop: Population):
        acc = (samples(pop) == y[None, :]).mean(axis=1)
        return acc, np.vstack([_proxy_features(pop.individual(i)) for i in range(pop.size)])

    return evaluate


@functools.lru_cache(maxsize=None)
def _seed_ir(name: str, hidden: tuple[int, ...], how: str):
    d = load_dataset(name)
    if how == "ptq":
        net = train_float(d.X_train, d.y_train, hidden, d.n_classes, epochs=150)
        q = InputQuantizer.fit(d.X_train, 4)
        X = q(d.X_train)
        return quantize_ptq(FloatMLP.from_state_dict(net.state_dict()), q, X), X, d.y_train
    from approxmlp.frontend import qat

    cfg = qat.TrainConfig(hidden=hidden, weights="pow2" if how == "qat-pow2" else "int", restarts=1,
                          epochs=60, float_epochs=60)
    res = qat.train(d, cfg, name=name)
    return res.ir, res.quantizer(d.X_train), d.y_train


def _spread(order: np.ndarray, k: int) -> list[int]:
    """``k`` indices evenly spread over ``order`` (ends included)."""
    if len(order) <= k:
        return list(order)
    return [int(order[int(round(t))]) for t in np.linspace(0, len(order) - 1, k)]


def sample_designs(seed: int = 0, log=print) -> list[MLP]:
    """The calibration pool (see the module docstring), deduplicated by IR digest."""
    rng = np.random.default_rng(seed)
    out: dict[str, MLP] = {}

    def add(m: MLP) -> None:
        out.setdefault(m.digest, m)

    for name, hidden, kinds, how in SEEDS:
        base, X, y = _seed_ir(name, hidden, how)
        for kind in kinds:
            tag = f"{name}{'-'.join(map(str, hidden))}_{how.replace('-', '')}_{kind}"
            allowed = allowed_weights(8, kind)
            pop = Population.from_mlp(base, 1 + len(MUTANT_STRENGTHS))
            for li in range(len(pop.weights)):
                pop.weights[li] = project_weights(pop.weights[li], allowed)
            cfg = SearchConfig(multipliers=kind)
            for i, s in enumerate(MUTANT_STRENGTHS, start=1):
                mutate_one(pop, i, cfg, rng, allowed, scale=s)
            for i in range(pop.size):
                add(pop.individual(i, name=f"{tag}_m{i}"))
            exact = pop.individual(0)
            evaluate = _proxy_evaluator(X, y)
            for proxy, coeff in PROXIES.items():
                cost = CostModel(target="proxy", area=coeff, power=(0.0,) * len(coeff))
                for loss in LOSSES:
                    # the proxy costs are not the cost model's features: no greedy or memetic
                    # steps, which price their cuts with the real model
                    cfg = SearchConfig(population=32, generations=30, multipliers=kind, max_loss=loss,
                                       seed=int(rng.integers(1 << 30)), greedy_steps=0, memetic_every=0)
                    front = run_search(exact, X, y, cost, cfg, evaluate=evaluate).front
                    for k in _spread(np.argsort(front.area, kind="stable"), PER_FRONT):
                        add(front.pop.individual(k, name=f"{tag}_{proxy.replace('+', '_')}_{round(100 * loss)}_{k}"))
            log(f"  {tag}: {len(out)} designs so far")
    return list(out.values())


# ----------------------------------------------------------------------------- synthesis
def _synth(args) -> tuple[float, float]:
    from approxmlp.backend.synth import synthesize

    text, target = args
    with tempfile.TemporaryDirectory() as d:
        rtl = Path(d) / "top.v"
        rtl.write_text(text)
        r = synthesize(rtl, "top", target, Path(d) / "work")
    area = r.area_um2 if r.area_um2 is not None else float(r.luts)
    power = r.static_power_mw if r.static_power_mw is not None else 0.0
    return area, power


def measure(designs: list[MLP], target: str, cache: Path, workers: int, log=print) -> np.ndarray:
    """``(n, 2)`` synthesized area (µm², or LUTs on an FPGA) and static power (mW)."""
    path = cache / f"synth-{target}.json"
    known = json.loads(path.read_text()) if path.is_file() else {}
    texts = {m.digest: emit_verilog(m) for m in designs}
    keys = {m.digest: design_key(m.digest, texts[m.digest]) for m in designs}
    todo = [m for m in designs if keys[m.digest] not in known]
    if todo:
        log(f"  {target}: synthesizing {len(todo)} designs ({len(designs) - len(todo)} cached)")
        with ProcessPoolExecutor(workers, initializer=os.nice, initargs=(5,)) as pool:  # yield to others
            jobs = [(texts[m.digest], target) for m in todo]
            for k, (m, res) in enumerate(zip(todo, pool.map(_synth, jobs))):
                known[keys[m.digest]] = list(res)
                if k % 10 == 9 or k == len(todo) - 1:  # checkpoint: an interrupted run keeps its work
                    if path.is_file():  # and so does another run writing the same cache
                        known = json.loads(path.read_text()) | known
                    path.write_text(json.dumps(known, indent=0) + "\n")
    return np.array([known[keys[m.digest]] for m in designs], dtype=float)


def design_key(digest: str, verilog: str, near: Path | None = None) -> str:
    """What a cached synthesis figure is filed under: the IR digest *and* the circuit the
    emitter wrote for it (the Verilog and its primitives, without comment lines). The same
    IR emitted by another emitter (shared subexpressions: 22-27 % smaller) is another
    circuit; keyed by the IR alone, its old figure would be taken for the new one."""
    code = "\n".join(line for line in bundle(verilog, near=near).splitlines() if not line.lstrip().startswith("//"))
    return f"{digest}:{hashlib.sha256(code.encode()).hexdigest()[:16]}"


# ----------------------------------------------------------------------------- evaluation
def split(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every other design by measured size: fit and held-out halves span the same range."""
    order = np.argsort(y, kind="stable")
    return np.sort(order[::2]), np.sort(order[1::2])


def errors(est: np.ndarray, y: np.ndarray) -> dict:
    """Spearman, median / 90th percentile / largest relative error, overall and on the
    smallest third (by measured value)."""
    rel = np.abs(est - y) / y
    small = np.argsort(y, kind="stable")[: max(2, len(y) // 3)]
    res = {}
    for key, idx in (("all", np.arange(len(y))), ("smallest_third", small)):
        r = rel[idx]
        res[key] = {"n": int(len(idx)), "spearman": float(spearmanr(est[idx], y[idx]).statistic),
                    "median_rel_error": float(np.median(r)), "p90_rel_error": float(np.percentile(r, 90)),
                    "max_rel_error": float(r.max())}
    return res


def _fmt(e: dict) -> str:
    return (f"rho {e['spearman']:.3f}  median {100 * e['median_rel_error']:5.1f} %  "
            f"p90 {100 * e['p90_rel_error']:5.1f} %  max {100 * e['max_rel_error']:5.1f} %")


def _pool(cache: Path, spec: tuple, make) -> list[MLP]:
    """A design list cached in ``cache/designs-<key of spec>.json``."""
    key = hashlib.sha256(repr(spec).encode()).hexdigest()[:12]
    path = cache / f"designs-{key}.json"
    if path.is_file():
        return [MLP.from_json(d) for d in json.loads(path.read_text())]
    designs = make()
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([m.to_json() for m in designs]) + "\n")
    return designs


def adaptive_round(designs: list[MLP], k: int, cache: Path, workers: int, seed: int, log=print) -> list[MLP]:
    """Fronts of searches that use the model fitted to ``designs`` (synthesized for
    :data:`ROUND_TARGET`): the designs that model would pick, new ones only."""
    measured = measure(designs, ROUND_TARGET, cache, workers, log)
    ok = measured[:, 0] > 0
    model = calibrate(ROUND_TARGET, np.vstack([features(m) for m, o in zip(designs, ok) if o]),
                      measured[ok, 0], measured[ok, 1])
    rng = np.random.default_rng([seed, k])
    have = {m.digest for m in designs}
    out: dict[str, MLP] = {}
    for name, hidden, kinds, how in ROUND_SEEDS:
        base, X, y = _seed_ir(name, hidden, how)
        for kind in kinds:
            allowed = allowed_weights(8, kind)
            exact = Population.from_mlp(base, 1)
            exact.weights = [project_weights(w, allowed) for w in exact.weights]
            tag = f"{name}{'-'.join(map(str, hidden))}_{how.replace('-', '')}_{kind}_r{k}"
            for loss in LOSSES:
                cfg = SearchConfig(population=32, generations=30, multipliers=kind, max_loss=loss,
                                   seed=int(rng.integers(1 << 30)))
                front = run_search(exact.individual(0), X, y, model, cfg).front
                for i in _spread(np.argsort(front.area, kind="stable"), ROUND_PER_FRONT):
                    m = front.pop.individual(i, name=f"{tag}_{round(100 * loss)}_{i}")
                    if m.digest not in have:
                        out.setdefault(m.digest, m)
    log(f"  round {k}: {len(out)} new designs from the fitted model's own fronts")
    return list(out.values())


def load_sample(cache: Path, seed: int, workers: int = 2, log=print) -> list[MLP]:
    """The pool (cached per settings): seeds, mutants and proxy fronts, then the designs of
    :data:`ROUNDS` adaptive rounds (which synthesize for :data:`ROUND_TARGET` as they go)."""
    spec = (SAMPLE_VERSION, SEEDS, LOSSES, PER_FRONT, MUTANT_STRENGTHS, PROXIES, seed)

    def base():
        log("sampling designs (seed models, mutants, proxy search fronts)")
        return sample_designs(seed, log)

    designs = _pool(cache, spec, base)
    for k in range(1, ROUNDS + 1):
        spec += (("round", k, ROUND_PER_FRONT, ROUND_TARGET, ROUND_SEEDS, FEATURES, FEATURES_VERSION, FIT_SCALE),)
        designs = designs + _pool(cache, spec, lambda: adaptive_round(designs, k, cache, workers, seed, log))
    return designs


def designs_under(folders: list[Path]) -> list[MLP]:
    """The designs of earlier `approxmlp explore` runs (``designs/*/ir.json`` below each
    folder, e.g. ``bench-out``): real search fronts, for validation only."""
    out: dict[str, MLP] = {}
    for folder in folders:
        for path in sorted(Path(folder).glob("**/designs/*/ir.json")):
            m = MLP.from_json(json.loads(path.read_text()))
            out.setdefault(m.digest, m)
    return list(out.values())


def prefill(folders: list[Path], target: str, cache: Path) -> int:
    """Copy the synthesized figures of explore runs below ``folders`` (their designs'
    ``report.json``, when made for ``target``) into the synthesis cache, filed under the
    circuit their ``rtl/top.v`` holds (:func:`design_key`: a run of an older emitter fills
    no entry of today's); returns how many."""
    path = cache / f"synth-{target}.json"
    known = json.loads(path.read_text()) if path.is_file() else {}
    added = 0
    for folder in folders:
        for rep in sorted(Path(folder).glob("**/designs/*/report.json")):
            r = json.loads(rep.read_text())
            rtl = rep.parent / "rtl" / "top.v"
            if r.get("target") != target or not rtl.is_file():
                continue
            key = design_key(r["ir_sha256"], rtl.read_text(), near=rtl.parent)
            area = r.get("area_um2") if r.get("area_um2") is not None else r.get("luts")
            if key in known or area is None:
                continue
            known[key] = [float(area), float(r.get("static_power_mw") or 0.0)]
            added += 1
    if added:
        cache.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(known, indent=0) + "\n")
    return added


def _report(results: dict, key: str, est: np.ndarray, measured: np.ndarray, label: str, log) -> None:
    """Errors of ``est`` (area, power) against ``measured`` into ``results[key]``, and log them."""
    ok = measured[:, 0] > 0  # a design synthesis folds to a constant has no relative error
    results[key] = {"designs": int(ok.sum()), "area": errors(est[0][ok], measured[ok, 0])}
    if (measured[ok, 1] > 0).all():
        results[key]["power"] = errors(est[1][ok], measured[ok, 1])
    for what in ("area", "power"):
        for part in ("all", "smallest_third"):
            if what in results[key]:
                e = results[key][what][part]
                log(f"{label:24s} {what:5s} {part:14s} (n={e['n']:3d})  {_fmt(e)}")


#: How many times each design of an explore run (``--extra``) counts in the fit: they are the
#: designs the search is used on. Measured on Pendigits 16-5-10 fronts (151 designs) beside the
#: pool (719): counted once, the fit leaves them 7.9 % low on average (median error 7.9 %;
#: comparator bits of a ten-class argmax cost more than the pool's two- and three-class trees
#: tell); four times, 3.7 % low (median 4.0 %) for a pool median of 10.0 % instead of 9.4 %.
EXTRA_WEIGHT = 4


def _weighted(rows: np.ndarray, heavy: np.ndarray, weight: int) -> np.ndarray:
    """``rows`` with those flagged in ``heavy`` repeated ``weight`` times in all."""
    return np.concatenate([rows] + [rows[heavy[rows]]] * (weight - 1))


def run(targets: list[str], n: int | None, write: bool, cache: Path = DEFAULT_CACHE, workers: int = 2,
        seed: int = 0, validate: list[Path] = (), extra: list[Path] = (), extra_weight: int = EXTRA_WEIGHT,
        log=print) -> dict:
    designs = load_sample(cache, seed, workers, log)
    if n is not None and n < len(designs):  # a deterministic, evenly spread subset
        designs = [designs[int(i)] for i in np.linspace(0, len(designs) - 1, n).round()]
    from_runs = np.zeros(len(designs), dtype=bool)
    if extra:
        have = {m.digest for m in designs}
        more = [m for m in designs_under(list(extra)) if m.digest not in have]
        for target in targets:
            prefill(list(extra), target, cache)
        log(f"  {len(more)} designs of explore runs join the sample (each counted {extra_weight} times)")
        designs = designs + more
        from_runs = np.concatenate([from_runs, np.ones(len(more), dtype=bool)])
    feats = np.vstack([features(m) for m in designs])
    others = designs_under(list(validate))
    results = {}
    coeffs = json.loads(COEFF_FILE.read_text()) if COEFF_FILE.is_file() else {}
    for target in targets:
        t0 = time.perf_counter()
        measured = measure(designs, target, cache, workers, log)
        ok = np.flatnonzero(measured[:, 0] > 0)
        fit_i, test_i = (ok[i] for i in split(measured[ok, 0]))
        rows = _weighted(fit_i, from_runs, extra_weight)
        model = calibrate(target, feats[rows], measured[rows, 0], measured[rows, 1])
        results[target] = {"designs": len(designs), "fitted_on": int(len(fit_i)),
                           "from_explore_runs": int(from_runs.sum()), "explore_run_weight": extra_weight}
        _report(results[target], "held_out", model.estimate(feats[test_i]), measured[test_i],
                f"{target} held-out", log)
        runs_i = test_i[from_runs[test_i]]
        if len(runs_i):
            _report(results[target], "held_out_explore_runs", model.estimate(feats[runs_i]), measured[runs_i],
                    f"{target} held-out runs", log)
        rows = _weighted(np.arange(len(designs)), from_runs, extra_weight)
        full = calibrate(target, feats[rows], measured[rows, 0], measured[rows, 1])
        if others:
            m_other = measure(others, target, cache, workers, log)
            _report(results[target], "explore_runs", full.estimate(np.vstack([features(m) for m in others])),
                    m_other, f"{target} explore runs", log)
        results[target]["seconds"] = round(time.perf_counter() - t0, 1)
        if write:
            coeffs[target] = full.to_json() | {"validation": results[target]}
    if write:
        COEFF_FILE.write_text(json.dumps(coeffs, indent=1) + "\n")
    return results


def _visited(folders: list[Path]) -> list[MLP]:
    """The archives (every non-dominated design a search kept) of the explore runs'
    checkpoints below ``folders``: what a search with today's cost model visits, the
    designs a fitted estimate is exploited on."""
    from approxmlp.search.checkpoint import read_archive

    out: dict[str, MLP] = {}
    bases: dict[Path, dict[str, MLP]] = {}  # per run folder: its designs by digest, read once
    for folder in folders:
        for ck in sorted(Path(folder).glob("**/checkpoint*.npz")):
            if ck.parent not in bases:
                bases[ck.parent] = {m.digest: m for m in designs_under([ck.parent])}
            archive = read_archive(ck, bases[ck.parent].get)
            if archive is None:
                continue
            for i in range(archive.pop.size):
                m = archive.pop.individual(i)
                out.setdefault(m.digest, m)
    return list(out.values())


def fit_sharing(folders: list[Path], log=print) -> dict:
    """Refit the curve of :mod:`approxmlp.cost.sharing` (``saved = A x / (1 + B x)``) to what
    the emitter's sharing plan (:func:`approxmlp.core.sharing.share_layer`) saves, on every
    layer of the designs of the explore runs below ``folders`` and of their checkpoints'
    archives (the designs the searches visited); no synthesis. Prints the fit next to the
    shipped constants."""
    from scipy.optimize import least_squares

    from approxmlp.core.sharing import share_layer
    from approxmlp.cost import sharing
    from approxmlp.cost.design import excess_ratios

    designs = {m.digest: m for m in designs_under(folders) + _visited(folders)}
    x, saved = [], []
    for m in designs.values():
        for ratio, layer in zip(excess_ratios(m), analyze(m)):
            before = share_layer(layer, share=False).additions
            if before:
                x.append(ratio)
                saved.append(1 - share_layer(layer).additions / before)
    x, saved = np.array(x), np.array(saved)
    if not len(x):
        raise SystemExit(f"no designs below {', '.join(map(str, folders))}")

    def fit(c):
        return c[0] * x / (1 + c[1] * x) - saved

    c = least_squares(fit, [sharing.A, sharing.B], bounds=([0, 0], [100, 100])).x
    res = {"designs": len(designs), "layers": len(x), "A": round(float(c[0]), 2), "B": round(float(c[1]), 2)}
    for label, (a, b) in (("fitted", c), ("shipped", (sharing.A, sharing.B))):
        err = a * x / (1 + b * x) - saved
        res[label] = {"rms": float(np.sqrt(np.mean(err ** 2))), "bias": float(err.mean()),
                      "corr": float(np.corrcoef(err + saved, saved)[0, 1])}
        log(f"{label:8s} A {a:.2f}  B {b:.2f}  on {len(x)} layers of {len(designs)} designs: residual RMS "
            f"{res[label]['rms']:.3f}, mean {res[label]['bias']:+.3f}, correlation {res[label]['corr']:.3f}")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", default="printed,printed-cnt,fpga-ice40")
    ap.add_argument("--designs", type=int, default=None, help="use an evenly spread subset of the pool")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="sample and synthesis results")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--validate", type=Path, nargs="*", default=[],
                    help="also report the error on the designs of earlier explore runs below these "
                         "folders (e.g. bench-out); they are never fitted")
    ap.add_argument("--extra", type=Path, nargs="*", default=[],
                    help="put the designs of explore runs below these folders into the sample (fitted "
                         "and held out like the rest): what the search finds on real workloads")
    ap.add_argument("--write", action="store_true", help="store the coefficients for the search")
    ap.add_argument("--sharing", type=Path, nargs="*", default=None,
                    help="only refit the sharing estimate (approxmlp/cost/sharing.py) to the sharing plan "
                         "on the designs of explore runs below these folders, and print it")
    a = ap.parse_args()
    if a.sharing is not None:
        fit_sharing(a.sharing or [REPO / "bench-out"])
        return
    run(a.targets.split(","), a.designs, a.write, a.cache, a.workers, validate=a.validate, extra=a.extra)


if __name__ == "__main__":
    main()
