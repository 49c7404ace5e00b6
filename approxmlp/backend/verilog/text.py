"""Verilog text pieces: signals that remember which of their bits are read, and the
expressions the emitter builds from them (extensions, slices, masked operands, CSD
products), each exactly as wide as its context so that ``-Wall`` has nothing to say."""

from __future__ import annotations

import re
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


def mask_literal(mask: int, width: int) -> str:
    """A mask constant: binary up to 8 bits (each bit visible), hex above."""
    return f"{width}'b{mask:0{width}b}" if width <= 8 else f"{width}'h{mask:x}"


def operand_text(sig: Signal, mask: int | None, omax: int) -> tuple[str, int, range]:
    """Expression, width and read bits of ``x & mask`` below the operand's top bit
    (``unsigned_width(omax)``): ``x``, ``(x & 4'b1010)``, or a low slice of ``x`` when the
    mask clears its top bits. Reading the whole wire through a constant mask (rather than
    picking its kept bits) leaves no wire with bits nobody reads; synthesis removes the
    ``& 0`` bits just the same."""
    top = min(unsigned_width(omax), sig.width)  # the kept bits live below this
    low = (1 << top) - 1
    kept = low if mask is None else mask & low
    base = bit_slice(sig.name, top - 1, 0, sig.width)
    if kept == low:
        return base, top, range(top)
    return f"({base} & {mask_literal(kept, top)})", top, range(top)


def masked_operand(sig: Signal, mask: int | None, omax: int) -> tuple[str, int]:
    """:func:`operand_text`, marking the bits it reads."""
    text, width, bits = operand_text(sig, mask, omax)
    sig.use(bits)
    return text, width


def paren(expr: str) -> str:
    """``expr`` as one operand: in parentheses unless it already is one group."""
    if expr.startswith("(") and expr.endswith(")"):
        depth = 0
        for k, c in enumerate(expr):
            depth += c == "("
            depth -= c == ")"
            if depth == 0 and k < len(expr) - 1:
                break
        else:
            return expr
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\[[0-9:]+\])?", expr):
        return expr
    return f"({expr})"


#: Longest line the emitter writes.
LINE_LIMIT = 119


def split_top(expr: str, level: int = 0) -> list[str]:
    """``expr`` cut before each ``+``/``-`` inside ``level`` brackets: ``["a", "+ b", "- c"]``
    (the pieces only ever go on lines of their own, so any level keeps the code intact)."""
    parts, depth, start = [], 0, 0
    for k, c in enumerate(expr):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == level and c in "+-" and expr[k - 1:k] == " " and expr[k + 1:k + 2] == " ":
            parts.append(expr[start:k - 1])
            start = k
    parts.append(expr[start:])
    return parts


def fit(code: str, comment: str = "", indent: str = "    ") -> list[str]:
    """``code  // comment`` as lines of at most :data:`LINE_LIMIT` characters: the comment
    moves above when the line is too long, and a sum too long for one line puts one term
    on each line."""
    one = indent + code + (f"  // {comment}" if comment else "")
    if len(one) <= LINE_LIMIT:
        return [one]
    lines = comment_lines(comment, indent + "// ", indent + "//   ") if comment else []
    if len(indent + code) <= LINE_LIMIT:
        return lines + [indent + code]
    head, eq, rhs = code.partition(" = ")
    terms = split_top(rhs) if eq else [code]
    if eq and len(terms) == 1:  # a sum in brackets (a truncated product): cut inside them
        terms = split_top(rhs, 1)
    if not eq or len(terms) == 1:
        return lines + [indent + code]
    return lines + [indent + head + eq + terms[0]] + [indent + "    " + t for t in terms[1:]]


def comment_lines(text: str, first: str, rest: str) -> list[str]:
    """A comment wrapped at spaces to :data:`LINE_LIMIT` characters."""
    out, line = [], first
    for word in text.split(" "):
        if len(line) + len(word) + 1 > LINE_LIMIT and line.strip() not in (first.strip(), rest.strip()):
            out.append(line.rstrip())
            line = rest
        line += word + " "
    out.append(line.rstrip())
    return out


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
