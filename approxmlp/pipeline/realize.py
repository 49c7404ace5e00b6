"""Realize: IRs made into design folders, the one path `compile` and `explore` both end in.

`compile` realizes one IR (the model's), `explore` the exact IR and the chosen front; both
go through :func:`realize`: every design is emitted and written by one writer
(:func:`write_design_folder`), all of them are simulated in one Verilator build, each is
synthesized and proven, and each folder gets its ``report.json`` (one layout, read by
`verify`, `inspect` and `export`). The folders are made in a staging folder beside ``out``
that replaces it only when every design is complete: a failed or interrupted run leaves
no half-made design (an earlier run's stays whole).

A design folder (self-contained, like da4ml's):

* ``rtl/top.v``            the bespoke Verilog, with copies of the ``rtl/`` primitives it
  instantiates (``rtl/approxmlp_qrelu.v``, ...) so that the folder synthesizes elsewhere;
* ``ir.json``              the integer MLP it implements (reloadable, hashed in the RTL);
* ``quantizer.json``       how raw features become the input integers;
* ``vectors/test.npz``     test vectors: ``inputs``, ``golden`` classes, ``labels``
  (and ``vectors/test.csv``, the same for humans and other simulators);
* ``model.onnx``           the same design as ONNX (input codes in, class out; bit-exact);
* ``report.json`` / ``report.md``, and ``logs/`` (lint, simulation, synthesis); ``report.json``
  also records the sha256 of every other file (``files``), for `approxmlp verify`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..backend.verilog import class_width, emit_verilog
from ..backend.verilog.primitives import write_rtl
from ..core.golden import evaluate
from ..core.ir import MLP
from ..errors import ModelError
from ..progress import Progress, quiet, task
from .folder import COMPILE_MARKS, Staging, file_hashes, write_json, write_vectors
from .options import CompileOptions
from .steps import run_formal, run_synthesis, with_extra_vectors

REPORT_SCHEMA = "approxmlp-report/1"

#: Keys of the synthesis result a report also holds at its top level (what summaries read).
_FIGURES = ("area_cm2", "power_mw", "static_power_mw", "dynamic_power_mw", "cells", "cell_count", "luts",
            "carries", "ffs")


@dataclass(frozen=True, eq=False)
class Candidate:
    """An IR to make real. ``id`` names its folder below ``out`` ("": ``out`` itself,
    compile's one design); ``accuracy`` holds the figures its caller scored (on the
    training or validation data), copied into the report beside the test accuracy."""

    id: str
    ir: MLP
    accuracy: dict = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class DesignRecord:
    """A realized design: where its folder is, what its report says, and the test split's
    golden classes (``golden``) and the RTL's (``rtl_classes``, None unverified)."""

    id: str
    ir: MLP
    folder: Path
    report: dict
    golden: np.ndarray
    rtl_classes: np.ndarray | None


def realize(candidates: list[Candidate], out: Path, opts: CompileOptions, *, data, quantizer,
            marks: tuple[str, ...] = COMPILE_MARKS, source: Path | None = None,
            timings: dict[str, float] | None = None, progress: Progress = quiet) -> list[DesignRecord]:
    """Emit, write, verify (one build for all), synthesize and prove every candidate into
    ``out`` (see the module docstring). ``data`` supplies the test split and the report's
    data figures, ``quantizer`` the input codes; ``marks`` are the files that make an
    existing ``out`` approxmlp's to replace."""
    with Staging(out, marks=marks) as stage:
        records = _realize_in(candidates, stage.path, opts, data, quantizer, source, dict(timings or {}), progress)
        stage.commit()
    out = stage.out
    return [DesignRecord(r.id, r.ir, out / r.id if r.id else out, r.report, r.golden, r.rtl_classes)
            for r in records]


def write_design_folder(folder: Path, ir: MLP, quantizer, inputs: np.ndarray, golden: np.ndarray,
                        labels: np.ndarray | None, opts: CompileOptions, *, source: str | None = None) -> Path:
    """The files of a design folder that come from its IR alone: ``rtl/top.v``, ``ir.json``,
    ``quantizer.json`` and the test vectors. Returns the RTL's path."""
    rtl = write_rtl(folder / "rtl" / "top.v",
                    emit_verilog(ir, module=opts.module, registered=opts.registered, source=source))
    (folder / "ir.json").write_text(ir.dumps() + "\n")
    (folder / "quantizer.json").write_text(json.dumps(quantizer.to_json(), indent=1) + "\n")
    write_vectors(folder / "vectors", inputs, golden, labels)
    return rtl


def _realize_in(candidates: list[Candidate], root: Path, opts: CompileOptions, data, quantizer,
                source: Path | None, timings: dict[str, float], progress: Progress) -> list[DesignRecord]:
    from ..backend.lint import lint

    Xte, yte = quantizer(data.X_test), data.y_test
    reports, rtls, goldens = [], [], []
    many = len(candidates) > 1
    if many:
        progress(f"emitting and linting {len(candidates)} designs")
    t = time.perf_counter()
    with task(progress if many else None, "designs", len(candidates)) as bar:
        for c in candidates:
            folder = root / c.id
            golden = evaluate(c.ir, Xte).classes
            rtl = write_design_folder(folder, c.ir, quantizer, Xte, golden, yte, opts,
                                      source=source.name if source else None)
            report = _report(c, data, opts, source, golden)
            if opts.onnx:
                report["onnx"] = _onnx(c.ir, folder, Xte, progress)
            if opts.verify:
                if not many:
                    progress("linting the RTL (verilator --lint-only -Wall)")
                warnings = lint(rtl, opts.module)
                (folder / "logs").mkdir(exist_ok=True)
                (folder / "logs" / "lint.log").write_text("\n".join(warnings) + ("\n" if warnings else ""))
                report["verification"]["lint_warnings"] = len(warnings)
            reports.append(report)
            rtls.append(rtl)
            goldens.append(golden)
            bar.advance(1)
    timings["emit_s"] = time.perf_counter() - t
    rtl_classes: list[np.ndarray | None] = [None] * len(candidates)
    if opts.verify:
        t = time.perf_counter()
        rtl_classes = _verify(candidates, rtls, goldens, reports, Xte, yte, root, opts, progress)
        timings["verify_s"] = time.perf_counter() - t
    if opts.synth:
        t = time.perf_counter()
        _synthesize(candidates, rtls, reports, root, opts, progress)
        timings["synth_s"] = time.perf_counter() - t
    if opts.formal:
        t = time.perf_counter()
        _prove(candidates, rtls, reports, root, opts, progress)
        timings["formal_s"] = time.perf_counter() - t
    from ..backend.report import markdown

    records = []
    for c, report, golden, rc in zip(candidates, reports, goldens, rtl_classes):
        folder = root / c.id
        report["timings"] = {k: round(v, 3) for k, v in timings.items()}
        (folder / "report.md").write_text(markdown(report))
        report["files"] = file_hashes(folder)
        write_json(folder / "report.json", report)
        records.append(DesignRecord(c.id, c.ir, folder, report, golden, rc))
    return records


def _report(c: Candidate, data, opts: CompileOptions, source: Path | None, golden: np.ndarray) -> dict:
    """A design's report before the back ends have run: what it is and where it comes from."""
    ir = c.ir
    report = {"schema": REPORT_SCHEMA, "approxmlp_version": __version__}
    if c.id:
        report["id"] = c.id
    report |= {
        "target": opts.target,
        "model": {"source": str(source) if source else None, "name": ir.name,
                  "topology": ir.topology_str, "input_bits": ir.input_bits,
                  "weight_bits": opts.weight_bits, "act_bits": opts.act_bits,
                  "ir_sha256": ir.digest, "exact": ir.is_exact, "meta": dict(ir.meta)},
        "ir_sha256": ir.digest,
        "data": {"spec": data.name, "train": int(len(data.y_train)), "test": int(len(data.y_test)),
                 "classes": int(data.n_classes)},
        "accuracy": {"golden": float(np.mean(golden == data.y_test)), **c.accuracy, "rtl": None},
        "verification": {"vectors": 0, "mismatches": None, "passed": None, "skipped": not opts.verify},
        "rtl": "rtl/top.v",
        "registered": opts.registered,
        "formal": None,  # --no-formal: the report says so
    }
    return report


def _onnx(ir: MLP, folder: Path, codes: np.ndarray, progress: Progress) -> dict:
    from ..backend.onnx_export import check_exact, write_onnx

    try:
        check_exact(ir)
    except ModelError as exc:   # accumulators past 2**53: no exact float64 graph
        return {"skipped": str(exc)}
    progress("writing model.onnx (checked with onnxruntime on every test vector)")
    return write_onnx(ir, folder / "model.onnx", check_codes=codes)


def _verify(candidates, rtls, goldens, reports, Xte, yte, root: Path, opts: CompileOptions,
            progress: Progress) -> list[np.ndarray]:
    """Simulate every design in one Verilator build, on the test vectors and the extra ones
    (:func:`~approxmlp.pipeline.steps.with_extra_vectors`); several designs get their module
    renamed ``<id>_top`` so that they can share the build."""
    from ..backend.sim_files import SimDesign
    from ..backend.simulate import simulate
    from ..backend.tools import verilator_version

    sims = []
    for c, rtl, golden, report in zip(candidates, rtls, goldens, reports):
        X, y, report["verification"]["vectors_by_kind"] = with_extra_vectors(c.ir, Xte, golden)
        module = f"{c.id}_{opts.module}" if len(candidates) > 1 else opts.module
        text = rtl.read_text() if module == opts.module else emit_verilog(c.ir, module=module,
                                                                            registered=opts.registered)
        sims.append(SimDesign(module=module, verilog=text, inputs=X, expected=y, input_bits=c.ir.input_bits,
                              out_width=class_width(c.ir.n_classes), registered=opts.registered,
                              primitives_dir=rtl.parent))
    progress(f"verifying {len(sims)} designs on {len(Xte)} vectors each" if len(sims) > 1 else
             f"simulating {len(sims[0].inputs)} vectors (cocotb + Verilator)")
    classes = []
    with tempfile.TemporaryDirectory(prefix="approxmlp-sim-") as build:
        results = simulate(sims, Path(build), progress=progress)
        for c, res, report in zip(candidates, results, reports):
            shutil.copyfile(res.log, root / c.id / "logs" / "sim.log")
            ver = report["verification"]
            mism = [dict(sample=m.sample, inputs=list(m.inputs), rtl=m.rtl, golden=m.golden) for m in res.mismatches]
            ver.update({"vectors": int(res.vectors), "mismatches": len(mism),
                        "passed": res.ok and not ver["lint_warnings"], "first_mismatches": mism[:10],
                        "simulator": verilator_version(), "skipped": False})
            classes.append(res.rtl[:len(Xte)])
            report["accuracy"]["rtl"] = float(np.mean(classes[-1] == yte))
    return classes


def _each_design(n: int, done: str, progress: Progress, work) -> list:
    """``work(k)`` for each of ``n`` designs, as many at once as there are cores (each runs
    Yosys processes of its own), in order; a bar of ``done`` designs when there are several."""
    with task(progress if n > 1 else None, done, n) as bar:
        def one(k: int):
            res = work(k)
            bar.advance(1)
            return res

        with ThreadPoolExecutor(max_workers=_workers()) as pool:
            return list(pool.map(one, range(n)))


def _synthesize(candidates, rtls, reports, root: Path, opts: CompileOptions, progress: Progress) -> None:
    progress(f"synthesizing {len(candidates)} designs for {opts.target}" if len(candidates) > 1 else
             f"synthesizing for {opts.target} (Yosys + ABC)")
    syntheses = _each_design(len(candidates), "synthesized", progress,
                             lambda k: run_synthesis(rtls[k], opts, root / candidates[k].id / "logs"))
    for report, syn in zip(reports, syntheses):
        report["synthesis"] = syn
        report |= {key: syn[key] for key in _FIGURES if syn.get(key) is not None}


def _prove(candidates, rtls, reports, root: Path, opts: CompileOptions, progress: Progress) -> None:
    many = len(candidates) > 1
    if many:
        progress(f"proving {len(candidates)} designs: RTL = reference, netlist = RTL (Yosys and ABC)")
    # two Yosys processes per design, one after the other; designs side by side
    proofs = _each_design(len(candidates), "proven", progress,
                          lambda k: run_formal(candidates[k].ir, rtls[k], root / candidates[k].id, reports[k],
                                               registered=opts.registered, module=opts.module, auto=True,
                                               max_connections=opts.formal_max_connections,
                                               progress=quiet if many else progress))
    for report, proof in zip(reports, proofs):
        report["formal"] = proof
        if proof and proof["counterexample"]:
            report["verification"]["passed"] = False  # a refuted design is never picked


def _workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))
