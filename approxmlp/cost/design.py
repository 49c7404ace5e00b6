"""The cost model's features of one IR: the oracle the population version is tested against.

Synthesis takes seconds per design; the genetic search needs thousands of estimates a
second, so :mod:`.population` counts whole populations at once with arrays; this module
counts one IR with plain Python, step by step, and the two must agree exactly
(``tests/test_features.py``). The estimate counts what the emitted circuit (:mod:`approxmlp.backend.verilog`) is made of,
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
  removes one bit. A truncated product of several digits is an adder of its own first.
  The emitter builds the digit pairs that recur across a layer once, as shared terms
  (:mod:`approxmlp.core.sharing`); each layer's adder counts (these four features) are
  scaled by the fraction of additions that sharing leaves, estimated from how often digit
  pairs repeat (:mod:`.sharing`: the plan itself is too slow for the search's loop);
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
(:data:`~approxmlp.cost.features.GATE_EQUIVALENTS`) per output bit when it reads ``k`` operand bits, and the whole
design's at ``1.0 * 2**(0.75 k)`` per class-index bit when the class depends on ``k``
primary input bits (:func:`~approxmlp.cost.features.cap`); both bind only for designs of a
few dozen gates.

``area = c0 + sum_k c_k * feature_k`` (and the same form for static power), with
coefficients fitted per target against real Yosys synthesis by non-negative least squares
on the *relative* error, made robust (:func:`approxmlp.cost.model.calibrate`). ``python -m
flows.bench.calibrate_cost`` samples the designs (exact, mutated, search fronts down to 25 %
accuracy loss, and the fronts of searches that use the model being fitted), fits, and
reports the error on held-out designs, also on the smallest third, and on earlier
`explore` runs.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..core import argmax
from ..core.csd import csd
from ..core.ir import MLP, signed_width, unsigned_width
from ..core.ranges import analyze
from .features import ADDERS, DESIGN_CAP, FEATURES, FA, FA_CARRY, HA, HA_CARRY, INDEX, NEURON_CAP, cap
from .sharing import excess_ratio, factor_of_ratio



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
            out[FA if c >= lo_needed else FA_CARRY] += n
        if h == 2:  # a half adder (with a constant 1 as third input: as cheap)
            carry += 1
            out[HA if c >= lo_needed else HA_CARRY] += 1
        elif h == 1 and const >> c & 1:  # x + 1: sum ~x, carry x; no adder
            carry += 1


def _bits(m: int) -> list[int]:
    return [b for b in range(m.bit_length()) if m >> b & 1]


def neuron_features(mlp: MLP) -> dict[tuple[int, int], np.ndarray]:
    """The :data:`FEATURES` per neuron ``(layer, index)``; an output neuron carries an equal
    share of the argmax tree. Constant and unread neurons are all zeros."""
    feats, support, _ = _count(mlp)
    scale = _support_scale(mlp, feats.values(), support)
    if scale < 1.0:
        for f in feats.values():
            f *= scale
    return feats


def features(mlp: MLP) -> np.ndarray:
    """The :data:`FEATURES` of the circuit the emitter would write for ``mlp``."""
    feats, support, _ = _count(mlp)
    total = np.sum(list(feats.values()), axis=0)
    return total * _support_scale(mlp, [total], support)


def _support_scale(mlp: MLP, feats, support: int) -> float:
    """Synthesis rewrites the logic of a function of few input bits from its truth table:
    a heavily pruned design whose class output depends on ``support`` input bits is no
    larger than such a function, however much arithmetic it was written with. The factor
    that caps the counted hardware at that size (1 when the support is wide)."""
    return float(cap(sum(feats), max(1, (mlp.n_classes - 1).bit_length()), support, DESIGN_CAP))


def excess_ratios(mlp: MLP) -> tuple[float, ...]:
    """Per layer, the repeated digit pairs over the additions
    (:func:`approxmlp.cost.sharing.excess_ratio`) that the features' sharing factor comes
    from: what ``flows/bench/calibrate_cost.py --sharing`` fits the factor's curve on."""
    return tuple(_count(mlp)[2])


def _count(mlp: MLP) -> tuple[dict[tuple[int, int], np.ndarray], int, list[float]]:
    """Per-neuron features, the number of input bits the class output depends on, and
    each layer's :func:`excess_ratios`."""
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
    tree = argmax.plan(ranges)
    compared = tree.compared
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
    ratios: list[float] = []
    scores = []
    # known-constant low bits of each operand (an upstream act_trunc, or a sum whose lowest
    # bits are bias bits only): they fold into the constant term
    zeros_in = [0] * mlp.n_inputs
    for li, layer in enumerate(mlp.layers):
        s = layer.shift
        qrelu = layer.activation == "qrelu"
        const_low = [a.act_trunc if qrelu else 0 for a in layer.approx]
        shared: list[tuple[int, int, int, tuple]] = []  # (neuron, input, kept bits, signed digits)
        summands = np.zeros((1, layer.n_out), dtype=np.int64)
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
                f[INDEX["act_gates"]] += len(ub) * (int(sat) + int(neg))
                if sat:
                    f[INDEX["sat_or"]] += max(0, (sign_bit - 1 if neg else sign_bit) - (s + wo) + 1)
            else:
                wv = signed_width(r.v_lo, r.v_hi)
                lo_need = s + min(d, wv - 1)
                hi_need = min(width - 1, s + wv - 1)
            f[INDEX["neurons"]] += 1
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
                    summands[0, j] += 1 if p.trunc else len(dg)
                    if not p.trunc:
                        kept = p.mask & ((1 << p.operand_max.bit_length()) - 1) & (-1 << zeros_in[p.index])
                        shared.append((j, p.index, kept, tuple((k, sign * ds) for k, ds in dg)))
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
            f *= float(cap(f, n_out, n_in, NEURON_CAP))
            support[(li, j)] = sup
            if not qrelu or not (neg or sat):  # no clamp: the bias bits below the sum's lowest
                low = next((c for c, h in enumerate(cols) if h), width)  # bit are constant
                const_low[j] = max(const_low[j], low - s)
            if li == last:  # bits constant in this score need no comparator
                score[2] = max(score[2], const_low[j])
        ratios.append(_excess_ratio(shared, summands, layer.n_in))
        factor = float(factor_of_ratio(np.array(ratios[-1])))
        for j in range(layer.n_out):
            out[(li, j)][ADDERS] *= factor
        zeros_in = const_low
        prev_support = [support.get((li, j), 0) for j in range(layer.n_out)]
    _argmax(tree, scores, mlp.layers[-1].activation == "linear", [out[(last, j)] for j in range(len(scores))])
    total = 0
    for v in prev_support:
        total |= v
    return out, bin(total).count("1"), ratios


def _excess_ratio(shared: list[tuple[int, int, int, tuple]], summands: np.ndarray, n_in: int) -> float:
    """:func:`approxmlp.cost.sharing.excess_ratio` of one layer (a population of one)."""
    K = 1 + max((k for *_, dg in shared for k, _ in dg), default=0)
    digits = np.zeros((1, summands.shape[1], n_in, K), dtype=np.int64)
    keys = np.zeros((1, summands.shape[1], n_in), dtype=np.int64)
    for j, i, kept, dg in shared:
        keys[0, j, i] = kept
        for k, d in dg:
            digits[0, j, i, k] = d
    return float(excess_ratio(digits, keys, summands)[0])


def _argmax(tree: argmax.Plan, scores: list[list], signed: bool, shares: list[np.ndarray]) -> None:
    """Comparator and multiplexer bits of the argmax tree the emitter writes (``tree``,
    :func:`approxmlp.core.argmax.plan`), split evenly over the output neurons. ``scores``:
    per class, value range, known-zero low bits and whether it is constant."""
    k = max(1, (len(scores) - 1).bit_length())
    total = np.zeros(len(FEATURES))

    seen: dict[int, tuple[int, bool, int]] = {}

    def node(n: argmax.Node) -> tuple[int, bool, int]:
        """The node's known-zero low bits, constness and the bits of its value mux."""
        if n.kids is None:
            return scores[n.leaf][2], scores[n.leaf][3], 0
        return seen[id(n)]

    for n in tree.made:  # level by level: the kids are known first
        (az, ac, _), (bz, bc, _) = node(n.kids[0]), node(n.kids[1])
        a, b = n.kids
        w = signed_width(min(a.lo, b.lo), max(a.hi, b.hi)) if signed else unsigned_width(max(a.hi, b.hi))
        bits = max(1, w - min(az, bz))
        total[INDEX["cmp_const_bits" if (ac or bc) else "cmp_bits"]] += bits
        total[INDEX["mux_bits"]] += k + bits
        seen[id(n)] = (min(az, bz), False, bits)
    total[INDEX["mux_bits"]] -= node(tree.root)[2]  # the root's value is never read, only its index
    for f in shares:
        f += total / len(shares)
