"""The back-end steps a design folder goes through, each keeping its logs in the folder.

Lint and simulation (:func:`run_verification`), synthesis (:func:`run_synthesis`) and the
proofs (:func:`run_formal`), each returning the dict its report entry holds. Shared by
:mod:`~approxmlp.pipeline.realize` (which runs them over many designs at once) and
`approxmlp verify` (which re-runs them on one folder).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..backend.verilog import class_width
from ..core.golden import evaluate
from ..core.ir import MLP
from ..progress import Progress, quiet
from .folder import netlist_of
from .options import CompileOptions


def with_extra_vectors(ir: MLP, inputs: np.ndarray, expected: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """The test vectors followed by :func:`approxmlp.core.vectors.extra_vectors` (random
    inputs, corners, QReLU edges, argmax near-ties) with their golden classes, and how
    many of each kind (``exact_ties``: how many vectors in all tie on the best score)."""
    from ..core.vectors import exact_ties, extra_vectors

    extra = extra_vectors(ir)
    X = np.concatenate([np.asarray(inputs, dtype=np.int64)] + list(extra.values()))
    y = np.concatenate([np.asarray(expected, dtype=np.int64)] + [evaluate(ir, v).classes for v in extra.values()])
    kinds = {"test": int(len(inputs))} | {k: int(len(v)) for k, v in extra.items()}
    kinds["exact_ties"] = exact_ties(ir, X)
    return X, y, kinds


def run_verification(ir: MLP, rtl: Path, inputs: np.ndarray, expected: np.ndarray, logs: Path, *,
                     module: str, registered: bool, progress: Progress = quiet) -> dict:
    """Lint with ``verilator -Wall``, then simulate with cocotb every test vector and the
    extra vectors of :func:`with_extra_vectors`; a dict for the report (``rtl_classes``:
    the RTL's classes of the test vectors)."""
    from ..backend.lint import lint
    from ..backend.sim_files import SimDesign
    from ..backend.simulate import simulate
    from ..backend.tools import verilator_version

    progress("linting the RTL (verilator --lint-only -Wall)")
    warnings = lint(rtl, module)
    logs.mkdir(parents=True, exist_ok=True)
    (logs / "lint.log").write_text("\n".join(warnings) + ("\n" if warnings else ""))
    X, y, kinds = with_extra_vectors(ir, inputs, expected)
    design = SimDesign(module=module, verilog=rtl.read_text(), inputs=X, expected=y,
                       input_bits=ir.input_bits, out_width=class_width(ir.n_classes), registered=registered,
                       primitives_dir=rtl.parent)
    with tempfile.TemporaryDirectory(prefix="approxmlp-sim-") as build:
        res = simulate([design], Path(build), progress=progress)[0]
        shutil.copyfile(res.log, logs / "sim.log")
    mism = [dict(sample=m.sample, inputs=list(m.inputs), rtl=m.rtl, golden=m.golden) for m in res.mismatches]
    return {"vectors": int(res.vectors), "vectors_by_kind": kinds, "mismatches": len(mism),
            "passed": res.ok and not warnings, "lint_warnings": len(warnings), "first_mismatches": mism[:10],
            "simulator": verilator_version(), "rtl_classes": res.rtl[:len(inputs)]}


def run_formal(ir: MLP, rtl: Path, folder: Path, report: dict, *, registered: bool, module: str = "top",
               timeout: float | None = None, auto: bool = False, max_connections: int | None = None,
               progress: Progress = quiet) -> dict:
    """The report's ``formal`` entry for the design in ``folder`` (its netlist and target
    read from ``report``). ``auto``: the default run of compile and explore, which skips
    networks of more than ``max_connections`` (default
    :data:`~approxmlp.backend.formal.AUTO_MAX_CONNECTIONS`) weights and gives each proof
    :data:`~approxmlp.backend.formal.AUTO_TIMEOUT_S`."""
    from ..backend import formal

    limit = formal.AUTO_MAX_CONNECTIONS if max_connections is None else max_connections
    if auto and formal.connections(ir) > limit:
        why = formal.skipped(f"{formal.connections(ir)} connections, more than the "
                             f"{limit} proven by default; run `approxmlp verify DIR --formal`")
        return formal.result_entry(why, why)
    if timeout is None:
        timeout = formal.AUTO_TIMEOUT_S if auto else formal.DEFAULT_TIMEOUT_S
    progress(f"proving RTL = reference and netlist = RTL (Yosys and ABC, at most {timeout:g} s each)")
    return formal.prove_design(ir, rtl, netlist=netlist_of(folder, report), target=report.get("target"),
                               registered=registered, module=module, timeout=timeout)


def formal_message(entry: dict) -> str:
    """The one line that says which proof found a counterexample."""
    for key, what in (("rtl_vs_reference", "the RTL differs from the IR's reference circuit"),
                      ("netlist_vs_rtl", "the synthesized netlist differs from the RTL")):
        if str(entry.get(key, "")).startswith("counterexample"):
            return f"formal: {what}: {entry[key]}"
    return ""


def run_synthesis(rtl: Path, opts: CompileOptions, dest: Path, progress: Progress = quiet) -> dict:
    """Synthesize in a scratch folder and keep what a reader needs in ``dest`` (the Yosys
    log, the statistics, the mapped netlist); the report names them relative to the
    design folder (``dest``'s parent), so they stay valid when the folder moves."""
    from ..backend.synth import synthesize

    progress(f"synthesizing for {opts.target} (Yosys + ABC)")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="approxmlp-synth-") as work:
        res = synthesize(rtl, opts.module, opts.target, Path(work), clock_hz=opts.clock_hz)
        out = res.to_json()
        for key, name in (("log", "yosys.log"), ("stat_json", "synth_stat.json"), ("netlist", "netlist.v")):
            src = getattr(res, key, None)
            if src is not None and Path(src).is_file():
                shutil.copyfile(src, dest / name)
                out[key] = f"{dest.name}/{name}"
            else:
                out.pop(key, None)
        if opts.routes:
            out["pnr"] = _place_and_route(rtl, opts, Path(work), dest, progress)
    out.pop("liberty", None)
    return out


def _place_and_route(rtl: Path, opts: CompileOptions, work: Path, dest: Path, progress: Progress) -> dict:
    """nextpnr on the smallest iCE40 that fits (:mod:`approxmlp.backend.pnr`); its log kept
    in ``dest`` beside Yosys'."""
    from ..backend.pnr import place_and_route

    progress("placing and routing on iCE40 (nextpnr)")
    res = place_and_route(rtl, opts.module, work)
    out = res.to_json()
    if res.log.is_file():
        shutil.copyfile(res.log, dest / "nextpnr.log")
        out["log"] = f"{dest.name}/nextpnr.log"
    else:
        out.pop("log", None)
    return out
