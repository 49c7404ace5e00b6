"""Calibrate the search's cost model against real synthesis, and report its error.

    python -m flows.bench.calibrate_cost [--targets printed,printed-cnt,fpga-ice40] [--designs 48]

Samples approximate designs the way the search produces them (seed models for several
data sets, mutated with increasing strength), synthesizes each with Yosys, fits the
non-negative linear model of :mod:`approxmlp.cost` on half of them and reports, on the
other half, the Spearman rank correlation and the median relative error of the estimate.
With ``--write`` it stores the fitted coefficients (fitted on all samples) in
``approxmlp/cost_coefficients.json``, the file the search loads.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from approxmlp.approx import Population, allowed_weights, project_weights
from approxmlp.cost import COEFF_FILE, calibrate, features
from approxmlp.data import InputQuantizer, load_dataset
from approxmlp.emit import emit_verilog
from approxmlp.floatnet import train_float
from approxmlp.quantize import FloatMLP, quantize_ptq
from approxmlp.search import SearchConfig, mutate_one

SEEDS = [("wine", (4,)), ("breast_cancer", (3,)), ("iris", (3,)), ("digits", (5,))]


def sample_designs(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = []
    per = max(1, n // len(SEEDS))
    for name, hidden in SEEDS:
        d = load_dataset(name)
        net = train_float(d.X_train, d.y_train, hidden, d.n_classes, epochs=150)
        q = InputQuantizer.fit(d.X_train, 4)
        ir = quantize_ptq(FloatMLP.from_state_dict(net.state_dict()), q, q(d.X_train))
        for kind in ("int", "pow2"):
            cfg = SearchConfig(multipliers=kind)
            allowed = allowed_weights(8, kind)
            pop = Population.from_mlp(ir, per)
            for li in range(len(pop.weights)):
                pop.weights[li] = project_weights(pop.weights[li], allowed)
            for i in range(1, per):
                mutate_one(pop, i, cfg, rng, allowed, scale=float(rng.uniform(0, 12)))
            out += [pop.individual(i, name=f"{name}_{kind}_{i}") for i in range(0, per, 2)]
    return out[:n]


def _synth(args):
    from approxmlp.synth import synthesize

    mlp, target = args
    with tempfile.TemporaryDirectory() as d:
        rtl = Path(d) / "top.v"
        rtl.write_text(emit_verilog(mlp))
        r = synthesize(rtl, "top", target, Path(d) / "work")
    area = r.area_um2 if r.area_um2 is not None else float(r.luts)
    power = r.static_power_mw if r.static_power_mw is not None else 0.0
    return area, power


def run(targets: list[str], n: int, write: bool, workers: int = 2) -> dict:
    designs = sample_designs(n)
    feats = [features(m) for m in designs]
    results = {}
    coeffs = json.loads(COEFF_FILE.read_text()) if COEFF_FILE.is_file() else {}
    for target in targets:
        t0 = time.perf_counter()
        with ProcessPoolExecutor(workers) as pool:
            measured = list(pool.map(_synth, [(m, target) for m in designs]))
        areas = np.array([a for a, _ in measured])
        powers = np.array([p for _, p in measured])
        idx = np.arange(len(designs))
        fit_i, test_i = idx[::2], idx[1::2]
        model = calibrate(target, [feats[i] for i in fit_i], areas[fit_i], powers[fit_i])
        est = model.estimate(np.vstack([feats[i] for i in test_i]))[0]
        rel = np.abs(est - areas[test_i]) / areas[test_i]
        rho = spearmanr(est, areas[test_i]).statistic
        results[target] = {"designs": len(designs), "held_out": len(test_i), "spearman": float(rho),
                           "median_rel_error": float(np.median(rel)), "max_rel_error": float(rel.max()),
                           "seconds": round(time.perf_counter() - t0, 1)}
        print(f"{target:12s} rank correlation {rho:.3f}  median error {100 * np.median(rel):.1f} %  "
              f"max {100 * rel.max():.1f} %  ({len(test_i)} held-out designs, {results[target]['seconds']} s)",
              flush=True)
        if write:
            full = calibrate(target, feats, areas, powers)
            coeffs[target] = full.to_json() | {"validation": results[target]}
    if write:
        COEFF_FILE.write_text(json.dumps(coeffs, indent=1) + "\n")
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", default="printed,printed-cnt,fpga-ice40,fpga-xc7")
    ap.add_argument("--designs", type=int, default=48)
    ap.add_argument("--write", action="store_true", help="store the coefficients for the search")
    a = ap.parse_args()
    run(a.targets.split(","), a.designs, a.write)


if __name__ == "__main__":
    main()
