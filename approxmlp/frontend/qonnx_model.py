"""QONNX in, bit-exact: a chain with ``Quant`` nodes becomes the IR it already computes.

Brevitas' ``export_qonnx`` writes ``Quant(x, scale, zero_point, bits)`` nodes on the input,
on every weight and bias and after every ReLU. With power-of-two scales every rescale is a
shift, and the IR is read off the graph without re-quantizing anything:

* the input ``Quant`` (unsigned, zero point 0) gives the input codes and their scale
  ``2**e_in`` (per tensor or per feature);
* a weight ``Quant`` gives the integers ``W_int`` (computed as the node computes them) at
  scale ``2**e_w`` (per tensor, per output or per input channel); a bias ``Quant`` (or a
  float bias that is an exact multiple of the accumulator step) gives ``b_int``;
* the accumulator of a layer is put on the finest of its products' and bias' scales
  ``2**e_acc`` by left-shifting the coarser integers (exact);
* the activation ``Quant`` after ``Relu`` (unsigned, **floor** rounding, as
  ``approxmlp train`` exports) at ``2**e_out`` is ``clamp(acc >> (e_out - e_acc), 0,
  2**bits - 1)``: the IR's QReLU. Per-channel output scales are absorbed by left-shifting
  each neuron's row to a common shift;
* the last layer stays at accumulator scale (linear, shift 0): the argmax of the float
  logits and of the integers agree, ties included.

What the IR cannot express exactly is refused with the tensor or node and why (a scale
that is not a power of two, rounding half to even before a right shift, a zero point, a
float weight, a quantized output...), or with ``requantize=True`` the graph's float
values (weights and biases as the ``Quant`` nodes dequantize them) go through the
ordinary PTQ instead, the reason kept in the metadata (``requantized``).

The input quantizer: the model's ``metadata_props`` ``approxmlp.input_lo``/``input_hi``
where ``approxmlp train --qonnx`` wrote them (its graph takes ``codes * 2**-bits``), else
the input ``Quant`` itself: raw features ``x`` map to ``round(x / 2**e_in)``, i.e.
``lo = 0, hi = 2**e_in * (2**bits - 1)``.
"""

from __future__ import annotations

import json

import numpy as np

from ..core.ir import MLP, Layer
from ..errors import ApproxMLPError, ModelError
from .input_quantizer import InputQuantizer
from .onnx_chain import ActQuant, Chain, Dense, QuantParams, Relu, bias_vector
from .onnx_model import binary_logits, float_mlp, metadata_of

#: ``quantization`` entry of the IR meta of an imported QONNX model.
SCHEME = "qonnx-pow2-scales"


class InexactQuantization(ModelError):
    """The QONNX graph computes something the IR cannot express exactly."""


def _refuse(chain: Chain, what: str) -> InexactQuantization:
    return InexactQuantization(f"{chain.source}: {what}; the IR rescales by shifts only, so the model cannot be "
                               "compiled bit-exactly (re-export with power-of-two scales and floor rounding, or pass "
                               "--requantize to re-quantize it post-training)")


def pow2_exponents(chain: Chain, q: QuantParams) -> np.ndarray:
    """Integer exponents of a Quant node's scale; refuses any scale that is not ``2**k``."""
    m, e = np.frexp(q.scale)
    if not np.all(m == 0.5):
        bad = float(q.scale.reshape(-1)[int(np.argmax((m != 0.5).reshape(-1)))])
        raise _refuse(chain, f"the scale {q.scale_name!r} of Quant node {q.node!r} is {bad!r}, not a power of two")
    return (e - 1).astype(np.int64)


def _zero_point(chain: Chain, q: QuantParams, what: str) -> None:
    if np.any(q.zero_point != 0):
        raise _refuse(chain, f"Quant node {q.node!r} ({what}) has a non-zero zero point")


def _exact_int(chain: Chain, x: np.ndarray, what: str) -> np.ndarray:
    if not np.all(x == np.round(x)) or np.any(np.abs(x) >= 2.0 ** 52):
        raise _refuse(chain, what)
    return x.astype(np.int64)


def load_qonnx_chain(chain: Chain, sha256: str | None, *, requantize: bool = False):
    """The :class:`IntegerModel` of a QONNX chain, or with ``requantize`` and a graph the IR
    cannot express exactly, the :class:`FloatMLP` of its dequantized values."""
    try:
        return integer_model(chain, sha256)
    except InexactQuantization as exc:
        if not requantize:
            raise
        reason = str(exc).split(": ", 1)[-1].split("; the IR", 1)[0]
    fm = float_mlp(_dequantized(chain), sha256)
    from .float_model import FloatMLP

    return FloatMLP(layers=fm.layers, metadata=dict(fm.metadata) | {"requantized": reason}, names=fm.names,
                    source=fm.source, sha256=fm.sha256)


def _dequantized(chain: Chain) -> Chain:
    """The chain without its activation Quant nodes (weights stay dequantized floats); the
    input Quant's range becomes the input quantizer's, unless the metadata gives one."""
    steps = [s for s in chain.steps if not isinstance(s, ActQuant)]
    meta = dict(chain.metadata)
    first = chain.steps[0]
    if isinstance(first, ActQuant) and "approxmlp.input_lo" not in meta:
        q = first.params
        hi = np.broadcast_to(q.scale.reshape(-1), (chain.n_features,)) * q.int_range()[1]
        lo = np.broadcast_to((-q.zero_point * q.scale).reshape(-1), (chain.n_features,))
        meta["approxmlp.input_lo"], meta["approxmlp.input_hi"] = json.dumps(lo.tolist()), json.dumps(hi.tolist())
    return Chain(source=chain.source, input_name=chain.input_name, n_features=chain.n_features, steps=steps,
                 metadata=meta, binary_sigmoid=chain.binary_sigmoid)


def integer_model(chain: Chain, sha256: str | None):
    from .model_file import IntegerModel

    steps = list(chain.steps)
    if not steps or not isinstance(steps[0], ActQuant):
        raise _refuse(chain, f"the input {chain.input_name!r} goes into the first layer without a Quant node "
                             "(the IR's inputs are integers)")
    q_in = steps.pop(0).params
    if q_in.signed:
        raise _refuse(chain, f"the input Quant node {q_in.node!r} is signed; the IR's inputs are unsigned")
    _zero_point(chain, q_in, "the input")
    input_bits = int(q_in.bits)
    e_in = np.broadcast_to(pow2_exponents(chain, q_in).reshape(-1), (chain.n_features,)).copy()
    layers, scales = [], []
    k = 0
    while steps:
        dense = steps.pop(0)
        if not isinstance(dense, Dense):
            raise ModelError(f"{chain.source}: {type(dense).__name__} node {getattr(dense, 'node', '')!r} where a dense "
                             "layer was expected: not a chain of dense layers")
        W, e_acc = _layer_integers(chain, dense, e_in, k)
        relu = bool(steps) and isinstance(steps[0], Relu)
        if relu:
            steps.pop(0)
        act = steps.pop(0).params if steps and isinstance(steps[0], ActQuant) else None
        last = not steps
        Wm, b = W
        if last:
            if relu or act is not None:
                what = "a Quant node" if act is not None else "a Relu"
                raise _refuse(chain, f"{what} follows the last dense layer {dense.node!r} (the logits must stay linear "
                                     "at accumulator scale)")
            if chain.binary_sigmoid:
                Wm, b = binary_logits(chain.source, Wm, b)
                Wm, b = Wm.astype(np.int64), b.astype(np.int64)
            layers.append(Layer(weights=Wm, biases=b, shift=0, activation="linear"))
            scales.append(int(e_acc))
            break
        if act is None:
            raise ModelError(f"{chain.source}: dense layer {dense.node!r} is followed by "
                             f"{'Relu' if relu else 'another layer'} but no activation Quant node; a QONNX hidden "
                             "layer needs Relu + Quant (QuantReLU)")
        _zero_point(chain, act, "an activation")
        act_bits = int(act.bits)
        if act.signed:
            if not relu:
                raise _refuse(chain, f"the signed activation Quant node {act.node!r} has no Relu before it (the IR's "
                                     "hidden activations are QReLU)")
            act_bits -= 1    # after a Relu a signed quantizer only uses its non-negative half
        if act.narrow and not act.signed:
            raise _refuse(chain, f"the unsigned activation Quant node {act.node!r} has a narrow range")
        e_out = np.broadcast_to(pow2_exponents(chain, act).reshape(-1), (Wm.shape[0],)).astype(np.int64)
        top = int(e_out.max())
        # Neuron j's output is acc_j >> (e_out_j - e_acc): a common shift after a left
        # shift of its row by top - e_out_j.
        lift = (top - e_out)[:, None]
        Wm, b = Wm << lift, b << lift[:, 0]
        shift = top - e_acc
        if shift < 0:
            Wm, b, shift = Wm << -shift, b << -shift, 0
        elif shift > 0 and act.rounding != "FLOOR":
            raise _refuse(chain, f"the activation Quant node {act.node!r} rounds with {act.rounding} after a right "
                                 f"shift of {shift} bits (an arithmetic shift floors; export the activation with "
                                 "floor rounding, as approxmlp train does)")
        try:
            layers.append(Layer(weights=Wm, biases=b, shift=int(shift), activation="qrelu", act_bits=act_bits))
        except ApproxMLPError as exc:
            raise ModelError(f"{chain.source}: layer {k} ({dense.node!r}) does not fit the IR ({exc})") from None
        scales.append(int(top))
        e_in = e_out.copy()
        k += 1
    meta = metadata_of(chain)
    quantizer = _quantizer(chain, q_in, meta, input_bits)
    ir_meta = {"quantization": SCHEME, "source": chain.source, "source_sha256": sha256 or "unknown",
               "input_bits": input_bits, "input_lo": json.dumps(quantizer.lo.tolist()),
               "input_hi": json.dumps(quantizer.hi.tolist()), "scale_log2": json.dumps(scales)}
    if "class_names" in meta:
        ir_meta["class_names"] = json.dumps([str(c) for c in meta["class_names"]])
    try:
        ir = MLP(n_inputs=chain.n_features, input_bits=input_bits, layers=tuple(layers), name="mlp",
                 meta={key: str(v) for key, v in ir_meta.items()})
    except ApproxMLPError as exc:
        raise ModelError(f"{chain.source}: the QONNX model does not fit the IR ({exc})") from None
    wbits = max(int(s.weight.quant.bits) for s in chain.steps if isinstance(s, Dense) and s.weight.quant)
    hidden = [layer.act_bits for layer in ir.layers if layer.activation == "qrelu"]
    md = {"weight_bits": wbits, "act_bits": max(hidden) if hidden else 8, "quantization": SCHEME} | meta
    return IntegerModel(ir=ir, quantizer=quantizer, metadata=md, source=chain.source, sha256=sha256)


def _layer_integers(chain: Chain, dense: Dense, e_in: np.ndarray, k: int):
    """``((W_int, b_int), e_acc)`` of one dense node, every product and the bias on the
    accumulator scale ``2**e_acc``."""
    if dense.alpha != 1.0 or dense.beta != 1.0:
        raise _refuse(chain, f"Gemm node {dense.node!r} has alpha={dense.alpha}, beta={dense.beta}")
    wq = dense.weight.quant
    if wq is None:
        raise _refuse(chain, f"the weight {dense.weight.name!r} of node {dense.node!r} is float, not quantized by a "
                             "Quant node")
    _zero_point(chain, wq, f"weight {dense.weight.name!r}")
    raw = np.asarray(dense.weight.value, dtype=np.float64)
    W_int = _exact_int(chain, wq.to_int(raw), f"the weight {dense.weight.name!r} does not quantize to integers")
    e_w = np.broadcast_to(pow2_exponents(chain, wq), raw.shape)
    if dense.transposed:
        W_int, e_w = W_int.T, e_w.T
    n_out, n_in = W_int.shape
    if n_in != len(e_in):
        raise ModelError(f"{chain.source}: dense node {dense.node!r} takes {n_in} inputs but its input has {len(e_in)} "
                         "(mismatched shapes); re-export the model")
    e_prod = e_w + e_in[None, :]
    b_int, e_b = np.zeros(n_out, dtype=np.int64), None
    if dense.bias is not None:
        bq, braw = dense.bias.quant, np.asarray(dense.bias.value, dtype=np.float64)
        if bq is not None:
            _zero_point(chain, bq, f"bias {dense.bias.name!r}")
            bi = _exact_int(chain, bq.to_int(braw), f"the bias {dense.bias.name!r} does not quantize to integers")
            eb = np.broadcast_to(pow2_exponents(chain, bq), braw.shape)
            b_int = bias_vector(dense.node, dense.bias.name, bi, n_out)
            e_b = bias_vector(dense.node, dense.bias.name, eb, n_out).astype(np.int64)
        else:
            b_float = bias_vector(dense.node, dense.bias.name, braw, n_out)
            e_b = np.full(n_out, int(e_prod.min()), dtype=np.int64)
            b_int = _exact_int(chain, np.ldexp(b_float, -e_b),
                               f"the float bias {dense.bias.name!r} of node {dense.node!r} is not a multiple of the "
                               f"accumulator step 2**{int(e_prod.min())} (quantize it, e.g. Brevitas IntBias)")
    e_acc = int(min(e_prod.min(), e_b.min() if e_b is not None else e_prod.min()))
    W = W_int << (e_prod - e_acc)
    if e_b is not None:
        b_int = b_int << (e_b - e_acc)
    return (W.astype(np.int64), b_int.astype(np.int64)), e_acc


def _quantizer(chain: Chain, q: QuantParams, meta: dict, bits: int) -> InputQuantizer:
    if "input_lo" in meta and "input_hi" in meta:
        try:
            return InputQuantizer(lo=np.asarray(meta["input_lo"], dtype=float), hi=np.asarray(meta["input_hi"], dtype=float),
                                  bits=bits)
        except (ApproxMLPError, ValueError, TypeError) as exc:
            raise ModelError(f"{chain.source}: metadata approxmlp.input_lo/input_hi do not describe {chain.n_features} "
                             f"inputs ({exc}); fix or drop them") from None
    step = np.broadcast_to(q.scale.reshape(-1), (chain.n_features,)).astype(np.float64)
    return InputQuantizer(lo=np.zeros(chain.n_features), hi=step * ((1 << bits) - 1), bits=bits)

