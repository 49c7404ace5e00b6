"""ONNX and QONNX in (frontend/onnx_model.py, frontend/qonnx_model.py): the same IR as the
state_dict, bit-exact QONNX, and every kind of bad input refused with one line, exit 2."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import brevitas.export
import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from approxmlp.errors import ModelError
from approxmlp.frontend.loader import load_model

from .conftest import SPLITS, needs_shared


def _export(net: nn.Module, n_in: int, path: Path, **kw) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(1, n_in),), str(path), dynamo=False, input_names=["x"],
                          dynamic_axes={"x": {0: "batch"}}, **kw)
    return path


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "approxmlp", *args], capture_output=True, text=True)


def _graph(nodes, inits, *, n_in=4, n_out=3, opset=17, shape=None, ir_version=8) -> onnx.ModelProto:
    shape = shape or ["N", n_in]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", n_out])],
                          [numpy_helper.from_array(np.asarray(v, dtype=np.float32), k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = ir_version
    return m


def _mlp_graph(**kw) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    inits = {"W1": rng.normal(size=(5, 4)), "b1": rng.normal(size=5), "W2": rng.normal(size=(3, 5)),
             "b2": rng.normal(size=3)}
    inits.update(kw.pop("inits", {}))
    nodes = [helper.make_node("Gemm", ["x", "W1", "b1"], ["h"], name="fc1", transB=1),
             helper.make_node("Relu", ["h"], ["r"], name="relu1"),
             helper.make_node("Gemm", ["r", "W2", "b2"], ["y"], name="fc2", transB=1)]
    return _graph(kw.pop("nodes", nodes), inits, **kw)


# ----------------------------------------------------------------------------- acceptance
@needs_shared(SPLITS / "Cardio")
@pytest.mark.sim
def test_torch_onnx_export_compiles_to_the_state_dicts_ir(tmp_path):
    """Acceptance: torch.onnx.export and the state_dict of one model give the same IR digest
    on a reference split, and the design verifies on every test vector."""
    from approxmlp.frontend.data import load_dataset
    from approxmlp.frontend.floatnet import train_float

    data = load_dataset(str(SPLITS / "Cardio"))
    net = train_float(data.X_train, data.y_train, [3], data.n_classes, epochs=100, seed=0)
    torch.save(net.state_dict(), tmp_path / "cardio.pt")
    _export(net, data.n_features, tmp_path / "cardio.onnx")
    reports = {}
    for name in ("cardio.pt", "cardio.onnx"):
        r = _cli("compile", str(tmp_path / name), "--data", str(SPLITS / "Cardio"), "--out", str(tmp_path / name[-4:]),
                 "--no-synth", "-q")
        assert r.returncode == 0, r.stderr
        import json

        reports[name] = json.loads((tmp_path / name[-4:] / "report.json").read_text())
    a, b = reports["cardio.pt"], reports["cardio.onnx"]
    assert a["model"]["ir_sha256"] == b["model"]["ir_sha256"]
    v = b["verification"]
    assert v["vectors_by_kind"]["test"] == b["data"]["test"] and v["mismatches"] == 0 and v["passed"]


def test_dynamo_exporter_and_external_data(tmp_path, iris_net, iris_model):
    """torch's default (dynamo) exporter, whose weights may sit in a .data file next to the
    model, reads back as the same float model."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(iris_net, (torch.zeros(1, 4),), str(tmp_path / "m.onnx"), external_data=True)
    a, b = load_model(tmp_path / "m.onnx"), load_model(iris_model)
    for (Wa, ba), (Wb, bb) in zip(a.layers, b.layers):
        assert np.array_equal(Wa, Wb) and np.array_equal(ba, bb)


def test_matmul_add_flatten_softmax_argmax(tmp_path):
    rng = np.random.default_rng(1)
    W1, b1, W2, b2 = rng.normal(size=(4, 5)), rng.normal(size=5), rng.normal(size=(5, 3)), rng.normal(size=3)
    nodes = [helper.make_node("Flatten", ["x"], ["f"], name="flat", axis=1),
             helper.make_node("MatMul", ["f", "W1"], ["m"], name="mm1"),
             helper.make_node("Add", ["b1", "m"], ["h"], name="add1"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("MatMul", ["r", "W2"], ["m2"], name="mm2"),
             helper.make_node("Add", ["m2", "b2"], ["z"], name="add2"),
             helper.make_node("Softmax", ["z"], ["y"], name="softmax", axis=1)]
    m = _graph(nodes, {"W1": W1, "b1": b1, "W2": W2, "b2": b2}, shape=["N", 2, 2])
    onnx.save(m, tmp_path / "m.onnx")
    fm = load_model(tmp_path / "m.onnx")
    x = rng.normal(size=(50, 4))
    ref = np.maximum(x @ W1.astype(np.float32) + b1.astype(np.float32), 0) @ W2.astype(np.float32) + b2.astype(np.float32)
    assert np.array_equal(fm.predict(x), ref.argmax(1))


# ----------------------------------------------------------------------------- bad input
def _refused(tmp_path: Path, model: onnx.ModelProto | None, *patterns: str, name: str = "m.onnx") -> str:
    path = tmp_path / name
    if model is not None:
        onnx.save(model, path)
    with pytest.raises(ModelError) as exc:
        load_model(path)
    msg = str(exc.value)
    for p in patterns:
        assert p in msg, msg
    # and at the command line: one line, exit 2, nothing written
    out = tmp_path / "out"
    r = _cli("compile", str(path), "--data", "iris", "--out", str(out), "--no-verify", "--no-synth", "-q")
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not out.exists()
    return msg


def test_unsupported_operator_is_named(tmp_path):
    m = _mlp_graph(nodes=[helper.make_node("Gemm", ["x", "W1", "b1"], ["h"], name="fc1", transB=1),
                          helper.make_node("Tanh", ["h"], ["r"], name="act1"),
                          helper.make_node("Gemm", ["r", "W2", "b2"], ["y"], name="fc2", transB=1)])
    _refused(tmp_path, m, "unsupported operator Tanh", "'act1'")


def test_not_a_chain(tmp_path):
    m = _mlp_graph(nodes=[helper.make_node("Gemm", ["x", "W1", "b1"], ["h"], name="fc1", transB=1),
                          helper.make_node("Relu", ["h"], ["r"], name="relu1"),
                          helper.make_node("Add", ["r", "h"], ["s"], name="skip"),
                          helper.make_node("Gemm", ["s", "W2", "b2"], ["y"], name="fc2", transB=1)])
    _refused(tmp_path, m, "not a chain of dense layers")


def test_two_dense_layers_without_relu(tmp_path):
    m = _mlp_graph(nodes=[helper.make_node("Gemm", ["x", "W1", "b1"], ["h"], name="fc1", transB=1),
                          helper.make_node("Gemm", ["h", "W2", "b2"], ["y"], name="fc2", transB=1)])
    _refused(tmp_path, m, "without a Relu", "'fc2'")


def test_external_data_outside_the_folder_is_never_read(tmp_path, monkeypatch):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.ones(20, dtype=np.float32).tobytes())
    folder = tmp_path / "model"
    folder.mkdir()
    m = _mlp_graph()
    w = next(t for t in m.graph.initializer if t.name == "W1")
    w.ClearField("raw_data")
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "../secret.bin"), ("offset", "0"), ("length", "80")):
        e = w.external_data.add()
        e.key, e.value = k, v
    onnx.save(m, folder / "m.onnx")
    opened = []
    real_open = open

    def spy(file, *a, **k):
        opened.append(str(file))
        return real_open(file, *a, **k)

    monkeypatch.setattr("builtins.open", spy)
    with pytest.raises(ModelError, match="outside the model's folder"):
        load_model(folder / "m.onnx")
    assert not any("secret" in f for f in opened)
    monkeypatch.undo()
    _refused(folder, None, "'W1'", "outside the model's folder")
    # an absolute path is refused too
    w.external_data[0].value = str(secret)
    _refused(folder, m, "not a path inside the model's folder", name="abs.onnx")


def test_missing_external_file(tmp_path):
    m = _mlp_graph()
    w = next(t for t in m.graph.initializer if t.name == "W2")
    w.ClearField("raw_data")
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    e = w.external_data.add()
    e.key, e.value = "location", "weights.data"
    _refused(tmp_path, m, "'W2'", "does not exist")


def test_dynamic_feature_dimension(tmp_path):
    _refused(tmp_path, _mlp_graph(shape=["N", "features"]), "dynamic dimension 1", "'features'")


def test_mismatched_shapes(tmp_path):
    rng = np.random.default_rng(0)
    _refused(tmp_path, _mlp_graph(inits={"W2": rng.normal(size=(3, 6))}), "mismatched shapes")


def test_unknown_opset(tmp_path):
    _refused(tmp_path, _mlp_graph(opset=99, ir_version=10), "opset 99")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_initializer(tmp_path, bad):
    W = np.ones((5, 4))
    W[2, 1] = bad
    _refused(tmp_path, _mlp_graph(inits={"W1": W}), "'W1'", "NaN or inf")


def test_garbage_file(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"\x00not a protobuf" * 10)
    _refused(tmp_path, None, "ONNX")


def test_pickles_are_refused_unopened(tmp_path):
    for name in ("clf.pkl", "clf.joblib"):
        (tmp_path / name).write_bytes(b"not even opened")
        msg = _refused(tmp_path, None, "skops", "skl2onnx", name=name)
        assert "pickle" in msg


# ----------------------------------------------------------------------------- QONNX


def _qonnx_classes(path: Path, x: np.ndarray) -> np.ndarray:
    """Classes by the qonnx package's own executor, one sample at a time (batch 1 export)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    mw = ModelWrapper(str(path))
    iname, oname = mw.graph.input[0].name, mw.graph.output[0].name
    return np.array([int(np.argmax(execute_onnx(mw, {iname: row[None, :].astype(np.float32)})[oname]))
                     for row in x])


@pytest.fixture(scope="module")
def trained_iris(tmp_path_factory):
    """A tiny `approxmlp train` model on iris, saved as .pt and QONNX (int weights)."""
    from approxmlp.frontend import qat
    from approxmlp.frontend.data import load_dataset

    folder = tmp_path_factory.mktemp("qat")
    data = load_dataset("iris", seed=0)
    r = qat.train(data, qat.TrainConfig(hidden=(4,), epochs=20, float_epochs=20, restarts=1))
    qat.save(r, folder / "iris.pt")
    qat.save_qonnx(r, folder / "iris.onnx")
    return folder, data, r


def test_train_qonnx_compiles_to_the_same_ir_and_agrees_with_qonnx_execution(trained_iris):
    folder, data, r = trained_iris
    a, b = load_model(folder / "iris.onnx"), load_model(folder / "iris.pt")
    assert a.ir.digest == b.ir.digest == r.ir.digest
    codes = r.quantizer(data.X_test)
    from approxmlp.core import golden

    x = np.ldexp(codes.astype(np.float64), -r.ir.input_bits)   # what the graph takes: codes * 2**-bits
    assert np.array_equal(_qonnx_classes(folder / "iris.onnx", x), golden.predict(a.ir, codes))


def test_train_cli_writes_qonnx(tmp_path):
    r = _cli("train", "--data", "iris", "--hidden", "3", "--out", str(tmp_path / "m.pt"), "--qonnx",
             str(tmp_path / "m.onnx"), "--epochs", "5", "--float-epochs", "5", "--restarts", "1", "-q")
    assert r.returncode == 0, r.stderr
    assert load_model(tmp_path / "m.onnx").ir.digest == load_model(tmp_path / "m.pt").ir.digest


def _user_brevitas(tmp_path: Path, *, weight_quant, act_rounding_floor: bool, per_channel: bool = False) -> Path:
    """A Brevitas MLP as a user would write it, on raw iris features (input scale 2**-2)."""
    from brevitas.inject.enum import FloatToIntImplType, ScalingImplType
    from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU
    from brevitas.quant import Uint8ActPerTensorFixedPoint
    from brevitas.quant.scaled_int import IntBias

    class InQ(Uint8ActPerTensorFixedPoint):
        scaling_impl_type = ScalingImplType.CONST
        max_val = 8.0

    class ActQ(Uint8ActPerTensorFixedPoint):
        if act_rounding_floor:
            float_to_int_impl_type = FloatToIntImplType.FLOOR

    torch.manual_seed(0)
    kw = dict(weight_quant=weight_quant, bias_quant=IntBias, bias_bit_width=16, return_quant_tensor=False)
    if per_channel:
        kw["weight_scaling_per_output_channel"] = True
    net = nn.Sequential(QuantIdentity(act_quant=InQ, bit_width=5, return_quant_tensor=True),
                        QuantLinear(4, 6, bias=True, **kw),
                        QuantReLU(act_quant=ActQ, bit_width=6, return_quant_tensor=True),
                        QuantLinear(6, 3, bias=True, **kw))
    from approxmlp.frontend.data import load_dataset

    data = load_dataset("iris", seed=0)
    opt = torch.optim.Adam(net.parameters(), 0.02)
    x, y = torch.tensor(data.X_train, dtype=torch.float32), torch.tensor(data.y_train)
    net.train()
    for _ in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    net.eval()
    path = tmp_path / "user.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        brevitas.export.export_qonnx(net, input_t=x[:1], export_path=str(path))
    return path


def test_user_brevitas_pow2_floor_is_bit_exact(tmp_path):
    from brevitas.quant import Int8WeightPerTensorFixedPoint

    from approxmlp.core import golden
    from approxmlp.frontend.data import load_dataset

    path = _user_brevitas(tmp_path, weight_quant=Int8WeightPerTensorFixedPoint, act_rounding_floor=True)
    m = load_model(path)
    data = load_dataset("iris", seed=0)
    codes = m.quantizer(data.X_test)
    x = codes * m.quantizer.step        # the values the input Quant maps back onto these codes
    assert np.array_equal(_qonnx_classes(path, x), golden.predict(m.ir, codes))


def test_per_channel_pow2_weight_scales_are_absorbed(tmp_path):
    from brevitas.quant import Int8WeightPerTensorFixedPoint

    from approxmlp.core import golden
    from approxmlp.frontend.data import load_dataset

    class PerChannel(Int8WeightPerTensorFixedPoint):
        scaling_per_output_channel = True

    path = _user_brevitas(tmp_path, weight_quant=PerChannel, act_rounding_floor=True)
    m = load_model(path)
    codes = m.quantizer(load_dataset("iris", seed=0).X_test)
    assert np.array_equal(_qonnx_classes(path, codes * m.quantizer.step), golden.predict(m.ir, codes))


def test_float_scales_are_refused_or_requantized(tmp_path):
    from brevitas.quant import Int8WeightPerTensorFloat

    path = _user_brevitas(tmp_path, weight_quant=Int8WeightPerTensorFloat, act_rounding_floor=True)
    with pytest.raises(ModelError, match="not a power of two"):
        load_model(path)
    out = tmp_path / "hw"
    r = _cli("compile", str(path), "--data", "iris", "--out", str(out), "--no-verify", "--no-synth", "-q")
    assert r.returncode == 2 and "not a power of two" in r.stderr and "--requantize" in r.stderr
    assert "Traceback" not in r.stderr and not out.exists()
    r = _cli("compile", str(path), "--data", "iris", "--out", str(out), "--no-verify", "--no-synth", "--requantize")
    assert r.returncode == 0, r.stderr
    assert "re-quantized" in r.stderr and "->" in r.stderr


def test_round_half_even_activation_is_refused(tmp_path):
    from brevitas.quant import Int8WeightPerTensorFixedPoint

    path = _user_brevitas(tmp_path, weight_quant=Int8WeightPerTensorFixedPoint, act_rounding_floor=False)
    with pytest.raises(ModelError, match="rounds with ROUND"):
        load_model(path)
    assert load_model(path, requantize=True).metadata["requantized"]
