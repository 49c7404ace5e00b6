"""A layer's shared terms (:mod:`approxmlp.core.sharing`) as named wires, and the text of
the summands its neurons add.

A shared term is written once, before the layer's neurons, as ``a + (b << k)`` with a
comment giving its value over the operands and the neurons that read it; a neuron's sums
then name it like an operand: ``(s0_3 << 2)``.
"""

from __future__ import annotations

from ...core.sharing import ALL_BITS, LayerPlan, Ref, Summand, product_bound
from .body import Body
from .text import Signal, masked_operand, operand_text, paren, zext
from ...core.ir import unsigned_width


class LayerTerms:
    """The wires of one layer's plan: its operands (the previous layer's outputs or the
    input features, ``None`` where not built) and, once :meth:`emit` ran, its shared terms.
    ``neurons`` maps a plan row to the neuron index it stands for."""

    def __init__(self, li: int, plan: LayerPlan, operands: list[Signal | None], neurons: list[int],
                 bounds: dict[tuple[int, int], int]) -> None:
        self.li, self.plan, self.operands, self.neurons, self.bounds = li, plan, operands, neurons, bounds
        self.terms: list[Signal] = []

    def bound(self, ref: Ref) -> int:
        return self.plan.bound(ref, self.bounds)

    def text(self, ref: Ref, width: int) -> str:
        """``ref`` zero-extended to ``width`` bits, marking the bits it reads."""
        if ref.kind == "s":
            sig = self.terms[ref.index]
            sig.use(range(sig.width))
            return zext(sig.name, sig.width, width)
        op = self.operands[ref.index]
        assert op is not None, f"operand {ref.index} of layer {self.li} is read but not built"
        expr, w = masked_operand(op, None if ref.mask == ALL_BITS else ref.mask, self.bounds[(ref.index, ref.mask)])
        return zext(expr, w, width)

    def value(self, ref: Ref) -> str:
        """``ref`` as a sum over the operands, for comments: ``x3 + 4*(x7 & 4'b1100)``."""
        parts: dict[str, int] = {}
        const = [0]

        def walk(r: Ref, scale: int) -> None:
            if r.kind == "s":
                t = self.plan.terms[r.index]
                walk(t.a, scale)
                if t.negate:  # ~b = 2**w - 1 - b
                    const[0] += (((1 << self._width(t.b)) - 1) << t.shift) * scale
                    walk(t.b, -(scale << t.shift))
                else:
                    walk(t.b, scale << t.shift)
                return
            op = self.operands[r.index]
            assert op is not None
            text = operand_text(Signal(op.name, op.width), None if r.mask == ALL_BITS else r.mask,
                                self.bounds[(r.index, r.mask)])[0]
            parts[text] = parts.get(text, 0) + scale

        walk(ref, 1)
        text = ""
        for t, c in parts.items():
            if c:
                mag = t if abs(c) == 1 else f"{abs(c)}*{t}"
                text += (" - " if c < 0 else " + ") + mag if text else ("-" if c < 0 else "") + mag
        return text + (f" + {const[0]}" if const[0] else "")

    def _width(self, ref: Ref) -> int:
        return self.plan.terms[ref.index].width if ref.kind == "s" else unsigned_width(self.bounds[(ref.index, ref.mask)])

    def emit(self, body: Body) -> None:
        """The shared terms, in build order."""
        if not self.plan.terms:
            return
        body.line()
        body.line(f"// shared terms of layer[{self.li}]: each built once, added by the neurons named")
        for k, t in enumerate(self.plan.terms):
            sig = Signal(f"s{self.li}_{k}", t.width)
            a = self.text(t.a, sig.width)
            if t.negate:  # ~b over b's own width, then extended
                wb = self._width(t.b)
                b = zext(f"~{paren(self.text(t.b, wb))}", wb, sig.width)
            else:
                b = self.text(t.b, sig.width)
            expr = f"{a} + ({b} << {t.shift})" if t.shift else f"{a} + {b}"
            users = ", ".join(f"n{self.neurons[u]}" for u in t.users)
            body.declare(sig, expr, f"= {self.value(Ref('s', k))}; read by {users}")
            self.terms.append(sig)

    def summand(self, s: Summand, width: int, product: Signal | None = None) -> str:
        """One summand of a neuron's sum, in ``width`` bits."""
        if s.ref.kind == "p":
            assert product is not None
            product.use(range(product.width))
            return zext(product.name, product.width, width)
        t = self.text(s.ref, width)
        return f"({t} << {s.shift})" if s.shift else t

    def summand_bound(self, s: Summand, j: int) -> int:
        if s.ref.kind == "p":
            return product_bound(self.plan.products[j][s.ref.index])
        return self.bound(s.ref) << s.shift
