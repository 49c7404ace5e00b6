"""Reference models of the ``rtl/`` primitives: what each computes, in plain Python, for
the inputs its callers guarantee (shifts of Python ints are arithmetic, as ``>>>``)."""

from __future__ import annotations


def qrelu(acc: int, *, ACC_W: int, SHIFT: int, OUT_W: int, TRUNC: int, CAN_NEG: int, CAN_SAT: int,
          SAT_W: int | None = None) -> int:
    """The low OUT_W bits of the activation saturated at 2**SAT_W - 1 (SAT_W: OUT_W unless given)."""
    sat_w = OUT_W if SAT_W is None else SAT_W
    v = acc >> SHIFT
    y = min(max(v, 0), (1 << sat_w) - 1)
    return ((y >> TRUNC) << TRUNC) & ((1 << OUT_W) - 1)


def qrelu_inputs(*, ACC_W: int, SHIFT: int, OUT_W: int, TRUNC: int, CAN_NEG: int, CAN_SAT: int,
                 SAT_W: int | None = None) -> list[int]:
    """Every accumulator value the caller may present: negative ones only with CAN_NEG,
    ones above the activation's level only with CAN_SAT."""
    sat_w = OUT_W if SAT_W is None else SAT_W
    values = range(-(1 << (ACC_W - 1)), 1 << (ACC_W - 1))
    return [a for a in values if (CAN_NEG or a >= 0) and (CAN_SAT or a >> SHIFT < 1 << sat_w)]


def rescale(acc: int, *, ACC_W: int, SHIFT: int, DROP: int, OUT_W: int) -> int:
    return ((acc >> SHIFT) >> DROP) << DROP


def rescale_inputs(*, ACC_W: int, SHIFT: int, DROP: int, OUT_W: int) -> list[int]:
    """Every accumulator value whose result fits in OUT_W signed bits."""
    values = range(-(1 << (ACC_W - 1)), 1 << (ACC_W - 1))
    lim = 1 << (OUT_W - 1)
    return [a for a in values if -lim <= rescale(a, ACC_W=ACC_W, SHIFT=SHIFT, DROP=DROP, OUT_W=OUT_W) < lim]


def as_number(bits: int, width: int, signed: bool) -> int:
    """The value of a ``width``-bit pattern."""
    return bits - (1 << width) if signed and bits >> (width - 1) & 1 else bits
