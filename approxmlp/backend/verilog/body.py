"""The module body as it is written: comment lines and wire declarations, in order.

A declaration cannot know yet whether every bit of its wire will be read: that is only
known once the whole circuit is written. So declarations are kept as placeholders and
:meth:`Body.render` wraps, at the end, exactly those whose wires have unread bits in a
local, commented ``lint_off UNUSEDSIGNAL`` (bits a neuron drops on purpose).
"""

from __future__ import annotations

from .text import Signal, bits_str


class Body:
    def __init__(self) -> None:
        self._items: list[str | Signal] = []
        self._decls: dict[str, str] = {}

    def line(self, text: str = "") -> None:
        self._items.append(("    " + text) if text else "")

    def declare(self, sig: Signal, expr: str, comment: str = "", signed: bool = False) -> None:
        """``wire [signed] [w-1:0] name = expr;  // comment``."""
        sgn = "signed " if signed else ""
        text = f"wire {sgn}[{sig.width - 1}:0] {sig.name} = {expr};"  # [0:0] too, so that x[0] is legal
        if comment:
            text += f"  // {comment}"
        self._items.append(sig)
        self._decls[sig.name] = text

    def render(self) -> list[str]:
        out = []
        for item in self._items:
            if not isinstance(item, Signal):
                out.append(item)
                continue
            unused = item.unused()
            if unused:
                out.append(f"    /* verilator lint_off UNUSEDSIGNAL */  // bits {bits_str(unused)} never read")
                out.append("    " + self._decls[item.name])
                out.append("    /* verilator lint_on UNUSEDSIGNAL */")
            else:
                out.append("    " + self._decls[item.name])
        return out
