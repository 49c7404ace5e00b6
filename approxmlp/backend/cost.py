"""A fast area/power estimate of an IR, for the search's inner loop.

Synthesis takes seconds per design; the genetic search needs thousands of estimates a
second. The estimate counts what the emitted circuit (:mod:`approxmlp.backend.verilog`) is made of,
from the same range analysis the emitter sizes its wires with, after the pruning that
synthesis does anyway (constant neurons folded; neurons, output bits and accumulator
columns nobody reads removed):

* ``fa``, ``ha``: full and half adders of each neuron's sum. The products, the subtraction
  of the negative ones and the bias are counted as one multi-operand addition per neuron,
  column by column of the accumulator: every operand bit a mask keeps (bits an upstream
  truncation zeroed do not count), at the position each shifted copy (CSD digit) of the
  constant puts it, above the bits a product truncation drops; a subtracted copy is its
  inverted bits plus a constant (``-v = ~v + 1``), and all constants (bias included) add up
  to one constant row, whose bits cost no adder of their own. A column of ``h`` bits (plus
  the carries coming in) needs ``(h - 1) // 2`` full adders and a half adder when two bits
  are left: whether Yosys builds a compressor tree or a chain of adders, every full adder
  removes one bit. A truncated product of several digits is an adder of its own first;
* ``fa_carry``, ``ha_carry``: the same in the columns below the lowest output bit anybody
  reads (below the rescale, an activation truncation, an argmax drop): only their carries
  are needed;
* ``act_gates``: QReLU per output bit read, one gate per clamp (zero, saturation);
  ``sat_or``: the accumulator bits the saturation test ORs together;
* ``cmp_bits``, ``cmp_const_bits``: comparator bits of the argmax tree (against a
  constant score: cheaper), planned as the emitter plans it (comparisons the value ranges
  decide are not built), without the low bits every compared score ignores;
  ``mux_bits``: the value and index multiplexers of that tree;
* ``neurons``: neurons left in the circuit (a fixed cost each).

Heavily pruned designs are also bounded by what their logic depends on: ABC rewrites a
function of a few input bits from its truth table, whatever arithmetic it was written
with. A neuron's counts are capped at ``0.1 * 2**(0.75 k)`` gate equivalents
(:data:`GATE_EQUIVALENTS`) per output bit when it reads ``k`` operand bits, and the whole
design's at ``1.0 * 2**(0.75 k)`` per class-index bit when the class depends on ``k``
primary input bits (:func:`_cap`); both bind only for designs of a few dozen gates.

``area = c0 + sum_k c_k * feature_k`` (and the same form for static power), with
coefficients fitted per target against real Yosys synthesis by non-negative least squares
on the *relative* error, made robust (:func:`calibrate`). ``python -m
flows.bench.calibrate_cost`` samples the designs (exact, mutated, search fronts down to 25 %
accuracy loss, and the fronts of searches that use the model being fitted), fits, and
reports the error on held-out designs, also on the smallest third, and on earlier
`explore` runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from ..core.csd import csd
from ..core.ir import MLP, signed_width, unsigned_width
from ..core.ranges import analyze

FEATURES = ("fa", "ha", "fa_carry", "ha_carry", "act_gates", "sat_or", "cmp_bits", "cmp_const_bits",
            "mux_bits", "neurons")
_F = {name: k for k, name in enumerate(FEATURES)}
_FA, _HA, _FAC, _HAC = _F["fa"], _F["ha"], _F["fa_carry"], _F["ha_carry"]
COEFF_FILE = Path(__file__).resolve().parent / "cost_coefficients.json"
#: Bump whenever what a feature counts changes: coefficients fitted to other counts are refused.
FEATURES_VERSION = 2


@lru_cache(maxsize=4096)
def _digits(mag: int, width: int) -> tuple[tuple[int, int], ...]:
    """The shifted copies ``(shift, ±1)`` the emitter adds for ``x * mag`` in ``width`` bits
    (CSD, or plain binary when that has no more terms: as ``emit._product_expr``)."""
    d = csd(mag)
    if bin(mag).count("1") <= len(d) or d[0][0] >= width:
        return tuple((k, 1) for k in range(mag.bit_length() - 1, -1, -1) if mag >> k & 1)
    return tuple(d)


def _compress(cols: list[int], const: int, lo_needed: int, hi_needed: int, out: np.ndarray) -> None:
    """Add to ``out`` the adders that reduce bit columns ``cols`` (LSB first) plus the bits
    of ``const`` to one row. Columns below ``lo_needed`` only feed carries; columns above
    ``hi_needed`` are never read (synthesis removes them)."""
    carry = 0
    for c in range(min(len(cols), hi_needed + 1)):
        h = cols[c] + carry
        carry = 0
        if h >= 3:
            n = (h - 1) // 2
            carry = n
            h -= 2 * n
            out[_FA if c >= lo_needed else _FAC] += n
        if h == 2:  # a half adder (with a constant 1 as third input: as cheap)
            carry += 1
            out[_HA if c >= lo_needed else _HAC] += 1
        elif h == 1 and const >> c & 1:  # x + 1: sum ~x, carry x; no adder
            carry += 1


def _bits(m: int) -> list[int]:
    return [b for b in range(m.bit_length()) if m >> b & 1]


def neuron_features(mlp: MLP) -> dict[tuple[int, int], np.ndarray]:
    """The :data:`FEATURES` per neuron ``(layer, index)``; an output neuron carries an equal
    share of the argmax tree. Constant and unread neurons are all zeros."""
    feats, support = _count(mlp)
    scale = _support_scale(mlp, feats.values(), support)
    if scale < 1.0:
        for f in feats.values():
            f *= scale
    return feats


def features(mlp: MLP) -> np.ndarray:
    """The :data:`FEATURES` of the circuit the emitter would write for ``mlp``."""
    feats, support = _count(mlp)
    total = np.sum(list(feats.values()), axis=0)
    return total * _support_scale(mlp, [total], support)


#: Rough gate equivalents of the features (their common unit for the caps below).
GATE_EQUIVALENTS = np.array([5.0, 2.0, 3.0, 1.0, 1.0, 1.0, 3.0, 1.5, 3.0, 0.0])
#: Logic-size bounds ``(a, b)``: ``a * 2 ** (b * k)`` gate equivalents per output bit of a
#: function of ``k`` input bits, for one neuron (its operand bits) and for the whole class
#: output (the primary input bits it depends on). Chosen on the calibration sample
#: (flows/bench/calibrate_cost.py); ABC gets nowhere near the theoretical bound.
_NEURON_CAP = (0.1, 0.75)
_DESIGN_CAP = (1.0, 0.75)


def _cap(f: np.ndarray, n_out: int, n_in: int, param: tuple[float, float]) -> float:
    """The factor (<= 1) that caps the hardware counted in ``f`` at the logic-size bound of
    ``n_out`` functions of ``n_in`` input bits, ``a * n_out * 2 ** (b * n_in)`` gate
    equivalents with ``(a, b) = param``."""
    if n_in > 40:
        return 1.0
    gates = float(f @ GATE_EQUIVALENTS)
    cap = param[0] * n_out * 2.0 ** (param[1] * n_in)
    return 1.0 if gates <= cap else cap / gates


def _support_scale(mlp: MLP, feats, support: int) -> float:
    """Synthesis rewrites the logic of a function of few input bits from its truth table:
    a heavily pruned design whose class output depends on ``support`` input bits is no
    larger than such a function, however much arithmetic it was written with. The factor
    that caps the counted hardware at that size (1 when the support is wide)."""
    return _cap(sum(feats), max(1, (mlp.n_classes - 1).bit_length()), support, _DESIGN_CAP)


def _count(mlp: MLP) -> tuple[dict[tuple[int, int], np.ndarray], int]:
    """Per-neuron features, and the number of input bits the class output depends on."""
    rng = analyze(mlp)
    ib = mlp.input_bits
    support: dict[tuple[int, int], int] = {}  # input bits (bit set) each neuron depends on
    prev_support = [((1 << ib) - 1) << (ib * i) for i in range(mlp.n_inputs)]
    n_layers = len(mlp.layers)
    last = n_layers - 1
    # Which bits of every neuron's output something reads, from the argmax backwards: a
    # neuron (or an output bit) nobody reads is removed by synthesis, whatever it computes.
    out_layer = mlp.layers[last]
    ranges = []
    for j, r in enumerate(rng[last]):
        d = out_layer.approx[j].cmp_drop
        lo, hi = (r.v_lo, r.v_hi) if out_layer.activation == "linear" else (r.out_lo, r.out_hi)
        if out_layer.activation != "linear":
            d = min(d, unsigned_width(r.out_hi))
        ranges.append(((lo >> d) << d, (hi >> d) << d))
    compared = _argmax_compared(ranges)
    read: list[list[int]] = [[0] * layer.n_out for layer in mlp.layers]
    read[last] = [-1 if j in compared else 0 for j in range(out_layer.n_out)]
    for li in range(last, 0, -1):
        for j, r in enumerate(rng[li]):
            if r.out_lo == r.out_hi or not read[li][j]:
                continue
            for p in r.pos + r.neg:
                m = p.mask & ((1 << p.operand_max.bit_length()) - 1)
                if p.trunc:
                    mag = abs(p.weight)
                    dg = _digits(mag, unsigned_width(mag * p.operand_max))
                    if len(dg) == 1:  # a shifted copy: operand bits below the cut vanish
                        m &= ~((1 << max(0, p.trunc - dg[0][0])) - 1)
                read[li - 1][p.index] |= m
    out: dict[tuple[int, int], np.ndarray] = {}
    scores = []
    # known-constant low bits of each operand (an upstream act_trunc, or a sum whose lowest
    # bits are bias bits only): they fold into the constant term
    zeros_in = [0] * mlp.n_inputs
    for li, layer in enumerate(mlp.layers):
        s = layer.shift
        qrelu = layer.activation == "qrelu"
        const_low = [a.act_trunc if qrelu else 0 for a in layer.approx]
        for j, r in enumerate(rng[li]):
            f = np.zeros(len(FEATURES))
            out[(li, j)] = f
            a = layer.approx[j]
            const_neuron = r.out_lo == r.out_hi
            if li == last:
                d = a.cmp_drop
                if qrelu:
                    lo, hi = r.out_lo, r.out_hi
                    d = min(d, unsigned_width(r.out_hi))
                else:
                    lo, hi = r.v_lo, r.v_hi
                score = [(lo >> d) << d, (hi >> d) << d, d, const_neuron]
                scores.append(score)
                used = read[li][j] & (-1 << d)
            else:
                used = read[li][j]
            if const_neuron or not used:
                continue
            width = r.acc_width
            if qrelu:
                wo = unsigned_width(r.out_hi)
                ub = [b for b in range(a.act_trunc, wo) if used >> b & 1]
                if not ub:
                    continue
                sat = r.v_hi > (1 << layer.act_bits) - 1
                neg = r.v_lo < 0
                sign_bit = width - 1
                lo_need = s + ub[0]
                hi_need = sign_bit if neg else (sign_bit if sat else s + ub[-1])
                f[_F["act_gates"]] += len(ub) * (int(sat) + int(neg))
                if sat:
                    f[_F["sat_or"]] += max(0, (sign_bit - 1 if neg else sign_bit) - (s + wo) + 1)
            else:
                wv = signed_width(r.v_lo, r.v_hi)
                lo_need = s + min(d, wv - 1)
                hi_need = min(width - 1, s + wv - 1)
            f[_F["neurons"]] += 1
            n_out = max(1, wo - a.act_trunc) if qrelu else max(1, wv - min(d, wv - 1))
            n_in = 0
            sup = 0
            cols = [0] * width
            const = r.const
            for sign, group in ((1, r.pos), (-1, r.neg)):
                for p in group:
                    mag = abs(p.weight)
                    pw = unsigned_width(mag * p.operand_max)
                    bits = _bits(p.mask & ((1 << p.operand_max.bit_length()) - 1) & (-1 << zeros_in[p.index]))
                    n_in += len(bits)
                    if li == 0:
                        sup |= sum(1 << (ib * p.index + b) for b in bits)
                    else:
                        sup |= prev_support[p.index]
                    dg = _digits(mag, pw)
                    if p.trunc and len(dg) > 1:  # its own adder, then the bits above the cut
                        pcols = [0] * pw
                        pconst = 0
                        for k, ds in dg:
                            for b in bits:
                                if b + k < pw:
                                    pcols[b + k] += 1
                                    if ds < 0:
                                        pconst -= 1 << (b + k)
                        _compress(pcols, pconst % (1 << pw), p.trunc, pw - 1, f)
                        for q in range(p.trunc, min(pw, width)):
                            cols[q] += 1
                            if sign < 0:
                                const -= 1 << q
                        continue
                    for k, ds in dg:
                        neg_term = sign * ds < 0
                        for b in bits:
                            q = b + k
                            if p.trunc <= q < width:
                                cols[q] += 1
                                if neg_term:
                                    const -= 1 << q
            _compress(cols, const % (1 << width), lo_need, hi_need, f)
            f *= _cap(f, n_out, n_in, _NEURON_CAP)
            support[(li, j)] = sup
            if not qrelu or not (neg or sat):  # no clamp: the bias bits below the sum's lowest
                low = next((c for c, h in enumerate(cols) if h), width)  # bit are constant
                const_low[j] = max(const_low[j], low - s)
            if li == last:  # bits constant in this score need no comparator
                score[2] = max(score[2], const_low[j])
        zeros_in = const_low
        prev_support = [support.get((li, j), 0) for j in range(layer.n_out)]
    _argmax(scores, mlp.layers[-1].activation == "linear", [out[(last, j)] for j in range(len(scores))])
    total = 0
    for v in prev_support:
        total |= v
    return out, bin(total).count("1")


def _argmax_compared(ranges: list[tuple[int, int]]) -> set[int]:
    """Classes whose score some comparator of the argmax tree reads (the emitter prunes the
    comparisons that the value ranges decide; a lone survivor is read by nobody)."""
    level = [(lo, hi, {j}) for j, (lo, hi) in enumerate(ranges)]
    read: set[int] = set()
    while len(level) > 1:
        nxt = []
        for p in range(0, len(level) - 1, 2):
            (alo, ahi, a), (blo, bhi, b) = level[p], level[p + 1]
            if bhi <= alo:
                nxt.append(level[p])
            elif blo > ahi:
                nxt.append(level[p + 1])
            else:
                read |= a | b
                nxt.append((max(alo, blo), max(ahi, bhi), a | b))
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return read


def _argmax(scores: list[tuple[int, int, int, bool]], signed: bool, shares: list[np.ndarray]) -> None:
    """Comparator and multiplexer bits of the argmax tree (``emit._Emitter.argmax``'s plan),
    split evenly over the output neurons. ``scores``: per class, value range, known-zero low
    bits and whether it is constant."""
    k = max(1, (len(scores) - 1).bit_length())
    level = [(lo, hi, z, c, 0) for lo, hi, z, c in scores]   # ..., bits of the node's mux
    total = np.zeros(len(FEATURES))
    while len(level) > 1:
        nxt = []
        for p in range(0, len(level) - 1, 2):
            (alo, ahi, az, ac, _), (blo, bhi, bz, bc, _) = level[p], level[p + 1]
            if bhi <= alo:
                nxt.append(level[p])
            elif blo > ahi:
                nxt.append(level[p + 1])
            else:
                w = signed_width(min(alo, blo), max(ahi, bhi)) if signed else unsigned_width(max(ahi, bhi))
                bits = max(1, w - min(az, bz))
                total[_F["cmp_const_bits" if (ac or bc) else "cmp_bits"]] += bits
                total[_F["mux_bits"]] += k + bits
                nxt.append((max(alo, blo), max(ahi, bhi), min(az, bz), False, bits))
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    total[_F["mux_bits"]] -= level[0][4]  # the root's value is never read, only its index
    for f in shares:
        f += total / len(shares)


@dataclass(frozen=True)
class CostModel:
    """Linear estimate of area (µm², or LUTs on an FPGA) and static power (mW) for one
    target: ``estimate = coeff[0] + coeff[1:] @ features``."""

    target: str
    area: tuple[float, ...]    # c0, then one coefficient per feature
    power: tuple[float, ...]

    def estimate(self, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        f = np.atleast_2d(feats)
        X = np.hstack([np.ones((len(f), 1)), f])
        return X @ np.array(self.area), X @ np.array(self.power)

    def area_of(self, mlp: MLP) -> float:
        return float(self.estimate(features(mlp))[0][0])

    def power_of(self, mlp: MLP) -> float:
        return float(self.estimate(features(mlp))[1][0])

    def to_json(self) -> dict:
        return {"target": self.target, "area": list(self.area), "power": list(self.power), "features": FEATURES,
                "features_version": FEATURES_VERSION}


#: Scale of the robust loss: relative errors well above it count ~logarithmically.
FIT_SCALE = 0.2


def _nnls(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative least squares on the *relative* error ``(X c - y) / y`` (a small design
    counts as much as a large one: the smallest are the ones a power budget picks), made
    robust by iteratively reweighting with the Cauchy loss of scale :data:`FIT_SCALE`:
    a few designs that synthesis collapses to a handful of gates (a function of a few
    input bits) would otherwise pull every coefficient down. Deterministic."""
    from scipy.optimize import nnls

    ok = y > 0  # a design synthesis folds to a constant has no relative error
    if not ok.any():
        return np.zeros(X.shape[1])
    X, y = X[ok], y[ok]
    scale = np.abs(X).max(axis=0)
    scale[scale == 0] = 1.0
    A = (X / scale) / y[:, None]
    c = nnls(A, np.ones(len(y)))[0]
    for _ in range(200):
        w = 1.0 / np.sqrt(1.0 + ((A @ c - 1.0) / FIT_SCALE) ** 2)
        new = nnls(A * w[:, None], w)[0]
        if np.allclose(new, c, rtol=1e-10, atol=1e-14):
            break
        c = new
    return c / scale


def calibrate(target: str, feats: Sequence[np.ndarray], areas: Sequence[float], powers: Sequence[float]) -> CostModel:
    """Fit the coefficients (non-negative: more hardware never makes a circuit smaller)."""
    F = np.vstack(feats)
    X = np.hstack([np.ones((len(F), 1)), F])
    return CostModel(target=target, area=tuple(_nnls(X, np.asarray(areas, dtype=float)).tolist()),
                     power=tuple(_nnls(X, np.asarray(powers, dtype=float)).tolist()))


def load_model(target: str) -> CostModel | None:
    """The shipped calibration for ``target`` (written by ``flows/bench/calibrate_cost.py``),
    or None if there is none for these features."""
    if not COEFF_FILE.is_file():
        return None
    d = json.loads(COEFF_FILE.read_text()).get(target)
    if d is None or tuple(d.get("features", ())) != FEATURES or d.get("features_version") != FEATURES_VERSION:
        return None
    return CostModel(target=target, area=tuple(d["area"]), power=tuple(d["power"]))
