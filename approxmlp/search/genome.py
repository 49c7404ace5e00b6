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
designs. :mod:`approxmlp.search.evaluate` runs whole populations on whole data sets,
bit-exactly with the golden model.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from ..core.csd import csd
from ..errors import ApproxMLPError
from ..core.ir import MLP, NeuronApprox

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
