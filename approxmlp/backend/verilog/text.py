"""Verilog text pieces: signals that remember which of their bits are read, and the
expressions the emitter builds from them (extensions, slices, masked operands, CSD
products), each exactly as wide as its context so that ``-Wall`` has nothing to say."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...core.csd import csd
from ...core.ir import unsigned_width


@dataclass
class Signal:
    """A named unsigned/signed wire and which of its bits some expression reads."""

    name: str
    width: int
    used: set[int] = field(default_factory=set)

    def use(self, bits) -> None:
        self.used.update(bits)

    def unused(self) -> list[int]:
        return [b for b in range(self.width) if b not in self.used]


def bits_str(bits: list[int]) -> str:
    """Compact description of a bit set, e.g. ``[5:0],7``."""
    runs, start = [], None
    for b in sorted(bits):
        if start is None:
            start = prev = b
        elif b == prev + 1:
            prev = b
        else:
            runs.append((start, prev))
            start = prev = b
    if start is not None:
        runs.append((start, prev))
    return ",".join(f"[{hi}:{lo}]" if hi != lo else str(lo) for lo, hi in runs)


def zext(expr: str, width: int, target: int) -> str:
    """Zero-extend an unsigned ``width``-bit expression to ``target`` bits."""
    assert target >= width, (expr, width, target)
    return expr if target == width else f"{{{target - width}'d0, {expr}}}"


def sext(name: str, width: int, target: int) -> str:
    """Sign-extend a signed ``width``-bit signal to ``target`` bits."""
    assert target >= width
    if target == width:
        return name
    top = f"{name}[{width - 1}]"
    rep = top if target - width == 1 else f"{{{target - width}{{{top}}}}}"
    return f"{{{rep}, {name}}}"


def bit_slice(name: str, hi: int, lo: int, width: int) -> str:
    """``name[hi:lo]``, or just ``name`` when that is all of it."""
    if lo == 0 and hi == width - 1:
        return name
    return f"{name}[{hi}]" if hi == lo else f"{name}[{hi}:{lo}]"


def sext_slice(name: str, width: int, hi: int, lo: int) -> str:
    """Bits ``[hi:lo]`` of a signed ``width``-bit signal, reading its sign extension
    above the top (an arithmetic shift by more than the width leaves only sign bits)."""
    if hi < width:
        return bit_slice(name, hi, lo, width)
    sign = f"{name}[{width - 1}]"
    extra = hi - max(lo, width) + 1
    rep = sign if extra == 1 else f"{{{extra}{{{sign}}}}}"
    if lo >= width:
        return rep if extra > 1 else f"{{{sign}}}"
    return f"{{{rep}, {bit_slice(name, width - 1, lo, width)}}}"


def masked_operand(sig: Signal, mask: int | None, omax: int) -> tuple[str, int]:
    """Expression and width of ``x & mask`` as a concatenation of kept bits (readable,
    and constant zeros are visible to the reader as well as to synthesis)."""
    top = unsigned_width(omax)  # the kept bits live below this
    keep = [b for b in range(min(top, sig.width)) if mask is None or mask >> b & 1]
    sig.use(keep)
    if mask is None or keep == list(range(top)):
        return bit_slice(sig.name, top - 1, 0, sig.width), top
    parts, b = [], top - 1
    while b >= 0:
        if b in keep:
            lo = b
            while lo - 1 in keep:
                lo -= 1
            parts.append(bit_slice(sig.name, b, lo, sig.width))
            b = lo - 1
        else:
            lo = b
            while lo - 1 >= 0 and lo - 1 not in keep:
                lo -= 1
            parts.append(f"{b - lo + 1}'d0")
            b = lo - 1
    return "{" + ", ".join(parts) + "}", top


def product_expr(op: str, op_width: int, magnitude: int, width: int) -> str:
    """``op * magnitude`` in ``width`` bits, as CSD shifts and adds (or plain binary when
    that has no more terms, or when a CSD digit would fall off the top of the wire)."""
    digits = csd(magnitude)
    binary = [(k, 1) for k in range(magnitude.bit_length() - 1, -1, -1) if magnitude >> k & 1]
    if len(binary) <= len(digits) or digits[0][0] >= width:
        digits = binary
    x = zext(op, op_width, width)
    terms = []
    for k, d in digits:
        t = x if k == 0 else f"({x} << {k})"
        terms.append(("- " if d < 0 else "+ ") + t)
    text = " ".join(terms)
    return text[2:] if text.startswith("+ ") else text
