"""Shared subexpressions against per-neuron CSD, on the exact models of a bench run.

    python -m flows.bench.sharing [--out bench-out] [--jobs 2]

Each set's exact integer model (``OUT/<set>/compile/ir.json``) is emitted twice, with the
digits of each layer shared (:mod:`approxmlp.core.sharing`, what ``compile`` builds) and
without (every constant multiplier on its own, the emitter before sharing), and both are
synthesized by the same flows: EGFET area, iCE40 and xc7 LUTs. The shared RTL is linted
and proven (RTL = reference, netlist = RTL). The figures go to ``OUT/sharing.json`` and,
as the "Shared subexpressions" section, into BENCHMARKS.md (``make bench`` runs this step;
run on its own it says at which commit).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from flows.bench.common import REPO, keep_standalone, log, provenance

TARGETS = ("printed", "fpga-ice40", "fpga-xc7")
#: Seconds per proof (as flows/bench/proofs.py).
TIMEOUT_S = 120.0


def _one(folder: Path, work: Path, timeout: float, targets: tuple[str, ...]) -> dict:
    """Both emissions of one exact model, synthesized; the shared one linted and proven."""
    from approxmlp.backend import formal
    from approxmlp.backend.lint import lint
    from approxmlp.backend.synth import synthesize
    from approxmlp.backend.verilog import emit_verilog
    from approxmlp.backend.verilog.primitives import write_rtl
    from approxmlp.core.irfile import load_ir
    from approxmlp.core.ranges import analyze
    from approxmlp.core.sharing import share_layer

    ir = load_ir(folder)
    row: dict = {"set": folder.parent.name, "topology": ir.topology_str,
                 "shared_terms": sum(len(share_layer(layer).terms) for layer in analyze(ir))}
    for share in (False, True):
        d = work / ("shared" if share else "plain")
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        rtl = write_rtl(d / "top.v", emit_verilog(ir, share=share))
        key = "shared" if share else "plain"
        t = time.perf_counter()
        for target in targets:
            r = synthesize(rtl, "top", target, d / f"syn-{target}", cache=False)
            row[f"{key}_{target}"] = r.area_cm2 if target == "printed" else r.luts
        row[f"{key}_synth_s"] = round(time.perf_counter() - t, 1)
        if share:
            row["lint"] = len(lint(rtl, "top"))
            netlist = d / "syn-printed" / "printed.mapped.v"
            p = formal.prove_design(ir, rtl, netlist=netlist, target="printed", timeout=timeout, workdir=d / "formal")
            row["proof"] = {"rtl_vs_reference": p["rtl_vs_reference"], "netlist_vs_rtl": p["netlist_vs_rtl"],
                            "seconds": p["seconds"]}
    return row


def run(out: Path, *, jobs: int = 2, timeout: float = TIMEOUT_S, targets: tuple[str, ...] = TARGETS) -> dict:
    """Every set of the run kept in ``out``; the caller saves the result as ``out/sharing.json``.
    ``targets``: the flows to synthesize with (``make bench --quick``, a smoke run: EGFET only)."""
    folders = sorted(p.parent for p in out.glob("*/compile/ir.json"))
    log(f"sharing: {len(folders)} exact models")
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        rows = list(pool.map(lambda f: _one(f, out / "sharing" / f.parent.name, timeout, targets), folders))
    return {"rows": rows, "wall_s": round(time.perf_counter() - t0, 1), "timeout_s": timeout}


def markdown(res: dict) -> list[str]:
    """The "Shared subexpressions" section of BENCHMARKS.md."""
    if not res or not res.get("rows"):
        return []
    where = provenance(res)
    L = ["## Shared subexpressions", "",
         "Each set's exact model, emitted with every layer's digit pairs shared (what `compile` builds, "
         "`core/sharing.py`) and with every constant multiplier on its own (per-neuron CSD, the emitter "
         "before sharing), synthesized by the same flows; the shared RTL linted (`verilator -Wall`) and "
         f"proven (README, *Formal equivalence*; at most {res['timeout_s']:g} s a proof).{where}", "",
         "| data set | topology | shared terms | EGFET cm² per-neuron / shared | iCE40 LUT4 | xc7 LUTs "
         "| lint | RTL = reference, netlist = RTL |",
         "|---|---|---|---|---|---|---|---|"]
    ratios = []
    for r in res["rows"]:
        a, b = r["plain_printed"], r["shared_printed"]
        ratios.append(b / a)
        pr = r["proof"]
        fpga = {t: f"{r[f'plain_{t}']} / {r[f'shared_{t}']}" if f"plain_{t}" in r else "not run"
                for t in ("fpga-ice40", "fpga-xc7")}
        L.append(f"| {r['set']} | {r['topology']} | {r['shared_terms']} | {a:.2f} / {b:.2f} ({b / a - 1:+.0%}) "
                 f"| {fpga['fpga-ice40']} | {fpga['fpga-xc7']} "
                 f"| {'clean' if not r['lint'] else str(r['lint']) + ' findings'} "
                 f"| {pr['rtl_vs_reference']}, {pr['netlist_vs_rtl']} ({pr['seconds']:.0f} s) |")
    ratios.sort()
    L += ["", f"EGFET area, shared over per-neuron: median {ratios[len(ratios) // 2]:.3f}, "
              f"from {ratios[0]:.3f} to {ratios[-1]:.3f}; {res['wall_s'] / 60:.1f} min in all.", ""]
    return L


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "bench-out", help="A finished bench run's work folder.")
    ap.add_argument("--jobs", type=int, default=2, help="Models at a time.")
    ap.add_argument("--timeout", type=float, default=TIMEOUT_S, help="Seconds per proof.")
    a = ap.parse_args(argv)
    if not any(a.out.glob("*/compile/ir.json")):
        print(f"error: no exact models under {a.out}/*/compile; run `make bench` first", file=sys.stderr)
        return 2
    res = run(a.out, jobs=a.jobs, timeout=a.timeout)
    res = keep_standalone(a.out, "sharing.json", res, "python -m flows.bench.sharing", markdown)
    bad = [r["set"] for r in res["rows"] if "counterexample" in json.dumps(r["proof"]) or r["lint"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
