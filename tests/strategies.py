"""Random but valid IRs, in one place: Hypothesis strategies (weights at the extremes and
zero, every approximation knob, input batches that include the corner values) and, for tests
that need a given shape from a seeded generator, :func:`random_mlp` (dense, int or
power-of-two weights) and :func:`extreme_mlp` (every field at the edge of what the IR allows)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from approxmlp.core.ir import Layer, MLP, NeuronApprox


@st.composite
def weights(draw, bits: int):
    top = (1 << (bits - 1)) - 1
    return draw(st.one_of(st.just(0), st.just(top), st.just(-top - 1), st.just(1), st.just(-1),
                          st.integers(-top - 1, top)))


@st.composite
def mlps(draw, approx: bool = True, max_inputs: int = 6, max_depth: int = 3):
    n_in = draw(st.integers(1, max_inputs))
    in_bits = draw(st.integers(1, 8))
    depth = draw(st.integers(1, max_depth))
    sizes = [draw(st.integers(1, 5)) for _ in range(depth - 1)] + [draw(st.integers(2, 5))]
    layers, fan, op_bits = [], n_in, in_bits
    for li, n in enumerate(sizes):
        last = li == depth - 1
        wbits = draw(st.integers(2, 10))
        act = "linear" if last and draw(st.booleans()) else "qrelu"
        act_bits = draw(st.integers(1, 10))
        W = [[draw(weights(wbits)) for _ in range(fan)] for _ in range(n)]
        bias_span = 1 << (wbits + op_bits)
        b = [draw(st.integers(-bias_span, bias_span)) for _ in range(n)]
        recs = []
        for _ in range(n):
            if not approx or not draw(st.booleans()):
                recs.append(NeuronApprox())
                continue
            masks = (tuple(draw(st.integers(0, (1 << op_bits) - 1)) for _ in range(fan))
                     if draw(st.booleans()) else None)
            recs.append(NeuronApprox(
                input_masks=masks,
                product_trunc=draw(st.integers(0, 4)),
                act_trunc=draw(st.integers(0, act_bits - 1)) if act == "qrelu" else 0,
                cmp_drop=draw(st.integers(0, 6)) if last else 0))
        layers.append(Layer(weights=W, biases=b, shift=draw(st.integers(0, 8)), activation=act,
                            act_bits=act_bits, approx=tuple(recs)))
        fan, op_bits = n, act_bits
    return MLP(n_inputs=n_in, input_bits=in_bits, layers=tuple(layers))


def random_mlp(sizes, rng: np.random.Generator, *, weights: str = "int", wmax: int = 127, bias: int = 2000,
               shift: int = 6, act_bits: int = 8, input_bits: int = 4, name: str = "mlp") -> MLP:
    """An exact MLP of layer widths ``sizes`` (inputs first) drawn from ``rng``: QReLU hidden
    layers (``shift``, ``act_bits``), a linear output layer without shift, biases in
    [-bias, bias); weights uniform in [-wmax, wmax] (``"int"``) or +-2**0..5 (``"pow2"``)."""
    layers = []
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = k == len(sizes) - 2
        if weights == "pow2":
            W = (rng.choice([-1, 1], (b, a)) * 2 ** rng.integers(0, 6, (b, a))).tolist()
        else:
            W = rng.integers(-wmax, wmax + 1, size=(b, a)).tolist()
        layers.append(Layer(weights=W, biases=rng.integers(-bias, bias, size=b).tolist(), shift=0 if last else shift,
                            activation="linear" if last else "qrelu", act_bits=act_bits))
    return MLP(n_inputs=sizes[0], input_bits=input_bits, layers=tuple(layers), name=name)


def extreme_mlp(rng: np.random.Generator) -> MLP:
    """An exact MLP at the edges of what the IR allows: wide inputs and activations (no
    one-hot code), weights up to 2**23, biases up to 2**47, shifts up to 48."""
    n_in = int(rng.integers(1, 7))
    in_bits = int(rng.choice([1, 4, 8, 9, 16]))
    sizes = [int(rng.integers(1, 5)) for _ in range(int(rng.integers(0, 3)))] + [int(rng.integers(2, 5))]
    wtop = int(rng.choice([3, 1 << 10, (1 << 23) - 1]))
    layers, fan = [], n_in
    for li, n in enumerate(sizes):
        last = li == len(sizes) - 1
        btop = int(rng.choice([10, 1 << 30, (1 << 47) - 1]))
        layers.append(Layer(weights=rng.integers(-wtop, wtop + 1, size=(n, fan)),
                            biases=rng.integers(-btop, btop + 1, size=n), shift=int(rng.integers(0, 49)),
                            activation="linear" if last and rng.random() < 0.5 else "qrelu",
                            act_bits=int(rng.choice([1, 8, 16]))))
        fan = n
    return MLP(n_inputs=n_in, input_bits=in_bits, layers=tuple(layers))


@st.composite
def inputs_for(draw, mlp: MLP, n: int = 64):
    top = (1 << mlp.input_bits) - 1
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    X = rng.integers(0, top + 1, size=(n, mlp.n_inputs))
    X[0, :] = 0
    X[1, :] = top
    return X


@st.composite
def mlps_with_inputs(draw, approx: bool = True, n: int = 64):
    mlp = draw(mlps(approx=approx))
    return mlp, draw(inputs_for(mlp, n))
