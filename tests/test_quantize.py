"""Model import and post-training quantization: refusals, folding, scales, accuracy."""

from __future__ import annotations

import math

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch import nn

from approxmlp.core import golden
from approxmlp.frontend.data import load_dataset
from approxmlp.frontend.input_quantizer import InputQuantizer
from approxmlp.errors import DataError, ModelError
from approxmlp.core.ir import MLP
from approxmlp.frontend.float_model import FloatMLP
from approxmlp.frontend.model_file import load_model, save_model
from approxmlp.frontend.quantize import (activation_shift, fold_input_scaling, input_quantizer_from_ir, quantize_ptq,
                                         weight_scale_log2)


# ----------------------------------------------------------------------------- helpers
def mlp_module(*dims: int, seed: int = 0) -> nn.Sequential:
    """``nn.Sequential(Linear, ReLU, ..., Linear)`` with the given widths."""
    torch.manual_seed(seed)
    mods: list[nn.Module] = []
    for a, b in zip(dims[:-1], dims[1:]):
        mods += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*mods[:-1])


def train_float(X: np.ndarray, y: np.ndarray, hidden: tuple[int, ...], n_classes: int, *,
                steps: int = 300, seed: int = 0) -> FloatMLP:
    """A quickly trained float MLP on raw features ``X``.

    Training runs on standardized features (Adam converges in a few hundred full-batch
    steps whatever the raw scale, e.g. Cardio's), then the standardization is folded into
    the first layer so the returned model takes raw features, as an exported one would.
    One thread: matrices this small gain nothing from more, and on a loaded machine
    torch's thread pool makes each backward pass ~100x slower."""
    mu, sd = X.mean(axis=0), X.std(axis=0)
    sd[sd == 0] = 1.0
    net = mlp_module(X.shape[1], *hidden, n_classes, seed=seed)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    Xt = torch.tensor((X - mu) / sd, dtype=torch.float32)
    yt = torch.tensor(y)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(steps):
            opt.zero_grad()
            nn.functional.cross_entropy(net(Xt), yt).backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    m = FloatMLP.from_state_dict(net.state_dict())
    (W, b), rest = m.layers[0], m.layers[1:]
    return FloatMLP(layers=((W / sd, b - (W / sd) @ mu),) + rest, names=m.names)


def ptq_report(model: FloatMLP, q: InputQuantizer, X_train, X_test, y_test, **kw) -> tuple[float, float, float, MLP]:
    """(float accuracy on the dequantized test codes, PTQ golden accuracy, agreement, IR)."""
    codes = q(X_test)
    ir = quantize_ptq(model, q, q(X_train), **kw)
    float_pred = model.predict(q.dequantize(codes))
    int_pred = golden.predict(ir, codes)
    return float(np.mean(float_pred == y_test)), float(np.mean(int_pred == y_test)), \
        float(np.mean(float_pred == int_pred)), ir


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, nn.Sequential]:
    net = mlp_module(4, 3, 2)
    p = tmp_path_factory.mktemp("m") / "small.pt"
    torch.save(net.state_dict(), p)
    return p, net


def save(tmp_path: Path, obj, name: str = "m.pt") -> Path:
    p = tmp_path / name
    torch.save(obj, p)
    return p


# ----------------------------------------------------------------------------- loading
def test_load_plain_state_dict_matches_torch(small):
    path, net = small
    m = load_model(path)
    assert m.topology == (4, 3, 2) and m.names == ("0", "2") and m.metadata == {}
    assert m.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    X = np.random.default_rng(0).normal(size=(20, 4))
    with torch.no_grad():
        ref = net(torch.tensor(X, dtype=torch.float32)).numpy()
    assert np.allclose(m.logits(X), ref, atol=1e-5)


def test_load_wrapped_with_metadata_and_any_prefix(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2, self.out = nn.Linear(3, 5), nn.Linear(5, 4, bias=False), nn.Linear(4, 2)

    sd = Net().state_dict()
    meta = {"input_lo": [0, 0, -1.0], "input_hi": [1, 2, 1.0], "class_names": ["no", "yes"], "format": "test/1"}
    m = load_model(save(tmp_path, {"state_dict": sd, "metadata": meta}))
    assert m.topology == (3, 5, 4, 2) and m.names == ("fc1", "fc2", "out")
    assert np.array_equal(m.layers[1][1], np.zeros(4))          # missing bias is zero
    assert m.metadata["class_names"] == ["no", "yes"]
    q = m.input_quantizer(4)
    assert q.lo.tolist() == [0, 0, -1] and q.hi.tolist() == [1, 2, 1] and q.bits == 4


def test_save_model_round_trip(tmp_path):
    m = FloatMLP.from_state_dict(mlp_module(3, 4, 2).state_dict(), {"class_names": ["a", "b"]})
    p = tmp_path / "m.pt"
    save_model(p, m, {"format": "x"})
    back = load_model(p)
    assert back.names == m.names and back.metadata == {"class_names": ["a", "b"], "format": "x"}
    assert all(np.array_equal(a, b) for la, lb in zip(m.layers, back.layers) for a, b in zip(la, lb))


class Evil:
    """A pickle that needs code (this class) to load."""


@pytest.mark.parametrize("make,phrase", [
    (lambda d: d / "missing.pt", "not found"),
    (lambda d: d, "is a folder"),
    (lambda d: _write(d / "t.pt", b"hello, I am text"), "is not a PyTorch file"),
    (lambda d: _write(d / "e.pt", b""), "is empty"),
    (lambda d: _truncated(d), "not a readable PyTorch file"),
    (lambda d: _write(d / "p.pkl", pickle.dumps(Evil())), "refusing to run code from the model file"),
    (lambda d: save(d, mlp_module(4, 3, 2)), "refusing to run code from the model file"),
    (lambda d: save(d, torch.zeros(3)), "holds a Tensor where a state_dict was expected"),
    (lambda d: save(d, {"state_dict": mlp_module(2, 2).state_dict(), "metadata": [1]}), "'metadata' is of type list"),
])
def test_unreadable_files_are_refused(tmp_path, make, phrase):
    with pytest.raises(ModelError, match=phrase):
        load_model(make(tmp_path))


def test_refusal_suggests_state_dict(tmp_path):
    with pytest.raises(ModelError, match=r"save a state_dict instead \(torch.save\(model.state_dict\(\)"):
        load_model(save(tmp_path, mlp_module(4, 3, 2)))


def _write(p: Path, data: bytes) -> Path:
    p.write_bytes(data)
    return p


def _truncated(d: Path) -> Path:
    full = save(d, mlp_module(4, 3, 2).state_dict(), "full.pt").read_bytes()
    return _write(d / "cut.pt", full[: len(full) // 2])


def _sd(**tensors) -> dict:
    return {k.replace("__", "."): v for k, v in tensors.items()}


@pytest.mark.parametrize("state_dict,phrase", [
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2)).state_dict(),
     r"'0.weight' has shape \(2, 1, 3, 3\) \(a convolution kernel\?\)"),
    (nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2)).state_dict(), "batch-norm statistics"),
    (nn.Sequential(nn.Linear(4, 3), nn.LayerNorm(3), nn.Linear(3, 2)).state_dict(), "normalization layer's scale"),
    (_sd(a__weight=torch.zeros(3, 4), b__weight=torch.zeros(2, 5)),
     "layer 1 .'b.weight'. takes 5 inputs but layer 0 produces 3"),
    (_sd(a__weight=torch.zeros(3, 4), a__bias=torch.zeros(2)),
     r"'a.bias' has shape \(2,\) but 'a.weight' has 3 outputs"),
    (_sd(a__weight=torch.zeros(3, 4), a__bias=torch.zeros(3, 1)), r"'a.bias' has shape \(3, 1\); a Linear bias is 1-D"),
    (_sd(a__weight=torch.zeros(3, 4), b__weight=torch.tensor([[0.0, float("nan"), 0.0]])),
     "'b.weight' contains NaN or inf"),
    (_sd(a__weight=torch.zeros(3, 4), a__bias=torch.tensor([0.0, float("inf"), 0.0])),
     "'a.bias' contains NaN or inf"),
    (_sd(a__bias=torch.zeros(3)), "'a.bias' has no matching 'a.weight'"),
    ({"a.weight": torch.zeros(2, 2), "epoch": 3}, "'epoch' is not a Linear weight or bias"),
    ({"a.weight": torch.zeros(2, 2), "b.weight": 3}, "'b.weight' is of type int, not a tensor"),
    ({}, "no Linear layers found"),
])
def test_non_mlp_tensors_are_refused(tmp_path, state_dict, phrase):
    with pytest.raises(ModelError, match=phrase):
        load_model(save(tmp_path, state_dict))


@pytest.mark.parametrize("meta,phrase", [
    ({"input_lo": [0.0, 1.0]}, "'input_lo' must be a list of 4 finite numbers"),
    ({"input_hi": [0.0, 1.0, 2.0, float("nan")]}, "'input_hi' must be a list of 4 finite numbers"),
    ({"class_names": ["a"]}, "'class_names' must list 2 names"),
])
def test_bad_metadata_is_refused(tmp_path, small, meta, phrase):
    sd = load_model(small[0]).state_dict()
    with pytest.raises(ModelError, match=phrase):
        load_model(save(tmp_path, {"state_dict": sd, "metadata": meta}))


# ----------------------------------------------------------------------------- PTQ mechanics
def test_ptq_by_hand():
    """Every number of a tiny PTQ worked out on paper (step 1, so x = q)."""
    model = FloatMLP(layers=((np.array([[1.0, -0.5], [0.25, 0.25]]), np.array([0.5, 0.0])),
                             (np.array([[1.0, -1.0], [-1.0, 1.0]]), np.array([0.0, 0.5]))))
    q = InputQuantizer(lo=[0.0, 0.0], hi=[15.0, 15.0], bits=4)
    ir = quantize_ptq(model, q, np.array([[15, 0], [0, 15], [15, 15]]), weight_bits=4, act_bits=4)
    l0, l1 = ir.layers
    # weights: max 1 with 3 magnitude bits -> scale 2**-2; accumulators up to 62 -> shift 3
    assert l0.weights == ((4, -2), (1, 1)) and l0.shift == 3 and l0.act_bits == 4 and l0.activation == "qrelu"
    assert l0.biases == (2 + 4, 0 + 4)                     # 0.5 / 2**-2, plus rounding offset 2**(3-1)
    # layer 1: input scale 2**(-2+3), weight scale 2**-2 -> accumulator scale 2**-1
    assert l1.weights == ((4, -4), (-4, 4)) and l1.biases == (0, 1) and l1.shift == 0
    assert l1.activation == "linear"
    assert json.loads(dict(ir.meta)["scale_log2"]) == [1, -1]


def test_ptq_meta_records_provenance(small):
    path, _ = small
    m = load_model(path)
    q = InputQuantizer.fit(np.random.default_rng(0).normal(size=(30, 4)), 4)
    ir = quantize_ptq(m, q, q(np.random.default_rng(1).normal(size=(30, 4))), weight_bits=6, act_bits=5, name="tiny")
    meta = dict(ir.meta)
    assert meta["source_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (meta["weight_bits"], meta["act_bits"], meta["input_bits"]) == ("6", "5", "4")
    assert ir.name == "tiny" and ir.input_bits == 4 and ir.topology == (4, 3, 2)
    assert input_quantizer_from_ir(ir) == q
    assert max(abs(w) for w in np.ravel(ir.layers[0].weight_matrix)) <= 31
    assert MLP.from_json(json.loads(ir.dumps())) == ir


@pytest.mark.parametrize("kw,phrase", [
    ({"weight_bits": 0}, "--weight-bits must be an integer in 2..16, not 0"),
    ({"weight_bits": 1}, "--weight-bits must be an integer in 2..16, not 1"),
    ({"act_bits": 17}, "--act-bits must be an integer in 1..16, not 17"),
])
def test_ptq_bit_widths_validated(kw, phrase):
    m = FloatMLP.from_state_dict(mlp_module(2, 2, 2).state_dict())
    q = InputQuantizer.fit(np.eye(2), 4)
    with pytest.raises(ModelError, match=phrase):
        quantize_ptq(m, q, q(np.eye(2)), **kw)


def test_ptq_refuses_mismatched_or_raw_inputs():
    m = FloatMLP.from_state_dict(mlp_module(3, 2, 2).state_dict())
    q3 = InputQuantizer.fit(np.eye(3), 4)
    with pytest.raises(ModelError, match="takes 3 inputs but the data set has 2 features"):
        quantize_ptq(m, InputQuantizer.fit(np.eye(2), 4), np.zeros((2, 2), dtype=int))
    with pytest.raises(DataError, match="integer codes in 0..15"):
        quantize_ptq(m, q3, np.eye(3) * 0.5)
    with pytest.raises(DataError, match="non-empty"):
        quantize_ptq(m, q3, np.zeros((0, 3), dtype=int))


small_floats = st.floats(min_value=-4, max_value=4, allow_nan=False, width=64)


@settings(max_examples=60, deadline=None)
@given(W=hnp.arrays(np.float64, (3, 2), elements=small_floats), b=hnp.arrays(np.float64, 3, elements=small_floats),
       W2=hnp.arrays(np.float64, (2, 3), elements=small_floats),
       lo=hnp.arrays(np.float64, 2, elements=small_floats), width=hnp.arrays(
           np.float64, 2, elements=st.floats(min_value=0, max_value=10)), bits=st.integers(1, 8))
def test_folding_is_the_same_function(W, b, W2, lo, width, bits):
    model = FloatMLP(layers=((W, b), (W2, np.zeros(2))))
    q = InputQuantizer(lo=lo, hi=lo + width, bits=bits)
    codes = np.arange(2 ** bits)[:, None].repeat(2, axis=1)
    folded = fold_input_scaling(model, q)
    assert np.allclose(folded.logits(codes), model.logits(q.dequantize(codes)), atol=1e-9, rtol=1e-9)


@given(W=hnp.arrays(np.float64, (3, 4), elements=st.floats(min_value=-1e4, max_value=1e4)),
       bits=st.integers(2, 16))
def test_weight_scale_is_the_finest_that_fits(W, bits):
    e = weight_scale_log2(W, bits)
    qmax = 2 ** (bits - 1) - 1
    m = np.abs(W).max()
    if m == 0:
        assert e == 0
    else:
        assert math.ldexp(m, -e) <= qmax < math.ldexp(m, -(e - 1))


@given(acc=hnp.arrays(np.int64, 5, elements=st.integers(-10 ** 9, 10 ** 9)), bits=st.integers(1, 16))
def test_activation_shift_is_the_smallest_that_fits(acc, bits):
    s = activation_shift(acc, bits)
    top = 2 ** bits - 1
    m = max(int(acc.max()), 0)
    fits = lambda t: (m + (2 ** t >> 1)) >> t <= top  # noqa: E731
    assert fits(s) and (s == 0 or not fits(s - 1))


# ----------------------------------------------------------------------------- PTQ accuracy
@pytest.fixture(scope="module", params=[("iris", (8,)), ("breast_cancer", (8,))], ids=lambda p: p[0])
def trained(request):
    name, hidden = request.param
    d = load_dataset(name)
    return d, train_float(d.X_train, d.y_train, hidden, d.n_classes)


def test_ptq_accuracy_close_to_float(trained):
    d, model = trained
    q = InputQuantizer.fit(d.X_train, 4)
    acc_float, acc_int, agree, ir = ptq_report(model, q, d.X_train, d.X_test, d.y_test)
    assert acc_float > 0.85
    assert abs(acc_int - acc_float) <= 0.04
    assert agree >= 0.95
    assert ir.topology == (d.n_features, 8, d.n_classes)


def test_ptq_with_wide_words_agrees_with_float(trained):
    """With 16-bit weights and activations PTQ is (almost) the float model on the same
    codes, which checks the folding and the scale bookkeeping end to end."""
    d, model = trained
    q = InputQuantizer.fit(d.X_train, 4)
    X = np.vstack([d.X_train, d.X_test])
    codes = q(X)
    ir = quantize_ptq(model, q, q(d.X_train), weight_bits=16, act_bits=16)
    agree = np.mean(golden.predict(ir, codes) == model.predict(q.dequantize(codes)))
    assert agree >= 0.99


# The literature's topologies (Afentaki et al., ICCAD 2023) on its reference splits; the
# grid-quantized splits keep their own integers (for_prequantized); Cardio (raw) and the
# min-max scaled Pendigits and WhiteWine splits are fitted.
LITERATURE = [("splits/Breast_Cancer", (3,)), ("splits/Cardio", (3,)), ("splits/Pendigits", (5,)),
              ("splits/RedWine", (2,)), ("splits/WhiteWine", (4,))]


@pytest.mark.slow
@pytest.mark.parametrize("spec,hidden", LITERATURE, ids=[s for s, _ in LITERATURE])
def test_ptq_on_reference_splits(spec, hidden, datasets):
    d = load_dataset(str(datasets / spec))
    model = train_float(d.X_train, d.y_train, hidden, d.n_classes, steps=500)
    q = (InputQuantizer.for_prequantized(d.n_features, 4) if InputQuantizer.is_prequantized(d.X_train, 4)
         else InputQuantizer.fit(d.X_train, 4))
    acc_float, acc_int, agree, _ = ptq_report(model, q, d.X_train, d.X_test, d.y_test)
    print(f"{spec}: float {acc_float:.4f} ptq {acc_int:.4f} agree {agree:.4f}")
    assert abs(acc_int - acc_float) <= 0.03
