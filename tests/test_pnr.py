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
def test_a_design_that_fits_no_device_is_reported_not_raised(tmp_path, tiny, monkeypatch):
    """With only the 384-cell LP384 to try, a 64-neuron layer cannot fit: nextpnr's own
    refusal is recognized and the result says so."""
    from approxmlp.core.ir import MLP, Layer

    wide = MLP(n_inputs=8, input_bits=4, name="wide", layers=(
        Layer(weights=tuple(tuple((7 * i + 3 * j) % 23 - 11 for j in range(8)) for i in range(64)),
              biases=(0,) * 64, shift=2, activation="qrelu", act_bits=4),
        Layer(weights=tuple(tuple((5 * i + j) % 13 - 6 for j in range(64)) for i in range(4)),
              biases=(0,) * 4, shift=0, activation="linear"),
    ))
    rtl = write_rtl(tmp_path / "rtl" / "top.v", emit_verilog(wide))
    monkeypatch.setattr(pnr, "DEVICES", (("lp384", "qn32", 384),))
    res = pnr.place_and_route(rtl, "top", tmp_path / "w")
    assert not res.fits and res.tried == ("lp384",)
    assert res.logic_cells is None and res.fmax_mhz is None and res.device is None


@pytest.mark.synth
@pytest.mark.sim
def test_compile_for_ice40_reports_the_routed_design(tmp_path, iris_model):
    out = tmp_path / "ice40"
    assert main(["compile", str(iris_model), "--data", "iris", "--target", "fpga-ice40", "--out", str(out),
                 "-q", "--no-formal"]) == 0
    rep = json.loads((out / "report.json").read_text())
    p = rep["synthesis"]["pnr"]
    assert p["fits"] and p["device"] == "up5k" and p["logic_cells"] > 0 and p["fmax_mhz"] > 0
    assert (out / p["log"]).is_file()
    assert re.search(r"\| iCE40 after routing \| \d+ of 5280 logic cells on UP5K, \d+ carries, Fmax [\d.]+ MHz",
                     (out / "report.md").read_text())
    # --no-pnr: synthesis only
    out2 = tmp_path / "nopnr"
    assert main(["compile", str(iris_model), "--data", "iris", "--target", "fpga-ice40", "--out", str(out2),
                 "-q", "--no-formal", "--no-verify", "--no-pnr"]) == 0
    assert "pnr" not in json.loads((out2 / "report.json").read_text())["synthesis"]
