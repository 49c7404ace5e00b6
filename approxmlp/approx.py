"""Hardware approximations as data: the genome the search evolves, and its evaluation.

A :class:`Population` holds ``P`` candidate circuits that share a *base* IR's topology,
shifts and activation widths, as stacked integer arrays (one leading axis for the
individual), so that evaluating the whole population on the whole training set is a
handful of numpy operations rather than ``P x N`` golden-model calls. Per layer:

* ``weights (P, out, in)``: the constant multipliers, restricted to a value set
  (:func:`allowed_weights`: any ``b``-bit integer, signed powers of two, or at most ``k``
  signed digits): the *approximate multipliers*;
* ``masks (P, out, in)``: operand bits each product keeps (all ones when exact, 0 removes
  the connection): DATE'24's per-connection input masks;
* ``product_trunc (P, out)``: LSBs dropped from each partial-product magnitude;
* ``act_trunc (P, out)``: LSBs cleared in the QReLU output; ``cmp_drop (P, classes)``: LSBs
  the argmax ignores.

:meth:`Population.individual` turns one row back into an ordinary, validated IR, so
everything downstream (emitter, simulation, synthesis) is the same code as for exact
designs, and :func:`evaluate_population` is checked against the golden model.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from .emit import csd
from .errors import ApproxMLPError
from .ir import MLP, NeuronApprox

MULTIPLIER_KINDS = ("int", "pow2", "csd2", "csd3")


def allowed_weights(bits: int, kind: str) -> np.ndarray:
    """Sorted weight values a multiplier of ``kind`` may take, within ``bits``-bit signed."""
    top = (1 << (bits - 1)) - 1
    values = np.arange(-top, top + 1)
    if kind == "int":
        return values
    if kind == "pow2":
        limit = 1
    elif kind in ("csd2", "csd3"):
        limit = int(kind[-1])
    else:
        raise ApproxMLPError(f"unknown multiplier kind {kind!r}; choose one of {', '.join(MULTIPLIER_KINDS)}")
    keep = [v for v in values if len(csd(abs(int(v)))) <= limit]
    return np.array(keep, dtype=np.int64)


def project_weights(W: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Each weight replaced by the nearest allowed value (ties towards zero magnitude)."""
    idx = np.searchsorted(allowed, W)
    lo = allowed[np.clip(idx - 1, 0, len(allowed) - 1)]
    hi = allowed[np.clip(idx, 0, len(allowed) - 1)]
    pick_hi = (np.abs(hi - W) < np.abs(W - lo)) | ((np.abs(hi - W) == np.abs(W - lo)) & (np.abs(hi) < np.abs(lo)))
    return np.where(pick_hi, hi, lo)


@dataclass
class Population:
    """``P`` approximate variants of ``base`` as stacked arrays (see the module docstring)."""

    base: MLP
    weights: list[np.ndarray]
    masks: list[np.ndarray]
    biases: list[np.ndarray]
    product_trunc: list[np.ndarray]
    act_trunc: list[np.ndarray]
    cmp_drop: np.ndarray

    @property
    def size(self) -> int:
        return int(self.cmp_drop.shape[0])

    @classmethod
    def from_mlp(cls, mlp: MLP, size: int = 1) -> "Population":
        """``size`` copies of ``mlp`` (its own approximation records included)."""
        W, M, B, PT, AT = [], [], [], [], []
        for li, layer in enumerate(mlp.layers):
            full = (1 << mlp.operand_bits(li)) - 1
            masks = np.array([a.input_masks if a.input_masks is not None else (full,) * layer.n_in
                              for a in layer.approx], dtype=np.int64).reshape(layer.n_out, layer.n_in)
            W.append(np.repeat(layer.weight_matrix[None], size, axis=0).copy())
            M.append(np.repeat(masks[None], size, axis=0))
            B.append(np.repeat(layer.bias_vector[None], size, axis=0).copy())
            PT.append(np.repeat(np.array([[a.product_trunc for a in layer.approx]], dtype=np.int64), size, axis=0))
            AT.append(np.repeat(np.array([[a.act_trunc for a in layer.approx]], dtype=np.int64), size, axis=0))
        cd = np.repeat(np.array([[a.cmp_drop for a in mlp.layers[-1].approx]], dtype=np.int64), size, axis=0)
        return cls(base=mlp, weights=W, masks=M, biases=B, product_trunc=PT, act_trunc=AT, cmp_drop=cd)

    @classmethod
    def concat(cls, parts: Sequence["Population"]) -> "Population":
        first = parts[0]
        cat = lambda name: [np.concatenate([getattr(p, name)[k] for p in parts]) for k in range(len(first.weights))]
        return cls(base=first.base, weights=cat("weights"), masks=cat("masks"), biases=cat("biases"),
                   product_trunc=cat("product_trunc"), act_trunc=cat("act_trunc"),
                   cmp_drop=np.concatenate([p.cmp_drop for p in parts]))

    def take(self, idx) -> "Population":
        idx = np.asarray(idx)
        return Population(base=self.base, weights=[w[idx] for w in self.weights], masks=[m[idx] for m in self.masks],
                          biases=[b[idx] for b in self.biases], product_trunc=[t[idx] for t in self.product_trunc],
                          act_trunc=[t[idx] for t in self.act_trunc], cmp_drop=self.cmp_drop[idx])

    def individual(self, i: int, name: str | None = None) -> MLP:
        """Row ``i`` as a validated IR (exact records where a neuron has no approximation)."""
        base = self.base
        layers = []
        last = len(base.layers) - 1
        for li, layer in enumerate(base.layers):
            full = (1 << base.operand_bits(li)) - 1
            recs = []
            for j in range(layer.n_out):
                masks = tuple(int(m) for m in self.masks[li][i, j])
                recs.append(NeuronApprox(
                    input_masks=None if all(m == full for m in masks) else masks,
                    product_trunc=int(self.product_trunc[li][i, j]),
                    act_trunc=int(self.act_trunc[li][i, j]) if layer.activation == "qrelu" else 0,
                    cmp_drop=int(self.cmp_drop[i, j]) if li == last else 0))
            layers.append(replace(layer, weights=self.weights[li][i], biases=self.biases[li][i], approx=tuple(recs)))
        return MLP(n_inputs=base.n_inputs, input_bits=base.input_bits, layers=tuple(layers),
                   name=name or base.name, meta=base.meta)


def evaluate_population(pop: Population, X: np.ndarray, *, chunk_bytes: int = 256 << 20) -> np.ndarray:
    """Classes ``(P, N)`` of every individual on every sample, bit-exact with the golden model.

    Works on ``(P, N, out, in)`` product tensors, chunked over individuals so that memory
    stays under ``chunk_bytes`` whatever the data set.
    """
    X = np.asarray(X, dtype=np.int64)
    widest = max(layer.n_in * max(layer.n_out, pop.base.operand_bits(li))
                 for li, layer in enumerate(pop.base.layers))
    per_ind = max(1, X.shape[0] * widest * 8 * 3)
    step = max(1, chunk_bytes // per_ind)
    out = np.empty((pop.size, X.shape[0]), dtype=np.int64)
    for s in range(0, pop.size, step):
        out[s:s + step] = _evaluate_chunk(pop, slice(s, s + step), X)
    return out


def _layer_acc(x: np.ndarray, W: np.ndarray, M: np.ndarray, T: np.ndarray, bits: int) -> np.ndarray:
    """Accumulators ``(p, N, out)`` of one layer for operands ``x`` ``(p or 1, N, in)``.

    Masked products are linear in the operand *bits*: ``w * (x & m) = sum_b x_b * (w m_b 2^b)``,
    so the whole layer is one batched matrix product over bit planes (BLAS, exact in
    float64 at these magnitudes). Product truncation is not linear; the few (individual,
    neuron) pairs that use it are recomputed exactly from the product tensor.
    """
    p = W.shape[0]
    shifts = np.arange(bits, dtype=np.int64)
    planes = ((x[..., None] >> shifts) & 1).reshape(x.shape[0], x.shape[1], -1).astype(np.float64)
    mbits = ((M[..., None] >> shifts) & 1) << shifts                       # (p, out, in, bits)
    weff = np.ascontiguousarray((W[..., None] * mbits).reshape(p, W.shape[1], -1).transpose(0, 2, 1),
                                dtype=np.float64)                            # (p, in*bits, out)
    if x.shape[0] == 1:  # shared operands (first layer): one GEMM for the whole population
        n_out = W.shape[1]
        flat = planes[0] @ weff.transpose(1, 0, 2).reshape(weff.shape[1], p * n_out)
        acc = np.rint(flat).astype(np.int64).reshape(x.shape[1], p, n_out).transpose(1, 0, 2)
    else:
        acc = np.rint(np.matmul(planes, weff)).astype(np.int64)             # (p, N, out)
    ip, io = np.nonzero(T)
    if len(ip):
        xs = x[ip] if x.shape[0] > 1 else np.broadcast_to(x[0], (len(ip),) + x.shape[1:])
        mag = (xs & M[ip, io][:, None, :]) * np.abs(W[ip, io])[:, None, :]
        t = T[ip, io][:, None, None]
        mag = (mag >> t) << t
        acc[ip, :, io] = (mag * np.sign(W[ip, io])[:, None, :]).sum(axis=2)
    return acc


def _evaluate_chunk(pop: Population, sl: slice, X: np.ndarray) -> np.ndarray:
    x = X[None, :, :]  # (p, N, in), broadcast over individuals for the first layer
    for li, layer in enumerate(pop.base.layers):
        acc = _layer_acc(x, pop.weights[li][sl], pop.masks[li][sl], pop.product_trunc[li][sl],
                         pop.base.operand_bits(li))
        v = (acc + pop.biases[li][sl][:, None, :]) >> layer.shift
        if layer.activation == "qrelu":
            v = np.clip(v, 0, (1 << layer.act_bits) - 1)
            at = pop.act_trunc[li][sl][:, None, :]
            if at.any():
                v = (v >> at) << at
        x = v
    d = pop.cmp_drop[sl][:, None, :]
    scores = (x >> d) << d
    return np.argmax(scores, axis=2)
