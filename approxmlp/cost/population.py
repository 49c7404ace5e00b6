"""The cost model's features of a whole population at once.

:func:`population_features` gives, for every individual of a
:class:`~approxmlp.search.genome.Population`, exactly what
``approxmlp.cost.design.features(pop.individual(i))`` gives (the same integer counts; the
float factors of the logic-size caps equal to rounding), but as numpy operations over
``(individuals, neurons, inputs)`` arrays instead of one Python walk over every connection
of every individual. On digits 64-32-16-10 the per-individual walk (IR construction, range
analysis, column counting) took ~60 ms, 30x the evaluation of the individual on all 1,257
training samples; this is the search's inner loop, so it is done here the way
:mod:`approxmlp.search.evaluate` does the accuracy.

The steps are those of :func:`approxmlp.cost.design._count`, each over all individuals:

1. the range analysis of :func:`approxmlp.core.ranges.analyze` (operand bounds, masked
   maxima, constant operands folded, product magnitudes after truncation);
2. which bits of each neuron something reads, from the argmax backwards;
3. per layer, the accumulator's bit columns (every kept operand bit at each digit's shift),
   the adders that reduce them (:func:`_compress`, a carry loop over the columns), the
   QReLU and saturation gates, the neuron cap, the factor the layer's shared terms leave
   on its adders (:mod:`.sharing`), the support (which primary input bits a neuron
   depends on) and the known-constant low bits handed to the next layer;
4. the argmax tree's comparators and multiplexers, shared over the output neurons, and the
   design cap from the class output's support.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..core import argmax
from ..core.csd import csd
from .features import ADDERS, DESIGN_CAP, FA, FA_CARRY, FEATURES, HA, HA_CARRY, INDEX, NEURON_CAP, cap
from .sharing import adder_factor


# -- integer helpers on arrays ------------------------------------------------------------
def bit_length(x: np.ndarray) -> np.ndarray:
    """``int.bit_length`` of non-negative integers below ``2**53``, elementwise."""
    return np.frexp(np.asarray(x, dtype=np.float64))[1].astype(np.int64)


def uwidth(x: np.ndarray) -> np.ndarray:
    """:func:`approxmlp.core.ir.unsigned_width`: fewest bits holding ``0..x`` (at least 1)."""
    return np.maximum(1, bit_length(x))


def swidth(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """:func:`approxmlp.core.ir.signed_width`: fewest two's-complement bits holding ``[lo, hi]``."""
    lo, hi = np.asarray(lo), np.asarray(hi)
    w_hi = np.where(hi > 0, bit_length(np.maximum(hi, 0)) + 1, 1)
    w_lo = np.where(lo < 0, bit_length(np.maximum(-lo - 1, 0)) + 1, 1)
    return np.maximum(w_hi, w_lo)


def floor_to(v: np.ndarray, t: np.ndarray) -> np.ndarray:
    return (v >> t) << t


def max_masked(hi: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """:func:`approxmlp.core.ranges._max_masked`: largest ``x & mask`` over ``0 <= x <= hi``."""
    hi, mask = np.broadcast_arrays(hi, mask)
    best = hi & mask
    for k in range(int(bit_length(hi.max(initial=0)))):
        cand = ((hi >> (k + 1)) << (k + 1)) | ((1 << k) - 1)
        best = np.where((hi >> k) & 1 == 1, np.maximum(best, cand & mask), best)
    return best


@lru_cache(maxsize=8)
def _digit_tables(bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For magnitudes ``m`` in ``0..2**bits-1``: digits ``(2n, bits+1)`` (row ``2m``: CSD,
    -1/0/+1; row ``2m+1``: binary, 0/1), the number of binary digits, the number of CSD
    digits and the shift of the top CSD digit."""
    n = 1 << bits
    binary = np.zeros((n, bits + 1), dtype=np.int64)
    signed = np.zeros((n, bits + 1), dtype=np.int64)
    count = np.zeros(n, dtype=np.int64)
    top = np.zeros(n, dtype=np.int64)
    for m in range(1, n):
        d = csd(m)
        count[m] = len(d)
        top[m] = d[0][0]
        for k, s in d:
            signed[m, k] = s
        for k in range(m.bit_length()):
            binary[m, k] = m >> k & 1
    both = np.stack([signed, binary], axis=1).reshape(2 * n, bits + 1)
    popc = binary.sum(axis=1)
    for arr in (both, popc, count, top):
        arr.setflags(write=False)
    return both, popc, count, top


def digits(mag: np.ndarray, width: np.ndarray) -> np.ndarray:
    """``cost.design._digits`` elementwise: the signed digits ``(..., K)`` (digit ``k`` is the
    shifted copy ``x << k``, +1, -1 or absent) the emitter adds for ``x * mag`` in ``width``
    bits: CSD, or plain binary when that has no more terms or CSD's top digit does not fit."""
    bits = max(1, int(bit_length(mag.max(initial=0))))
    both, popc, count, top = _digit_tables(bits)
    use_binary = (popc[mag] <= count[mag]) | (top[mag] >= width)
    return both[2 * mag + use_binary]


def compress(cols: np.ndarray, const: np.ndarray, n_cols: np.ndarray, lo: np.ndarray, hi: np.ndarray,
             out: np.ndarray) -> None:
    """``cost.design._compress`` for ``K`` sums at once: ``cols`` ``(K, Q)`` bit counts (LSB first,
    the first ``n_cols`` columns real), ``const`` ``(K,)`` non-negative, the needed columns
    ``lo..hi``; adds the adders' counts to ``out`` ``(K, features)``."""
    K, Q = cols.shape
    carry = np.zeros(K, dtype=np.int64)
    for c in range(Q):
        active = (c < n_cols) & (c <= hi)
        if not active.any():
            break
        h = cols[:, c] + carry
        n = np.where(h >= 3, (h - 1) // 2, 0)
        h = h - 2 * n
        needed = c >= lo
        out[:, FA] += np.where(active & needed, n, 0)
        out[:, FA_CARRY] += np.where(active & ~needed, n, 0)
        two = h == 2
        out[:, HA] += active & needed & two
        out[:, HA_CARRY] += active & ~needed & two
        carry = n + two + ((h == 1) & ((const >> c) & 1 == 1))


def _planes(x: np.ndarray, bits: int) -> np.ndarray:
    """Bits ``0..bits-1`` of ``x`` on a new last axis (0/1 int64)."""
    return (x[..., None] >> np.arange(bits)) & 1


# -- the analysis ------------------------------------------------------------------------
def _ranges(pop) -> list[dict]:
    """:func:`approxmlp.core.ranges.analyze` for every individual, per layer, as arrays."""
    base = pop.base
    P = pop.size
    lo = np.zeros((P, base.n_inputs), dtype=np.int64)
    hi = np.full((P, base.n_inputs), (1 << base.input_bits) - 1, dtype=np.int64)
    zeros = np.zeros((P, base.n_inputs), dtype=np.int64)  # known-zero low bits (an upstream act_trunc)
    out = []
    for li, layer in enumerate(base.layers):
        W, M, B = pop.weights[li], pop.masks[li], pop.biases[li]
        T = pop.product_trunc[li][:, :, None]
        full = (1 << base.operand_bits(li)) - 1
        qrelu = layer.activation == "qrelu"
        aw, sgn = np.abs(W), np.sign(W)
        exact_masks = (M == full).all(axis=2)   # the IR then has no masks (ranges: omin = lo)
        M = M & (-1 << zeros[:, None, :])       # as ranges: a mask keeps no always-zero bit
        act = (W != 0) & (M != 0)
        constop = (lo == hi)[:, None, :]
        cprod = np.where(act & constop, sgn * floor_to(aw * (lo[:, None, :] & M), T), 0)
        const = B + cprod.sum(axis=2)
        omax = max_masked(hi[:, None, :], M)
        omin = np.where(exact_masks[:, :, None], lo[:, None, :], 0)
        mag = floor_to(aw * omax, T)
        incl = act & ~constop & (mag > 0)
        pos, neg = incl & (W > 0), incl & (W < 0)
        mag_min = floor_to(aw * omin, T)
        pos_max, neg_max = (mag * pos).sum(axis=2), (mag * neg).sum(axis=2)
        acc_lo = const + (mag_min * pos).sum(axis=2) - neg_max
        acc_hi = const + pos_max - (mag_min * neg).sum(axis=2)
        v_lo, v_hi = acc_lo >> layer.shift, acc_hi >> layer.shift
        at = pop.act_trunc[li] if qrelu else np.zeros_like(v_lo)
        if qrelu:
            top = (1 << layer.act_bits) - 1
            o_lo = floor_to(np.clip(v_lo, 0, top), at)
            o_hi = floor_to(np.clip(v_hi, 0, top), at)
        else:
            o_lo, o_hi = v_lo, v_hi
        width = swidth(np.minimum(acc_lo, const), np.maximum(acc_hi, const))
        width = np.maximum(width, np.where(pos.any(axis=2), uwidth(pos_max) + 1, 0))
        width = np.maximum(width, np.where(neg.any(axis=2), uwidth(neg_max) + 1, 0))
        out.append(dict(W=W, M=M, aw=aw, sgn=sgn, T=pop.product_trunc[li], at=at, incl=incl, omax=omax,
                        const=const, v_lo=v_lo, v_hi=v_hi, out_lo=o_lo, out_hi=o_hi, width=width,
                        op_mask=M & ((1 << bit_length(omax)) - 1)))
        lo, hi, zeros = o_lo, o_hi, at
    return out


def _argmax_compared(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``(P, C)``: whether some comparator of the pruned argmax tree reads class ``c``."""
    P, C = lo.shape
    read = np.zeros(P, dtype=np.int64)

    def merge(a, b, built, _ranges):
        nonlocal read
        read |= np.where(built, a[0] | b[0], 0)
        return (a[0] | b[0],)

    argmax.fold(lo, hi, [(np.full(P, 1 << j, dtype=np.int64),) for j in range(C)], merge)
    return (read[:, None] >> np.arange(C)) & 1 == 1


def _argmax(lo, hi, z, const, signed: bool) -> np.ndarray:
    """The argmax tree's comparator and multiplexer bits ``(P, features)`` (as
    ``cost.design._argmax``) for scores ``(P, C)`` (value range, known zero low bits, constant)."""
    P, C = lo.shape
    k = max(1, (C - 1).bit_length())
    total = np.zeros((P, len(FEATURES)))

    def merge(a, b, built, ranges):
        (az, ac, _), (bz, bc, _) = a, b
        alo, ahi, blo, bhi = ranges
        w = swidth(np.minimum(alo, blo), np.maximum(ahi, bhi)) if signed else uwidth(np.maximum(ahi, bhi))
        bits = np.maximum(1, w - np.minimum(az, bz))
        c = ac | bc
        total[:, INDEX["cmp_const_bits"]] += np.where(built & c, bits, 0)
        total[:, INDEX["cmp_bits"]] += np.where(built & ~c, bits, 0)
        total[:, INDEX["mux_bits"]] += np.where(built, k + bits, 0)
        return np.minimum(az, bz), np.zeros_like(ac), bits

    leaves = [(z[:, j], const[:, j], np.zeros(P, dtype=np.int64)) for j in range(C)]
    root_bits = argmax.fold(lo, hi, leaves, merge)[2]
    total[:, INDEX["mux_bits"]] -= root_bits  # the root's value is never read, only its index
    return total


def population_features(pop) -> np.ndarray:
    """``(P, len(FEATURES))``: row ``i`` is ``cost.design.features(pop.individual(i))``, for
    ``pop`` a :class:`~approxmlp.search.genome.Population` (read through its arrays only:
    the cost model sits below the search)."""
    base = pop.base
    P = pop.size
    L = len(base.layers)
    last = L - 1
    if any(layer.activation != "qrelu" for layer in base.layers[:-1]):
        raise ValueError("hidden layers must be QReLU")
    R = _ranges(pop)
    ib = base.input_bits
    out_layer = base.layers[last]
    linear_out = out_layer.activation == "linear"
    rl = R[last]

    # -- what each neuron's output bits are read by, from the argmax backwards --
    d_score = pop.cmp_drop.copy()
    if linear_out:
        s_lo, s_hi = rl["v_lo"], rl["v_hi"]
    else:
        s_lo, s_hi = rl["out_lo"], rl["out_hi"]
        d_score = np.minimum(d_score, uwidth(s_hi))
    compared = _argmax_compared(floor_to(s_lo, d_score), floor_to(s_hi, d_score))
    read: list[np.ndarray] = [np.zeros((P, layer.n_out), dtype=np.int64) for layer in base.layers]
    read[last] = np.where(compared, -1, 0)
    for li in range(last, 0, -1):
        r = R[li]
        live = (r["out_lo"] != r["out_hi"]) & (read[li] != 0)
        m = r["op_mask"]
        single = (r["aw"] & (r["aw"] - 1)) == 0          # one digit: a shifted copy
        cut = np.maximum(0, r["T"][:, :, None] - (bit_length(r["aw"]) - 1))
        m = np.where((r["T"][:, :, None] > 0) & single, m & ~((1 << cut) - 1), m)
        m = np.where(live[:, :, None] & r["incl"], m, 0)
        read[li - 1] = np.bitwise_or.reduce(m, axis=1)

    # -- per layer: columns, adders, gates, caps, support, constant low bits --
    feats = []
    zeros_in = np.zeros((P, base.n_inputs), dtype=np.int64)
    prev_support = None          # (P, n_in, primary input bits) of the layer's operands
    for li, layer in enumerate(base.layers):
        r = R[li]
        O, I = layer.n_out, layer.n_in
        s = layer.shift
        qrelu = layer.activation == "qrelu"
        f = np.zeros((P, O, len(FEATURES)))
        if li == last:
            used = np.where(compared, -1 << d_score, 0)
        else:
            used = read[li]
        width = r["width"]
        live = (r["out_lo"] != r["out_hi"]) & (used != 0)
        if qrelu:
            at = r["at"]
            wo = uwidth(r["out_hi"])
            ub = used & ((1 << wo) - 1) & (-1 << at)
            live &= ub != 0
            n_ub = _planes(ub, int(bit_length(ub.max(initial=0)))).sum(axis=-1)
            ub_first = bit_length(ub & -ub) - 1
            ub_last = bit_length(ub) - 1
            sat = r["v_hi"] > (1 << layer.act_bits) - 1
            negf = r["v_lo"] < 0
            sign_bit = width - 1
            lo_need = s + ub_first
            hi_need = np.where(negf | sat, sign_bit, s + ub_last)
            f[:, :, INDEX["act_gates"]] = n_ub * (sat.astype(np.int64) + negf)
            f[:, :, INDEX["sat_or"]] = np.where(sat, np.maximum(0, np.where(negf, sign_bit - 1, sign_bit) - (s + wo) + 1), 0)
            n_out = np.maximum(1, wo - at)
        else:
            wv = swidth(r["v_lo"], r["v_hi"])
            dd = np.minimum(pop.cmp_drop, wv - 1)
            lo_need = s + dd
            hi_need = np.minimum(width - 1, s + wv - 1)
            n_out = np.maximum(1, wv - dd)
        f[:, :, INDEX["neurons"]] = 1

        incl = r["incl"] & live[:, :, None]
        bm = r["op_mask"] & (-1 << zeros_in[:, None, :])
        bm = np.where(incl, bm, 0)
        ob = max(1, int(bit_length(bm.max(initial=0))))
        B = _planes(bm, ob)                                    # (P, O, I, ob) operand bits kept
        n_in = B.sum(axis=(2, 3))
        pw = uwidth(r["aw"] * r["omax"])
        D = digits(r["aw"], pw)                                # (P, O, I, K)
        T = r["T"]
        multi = incl & (T[:, :, None] > 0) & ((D != 0).sum(axis=-1) > 1)
        normal = incl & ~multi
        Q = int(width.max(initial=1))
        cols = np.zeros((P, O, Q + ob + D.shape[-1]), dtype=np.int64)
        negs = np.zeros_like(cols)
        Bn = (B * normal[..., None]).astype(np.float64)
        neg_w = (r["W"] < 0)[..., None]
        # placements (digit k, operand bit b) summed over the inputs: one batched GEMM each
        # (small integer counts: exact in float64); column k + b gets them
        Dt = np.swapaxes(D, -1, -2)
        C = np.matmul((Dt != 0).astype(np.float64), Bn).astype(np.int64)           # (P, O, K, ob)
        N = np.matmul((((D < 0) & ~neg_w) | ((D > 0) & neg_w)).swapaxes(-1, -2).astype(np.float64),
                      Bn).astype(np.int64)
        for k in range(D.shape[-1]):
            cols[:, :, k:k + ob] += C[:, :, k]
            negs[:, :, k:k + ob] += N[:, :, k]
        q = np.arange(cols.shape[-1])
        in_range = (q >= T[:, :, None]) & (q < width[:, :, None])
        cols *= in_range
        negs *= in_range
        const = r["const"] - (negs * (1 << np.minimum(q, 62))).sum(axis=-1)
        if multi.any():  # truncated products of several digits: an adder each, then the bits above the cut
            pi, oi, ii = np.nonzero(multi)
            Bk, Dk, pwk, Tk = B[pi, oi, ii], D[pi, oi, ii], pw[pi, oi, ii], T[pi, oi]
            Qp = int(pwk.max())
            pcols = np.zeros((len(pi), Qp + ob + Dk.shape[-1]), dtype=np.int64)
            pneg = np.zeros_like(pcols)
            for k in range(Dk.shape[-1]):
                pcols[:, k:k + ob] += Bk * (Dk[:, k] != 0)[:, None]
                pneg[:, k:k + ob] += Bk * (Dk[:, k] < 0)[:, None]
            qp = np.arange(pcols.shape[-1])
            fits = qp < pwk[:, None]
            pcols *= fits
            pconst = -(pneg * fits * (1 << np.minimum(qp, 62))).sum(axis=-1)
            fk = np.zeros((len(pi), len(FEATURES)))
            compress(pcols, np.mod(pconst, 1 << pwk), pwk, Tk, pwk - 1, fk)
            np.add.at(f, (pi, oi), fk)
            above = (q >= Tk[:, None]) & (q < np.minimum(pwk, width[pi, oi])[:, None])
            np.add.at(cols, (pi, oi), above.astype(np.int64))
            np.add.at(const, (pi, oi), -np.where(neg_w[pi, oi, ii] & above,
                                                 1 << np.minimum(q, 62), 0).sum(axis=-1))
        fc = np.zeros((P * O, len(FEATURES)))
        compress(cols.reshape(P * O, -1), np.mod(const, 1 << width).reshape(-1), width.reshape(-1),
                 lo_need.reshape(-1), hi_need.reshape(-1), fc)
        f += fc.reshape(P, O, -1)
        f *= cap(f, n_out, n_in, NEURON_CAP)[..., None]
        f *= live[..., None]
        # the layer's shared terms: untruncated products share, through their kept bits
        untrunc = incl & (T[:, :, None] == 0)
        signed = D * r["sgn"][..., None]
        summands = np.where(incl, np.where(T[:, :, None] > 0, 1, (D != 0).sum(axis=-1)), 0).sum(axis=2)
        f[..., ADDERS] *= adder_factor(signed, np.where(untrunc, bm, 0), summands)[:, None, None]

        # support: the primary input bits each live neuron depends on
        if li == 0:
            sup = (B[..., :ib] if ob >= ib else np.pad(B, ((0, 0),) * 3 + ((0, ib - ob),))).reshape(P, O, I * ib) > 0
        else:
            sup = np.matmul(incl.astype(np.float32), prev_support.astype(np.float32)) > 0
        sup &= live[:, :, None]
        # known-constant low bits of each output, for the next layer (and the argmax)
        const_low = r["at"].copy() if qrelu else np.zeros((P, O), dtype=np.int64)
        nz = cols != 0
        low = np.where(nz.any(axis=-1), nz.argmax(axis=-1), width)
        no_clamp = np.ones((P, O), dtype=bool) if not qrelu else ~(negf | sat)
        const_low = np.where(live & no_clamp, np.maximum(const_low, low - s), const_low)
        if li == last:
            d_score = np.where(live, np.maximum(d_score, const_low), d_score)
        feats.append(f)
        zeros_in = const_low
        prev_support = sup

    total = _argmax(floor_to(s_lo, pop.cmp_drop if linear_out else np.minimum(pop.cmp_drop, uwidth(s_hi))),
                    floor_to(s_hi, pop.cmp_drop if linear_out else np.minimum(pop.cmp_drop, uwidth(s_hi))),
                    d_score, rl["out_lo"] == rl["out_hi"], linear_out)
    feats[last] += (total / out_layer.n_out)[:, None, :]
    per_neuron = np.concatenate(feats, axis=1)
    summed = per_neuron.sum(axis=1)
    support = prev_support.any(axis=1).sum(axis=-1)
    n_class_bits = max(1, (base.n_classes - 1).bit_length())
    return summed * cap(summed, np.full(P, n_class_bits), support, DESIGN_CAP)[:, None]
