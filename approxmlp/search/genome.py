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

import contextlib
import math
import threading
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from ..backend.verilog import csd
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


#: Float GEMMs are exact while every partial sum stays below these (integer) bounds.
_F32_EXACT = 1 << 24
_F64_EXACT = 1 << 53
_I32_MAX = (1 << 31) - 1


def evaluate_population(pop: Population, X: np.ndarray, *, chunk_bytes: int = 16 << 20) -> np.ndarray:
    """Classes ``(P, N)`` of every individual on every sample, bit-exact with the golden model.

    A one-off :class:`PopulationEvaluator`; a search evaluates many populations on the same
    samples and builds the evaluator once (:func:`approxmlp.search.nsga2.make_evaluator`).
    """
    return PopulationEvaluator(X, chunk_bytes=chunk_bytes)(pop)


class PopulationEvaluator:
    """Evaluates whole populations on fixed integer samples ``X`` ``(N, n_inputs)``.

    The samples do not change during a search, so their first-layer encodings are computed
    once and kept: bit planes (``x = sum_b 2^b x_b``) and, for truncated products, a one-hot
    code of each feature value. Per population, then, on ``(individuals, neurons, samples)``
    arrays:

    * first layer: masked products are linear in the operand *bits*,
      ``w * (x & m) = sum_b x_b * (w m_b 2^b)``, so every neuron of every individual is one
      row of a single float GEMM against the cached planes. It is exact because a bound on
      every partial sum (from the weights and masks) is checked first: float32 below
      ``2**24``, float64 below ``2**53``, integers otherwise. A truncated product
      ``|w (x & m)| >> t << t`` is not linear in the bits but is a function of the feature's
      *value*: those neurons are one GEMM against the one-hot code instead;
    * later layers (operands differ per individual, hidden layers are narrow) and the
      fallbacks: integer arithmetic, one step per input, in int32 when the bounds allow;
    * rescale, QReLU, truncations as integer shifts and masks; the argmax is a running
      comparison over the classes (strict ``>``: ties go to the lowest index).

    Individuals go in chunks of about ``chunk_bytes`` of working arrays, which are kept and
    reused from call to call (per thread): fresh ones cost page faults, as much time as the
    arithmetic on these sizes.
    """

    def __init__(self, X: np.ndarray, *, chunk_bytes: int = 16 << 20):
        X = np.asarray(X)
        if X.ndim != 2 or X.dtype.kind not in "iu":
            raise ApproxMLPError(f"samples must be an (N, n_inputs) integer array, not {X.dtype} {X.shape}")
        if X.size and X.min() < 0:
            raise ApproxMLPError("samples must be unsigned (quantized) integers")
        self.X = X.astype(np.int64)
        self.chunk_bytes = int(chunk_bytes)
        self.n_samples, self.n_inputs = X.shape
        self.x_max = int(X.max(initial=0))
        self.bits = max(1, self.x_max.bit_length())  # planes above these are all zero
        self._init_caches()

    def _init_caches(self) -> None:
        self._cache: dict = {}
        self._local = threading.local()

    def __getstate__(self):  # to a Dask worker or a process pool: the samples, not the caches
        return {"X": self.X, "chunk_bytes": self.chunk_bytes}

    def __setstate__(self, state) -> None:
        self.__init__(state["X"], chunk_bytes=state["chunk_bytes"])

    # -- cached encodings of X ----------------------------------------------------------
    def _cached(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def operands(self, dtype) -> np.ndarray:
        """``X`` as ``(1, n_inputs, N)`` integers of ``dtype``."""
        return self._cached(("operands", np.dtype(dtype).str),
                            lambda: np.ascontiguousarray(self.X.T[None], dtype=dtype))

    def planes(self, dtype) -> np.ndarray:
        """Bit planes ``(n_inputs * bits, N)``: row ``i * bits + b`` is bit ``b`` of feature ``i``."""
        def make():
            shifts = np.arange(self.bits, dtype=np.int64)
            bits = (self.X.T[:, None, :] >> shifts[None, :, None]) & 1
            return np.ascontiguousarray(bits.reshape(-1, self.n_samples), dtype=dtype)
        return self._cached(("planes", np.dtype(dtype).str), make)

    def onehot(self, dtype) -> np.ndarray | None:
        """One-hot values ``(n_inputs * 2**bits, N)`` (row ``i * 2**bits + v`` is ``x_i == v``),
        or ``None`` when that would be too large to be worth it."""
        levels = 1 << self.bits
        if levels > 256 or self.n_inputs * levels * self.n_samples * np.dtype(dtype).itemsize > 64 << 20:
            return None

        def make():
            eq = self.X.T[:, None, :] == np.arange(levels)[None, :, None]
            return np.ascontiguousarray(eq.reshape(-1, self.n_samples), dtype=dtype)
        return self._cached(("onehot", np.dtype(dtype).str), make)

    def bit_values(self) -> np.ndarray:
        """``(2**bits, bits)``: row ``m`` holds ``m``'s bits as values, ``m & 2**b``."""
        def make():
            m = np.arange(1 << self.bits, dtype=np.int64)[:, None]
            return m & (1 << np.arange(self.bits, dtype=np.int64))
        return self._cached("bit_values", make)

    def and_table(self) -> np.ndarray:
        """``(2**bits, 2**bits)``: ``m & v``."""
        def make():
            v = np.arange(1 << self.bits, dtype=np.int64)
            return v[:, None] & v[None, :]
        return self._cached("and_table", make)

    def _buf(self, name: str, shape: tuple, dtype) -> np.ndarray:
        """A working array, reused across calls (uninitialized)."""
        ws = self._local.__dict__.setdefault("ws", {})
        n = math.prod(shape) * np.dtype(dtype).itemsize
        flat = ws.get(name)
        if flat is None or flat.nbytes < n:
            flat = ws[name] = np.empty(max(n, 64), dtype=np.uint8)
        return flat[:n].view(dtype).reshape(shape)

    # -- evaluation ---------------------------------------------------------------------
    def __call__(self, pop: Population) -> np.ndarray:
        if pop.base.n_inputs != self.n_inputs:
            raise ApproxMLPError(f"the population has {pop.base.n_inputs} inputs, the samples {self.n_inputs}")
        widest = max(layer.n_out for layer in pop.base.layers)
        per_ind = max(1, self.n_samples * (widest * 8 * 4 + 24))
        step = max(1, self.chunk_bytes // per_ind)
        out = np.empty((pop.size, self.n_samples), dtype=np.int64)
        with _one_blas_thread():
            for s in range(0, pop.size, step):
                self._chunk(pop, slice(s, s + step), out[s:s + step])
        return out

    def _chunk(self, pop: Population, sl: slice, out: np.ndarray) -> None:
        x = None
        x_max = self.x_max
        for li, layer in enumerate(pop.base.layers):
            W, M, T = pop.weights[li][sl], pop.masks[li][sl], pop.product_trunc[li][sl]
            b = pop.biases[li][sl]
            # |any partial sum| <= sum_i |w_i| (x_max & m_i), and |acc| <= that + |b|
            prod_bound = int((np.abs(W) * (M & ((1 << x_max.bit_length()) - 1))).sum(axis=2).max(initial=0))
            bound = prod_bound + int(np.abs(b).max(initial=0))
            dtype = np.int32 if bound <= _I32_MAX else np.int64
            acc = self._buf(f"acc{li % 2}", W.shape[:2] + (self.n_samples,), dtype)
            if li == 0:
                self._first_layer(W, M, T, prod_bound, acc)
            else:
                self._direct(x.astype(dtype, copy=False), W, M, T, acc)
            acc += b.astype(dtype)[:, :, None]
            if layer.shift:
                acc >>= layer.shift
            if layer.activation == "qrelu":
                top = (1 << layer.act_bits) - 1
                np.maximum(acc, 0, out=acc)
                np.minimum(acc, top, out=acc)
                at = pop.act_trunc[li][sl]
                if at.any():
                    acc &= _clear_low(at, dtype)[:, :, None]
                x_max = top
            x = acc
        d = pop.cmp_drop[sl]
        if d.any():
            if x.dtype != np.int64 and d.max() > 30:  # negative scores: -2**d needs int64
                x = x.astype(np.int64)
            x &= _clear_low(d, x.dtype)[:, :, None]
        self._argmax(x, out)

    def _first_layer(self, W, M, T, prod_bound: int, acc: np.ndarray) -> None:
        p, n_out, n_in = W.shape
        if prod_bound >= _F64_EXACT:
            self._direct(self.operands(acc.dtype), W, M, T, acc)
            return
        fdt = np.float32 if prod_bound < _F32_EXACT else np.float64
        bits, low = self.bits, (1 << self.bits) - 1
        # E[(p, j), (i, b)] = w_ji (m_ji & 2^b): flat 1-D products (a broadcast over the short
        # bit axis would cost more in loop overhead than in arithmetic)
        E = np.take(self.bit_values(), (M & low).reshape(-1), axis=0).reshape(-1) * np.repeat(W.reshape(-1), bits)
        f = self._buf("gemm", (p * n_out, self.n_samples), fdt)
        np.matmul(E.reshape(p * n_out, -1).astype(fdt), self.planes(fdt), out=f)
        f = f.reshape(acc.shape)
        tp, tj = np.nonzero(T)
        if len(tp):
            oh = self.onehot(fdt)
            if oh is not None:  # each truncated product as a table over its feature's values
                levels = low + 1
                w = W[tp, tj].reshape(-1)
                mag = np.take(self.and_table(), (M[tp, tj] & low).reshape(-1), axis=0).reshape(-1)
                mag *= np.repeat(np.abs(w), levels)
                mag &= np.repeat(_clear_low(T[tp, tj], np.int64), n_in * levels)
                mag *= np.repeat(np.sign(w), levels)
                f[tp, tj] = mag.reshape(len(tp), -1).astype(fdt) @ oh
            else:
                f[tp, tj] = _truncated(self.operands(np.int64), W[tp, tj], M[tp, tj], T[tp, tj], np.int64)
        np.copyto(acc, f, casting="unsafe")  # exact integers

    def _direct(self, x: np.ndarray, W, M, T, acc: np.ndarray) -> None:
        """``acc`` ``(p, out, N)`` (no bias) for operands ``x`` ``(p or 1, in, N)`` in integers of
        ``acc.dtype`` (the caller checked that it holds every partial sum), one input at a
        time: hidden layers are narrow, the sample axis long. Truncating neurons are redone."""
        dtype = acc.dtype
        Wd, Md = W.astype(dtype), M.astype(dtype)
        term = self._buf("term", acc.shape, dtype)
        acc[...] = 0
        for i in range(W.shape[2]):
            w = Wd[:, :, i, None]
            if w.any():
                np.bitwise_and(x[:, None, i, :], Md[:, :, i, None], out=term)
                term *= w
                acc += term
        tp, tj = np.nonzero(T)
        if len(tp):
            acc[tp, tj] = _truncated(x[tp] if x.shape[0] > 1 else x, W[tp, tj], M[tp, tj], T[tp, tj], dtype)

    def _argmax(self, scores: np.ndarray, out: np.ndarray) -> None:
        """``argmax`` over axis 1 of ``(p, C, N)`` into ``out`` ``(p, N)``, ties to the lowest
        index: class ``c`` takes over only when strictly greater and, ``c`` growing, taking
        over is a ``maximum`` (branch-free, unlike a masked assignment)."""
        shape = out.shape
        best = self._buf("best", shape, scores.dtype)
        better = self._buf("better", shape, np.bool_)
        cand = self._buf("cand", shape, out.dtype)
        best[...] = scores[:, 0]
        out[...] = 0
        for c in range(1, scores.shape[1]):
            s = scores[:, c]
            np.greater(s, best, out=better)
            np.multiply(better, c, out=cand)
            np.maximum(out, cand, out=out)
            np.maximum(best, s, out=best)


def _truncated(x: np.ndarray, W: np.ndarray, M: np.ndarray, T: np.ndarray, dtype) -> np.ndarray:
    """``(k, N)``: for ``k`` neurons ``(W, M (k, in), T (k,))`` with operands ``x`` ``(k or 1, in, N)``,
    the sums of signed, truncated magnitudes ``sign(w) (|w (x & m)| >> t << t)``; a block of
    inputs at a time (of at most about a million products)."""
    Wd, Md = W.astype(dtype), M.astype(dtype)
    A, S = np.abs(Wd)[:, :, None], np.sign(Wd)[:, :, None]
    tm = _clear_low(T, dtype)[:, None, None]
    k, n_in = W.shape
    acc = np.zeros((k, x.shape[2]), dtype=dtype)
    step = max(1, (1 << 20) // max(1, k * x.shape[2]))
    for i in range(0, n_in, step):
        blk = slice(i, i + step)
        term = x[:, blk, :] & Md[:, blk, None]
        term *= A[:, blk]
        term &= tm
        term *= S[:, blk]
        acc += term.sum(axis=1, dtype=dtype)
    return acc


def _clear_low(k: np.ndarray, dtype) -> np.ndarray:
    """Masks ``m`` with ``v & m == (v >> k) << k`` as numpy computes it in int64 (``k >= 64``
    clears everything). In int32, ``k`` is capped at 31, which is only right for values
    ``v >= 0`` (truncated magnitudes, activations; the caller widens scores to int64)."""
    k = np.asarray(k, dtype=np.int64)
    if np.dtype(dtype) == np.int64:
        return np.left_shift(np.int64(-1), k)
    return np.left_shift(np.int64(-1), np.minimum(k, 31)).astype(dtype)


_BLAS = None


def _one_blas_thread():
    """The GEMMs here are small: a second BLAS thread gains little on an idle machine and
    stalls for milliseconds when the other core is busy (a shared machine, or the search's
    own worker processes). One thread it is, as the per-sample reference has."""
    global _BLAS
    if _BLAS is None:
        try:
            from threadpoolctl import ThreadpoolController
            _BLAS = ThreadpoolController()
        except ImportError:  # scikit-learn brings it; without it, BLAS's own choice
            _BLAS = False
    return _BLAS.limit(limits=1, user_api="blas") if _BLAS else contextlib.nullcontext()
