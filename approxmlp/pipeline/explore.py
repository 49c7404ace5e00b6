"""The `explore` flow: genetic approximation search, then every front point made real.

1. load the model (a QAT integer model as is, a float model through PTQ) and the data, and
   cut the training data in two: a *fit* part and a *validation* part (the data set's own
   ``X_val.npy`` pair, or a stratified, seeded ``--val-fraction`` of the training split,
   the same one ``approxmlp train`` early-stops on);
2. run the NSGA-II search (:mod:`approxmlp.search.nsga2`) with fitness on the fit part only
   and the calibrated cost model, checkpointing into the output folder;
3. score the searches' fronts on the validation part: the front that is made real, its
   thinning to ``--max-designs``, every per-budget pick and the power-budget pick use
   validation accuracy, and a loss budget is measured against the exact baseline's
   validation accuracy;
4. emit every chosen point *and* the exact baseline, verify them all in one Verilator
   build on every test vector, synthesize each for the target;
5. write ``pareto.json``, ``pareto.png`` and ``report.md``: per point the fit ("train"),
   validation and test accuracy, per budget the smallest verified design that the
   validation accuracy qualifies, with its test accuracy beside it.

The test split is scored once per realized design and reported, never used to choose:
a figure picked on the data it is reported on would be optimistic.

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
from ..backend.verilog import class_width, emit_verilog
from ..core.golden import evaluate
from ..core.ir import MLP
from ..errors import ApproxMLPError
from ..progress import task
from ..stats import REPORT_LEVEL, accuracy_interval, paired_loss
from .compiler import (CompileOptions, Staging, _json_default, check_options, check_out, file_hashes,
                       load_model_ir, make_folder, write_vectors)
from .select import CONFIDENCE, Rule, most_accurate_within_power, smallest_within, validated_front

BUDGETS = (0.01, 0.02, 0.05)


@dataclass(frozen=True)
class ExploreOptions:
    target: str = "printed"
    population: int = 96
    generations: int = 300
    multipliers: str = "csd2"
    max_loss: float = 0.05
    max_power_mw: float | None = None
    seed: int = 0
    workers: int = 1
    scheduler: str | None = None
    resume: bool = False
    #: None: the model's own widths (an integer model), else the compile defaults.
    input_bits: int | None = None
    weight_bits: int | None = None
    act_bits: int | None = None
    label: str | None = None
    #: Models whose weights seed the search (e.g. `train --weights pow2` models), one search
    #: each, fronts combined; the exact baseline and the loss budget stay those of the main
    #: model. A single path is accepted. None or empty: the main model.
    seed_model: Path | tuple[Path, ...] | None = None
    #: Most front points made real (emitted, verified, synthesized): spread along the front.
    max_designs: int = 20
    #: Part of the training split held out for validation, when the data set has no
    #: validation split of its own (every pick is made on it).
    val_fraction: float = 0.2
    #: One-sided confidence that a pick's loss on unseen data is within its budget: a pick's
    #: paired loss against the exact design on the validation part, upper bound at this
    #: level (0: the point estimate).
    confidence: float = CONFIDENCE
    #: Re-quantize a QONNX model the IR cannot express exactly instead of refusing it.
    requantize: bool = False
    #: Prove every realized design (RTL = reference, netlist = RTL) where that is quick.
    formal: bool = True

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


#: Files only explore writes into its folder: one of them makes a folder its own (to
#: resume or re-run into); any other non-empty folder is refused.
EXPLORE_MARKS = ("checkpoint.npz", "pareto.json")


def run_explore(model_path: Path, data_spec: str, out: Path, opts: ExploreOptions, progress=lambda _: None) -> dict:
    """The whole `approxmlp explore` (see the module docstring); returns the summary also
    written to ``out/pareto.json``. Everything that can be refused is refused before the
    search (options, the folder, the tools); a folder this run created is removed again if
    it fails before writing anything in it."""
    from ..backend.tools import check_tools

    copts = CompileOptions(target=opts.target, input_bits=opts.input_bits, weight_bits=opts.weight_bits,
                           act_bits=opts.act_bits, label=opts.label, seed=opts.seed, requantize=opts.requantize)
    check_options(copts)
    if not 0 <= opts.max_loss < 1:
        raise ApproxMLPError(f"--max-loss must be in 0..1 (a fraction: 0.05 is 5 points), not {opts.max_loss}")
    if isinstance(opts.confidence, bool) or not 0 <= opts.confidence < 1:
        raise ApproxMLPError(f"--confidence must be in 0..1 (0.9: the loss bound holds with 90 % confidence; "
                             f"0: pick on the point estimate), not {opts.confidence}")
    if opts.population < 4 or opts.generations < 1 or opts.max_designs < 1:
        raise ApproxMLPError("--population must be >= 4, --generations >= 1 and --max-designs >= 1")
    if opts.max_power_mw is not None and not opts.max_power_mw > 0:
        raise ApproxMLPError(f"--max-power-mw must be a positive power budget in mW, not {opts.max_power_mw}; "
                             "give one such as --max-power-mw 3, or drop it")
    out = check_out(out, EXPLORE_MARKS)
    if opts.resume and not (out / "checkpoint.npz").is_file():
        raise ApproxMLPError(f"--resume: {out / 'checkpoint.npz'} not found, there is no search to resume; "
                             "run without --resume to start afresh")
    check_tools(verilator=True, yosys=True)
    created = not out.exists()
    try:
        return _explore(model_path, data_spec, out, opts, copts, progress)
    except BaseException:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise


def _explore(model_path: Path, data_spec: str, out: Path, opts: ExploreOptions, copts: CompileOptions,
             progress) -> dict:
    from ..cost.model import load_model as load_cost
    from ..frontend.data import load_dataset
    from ..search.config import SearchConfig
    from ..search.nsga2 import make_evaluator, run_search

    cost = load_cost(opts.target)
    if cost is None:
        raise ApproxMLPError(f"no calibrated cost model for target {opts.target}; "
                             "run `python -m flows.bench.calibrate_cost` to make one")
    progress(f"loading data {data_spec}")
    data = load_dataset(data_spec, label=opts.label, seed=opts.seed)
    split = data.validation_split(opts.val_fraction, opts.seed)
    ir, quantizer, float_acc, used = load_model_ir(Path(model_path), data, copts, progress)
    parts = Parts(fit=(quantizer(split.X_fit), split.y_fit), val=(quantizer(split.X_val), split.y_val),
                  test=(quantizer(data.X_test), data.y_test), validation=split.source)
    seeds = _seed_irs(opts, ir, quantizer, data, copts, progress)  # each integer seed keeps its own widths
    copts = used
    reference = parts.accuracy(ir, "fit")
    make_folder(out)
    cfg = SearchConfig(population=opts.population, generations=opts.generations, multipliers=opts.multipliers,
                       weight_bits=max(2, copts.weight_bits), max_loss=opts.max_loss,
                       max_power_mw=opts.max_power_mw, seed=opts.seed)
    mapper, close = _mapper(opts)
    t0 = time.perf_counter()
    results = []
    try:
        evaluator = make_evaluator(*parts.fit, cost, mapper)
        for k, (label, seed_ir) in enumerate(seeds):
            progress(f"searching from {label}: NSGA-II, {cfg.population} x {cfg.generations} generations, "
                     f"{cfg.multipliers} multipliers")
            # one search per seed model (their IRs differ in activation widths and scales,
            # so they cannot share a population); each checkpoints on its own
            ckpt = out / ("checkpoint.npz" if k == 0 else f"checkpoint-{k}.npz")
            with task(progress, "generations", cfg.generations, best_within_budget="—") as bar:
                results.append(run_search(seed_ir, *parts.fit, cost, cfg, evaluate=evaluator,
                                          checkpoint=ckpt, resume=opts.resume, reference_accuracy=reference,
                                          progress=_search_bar(bar, opts.target)))
    finally:
        close()
    t_search = time.perf_counter() - t0
    rule = Rule(opts.confidence)
    progress(f"re-scoring the candidates on {len(parts.val[1])} validation samples")
    front = validated_front([_candidates(r) for r in results], *parts.val, parts.correct(ir, "val"), rule,
                            max_loss=cfg.max_loss, max_power_mw=cfg.max_power_mw, budgets=BUDGETS, k=opts.max_designs)
    candidates = [("exact", ir)] + [(f"p{k:02d}", front.design(k, name=f"{ir.name}_p{k:02d}"))
                                    for k in range(front.size)]
    for k, (label, seed_ir) in enumerate(seeds):
        if seed_ir is not ir:  # the seed models as trained, for comparison
            candidates.append(("seed" if k == 0 else f"seed{k}", seed_ir))
    designs = _realize(candidates, data, quantizer, parts, out, copts, progress, formal=opts.formal)
    summary = _summarize(designs, float_acc, results, front, opts, t_search, data, parts, [lbl for lbl, _ in seeds], rule)
    (out / "pareto.json").write_text(json.dumps(summary, indent=1, default=_json_default) + "\n")
    _plot(summary, out / "pareto.png")
    (out / "report.md").write_text(_markdown(summary))
    return summary


def _search_bar(bar, target: str):
    """The search's per-generation callback: one step of ``bar`` and the smallest estimated
    area within the budget found so far."""
    best = [None]

    def step(gen: int, log: dict) -> None:
        a = log.get("min_area")
        if a is not None and (best[0] is None or a < best[0]):
            best[0] = a
        shown = "—" if best[0] is None else (f"{best[0] / 1e8:.3g} cm² (est.)" if target.startswith("printed")
                                             else f"{best[0]:.0f} LUTs (est.)")
        bar.advance(1, best_within_budget=shown)

    return step


@dataclass(frozen=True, eq=False)
class Parts:
    """The three disjoint parts of the data as hardware integers and labels: ``fit`` (the
    search's fitness), ``val`` (every choice) and ``test`` (reported only)."""

    fit: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    validation: str  # where the validation part comes from, for the report

    def correct(self, mlp: MLP, part: str) -> np.ndarray:
        """Per sample of ``part``: is ``mlp``'s class the label?"""
        X, y = getattr(self, part)
        return evaluate(mlp, X).classes == y

    def accuracy(self, mlp: MLP, part: str) -> float:
        return float(np.mean(self.correct(mlp, part)))


def _candidates(result):
    """What a search offers for validation: its front, and its greedy descent's states
    (``SearchResult.descent``: the designs between the seed and the front that the fit
    part cannot tell apart once it is fitted perfectly)."""
    from ..search.front import merge

    return result.front if result.descent is None else merge(result.front, result.descent)


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


def _realize(candidates: list[tuple[str, MLP]], data, quantizer, parts: Parts, out: Path, opts: CompileOptions,
             progress, *, formal: bool = True) -> list[dict]:
    """Emit, verify (one build for all), synthesize and prove every candidate into designs/<id>/.

    The designs are made in a staging folder beside ``designs/``, which replaces it only
    once every one of them is complete: a failed or interrupted run leaves no half-made
    design folder (an earlier run's stays whole)."""
    with Staging(out / "designs", marks=("exact",)) as stage:
        rows = _realize_in(candidates, data, quantizer, parts, stage.path, opts, progress, formal)
        stage.commit()
    return rows


def _realize_in(candidates: list[tuple[str, MLP]], data, quantizer, parts: Parts, designs: Path,
                opts: CompileOptions, progress, formal: bool) -> list[dict]:
    from .compiler import run_formal, run_synthesis, with_extra_vectors
    from ..backend.simulate import SimDesign, lint, simulate

    rows = []
    sims = []
    Xte = parts.test[0]
    progress(f"emitting and linting {len(candidates)} designs")
    with task(progress, "designs", len(candidates)) as bar:
        for ident, mlp in candidates:
            folder = designs / ident
            (folder / "rtl").mkdir(parents=True, exist_ok=True)
            rtl = folder / "rtl" / "top.v"
            rtl.write_text(emit_verilog(mlp, module="top"))
            (folder / "ir.json").write_text(mlp.dumps() + "\n")
            (folder / "quantizer.json").write_text(json.dumps(quantizer.to_json(), indent=1) + "\n")
            golden = evaluate(mlp, Xte).classes
            write_vectors(folder / "vectors", Xte, golden, data.y_test)
            val_correct, test_correct = parts.correct(mlp, "val"), golden == data.y_test
            rows.append({"id": ident, "ir": mlp, "rtl": rtl, "golden": golden,
                         "train_accuracy": parts.accuracy(mlp, "fit"),
                         "val_correct": val_correct, "test_correct": test_correct,
                         "validation_accuracy": float(val_correct.mean()),
                         "test_accuracy": float(test_correct.mean()),  # reported, never chosen on
                         "lint_warnings": len(lint(rtl, "top"))})
            X, y, rows[-1]["vectors_by_kind"] = with_extra_vectors(mlp, Xte, golden)
            sims.append(SimDesign(module=f"{ident}_top", verilog=emit_verilog(mlp, module=f"{ident}_top"), inputs=X,
                                  expected=y, input_bits=mlp.input_bits, out_width=class_width(mlp.n_classes)))
            bar.advance(1)
    progress(f"verifying {len(sims)} designs on {len(Xte)} vectors each")
    with tempfile.TemporaryDirectory(prefix="approxmlp-explore-sim-") as build:
        results = simulate(sims, Path(build), progress=progress)
    for row, res in zip(rows, results):
        row["verification"] = {"vectors": res.vectors, "vectors_by_kind": row["vectors_by_kind"],
                               "mismatches": len(res.mismatches), "passed": res.ok and row["lint_warnings"] == 0}
        row["rtl_accuracy"] = float(np.mean(res.rtl[:len(Xte)] == data.y_test))
    progress(f"synthesizing {len(rows)} designs for {opts.target}")

    with task(progress, "synthesized", len(rows)) as bar:
        def synth(row: dict) -> dict:
            res = run_synthesis(row["rtl"], opts, designs / row["id"] / "logs")
            bar.advance(1)
            return res

        # each Yosys run is a process of its own: run as many at once as there are cores
        with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
            syntheses = list(pool.map(synth, rows))
    for row, syn in zip(rows, syntheses):
        row["synthesis"] = syn
    if formal:
        progress(f"proving {len(rows)} designs: RTL = reference, netlist = RTL (Yosys SAT)")
        with task(progress, "proven", len(rows)) as bar:
            def prove(row: dict) -> dict:
                res = run_formal(row["ir"], row["rtl"], designs / row["id"],
                                 {"target": opts.target, "synthesis": row["synthesis"]}, registered=False, auto=True)
                bar.advance(1)
                return res

            # two Yosys processes per design, one after the other; designs side by side
            with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
                proofs = list(pool.map(prove, rows))
    for k, row in enumerate(rows):
        row["formal"] = proofs[k] if formal else None
        if row["formal"] and row["formal"]["counterexample"]:
            row["verification"]["passed"] = False  # never picked
        report = {"id": row["id"], "target": opts.target, "ir_sha256": row["ir"].digest,
                  "accuracy": {"golden": row["test_accuracy"], "rtl": row["rtl_accuracy"],
                               "golden_train": row["train_accuracy"], "golden_validation": row["validation_accuracy"]},
                  "verification": row["verification"], **row["synthesis"], "formal": row["formal"]}
        folder = designs / row["id"]
        report["files"] = file_hashes(folder)
        (folder / "report.json").write_text(json.dumps(report, indent=1, default=_json_default) + "\n")
    return rows


def _metric(row: dict) -> tuple[str, float | None]:
    syn = row["synthesis"]
    if syn.get("area_cm2") is not None:
        return "area_cm2", syn["area_cm2"]
    return "luts", syn.get("luts")


#: The accuracy every choice is made on. Test accuracy is reported beside it, never used.
PICKED_ON = "validation_accuracy"


def _figures(row: dict, base: dict, rule: Rule) -> dict:
    """A realized design's accuracies with 95 % intervals, its paired losses against the
    exact design (``base``) on the same validation and test samples with 95 % intervals,
    and the pick rule's one-sided bound on its validation loss."""
    out = {}
    for part, key in (("validation", "val_correct"), ("test", "test_correct")):
        c = row[key]
        out[f"{part}_interval"] = list(accuracy_interval(int(c.sum()), c.size, REPORT_LEVEL))
        out[f"{part}_loss"] = paired_loss(base[key], c, REPORT_LEVEL).to_json()
    out["loss_bound"] = 0.0 if row is base else rule.bound(base["val_correct"], row["val_correct"])
    return out


def _summarize(rows: list[dict], float_acc, results, front, opts: ExploreOptions, t_search: float, data,
               parts: Parts, seed_labels: list[str], rule: Rule) -> dict:
    """``results``: one search result per seed model; ``front``: the points made real (the
    searches' candidates re-scored on validation, see ``select.validated_front``), in the
    order of ``rows[1:]``."""
    base = rows[0]
    points = []
    for row in rows:
        syn = row["synthesis"]
        pickable = not row["id"].startswith("seed")  # the seed models as trained: shown, not picked
        fig = _figures(row, base, rule)
        if not pickable:
            fig["loss_bound"] = None
        points.append({"id": row["id"], "train_accuracy": row["train_accuracy"],
                       "validation_accuracy": row["validation_accuracy"], "test_accuracy": row["test_accuracy"],
                       **fig,
                       "rtl_accuracy": row["rtl_accuracy"], "estimated_area_um2": None,
                       "area_cm2": syn.get("area_cm2"), "power_mw": syn.get("power_mw"),
                       "luts": syn.get("luts"), "cells": syn.get("cell_count"),
                       "rtl": str(Path("designs") / row["id"] / "rtl" / "top.v"),
                       "verification": row["verification"], "formal": row["formal"],
                       "ir_sha256": row["ir"].digest,
                       "exact": row["id"] == "exact",
                       "picked_on": PICKED_ON if pickable and row["id"] != "exact" else None})
    for k in range(front.size):
        points[k + 1]["estimated_area_um2"] = float(front.area[k])
        points[k + 1]["estimated_power_mw"] = float(front.power[k])
    metric, base_cost = _metric(base)
    base = points[0]
    verified = lambda p: p["verification"]["passed"]  # noqa: E731
    n_val = len(parts.val[1])
    finest = rule.finest(n_val)
    budgets = []
    for b in BUDGETS:
        best = smallest_within(points, b, lambda p: p[metric], verified)
        entry = {"max_loss": b, "design": best["id"] if best else None, "picked_on": PICKED_ON,
                 "confidence": rule.confidence, "resolvable": finest <= b + 1e-12,
                 "note": _budget_note(b, best, n_val, rule)}
        if best:
            entry.update(_pick_figures(best, base, metric, base_cost))
        budgets.append(entry)
    summary = {"approxmlp_version": __version__, "target": opts.target, "data": data.name,
               "metric": metric, "baseline": points[0], "float_accuracy": float_acc,
               "selection": {"picked_on": PICKED_ON, "validation": parts.validation,
                             "samples": {"train": len(parts.fit[1]), "validation": n_val,
                                         "test": len(parts.test[1])},
                             "rule": "the smallest verified design whose paired validation loss against the exact "
                                     f"design is within the budget with {rule.confidence:.0%} one-sided confidence "
                                     "(Tango's score bound)" if rule.confidence else
                                     "the smallest verified design whose validation loss (point estimate) is "
                                     "within the budget",
                             "confidence": rule.confidence, "finest_budget": finest,
                             "intervals": f"{REPORT_LEVEL:.0%} two-sided: Wilson for accuracies, Tango for paired "
                                          "losses against the exact design on the same samples",
                             "test": "scored once per realized design and reported; never used to choose",
                             "loss_budgets": "points of validation accuracy below the exact baseline's, paired"},
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
               "points": points, "budgets": budgets, "formal": _formal_summary(points)}
    if opts.max_power_mw is not None:
        best = most_accurate_within_power(points, opts.max_power_mw, verified)
        summary["power_budget"] = {"max_power_mw": opts.max_power_mw, "design": best["id"] if best else None,
                                   "picked_on": PICKED_ON,
                                   **(_pick_figures(best, base, metric, base_cost) if best else {})}
    return summary


def _budget_note(budget: float, best: dict | None, n_val: int, rule: Rule) -> str:
    """What a budget line must say beside its pick: when the validation part is too small to
    certify the budget at all, and what was done about it."""
    if best is None or not best["exact"]:
        return ""
    finest = rule.finest(n_val)
    if finest > budget + 1e-12:
        return (f"{budget:.0%} of {n_val} validation samples is {budget * n_val:.2g} samples: finer than they can "
                f"certify at {rule.confidence:.0%} confidence for a design that agrees with the exact one (finest: "
                f"{finest:.1%}), and no design was better on enough of them, so the exact design is kept")
    return f"no smaller design is within {budget:.0%} with {rule.confidence:.0%} confidence: the exact design is kept"


def _formal_summary(points: list[dict]) -> dict | None:
    """How many realized designs each proof settled, for the report and the command line."""
    entries = [p["formal"] for p in points if p.get("formal")]
    if not entries:
        return None
    counts = {}
    for e in entries:
        for key in ("rtl_vs_reference", "netlist_vs_rtl"):
            word = e[key].split(":")[0].split(" within")[0]
            counts[word] = counts.get(word, 0) + 1
    text = ", ".join(f"{n} {w}" for w, n in sorted(counts.items()))
    return {"proofs": counts, "seconds": round(sum(e["seconds"] for e in entries), 1),
            "summary": f"{len(entries)} designs, 2 proofs each: {text}"}


def _pick_figures(p: dict, base: dict, metric: str, base_cost) -> dict:
    """What a pick line reports: the accuracies with their intervals (validation qualified it;
    test is beside it), the paired losses, cost, power and the reductions against the exact
    baseline."""
    return {"validation_accuracy": p["validation_accuracy"], "validation_interval": p["validation_interval"],
            "validation_loss": p["validation_loss"], "loss_bound": p["loss_bound"],
            "test_accuracy": p["test_accuracy"], "test_interval": p["test_interval"], "test_loss": p["test_loss"],
            metric: p[metric], "power_mw": p["power_mw"],
            "area_reduction": (base_cost / p[metric]) if p[metric] else None,
            "power_reduction": (base["power_mw"] / p["power_mw"]) if p.get("power_mw") else None}


def _plot(summary: dict, path: Path) -> None:
    """Accuracy against cost: validation accuracy (what every pick is made on) filled, the
    same designs' test accuracy hollow, each with its 95 % interval as an error bar; the
    exact baseline a star."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = summary["metric"]
    pts = [p for p in summary["points"] if p[metric] is not None]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    approx = [p for p in pts if not p["exact"]]
    xs = np.array([p[metric] for p in approx], dtype=float)

    def bars(part: str, points: list[dict]) -> np.ndarray:
        acc = np.array([p[f"{part}_accuracy"] for p in points])
        iv = np.array([p[f"{part}_interval"] for p in points]).reshape(-1, 2)
        return np.vstack([acc - iv[:, 0], iv[:, 1] - acc])

    if approx:
        # drawn a little apart so that the two intervals of one design stay readable
        ax.errorbar(xs / 1.03, [p["validation_accuracy"] for p in approx], yerr=bars("validation", approx), fmt="o",
                    color="C0", ms=4, lw=0.8, capsize=2, zorder=2, label="validation accuracy (picked on), 95% CI")
        ax.errorbar(xs * 1.03, [p["test_accuracy"] for p in approx], yerr=bars("test", approx), fmt="o", mfc="none",
                    color="C1", ms=4, lw=0.8, capsize=2, zorder=2, label="test accuracy (reported), 95% CI")
    b = summary["baseline"]
    ax.errorbar([b[metric] / 1.03], [b["validation_accuracy"]], yerr=bars("validation", [b]), fmt="r*", ms=12,
                capsize=2, label="exact baseline (validation)")
    ax.errorbar([b[metric] * 1.03], [b["test_accuracy"]], yerr=bars("test", [b]), fmt="r*", mfc="none", ms=12,
                capsize=2, label="exact baseline (test)")
    ax.set_xscale("log")
    ax.set_xlabel("area (cm²)" if metric == "area_cm2" else "LUTs")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{summary['data']} on {summary['target']}: designs picked on validation")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
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


def fmt_acc(acc: float, interval) -> str:
    """An accuracy with its 95 % interval: ``0.9415 [0.896, 0.968]``."""
    return f"{acc:.4f} [{interval[0]:.3f}, {interval[1]:.3f}]"


def fmt_loss(loss: dict) -> str:
    """A paired loss in points with its 95 % interval: ``+1.2 [-0.4, +2.9]``."""
    return f"{100 * loss['loss']:+.1f} [{100 * loss['low']:+.1f}, {100 * loss['high']:+.1f}]"


def _markdown(s: dict) -> str:
    from ..backend.report import md

    metric = s["metric"]
    unit = "cm²" if metric == "area_cm2" else "LUTs"
    b = s["baseline"]
    sel = s["selection"]
    n = sel["samples"]
    conf = sel["confidence"]
    lines = [f"# approxmlp explore: {md(s['data'])} on {md(s['target'])}", "",
             f"Exact baseline: validation accuracy {fmt_acc(b['validation_accuracy'], b['validation_interval'])}, "
             f"test accuracy {fmt_acc(b['test_accuracy'], b['test_interval'])}, {fmt(b[metric])} {unit}, "
             f"power {fmt(b['power_mw'], 3)} mW.", "",
             f"Every design below is picked on the **validation** part ({n['validation']} samples: "
             f"{sel['validation']}); the search's fitness used the other {n['train']} training samples; "
             f"**test accuracy** ({n['test']} samples) is scored once per design and reported, never used "
             f"to choose. The pick rule: {sel['rule']}. A loss is *paired*: the design against the exact one "
             "on the same samples, in points; brackets are 95% intervals "
             f"({sel['intervals']}). The finest budget {n['validation']} validation samples can certify at "
             f"{conf:.0%} confidence is {sel['finest_budget']:.1%}.", "",
             "| loss budget | design | validation accuracy (picked on) | validation loss | loss bound | "
             "test accuracy | test loss | " + unit + " | power (mW) | area reduction | power reduction |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for e in s["budgets"]:
        if e["design"] is None:
            lines.append(f"| {e['max_loss']:.0%} | none | | | | | | | | | |")
        else:
            lines.append(f"| {e['max_loss']:.0%} | {e['design']} | {_pick_cells(e, metric)} |")
        if e.get("note"):
            notes.append(f"- {e['max_loss']:.0%}: {e['note']}.")
    if notes:
        lines += [""] + notes
    pb = s.get("power_budget")
    if pb:
        lines += ["", f"Power budget {pb['max_power_mw']:g} mW (synthesized power): " + (
            f"{pb['design']}, the most accurate verified design on validation that fits: validation accuracy "
            f"{fmt_acc(pb['validation_accuracy'], pb['validation_interval'])}, test accuracy "
            f"{fmt_acc(pb['test_accuracy'], pb['test_interval'])}, {fmt(pb[metric])} {unit}, "
            f"{fmt(pb['power_mw'], 3)} mW." if pb["design"] else "no verified design fits.")]
    lines += ["", "## Front", "",
              "| id | train acc | validation acc | validation loss | loss bound | test acc | test loss | " + unit
              + " | power (mW) | verified |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for p in s["points"]:
        v = p["verification"]
        bound = "—" if p["loss_bound"] is None else f"{100 * p['loss_bound']:+.1f}"
        lines.append(f"| {p['id']} | {p['train_accuracy']:.4f} | "
                     f"{fmt_acc(p['validation_accuracy'], p['validation_interval'])} | {fmt_loss(p['validation_loss'])} | "
                     f"{bound} | {fmt_acc(p['test_accuracy'], p['test_interval'])} | {fmt_loss(p['test_loss'])} | "
                     f"{fmt(p[metric])} | {fmt(p['power_mw'], 3)} | {v['vectors'] - v['mismatches']}/{v['vectors']} |")
    lines += ["", "*train*: the part of the training split the search fitted; *validation*: the part every "
              "choice was made on; *test*: the held-out split, reported only. *loss bound*: the one-sided "
              f"{conf:.0%} upper bound on the validation loss that the pick rule compares with a budget "
              "(— for the seed models as trained, shown for comparison, never picked).", "",
              "![Pareto front](pareto.png)", ""]
    return "\n".join(lines)


def _pick_cells(e: dict, metric: str) -> str:
    pr = f"{e['power_reduction']:.2f}x" if e.get("power_reduction") else "—"
    ar = f"{e['area_reduction']:.2f}x" if e.get("area_reduction") else "—"
    return (f"{fmt_acc(e['validation_accuracy'], e['validation_interval'])} | {fmt_loss(e['validation_loss'])} | "
            f"{100 * e['loss_bound']:+.1f} | {fmt_acc(e['test_accuracy'], e['test_interval'])} | "
            f"{fmt_loss(e['test_loss'])} | {fmt(e[metric])} | {fmt(e['power_mw'], 3)} | {ar} | {pr}")
