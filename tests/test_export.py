"""ONNX export (backend/onnx_export.py): onnxruntime's class equals the golden class on
every input, exact and approximate designs alike; `approxmlp export`; compile writes model.onnx."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from approxmlp.backend.onnx_export import export_onnx, run_onnx, write_onnx
from approxmlp.core import golden
from approxmlp.core.ir import MLP, Layer, NeuronApprox
from approxmlp.errors import ModelError

from .strategies import mlps_with_inputs


def _random_codes(ir: MLP, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 1 << ir.input_bits, size=(n, ir.n_inputs))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mlps_with_inputs(approx=True))
def test_onnx_equals_golden_on_random_irs(case):
    ir, x = case
    model = export_onnx(ir)
    assert np.array_equal(run_onnx(model, x), golden.predict(ir, x))


def _approximate_ir() -> MLP:
    rng = np.random.default_rng(3)
    W1 = rng.integers(-100, 100, size=(3, 4))
    W2 = rng.integers(-100, 100, size=(3, 3))
    l1 = Layer(weights=W1, biases=rng.integers(-500, 500, 3), shift=4, activation="qrelu", act_bits=6,
               approx=(NeuronApprox(input_masks=(15, 12, 0, 7), product_trunc=2, act_trunc=1),
                       NeuronApprox(product_trunc=3), NeuronApprox(act_trunc=2)))
    l2 = Layer(weights=W2, biases=rng.integers(-500, 500, 3), shift=0, activation="linear",
               approx=(NeuronApprox(cmp_drop=3), NeuronApprox(input_masks=(63, 60, 1)), NeuronApprox(cmp_drop=1)))
    return MLP(n_inputs=4, input_bits=4, layers=(l1, l2), name="approx")


def test_every_approximation_on_every_input():
    ir = _approximate_ir()
    codes = np.array(np.meshgrid(*[np.arange(16)] * 4)).reshape(4, -1).T   # all 65,536 inputs
    assert np.array_equal(run_onnx(export_onnx(ir), codes), golden.predict(ir, codes))


def test_export_is_refused_past_float64_exact_range(monkeypatch):
    """A real IR cannot reach 2**53 (24-bit weights, 16-bit operands, 48-bit biases would
    need thousands of inputs), so the bound is lowered to test the refusal."""
    import approxmlp.backend.onnx_export as ox

    monkeypatch.setattr(ox, "F64_EXACT", 1 << 10)
    ir = MLP(n_inputs=1, input_bits=4, layers=(Layer(weights=[[100], [1]], biases=[0, 0], shift=0,
                                                       activation="linear"),))
    with pytest.raises(ModelError, match="layer\\[0\\].neuron\\[0\\].*2\\*\\*53"):
        ox.export_onnx(ir)


def test_write_onnx_checks_and_writes(tmp_path):
    ir = _approximate_ir()
    info = write_onnx(ir, tmp_path / "model.onnx", check_codes=_random_codes(ir, 500))
    assert info["vectors"] == 500 and info["mismatches"] == 0
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "approxmlp", *args], capture_output=True, text=True)


def test_cli_export_folder(tmp_path):
    ir = _approximate_ir()
    (tmp_path / "ir.json").write_text(ir.dumps())
    r = _cli("export", str(tmp_path), "--format", "onnx")
    assert r.returncode == 0, r.stderr
    import onnx

    model = onnx.load(str(tmp_path / "model.onnx"))
    codes = _random_codes(ir, 10_000, seed=1)
    assert np.array_equal(run_onnx(model, codes), golden.predict(ir, codes))


def test_cli_export_bad_folder(tmp_path):
    r = _cli("export", str(tmp_path), "--format", "onnx")
    assert r.returncode == 2
    assert "ir.json" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "model.onnx").exists()


def test_compile_writes_model_onnx(tmp_path, iris_model):
    from approxmlp.pipeline.compiler import CompileOptions, compile_model

    out = tmp_path / "hw"
    report = compile_model(iris_model, "iris", out, CompileOptions(verify=False, synth=False))
    assert (out / "model.onnx").is_file()
    assert report["onnx"]["mismatches"] == 0 and report["onnx"]["vectors"] == report["data"]["test"]


@pytest.mark.slow
def test_export_of_an_explored_design(tmp_path, iris_model):
    """Acceptance: an approximate design from `explore` on iris (8 x 3), exported, equals
    the golden class on every test vector and on 10,000 random inputs."""
    out = tmp_path / "ex"
    r = _cli("explore", "--model", str(iris_model), "--data", "iris", "--out", str(out), "--population", "8",
             "--generations", "3", "-q")
    assert r.returncode == 0, r.stderr
    from approxmlp.pipeline.folder import load_ir, read_vectors

    designs = [d for d in sorted((out / "designs").iterdir()) if not load_ir(d).is_exact]
    assert designs, "explore found no approximate design"
    import onnx

    for d in designs:
        assert _cli("export", str(d), "--format", "onnx").returncode == 0
        ir, model = load_ir(d), onnx.load(str(d / "model.onnx"))
        vec = read_vectors(d)
        assert np.array_equal(run_onnx(model, vec["inputs"]), vec["golden"])
        codes = _random_codes(ir, 10_000, seed=2)
        assert np.array_equal(run_onnx(model, codes), golden.predict(ir, codes))
    json.dumps([str(d) for d in designs])
