"""The benchmark run behind ``BENCHMARKS.md``: the printed-MLP literature's data sets, end to end.

    make bench                                   # = python -m flows.bench.run
    python -m flows.bench.run --only Cardio --quick --out /tmp/b   # a few minutes

Per data set, exactly what a user would run, each step timed:

1. ``train``: QAT (Brevitas) of the exact 8-bit baseline, the literature's topology,
   `approxmlp train` defaults;
2. ``compile``: that model to RTL, verified on every test vector (cocotb + Verilator) and
   synthesized on the EGFET library (emit / verify / synth times kept apart);
3. ``explore``: NSGA-II with the hardware approximations in the loop, default settings,
   EGFET cost model; every front point emitted, verified and synthesized;
4. the same verified front synthesized for CNT-TFT and for iCE40 (LUTs): the search is not
   rerun per target, the EGFET front is re-measured;
5. fitness-evaluation throughput of the vectorized evaluator against a per-sample Python
   loop, on the data set's own training inputs;

then the scaling section (:mod:`flows.bench.scaling`, skipped with ``--only`` or
``--no-scaling``): tool time and memory against network size from ~50 to ~3,000 connections,
and digits (64 inputs) 64-16-10 and 64-32-16-10 with explore's default settings.

Writes ``BENCHMARKS.md`` (every number from this run, except the column of published
figures, which is labelled as such), ``docs/benchmarks.png`` (all Pareto fronts) and
``OUT/<data set>/`` with every model, design and log; ``OUT/results.json`` holds the raw
numbers. Reference data come from ``../shared/datasets`` (``--shared`` to move it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from approxmlp.pipeline.select import BUDGETS  # explore's own loss budgets
from approxmlp.pipeline.select import smallest_within  # explore's own pick rule
from flows.bench.common import REPO, commit, log
from flows.bench.report import headline, markdown, plot, update_readme
from flows.bench.suite import BENCHES, SEED_TRAINING, TARGETS, Bench


# ----------------------------------------------------------------------------- one data set
def run_one(b: Bench, shared: Path, out: Path, *, quick: bool, seed: int, val_fraction: float | None = None) -> dict:
    """Train, compile, explore and re-measure one data set; a dict of numbers and timings.
    ``val_fraction``: the validation part of the training split that ``train`` early-stops on
    and explore picks on (the tools' ``--val-fraction``; None: their default, the bench's)."""
    from approxmlp.frontend import qat
    from approxmlp.pipeline.compiler import CompileOptions, compile_model
    from approxmlp.frontend.data import load_dataset
    from approxmlp.pipeline.explore import run_explore

    spec = str(shared / "datasets" / b.spec)
    out.mkdir(parents=True, exist_ok=True)
    row: dict = {"name": b.name, "spec": b.spec, "note": b.note, "published": b.published.__dict__}
    data = load_dataset(spec, seed=seed)
    topo = "-".join(str(n) for n in (data.n_features, *b.hidden, data.n_classes))
    row.update(topology=topo, train=len(data.y_train), test=len(data.y_test))

    log(f"{b.name} {topo}: train (QAT: the int-weight baseline, then the pow2 seeds of the search)")
    small = {"restarts": 1, "epochs": 60, "float_epochs": 60} if quick else {}
    if val_fraction is not None:
        small |= {"val_fraction": val_fraction}
    name = b.name.lower().replace("-", "_")
    t = time.perf_counter()
    res = qat.train(data, qat.TrainConfig(hidden=b.hidden, seed=seed, **small), name=name)
    row["train_s"] = time.perf_counter() - t
    model = out / "model.pt"
    qat.save(res, model)
    t = time.perf_counter()
    seed_models = []
    for kind, how in SEED_TRAINING.items():
        seed_models.append(out / f"model-{kind}.pt")
        qat.save(qat.train(data, qat.TrainConfig(hidden=b.hidden, seed=seed, **how, **small), name=name),
                 seed_models[-1])
    row["train_pow2_s"] = time.perf_counter() - t

    log(f"{b.name}: compile (emit, verify, synthesize on EGFET)")
    t = time.perf_counter()
    rep = compile_model(model, spec, out / "compile", CompileOptions(target="printed", seed=seed))
    row["compile_s"] = time.perf_counter() - t
    row["emit_s"] = rep["timings"].get("emit_s")
    row["verify_s"] = rep["timings"].get("verify_s")
    row["synth_s"] = rep["timings"].get("synth_s")
    row["float_accuracy"] = res.summary["float_accuracy"]["test"]

    log(f"{b.name}: explore (NSGA-II, EGFET cost model)")
    opts = explore_options(out, quick=quick, seed=seed)
    if val_fraction is not None:
        opts = dataclasses.replace(opts, val_fraction=val_fraction)
    t = time.perf_counter()
    summary = run_explore(model, spec, out / "explore", opts, progress=lambda m: None)
    row["explore_s"] = time.perf_counter() - t
    row["search_s"] = summary["search"]["seconds"]
    row["selection"] = {k: summary["selection"][k] for k in ("samples", "confidence", "finest_budget", "rule")}
    row["selection"]["val_fraction"] = opts.val_fraction
    row["evaluations"] = summary["search"]["evaluations"]

    points = points_of(summary)
    log(f"{b.name}: {len(points)} designs ({sum(p['verified'] for p in points)} verified); "
        "synthesizing them for CNT-TFT and iCE40")
    t = time.perf_counter()
    jobs = [(p, target) for p in points for target in TARGETS[1:]]
    with ThreadPoolExecutor(max_workers=2) as pool:  # each Yosys run is its own process
        results = pool.map(lambda job: _synth(out / "explore" / "designs" / job[0]["id"] / "rtl" / "top.v", job[1]),
                           jobs)
        for (p, target), r in zip(jobs, results):
            p[target] = r
    row["resynth_s"] = time.perf_counter() - t
    row["points"] = points
    row["targets"] = {tg: _budgets(points, tg) for tg in TARGETS}

    log(f"{b.name}: fitness-evaluation throughput")
    from flows.bench.eval_speed import measure

    q = res.quantizer
    row["eval_speed"] = measure(res.ir, q(data.X_train), population=opts.population, seed=seed)
    row["eval_speed"].pop("data", None)
    row["ok"] = all(p["verified"] for p in points)
    return row


def points_of(summary: dict) -> list[dict]:
    """The designs of an explore summary (``pareto.json``) as the bench keeps them: exact, the
    front, and "seed", "seed1" (the pow2 QAT models as trained), with their EGFET figures."""
    points = []
    for p in summary["points"]:
        points.append({"id": p["id"], "exact": p["exact"], "validation_accuracy": p["validation_accuracy"],
                       "test_accuracy": p["test_accuracy"],
                       **{k: p[k] for k in ("validation_interval", "test_interval", "validation_loss", "test_loss",
                                            "loss_bound")},
                       "verified": p["verification"]["passed"], "origin": p.get("origin"),
                       "vectors": f"{p['verification']['vectors'] - p['verification']['mismatches']}"
                                  f"/{p['verification']['vectors']}",
                       "printed": {"area_cm2": p["area_cm2"], "power_mw": p["power_mw"]}})
    return points


def explore_options(out: Path, *, quick: bool, seed: int):
    """The bench's explore settings for the models trained into ``out``: defaults, EGFET,
    the seed models of :data:`SEED_TRAINING`, their searches side by side on the machine's
    cores (``--workers``; the quick run, inside the test suite's own processes, one by one);
    formal=False: the bench proves every design itself afterwards, in a timed step of its
    own (flows/bench/proofs.py), rather than explore's default subset."""
    from approxmlp.pipeline.explore import ExploreOptions

    return ExploreOptions(target="printed", seed=seed, seed_model=tuple(out / f"model-{k}.pt" for k in SEED_TRAINING),
                          formal=False, **({"population": 24, "generations": 8, "max_designs": 6} if quick else
                                           {"workers": min(os.cpu_count() or 1, len(SEED_TRAINING))}))


def _synth(rtl: Path, target: str) -> dict:
    from approxmlp.backend.synth import synthesize

    with tempfile.TemporaryDirectory(prefix="approxmlp-bench-") as work:
        r = synthesize(rtl, "top", target, Path(work))
    return {"area_cm2": r.area_cm2, "power_mw": r.power_mw, "luts": r.luts, "carries": r.carries}


def _metric(target: str) -> str:
    return "luts" if target.startswith("fpga") else "area_cm2"


def _budgets(points: list[dict], target: str) -> dict:
    """Exact baseline and, per loss budget, the smallest verified design on ``target`` whose
    paired validation loss is within the budget with explore's confidence (explore's own
    pick rule, :func:`approxmlp.pipeline.select.smallest_within`); test figures reported."""
    metric = _metric(target)
    base = next(p for p in points if p["exact"])
    b0 = base[target]
    out = {"exact": {"validation_accuracy": base["validation_accuracy"], "accuracy": base["test_accuracy"],
                     "validation_interval": base.get("validation_interval"), "test_interval": base.get("test_interval"),
                     **b0},
           "budgets": []}
    for budget in BUDGETS:
        best = smallest_within(points, budget, lambda p: p[target][metric], lambda p: p["verified"])
        e: dict = {"max_loss": budget, "design": None}
        if best is not None:
            m = best[target]
            e.update(design=best["id"], origin=best.get("origin"), validation_accuracy=best["validation_accuracy"],
                     accuracy=best["test_accuracy"],
                     validation_interval=best["validation_interval"], test_interval=best["test_interval"],
                     validation_loss=best["validation_loss"], loss_bound=best["loss_bound"],
                     test_loss=base["test_accuracy"] - best["test_accuracy"], test_loss_paired=best["test_loss"], **m,
                     reduction=_ratio(b0[metric], m[metric]),
                     power_reduction=_ratio(b0.get("power_mw"), m.get("power_mw")))
        out["budgets"].append(e)
    return out


def _ratio(a, b):
    return a / b if a is not None and b else None


def _meta(total_s: float) -> dict:
    from approxmlp import __version__
    from approxmlp.backend.tools import verilator_version, yosys_version

    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count()
    return {"commit": commit(), "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {cpus} CPUs, Python "
            f"{platform.python_version()}", "version": __version__, "yosys": yosys_version().split(" (")[0],
            "verilator": verilator_version(), "total_min": total_s / 60}


def _peer_section(a: argparse.Namespace) -> list[str]:
    """The peer step (:mod:`flows.bench.peer`): approxmlp against da4ml on the exact models
    this run made (the digits one from the scaling step), when da4ml is installed (``make
    bench`` installs it: ``pip install -e .[bench]``); EGFET only with ``--quick``."""
    import importlib.util

    from flows.bench import peer

    if importlib.util.find_spec("da4ml") is None:  # kept too: --render says the same
        log("peer: skipped, da4ml is not installed (pip install -e .[bench])")
        res = {"not_run": "da4ml is not installed (`pip install -e .[bench]`)", "via": "make bench"}
        (a.out / "peer.json").write_text(json.dumps(res, indent=1) + "\n")
        return peer.markdown(res)
    log("peer: the exact models built by da4ml, by the same flows")
    sets = [b.name for b in BENCHES if (a.out / b.name / "compile" / "ir.json").is_file()]
    sets += ["digits"] if (a.out / peer.DIGITS / "ir.json").is_file() else []
    res = peer.run(a.out, sets=sets,
                   targets=("printed",) if a.quick else peer.TARGETS, pnr=not a.quick) | {"via": "make bench"}
    (a.out / "peer.json").write_text(json.dumps(res, indent=1) + "\n")
    return peer.markdown(res)


def write_reports(a: argparse.Namespace, rows: list[dict], meta: dict, scaling_md: list[str],
                  proofs_md: list[str] = ()) -> None:
    """BENCHMARKS.md, the plot and the README headline, from one run's numbers."""
    meta = meta | {"png": Path(os.path.relpath(a.png, a.md.parent)).as_posix()}
    a.md.write_text(markdown(rows, meta).rstrip("\n") + "\n\n" + "\n".join([*proofs_md, *scaling_md]))
    # the raw per-set, per-budget figures behind the tables (accuracies and losses with their
    # intervals, areas, powers), kept beside BENCHMARKS.md so anyone can recheck them
    a.results.mkdir(parents=True, exist_ok=True)
    (a.results / "results.json").write_text(json.dumps(rows, indent=1, default=str) + "\n")
    (a.results / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    for kept in ("proofs.json", "sharing.json", "peer.json"):
        if (a.out / kept).is_file():
            (a.results / kept).write_text((a.out / kept).read_text())
    plot(rows, a.png)
    if update_readme(a.readme, headline(rows, meta)):
        log(f"updated the headline table of {a.readme}")
    log(f"wrote {a.md} and {a.png} ({meta['total_min']:.1f} min)")


def render(a: argparse.Namespace) -> int:
    """``--render``: the reports of the run kept in ``a.out`` (its own numbers and provenance,
    rendered by this code: a change of wording needs no two-hour re-run)."""
    from flows.bench import peer, proofs, scaling, sharing

    try:
        rows = json.loads((a.out / "results.json").read_text())
        meta = json.loads((a.out / "meta.json").read_text())
    except (OSError, ValueError) as exc:
        print(f"error: no finished run in {a.out} ({exc}); run `make bench` first", file=sys.stderr)
        return 2
    kept = a.out / "scaling" / "scaling.json"
    res = json.loads(kept.read_text()) if kept.is_file() else {}
    scaling_md = scaling.markdown(res) if res else []
    # a scaling section run on its own (python -m flows.bench.scaling) after the run says so
    rerun = {"scaling_rerun": res["commit"]} if res.get("via") != "make bench" and "commit" in res else {}
    kept = a.out / "proofs.json"
    proofs_md = proofs.markdown(json.loads(kept.read_text())) if kept.is_file() else []
    kept = a.out / "sharing.json"
    proofs_md += sharing.markdown(json.loads(kept.read_text())) if kept.is_file() else []
    kept = a.out / "peer.json"
    scaling_md += peer.markdown(json.loads(kept.read_text())) if kept.is_file() else []
    write_reports(a, rows, meta | {"rendered_at": commit()} | rerun, scaling_md, proofs_md)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", default=None, metavar="NAME",
                    help="Run only this data set (repeatable): " + ", ".join(b.name for b in BENCHES))
    ap.add_argument("--quick", action="store_true",
                    help="Tiny training and search, the sharing step on EGFET only (a smoke run, minutes).")
    ap.add_argument("--out", type=Path, default=REPO / "bench-out", help="Work folder (default bench-out/).")
    ap.add_argument("--md", type=Path, default=REPO / "BENCHMARKS.md")
    ap.add_argument("--png", type=Path, default=REPO / "docs" / "benchmarks.png")
    ap.add_argument("--readme", type=Path, default=REPO / "README.md",
                    help="File whose headline table (between bench:headline markers) is rewritten.")
    ap.add_argument("--results", type=Path, default=REPO / "flows" / "bench" / "results",
                    help="Where the raw figures of the tables go (results.json, meta.json), to be committed.")
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared", help="Folder holding datasets/.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--val-fraction", type=float, default=None,
                    help="The tools' --val-fraction for every data set (default: theirs): "
                         "the trade-off between samples to fit and samples to certify, measured.")
    ap.add_argument("--no-scaling", action="store_true",
                    help="Skip the scaling section (flows/bench/scaling.py; also skipped with --only).")
    ap.add_argument("--render", action="store_true",
                    help="Run nothing: write BENCHMARKS.md, the plot and the README headline again from "
                         "an earlier run's OUT/results.json, OUT/scaling/scaling.json and OUT/meta.json.")
    a = ap.parse_args(argv)
    if a.render:
        return render(a)
    import torch

    torch.set_num_threads(1)  # tiny networks: more threads only add contention on 2 cores
    benches = BENCHES
    if a.only:
        known = {b.name.lower(): b for b in BENCHES}
        unknown = [n for n in a.only if n.lower() not in known]
        if unknown:
            ap.error(f"unknown data set {', '.join(unknown)}; choose from {', '.join(b.name for b in BENCHES)}")
        benches = tuple(known[n.lower()] for n in a.only)
    if a.val_fraction is not None and not 0 < a.val_fraction < 1:
        ap.error(f"--val-fraction {a.val_fraction} is outside (0, 1)")
    if not (a.shared / "datasets").is_dir():
        ap.error(f"no reference data at {a.shared / 'datasets'}; pass --shared DIR")
    # a synthesis cache of this run's own (compile's exact design is explore's): no result of
    # an earlier run is reused, and the timings are this run's
    from approxmlp.backend.synth import CACHE_ENV

    cache = a.out / "synth-cache"
    shutil.rmtree(cache, ignore_errors=True)
    os.environ[CACHE_ENV] = str(cache)
    t0 = time.perf_counter()
    rows = []
    for b in benches:
        dest = a.out / b.name
        if dest.exists():
            shutil.rmtree(dest)
        try:
            rows.append(run_one(b, a.shared, dest, quick=a.quick, seed=a.seed, val_fraction=a.val_fraction))
        except Exception as exc:  # one failed data set must not hide the others' results
            log(f"{b.name}: FAILED: {type(exc).__name__}: {exc}")
            rows.append({"name": b.name, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]})
        (a.out / "results.json").write_text(json.dumps(rows, indent=1, default=str) + "\n")
    from flows.bench import proofs

    log("proofs: RTL = reference and netlist = RTL for every design")
    proved = proofs.run(a.out) | {"via": "make bench"}
    (a.out / "proofs.json").write_text(json.dumps(proved, indent=1) + "\n")
    proofs_md = proofs.markdown(proved)
    from flows.bench import sharing

    log("sharing: the exact models with and without shared subexpressions")
    shared = sharing.run(a.out, targets=("printed",) if a.quick else sharing.TARGETS) | {"via": "make bench"}
    (a.out / "sharing.json").write_text(json.dumps(shared, indent=1) + "\n")
    proofs_md += sharing.markdown(shared)
    scaling_md, scaling_ok = [], True
    if not (a.only or a.no_scaling):
        from flows.bench import scaling

        log("scaling: tool time and memory against network size")
        try:
            scaling_md, res = scaling.section(a.shared, a.out / "scaling", quick=a.quick, seed=a.seed)
            scaling_ok = scaling.ok(res)
        except Exception as exc:  # the data sets' results are still worth writing
            log(f"scaling: FAILED: {type(exc).__name__}: {exc}")
            scaling_md, scaling_ok = ["## Scaling", "", f"failed: {type(exc).__name__}: {exc}".splitlines()[0], ""], False
    scaling_md += _peer_section(a)
    meta = _meta(time.perf_counter() - t0)
    (a.out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    write_reports(a, rows, meta, scaling_md, proofs_md)
    failed = [r["name"] for r in rows if "error" in r or not r.get("ok")] + ([] if scaling_ok else ["scaling"])
    failed += [f"{name} {d['design']} (counterexample)" for name, s in proved["sets"].items() for d in s["designs"]
               if any(d[k]["status"] == "counterexample" for k in proofs.KINDS)]
    if failed:
        log(f"not every design verified or ran: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
