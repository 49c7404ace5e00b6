"""The module body as it is written: comment lines, wire declarations and primitive
instances, in order.

The emitter builds only logic that something reads, and every wire is read whole (by an
expression or by a primitive's port), so a declaration normally renders as one plain
line. Whether that held is only known once the whole circuit is written, so declarations
are kept as placeholders and :meth:`Body.render` checks each at the end: a wire with bits
nobody reads is an emitter bug (the generated RTL's only ``lint_off`` is the input port's),
raised there rather than hidden behind a pragma.
"""

from __future__ import annotations

from .text import Signal, bits_str, comment_lines, fit


class Body:
    def __init__(self) -> None:
        self._items: list[str | Signal] = []
        self._decls: dict[str, list[str]] = {}

    def line(self, text: str = "") -> None:
        """A line of its own (a comment is wrapped to the line limit)."""
        if text.startswith("//") and len("    " + text) > 119:
            self._items.extend(comment_lines(text[3:], "    // ", "    //    "))
        else:
            self._items.append(("    " + text) if text else "")

    def lines(self, texts: list[str]) -> None:
        """Lines written as they are (already indented and wrapped)."""
        self._items.extend(texts)

    def declare(self, sig: Signal, expr: str | None, comment: str = "", signed: bool = False) -> None:
        """``wire [signed] [w-1:0] name = expr;  // comment``; with ``expr`` None a net that
        a primitive drives."""
        sgn = "signed " if signed else ""
        text = f"wire {sgn}[{sig.width - 1}:0] {sig.name}"  # [0:0] too, so that x[0] is legal
        text += f" = {expr};" if expr is not None else ";"
        self._items.append(sig)
        self._decls[sig.name] = fit(text, comment)

    def render(self) -> list[str]:
        out = []
        for item in self._items:
            if not isinstance(item, Signal):
                out.append(item)
                continue
            unused = item.unused()
            if unused:
                raise AssertionError(f"emitter bug: bits {bits_str(unused)} of {item.name} are built but never read")
            out.extend(self._decls[item.name])
        return out


def instance(module: str, params: dict[str, int], name: str, ports: dict[str, str], comment: str = "") -> list[str]:
    """A primitive instance with named parameters and ports, on two lines."""
    plist = ", ".join(f".{k}({v})" for k, v in params.items())
    conns = ", ".join(f".{k}({v})" for k, v in ports.items())
    lines = [f"    {module} #({plist})"]
    lines += fit(f"{name} ({conns});", comment, indent="        ")
    return lines
