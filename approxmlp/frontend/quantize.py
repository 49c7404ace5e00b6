"""Float MLP in, integer IR out: post-training quantization (PTQ).

**PTQ** (:func:`quantize_ptq`) maps that float model onto the IR semantics of
:mod:`approxmlp.core.ir` with power-of-two scales only, so that every rescale is a shift:

1. the input quantizer's affine map ``x = lo + q * step`` is folded into the first layer,
   so the integer inputs need no arithmetic and the float model still sees the raw
   features it was trained on;
2. per layer, weights get a power-of-two scale ``s_w`` that fits ``weight_bits`` signed,
   biases sit at accumulator scale ``s_prev * s_w``, and a hidden layer's shift is the
   smallest that fits the calibration maximum of its ReLU output into ``act_bits``
   unsigned (round to nearest via a bias offset of ``2**(shift-1)``);
3. the last layer stays at accumulator scale (shift 0, linear): the argmax needs no
   rescale and every dropped bit could only flip a decision.

Reading model files is :mod:`.model_file`'s job; the float model is :mod:`.float_model`'s.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from ..core import golden
from ..core.ir import MAX_BIAS_BITS, MAX_DATA_BITS, MLP, Layer
from ..errors import DataError, ModelError, check_bits
from .input_quantizer import InputQuantizer
from .float_model import FloatMLP, state_key

#: Weights wider than this buy nothing for printed/FPGA MLPs and slow the search.
MAX_PTQ_WEIGHT_BITS = 16
#: ``quantization`` value recorded in the IR meta.
PTQ_SCHEME = "ptq-pow2-per-layer"


def fold_input_scaling(model: FloatMLP, quantizer: InputQuantizer) -> FloatMLP:
    """The same function of the integer codes that ``model`` computes on the features they
    stand for: ``W' = W * step`` per input column, ``b' = b + W @ lo``."""
    if quantizer.n_features != model.n_inputs:
        raise ModelError(f"{model.source}: the model takes {model.n_inputs} inputs but the data set has "
                         f"{quantizer.n_features} features; use the data set the model was trained on")
    W, b = model.layers[0]
    first = (W * quantizer.step[None, :], b + W @ quantizer.lo)
    return FloatMLP(layers=(first,) + model.layers[1:], metadata=model.metadata, names=model.names,
                    source=model.source, sha256=model.sha256)


def weight_scale_log2(W: np.ndarray, weight_bits: int) -> int:
    """Smallest ``e`` with ``max|W| / 2**e <= 2**(weight_bits-1) - 1``: the finest
    power-of-two step whose integers still fit the signed width (0 for an all-zero W)."""
    qmax = (1 << (weight_bits - 1)) - 1
    m = float(np.max(np.abs(W), initial=0.0))
    if m == 0.0:
        return 0
    # frexp, not log2: log2 of a subnormal ratio underflows to a domain error.
    e = math.frexp(m)[1] - qmax.bit_length()
    while math.ldexp(m, -e) > qmax:
        e += 1
    while math.ldexp(m, -(e - 1)) <= qmax:
        e -= 1
    return e


def quantize_weights(W: np.ndarray, weight_bits: int) -> tuple[np.ndarray, int]:
    """``(W_int, e)`` with ``W ~= W_int * 2**e`` and ``|W_int| <= 2**(weight_bits-1) - 1``."""
    e = weight_scale_log2(W, weight_bits)
    qmax = (1 << (weight_bits - 1)) - 1
    return np.clip(_round_half_up(np.ldexp(W, -e)), -qmax, qmax).astype(np.int64), e


def _round_half_up(x: np.ndarray) -> np.ndarray:
    """Round to nearest, ties up: the same rule as the input quantizer."""
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5)


def _to_int(where: str, x: np.ndarray, bits: int) -> np.ndarray:
    limit = float(1 << (bits - 1))
    if np.any(np.abs(x) >= limit):
        raise ModelError(f"{where} needs more than {bits} bits at the accumulator scale (the bias is huge "
                         "next to the weights); retrain with weight decay or rescale the inputs")
    return x.astype(np.int64)


def activation_shift(acc: np.ndarray, act_bits: int) -> int:
    """Smallest shift ``>= 0`` that brings the largest calibration accumulator, rounded to
    nearest, into ``act_bits`` unsigned: ``(max + 2**(s-1)) >> s <= 2**act_bits - 1``."""
    top = (1 << act_bits) - 1
    m = int(np.max(acc, initial=0))
    s = 0
    while ((m + (1 << s >> 1)) >> s) > top:
        s += 1
    return s


def _layer_outputs(layer: Layer, x: np.ndarray, in_bits: int) -> np.ndarray:
    """Outputs of one IR layer on integer operands, by the golden model itself, so that
    calibration of the next layer sees exactly what the hardware will feed it."""
    one = MLP(n_inputs=layer.n_in, input_bits=in_bits, layers=(layer,))
    return golden.evaluate(one, x, trace=True).outputs[0]


def _calibration_codes(X_calib_int: Any, quantizer: InputQuantizer) -> np.ndarray:
    x = np.asarray(X_calib_int)
    if x.ndim != 2 or x.shape[1] != quantizer.n_features or len(x) == 0:
        raise DataError(f"calibration inputs must be a non-empty (N, {quantizer.n_features}) array, not shape "
                        f"{x.shape}; pass the quantized training features, quantizer(X_train)")
    if x.dtype.kind not in "iu" or x.min() < 0 or x.max() > quantizer.top:
        raise DataError(f"calibration inputs must be integer codes in 0..{quantizer.top}; "
                        "pass quantizer(X_train), not the raw features")
    return x.astype(np.int64)


def quantize_ptq(model: FloatMLP, quantizer: InputQuantizer, X_calib_int: np.ndarray, *,
                 weight_bits: int = 8, act_bits: int = 8, name: str = "mlp") -> MLP:
    """Post-training quantization of ``model`` to the integer IR (see the module docstring).

    ``X_calib_int`` are input codes (normally ``quantizer(X_train)``) on which the hidden
    activation ranges are measured, by running the already quantized layers, so each
    layer is calibrated on the integers it will really receive. Scale bookkeeping is in
    powers of two (exponents), so the integer layer computes ``float / 2**e`` up to
    rounding; the output scale exponent of every layer is recorded in ``meta["scale_log2"]``.
    """
    weight_bits = check_bits("--weight-bits", weight_bits, 2, MAX_PTQ_WEIGHT_BITS, ModelError)
    act_bits = check_bits("--act-bits", act_bits, 1, MAX_DATA_BITS, ModelError)
    folded = fold_input_scaling(model, quantizer)
    x = _calibration_codes(X_calib_int, quantizer)
    n_calib = len(x)
    in_bits, e_prev = quantizer.bits, 0      # the input codes are integers: scale 2**0
    layers, scales = [], []
    for k, (W, b) in enumerate(folded.layers):
        W_int, e_w = quantize_weights(W, weight_bits)
        e_acc = e_prev + e_w                 # accumulator scale s_prev * s_w
        where = f"{model.source}: layer {k} ({state_key(model.names[k], 'bias')!r})"
        b_int = _to_int(where, _round_half_up(np.ldexp(b, -e_acc)), MAX_BIAS_BITS)
        if k == len(folded.layers) - 1:
            layers.append(Layer(weights=W_int, biases=b_int, shift=0, activation="linear"))
            scales.append(e_acc)
            break
        shift = activation_shift(x @ W_int.T + b_int, act_bits)
        layer = Layer(weights=W_int, biases=b_int + (1 << shift >> 1), shift=shift, activation="qrelu",
                      act_bits=act_bits)
        layers.append(layer)
        x = _layer_outputs(layer, x, in_bits)
        in_bits, e_prev = act_bits, e_acc + shift
        scales.append(e_prev)
    meta = {
        "quantization": PTQ_SCHEME,
        "source": model.source,
        "source_sha256": model.sha256 or "unknown",
        "input_bits": quantizer.bits,
        "weight_bits": weight_bits,
        "act_bits": act_bits,
        "input_lo": json.dumps(quantizer.lo.tolist()),
        "input_hi": json.dumps(quantizer.hi.tolist()),
        "calibration_samples": n_calib,
        "scale_log2": json.dumps(scales),
    }
    if "class_names" in model.metadata:
        meta["class_names"] = json.dumps([str(c) for c in model.metadata["class_names"]])
    return MLP(n_inputs=model.n_inputs, input_bits=quantizer.bits, layers=tuple(layers), name=name,
               meta={k: str(v) for k, v in meta.items()})


def input_quantizer_from_ir(mlp: MLP) -> InputQuantizer:
    """The input quantizer recorded in a PTQ'd IR's meta (to quantize new data for it)."""
    meta = dict(mlp.meta)
    try:
        return InputQuantizer(lo=json.loads(meta["input_lo"]), hi=json.loads(meta["input_hi"]), bits=mlp.input_bits)
    except (KeyError, ValueError) as exc:
        raise ModelError(f"IR {mlp.name} records no input scaling ({exc}); quantize it with quantize_ptq "
                         "or keep the input quantizer JSON next to it") from None
