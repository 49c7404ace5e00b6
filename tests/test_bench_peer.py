"""flows/bench/peer.py: the peer generator (da4ml) builds the same integer network as approxmlp,
bit-exactly (ties to the lower index, floor shifts, QReLU saturation), and the benchmark runs
end to end on one tiny model: both RTLs simulated against the golden model, synthesized, reported."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("da4ml")

from approxmlp.core.golden import predict
from approxmlp.core.ir import make_mlp
from flows.bench import peer


def _tiny():
    """3 x 4-bit inputs -> 4 QReLU (4-bit, some saturate) -> 3 linear with a shift (floor of
    negative sums); output neurons 0 and 1 are equal, so every win of theirs is a tie that
    must go to class 0."""
    return make_mlp(3, 4, [
        {"weights": [[5, -3, 7], [-8, 6, 2], [4, 4, -9], [12, 9, 11]], "biases": [-10, 20, 3, 40], "shift": 2,
         "activation": "qrelu", "act_bits": 4},
        {"weights": [[3, -2, 1, 2], [3, -2, 1, 2], [-1, 4, 2, -1]], "biases": [-3, -3, 5], "shift": 1,
         "activation": "linear"},
    ], name="tiny")


def _all_inputs(ir) -> np.ndarray:
    grid = np.indices((1 << ir.input_bits,) * ir.n_inputs).reshape(ir.n_inputs, -1).T
    return grid.astype(np.int64)


def test_da4ml_network_equals_the_golden_model_on_every_input():
    """da4ml's own bit-exact interpreter of the traced network, on all 4,096 inputs."""
    ir = _tiny()
    X = _all_inputs(ir)
    y = predict(ir, X)
    assert {0, 2} <= set(y.tolist()) and 1 not in y, "the tie rule decides this model"
    comb = peer.da4ml_comb(ir)
    got = np.asarray(comb.predict(X.astype(np.float64))).reshape(-1).astype(np.int64)
    assert np.array_equal(got, y)


def test_the_wrapper_has_approxmlps_ports_and_pads_a_narrow_index():
    ir = _tiny()
    text = peer.wrapper(ir, 12, 1)
    assert "input  wire [11:0] inp," in text and "output wire [1:0] out" in text
    assert "assign out = {1'd0, y};" in text
    with pytest.raises(ValueError, match="model_inp"):
        peer.wrapper(ir, 11, 2)


@pytest.mark.sim
@pytest.mark.synth
def test_peer_benchmark_runs_end_to_end_on_a_tiny_model(tmp_path):
    ir = _tiny()
    folder = tmp_path / "Tiny" / "compile"
    (folder / "vectors").mkdir(parents=True)
    (folder / "ir.json").write_text(ir.dumps())
    X = _all_inputs(ir)[::7]
    np.savez(folder / "vectors" / "test.npz", inputs=X, golden=predict(ir, X), labels=predict(ir, X))

    res = peer.run(tmp_path, targets=("printed",), pnr=False)
    (row,) = res["rows"]
    assert "error" not in row, row.get("traceback")
    for side in peer.SIDES:
        v = row["verify"][side]
        assert v["passed"] and v["mismatches"] == 0 and v["vectors"] > len(X) + peer.N_RANDOM
        assert v["test_vectors"] == len(X)
        assert row[side]["printed"] > 0
    assert row["da4ml_build"]["interpreter_mismatches"] == 0
    assert row["da4ml_build"]["adders"] > 0
    assert (tmp_path / "peer" / "Tiny" / "da4ml" / "top.v").is_file()

    md = "\n".join(peer.markdown(res))
    assert md.startswith("## Peer: da4ml")
    assert f"| Tiny {ir.topology_str} |" in md and "FAIL" not in md
    json.dumps(res)  # the result is kept as peer.json

    # the diagnostic variant: da4ml's logits under a plain-Verilog argmax, ties included
    res = peer.run_variant(tmp_path, res)
    v = res["rows"][0]["da4ml_verilog_argmax"]
    assert "error" not in v and v["verify"]["passed"] and v["printed"] > 0
    assert "*Diagnostic, not the comparison:* " in "\n".join(peer.markdown(res))
