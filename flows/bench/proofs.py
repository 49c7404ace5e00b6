"""Formal proofs of every design of a bench run: RTL = reference and netlist = RTL (EGFET).

    python -m flows.bench.proofs [--out bench-out] [--timeout 60] [--jobs 2]

Every design folder a run kept (``OUT/<set>/explore/designs/*``: the exact baseline, the
front, the seeds) gets both proofs of :mod:`approxmlp.backend.formal`, each with
``--timeout`` seconds: ``proven``, a counterexample, or ``not proven within N s``. The
counts and times per set go to ``OUT/proofs.json`` and, as the "Formal proofs" section,
into BENCHMARKS.md (``make bench`` runs this step after the data sets; run on its own, it
proves the designs of a finished run and the section says at which commit).
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from flows.bench.common import REPO, keep_standalone, log, provenance

KINDS = ("rtl_vs_reference", "netlist_vs_rtl")
#: Seconds per proof in the bench (as explore's default run: formal.AUTO_TIMEOUT_S).
TIMEOUT_S = 120.0


def _prove(folder: Path, timeout: float) -> dict:
    """Both proofs of one design folder: per proof its status and seconds."""
    from approxmlp.backend import formal
    from approxmlp.core.irfile import load_ir

    ir = load_ir(folder)
    rtl = folder / "rtl" / "top.v"
    netlist = folder / "logs" / "netlist.v"
    a = formal.prove_rtl_vs_reference(ir, rtl, folder / "logs" / "formal" / KINDS[0], timeout=timeout)
    b = (formal.prove_netlist_vs_rtl(ir, rtl, netlist, "printed", folder / "logs" / "formal" / KINDS[1],
                                     timeout=timeout)
         if netlist.is_file() else formal.skipped("no netlist"))
    return {"design": folder.name, "connections": formal.connections(ir),
            KINDS[0]: {"status": a.status, "seconds": round(a.seconds, 2), "text": a.text},
            KINDS[1]: {"status": b.status, "seconds": round(b.seconds, 2), "text": b.text}}


def run(out: Path, *, timeout: float = TIMEOUT_S, jobs: int = 2) -> dict:
    """Prove every design of the run kept in ``out``; the per-set results (the caller
    saves them as ``out/proofs.json``, with its provenance)."""
    sets = sorted({p.parents[3] for p in out.glob("*/explore/designs/*/ir.json")})
    res: dict = {"timeout_s": timeout, "sets": {}}
    t0 = time.perf_counter()
    for s in sets:
        folders = sorted(p.parent for p in (s / "explore" / "designs").glob("*/ir.json"))
        log(f"proofs: {s.name}, {len(folders)} designs")
        t = time.perf_counter()
        with ThreadPoolExecutor(max_workers=jobs) as pool:  # each proof is a Yosys process
            designs = list(pool.map(lambda f: _prove(f, timeout), folders))
        res["sets"][s.name] = {"designs": designs, "wall_s": round(time.perf_counter() - t, 1)}
    res["wall_s"] = round(time.perf_counter() - t0, 1)
    return res


def _cell(designs: list[dict], kind: str) -> str:
    st = [d[kind]["status"] for d in designs]
    secs = [d[kind]["seconds"] for d in designs if d[kind]["status"] != "skipped"]
    parts = [f"{st.count('proven')} proven"]
    for status, word in (("timeout", "not proven in time"), ("counterexample", "COUNTEREXAMPLE"),
                         ("skipped", "skipped")):
        if st.count(status):
            parts.append(f"{st.count(status)} {word}")
    if secs:
        parts.append(f"{sum(secs):.0f} s, slowest {max(secs):.1f} s")
    return ", ".join(parts)


def markdown(res: dict) -> list[str]:
    """The "Formal proofs" section of BENCHMARKS.md."""
    if not res:
        return []
    where = provenance(res, ", on the designs that run kept")
    L = ["## Formal proofs", "",
         "Every design of every set above (the exact baseline, the front, the seeds), both proofs of "
         "`approxmlp verify --formal` (README, *Formal equivalence*): the RTL against the reference circuit "
         "written straight from the IR, and the EGFET netlist against the RTL; at most "
         f"{res['timeout_s']:g} s each, two proofs at a time.{where}", "",
         "| data set | designs | connections | RTL = reference | netlist = RTL | wall s |", "|---|---|---|---|---|---|"]
    for name, s in res["sets"].items():
        d = s["designs"]
        conns = [x["connections"] for x in d]
        L.append(f"| {name} | {len(d)} | {min(conns)}-{max(conns)} | {_cell(d, KINDS[0])} | {_cell(d, KINDS[1])} "
                 f"| {s['wall_s']:.0f} |")
    every = [x for s in res["sets"].values() for x in s["designs"]]
    proven = sum(x[k]["status"] == "proven" for x in every for k in KINDS)
    L += ["", f"{proven} of {2 * len(every)} proofs proven, {res['wall_s'] / 60:.1f} min in all.", ""]
    return L


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "bench-out", help="A finished bench run's work folder.")
    ap.add_argument("--timeout", type=float, default=TIMEOUT_S, help="Seconds per proof.")
    ap.add_argument("--jobs", type=int, default=2, help="Proofs at a time.")
    a = ap.parse_args(argv)
    if not any(a.out.glob("*/explore/designs/*/ir.json")):
        print(f"error: no design folders under {a.out}/*/explore/designs; run `make bench` first", file=sys.stderr)
        return 2
    res = run(a.out, timeout=a.timeout, jobs=a.jobs)
    res = keep_standalone(a.out, "proofs.json", res, "python -m flows.bench.proofs", markdown)
    bad = [x for s in res["sets"].values() for x in s["designs"] for k in KINDS if x[k]["status"] == "counterexample"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
