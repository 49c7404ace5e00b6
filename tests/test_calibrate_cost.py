"""flows/bench/calibrate_cost.py's synthesis cache: figures are filed under the circuit, not
the IR alone, so a figure measured on another emitter's circuit is never reused."""

from __future__ import annotations

import json

from approxmlp.backend.verilog import emit_verilog
from approxmlp.backend.verilog.primitives import write_rtl
from approxmlp.core.ir import MLP, Layer
from flows.bench.calibrate_cost import design_key, prefill

#: x0 + (x1 << 2) is in both neurons (5*x0 + 20*x1, 3*x0 + 12*x1): shared, a circuit of its own
SHARING = MLP(n_inputs=2, input_bits=4, name="sharing", layers=(
    Layer(weights=((5, 20), (3, 12)), biases=(0, 0), shift=0, activation="linear"),))


def test_the_key_follows_the_circuit_not_its_comments():
    m = SHARING
    shared, plain = emit_verilog(m, share=True), emit_verilog(m, share=False)
    assert "s0_0" in shared and "s0_0" not in plain
    assert design_key(m.digest, shared) == design_key(m.digest, "// another header\n" + shared)
    assert design_key(m.digest, shared).startswith(m.digest + ":")
    assert design_key(m.digest, shared) != design_key(m.digest, plain)


def test_prefill_files_a_run_under_the_circuit_it_synthesized(tmp_path):
    tiny = SHARING
    folder = tmp_path / "run" / "designs" / "p00"
    rtl = write_rtl(folder / "rtl" / "top.v", emit_verilog(tiny, share=False))
    (folder / "report.json").write_text(json.dumps({"target": "printed", "ir_sha256": tiny.digest,
                                                    "area_um2": 1234.0, "static_power_mw": 0.5}))
    assert prefill([tmp_path / "run"], "printed", tmp_path / "cache") == 1
    known = json.loads((tmp_path / "cache" / "synth-printed.json").read_text())
    assert list(known) == [design_key(tiny.digest, rtl.read_text(), near=rtl.parent)]
    # today's emitter writes another circuit for the same IR: the old figure is not its figure
    assert design_key(tiny.digest, emit_verilog(tiny)) not in known
