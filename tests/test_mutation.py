"""Mutation test of `approxmlp verify` (issue 19): hundreds of random single-constant edits
of the RTL of one real compiled design; every edit that changes the function must fail
`verify`, by its vectors or by its proof, and `verify` must name the changed file.

Ground truth comes from outside `verify`: every mutant is simulated on the WHOLE input
space (iris at 3-bit inputs: 8**4 = 4096 inputs, about twice the ~2,100 vectors `verify`
drives, of which 2,000 are random) in one Verilator build, and compared with the golden
model; "changes the function" means "differs on at least one input".

Which literals are edited (:func:`eligible_constants`): the constants that carry the
function, wherever in any ``.v`` file of the design folder they sit, found by regex and
not by the emitter's layout:

* the value of a sized literal (``11'sd3``, ``2'd1``, ``3'd0``): biases, thresholds,
  class indices, the zero bits that pad an operand;
* a bare decimal outside brackets: shift amounts (``<< 4``, ``>>> 1``), constant
  multipliers (``x1 * 81``), parameter and localparam values.

Not edited: comments and compiler directives; the size of a sized literal (``11'``),
anything inside ``[...]`` (declared widths and bit selects) and replication counts
(``{4{``). Those are the design's structure: an edit there changes widths, which
Verilator reports (``WIDTH`` warnings fail `verify` too, or the design is rejected), so
they would test the linter rather than the vectors and the proof.
"""

from __future__ import annotations

import difflib
import json
import random
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from approxmlp.cli import main
from approxmlp.core.golden import evaluate
from approxmlp.pipeline.folder import file_hashes, load_ir

#: ``N'[s]<base><digits>``: a sized (or unsized ``'d5``) literal; group 'value' is edited.
_SIZED = re.compile(r"(?P<size>\d+)?'(?P<sign>[sS]?)(?P<base>[dDhHbBoO])(?P<value>[0-9a-fA-F_]+)")
_BARE = re.compile(r"(?<![\w$'.#])\d+(?![\w'.])")
_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)
_DIRECTIVE = re.compile(r"^[ \t]*`[^\n]*", re.MULTILINE)
_BASES = {"d": 10, "h": 16, "b": 2, "o": 8}
_FMT = {"d": "{:d}", "h": "{:x}", "b": "{:b}", "o": "{:o}"}


@dataclass(frozen=True)
class Constant:
    file: str           # relative to the design folder
    start: int          # span of the digits in the file's text
    end: int
    value: int
    base: str           # d h b o
    limit: int | None   # values must stay below this (a sized literal's 2**size)
    kind: str           # "literal", "shift" or "operand"


def eligible_constants(folder: Path) -> list[Constant]:
    """The editable constants of every ``.v`` file of the folder's RTL, ``rtl/`` (module
    docstring; a kept netlist, ``logs/netlist.v``, is synthesis output, not RTL)."""
    found = []
    for path in sorted((folder / "rtl").rglob("*.v")):
        rel = path.relative_to(folder).as_posix()
        text = path.read_text()
        blank = lambda m: re.sub(r"[^\n]", " ", m.group(0))  # keeps offsets
        code = _DIRECTIVE.sub(blank, _COMMENT.sub(blank, text))
        depth = np.cumsum([{"[": 1, "]": -1}.get(c, 0) for c in code])
        taken = set()
        for m in _SIZED.finditer(code):
            taken.update(range(m.start(), m.end()))
            base = m["base"].lower()
            if not all(c in "0123456789abcdef"[:_BASES[base]] for c in m["value"].lower().replace("_", "")):
                continue
            if depth[m.start()] > 0:
                continue
            limit = 1 << int(m["size"]) if m["size"] else None
            found.append(Constant(rel, m.start("value"), m.end("value"), int(m["value"].replace("_", ""), _BASES[base]),
                                  base, limit, "literal"))
        for m in _BARE.finditer(code):
            if m.start() in taken or depth[m.start()] > 0 or code[m.end():].lstrip().startswith("{"):
                continue
            before = code[:m.start()].rstrip()
            kind = "shift" if before.endswith(("<<", ">>")) else "operand"
            found.append(Constant(rel, m.start(), m.end(), int(m.group()), "d", None, kind))
    return found


def mutate(folder: Path, c: Constant, rng: random.Random) -> tuple[str, str] | None:
    """The file text with ``c`` changed by a small random step (-3..3, not 0), kept
    non-negative and within the literal's size; None if no step fits."""
    steps = [d for d in (-3, -2, -1, 1, 2, 3) if c.value + d >= 0 and (c.limit is None or c.value + d < c.limit)]
    if not steps:
        return None
    new = c.value + rng.choice(steps)
    text = (folder / c.file).read_text()
    return text[:c.start] + _FMT[c.base].format(new) + text[c.end:], f"{c.file}: {c.value} -> {new} ({c.kind})"


@pytest.fixture(scope="module")
def design(tmp_path_factory, iris_model) -> Path:
    """iris (4-5-3) compiled at 3-bit inputs and 5-bit weights: a real design whose whole
    input space is 4096 vectors and whose proofs take seconds (8-bit weights: ~15 s each)."""
    out = tmp_path_factory.mktemp("mutation") / "hw"
    assert main(["compile", str(iris_model), "--data", "iris", "--out", str(out), "--input-bits", "3", "--weight-bits", "5",
                 "--no-synth", "--no-verify", "--no-formal", "--no-onnx", "-q"]) == 0
    return out


def _exhaustive(folders: list[Path], tmp: Path) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Every input, the golden classes, and each folder's RTL classes on every input.

    Independent of `verify` and of approxmlp's simulation module: a plain Verilog
    testbench that counts through the whole input space, with every design side by side,
    built once by ``verilator --binary`` (no cocotb: one process, no Python per vector)."""
    import os
    import subprocess
    import sys

    from approxmlp.backend.tools import find_verilator
    from approxmlp.backend.verilog import class_width
    from approxmlp.pipeline.verify import renamed_modules

    ir = load_ir(folders[0])
    bits, n = ir.input_bits, ir.n_inputs
    width, out_w = bits * n, class_width(ir.n_classes)
    codes = np.arange(1 << width)
    X = (codes[:, None] >> (bits * np.arange(n))) & ((1 << bits) - 1)   # feature i at inp[bits*i +: bits]
    golden = evaluate(ir, X).classes
    tmp.mkdir(parents=True, exist_ok=True)
    sources, ports, cells, reads = [], [f"input wire [{width - 1}:0] inp"], [], []
    for k, f in enumerate(folders):
        text, names = renamed_modules("\n".join(p.read_text() for p in sorted((f / "rtl").glob("*.v"))), f"gt{k}_")
        sources.append(tmp / f"gt{k}.v")
        sources[-1].write_text(text)
        ports.append(f"output wire [{out_w - 1}:0] out_{k}")
        cells.append(f"  {names['top']} u_{k} (.inp(inp), .out(out_{k}));")
        reads.append(f'    std::fprintf(f, "%d ", int(top->out_{k}));')
    (tmp / "gt_top.v").write_text("\n".join(["module gt_top (", ",\n".join(ports), ");", *cells, "endmodule", ""]))
    (tmp / "main.cpp").write_text("\n".join([
        '#include "Vgt_top.h"', '#include "verilated.h"', "#include <cstdio>",
        "int main() {", "  Vgt_top* top = new Vgt_top;", '  std::FILE* f = std::fopen("classes.txt", "w");',
        f"  for (unsigned long i = 0; i < {1 << width}UL; ++i) {{", "    top->inp = i;", "    top->eval();",
        *reads, '    std::fputc(10, f);', "  }", "  std::fclose(f);", "  top->final();", "  delete top;", "  return 0;",
        "}", ""]))
    v = find_verilator()
    env = v.env(dict(os.environ))
    ccache = shutil.which("ccache", path=os.path.dirname(sys.executable)) or shutil.which("ccache")
    if ccache:
        env.setdefault("OBJCACHE", ccache)
    subprocess.run([str(v.executable), "--cc", "--exe", "--build", "-Wno-fatal", "-Wno-lint", "-Wno-style",
                    "--top-module", "gt_top", "-CFLAGS", "-O0", "--output-split", "0", "--Mdir", str(tmp / "obj"),
                    *map(str, sources), str(tmp / "gt_top.v"), str(tmp / "main.cpp")],
                   cwd=tmp, env=env, check=True, capture_output=True)
    subprocess.run([str(tmp / "obj" / "Vgt_top")], cwd=tmp, env=env, check=True, capture_output=True)
    rtl = np.loadtxt(tmp / "classes.txt", dtype=np.int64, ndmin=2)
    assert rtl.shape == (len(X), len(folders))
    return X, golden, list(rtl.T)


N_MUTANTS = 200


@pytest.mark.sim
@pytest.mark.synth
def test_every_function_changing_constant_edit_fails_verify(design, tmp_path, capsys):
    from approxmlp.pipeline.verify import failed, verify_folders

    t0 = time.perf_counter()
    constants = eligible_constants(design)
    kinds = {k: sum(c.kind == k for c in constants) for k in ("literal", "shift", "operand")}
    assert kinds["literal"] >= 20 and kinds["shift"] >= 10, kinds   # weights and biases are in there
    rng = random.Random(19)
    folders, edits = [], []
    while len(folders) < N_MUTANTS:
        c = rng.choice(constants)
        m = mutate(design, c, rng)
        if m is None:
            continue
        folder = tmp_path / f"m{len(folders)}"
        shutil.copytree(design, folder)
        (folder / c.file).write_text(m[0])
        folders.append(folder)
        edits.append((c.file, m[1]))
    results = verify_folders(folders)               # the real code path, one build for all
    t_verify = time.perf_counter() - t0
    # ground truth on the mutants Verilator builds (a rejected one would stop the shared
    # build of the others; rejected ones fail verify, checked below)
    rejected = {k for k, res in enumerate(results) if res.get("rejected")}
    built = [k for k in range(len(folders)) if k not in rejected]
    X, golden, rtl = _exhaustive([design] + [folders[k] for k in built], tmp_path / "exhaustive")
    assert np.array_equal(rtl[0], golden)          # the unedited design is right everywhere
    changes = {k: r != golden for k, r in zip(built, rtl[1:])}
    changing = sorted(k for k, d in changes.items() if d.any())
    equivalent = sorted(k for k, d in changes.items() if not d.any())
    t_truth = time.perf_counter() - t0 - t_verify

    for k, res in enumerate(results):
        file = edits[k][0]
        assert res["changed"] == [file], (edits[k], res["changed"])
        if failed(res):
            assert f"changed since written: {file}" in res["message"], (edits[k], res["message"])
    for k in rejected:
        assert failed(results[k]) and results[k].get("rejected"), edits[k]
    by_vectors = [k for k in changing if results[k]["mismatches"]]
    missed = [k for k in changing if not results[k]["mismatches"]]
    for k in by_vectors:                            # each reported mismatch is a real one
        m = results[k]["first_mismatches"][0]
        row = int(np.flatnonzero((X == m["inputs"]).all(axis=1))[0])
        assert m["golden"] == golden[row] and m["rtl"] != golden[row], edits[k]
    flagged = [k for k in equivalent if failed(results[k])]  # equivalent, yet lint warns
    assert all(results[k]["lint_warnings"] and not results[k]["mismatches"] for k in flagged), \
        [edits[k] for k in flagged]

    # the vectors' misses: the proof must find them, through the CLI, on a counterexample
    # the exhaustive run confirms; and a sample of the equivalent ones must be proven
    capsys.readouterr()
    if missed:
        assert main(["verify", *(str(folders[k]) for k in missed), "--formal", "-q"]) == 1
        out = capsys.readouterr()
        assert "counterexample" in out.err and f"changed since written: {edits[missed[0]][0]}" in out.err, out.err
        for k in missed:
            head = f"{folders[k]}: " if len(missed) > 1 else ""
            assert f"{head}changed since written: {edits[k][0]}" in out.out, edits[k]
            fm = json.loads((folders[k] / "report.json").read_text())["formal"]
            assert fm["rtl_vs_reference"].startswith("counterexample: inputs "), (edits[k], fm)
            x = [int(v) for v in re.search(r"inputs \[([^\]]*)\]", fm["rtl_vs_reference"])[1].split(",")]
            row = int(np.flatnonzero((X == x).all(axis=1))[0])
            assert changes[k][row], (edits[k], fm["rtl_vs_reference"])
    proven = [k for k in equivalent if k not in flagged][:2]
    if proven:
        assert main(["verify", *(str(folders[k]) for k in proven), "--formal", "-q"]) == 0, \
            [edits[k] for k in proven]
    t_total = time.perf_counter() - t0
    summary = (f"{len(folders)} mutants of {len(constants)} constants {kinds}: {len(rejected)} rejected by "
               f"Verilator, {len(changing)} change the function ({len(by_vectors)} caught by the vectors, "
               f"{len(missed)} by the proof), {len(equivalent)} equivalent ({len(flagged)} of them flagged by lint, "
               f"{len(proven)} proven); exhaustive truth {t_truth:.0f} s, verify {t_verify:.0f} s, "
               f"total {t_total:.0f} s")
    print(summary)
    assert len(changing) >= N_MUTANTS // 2, summary


# -- the edit of the issue: x1 * 81 -> x1 * 80 ----------------------------------------------
def _edited(original: str, target: str) -> str:
    """``original`` with the code lines (not the comments) that differ from ``target``
    replaced by ``target``'s: the edit a hand would make, whatever the emitter's layout."""
    a, b = original.splitlines(keepends=True), target.splitlines(keepends=True)
    out = []
    is_comment = lambda lines: all(l.lstrip().startswith("//") or not l.strip() for l in lines)
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        out += a[i1:i2] if op == "equal" or is_comment(a[i1:i2] + b[j1:j2]) else b[j1:j2]
    return "".join(out)


@pytest.mark.sim
@pytest.mark.synth
def test_x1_times_81_edited_to_80_fails_verify_by_vectors_and_by_proof(tmp_path, capsys):
    from dataclasses import replace

    from approxmlp.backend.verilog import emit_verilog
    from approxmlp.core.ir import MLP, Layer
    from approxmlp.pipeline.folder import write_vectors

    ir = MLP(n_inputs=3, input_bits=4, name="w81", layers=(
        Layer(weights=((-20, 81, 7), (33, -5, -60)), biases=(-200, 90), shift=5, act_bits=4),
        Layer(weights=((3, -2), (-2, 3), (1, 1)), biases=(2, 0, -3), activation="linear")))
    l0 = ir.layers[0]
    ir80 = replace(ir, layers=(replace(l0, weights=((-20, 80, 7), l0.weights[1])), ir.layers[1]))
    X = np.array(np.meshgrid(*[np.arange(16)] * 3, indexing="ij")).reshape(3, -1).T
    differ = evaluate(ir, X).classes != evaluate(ir80, X).classes
    assert differ.any()                             # 81 -> 80 changes the function
    folder = tmp_path / "hw"
    (folder / "rtl").mkdir(parents=True)
    text = emit_verilog(ir)
    (folder / "rtl" / "top.v").write_text(text)
    (folder / "ir.json").write_text(ir.dumps() + "\n")
    rows = np.random.default_rng(0).choice(len(X), 30, replace=False)
    write_vectors(folder / "vectors", X[rows], evaluate(ir, X[rows]).classes, None)
    (folder / "report.json").write_text(json.dumps({"target": "printed", "registered": False,
                                                    "files": file_hashes(folder)}) + "\n")
    assert main(["verify", str(folder), "-q"]) == 0
    edited = _edited(text, emit_verilog(ir80))
    assert edited != text and edited.splitlines()[:8] == text.splitlines()[:8]  # the header is untouched
    (folder / "rtl" / "top.v").write_text(edited)
    capsys.readouterr()
    assert main(["verify", str(folder), "--formal", "-q"]) == 1
    out = capsys.readouterr()
    (line,) = out.err.strip().splitlines()
    assert "RTL disagrees with the golden model" in line and "changed since written: rtl/top.v" in line, line
    assert "changed since written: rtl/top.v" in out.out
    fm = json.loads((folder / "report.json").read_text())["formal"]
    assert fm["rtl_vs_reference"].startswith("counterexample: inputs "), fm
    x = [int(v) for v in re.search(r"inputs \[([^\]]*)\]", fm["rtl_vs_reference"])[1].split(",")]
    assert differ[int(np.flatnonzero((X == x).all(axis=1))[0])]


# -- the pieces, without tools ----------------------------------------------------------------
def test_eligible_constants_are_values_and_shift_amounts_not_widths(tmp_path):
    (tmp_path / "rtl").mkdir()
    (tmp_path / "rtl" / "top.v").write_text(
        "// Inputs: 3-bit, weights |w| <= 81\n`timescale 1ns/1ps\nmodule top (input wire [8:0] inp);\n"
        "    wire [5:0] p = ({3'd0, x0} << 2) + x0 * 81;  // x0 * 5\n"
        "    wire signed [10:0] a = $signed({1'd0, p}) - 11'sd3 + 8'h1f;\n"
        "    wire [3:0] q = a[10] ? 4'd0 : {4{1'b1}};\nendmodule\n")
    found = {(c.value, c.kind, c.limit) for c in eligible_constants(tmp_path)}
    assert found == {(0, "literal", 8), (2, "shift", None), (81, "operand", None), (0, "literal", 2),
                     (3, "literal", 2048), (31, "literal", 256), (0, "literal", 16), (1, "literal", 2)}
    text, c = (tmp_path / "rtl" / "top.v").read_text(), next(c for c in eligible_constants(tmp_path) if c.value == 31)
    edited, _ = mutate(tmp_path, c, random.Random(0))
    assert re.search(r"8'h(1c|1d|1e|20|21|22)\b", edited) and len(edited.splitlines()) == len(text.splitlines())


def test_renamed_modules_renames_every_use_and_nothing_else():
    from approxmlp.pipeline.verify import renamed_modules

    text = "module top (input a, output b);\n  add u (.a(a), .b(b));\nendmodule\nmodule add (input a, output b);\n" \
           "  wire top_x = a; assign b = top_x;\nendmodule\n"
    out, names = renamed_modules(text, "v0_")
    assert names == {"top": "v0_top", "add": "v0_add"}
    assert "module v0_top (" in out and "  v0_add u (" in out and "module v0_add (" in out and "top_x" in out
