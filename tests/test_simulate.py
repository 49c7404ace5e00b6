"""The simulation backend: hand-written classifiers through one Verilator build each.

The designs are argmax-of-the-features classifiers: simple enough to write by hand and
to predict with numpy (ties go to the lowest index, as in the golden model), and a
one-character change (``>`` to ``>=``) makes a realistic comparator bug that only shows
on ties. Builds are the expensive part, so one module-scoped run carries most checks.
"""

from __future__ import annotations

import itertools
import json
import re

import numpy as np
import pytest

from approxmlp.errors import DataError, ToolError, VerificationError
from approxmlp.backend.lint import lint
from approxmlp.backend.sim_files import (WRAPPER, Mismatch, SimDesign, check_unique_modules, find_mismatches,
                                         load_outputs, load_run, pack_words, save_outputs, wrapper_verilog, write_run)
from approxmlp.backend.simulate import simulate


def argmax_verilog(module: str, n: int, bits: int, *, registered: bool = False, tie_high: bool = False) -> str:
    """An argmax over ``n`` unsigned ``bits``-bit features; ``tie_high`` is the bug."""
    k = max(1, (n - 1).bit_length())
    cmp = ">=" if tie_high else ">"
    clk = "    input wire clk,\n" if registered else ""
    drive = ("    always @(posedge clk) out <= best_i;" if registered else "    assign out = best_i;")
    return f"""`default_nettype none
module {module} (
{clk}    input wire [{n * bits - 1}:0] inp,
    output {'reg' if registered else 'wire'} [{k - 1}:0] out
);
    reg [{k - 1}:0] best_i;
    reg [{bits - 1}:0] best_v;
    integer i;
    always @* begin
        best_i = 0;
        best_v = inp[{bits - 1}:0];
        for (i = 1; i < {n}; i = i + 1)
            if (inp[{bits}*i +: {bits}] {cmp} best_v) begin
                best_i = i[{k - 1}:0];
                best_v = inp[{bits}*i +: {bits}];
            end
    end
{drive}
endmodule
`default_nettype wire
"""


def argmax_design(module: str, inputs: np.ndarray, bits: int, **kw) -> SimDesign:
    n = inputs.shape[1]
    return SimDesign(module, argmax_verilog(module, n, bits, **kw), inputs, inputs.argmax(axis=1),
                     input_bits=bits, out_width=max(1, (n - 1).bit_length()),
                     registered=kw.get("registered", False))


def exhaustive(n: int, bits: int) -> np.ndarray:
    return np.array(list(itertools.product(range(1 << bits), repeat=n)), dtype=np.int64)


def random_vectors(seed: int, count: int, n: int, bits: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 1 << bits, size=(count, n))


# -- fast: pure functions and file formats --------------------------------------------
def test_wrapper_instantiates_every_design_with_its_own_ports():
    comb = argmax_design("comb", random_vectors(0, 5, 4, 3), 3)
    reg = argmax_design("regd", random_vectors(1, 5, 16, 4), 4, registered=True)
    text = wrapper_verilog([comb, reg])
    assert text.startswith("`default_nettype none\n") and text.endswith("`default_nettype wire\n")
    assert f"module {WRAPPER} (" in text
    for port in ("input wire clk", "input wire [11:0] inp_0", "output wire [1:0] out_0",
                 "input wire [63:0] inp_1", "output wire [3:0] out_1"):
        assert port in text
    assert "comb u_0 (.inp(inp_0), .out(out_0));" in text
    assert "regd u_1 (.clk(clk), .inp(inp_1), .out(out_1));" in text


def test_pack_words_puts_feature_zero_in_the_low_bits():
    assert pack_words(np.array([[1, 2, 3]]), 4) == [0x321]
    wide = np.full((2, 100), 0xFF)
    wide[1, 99] = 0
    assert pack_words(wide, 8) == [(1 << 800) - 1, (1 << 792) - 1]


def test_run_files_round_trip(tmp_path):
    d = argmax_design("top", random_vectors(2, 7, 3, 4), 4, registered=True)
    run = load_run(write_run([d], tmp_path))
    (job,) = run.jobs
    assert (job.index, job.module, job.registered) == (0, "top", True)
    assert job.words == pack_words(d.inputs, 4)
    assert np.array_equal(job.expected, d.expected)
    assert json.loads((tmp_path / "manifest.json").read_text())["wrapper"] == WRAPPER
    save_outputs(run.results, {0: d.expected})
    (rtl,) = load_outputs(run.results, [d])
    assert np.array_equal(rtl, d.expected)


def test_missing_or_short_results_read_as_unfinished(tmp_path):
    d = argmax_design("top", random_vectors(3, 7, 3, 4), 4)
    assert load_outputs(tmp_path / "results.npz", [d]) is None
    save_outputs(tmp_path / "results.npz", {0: d.expected[:3]})
    assert load_outputs(tmp_path / "results.npz", [d]) is None


def test_find_mismatches_names_sample_inputs_and_both_classes():
    inputs = np.array([[1, 2], [3, 4], [5, 6]])
    (m,) = find_mismatches(inputs, np.array([0, 1, 1]), np.array([0, 0, 1]))
    assert m == Mismatch(sample=1, inputs=(3, 4), rtl=1, golden=0)
    assert str(m) == "sample 1: inputs [3, 4], RTL class 1, golden class 0"


@pytest.mark.parametrize("change, error, words", [
    ({"inputs": np.full((2, 3), 16)}, DataError, "0..15"),
    ({"inputs": np.zeros((2, 3)) + 0.0}, DataError, "integers"),
    ({"expected": np.zeros(3, int)}, DataError, "shape (2,)"),
    ({"expected": np.array([0, 4])}, DataError, "0..3"),
    ({"module": "9lives"}, ValueError, "identifier"),
    ({"module": "other"}, ValueError, "declares no `module other`"),
])
def test_design_validation_names_the_problem(change, error, words):
    fields = dict(module="top", verilog=argmax_verilog("top", 3, 4), inputs=np.zeros((2, 3), int),
                  expected=np.zeros(2, int), input_bits=4, out_width=2)
    with pytest.raises(error, match=re.escape(words)):
        SimDesign(**{**fields, **change})


def test_module_names_must_be_unique_across_a_run():
    a = argmax_design("a", random_vectors(4, 2, 3, 4), 4)
    helper = SimDesign("b", argmax_verilog("b", 3, 4) + "module a; endmodule\n", a.inputs, a.expected, 4, 2)
    with pytest.raises(ValueError, match="module a is declared by both a and b"):
        check_unique_modules([a, helper])


# -- Verilator ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory):
    """One build: correct and buggy designs, combinational and registered, of different
    widths and vector counts."""
    designs = [
        argmax_design("exact4x3", exhaustive(4, 3), 3),                       # 4096 vectors
        argmax_design("buggy4x3", exhaustive(4, 3), 3, tie_high=True),
        argmax_design("reg16x4", random_vectors(5, 700, 16, 4), 4, registered=True),
        argmax_design("regbug3x2", exhaustive(3, 2), 2, registered=True, tie_high=True),
    ]
    messages: list[str] = []
    build_dir = tmp_path_factory.mktemp("sim")
    results = simulate(designs, build_dir, progress=messages.append)
    return designs, results, messages, build_dir


@pytest.mark.xdist_group("mixed_run")
@pytest.mark.sim
def test_correct_designs_match_on_every_vector(mixed_run):
    designs, results, _, _ = mixed_run
    for name in ("exact4x3", "reg16x4"):
        (d,), (r,) = ([x for x in seq if x.module == name] for seq in (designs, results))
        assert r.ok and r.vectors == len(d.expected)
        assert np.array_equal(r.rtl, d.expected)


@pytest.mark.xdist_group("mixed_run")
@pytest.mark.sim
def test_wrong_designs_are_caught_with_sample_inputs_and_classes(mixed_run):
    designs, results, _, _ = mixed_run
    for d, r in zip(designs, results):
        if r.module not in ("buggy4x3", "regbug3x2"):
            continue
        ties = [s for s, x in enumerate(d.inputs) if (x == x.max()).sum() > 1]
        assert [m.sample for m in r.mismatches] == ties       # exactly the tie cases
        first = r.mismatches[0]
        assert first.inputs == tuple(d.inputs[first.sample])
        assert first.golden == d.expected[first.sample]
        assert first.rtl == max(i for i, v in enumerate(first.inputs) if v == max(first.inputs))
        assert str(first) in str(r)


@pytest.mark.xdist_group("mixed_run")
@pytest.mark.sim
def test_run_leaves_logs_and_reports_progress(mixed_run):
    _, results, messages, build_dir = mixed_run
    log = results[0].log
    assert log == build_dir / "sim.log" and "sample" in log.read_text()   # the bench's own report
    assert (build_dir / "build.log").is_file() and (build_dir / "results.xml").is_file()
    assert any(m.startswith("building") and "Verilator" in m for m in messages)
    assert any(m.startswith("simulating") for m in messages)


@pytest.mark.xdist_group("mixed_run")
@pytest.mark.sim
def test_bench_crash_raises_tool_error_quoting_the_exception(mixed_run, tmp_path, monkeypatch):
    designs, _, _, build_dir = mixed_run            # same sources: Verilator skips the build
    (tmp_path / "mlp_bench.py").write_text("import cocotb\n\n@cocotb.test()\n"
                                           "async def run_vectors(dut):\n    raise KeyError('boom')\n")
    monkeypatch.setattr("approxmlp.backend.simulate.SIM_DIR", tmp_path)
    with pytest.raises(ToolError, match="simulation did not finish: KeyError: 'boom'") as info:
        simulate(designs, build_dir)
    assert info.value.log == str(build_dir / "sim.log")


def test_large_runs_are_planned_in_consecutive_parts():
    from approxmlp.backend.simulate import plan_parts

    designs = [argmax_design(f"d{k}", exhaustive(2, 2), 2) for k in range(5)]
    n = len(designs[0].verilog)
    assert plan_parts(designs, 10 * n) == [[0, 1, 2, 3, 4]]
    assert plan_parts(designs, 2 * n) == [[0, 1], [2, 3], [4]]
    assert plan_parts(designs, 1) == [[0], [1], [2], [3], [4]]   # a design larger than the limit: alone


@pytest.mark.xdist_group("mixed_run")
@pytest.mark.sim
def test_a_run_split_into_parts_gives_the_same_results(mixed_run, tmp_path):
    designs, results, _, _ = mixed_run
    messages: list[str] = []
    split = simulate(designs, tmp_path, progress=messages.append, max_chars=1)
    assert [r.module for r in split] == [d.module for d in designs]
    for a, b in zip(results, split):
        assert np.array_equal(a.rtl, b.rtl) and a.mismatches == b.mismatches
    assert split[0].log == tmp_path / "part-0" / "sim.log" and split[3].log == tmp_path / "part-3" / "sim.log"
    assert any("4 Verilator builds" in m for m in messages) and any(m.startswith("part 4/4: building") for m in messages)


@pytest.mark.xdist_group("mixed_run")
@pytest.mark.sim
def test_rerun_in_a_used_build_dir_reports_the_new_designs(mixed_run):
    *_, build_dir = mixed_run
    d = argmax_design("fresh", random_vectors(6, 300, 5, 4), 4, tie_high=True)
    (r,) = simulate([d], build_dir)
    assert r.module == "fresh" and r.vectors == 300 and not r.ok


@pytest.mark.sim
def test_build_failure_raises_tool_error_with_log(tmp_path):
    broken = argmax_verilog("top", 2, 2).replace("best_i = 0;", "best_i = ;")
    with pytest.raises(ToolError, match=r"Verilator build failed: %Error.*syntax error") as info:
        simulate([SimDesign("top", broken, exhaustive(2, 2), exhaustive(2, 2).argmax(1), 2, 1)], tmp_path)
    assert info.value.log == str(tmp_path / "build.log")


@pytest.mark.sim
def test_ports_that_differ_from_the_description_are_refused(tmp_path):
    inputs = exhaustive(3, 2)
    narrow = SimDesign("narrow", argmax_verilog("narrow", 3, 2), inputs, inputs.argmax(1), 2, out_width=3)
    with pytest.raises(VerificationError, match=r"design narrow does not have the ports.*'out'"):
        simulate([narrow], tmp_path)
    # Verilator would skip an identical rerun, warnings and all: the build must be gone.
    assert not (tmp_path / "sim_build").exists()


@pytest.mark.sim
def test_lint_is_clean_on_tidy_verilog(tmp_path):
    path = tmp_path / "top.v"
    path.write_text(argmax_verilog("top", 4, 3))
    assert lint(path, "top") == []


@pytest.mark.sim
def test_lint_reports_width_mismatch_and_unused_signal(tmp_path):
    path = tmp_path / "sloppy.v"
    path.write_text("`default_nettype none\n"
                    "module sloppy (input wire [7:0] inp, output wire [1:0] out);\n"
                    "    wire [3:0] spare = inp[3:0];\n"
                    "    assign out = inp[7:4];\n"
                    "endmodule\n"
                    "`default_nettype wire\n")
    found = lint(path, "sloppy")
    assert any("WIDTHTRUNC" in w and "sloppy.v:4" in w for w in found), found
    assert any("UNUSEDSIGNAL" in w and "spare" in w for w in found), found
