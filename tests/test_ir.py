"""The IR validates itself on construction and names the offending path."""

from __future__ import annotations

import json

import numpy as np
import pytest

from approxmlp.errors import IRError
from approxmlp.core.ir import Layer, MLP, NeuronApprox, signed_width, unsigned_width


def layer(w, b, **kw):
    return Layer(weights=w, biases=b, **kw)


def test_roundtrip_json_and_digest(tiny_approx):
    again = MLP.from_json(json.loads(tiny_approx.dumps()))
    assert again == tiny_approx
    assert again.digest == tiny_approx.digest
    assert again.layers[0].approx[0].input_masks == (0b1010, 0b1111, 0)


def test_digest_ignores_name_but_not_weights(tiny):
    from dataclasses import replace
    assert replace(tiny, name="other").digest == tiny.digest
    l0 = tiny.layers[0]
    changed = replace(tiny, layers=(replace(l0, biases=(5, -3)), tiny.layers[1]))
    assert changed.digest != tiny.digest


@pytest.mark.parametrize("kwargs, message", [
    (dict(input_bits=0), "input_bits must be in 1..16, not 0"),
    (dict(input_bits=17), "input_bits must be in 1..16, not 17"),
    (dict(n_inputs=2), "layer[0].weights[0] has 3 inputs, expected 2"),
    (dict(name="bad name"), "name must be a Verilog-safe identifier"),
])
def test_mlp_errors(tiny, kwargs, message):
    args = dict(n_inputs=tiny.n_inputs, input_bits=tiny.input_bits, layers=tiny.layers, name=tiny.name)
    args.update(kwargs)
    with pytest.raises(IRError) as e:
        MLP(**args)
    assert message in str(e.value)


def test_layer_shapes_disagree():
    with pytest.raises(IRError, match=r"layer\[1\]\.weights\[0\] has 3 inputs, expected 2"):
        MLP(n_inputs=2, input_bits=4, layers=(layer([[1, 2], [3, 4]], [0, 0]),
                                              layer([[1, 2, 3], [1, 1, 1]], [0, 0], activation="linear")))


def test_bias_count():
    with pytest.raises(IRError, match=r"layer\[0\] has 1 biases for 2 neurons"):
        MLP(n_inputs=1, input_bits=4, layers=(layer([[1], [2]], [0]),))


def test_float_weights_refused():
    with pytest.raises(IRError, match=r"weights\[0\]\[1\] must be an integer, not 0.5"):
        layer([[1, 0.5]], [0])
    with pytest.raises(IRError, match="must hold integers, not float64"):
        layer(np.array([[1.0, 2.0]]), [0])


def test_weight_range():
    with pytest.raises(IRError, match=r"layer\[0\]\.neuron\[0\]\.weight\[0\] must be in"):
        MLP(n_inputs=1, input_bits=4, layers=(layer([[1 << 30], [1]], [0, 0]),))


def test_hidden_linear_refused():
    with pytest.raises(IRError, match="only the last layer may be linear"):
        MLP(n_inputs=1, input_bits=4, layers=(layer([[1], [1]], [0, 0], activation="linear"),
                                              layer([[1, 1], [1, 1]], [0, 0])))


def test_output_layer_needs_two_classes():
    with pytest.raises(IRError, match="needs at least 2 neurons"):
        MLP(n_inputs=1, input_bits=4, layers=(layer([[1]], [0]),))


@pytest.mark.parametrize("approx, message", [
    (NeuronApprox(input_masks=(1, 2)), "input_masks has 2 entries, expected 1"),
    (NeuronApprox(input_masks=(16,)), r"input_masks\[0\] must be in 0..15, not 16"),
    (NeuronApprox(act_trunc=8), r"act_trunc must be in 0..7, not 8"),
    (NeuronApprox(cmp_drop=1), "cmp_drop must be 0 outside the last layer"),
])
def test_approx_errors(approx, message):
    with pytest.raises(IRError, match=message):
        MLP(n_inputs=1, input_bits=4, layers=(layer([[1], [1]], [0, 0], approx=(approx, NeuronApprox())),
                                              layer([[1, 1], [1, 1]], [0, 0], activation="linear")))


def test_widths():
    assert signed_width(0, 0) == 1
    assert signed_width(-1, 0) == 1
    assert signed_width(-128, 127) == 8
    assert signed_width(-129, 0) == 9
    assert signed_width(0, 128) == 9
    assert unsigned_width(0) == 1
    assert unsigned_width(15) == 4
    assert unsigned_width(16) == 5
