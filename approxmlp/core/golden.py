"""The golden model: bit-exact, vectorized evaluation of the IR.

This is the reference the RTL is verified against and the fitness function the search
calls millions of times, so it works on whole batches with numpy and never loops over
samples. Every operation mirrors one line of the semantics in :mod:`approxmlp.core.ir`:

* products keep the masked operand bits, and their magnitudes drop ``product_trunc`` low
  bits before the sign is applied (the hardware sums positive and negative products
  separately, so it truncates magnitudes);
* the rescale is an arithmetic right shift (floor), QReLU a clamp, ``act_trunc`` clears
  low output bits, ``cmp_drop`` clears low bits before the argmax;
* argmax ties go to the lowest index (numpy's ``argmax`` and the RTL comparator tree
  agree on that).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.ir import MLP, Layer, check_inputs

#: Below this bound a float64 matmul is exact and several times faster than int64.
_F64_EXACT = 1 << 52


@dataclass(frozen=True)
class Evaluation:
    """Classes for a batch, plus every layer's outputs when traced."""

    classes: np.ndarray                 # (N,) int64
    outputs: tuple[np.ndarray, ...]     # per layer (N, n_out) int64: y (after activation)
    scores: np.ndarray                  # (N, n_classes) int64: what the argmax compares


def _layer_acc(layer: Layer, x: np.ndarray, operand_max: int) -> np.ndarray:
    """Accumulator values ``(N, n_out)`` of one layer for operands ``x`` ``(N, n_in)``."""
    W = layer.weight_matrix
    b = layer.bias_vector
    masks = layer.mask_matrix
    truncs = np.array([a.product_trunc for a in layer.approx], dtype=np.int64)
    if masks is None and not truncs.any():
        bound = int(np.abs(W).sum(axis=1).max(initial=0)) * operand_max + int(np.abs(b).max(initial=0))
        if bound < _F64_EXACT:
            return (x.astype(np.float64) @ W.T.astype(np.float64)).astype(np.int64) + b
        return x @ W.T + b
    # General path: one (N, n_out, n_in) product tensor.
    xm = x[:, None, :] if masks is None else (x[:, None, :] & masks[None, :, :])
    mag = xm * np.abs(W)[None, :, :]
    if truncs.any():
        t = truncs[None, :, None]
        mag = (mag >> t) << t
    return (mag * np.sign(W)[None, :, :]).sum(axis=2) + b


def evaluate(mlp: MLP, X, *, trace: bool = False) -> Evaluation:
    """Run the IR on integer inputs ``X`` ``(N, n_inputs)``; classes always, layers if ``trace``."""
    x = check_inputs(mlp, X)
    outs = []
    operand_max = (1 << mlp.input_bits) - 1
    for li, layer in enumerate(mlp.layers):
        v = _layer_acc(layer, x, operand_max) >> layer.shift
        if layer.activation == "qrelu":
            top = (1 << layer.act_bits) - 1
            v = np.clip(v, 0, top)
            at = np.array([a.act_trunc for a in layer.approx], dtype=np.int64)
            if at.any():
                v = (v >> at) << at
            operand_max = top
        x = v
        if trace:
            outs.append(v)
    last = mlp.layers[-1]
    drop = np.array([a.cmp_drop for a in last.approx], dtype=np.int64)
    scores = (x >> drop) << drop if drop.any() else x
    classes = np.argmax(scores, axis=1).astype(np.int64)
    return Evaluation(classes=classes, outputs=tuple(outs), scores=scores)


def predict(mlp: MLP, X) -> np.ndarray:
    """Class index per sample."""
    return evaluate(mlp, X).classes


def accuracy(mlp: MLP, X, y) -> float:
    y = np.asarray(y).astype(np.int64)
    if len(y) == 0:
        return float("nan")
    return float(np.mean(predict(mlp, X) == y))


def reference_class(mlp: MLP, x) -> int:
    """One sample in plain Python integers, the IR semantics line by line: no numpy, no
    vectorization. The yardstick that the vectorized evaluators are tested and timed against."""
    v = [int(t) for t in x]
    for layer in mlp.layers:
        nxt = []
        for j, row in enumerate(layer.weights):
            a = layer.approx[j]
            acc = layer.biases[j]
            for i, w in enumerate(row):
                xi = v[i] if a.input_masks is None else v[i] & a.input_masks[i]
                mag = (abs(w) * xi >> a.product_trunc) << a.product_trunc
                acc += mag if w >= 0 else -mag
            y = acc >> layer.shift
            if layer.activation == "qrelu":
                y = (min(max(y, 0), (1 << layer.act_bits) - 1) >> a.act_trunc) << a.act_trunc
            nxt.append(y)
        v = nxt
    scores = [(s >> a.cmp_drop) << a.cmp_drop for s, a in zip(v, mlp.layers[-1].approx)]
    return scores.index(max(scores))
