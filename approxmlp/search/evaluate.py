"""Whole populations on whole data sets, bit-exactly: the search's inner loop.

:class:`PopulationEvaluator` gives the classes ``(P, N)`` of every individual of a
:class:`~approxmlp.search.genome.Population` on every sample, equal to the golden model's
(:mod:`approxmlp.core.golden`) bit for bit. It is built once per search, because the
samples do not change: their first-layer encodings (:class:`SampleCodes`) and the working
arrays (:class:`Workspace`) are kept from generation to generation.

Per population, on ``(individuals, neurons, samples)`` arrays:

* first layer (:func:`first_layer`): masked products are linear in the operand *bits*,
  ``w * (x & m) = sum_b x_b * (w m_b 2^b)``, so every neuron of every individual is one
  row of a single float GEMM against the cached bit planes. It is exact because a bound on
  every partial sum (from the weights and masks) is checked first: float32 below
  ``2**24``, float64 below ``2**53``, integers otherwise. A truncated product
  ``|w (x & m)| >> t << t`` is not linear in the bits but is a function of the feature's
  *value*: those neurons are one GEMM against a one-hot code instead;
* later layers (operands differ per individual, hidden layers are narrow) and the
  fallbacks (:func:`direct`): integer arithmetic, one step per input, in int32 when the
  bounds allow;
* rescale, QReLU, truncations as integer shifts and masks; the argmax
  (:func:`argmax_into`) is a running comparison over the classes (strict ``>``: ties go
  to the lowest index).
"""

from __future__ import annotations

import contextlib
import math
import threading

import numpy as np

from ..errors import ApproxMLPError
from .genome import Population

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


# -- what the samples look like to the first layer ------------------------------------
class SampleCodes:
    """Integer samples ``X`` ``(N, n_inputs)`` and their encodings, each made on first use
    and kept: the operands themselves, bit planes (``x = sum_b 2^b x_b``), a one-hot code
    of each feature value (for truncated products) and two small lookup tables."""

    def __init__(self, X: np.ndarray):
        X = np.asarray(X)
        if X.ndim != 2 or X.dtype.kind not in "iu":
            raise ApproxMLPError(f"samples must be an (N, n_inputs) integer array, not {X.dtype} {X.shape}")
        if X.size and X.min() < 0:
            raise ApproxMLPError("samples must be unsigned (quantized) integers")
        self.X = X.astype(np.int64)
        self.n_samples, self.n_inputs = X.shape
        self.x_max = int(X.max(initial=0))
        self.bits = max(1, self.x_max.bit_length())  # planes above these are all zero
        self._cache: dict = {}

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


class Workspace:
    """Working arrays by name, kept and reused from call to call (one set per thread):
    fresh ones cost page faults, as much time as the arithmetic on these sizes."""

    def __init__(self) -> None:
        self._local = threading.local()

    def get(self, name: str, shape: tuple, dtype) -> np.ndarray:
        """An uninitialized array of ``shape`` and ``dtype``."""
        ws = self._local.__dict__.setdefault("ws", {})
        n = math.prod(shape) * np.dtype(dtype).itemsize
        flat = ws.get(name)
        if flat is None or flat.nbytes < n:
            flat = ws[name] = np.empty(max(n, 64), dtype=np.uint8)
        return flat[:n].view(dtype).reshape(shape)


# -- the evaluator ----------------------------------------------------------------------
class PopulationEvaluator:
    """Evaluates whole populations on fixed integer samples ``X`` ``(N, n_inputs)`` (see the
    module docstring). Individuals go in chunks of about ``chunk_bytes`` of working arrays."""

    def __init__(self, X: np.ndarray, *, chunk_bytes: int = 16 << 20):
        self.codes = SampleCodes(X)
        self.chunk_bytes = int(chunk_bytes)
        self.ws = Workspace()

    @property
    def n_samples(self) -> int:
        return self.codes.n_samples

    def __getstate__(self):  # to a Dask worker or a process pool: the samples, not the caches
        return {"X": self.codes.X, "chunk_bytes": self.chunk_bytes}

    def __setstate__(self, state) -> None:
        self.__init__(state["X"], chunk_bytes=state["chunk_bytes"])

    def __call__(self, pop: Population) -> np.ndarray:
        if pop.base.n_inputs != self.codes.n_inputs:
            raise ApproxMLPError(f"the population has {pop.base.n_inputs} inputs, the samples {self.codes.n_inputs}")
        n = self.codes.n_samples
        widest = max(layer.n_out for layer in pop.base.layers)
        per_ind = max(1, n * (widest * 8 * 4 + 24))
        step = max(1, self.chunk_bytes // per_ind)
        out = np.empty((pop.size, n), dtype=np.int64)
        with _one_blas_thread():
            for s in range(0, pop.size, step):
                self._chunk(pop, slice(s, s + step), out[s:s + step])
        return out

    def _chunk(self, pop: Population, sl: slice, out: np.ndarray) -> None:
        """Classes of individuals ``sl`` into ``out``: the layers in turn, then the argmax."""
        x = None
        x_max = self.codes.x_max
        for li, layer in enumerate(pop.base.layers):
            W, M, T = pop.weights[li][sl], pop.masks[li][sl], pop.product_trunc[li][sl]
            b = pop.biases[li][sl]
            # |any partial sum| <= sum_i |w_i| (x_max & m_i), and |acc| <= that + |b|
            prod_bound = int((np.abs(W) * (M & ((1 << x_max.bit_length()) - 1))).sum(axis=2).max(initial=0))
            bound = prod_bound + int(np.abs(b).max(initial=0))
            dtype = np.int32 if bound <= _I32_MAX else np.int64
            acc = self.ws.get(f"acc{li % 2}", W.shape[:2] + (self.codes.n_samples,), dtype)
            if li == 0:
                first_layer(self.codes, self.ws, W, M, T, prod_bound, acc)
            else:
                direct(self.ws, x.astype(dtype, copy=False), W, M, T, acc)
            acc += b.astype(dtype)[:, :, None]
            if layer.shift:
                acc >>= layer.shift
            if layer.activation == "qrelu":
                top = (1 << layer.act_bits) - 1
                np.maximum(acc, 0, out=acc)
                np.minimum(acc, top, out=acc)
                at = pop.act_trunc[li][sl]
                if at.any():
                    acc &= clear_low(at, dtype)[:, :, None]
                x_max = top
            x = acc
        d = pop.cmp_drop[sl]
        if d.any():
            if x.dtype != np.int64 and d.max() > 30:  # negative scores: -2**d needs int64
                x = x.astype(np.int64)
            x &= clear_low(d, x.dtype)[:, :, None]
        argmax_into(self.ws, x, out)


# -- the steps ----------------------------------------------------------------------------
def first_layer(codes: SampleCodes, ws: Workspace, W, M, T, prod_bound: int, acc: np.ndarray) -> None:
    """Accumulators ``acc`` ``(p, out, N)`` (no bias) of the first layer: one float GEMM of
    the weighted mask bits against the bit planes, exact below the bound; truncating
    neurons redone against the one-hot code (or directly, when that code is too large)."""
    p, n_out, n_in = W.shape
    if prod_bound >= _F64_EXACT:
        direct(ws, codes.operands(acc.dtype), W, M, T, acc)
        return
    fdt = np.float32 if prod_bound < _F32_EXACT else np.float64
    bits, low = codes.bits, (1 << codes.bits) - 1
    # E[(p, j), (i, b)] = w_ji (m_ji & 2^b): flat 1-D products (a broadcast over the short
    # bit axis would cost more in loop overhead than in arithmetic)
    E = np.take(codes.bit_values(), (M & low).reshape(-1), axis=0).reshape(-1) * np.repeat(W.reshape(-1), bits)
    f = ws.get("gemm", (p * n_out, codes.n_samples), fdt)
    np.matmul(E.reshape(p * n_out, -1).astype(fdt), codes.planes(fdt), out=f)
    f = f.reshape(acc.shape)
    tp, tj = np.nonzero(T)
    if len(tp):
        oh = codes.onehot(fdt)
        if oh is not None:  # each truncated product as a table over its feature's values
            levels = low + 1
            w = W[tp, tj].reshape(-1)
            mag = np.take(codes.and_table(), (M[tp, tj] & low).reshape(-1), axis=0).reshape(-1)
            mag *= np.repeat(np.abs(w), levels)
            mag &= np.repeat(clear_low(T[tp, tj], np.int64), n_in * levels)
            mag *= np.repeat(np.sign(w), levels)
            f[tp, tj] = mag.reshape(len(tp), -1).astype(fdt) @ oh
        else:
            f[tp, tj] = truncated_sums(codes.operands(np.int64), W[tp, tj], M[tp, tj], T[tp, tj], np.int64)
    np.copyto(acc, f, casting="unsafe")  # exact integers


def direct(ws: Workspace, x: np.ndarray, W, M, T, acc: np.ndarray) -> None:
    """``acc`` ``(p, out, N)`` (no bias) for operands ``x`` ``(p or 1, in, N)`` in integers of
    ``acc.dtype`` (the caller checked that it holds every partial sum), one input at a
    time: hidden layers are narrow, the sample axis long. Truncating neurons are redone."""
    dtype = acc.dtype
    Wd, Md = W.astype(dtype), M.astype(dtype)
    term = ws.get("term", acc.shape, dtype)
    acc[...] = 0
    for i in range(W.shape[2]):
        w = Wd[:, :, i, None]
        if w.any():
            np.bitwise_and(x[:, None, i, :], Md[:, :, i, None], out=term)
            term *= w
            acc += term
    tp, tj = np.nonzero(T)
    if len(tp):
        acc[tp, tj] = truncated_sums(x[tp] if x.shape[0] > 1 else x, W[tp, tj], M[tp, tj], T[tp, tj], dtype)


def argmax_into(ws: Workspace, scores: np.ndarray, out: np.ndarray) -> None:
    """``argmax`` over axis 1 of ``(p, C, N)`` into ``out`` ``(p, N)``, ties to the lowest
    index: class ``c`` takes over only when strictly greater and, ``c`` growing, taking
    over is a ``maximum`` (branch-free, unlike a masked assignment)."""
    shape = out.shape
    best = ws.get("best", shape, scores.dtype)
    better = ws.get("better", shape, np.bool_)
    cand = ws.get("cand", shape, out.dtype)
    best[...] = scores[:, 0]
    out[...] = 0
    for c in range(1, scores.shape[1]):
        s = scores[:, c]
        np.greater(s, best, out=better)
        np.multiply(better, c, out=cand)
        np.maximum(out, cand, out=out)
        np.maximum(best, s, out=best)


def truncated_sums(x: np.ndarray, W: np.ndarray, M: np.ndarray, T: np.ndarray, dtype) -> np.ndarray:
    """``(k, N)``: for ``k`` neurons ``(W, M (k, in), T (k,))`` with operands ``x`` ``(k or 1, in, N)``,
    the sums of signed, truncated magnitudes ``sign(w) (|w (x & m)| >> t << t)``; a block of
    inputs at a time (of at most about a million products)."""
    Wd, Md = W.astype(dtype), M.astype(dtype)
    A, S = np.abs(Wd)[:, :, None], np.sign(Wd)[:, :, None]
    tm = clear_low(T, dtype)[:, None, None]
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


def clear_low(k: np.ndarray, dtype) -> np.ndarray:
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
