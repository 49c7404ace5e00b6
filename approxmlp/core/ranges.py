"""Value ranges of every signal of an IR, hence its exact minimal bit widths.

Interval arithmetic over the IR semantics, with the input range as the only assumption.
The Verilog emitter sizes every wire from these figures (two's-complement arithmetic
modulo the width is exact when the true value fits, so each expression may be computed
directly in its final width), and the cost model counts adder bits from them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.ir import MLP, signed_width, unsigned_width


@dataclass(frozen=True)
class ProductRange:
    """One nonzero connection ``i -> j``: operand bound and product magnitude bound."""

    index: int        # input index i
    weight: int
    mask: int         # operand bits kept (all ones when exact)
    operand_max: int  # largest value of the (masked) operand
    mag_max: int      # largest |product| after truncation
    mag_min: int      # smallest |product| after truncation
    trunc: int


@dataclass(frozen=True)
class NeuronRange:
    """Bounds of one neuron's signals."""

    pos: tuple[ProductRange, ...]
    neg: tuple[ProductRange, ...]
    pos_max: int         # largest sum of positive product magnitudes
    neg_max: int
    const: int           # bias plus the products of constant operands (folded)
    acc_lo: int
    acc_hi: int
    v_lo: int            # after the rescale
    v_hi: int
    out_lo: int          # after the activation (and act_trunc)
    out_hi: int

    @property
    def pos_width(self) -> int:
        return unsigned_width(self.pos_max)

    @property
    def neg_width(self) -> int:
        return unsigned_width(self.neg_max)

    @property
    def acc_width(self) -> int:
        """Signed accumulator width: holds the value range *and* each operand sum, so that
        no operand ever has to be narrowed (narrowing is exact but reads as a bug)."""
        w = signed_width(min(self.acc_lo, self.const), max(self.acc_hi, self.const))
        if self.pos:
            w = max(w, self.pos_width + 1)
        if self.neg:
            w = max(w, self.neg_width + 1)
        return w

    @property
    def out_signed(self) -> bool:
        return self.out_lo < 0

    @property
    def out_width(self) -> int:
        return signed_width(self.out_lo, self.out_hi) if self.out_lo < 0 else unsigned_width(self.out_hi)


def _floor_to(v: int, t: int) -> int:
    return (v >> t) << t


def analyze(mlp: MLP) -> tuple[tuple[NeuronRange, ...], ...]:
    """Per layer, per neuron ranges. Inputs range over ``0..2**input_bits-1``.

    Products of operands that are provably constant (a dead neuron upstream, say) are
    folded into the neuron's constant term, which the emitter adds in place of the bias.
    An operand mask is reported without the bits an upstream output truncation clears (the
    code then never reads a bit that is always zero), and a connection whose mask keeps
    only such bits is no connection.
    """
    operands = [(0, (1 << mlp.input_bits) - 1)] * mlp.n_inputs
    zeros = [0] * mlp.n_inputs  # known-zero low bits of each operand (an upstream act_trunc)
    result = []
    for layer in mlp.layers:
        neurons = []
        for j, row in enumerate(layer.weights):
            a = layer.approx[j]
            pos, neg = [], []
            const = layer.biases[j]
            for i, w in enumerate(row):
                mask = a.input_masks[i] if a.input_masks is not None else None
                if mask is not None:  # a mask bit over a bit that is always zero keeps nothing
                    mask &= -1 << zeros[i]
                lo, hi = operands[i]
                if w == 0 or mask == 0:
                    continue
                if lo == hi:  # constant operand: an exact constant product
                    x = lo if mask is None else lo & mask
                    const += (1 if w > 0 else -1) * _floor_to(abs(w) * x, a.product_trunc)
                    continue
                omax = hi if mask is None else _max_masked(hi, mask)
                omin = lo if mask is None else 0
                mag = _floor_to(abs(w) * omax, a.product_trunc)
                if mag == 0:
                    continue
                pr = ProductRange(index=i, weight=w, mask=(1 << 62) - 1 if mask is None else mask,
                                  operand_max=omax, mag_max=mag,
                                  mag_min=_floor_to(abs(w) * omin, a.product_trunc), trunc=a.product_trunc)
                (pos if w > 0 else neg).append(pr)
            pos_max = sum(p.mag_max for p in pos)
            neg_max = sum(p.mag_max for p in neg)
            acc_lo = const + sum(p.mag_min for p in pos) - neg_max
            acc_hi = const + pos_max - sum(p.mag_min for p in neg)
            v_lo, v_hi = acc_lo >> layer.shift, acc_hi >> layer.shift
            if layer.activation == "qrelu":
                top = (1 << layer.act_bits) - 1
                out_lo = _floor_to(min(max(v_lo, 0), top), a.act_trunc)
                out_hi = _floor_to(min(max(v_hi, 0), top), a.act_trunc)
            else:
                out_lo, out_hi = v_lo, v_hi
            neurons.append(NeuronRange(pos=tuple(pos), neg=tuple(neg), pos_max=pos_max, neg_max=neg_max,
                                       const=const, acc_lo=acc_lo, acc_hi=acc_hi, v_lo=v_lo, v_hi=v_hi,
                                       out_lo=out_lo, out_hi=out_hi))
        result.append(tuple(neurons))
        operands = [(n.out_lo, n.out_hi) for n in neurons]
        zeros = [a.act_trunc if layer.activation == "qrelu" else 0 for a in layer.approx]
    return tuple(result)


def _max_masked(hi: int, mask: int) -> int:
    """Largest ``x & mask`` over ``0 <= x <= hi``."""
    best = hi & mask
    # Try clearing a set bit of hi above which we then may set all lower mask bits.
    for k in range(hi.bit_length()):
        if hi >> k & 1:
            cand = ((hi >> (k + 1)) << (k + 1)) | ((1 << k) - 1)
            best = max(best, cand & mask)
    return best
