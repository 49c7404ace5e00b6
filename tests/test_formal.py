"""Formal equivalence (backend/formal.py, backend/verilog/reference.py) and the extra
vectors (core/vectors.py): real Yosys proofs and Verilator runs, no mocks. The proofs
must fail where the function changed: a proof that always says "proven" is worse than
none (the first miter of this module did, through `miter -ignore_gold_x`)."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import pytest

from approxmlp.backend.formal import connections, prove_design, prove_rtl_vs_reference
from approxmlp.backend.verilog import emit_verilog
from approxmlp.backend.verilog.reference import layer_width, reference_verilog
from approxmlp.cli import main
from approxmlp.core.golden import evaluate
from approxmlp.core.ir import MLP, Layer
from approxmlp.core.vectors import KINDS, exact_ties, extra_vectors
from approxmlp.pipeline.folder import write_vectors

from .conftest import tiny_approx_mlp, tiny_mlp


# -- the reference circuit and the vectors: no tools ------------------------------------
def test_reference_writes_every_connection_with_a_plain_multiplication(tiny_approx):
    text = reference_verilog(tiny_approx)
    # zero weights and removed connections are written too: nothing is pruned
    assert text.count("_m") >= 2 * sum(layer.n_in * layer.n_out for layer in tiny_approx.layers)
    assert " * " in text and "<<" not in text.replace("<<<", "")
    assert "take1 = s1 > best0" in text  # strictly greater: ties keep the lower index


def test_reference_width_holds_every_sum_and_the_argmax_drops(tiny_approx):
    for li in range(len(tiny_approx.layers)):
        assert layer_width(tiny_approx, li) >= tiny_approx.operand_bits(li) + 1
    deep = MLP(n_inputs=1, input_bits=2, layers=(Layer(weights=((1,), (-1,)), biases=(0, 0), activation="linear",
                                                       approx=None),))
    from dataclasses import replace

    from approxmlp.core.ir import NeuronApprox
    deep = replace(deep, layers=(replace(deep.layers[0], approx=(NeuronApprox(cmp_drop=40), NeuronApprox())),))
    assert layer_width(deep, 0) >= 42


def test_extra_vectors_are_deterministic_and_of_every_kind(tiny):
    a, b = extra_vectors(tiny), extra_vectors(tiny)
    assert tuple(a) == KINDS
    for k in KINDS:
        assert np.array_equal(a[k], b[k]), k
        assert a[k].ndim == 2 and a[k].shape[1] == tiny.n_inputs
        assert a[k].min(initial=0) >= 0 and a[k].max(initial=0) <= 15
    assert len(a["random"]) == 2000
    corners = {tuple(v) for v in a["corner"]}
    assert (0, 0, 0) in corners and (15, 15, 15) in corners
    # neuron 0 (weights 3, -2, 0): largest sum at (15, 0, 0), smallest at (0, 15, 0)
    assert (15, 0, 0) in corners and (0, 15, 0) in corners
    assert len(a["qrelu_edge"]) > 0
    # ties: the tie rule gets exercised
    assert exact_ties(tiny, a["argmax_tie"]) > 0


def test_qrelu_edges_straddle_a_neuron_edge(tiny):
    edges = extra_vectors(tiny)["qrelu_edge"]
    out = evaluate(tiny, edges, trace=True).outputs[0]
    pairs = out.reshape(-1, 2, out.shape[1])
    # every pair differs in whether some neuron is at 0 or at saturation
    crossed = ((pairs[:, 0] == 0) != (pairs[:, 1] == 0)) | ((pairs[:, 0] == 15) != (pairs[:, 1] == 15))
    assert crossed.any(axis=1).all()


# -- proofs: real Yosys -------------------------------------------------------------------
@pytest.mark.synth
@pytest.mark.parametrize("make", [tiny_mlp, tiny_approx_mlp], ids=["exact", "approx"])
def test_emitted_rtl_is_proven_equal_to_the_reference(make, tmp_path):
    ir = make()
    rtl = tmp_path / "top.v"
    rtl.write_text(emit_verilog(ir))
    proof = prove_rtl_vs_reference(ir, rtl, tmp_path / "work", timeout=120)
    assert proof.text == "proven", proof.text
    assert proof.proven and proof.seconds < 60


@pytest.mark.synth
def test_a_changed_constant_is_a_counterexample_the_golden_model_confirms(tmp_path):
    ir = tiny_mlp()
    # last layer, neuron 1: bias 1 -> 7 (the accumulator's constant term in the RTL)
    rtl_text = emit_verilog(ir)
    line = next(l for l in rtl_text.splitlines() if "l1_n1_acc =" in l)
    assert "'sd1;" in line, line
    rtl = tmp_path / "top.v"
    rtl.write_text(rtl_text.replace(line, line.replace("'sd1;", "'sd7;")))
    proof = prove_rtl_vs_reference(ir, rtl, tmp_path / "work", timeout=120)
    assert proof.failed, proof.text
    assert proof.text.startswith("counterexample: inputs ")
    mutated = MLP(n_inputs=3, input_bits=4, layers=(ir.layers[0], Layer(
        weights=ir.layers[1].weights, biases=(0, 7), activation="linear")))
    x = np.array([proof.inputs])
    assert evaluate(ir, x).classes[0] != evaluate(mutated, x).classes[0]
    assert f"golden model class {evaluate(ir, x).classes[0]}" in proof.text
    # each side's class, evaluated on the counterexample by a run of its own
    assert (f"reference class {evaluate(ir, x).classes[0]}, RTL class {evaluate(mutated, x).classes[0]}"
            in proof.text), proof.text


def _design_folder(tmp_path: Path, ir: MLP, rtl_text: str) -> Path:
    """A design folder as compile writes it, without synthesis (the netlist proof skipped)."""
    folder = tmp_path / "design"
    (folder / "rtl").mkdir(parents=True)
    (folder / "rtl" / "top.v").write_text(rtl_text)
    (folder / "ir.json").write_text(ir.dumps() + "\n")
    X = np.array([[1, 2, 3], [15, 0, 7]])
    write_vectors(folder / "vectors", X, evaluate(ir, X).classes, None)
    (folder / "report.json").write_text(json.dumps({"target": "printed", "registered": False}) + "\n")
    return folder


@pytest.mark.sim
@pytest.mark.synth
def test_verify_formal_reports_the_counterexample_and_exits_1(tmp_path, capsys):
    ir = tiny_mlp()
    text = emit_verilog(ir)
    # layer 0, neuron 0's product x0 * 3 = x0 + (x0 << 1) becomes x0 * 5 = x0 + (x0 << 2)
    line = next(l for l in text.splitlines() if l.lstrip().startswith("wire") and "l0_n0_pos =" in l)
    assert "<< 1)" in line, line
    folder = _design_folder(tmp_path, ir, text.replace(line, line.replace("<< 1)", "<< 2)")))
    assert main(["verify", str(folder), "--formal", "-q"]) == 1
    fm = json.loads((folder / "report.json").read_text())["formal"]
    assert fm["rtl_vs_reference"].startswith("counterexample: inputs "), fm
    assert fm["netlist_vs_rtl"].startswith("skipped")
    assert "counterexample" in capsys.readouterr().out


@pytest.mark.sim
@pytest.mark.synth
def test_verify_formal_proves_an_untouched_design(tmp_path, capsys):
    ir = tiny_approx_mlp()
    folder = _design_folder(tmp_path, ir, emit_verilog(ir))
    assert main(["verify", str(folder), "--formal", "-q"]) == 0
    fm = json.loads((folder / "report.json").read_text())["formal"]
    assert fm["rtl_vs_reference"] == "proven" and fm["passed"]
    out = capsys.readouterr().out
    assert "formal: RTL = reference: proven" in out


@pytest.mark.synth
def test_the_synthesized_netlist_is_proven_equal_to_the_rtl(tmp_path):
    from approxmlp.backend.synth import synthesize

    ir = tiny_approx_mlp()
    rtl = tmp_path / "top.v"
    rtl.write_text(emit_verilog(ir))
    res = synthesize(rtl, "top", "printed", tmp_path / "synth", cache=False)
    entry = prove_design(ir, rtl, netlist=res.netlist, target="printed", timeout=120)
    assert entry["rtl_vs_reference"] == "proven" and entry["netlist_vs_rtl"] == "proven", entry
    assert entry["passed"] and not entry["counterexample"]


@pytest.mark.synth
def test_a_netlist_with_one_cell_changed_is_a_counterexample(tmp_path):
    """The netlist proof checks the cells after coarse synthesis: one NAND2 turned into an
    AND2 (each observable, so each changes the function here) is caught, with the input
    that shows it."""

    from approxmlp.backend.formal import prove_netlist_vs_rtl
    from approxmlp.backend.synth import synthesize

    ir = tiny_mlp()
    rtl = tmp_path / "top.v"
    rtl.write_text(emit_verilog(ir))
    res = synthesize(rtl, "top", "printed", tmp_path / "synth", cache=False)
    text = res.netlist.read_text()
    cells = [m.start() for m in re.finditer(r"\bNAND2X1\b", text)]
    assert cells, "no NAND2 in the netlist"
    caught = 0
    for k, at in enumerate(cells[:3]):
        bad = tmp_path / f"netlist{k}.v"
        bad.write_text(text[:at] + "AND2X1 " + text[at + len("NAND2X1 "):])
        proof = prove_netlist_vs_rtl(ir, rtl, bad, "printed", tmp_path / f"work{k}", timeout=120)
        if proof.failed:
            caught += 1
            assert proof.text.startswith("counterexample: inputs "), proof.text
            x = np.array([proof.inputs])
            assert f"golden model class {evaluate(ir, x).classes[0]}, RTL class {evaluate(ir, x).classes[0]}" \
                in proof.text, proof.text
        else:
            assert proof.proven, proof.text  # a cell whose change is masked downstream
    assert caught >= 1


def test_registered_designs_are_skipped_with_a_reason(tmp_path):
    entry = prove_design(tiny_mlp(), tmp_path / "missing.v", netlist=None, target="printed", registered=True)
    assert entry["rtl_vs_reference"].startswith("skipped: registered output")
    assert not entry["counterexample"]


def test_connections_counts_only_the_connections_a_design_keeps(tiny):
    from dataclasses import replace

    from approxmlp.core.ir import NeuronApprox

    assert connections(tiny) == 9          # 10 weights, one of them zero
    l0 = tiny.layers[0]
    cut = replace(tiny, layers=(replace(l0, approx=(NeuronApprox(input_masks=(0, 15, 15)), l0.approx[1])),
                                tiny.layers[1]))
    assert connections(cut) == 8           # an empty mask removes a connection


# -- the randomized mutation test ---------------------------------------------------------
_CONSTANT = re.compile(r"<< (\d+)\)|(\d+)'sd(\d+)")


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.synth
def test_every_single_constant_edit_that_changes_the_function_fails_the_proof(tmp_path):
    """Random single-constant edits of the emitted RTL (a shift amount or an accumulator
    constant): each is simulated on every input (3 x 3-bit: 512 vectors) to learn whether
    it changes the function, then proven; a changed function must give a counterexample
    and an unchanged one must be proven."""
    from approxmlp.backend.sim_files import SimDesign
    from approxmlp.backend.simulate import simulate

    ir = MLP(n_inputs=3, input_bits=3, name="mut", layers=(
        Layer(weights=((5, -3, 2), (-1, 6, 3)), biases=(3, -4), shift=1, act_bits=4),
        Layer(weights=((3, -2), (-2, 3), (1, 1)), biases=(2, 0, -3), activation="linear")))
    text = emit_verilog(ir)
    body = [k for k, line in enumerate(text.splitlines()) if line.lstrip().startswith("wire") and _CONSTANT.search(line)]
    rng = random.Random(19)
    mutants = []
    for n in range(8):
        lines = text.splitlines()
        k = rng.choice(body)
        spots = list(_CONSTANT.finditer(lines[k]))
        m = rng.choice(spots)
        if m.group(1) is not None:
            new = f"<< {int(m.group(1)) + rng.choice((-1, 1)) or 2})"
        else:
            new = f"{m.group(2)}'sd{int(m.group(3)) + rng.choice((1, 2, 3))}"
        lines[k] = lines[k][:m.start()] + new + lines[k][m.end():]
        mutants.append("\n".join(lines).replace("module top", f"module m{n}_top") + "\n")
    X = np.array(np.meshgrid(*[np.arange(8)] * 3, indexing="ij")).reshape(3, -1).T
    golden = evaluate(ir, X).classes
    sims = [SimDesign(module=f"m{n}_top", verilog=v, inputs=X, expected=golden, input_bits=3, out_width=2)
            for n, v in enumerate(mutants)]
    results = simulate(sims, tmp_path / "sim")
    changed = 0
    for n, (v, res) in enumerate(zip(mutants, results)):
        rtl = tmp_path / f"m{n}.v"
        rtl.write_text(v)
        proof = prove_rtl_vs_reference(ir, rtl, tmp_path / f"work{n}", module=f"m{n}_top", timeout=120)
        if res.ok:
            assert proof.proven, (n, proof.text)
        else:
            changed += 1
            assert proof.failed, (n, proof.text)
            x = np.array([proof.inputs])
            row = int(np.flatnonzero((X == x).all(axis=1))[0])
            assert res.rtl[row] != golden[row], (n, proof.text)
    assert changed >= 4
