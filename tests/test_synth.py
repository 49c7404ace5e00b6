"""Synthesis back end: the compact liberty files against the public PDK, the printed and
FPGA flows on hand-written designs, and the errors a user sees.

The library comparison and the request checks are fast and always run; everything that
runs Yosys is marked ``synth`` (``pytest -m synth tests/test_synth.py``, about a minute).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from approxmlp.errors import ApproxMLPError, SynthConfigError, ToolError
from approxmlp.backend.liberty import CellFigures, Library, printed_costs, read_library
from approxmlp.backend.synth import TARGETS, library_path, synthesize
from tests.conftest import PDK, needs_shared

FULL_LIBRARY = {"printed": PDK / "egfet" / "EGFET_1.0V_TT_25C.lib",
                "printed-cnt": PDK / "cnt_tft" / "CNT_TFT_3.0V_TT_25C.lib"}
#: Cells the compact files leave out on purpose (see their header comments).
EXCLUDED = {"printed": {"TSBUF", "LATCHX1"}, "printed-cnt": {"TSBUF", "LATCHX1_psuedo"}}
PRINTED = tuple(FULL_LIBRARY)

# ----------------------------------------------------------------------------- designs
# Hand-written in the emitter's style: constant weights as shifts and adds, wide signed
# sums, a clamped activation, an argmax comparator.

NEURONS = """
module neurons (
    input  wire [3:0] x0, x1, x2, x3,
    output wire [1:0] cls
);
    wire signed [10:0] a0 = $signed({1'b0, x0});
    wire signed [10:0] a1 = $signed({1'b0, x1});
    wire signed [10:0] a2 = $signed({1'b0, x2});
    wire signed [10:0] a3 = $signed({1'b0, x3});
    // h0 = 5*x0 - 3*x1 + 6*x2 + 2*x3 - 9 ; h1 = -7*x0 + 9*x1 + x2 - 4*x3 + 3 ; h2 = 3*x0 + 12*x2 - 10*x3 + 1
    wire signed [10:0] h0 = (a0 <<< 2) + a0 - ((a1 <<< 1) + a1) + (a2 <<< 2) + (a2 <<< 1) + (a3 <<< 1) - 11'sd9;
    wire signed [10:0] h1 = a0 - (a0 <<< 3) + (a1 <<< 3) + a1 + a2 - (a3 <<< 2) + 11'sd3;
    wire signed [10:0] h2 = (a0 <<< 1) + a0 + (a2 <<< 3) + (a2 <<< 2) - (a3 <<< 3) - (a3 <<< 1) + 11'sd1;
    // QReLU to 5 bits after a shift by 2
    wire [4:0] r0 = h0[10] ? 5'd0 : (|h0[9:7] ? 5'd31 : h0[6:2]);
    wire [4:0] r1 = h1[10] ? 5'd0 : (|h1[9:7] ? 5'd31 : h1[6:2]);
    wire [4:0] r2 = h2[10] ? 5'd0 : (|h2[9:7] ? 5'd31 : h2[6:2]);
    wire signed [11:0] b0 = $signed({1'b0, r0});
    wire signed [11:0] b1 = $signed({1'b0, r1});
    wire signed [11:0] b2 = $signed({1'b0, r2});
    // three class scores and their argmax (ties to the lower index)
    wire signed [11:0] s0 = (b0 <<< 1) + b0 - (b1 <<< 2) + b2 + 12'sd2;
    wire signed [11:0] s1 = b1 + (b1 <<< 1) - b0 + (b2 <<< 1) - 12'sd5;
    wire signed [11:0] s2 = (b2 <<< 2) - (b0 <<< 1) - b1 + 12'sd1;
    wire g10 = s1 > s0;
    wire signed [11:0] m01 = g10 ? s1 : s0;
    assign cls = (s2 > m01) ? 2'd2 : (g10 ? 2'd1 : 2'd0);
endmodule
"""

PRODUCTS = """
module products (
    input  wire [4:0] x0, x1, x2, x3, x4, x5,
    output wire       cls
);
    // two neurons over six 5-bit inputs, multiplications by constants left to Yosys
    wire signed [12:0] s0 = 13'sd11 * $signed({1'b0, x0}) - 13'sd6 * $signed({1'b0, x1})
                          + 13'sd13 * $signed({1'b0, x2}) + 13'sd3 * $signed({1'b0, x3})
                          - 13'sd9 * $signed({1'b0, x4}) + 13'sd7 * $signed({1'b0, x5}) - 13'sd40;
    wire signed [12:0] s1 = -13'sd5 * $signed({1'b0, x0}) + 13'sd14 * $signed({1'b0, x1})
                          - 13'sd2 * $signed({1'b0, x2}) + 13'sd10 * $signed({1'b0, x3})
                          + 13'sd6 * $signed({1'b0, x4}) - 13'sd12 * $signed({1'b0, x5}) + 13'sd17;
    assign cls = s1 > s0;
endmodule
"""

REGISTERED = """
module registered (
    input  wire       clk, rst_n,
    input  wire [3:0] a, b,
    output reg  [5:0] acc,
    output reg  [3:0] held
);
    always @(posedge clk) acc <= (a <<< 1) + a + b;                  // 6 plain flip-flops
    always @(posedge clk or negedge rst_n)                           // 4 with async reset
        if (!rst_n) held <= 4'd0; else held <= a ^ b;
endmodule
"""

BROKEN = """
module broken (input wire a, output wire y);
    assign y = a &;
endmodule
"""

DESIGNS = {"neurons": NEURONS, "products": PRODUCTS}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.v"
    path.write_text(text)
    return path


def yosys_area(result) -> float:
    """The area Yosys itself reports (``stat -liberty``), 0 when nothing is mapped."""
    return json.loads(result.stat_json.read_text())["design"].get("area", 0.0)


# ----------------------------------------------------------------------------- libraries

def _groups(lib_path: Path) -> dict:
    from liberty.parser import parse_liberty
    return {str(c.args[0]): c for c in parse_liberty(lib_path.read_text()).get_groups("cell")}


@needs_shared(PDK)
@pytest.mark.parametrize("target", PRINTED)
def test_compact_library_matches_public_pdk(target):
    compact, full = _groups(library_path(target)), _groups(FULL_LIBRARY[target])
    assert set(compact) == set(full) - EXCLUDED[target]
    for name, cell in compact.items():
        ref = full[name]
        assert cell["area"] == ref["area"], name
        assert cell["cell_leakage_power"] == ref["cell_leakage_power"], name
        ref_pins = {str(p.args[0]): p for p in ref.get_groups("pin")}
        pins = {str(p.args[0]): p for p in cell.get_groups("pin")}
        assert set(pins) == set(ref_pins), name
        for pin, group in pins.items():
            for attr in ("direction", "function", "capacitance"):
                assert str(group.get(attr)) == str(ref_pins[pin].get(attr)), (name, pin, attr)


@needs_shared(PDK)
@pytest.mark.parametrize("target", PRINTED)
def test_compact_library_units_and_voltage_match(target):
    compact, full = read_library(library_path(target)), read_library(FULL_LIBRARY[target])
    assert compact.voltage == full.voltage == {"printed": 1.0, "printed-cnt": 3.0}[target]
    for name, figures in compact.cells.items():
        assert figures == full.cells[name]


@pytest.mark.parametrize("target", PRINTED)
def test_flip_flops_are_edge_triggered_in_compact_library(target):
    """The full library describes DFFX1 as a latch (so dfflibmap would avoid it); the compact
    one gives it the `ff` group of a positive-edge D flip-flop."""
    cells = _groups(library_path(target))
    suffix = "_psuedo" if target == "printed-cnt" else ""
    ff = cells[f"DFFX1{suffix}"].get_group("ff")
    assert str(ff.get("clocked_on")).strip('"') == "CP" and str(ff.get("next_state")).strip('"') == "D"
    assert not cells[f"DFFX1{suffix}"].get_groups("latch")


# ----------------------------------------------------------------------------- requests

def test_unknown_target_lists_valid_targets(tmp_path):
    design = write(tmp_path, "neurons", NEURONS)
    with pytest.raises(ApproxMLPError) as info:
        synthesize(design, "neurons", "asic", tmp_path / "w")
    assert isinstance(info.value, SynthConfigError)
    assert all(t in str(info.value) for t in TARGETS)
    with pytest.raises(SynthConfigError, match="valid targets"):
        library_path("nope")


def test_bad_requests_fail_before_running_yosys(tmp_path):
    design = write(tmp_path, "neurons", NEURONS)
    with pytest.raises(SynthConfigError, match="FPGA"):
        library_path("fpga-ice40")
    with pytest.raises(SynthConfigError, match="does not apply"):
        synthesize(design, "neurons", "fpga-xc7", tmp_path / "w", liberty=library_path("printed"))
    with pytest.raises(SynthConfigError, match="does not exist"):
        synthesize(tmp_path / "missing.v", "neurons", "printed", tmp_path / "w")
    with pytest.raises(SynthConfigError, match="identifier"):
        synthesize(design, "neurons; shell rm", "printed", tmp_path / "w")
    assert not (tmp_path / "w").exists()


def test_costs_follow_the_library_figures(tmp_path):
    """Area/leakage add up per cell; dynamic = activity * C * V^2 * f in the right units."""
    lib = Library(name="toy", voltage=2.0, cells={"INV": CellFigures(100.0, 10.0, 3.0),
                                                    "NAND": CellFigures(150.0, 5.0, 4.0)})
    costs = printed_costs({"INV": 2, "NAND": 3}, lib, clock_hz=5.0, activity=0.5)
    assert costs["area_um2"] == 650.0 and costs["area_cm2"] == pytest.approx(650e-8)
    assert costs["static_power_mw"] == pytest.approx(35e-6)                   # 35 nW
    assert costs["dynamic_power_mw"] == pytest.approx(0.5 * 18e-12 * 4.0 * 5.0 * 1e3)
    assert costs["power_mw"] == pytest.approx(costs["static_power_mw"] + costs["dynamic_power_mw"])
    with pytest.raises(ToolError, match=r"\$_DLATCH_P_"):
        printed_costs({"INV": 1, "$_DLATCH_P_": 1}, lib, log=tmp_path / "x.log")


# ----------------------------------------------------------------------------- Yosys runs

@pytest.mark.synth
@needs_shared(PDK)
@pytest.mark.parametrize("target", PRINTED)
@pytest.mark.parametrize("name", list(DESIGNS))
def test_compact_library_maps_like_full_library(tmp_path, name, target):
    design = write(tmp_path, name, DESIGNS[name])
    compact = synthesize(design, name, target, tmp_path / "compact")
    full = synthesize(design, name, target, tmp_path / "full", liberty=FULL_LIBRARY[target])
    assert compact.cell_count > 150, compact.cells          # realistic, not folded away
    assert compact.area_um2 == pytest.approx(full.area_um2, rel=0.01), (compact.cells, full.cells)
    assert compact.static_power_mw == pytest.approx(full.static_power_mw, rel=0.01)
    for result in (compact, full):                       # our figures == Yosys' own stat
        assert result.area_um2 == pytest.approx(yosys_area(result), rel=1e-9)
    assert compact.area_cm2 == pytest.approx(compact.area_um2 / 1e8)
    assert 0 < compact.dynamic_power_mw < compact.static_power_mw    # 5 Hz: leakage dominates
    assert compact.luts is compact.carries is compact.ffs is None
    assert compact.netlist.is_file() and compact.log.is_file()
    assert json.loads(json.dumps(compact.to_json()))["target"] == target


@pytest.mark.synth
@pytest.mark.parametrize("target", PRINTED)
def test_registers_map_onto_library_flip_flops(tmp_path, target):
    design = write(tmp_path, "registered", REGISTERED)
    res = synthesize(design, "registered", target, tmp_path / "w")
    suffix = "_psuedo" if target == "printed-cnt" else ""
    assert res.cells.get(f"DFFX1{suffix}") == 6, res.cells
    assert res.cells.get(f"DFFNRX1{suffix}") == 4, res.cells
    assert res.area_um2 == pytest.approx(yosys_area(res), rel=1e-9)


@pytest.mark.synth
@pytest.mark.parametrize("target", ["fpga-ice40", "fpga-xc7"])
def test_fpga_targets_count_luts_and_flip_flops(tmp_path, target):
    design = write(tmp_path, "registered", REGISTERED)
    res = synthesize(design, "registered", target, tmp_path / "w")
    assert res.luts > 0 and res.ffs == 10, res.cells
    assert res.carries >= 0
    assert res.area_um2 is res.power_mw is None


@pytest.mark.synth
def test_fpga_luts_on_arithmetic(tmp_path):
    design = write(tmp_path, "neurons", NEURONS)
    res = synthesize(design, "neurons", "fpga-ice40", tmp_path / "w")
    assert res.luts > 50 and res.carries > 0 and res.ffs == 0, res.cells


@pytest.mark.synth
def test_broken_verilog_raises_tool_error_naming_the_log(tmp_path):
    design = write(tmp_path, "broken", BROKEN)
    with pytest.raises(ToolError) as info:
        synthesize(design, "broken", "printed", tmp_path / "w")
    err = info.value
    assert err.log and Path(err.log).is_file()
    assert err.log in str(err) and "ERROR" in str(err)
    assert err.returncode not in (None, 0)
    assert err.cwd == str(tmp_path / "w") and err.argv


@pytest.mark.synth
def test_missing_top_module_raises_tool_error(tmp_path):
    design = write(tmp_path, "neurons", NEURONS)
    with pytest.raises(ToolError, match="nosuchtop"):
        synthesize(design, "nosuchtop", "printed", tmp_path / "w")


# ----------------------------------------------------------------------------- the cache

def test_cache_key_ignores_comment_lines_only(tmp_path):
    """The key is the design less its full-line comments (the header names the model file),
    plus the flow: another target or a changed statement is another key."""
    from approxmlp.backend.synth import _FLOW, _cache_key, _stage

    def key(text, target="printed", sub="a"):
        work = tmp_path / sub
        work.mkdir(exist_ok=True)
        src = write(work, "neurons", text)
        lib = library_path(target) if target.startswith("printed") else None
        names = _stage(target, _FLOW[target], src, "neurons", work, lib)
        return _cache_key(work, names, _FLOW[target], target)

    k = key(NEURONS)
    assert key("// Model: from another file\n" + NEURONS.replace("    // QReLU", "  // another note\n    // QReLU"),
               sub="b") == k
    assert key(NEURONS.replace("11'sd9", "11'sd8"), sub="c") != k
    assert key(NEURONS, target="printed-cnt", sub="d") != k


@pytest.mark.synth
def test_cache_returns_the_same_result_without_running_yosys(tmp_path, monkeypatch):
    import approxmlp.backend.synth as synth

    monkeypatch.setenv(synth.CACHE_ENV, str(tmp_path / "cache"))
    design = write(tmp_path, "neurons", NEURONS)
    first = synthesize(design, "neurons", "printed", tmp_path / "w1")
    assert not first.cached and len(list((tmp_path / "cache").iterdir())) == 1
    ran = []
    monkeypatch.setattr(synth, "_run_yosys", lambda *a: ran.append(a))
    (tmp_path / "src2").mkdir()
    again = synthesize(write(tmp_path / "src2", "neurons", "// a header comment\n" + NEURONS), "neurons",
                       "printed", tmp_path / "w2")
    assert again.cached and not ran
    assert (again.cells, again.area_um2, again.static_power_mw) == (first.cells, first.area_um2, first.static_power_mw)
    assert again.netlist.read_text() == first.netlist.read_text() and again.log.is_file()
    monkeypatch.setenv(synth.CACHE_ENV, "off")
    with pytest.raises(ToolError):  # disabled: Yosys runs (here: the stub writes no statistics)
        synthesize(design, "neurons", "printed", tmp_path / "w3")
    assert ran


def fake_yosys(folder: Path) -> Path:
    """A Yosys that tells its version but fails every script, writing an error to its log."""
    path = folder / "fake-yosys"
    path.write_text('#!/bin/sh\nif [ "$1" = "-V" ]; then echo "Yosys 0.70 (fake)"; exit 0; fi\n'
                    'echo "ERROR: fake failure of $4" > "$3"; exit 1\n')
    path.chmod(0o755)
    return path


def test_a_failure_in_a_scratch_folder_quotes_the_log_it_deleted(tmp_path):
    """Issue 19: compile synthesizes in a scratch folder and removes it; the message must not
    send the user to a log that is gone (a fresh process: the Yosys look-up is cached)."""
    import subprocess
    import sys

    import torch

    from approxmlp.frontend.floatnet import make_mlp
    from tests.test_cli import assert_clean_failure

    model, out = tmp_path / "m.pt", tmp_path / "out"
    torch.manual_seed(0)
    torch.save(make_mlp(4, [3], 3).state_dict(), model)
    r = subprocess.run([sys.executable, "-m", "approxmlp.cli", "compile", str(model), "--data", "iris", "--out",
                        str(out), "--no-verify", "-q"], capture_output=True, text=True,
                       env=dict(os.environ, APPROXMLP_YOSYS=str(fake_yosys(tmp_path))))
    assert_clean_failure(r.returncode, r.stderr, out, "Yosys failed", "its log (since deleted) ended",
                         "ERROR: fake failure of printed.ys")
    assert "see /" not in r.stderr
