"""Value ranges (core/ranges.py), which size every wire of the RTL: each bound holds every
value the IR semantics produce on any input, the first layer's bounds are reached, and the
widths derived from them hold the values."""

from __future__ import annotations

from hypothesis import given, settings

from approxmlp.core.golden import evaluate
from approxmlp.core.ir import MLP, Layer, NeuronApprox
from approxmlp.core.ranges import _max_masked, analyze
from tests.strategies import mlps, mlps_with_inputs


def trace(mlp: MLP, x) -> list[list[dict]]:
    """One sample through the IR in plain integers; per layer, per neuron: its products
    (input index -> signed product), accumulator, rescaled value and output."""
    v = [int(t) for t in x]
    layers = []
    for layer in mlp.layers:
        neurons = []
        for j, row in enumerate(layer.weights):
            a = layer.approx[j]
            products = {}
            for i, w in enumerate(row):
                xi = v[i] if a.input_masks is None else v[i] & a.input_masks[i]
                mag = (abs(w) * xi >> a.product_trunc) << a.product_trunc
                products[i] = (xi, mag if w >= 0 else -mag)
            acc = layer.biases[j] + sum(p for _, p in products.values())
            val = acc >> layer.shift
            out = val
            if layer.activation == "qrelu":
                out = (min(max(val, 0), (1 << layer.act_bits) - 1) >> a.act_trunc) << a.act_trunc
            neurons.append({"products": products, "acc": acc, "v": val, "out": out})
        layers.append(neurons)
        v = [n["out"] for n in neurons]
    return layers


def fits(value: int, width: int, signed: bool) -> bool:
    return -(1 << (width - 1)) <= value < (1 << (width - 1)) if signed else 0 <= value < (1 << width)


@settings(max_examples=200, deadline=None)
@given(mlps_with_inputs(n=24))
def test_every_value_lies_within_its_bounds(case):
    mlp, X = case
    ranges = analyze(mlp)
    golden = evaluate(mlp, X, trace=True).outputs
    for s, x in enumerate(X):
        for li, (layer, neurons) in enumerate(zip(ranges, trace(mlp, x))):
            for j, (r, n) in enumerate(zip(layer, neurons)):
                where = f"layer[{li}].neuron[{j}] on sample {s}"
                assert n["out"] == golden[li][s, j], where  # this trace is the golden model's
                assert r.acc_lo <= n["acc"] <= r.acc_hi, where
                assert r.v_lo <= n["v"] <= r.v_hi, where
                assert r.out_lo <= n["out"] <= r.out_hi, where
                assert fits(n["acc"], r.acc_width, True) and fits(n["out"], r.out_width, r.out_signed), where
                listed = {p.index: p for p in r.pos + r.neg}
                pos = neg = 0
                for i, (operand, product) in n["products"].items():
                    p = listed.get(i)
                    if p is None:  # a product the ranges fold or drop is a constant
                        continue
                    assert operand <= p.operand_max and p.mag_min <= abs(product) <= p.mag_max, where
                    pos, neg = pos + max(product, 0), neg + max(-product, 0)
                assert pos <= r.pos_max and neg <= r.neg_max, where


@settings(max_examples=200, deadline=None)
@given(mlps(max_depth=1))
def test_the_first_layers_bounds_are_reached(mlp):
    """Inputs are independent, so each first-layer neuron's accumulator reaches both of its
    bounds: nothing wider than needed is emitted."""
    top = (1 << mlp.input_bits) - 1
    layer = mlp.layers[0]
    for j, r in enumerate(analyze(mlp)[0]):
        masks = layer.approx[j].input_masks or (top,) * mlp.n_inputs
        best = [max(range(top + 1), key=lambda x: x & m) for m in masks]  # the largest masked operand
        hi = [b if w > 0 else 0 for b, w in zip(best, layer.weights[j])]
        lo = [b if w < 0 else 0 for b, w in zip(best, layer.weights[j])]
        assert trace(mlp, hi)[0][j]["acc"] == r.acc_hi
        assert trace(mlp, lo)[0][j]["acc"] == r.acc_lo


def test_a_dead_neuron_folds_into_the_next_layers_constant():
    """A hidden neuron that is 0 on every input (bias far below zero) is a constant operand:
    its product joins the bias, and the neuron downstream has no product for it."""
    ir = MLP(n_inputs=2, input_bits=4, layers=(
        Layer(weights=((1, 1), (1, -1)), biases=(-100, 0), shift=0, act_bits=4),
        Layer(weights=((5, 3), (-2, 1)), biases=(7, 1), activation="linear")))
    first, second = analyze(ir)
    assert (first[0].out_lo, first[0].out_hi) == (0, 0)
    assert [p.index for p in second[0].pos + second[0].neg] == [1] and second[0].const == 7
    assert (second[0].acc_lo, second[0].acc_hi) == (7, 7 + 3 * 15)


def test_masks_and_truncation_narrow_the_bounds():
    exact = MLP(n_inputs=1, input_bits=4, layers=(Layer(weights=((7,), (-7,)), biases=(0, 0), activation="linear"),))
    approx = MLP(n_inputs=1, input_bits=4, layers=(Layer(weights=((7,), (-7,)), biases=(0, 0), activation="linear",
                                                         approx=(NeuronApprox(input_masks=(0b1010,)),
                                                                 NeuronApprox(product_trunc=3))),))
    (e0, e1), = analyze(exact)
    (a0, a1), = analyze(approx)
    assert (e0.acc_lo, e0.acc_hi, e1.acc_lo, e1.acc_hi) == (0, 105, -105, 0)
    assert (a0.acc_lo, a0.acc_hi) == (0, 70)          # 7 * (15 & 0b1010)
    assert (a1.acc_lo, a1.acc_hi) == (-104, 0)        # 105 with its 3 low bits dropped


def test_max_masked_is_the_brute_force_maximum():
    for hi in range(64):
        for mask in range(64):
            assert _max_masked(hi, mask) == max(x & mask for x in range(hi + 1)), (hi, mask)
