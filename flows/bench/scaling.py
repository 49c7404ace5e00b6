"""Scaling benchmark: how train, explore, compile, verify and synth grow with the network.

    python -m flows.bench.scaling              # the ladder and the digits rows (~40 min, 2 cores)
    python -m flows.bench.scaling --quick      # a smoke run (tiny training and search, minutes)

Two parts, both printed as markdown (and, from ``make bench``, written into BENCHMARKS.md by
:mod:`flows.bench.run` through :func:`section`):

1. **the ladder**: networks from ~50 to ~3,000 connections (weights) on the shared
   reference sets and scikit-learn's digits (64 inputs), one and two hidden layers. Each
   step runs in a subprocess of its own, so its wall time and its peak memory (the largest
   resident set of the step's Python process and of the tools it ran: Verilator's C++
   build, Yosys) are the step's alone: `train` (QAT, defaults), `explore` with modest
   settings (:data:`LADDER_EXPLORE`; split into the search and *realize*: emit, verify in
   one Verilator build, synthesize every front point) and `compile` (emit, verify, synth of
   the exact design, the latter two also given apart). The growth table fits ``time ~
   connections**k`` per step (least squares in log-log) and gives seconds per connection.
2. **the digits rows**: 64-16-10 and 64-32-16-10 through train -> explore -> compile with
   explore's *default* settings, their fronts (exact vs the smallest verified designs
   within explore's loss budgets) and whether every front point verified on every test
   vector.

Per network, compile runs before explore and fills a synthesis
cache that starts empty (``approxmlp.backend.synth``'s, keyed by the RTL less its comments):
explore then takes the exact design's netlist from it and synthesizes only the front, as a
user's train -> explore -> compile would do the other way round (one Yosys run of the exact
design either way). The digits rows run first; the ladder's digits networks reuse their trained models,
compile runs and caches.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from flows.bench.common import REPO, commit, history, log
from flows.bench.common import area as _a


@dataclass(frozen=True)
class Rung:
    name: str
    spec: str                  # a built-in data set, or a path relative to the shared data folder
    hidden: tuple[int, ...]

    @property
    def builtin(self) -> bool:
        return "/" not in self.spec


#: ~50 to ~3,000 connections; one and two hidden layers.
LADDER = (
    Rung("Breast_Cancer", "splits/Breast_Cancer", (4,)),    # 10-4-2: 48 connections
    Rung("Cardio", "splits/Cardio", (3,)),                  # 21-3-3: 72
    Rung("Pendigits", "splits/Pendigits", (5,)),            # 16-5-10: 130
    Rung("Pendigits", "splits/Pendigits", (16, 8)),         # 16-16-8-10: 464
    Rung("digits", "digits", (8,)),                         # 64-8-10: 592
    Rung("digits", "digits", (16,)),                        # 64-16-10: 1,184
    Rung("digits", "digits", (32, 16)),                     # 64-32-16-10: 2,720
)
#: --quick: the smallest rung (a network trained for the ladder) and a small digits network (a
#: "default" row whose model and compile the ladder then reuses): both paths, least work.
QUICK_LADDER = (LADDER[0], Rung("digits", "digits", (3,)))
#: The rows with explore's default settings (and their fronts).
DIGITS = (Rung("digits", "digits", (16,)), Rung("digits", "digits", (32, 16)))
#: Explore on the ladder: enough search to make the realize step realistic (a front of
#: several designs, emitted, verified and synthesized), short enough for make bench.
LADDER_EXPLORE = {"population": 24, "generations": 20, "max_designs": 3}
QUICK_EXPLORE = {"population": 8, "generations": 2, "max_designs": 1}
QUICK_TRAIN = {"restarts": 1, "epochs": 20, "float_epochs": 20}
#: Acceptance limit for a digits row (train -> explore -> compile), seconds.
DIGITS_LIMIT_S = 20 * 60

STEPS = ("train", "search", "realize", "compile", "verify", "synth")


# ----------------------------------------------------------------------------- one step, in a child
#: How ``peak_mb`` was measured; rows without it (runs before 2026-12-04) counted the parent.
MEMORY_MEASURE = "VmHWM"


def _own_peak_mb() -> float:
    """This process's own resident high-water mark (MB) since its exec.

    Not ``getrusage(RUSAGE_SELF).ru_maxrss``: Linux keeps the high-water mark of the address
    space a process had before exec, so a step forked from ``make bench`` (a 745 MB parent by
    the end) reported 745 MB whatever it did. ``VmHWM`` is the new address space's alone."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_mb() -> dict:
    """Largest resident sets (MB) of this process and of any tool it waited for (a tool's
    ru_maxrss counts at most this process's size when it was started, which ``own`` covers)."""
    own = _own_peak_mb()
    tools = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"peak_mb": max(own, tools), "python_mb": own, "tools_mb": tools, "memory": MEMORY_MEASURE}


def _child(job: dict) -> dict:
    """Run one step (what a user's command does) and time it; the child's side of :func:`run_step`."""
    import torch

    torch.set_num_threads(1)  # tiny networks: more threads only add contention on 2 cores
    from approxmlp.frontend.data import load_dataset

    kind, spec, seed, out = job["kind"], job["spec"], job["seed"], Path(job["out"])
    from approxmlp.backend.synth import CACHE_ENV

    os.environ[CACHE_ENV] = job["cache"]
    res: dict = {}
    t = time.perf_counter()
    if kind == "train":
        from approxmlp.frontend import qat

        data = load_dataset(spec, seed=seed)
        r = qat.train(data, qat.TrainConfig(hidden=tuple(job["hidden"]), seed=seed, **job.get("train", {})),
                      name=job["name"])
        qat.save(r, out)
        res = {"test_accuracy": r.summary["accuracy"]["test"],
               "topology": r.ir.topology_str,
               "connections": sum(layer.n_in * layer.n_out for layer in r.ir.layers)}
    elif kind == "explore":
        from approxmlp.pipeline.explore import ExploreOptions, run_explore

        s = run_explore(Path(job["model"]), spec, out, ExploreOptions(target="printed", seed=seed, **job["explore"]))
        wall = time.perf_counter() - t
        res = {"search_s": s["search"]["seconds"], "realize_s": wall - s["search"]["seconds"],
               "evaluations": s["search"]["evaluations"], "designs": len(s["points"]),
               "verified": all(p["verification"]["passed"] for p in s["points"]),
               "points": [{"id": p["id"], "exact": p["exact"], "validation_accuracy": p["validation_accuracy"],
                           "test_accuracy": p["test_accuracy"],
                           "area_cm2": p["area_cm2"], "power_mw": p["power_mw"], "cells": p["cells"],
                           "passed": p["verification"]["passed"], "vectors": p["verification"]["vectors"],
                           "mismatches": p["verification"]["mismatches"]} for p in s["points"]],
               "budgets": s["budgets"]}
    elif kind == "compile":
        from approxmlp.pipeline.compiler import CompileOptions, compile_model

        rep = compile_model(Path(job["model"]), spec, out, CompileOptions(target="printed", seed=seed))
        tm = rep["timings"]
        res = {"emit_s": tm.get("emit_s"), "verify_s": tm.get("verify_s"), "synth_s": tm.get("synth_s"),
               "synth_cached": rep["synthesis"].get("cached"),
               "area_cm2": rep.get("area_cm2"), "cells": rep.get("cell_count"),
               "vectors": rep["verification"]["vectors"], "passed": rep["verification"]["passed"]}
    else:
        raise ValueError(f"unknown step {kind}")
    res["wall_s"] = time.perf_counter() - t
    return res | _peak_mb()


def run_step(job: dict) -> dict:
    """Run one step in a fresh Python process; its timings and peak memory."""
    result = Path(str(job["out"]) + f".{job['kind']}.json")
    result.parent.mkdir(parents=True, exist_ok=True)
    result.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "flows.bench.scaling", "--step", json.dumps(job), "--result", str(result)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    t = time.perf_counter()
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0 or not result.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"{job['kind']} of {job['name']} failed (exit {proc.returncode}): {tail[0]}")
    out = json.loads(result.read_text())
    out["process_s"] = time.perf_counter() - t   # including the interpreter's start and imports
    return out


# ----------------------------------------------------------------------------- the runs
def _spec(r: Rung, shared: Path) -> str:
    return r.spec if r.builtin else str(shared / "datasets" / r.spec)


def _label(r: Rung) -> str:
    return f"{r.name} {'/'.join(map(str, r.hidden))}"


def run_network(r: Rung, shared: Path, out: Path, *, explore: dict, train: dict, seed: int,
                model: Path | None = None, compiled: dict | None = None, explored: dict | None = None) -> dict:
    """Train, compile and explore one network (each its own process); the row of numbers.

    Compile runs before explore and both share a synthesis cache that starts empty in
    ``out``: compile's Yosys run of the exact design is real (its *synth* time), explore
    then takes that design's netlist from the cache (same RTL) and synthesizes only the
    front. A user's train -> explore -> compile does the same work the other way round.
    ``model``/``compiled``/``explored``: an earlier run's trained model, compile step (and
    cache) and explore step (the same network explored with the same settings: ``--quick``,
    whose digits row and ladder rung are one network, would repeat the search)."""
    spec = _spec(r, shared)
    name = f"{r.name}_{'_'.join(map(str, r.hidden))}".lower().replace("-", "_")
    out.mkdir(parents=True, exist_ok=True)
    row: dict = {"name": r.name, "hidden": list(r.hidden), "explore_settings": explore}
    cache = (model.parent if model is not None else out) / "synth-cache"
    base = {"spec": spec, "seed": seed, "name": name, "hidden": list(r.hidden), "cache": str(cache)}
    if model is None:
        shutil.rmtree(cache, ignore_errors=True)  # an earlier run's would make this run's synthesis a lookup
        model = out / "model.pt"
        log(f"{_label(r)}: train")
        row["train"] = run_step(base | {"kind": "train", "out": str(model), "train": train})
    if compiled is None:
        log(f"{_label(r)}: compile")
        compiled = run_step(base | {"kind": "compile", "out": str(out / "compile"), "model": str(model)})
    row["compile"] = compiled
    if explored is not None:
        row["explore"] = explored
        return row
    log(f"{_label(r)}: explore {explore or 'defaults'}")
    row["explore"] = run_step(base | {"kind": "explore", "out": str(out / "explore"), "model": str(model),
                                      "explore": explore})
    log(f"{_label(r)}: compile {compiled['wall_s']:.0f} s, search {row['explore']['search_s']:.0f} s, "
        f"realize {row['explore']['realize_s']:.0f} s")
    return row


def run_all(shared: Path, out: Path, *, quick: bool = False, seed: int = 0) -> dict:
    """The digits rows (explore's defaults) first, then the ladder (modest explore settings),
    whose digits networks reuse those rows' trained models and compile runs; with
    ``quick``, two small rungs (one of them the digits row), tiny training and search."""
    ladder, digits = (QUICK_LADDER, QUICK_LADDER[-1:]) if quick else (LADDER, DIGITS)
    explore = QUICK_EXPLORE if quick else LADDER_EXPLORE
    train = QUICK_TRAIN if quick else {}
    t0 = time.perf_counter()
    load0 = os.getloadavg()[1]
    digit_rows, done = [], {}
    for r in digits:
        t = time.perf_counter()
        try:
            row = run_network(r, shared, _folder(out, r), explore=QUICK_EXPLORE if quick else {}, train=train,
                              seed=seed)
            done[r] = row
        except Exception as exc:  # one failing network must not hide the others
            log(f"{_label(r)} (defaults): FAILED: {exc}")
            row = {"name": r.name, "hidden": list(r.hidden), "error": str(exc).splitlines()[0]}
        row["section_s"] = time.perf_counter() - t
        digit_rows.append(row)
        _save_partial(out, {"digits": digit_rows})
    digits_s = time.perf_counter() - t0
    rows = []
    for r in ladder:
        prev = done.get(r)  # a digits row's model and compile run (and its synthesis cache)
        try:
            row = run_network(r, shared, _folder(out, r, "ladder-"), explore=explore, train=train, seed=seed,
                              model=_folder(out, r) / "model.pt" if prev else None,
                              compiled=prev["compile"] if prev else None,
                              explored=prev["explore"] if prev and prev["explore_settings"] == explore else None)
            if prev:
                row["train"] = prev["train"]
        except Exception as exc:
            log(f"{_label(r)}: FAILED: {exc}")
            row = {"name": r.name, "hidden": list(r.hidden), "error": str(exc).splitlines()[0]}
        rows.append(row)
        _save_partial(out, {"digits": digit_rows, "ladder": rows})
    return {"ladder": rows, "digits": digit_rows, "ladder_s": time.perf_counter() - t0 - digits_s,
            "digits_s": digits_s, "total_s": time.perf_counter() - t0, "quick": quick, "ladder_explore": explore,
            "cpus": os.cpu_count(), "load": [load0, os.getloadavg()[1]]}


def _save_partial(out: Path, res: dict) -> None:
    """What has run so far (a long run stopped half-way still leaves its numbers)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "scaling.partial.json").write_text(json.dumps(res, indent=1, default=str) + "\n")


def _folder(out: Path, r: Rung, prefix: str = "") -> Path:
    return out / f"{prefix}{r.name}-{'-'.join(map(str, r.hidden))}"


# ----------------------------------------------------------------------------- the report
def _times(row: dict) -> dict[str, float | None]:
    if "error" in row:
        return {s: None for s in STEPS}
    c, e = row["compile"], row["explore"]
    return {"train": row["train"]["wall_s"], "search": e["search_s"], "realize": e["realize_s"],
            "compile": c["wall_s"], "verify": c["verify_s"], "synth": c["synth_s"]}


def fit_exponent(x: list[float], y: list[float]) -> float | None:
    """``k`` of the least-squares fit ``log y = k log x + c`` (None with fewer than two points)."""
    pts = [(math.log(a), math.log(b)) for a, b in zip(x, y) if a and b and a > 0 and b > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx else None


def _s(v, digits: int = 1) -> str:
    if v is None:
        return "—"
    return f"{v:.{digits}f}" if v < 100 else f"{v:.0f}"


def _memory_valid(row: dict) -> bool:
    return all(row[k].get("memory") == MEMORY_MEASURE for k in ("train", "explore", "compile"))


def _mb(row: dict) -> str:
    if not _memory_valid(row):
        return "—"
    return " / ".join(f"{row[k]['peak_mb']:.0f}" for k in ("train", "explore", "compile"))


def _topology(row: dict) -> str:
    return row["train"]["topology"]


def _connections(row: dict) -> int:
    return row["train"]["connections"]


def _front(row: dict) -> list[str]:
    """The digits row's front: exact and the smallest verified design per loss budget."""
    e = row["explore"]
    pts = e["points"]
    ex = next(p for p in pts if p["exact"])
    L = []
    for p in [ex] + [p for p in pts if not p["exact"]]:
        L.append(f"| {p['id']} | {p['validation_accuracy']:.4f} | {p['test_accuracy']:.4f} | {_a(p['area_cm2'])} | "
                 f"{_a(p['power_mw'])} | "
                 f"{p['cells'] if p['cells'] is not None else '—'} | "
                 f"{p['vectors'] - p['mismatches']}/{p['vectors']}{'' if p['passed'] else ' **failed**'} |")
    return L


def markdown(res: dict) -> list[str]:
    """The scaling section of BENCHMARKS.md (markdown lines); also of a run stopped half-way
    (``scaling.partial.json``: the networks done so far)."""
    res = {"ladder": [], "digits": [], "quick": False, "ladder_explore": LADDER_EXPLORE} | res
    ok = [r for r in res["ladder"] if "error" not in r]
    ex = res["ladder_explore"]
    L = ["## Scaling: tool time and memory against network size", "",
         f"From `{res.get('via', 'python -m flows.bench.scaling')}`{' (--quick)' if res['quick'] else ''}"
         + (f" at commit {res['commit']} on {res['date']}" if "commit" in res else "") + ", "
         + (f"{res['total_s'] / 60:.0f} min: the digits rows {res['digits_s'] / 60:.1f}, the ladder "
            f"{res['ladder_s'] / 60:.1f}. " if "total_s" in res else "stopped before its end: the networks it finished. ")
         + (f"{res['cpus']} CPUs, 5-minute load average {res['load'][0]:.1f} at the start and {res['load'][1]:.1f} at the "
            "end (other work on the machine slows every step). " if "load" in res else "") +
         "Every step runs in a process of its own: wall seconds, and peak memory as the largest resident set of "
         "the step's Python process or of a tool it ran (Verilator's C++ build, Yosys). *train*: `approxmlp "
         "train` defaults; *compile*: the exact design emitted, verified on every test vector and synthesized "
         f"(EGFET), *verify* and *synth* its parts; *search* and *realize*: `approxmlp explore` with "
         f"{ex['population']} x {ex['generations']} generations and at most {ex['max_designs']} front designs "
         "(realize = emit, verify every design on every test vector in one Verilator build, synthesize the front; "
         "the exact design's netlist comes from the synthesis cache that compile filled).", "",
         "| network | connections | train s | search s | realize s (designs) | compile s | verify s | synth s "
         "| exact cells | peak MB train / explore / compile |",
         "|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["ladder"]:
        if "error" in r:
            L.append(f"| {r['name']} {'-'.join(map(str, r['hidden']))} | failed: {r['error']} |")
            continue
        t = _times(r)
        L.append(f"| {r['name']} {_topology(r)} | {_connections(r)} | {_s(t['train'])} | {_s(t['search'])} | "
                 f"{_s(t['realize'])} ({r['explore']['designs']}) | {_s(t['compile'])} | {_s(t['verify'])} | "
                 f"{_s(t['synth'])} | {r['compile']['cells']} | {_mb(r)} |")
    L += ["", "Growth: time ~ connections^k fitted over the ladder (least squares, log-log), and milliseconds "
          "per connection on the smallest and the largest network.", "",
          "| step | k | ms / connection (smallest) | ms / connection (largest) |", "|---|---|---|---|"]
    if ok:
        x = [_connections(r) for r in ok]
        lo, hi = ok[x.index(min(x))], ok[x.index(max(x))]
        for step in STEPS:
            y = [_times(r)[step] for r in ok]
            k = fit_exponent(x, y)
            per = lambda r: _times(r)[step] * 1e3 / _connections(r) if _times(r)[step] is not None else None
            L.append(f"| {step} | {'—' if k is None else f'{k:.2f}'} | {_s(per(lo), 2)} | {_s(per(hi), 2)} |")
        if all(_memory_valid(r) for r in ok):
            mem = [max(r[s]["peak_mb"] for s in ("train", "explore", "compile")) for r in ok]
            k = fit_exponent(x, mem)
            L.append(f"| peak memory | {'—' if k is None else f'{k:.2f}'} | {mem[x.index(min(x))]:.0f} MB | "
                     f"{mem[x.index(max(x))]:.0f} MB |")
    L.append("")
    if not all(_memory_valid(r) for r in res["ladder"] + res["digits"] if "error" not in r):
        L += [history()["memory_not_valid"]["note"], ""]  # said under a table measured the old way
    L += ["### digits (64 inputs) with explore's default settings", "",
          "`approxmlp train --data digits --hidden ...`, `approxmlp compile` and `approxmlp explore` with its "
          "defaults (compile first: explore takes the exact design's netlist from the synthesis cache compile "
          "filled and synthesizes every front design). Accuracy: validation (what explore picks on) and test "
          "(reported); every design verified in RTL on the vectors given; EGFET area and power.", ""]
    L += ["| network | train s | search s | realize s (designs) | compile s | train -> explore -> compile | "
          "peak MB train / explore / compile | all verified |", "|---|---|---|---|---|---|---|---|"]
    for r in res["digits"]:
        if "error" in r:
            L.append(f"| digits {'-'.join(map(str, r['hidden']))} | failed: {r['error']} |")
            continue
        t = _times(r)
        total = t["train"] + r["explore"]["wall_s"] + t["compile"]
        L.append(f"| digits {_topology(r)} | {_s(t['train'])} | {_s(t['search'])} | {_s(t['realize'])} "
                 f"({r['explore']['designs']}) | {_s(t['compile'])} | {total / 60:.1f} min"
                 f"{'' if total < DIGITS_LIMIT_S else ' (over 20 min)'} | {_mb(r)} | "
                 f"{'yes' if r['explore']['verified'] and r['compile']['passed'] else '**no**'} |")
    L.append("")
    for r in res["digits"]:
        if "error" in r:
            continue
        e = r["explore"]
        ex_pt = next(p for p in e["points"] if p["exact"])
        L += [f"**digits {_topology(r)}** (accuracy: validation, picked on / test): exact "
              f"{ex_pt['validation_accuracy']:.4f} / {ex_pt['test_accuracy']:.4f}, {_a(ex_pt['area_cm2'])} cm²"]
        for b in e["budgets"]:
            if b["design"] is None:
                L[-1] += f"; ≤{b['max_loss']:.0%} loss: none"
            else:
                L[-1] += (f"; ≤{b['max_loss']:.0%} loss: {b['design']} {b['validation_accuracy']:.4f} / "
                          f"{b['test_accuracy']:.4f}, {_a(b['area_cm2'])} cm² ({b['area_reduction']:.1f}x)")
        L[-1] += "."
        L += ["", "| design | validation acc | test acc | cm² | mW | cells | vectors verified |",
              "|---|---|---|---|---|---|---|"]
        L += _front(r) + [""]
    return L


def section(shared: Path, out: Path, *, quick: bool = False, seed: int = 0) -> tuple[list[str], dict]:
    """Run everything; the markdown lines for BENCHMARKS.md and the raw results (for
    :mod:`flows.bench.run`)."""
    res = run_all(shared, out, quick=quick, seed=seed) | {"via": "make bench"}
    out.mkdir(parents=True, exist_ok=True)
    (out / "scaling.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    return markdown(res), res


def _provenance() -> dict:
    """The commit and date of a run on its own (``make bench`` gives its section the run's)."""
    return {"commit": commit(), "date": time.strftime("%Y-%m-%d")}


def ok(res: dict) -> bool:
    """Every network ran, every design verified, the digits rows within the limit."""
    rows = res["ladder"] + res["digits"]
    if any("error" in r for r in rows):
        return False
    if not all(r["explore"]["verified"] and r["compile"]["passed"] for r in rows):
        return False
    if res["quick"]:
        return True
    return all(r["train"]["wall_s"] + r["explore"]["wall_s"] + r["compile"]["wall_s"] < DIGITS_LIMIT_S
               for r in res["digits"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="Tiny training and search on Breast_Cancer 10-4-2 "
                    "and digits 64-3-10 (a smoke run).")
    ap.add_argument("--out", type=Path, default=REPO / "bench-out" / "scaling")
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared", help="Folder holding datasets/.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--report", type=Path, metavar="SCALING_JSON",
                    help="Only print the markdown of an earlier run's scaling.json.")
    ap.add_argument("--step", help=argparse.SUPPRESS)     # internal: one step, run by run_step
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.step:
        a.result.write_text(json.dumps(_child(json.loads(a.step))) + "\n")
        return 0
    if a.report:
        print("\n".join(markdown(json.loads(a.report.read_text()))))
        return 0
    if not (a.shared / "datasets").is_dir():
        ap.error(f"no reference data at {a.shared / 'datasets'}; pass --shared DIR")
    res = run_all(a.shared, a.out, quick=a.quick, seed=a.seed) | _provenance()
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "scaling.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    print("\n".join(markdown(res)))
    return 0 if ok(res) else 1


if __name__ == "__main__":
    sys.exit(main())
