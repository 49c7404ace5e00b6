"""Property: for random IRs (depth, widths, bit widths, weights incl. 0 and extremes, every
approximation knob), the emitted RTL simulated by Verilator equals the golden model.

Each hypothesis example draws a *batch* of designs that share one Verilator build (a
build costs seconds, a design in it almost nothing), so CI checks dozens of designs on
hundreds of vectors in a couple of builds.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from approxmlp.backend.verilog import class_width, emit_verilog
from approxmlp.core.golden import evaluate
from approxmlp.backend.sim_files import SimDesign
from approxmlp.backend.simulate import simulate
from tests.strategies import inputs_for, mlps

DESIGNS_PER_BUILD = 40


@pytest.mark.sim
@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_rtl_equals_golden_on_random_irs(tmp_path, data):
    designs = []
    for k in range(DESIGNS_PER_BUILD):
        mlp = data.draw(mlps(), label=f"mlp{k}")
        X = data.draw(inputs_for(mlp, n=100), label=f"inputs{k}")
        registered = k % 4 == 3
        module = f"d{k}"
        designs.append(SimDesign(module=module, verilog=emit_verilog(mlp, module=module, registered=registered),
                                 inputs=X, expected=evaluate(mlp, X).classes, input_bits=mlp.input_bits,
                                 out_width=class_width(mlp.n_classes), registered=registered))
    results = simulate(designs, tmp_path / "sim")
    failures = [str(r) for r in results if not r.ok]
    assert not failures, "\n".join(failures)
    assert sum(r.vectors for r in results) == DESIGNS_PER_BUILD * 100
