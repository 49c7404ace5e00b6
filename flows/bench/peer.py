"""approxmlp against a peer generator, da4ml, on the same integer models and the same flows.

    python -m flows.bench.peer [--out bench-out] [--sets Seeds,Cardio] [--jobs 1] [--quick]
    python -m flows.bench.peer --variant     # the argmax diagnostic, added to OUT/peer.json
    python -m flows.bench.peer --render      # OUT/peer.md again from OUT/peer.json

All ten models: 32 min (nice 19, one model at a time, 2 cores shared with other work);
``--variant`` 3 min.

The peer: da4ml ("Distributed Arithmetic for Machine Learning", PyPI ``da4ml`` 0.6.0,
LGPL, a benchmark-only dependency: ``pip install da4ml==0.6.0``), which turns constant
matrix-vector multiplications into shared shift-and-add networks (its CMVM solver) and
emits fully parallel Verilog from a traced fixed-point program.

The models. Each exact model of a bench run (``OUT/<set>/compile/ir.json``, nine sets) and
the digits 64-16-10 model of the scaling benchmark (``OUT/scaling/digits-16/compile``,
written by ``python -m flows.bench.scaling``; on its own, a few minutes:
``approxmlp train --data digits --hidden 16 --out OUT/scaling/digits-16/model.pt`` then
``approxmlp compile OUT/scaling/digits-16/model.pt --data digits --out
OUT/scaling/digits-16/compile``). Only exact IRs are compared (da4ml has no counterpart of
the approximations).

approxmlp's side: ``emit_verilog(ir)`` (what ``compile`` builds), module ``top``.

da4ml's side, built by da4ml from the same integer IR with its functional API (the "explicit
symbolic tracing" flow of its documentation), default solver and hardware settings (CMVM
method ``wmc``, sharing on, no delay constraint, ``HWConfig(1, -1, -1)``: adders costed by
their bits, no pipelining; combinational as approxmlp's):

* inputs ``FixedVariableArrayInput(n_inputs)`` quantized to unsigned ``input_bits``-bit integers
  (``quantize(x, 0, input_bits, 0)``);
* per layer: ``x @ W.T`` (traced as one CMVM, solved by da4ml's solver with sharing),
  ``+ b`` (constant adds), ``* 2**-shift`` (free rescale), then for QReLU da4ml's saturating
  quantizer ``quantize(v, 0, act_bits, 0, 'SAT', 'TRN')`` (truncation = floor, then clamp to
  ``0 .. 2**act_bits-1``), for a linear layer with a shift a wrapping ``quantize(v, 1, 62,
  0)`` (the floor only; da4ml narrows the width to the value range);
* the argmax, ties to the LOWER index, as a binary tree of da4ml's own comparison: per node
  ``d = s_left - s_right`` and ``d.msb_mux(right, left)`` for score and index (the right
  side wins only if strictly greater), the pattern of da4ml's own ``max_of``; no node when
  the value ranges already decide it. So da4ml expresses the whole network; nothing of
  approxmlp's RTL is used.
* ``comb_trace`` then ``RTLModel(..., flavor='verilog', latency_cutoff=-1).write()``: the
  generated module ``da4ml_mlp`` (ports ``model_inp``, ``model_out``) and the da4ml library
  modules it instantiates (``shift_adder``, ``mux``, ``negative``...) are put in one file
  after a wrapper: module ``top`` with approxmlp's ports (``inp``: the features packed as
  unsigned ``input_bits``-bit fields, feature ``i`` at ``inp[input_bits*i +: input_bits]``,
  the packing da4ml uses too; ``out``: the class index, ``class_width`` bits, zero-extended
  if da4ml's range analysis proves a narrower one). The wrapper is wiring only.

Checks. Both RTLs are simulated (cocotb + Verilator, approxmlp's ``simulate``: any design
with the ``inp``/``out`` ports) against the golden model on the same vectors: the set's
test vectors (``vectors/test.npz``, checked against ``quantizer.json`` applied to the
shared split where one exists), the extra vectors of approxmlp's own verification (2,000
random, corners, QReLU edges, argmax near-ties) and :data:`N_RANDOM` more random inputs.
A mismatch is reported in the row and the table, not hidden; da4ml's bit-exact interpreter
(``CombLogic.predict``) is run on the same vectors too.

Measures, both RTLs by the same flows: EGFET area (``synthesize(..., "printed")``), iCE40
and xc7 synthesis LUTs, and iCE40 place and route (``approxmlp.backend.pnr``: logic cells
and Fmax in its harness, smallest device that fits). Writes ``OUT/peer.json`` and the
section "## Peer: da4ml" for BENCHMARKS.md as ``OUT/peer.md`` (also printed); every run,
``--quick`` and ``--sets`` too, replaces them (as ``flows.bench.sharing`` does its own).
``--quick``: EGFET only, one small set (Balance unless ``--sets``); ``--render``: rewrite
``OUT/peer.md`` from the kept ``OUT/peer.json`` without running anything; ``--variant``: a
diagnostic added to the kept rows, not the comparison: da4ml's logits (the network traced
up to the last layer) under a plain-Verilog argmax (same tree, signed ``>=``, ties to the
lower index), verified the same way and synthesized on EGFET, to show how much of a
difference the argmax makes.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from flows.bench.common import REPO, area, keep_standalone, log, provenance

TARGETS = ("printed", "fpga-ice40", "fpga-xc7")
SIDES = ("approxmlp", "da4ml")
#: Random input vectors beyond the extra vectors of approxmlp's verification (seeded).
N_RANDOM = 3000
#: The digits 64-16-10 model of the scaling benchmark, relative to OUT.
DIGITS = Path("scaling") / "digits-16" / "compile"
#: Where the shared reference splits are (for the test-vector cross-check).
SPLITS = REPO.parent / "shared" / "datasets" / "splits"
#: Module name of da4ml's generated network inside the wrapper ``top``.
DA4ML_MODULE = "da4ml_mlp"
QUICK_SET = "Balance"

#: cocotb's runner changes os.environ and sys.path for the length of a run: one at a time.
_SIM_LOCK = threading.Lock()
#: da4ml's tracer keeps module-level state (table registry, id generator).
_TRACE_LOCK = threading.Lock()


# ------------------------------------------------------------------------------ the models
def models(out: Path, sets: list[str] | None = None) -> list[tuple[str, Path]]:
    """(name, compile folder) of every exact model under ``out``: the bench sets, then digits.
    ``sets``: names to keep (case-insensitive); an unknown name is an error."""
    found = [(p.parent.parent.name, p.parent) for p in sorted(out.glob("*/compile/ir.json"))]
    if (out / DIGITS / "ir.json").is_file():
        found.append(("digits", out / DIGITS))
    if sets:
        want = {s.lower() for s in sets}
        unknown = want - {n.lower() for n, _ in found}
        if unknown:
            raise SystemExit(f"error: no model named {', '.join(sorted(unknown))} under {out} "
                             f"(found: {', '.join(n for n, _ in found)})")
        found = [(n, f) for n, f in found if n.lower() in want]
    return found


# ------------------------------------------------------------------------------ da4ml's side
def _argmax_lower(scores: list) -> object:
    """Index of the largest score, ties to the lower index, in da4ml's traced operations:
    a binary tree whose right side wins a node only if strictly greater (``d = l - r``
    negative, read by ``msb_mux`` on the sign bit), as da4ml's own ``max_of`` compares."""
    from da4ml.trace import FixedVariable

    hw = scores[0].hwconf
    nodes = [(s, FixedVariable.from_const(j, hwconf=hw)) for j, s in enumerate(scores)]
    while len(nodes) > 1:
        nxt = []
        for k in range(0, len(nodes) - 1, 2):
            (sl, il), (sr, ir_) = nodes[k], nodes[k + 1]
            d = sl - sr
            if d.low >= 0:            # the ranges decide: left >= right always
                nxt.append((sl, il))
            elif d.high < 0:          # right > left always
                nxt.append((sr, ir_))
            else:
                nxt.append((d.msb_mux(sr, sl), d.msb_mux(ir_, il)))
        if len(nodes) % 2:
            nxt.append(nodes[-1])
        nodes = nxt
    return nodes[0][1]


def da4ml_comb(ir, argmax: str = "da4ml"):
    """The whole network traced with da4ml (see the module docstring): its ``CombLogic``.
    ``argmax="verilog"``: the network up to the last layer's outputs (the logits) only, for
    :func:`argmax_wrapper` (the diagnostic variant)."""
    from da4ml.trace import FixedVariableArrayInput, comb_trace
    from da4ml.trace.ops import quantize

    if not ir.is_exact:
        raise ValueError("da4ml is compared on exact models only (it has no approximations)")
    if max(abs(w) for layer in ir.layers for row in layer.weights for w in row) >= 1 << 24:
        raise ValueError("weights of 24 bits or more do not pass da4ml's float32 CMVM kernel exactly")
    with _TRACE_LOCK:
        inp = FixedVariableArrayInput(ir.n_inputs)
        x = quantize(inp, 0, ir.input_bits, 0)
        for layer in ir.layers:
            acc = x @ layer.weight_matrix.T.astype(np.float64) + layer.bias_vector.astype(np.float64)
            v = acc * 2.0 ** -layer.shift
            if layer.activation == "qrelu":
                x = quantize(v, 0, layer.act_bits, 0, "SAT", "TRN")
            else:
                x = quantize(v, 1, 62, 0) if layer.shift else v
        if argmax == "verilog":
            return comb_trace(inp, list(x._vars), keep_dead_inputs=True)
        out = _argmax_lower(list(x._vars))
        comb = comb_trace(inp, [out], keep_dead_inputs=True)
    if list(comb.out_shifts) != [0] or list(comb.out_negs) != [False]:
        raise ValueError(f"da4ml's class output is scaled ({comb.out_shifts}, {comb.out_negs}); not an index")
    return comb


_INSTANCE = re.compile(r"\b([A-Za-z_]\w*)\s+#\(")


def wrapper(ir, model_in: int, model_out: int) -> str:
    """Module ``top`` with approxmlp's ports around da4ml's module: wiring only."""
    from approxmlp.backend.verilog import class_width

    in_w, out_w = ir.n_inputs * ir.input_bits, class_width(ir.n_classes)
    if model_in != in_w:
        raise ValueError(f"da4ml's model_inp has {model_in} bits, approxmlp's inp {in_w}")
    if model_out > out_w:
        raise ValueError(f"da4ml's model_out has {model_out} bits, more than a class index ({out_w})")
    pad = out_w - model_out
    tie = f"{{{pad}'d0, y}}" if pad else "y"
    return "\n".join([
        "`timescale 1ns / 1ps",
        f"// Wrapper by flows/bench/peer.py: da4ml {_da4ml_version()}'s network ({DA4ML_MODULE}, below) with",
        f"// approxmlp's ports: inp = {ir.n_inputs} x {ir.input_bits}-bit features, feature i at "
        f"inp[{ir.input_bits}*i +: {ir.input_bits}]; out = class index.",
        "module top (",
        f"    input  wire [{in_w - 1}:0] inp,",
        f"    output wire [{out_w - 1}:0] out",
        ");",
        f"    wire [{model_out - 1}:0] y;",
        f"    {DA4ML_MODULE} u_da4ml (.model_inp(inp), .model_out(y));",
        f"    assign out = {tie};",
        "endmodule",
        "",
    ])


def argmax_wrapper(ir, model_in: int, out_qints) -> str:
    """The diagnostic variant's ``top``: da4ml's logits (``model_out``, one field per class as
    da4ml packs them: ``minimal_kif`` bits, LSB weight ``2**-f``) and a plain-Verilog argmax,
    the same tree as :func:`_argmax_lower` (pairs, the right side wins only if strictly
    greater), on sign-extended integer scores."""
    from da4ml.types import minimal_kif

    from approxmlp.backend.verilog import class_width

    in_w, out_w = ir.n_inputs * ir.input_bits, class_width(ir.n_classes)
    if model_in != in_w:
        raise ValueError(f"da4ml's model_inp has {model_in} bits, approxmlp's inp {in_w}")
    kifs = [tuple(int(v) for v in minimal_kif(q)) for q in out_qints]
    if any(f > 0 for _, _, f in kifs):
        raise ValueError(f"da4ml's logits have fraction bits ({kifs}); they should be integers")
    W = max(k + i for k, i, _ in kifs) + 1          # every score as a signed integer of W bits
    total = sum(k + i + f for k, i, f in kifs)
    L = ["`timescale 1ns / 1ps",
         f"// Wrapper by flows/bench/peer.py (diagnostic variant): da4ml {_da4ml_version()}'s logits ({DA4ML_MODULE},",
         "// below) and a plain-Verilog argmax, ties to the lower index.",
         "module top (", f"    input  wire [{in_w - 1}:0] inp,", f"    output wire [{out_w - 1}:0] out", ");",
         f"    wire [{total - 1}:0] y;", f"    {DA4ML_MODULE} u_da4ml (.model_inp(inp), .model_out(y));"]
    nodes, at = [], 0
    for j, (k, i, f) in enumerate(kifs):
        w = k + i + f
        field = f"y[{at + w - 1}:{at}]" if w > 0 else ""
        at += w
        ext = W - (k + i)
        top_bit = f"y[{at - 1}]" if k and w > 0 else "1'b0"
        parts = ([f"{{{ext}{{{top_bit}}}}}"] if ext else []) + ([field] if field else []) + ([f"{-f}'d0"] if f else [])
        L.append(f"    wire signed [{W - 1}:0] s{j} = {{{', '.join(parts) or f'{W}' + chr(39) + 'd0'}}};")
        nodes.append((f"s{j}", f"{out_w}'d{j}"))
    level = 0
    while len(nodes) > 1:
        level += 1
        nxt = []
        for p in range(0, len(nodes) - 1, 2):
            (va, ia), (vb, ib) = nodes[p], nodes[p + 1]
            n = f"m{level}_{p // 2}"
            L += [f"    wire {n}_ge = {va} >= {vb};  // the left (lower index) wins a tie",
                  f"    wire signed [{W - 1}:0] {n}_v = {n}_ge ? {va} : {vb};",
                  f"    wire [{out_w - 1}:0] {n}_i = {n}_ge ? {ia} : {ib};"]
            nxt.append((f"{n}_v", f"{n}_i"))
        if len(nodes) % 2:
            nxt.append(nodes[-1])
        nodes = nxt
    L += [f"    assign out = {nodes[0][1]};", "endmodule", ""]
    return "\n".join(L)


def da4ml_rtl(ir, work: Path, argmax: str = "da4ml") -> tuple[Path, dict]:
    """Trace, solve and emit da4ml's design in ``work/da4ml`` (its project) and bundle it as
    ``work/top.v`` (wrapper, network, the library modules it instantiates). ``argmax``:
    ``"da4ml"`` (the comparison: da4ml builds it) or ``"verilog"`` (the diagnostic variant:
    da4ml's logits, :func:`argmax_wrapper`)."""
    from da4ml.codegen import RTLModel
    from da4ml.types import minimal_kif

    t = time.perf_counter()
    comb = da4ml_comb(ir, argmax)
    trace_s = time.perf_counter() - t
    prj = work / "da4ml"
    RTLModel(comb, DA4ML_MODULE, prj, flavor="verilog", latency_cutoff=-1).write()
    body = (prj / "src" / f"{DA4ML_MODULE}.v").read_text()
    used = sorted(set(_INSTANCE.findall(body)))
    lib = [(prj / "src" / "static" / f"{m}.v") for m in used]
    missing = [p.name for p in lib if not p.is_file()]
    if missing:
        raise ValueError(f"da4ml's network instantiates modules it did not write: {missing}")
    def width(qints) -> int:
        return sum(sum(minimal_kif(q)) for q in qints)

    top = (wrapper(ir, width(comb.inp_qint), width(comb.out_qint)) if argmax == "da4ml"
           else argmax_wrapper(ir, width(comb.inp_qint), comb.out_qint))
    text = "\n".join([top, body] + [p.read_text() for p in lib])
    rtl = work / "top.v"
    rtl.write_text(text)
    adders = sum(1 for op in comb.ops if op.opcode in (0, 1))
    info = {"version": _da4ml_version(), "trace_s": round(trace_s, 2), "cost_estimate": float(comb.cost),
            "adders": adders, "ops": len(comb.ops), "library_modules": used, "out_bits": width(comb.out_qint)}
    return rtl, info | {"_comb": comb}


def _da4ml_version() -> str:
    try:
        import da4ml

        return str(da4ml.__version__)
    except (ImportError, AttributeError):
        return "unknown"


# ------------------------------------------------------------------------------ verification
def vectors(ir, folder: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """The test vectors, the extra vectors of approxmlp's verification and :data:`N_RANDOM`
    random ones, with their golden classes and counts by kind."""
    from approxmlp.core.golden import evaluate
    from approxmlp.pipeline.folder import read_vectors
    from approxmlp.pipeline.steps import with_extra_vectors

    vec = read_vectors(folder)
    golden = evaluate(ir, vec["inputs"]).classes
    stale = int(np.sum(golden != vec["golden"]))
    if stale:
        raise ValueError(f"{folder}/vectors/test.npz disagrees with ir.json on {stale} vectors")
    X, y, kinds = with_extra_vectors(ir, vec["inputs"], golden)
    rng = np.random.default_rng([int(ir.digest[:16], 16), 7])
    R = rng.integers(0, 1 << ir.input_bits, size=(N_RANDOM, ir.n_inputs), dtype=np.int64)
    X = np.concatenate([X, R])
    y = np.concatenate([y, evaluate(ir, R).classes])
    kinds = kinds | {"random_more": N_RANDOM}
    return X, y, kinds


def split_check(name: str, folder: Path, n_test: int) -> str:
    """Do the test vectors equal ``quantizer.json`` applied to the shared split's X_test?"""
    from approxmlp.frontend.input_quantizer import InputQuantizer
    from approxmlp.pipeline.folder import read_vectors

    xs = SPLITS / name / "X_test.npy"
    if not xs.is_file():
        return "no shared split"
    q = InputQuantizer.load(folder / "quantizer.json")
    X = np.load(xs)
    ok = X.shape[0] == n_test and np.array_equal(q(X), read_vectors(folder)["inputs"])
    return "test vectors = quantizer(X_test)" if ok else "test vectors differ from quantizer(X_test)"


def simulate_rtl(ir, rtl: Path, X: np.ndarray, y: np.ndarray, n_test: int, build: Path) -> dict:
    """Simulate module ``top`` of ``rtl`` (cocotb + Verilator) on ``X``; compare with ``y``."""
    from approxmlp.backend.sim_files import SimDesign
    from approxmlp.backend.simulate import simulate
    from approxmlp.backend.verilog import class_width

    design = SimDesign(module="top", verilog=rtl.read_text(), inputs=X, expected=y, input_bits=ir.input_bits,
                       out_width=class_width(ir.n_classes), primitives_dir=rtl.parent)
    if build.exists():
        shutil.rmtree(build)
    t = time.perf_counter()
    with _SIM_LOCK:
        res = simulate([design], build)[0]
    shutil.rmtree(build / "sim_build", ignore_errors=True)   # the Verilator model: tens of MB, rebuilt in seconds
    bad = list(res.mismatches)
    return {"vectors": int(res.vectors), "test_vectors": n_test,
            "test_mismatches": sum(1 for m in bad if m.sample < n_test), "mismatches": len(bad),
            "passed": not bad, "first_mismatches": [{"sample": m.sample, "inputs": list(m.inputs), "rtl": m.rtl,
                                                          "golden": m.golden} for m in bad[:5]],
            "seconds": round(time.perf_counter() - t, 1)}


# ------------------------------------------------------------------------------ measuring
def _pnr():
    """``approxmlp.backend.pnr.place_and_route``, or None where this checkout lacks it."""
    try:
        from approxmlp.backend.pnr import place_and_route
    except ImportError:
        return None
    return place_and_route


def measure(rtl: Path, work: Path, targets: tuple[str, ...], pnr: bool) -> dict:
    """Synthesis figures of module ``top`` of ``rtl`` for ``targets``, and iCE40 place and route."""
    from approxmlp.backend.synth import synthesize

    m: dict = {}
    t = time.perf_counter()
    for target in targets:
        r = synthesize(rtl, "top", target, work / f"syn-{target}", cache=False)
        m[target] = r.area_cm2 if target == "printed" else r.luts
        if target == "fpga-ice40":
            m["fpga-ice40_carries"] = r.carries
        if target == "printed":
            m["printed_cells"] = r.cell_count
    m["synth_s"] = round(time.perf_counter() - t, 1)
    if pnr:
        place = _pnr()
        if place is None:
            m["pnr"] = None
            m["pnr_note"] = "approxmlp.backend.pnr not available in this checkout"
        else:
            p = place(rtl, "top", work / "pnr")
            m["pnr"] = {k: v for k, v in p.to_json().items() if k not in ("log",)}
    return m


def _one(name: str, folder: Path, work: Path, targets: tuple[str, ...], pnr: bool) -> dict:
    """One model: both RTLs, both verified, both measured."""
    from approxmlp.backend.verilog import emit_verilog
    from approxmlp.backend.verilog.primitives import write_rtl
    from approxmlp.core.irfile import load_ir

    t0 = time.perf_counter()
    ir = load_ir(folder)
    row: dict = {"set": name, "topology": ir.topology_str, "connections": sum(l.n_in * l.n_out for l in ir.layers),
                 "input_bits": ir.input_bits, "ir_sha256": ir.digest}
    try:
        if work.exists():
            shutil.rmtree(work)
        X, y, kinds = vectors(ir, folder)
        n_test = kinds["test"]
        row["vectors_by_kind"] = kinds
        row["split_check"] = split_check(name, folder, n_test)
        rtls = {"approxmlp": write_rtl(work / "approxmlp" / "top.v", emit_verilog(ir))}
        rtls["da4ml"], info = da4ml_rtl(ir, work / "da4ml")
        comb = info.pop("_comb")
        pred = np.asarray(comb.predict(X.astype(np.float64))).reshape(-1).astype(np.int64)
        info["interpreter_mismatches"] = int(np.sum(pred != y))
        row["da4ml_build"] = info
        row["verify"] = {}
        for side in SIDES:
            row["verify"][side] = simulate_rtl(ir, rtls[side], X, y, n_test, work / side / "sim")
            log(f"peer: {name} {side}: {row['verify'][side]['vectors'] - row['verify'][side]['mismatches']}"
                f"/{row['verify'][side]['vectors']} vectors match")
        for side in SIDES:
            row[side] = measure(rtls[side], work / side, targets, pnr)
            log(f"peer: {name} {side}: " + ", ".join(f"{k} {v}" for k, v in row[side].items() if k != "pnr")
                + (f", pnr {row[side]['pnr'].get('logic_cells')} LC {row[side]['pnr'].get('fmax_mhz')} MHz"
                   if row[side].get("pnr") else ""))
    except Exception as exc:  # one model's failure is its row's, reported, not the run's
        row["error"] = f"{type(exc).__name__}: {exc}"
        row["traceback"] = traceback.format_exc()
        log(f"peer: {name}: FAILED: {row['error']}")
    row["wall_s"] = round(time.perf_counter() - t0, 1)
    return row


def run(out: Path, *, sets: list[str] | None = None, jobs: int = 1, targets: tuple[str, ...] = TARGETS,
        pnr: bool = True) -> dict:
    """Every model (or ``sets``) under ``out``; the caller keeps the result as ``out/peer.json``."""
    todo = models(out, sets)
    log(f"peer: {len(todo)} exact models, da4ml {_da4ml_version()}, targets {', '.join(targets)}"
        f"{', iCE40 place and route' if pnr else ''}")
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        rows = list(pool.map(lambda m: _one(m[0], m[1], out / "peer" / m[0], targets, pnr), todo))
    return {"rows": rows, "wall_s": round(time.perf_counter() - t0, 1), "da4ml": _da4ml_version(),
            "targets": list(targets), "pnr": pnr, "n_random_more": N_RANDOM}


def _variant_one(name: str, folder: Path, work: Path) -> dict:
    """The diagnostic variant of one model: da4ml's logits with a plain-Verilog argmax,
    verified on the same vectors and synthesized on EGFET."""
    from approxmlp.core.irfile import load_ir

    ir = load_ir(folder)
    v: dict = {}
    try:
        if work.exists():
            shutil.rmtree(work)
        X, y, kinds = vectors(ir, folder)
        rtl, info = da4ml_rtl(ir, work, argmax="verilog")
        info.pop("_comb")
        v["build"] = info
        v["verify"] = simulate_rtl(ir, rtl, X, y, kinds["test"], work / "sim")
        v |= measure(rtl, work, ("printed",), pnr=False)
        log(f"peer variant: {name}: EGFET {v['printed']:.3f} cm2, "
            f"{v['verify']['vectors'] - v['verify']['mismatches']}/{v['verify']['vectors']} vectors match")
    except Exception as exc:  # reported in the row
        v["error"] = f"{type(exc).__name__}: {exc}"
        log(f"peer variant: {name}: FAILED: {v['error']}")
    return v


def run_variant(out: Path, res: dict, *, sets: list[str] | None = None) -> dict:
    """Add the diagnostic variant (:func:`_variant_one`) to the rows of a kept result ``res``."""
    todo = dict(models(out, sets))
    for row in res["rows"]:
        if row["set"] in todo:
            row["da4ml_verilog_argmax"] = _variant_one(row["set"], todo[row["set"]], out / "peer" / row["set"] / "variant")
    return res


# ------------------------------------------------------------------------------ the report
def _pair(r: dict, key: str, fmt=str) -> str:
    a, b = r.get("approxmlp", {}).get(key), r.get("da4ml", {}).get(key)
    if a is None and b is None:
        return "not run"
    return f"{fmt(a) if a is not None else '—'} / {fmt(b) if b is not None else '—'}"


def _pnr_pair(r: dict, key: str, fmt=str) -> str:
    vals = []
    for side in SIDES:
        p = r.get(side, {}).get("pnr")
        if p is None:
            vals.append(None)
        elif not p.get("fits"):
            vals.append("no fit")
        else:
            v = p.get(key)
            vals.append(fmt(v) if v is not None else "—")
    if all(v is None for v in vals):
        return "not run"
    return " / ".join(v if v is not None else "—" for v in vals)


def _device(r: dict) -> str:
    """The device(s) the rows placed on, or those tried where neither side fits."""
    pn = [r.get(s, {}).get("pnr") or {} for s in SIDES]
    devs = sorted({p.get("device") for p in pn} - {None})
    if devs:
        return ", ".join(devs)
    tried = sorted({d for p in pn for d in p.get("tried") or ()})
    return f"tried {', '.join(tried)}" if tried else ""


def markdown(res: dict) -> list[str]:
    """The "Peer: da4ml" section for BENCHMARKS.md."""
    if res and res.get("not_run"):
        return ["## Peer: da4ml", "", f"Not run: {res['not_run']}.", ""]
    if not res or not res.get("rows"):
        return []
    where = provenance(res)
    L = ["## Peer: da4ml", "",
         f"The same exact integer models built by a peer generator, [da4ml](https://github.com/calad0i/da4ml) "
         f"{res['da4ml']} (distributed arithmetic: each layer's constant matrix-vector product as one shared "
         "shift-and-add network from its CMVM solver), and synthesized by the same flows as approxmlp's RTL "
         "(`flows/bench/peer.py`). da4ml builds the whole network from the IR with its tracing API and default "
         "settings (sharing on, no delay constraint, combinational): the CMVM per layer, bias adds, the "
         "right shift and the QReLU as its saturating quantizer (floor, clamp to `0..2^act_bits-1`), and the "
         "argmax as a tree of its own subtract-and-select operations (ties to the lower index). The only added "
         "Verilog is a wiring wrapper `top` with approxmlp's ports (`inp` packed `input_bits`-bit features, "
         "`out` the class index). Both RTLs are simulated (cocotb + Verilator) against the golden model on the "
         "test vectors, the extra vectors of approxmlp's verification and "
         f"{res['n_random_more']:,} more random inputs; *vectors* counts da4ml's matches (approxmlp's in "
         "parentheses where it differs). Δ is da4ml over approxmlp. Post-route: nextpnr-ice40 inside "
         "`backend/pnr.py`'s harness (input shift register, registered outputs: the same for both, counted in the "
         f"logic cells), smallest iCE40 that fits; Fmax register to register.{where}",
         "",
         "| model | EGFET cm² approxmlp / da4ml (Δ) | iCE40 LUT4 | iCE40 post-route logic cells | Fmax MHz "
         "| xc7 LUTs | vectors (da4ml) |",
         "|---|---|---|---|---|---|---|"]
    ratios = []
    for r in res["rows"]:
        label = f"{r['set']} {r['topology']}"
        if "error" in r:
            L.append(f"| {label} | failed: {r['error']} | | | | | |")
            continue
        a, b = r["approxmlp"].get("printed"), r["da4ml"].get("printed")
        if a and b:
            ratios.append(b / a)
            egfet = f"{area(a)} / {area(b)} ({b / a - 1:+.0%})"
        else:
            egfet = _pair(r, "printed", area)
        v = r["verify"]
        vd, va = v["da4ml"], v["approxmlp"]
        vec = f"{vd['vectors'] - vd['mismatches']:,}/{vd['vectors']:,}"
        if vd["mismatches"]:
            vec += f" **FAIL** ({vd['test_mismatches']} test)"
        if va["mismatches"]:
            vec += f" (approxmlp {va['vectors'] - va['mismatches']:,}/{va['vectors']:,})"
        dev = _device(r)
        lc = _pnr_pair(r, "logic_cells")
        L.append(f"| {label} | {egfet} | {_pair(r, 'fpga-ice40')} | {lc}{f' ({dev})' if dev else ''} "
                 f"| {_pnr_pair(r, 'fmax_mhz', lambda x: f'{x:.1f}')} | {_pair(r, 'fpga-xc7')} | {vec} |")
    L.append("")
    if ratios:
        ratios.sort()
        L.append(f"EGFET area, da4ml over approxmlp: median {ratios[len(ratios) // 2]:.3f}, from {ratios[0]:.3f} "
                 f"to {ratios[-1]:.3f}; {res['wall_s'] / 60:.1f} min in all.")
    var = [(r["set"], r["approxmlp"].get("printed"), r["da4ml"].get("printed"), r["da4ml_verilog_argmax"])
           for r in res["rows"] if "da4ml_verilog_argmax" in r and "error" not in r]
    if var:
        items = []
        for name, ours, native, v in var:
            if "error" in v:
                items.append(f"{name} failed ({v['error']})")
                continue
            ok = "" if v["verify"]["passed"] else f", **{v['verify']['mismatches']} vectors FAIL**"
            items.append(f"{name} {area(v['printed'])} ({v['printed'] / native - 1:+.0%} / "
                         f"{v['printed'] / ours - 1:+.0%}{ok})")
        L += ["", "*Diagnostic, not the comparison:* da4ml's logits under a plain-Verilog argmax (the same tree, "
                  "signed `>=`, ties to the lower index) instead of its own, EGFET cm² (Δ against da4ml with its own "
                  "argmax / against approxmlp), each verified on the same vectors: " + "; ".join(items) + "."]
    L += ["", "*Wrapped:* only the port wrapper (renames `model_inp`/`model_out` to `inp`/`out`, zero-extends the "
              "class index where da4ml's range analysis narrows it). No part of the network is approxmlp's: da4ml "
              "expresses the argmax and the saturation itself, so nothing had to be borrowed from `rtl/`.", ""]
    return L


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "bench-out", help="A finished bench run's work folder.")
    ap.add_argument("--sets", default=None, help="Comma-separated models to run (e.g. Seeds,digits); default all.")
    ap.add_argument("--jobs", type=int, default=1, help="Models at a time.")
    ap.add_argument("--quick", action="store_true", help=f"Smoke run: EGFET only, one small set ({QUICK_SET}).")
    ap.add_argument("--render", action="store_true", help="Only rewrite OUT/peer.md from the kept OUT/peer.json.")
    ap.add_argument("--variant", action="store_true",
                    help="Diagnostic: add da4ml's logits with a plain-Verilog argmax (EGFET) to the kept OUT/peer.json.")
    a = ap.parse_args(argv)
    if a.render:
        kept = a.out / "peer.json"
        if not kept.is_file():
            print(f"error: {kept} not found; run `python -m flows.bench.peer` first", file=sys.stderr)
            return 2
        text = "\n".join(markdown(json.loads(kept.read_text()))) + "\n"
        (a.out / "peer.md").write_text(text)
        print(text, end="")
        return 0
    try:
        import da4ml  # noqa: F401
    except ImportError:
        print("error: da4ml is not installed; `pip install da4ml==0.6.0` (a benchmark-only dependency)",
              file=sys.stderr)
        return 2
    if not any(a.out.glob("*/compile/ir.json")) and not (a.out / DIGITS / "ir.json").is_file():
        print(f"error: no exact models under {a.out}/*/compile; run `make bench` first", file=sys.stderr)
        return 2
    sets = [s.strip() for s in a.sets.split(",") if s.strip()] if a.sets else None
    if a.quick and not sets:
        sets = [QUICK_SET]
    if a.variant:
        kept = a.out / "peer.json"
        if not kept.is_file():
            print(f"error: {kept} not found; run `python -m flows.bench.peer` first", file=sys.stderr)
            return 2
        res = run_variant(a.out, json.loads(kept.read_text()), sets=sets)
        kept.write_text(json.dumps(res, indent=1) + "\n")
        text = "\n".join(markdown(res)) + "\n"
        (a.out / "peer.md").write_text(text)
        print(text, end="")
        return 0
    res = run(a.out, sets=sets, jobs=a.jobs, targets=("printed",) if a.quick else TARGETS, pnr=not a.quick)
    via = "python -m flows.bench.peer" + (" --quick" if a.quick else "") + (f" --sets {a.sets}" if a.sets else "")
    res = keep_standalone(a.out, "peer.json", res, via, markdown)
    (a.out / "peer.md").write_text("\n".join(markdown(res)) + "\n")
    bad = [r["set"] for r in res["rows"] if "error" in r or not all(v["passed"] for v in r["verify"].values())]
    if bad:
        log(f"peer: failed rows: {', '.join(bad)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
