"""The `explore` flow: genetic approximation search, then every front point made real.

1. load the model (a QAT integer model as is, a float model through PTQ) and the data;
2. run the NSGA-II search (:mod:`approxmlp.search.nsga2`) on the training data with the
   calibrated cost model, checkpointing into the output folder;
3. emit every Pareto point *and* the exact baseline, verify them all in one Verilator
   build on every test vector, synthesize each for the target;
4. write ``pareto.json``, ``pareto.png`` and ``report.md`` naming, per accuracy-loss budget,
   the smallest verified design and its reduction against the exact baseline.

Each design gets its own folder ``designs/<id>/`` laid out like `compile`'s output, so
``approxmlp verify`` and ``approxmlp inspect`` work on it.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..pipeline.compiler import CompileOptions, _json_default, check_options, load_model_ir, write_vectors
from ..backend.verilog import class_width, emit_verilog
from ..errors import ApproxMLPError
from ..core.golden import evaluate
from ..core.ir import MLP

BUDGETS = (0.01, 0.02, 0.05)


@dataclass(frozen=True)
class ExploreOptions:
    target: str = "printed"
    population: int = 96
    generations: int = 300
    multipliers: str = "pow2"
    max_loss: float = 0.05
    max_power_mw: float | None = None
    seed: int = 0
    workers: int = 1
    scheduler: str | None = None
    resume: bool = False
    input_bits: int = 4
    weight_bits: int = 8
    act_bits: int = 8
    label: str | None = None
    #: Models whose weights seed the search (e.g. `train --weights pow2` models), one search
    #: each, fronts combined; the exact baseline and the loss budget stay those of the main
    #: model. A single path is accepted. None or empty: the main model.
    seed_model: Path | tuple[Path, ...] | None = None
    #: Most front points made real (emitted, verified, synthesized): spread along the front.
    max_designs: int = 20

    @property
    def seed_models(self) -> tuple[Path, ...]:
        if self.seed_model is None:
            return ()
        if isinstance(self.seed_model, (str, Path)):
            return (Path(self.seed_model),)
        return tuple(Path(p) for p in self.seed_model)


def _mapper(opts: ExploreOptions):
    """``map`` for population chunks: in-process, a local process pool, or a Dask cluster."""
    if opts.scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise ApproxMLPError("--scheduler needs Dask: pip install 'dask[distributed]'") from None
        try:
            client = Client(opts.scheduler, timeout=10)
        except OSError as exc:
            raise ApproxMLPError(f"cannot reach the Dask scheduler at {opts.scheduler} ({exc}); "
                                 "check the address or drop --scheduler") from None

        def dask_map(fn, items):
            return client.gather(client.map(fn, items, pure=False))

        return dask_map, client.close
    if opts.workers > 1:
        pool = ProcessPoolExecutor(max_workers=opts.workers)
        return pool.map, pool.shutdown
    return map, lambda: None


def run_explore(model_path: Path, data_spec: str, out: Path, opts: ExploreOptions, progress=lambda _: None) -> dict:
    from ..backend.cost import load_model as load_cost
    from ..frontend.data import load_dataset
    from ..search.config import SearchConfig
    from ..search.front import combine
    from ..search.nsga2 import make_evaluator, run_search

    copts = CompileOptions(target=opts.target, input_bits=opts.input_bits, weight_bits=opts.weight_bits,
                           act_bits=opts.act_bits, label=opts.label, seed=opts.seed)
    check_options(copts)
    if not 0 <= opts.max_loss < 1:
        raise ApproxMLPError(f"--max-loss must be in 0..1 (a fraction: 0.05 is 5 points), not {opts.max_loss}")
    if opts.population < 4 or opts.generations < 1 or opts.max_designs < 1:
        raise ApproxMLPError("--population must be >= 4, --generations >= 1 and --max-designs >= 1")
    cost = load_cost(opts.target)
    if cost is None:
        raise ApproxMLPError(f"no calibrated cost model for target {opts.target}; "
                             "run `python -m flows.bench.calibrate_cost` to make one")
    progress(f"loading data {data_spec}")
    data = load_dataset(data_spec, label=opts.label, seed=opts.seed)
    ir, quantizer, float_acc, copts = load_model_ir(Path(model_path), data, copts, progress)
    Xtr, Xte = quantizer(data.X_train), quantizer(data.X_test)
    seeds = _seed_irs(opts, ir, quantizer, data, copts, progress)
    reference = float(np.mean(evaluate(ir, Xtr).classes == data.y_train))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = SearchConfig(population=opts.population, generations=opts.generations, multipliers=opts.multipliers,
                       weight_bits=max(2, copts.weight_bits), max_loss=opts.max_loss,
                       max_power_mw=opts.max_power_mw, seed=opts.seed)
    mapper, close = _mapper(opts)
    t0 = time.perf_counter()
    results = []
    try:
        evaluator = make_evaluator(Xtr, data.y_train, cost, mapper)
        for k, (label, seed_ir) in enumerate(seeds):
            progress(f"searching from {label}: NSGA-II, {cfg.population} x {cfg.generations} generations, "
                     f"{cfg.multipliers} multipliers")
            # one search per seed model (their IRs differ in activation widths and scales,
            # so they cannot share a population); each checkpoints on its own
            ckpt = out / ("checkpoint.npz" if k == 0 else f"checkpoint-{k}.npz")
            results.append(run_search(seed_ir, Xtr, data.y_train, cost, cfg, evaluate=evaluator,
                                      checkpoint=ckpt, resume=opts.resume, reference_accuracy=reference))
    finally:
        close()
    t_search = time.perf_counter() - t0
    front = combine([r.front for r in results], opts.max_designs)
    candidates = [("exact", ir)] + [(f"p{k:02d}", front.design(k, name=f"{ir.name}_p{k:02d}"))
                                    for k in range(front.size)]
    for k, (label, seed_ir) in enumerate(seeds):
        if seed_ir is not ir:  # the seed models as trained, for comparison
            candidates.append(("seed" if k == 0 else f"seed{k}", seed_ir))
    designs = _realize(candidates, data, quantizer, Xtr, Xte, out, copts, progress)
    summary = _summarize(designs, float_acc, results, front, opts, t_search, data, [lbl for lbl, _ in seeds])
    (out / "pareto.json").write_text(json.dumps(summary, indent=1, default=_json_default) + "\n")
    _plot(summary, out / "pareto.png")
    (out / "report.md").write_text(_markdown(summary))
    return summary


def _seed_irs(opts: ExploreOptions, ir: MLP, quantizer, data, copts: CompileOptions, progress) -> list[tuple[str, MLP]]:
    """The IRs that seed the searches, with a label: each ``opts.seed_models``' (which must
    read the same inputs as the main model: same topology, same input quantizer), or the
    main model's own."""
    if not opts.seed_models:
        return [("the model", ir)]
    seeds = []
    for path in opts.seed_models:
        seed_ir, seed_q, _, _ = load_model_ir(Path(path), data, copts, progress)
        if seed_ir.topology_str != ir.topology_str:
            raise ApproxMLPError(f"--seed-model {path} is {seed_ir.topology_str} but --model is "
                                 f"{ir.topology_str}; train the seed with the same --hidden sizes")
        if seed_q.to_json() != quantizer.to_json():
            raise ApproxMLPError(f"--seed-model {path} quantizes the inputs differently from --model; "
                                 "train both on the same data with the same --input-bits and --input-range")
        seeds.append((Path(path).name, seed_ir))
    return seeds


def _realize(candidates: list[tuple[str, MLP]], data, quantizer, Xtr, Xte, out: Path, opts: CompileOptions,
             progress) -> list[dict]:
    """Emit, verify (one build for all) and synthesize every candidate into designs/<id>/."""
    from ..pipeline.compiler import run_synthesis
    from ..backend.simulate import SimDesign, lint, simulate

    rows = []
    sims = []
    for ident, mlp in candidates:
        folder = out / "designs" / ident
        (folder / "rtl").mkdir(parents=True, exist_ok=True)
        rtl = folder / "rtl" / "top.v"
        rtl.write_text(emit_verilog(mlp, module="top"))
        (folder / "ir.json").write_text(mlp.dumps() + "\n")
        (folder / "quantizer.json").write_text(json.dumps(quantizer.to_json(), indent=1) + "\n")
        golden = evaluate(mlp, Xte).classes
        write_vectors(folder / "vectors", Xte, golden, data.y_test)
        rows.append({"id": ident, "ir": mlp, "rtl": rtl, "golden": golden,
                     "test_accuracy": float(np.mean(golden == data.y_test)),
                     "train_accuracy": float(np.mean(evaluate(mlp, Xtr).classes == data.y_train)),
                     "lint_warnings": len(lint(rtl, "top"))})
        sims.append(SimDesign(module=f"{ident}_top", verilog=emit_verilog(mlp, module=f"{ident}_top"), inputs=Xte,
                              expected=golden, input_bits=mlp.input_bits, out_width=class_width(mlp.n_classes)))
    progress(f"verifying {len(sims)} designs on {len(Xte)} vectors each")
    with tempfile.TemporaryDirectory(prefix="approxmlp-explore-sim-") as build:
        results = simulate(sims, Path(build), progress=progress)
    for row, res in zip(rows, results):
        row["verification"] = {"vectors": res.vectors, "mismatches": len(res.mismatches),
                               "passed": res.ok and row["lint_warnings"] == 0}
        row["rtl_accuracy"] = float(np.mean(res.rtl == data.y_test))
    progress(f"synthesizing {len(rows)} designs for {opts.target}")

    def synth(row: dict) -> dict:
        return run_synthesis(row["rtl"], opts, out / "designs" / row["id"] / "logs")

    # each Yosys run is a process of its own: run as many at once as there are cores
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        syntheses = list(pool.map(synth, rows))
    for row, syn in zip(rows, syntheses):
        row["synthesis"] = syn
        report = {"id": row["id"], "target": opts.target, "ir_sha256": row["ir"].digest,
                  "accuracy": {"golden": row["test_accuracy"], "rtl": row["rtl_accuracy"],
                               "golden_train": row["train_accuracy"]},
                  "verification": row["verification"], **syn}
        (out / "designs" / row["id"] / "report.json").write_text(json.dumps(report, indent=1, default=_json_default) + "\n")
    return rows


def _metric(row: dict) -> tuple[str, float | None]:
    syn = row["synthesis"]
    if syn.get("area_cm2") is not None:
        return "area_cm2", syn["area_cm2"]
    return "luts", syn.get("luts")


def smallest_within(points: list[dict], min_accuracy: float, cost, verified) -> dict | None:
    """The cheapest verified point whose test accuracy is at least ``min_accuracy`` (ties:
    the more accurate), or None: the pick behind every per-budget line, here and in the bench."""
    ok = [p for p in points if verified(p) and cost(p) is not None and p["test_accuracy"] >= min_accuracy - 1e-12]
    return min(ok, key=lambda p: (cost(p), -p["test_accuracy"]), default=None)


def _summarize(rows: list[dict], float_acc, results, front, opts: ExploreOptions, t_search: float, data,
               seed_labels: list[str]) -> dict:
    """``results``: one search result per seed model; ``front``: the points made real (the
    searches' fronts combined and thinned to --max-designs), in the order of ``rows[1:]``."""
    base = rows[0]
    points = []
    for row in rows:
        syn = row["synthesis"]
        points.append({"id": row["id"], "test_accuracy": row["test_accuracy"], "train_accuracy": row["train_accuracy"],
                       "rtl_accuracy": row["rtl_accuracy"], "estimated_area_um2": None,
                       "area_cm2": syn.get("area_cm2"), "power_mw": syn.get("power_mw"),
                       "luts": syn.get("luts"), "cells": syn.get("cell_count"),
                       "rtl": str(Path("designs") / row["id"] / "rtl" / "top.v"),
                       "verification": row["verification"], "ir_sha256": row["ir"].digest,
                       "exact": row["id"] == "exact"})
    for k in range(front.size):
        points[k + 1]["estimated_area_um2"] = float(front.area[k])
        points[k + 1]["estimated_power_mw"] = float(front.power[k])
    metric, base_cost = _metric(base)
    budgets = []
    for b in BUDGETS:
        best = smallest_within(points, base["test_accuracy"] - b, lambda p: p[metric],
                               lambda p: p["verification"]["passed"])
        entry = {"max_loss": b, "design": best["id"] if best else None}
        if best:
            entry.update({"test_accuracy": best["test_accuracy"], metric: best[metric], "power_mw": best["power_mw"],
                          "area_reduction": (base_cost / best[metric]) if best[metric] else None,
                          "power_reduction": (base["synthesis"]["power_mw"] / best["power_mw"])
                          if best.get("power_mw") else None})
        budgets.append(entry)
    return {"approxmlp_version": __version__, "target": opts.target, "data": data.name,
            "metric": metric, "baseline": points[0], "float_accuracy": float_acc,
            "search": {"population": opts.population, "generations": opts.generations,
                       "multipliers": opts.multipliers, "max_loss": opts.max_loss,
                       "max_power_mw": opts.max_power_mw, "seed": opts.seed,
                       "evaluations": sum(r.evaluations for r in results),
                       "seed_model": str(opts.seed_models[0]) if opts.seed_models else None,
                       "seed_models": [str(p) for p in opts.seed_models],
                       "reference_train_accuracy": results[0].seed_accuracy, "seconds": round(t_search, 2),
                       "front_designs": front.non_dominated, "realized_designs": front.size,
                       "searches": [{"seed": label, "evaluations": r.evaluations, "front_designs": r.front.pop.size}
                                    for label, r in zip(seed_labels, results)],
                       "history": results[0].history},
            "points": points, "budgets": budgets}


def _plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = summary["metric"]
    pts = [p for p in summary["points"] if p[metric] is not None]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    approx = [p for p in pts if not p["exact"]]
    # Points are non-dominated on *training* accuracy and estimated area; on test accuracy
    # and synthesized area they need not line up, so they are drawn unconnected.
    ax.plot([p[metric] for p in approx], [p["test_accuracy"] for p in approx], "o", label="approximate (verified)")
    b = summary["baseline"]
    ax.plot([b[metric]], [b["test_accuracy"]], "r*", markersize=14, label="exact baseline")
    ax.set_xscale("log")
    ax.set_xlabel("area (cm²)" if metric == "area_cm2" else "LUTs")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{summary['data']} on {summary['target']}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def fmt(value, digits: int = 4) -> str:
    """Areas and powers for people: fixed decimals; LUT counts as integers; None as a dash."""
    if value is None:
        return "—"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def _markdown(s: dict) -> str:
    metric = s["metric"]
    unit = "cm²" if metric == "area_cm2" else "LUTs"
    b = s["baseline"]
    lines = [f"# approxmlp explore: {s['data']} on {s['target']}", "",
             f"Exact baseline: accuracy {b['test_accuracy']:.4f}, {fmt(b[metric])} {unit}, "
             f"power {fmt(b['power_mw'], 3)} mW.", "",
             "| loss budget | design | test accuracy | " + unit + " | power (mW) | area reduction | power reduction |",
             "|---|---|---|---|---|---|---|"]
    for e in s["budgets"]:
        if e["design"] is None:
            lines.append(f"| {e['max_loss']:.0%} | none | | | | | |")
            continue
        pr = f"{e['power_reduction']:.2f}x" if e.get("power_reduction") else "—"
        lines.append(f"| {e['max_loss']:.0%} | {e['design']} | {e['test_accuracy']:.4f} | {fmt(e[metric])} | "
                     f"{fmt(e['power_mw'], 3)} | {e['area_reduction']:.2f}x | {pr} |")
    lines += ["", "## Front", "", "| id | test acc | train acc | " + unit + " | power (mW) | verified |", "|---|---|---|---|---|---|"]
    for p in s["points"]:
        v = p["verification"]
        lines.append(f"| {p['id']} | {p['test_accuracy']:.4f} | {p['train_accuracy']:.4f} | {fmt(p[metric])} | "
                     f"{fmt(p['power_mw'], 3)} | {v['vectors'] - v['mismatches']}/{v['vectors']} |")
    lines += ["", "![Pareto front](pareto.png)", ""]
    return "\n".join(lines)
