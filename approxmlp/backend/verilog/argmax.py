"""The argmax: a binary tree of ``>`` comparators with multiplexers, lower index on the
left so that a tie keeps it.

Each score carries its value range: a comparison that the ranges already decide is not
built, and the tree is planned before it is written, so that nothing is emitted that the
pruned tree would not read.
"""

from __future__ import annotations

from dataclasses import dataclass

from .body import Body
from .text import Signal, sext, zext


def class_width(n_classes: int) -> int:
    """Bits of the class-index output: ``ceil(log2(n_classes))``, at least 1."""
    return max(1, (n_classes - 1).bit_length())


@dataclass
class _Node:
    """A tree node: the value and index expressions it stands for and its value range;
    a leaf has ``sig``, an inner node ``kids`` and the ``name`` of its wires."""

    v: str
    i: str
    lo: int
    hi: int
    sig: Signal | None = None
    kids: tuple["_Node", "_Node"] | None = None
    name: str = ""


def _plan(scores: list[tuple[Signal, int, int]], signed: bool) -> tuple[_Node, list[str]]:
    """The pruned tree over ``(score, lo, hi)`` and notes on the comparisons left out."""
    k = class_width(len(scores))
    width = max(s.width for s, _, _ in scores)
    level = [_Node(v=(sext if signed else zext)(s.name, s.width, width), i=f"{k}'d{i}", lo=lo, hi=hi, sig=s)
             for i, (s, lo, hi) in enumerate(scores)]
    notes, depth = [], 0
    while len(level) > 1:
        depth += 1
        nxt = []
        for p in range(0, len(level) - 1, 2):
            a, b = level[p], level[p + 1]
            if b.hi <= a.lo:
                notes.append(f"class {b.i} never beats {a.i} (value ranges)")
                nxt.append(a)
            elif b.lo > a.hi:
                notes.append(f"class {b.i} always beats {a.i} (value ranges)")
                nxt.append(b)
            else:
                nm = f"am{depth}_{p // 2}"
                nxt.append(_Node(v=f"{nm}_v", i=f"{nm}_i", lo=max(a.lo, b.lo), hi=max(a.hi, b.hi), kids=(a, b), name=nm))
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0], notes


def emit_argmax(body: Body, scores: list[tuple[Signal, int, int]], signed: bool) -> str:
    """Write the tree over ``(score, lo, hi)``; returns the expression of the class index."""
    n = len(scores)
    k = class_width(n)
    width = max(s.width for s, _, _ in scores)
    root, notes = _plan(scores, signed)
    body.line(f"// ==== argmax over {n} classes: tree of comparators, a tie keeps the lower index")
    for note in notes:
        body.line(f"// pruned: {note}")
    sgn = "signed " if signed else ""
    rng = f"[{k - 1}:0] " if k > 1 else ""

    def build(node: _Node, need_value: bool) -> None:
        if node.kids is None:
            if need_value:
                node.sig.use(range(node.sig.width))
            return
        a, b = node.kids
        build(a, True)
        build(b, True)
        nm = node.name
        cmp = f"$signed({b.v}) > $signed({a.v})" if signed else f"{b.v} > {a.v}"
        body.line(f"wire {nm}_b = {cmp};  // right side wins only if strictly greater")
        if need_value:
            body.line(f"wire {sgn}[{width - 1}:0] {nm}_v = {nm}_b ? {b.v} : {a.v};")
        body.line(f"wire {rng}{nm}_i = {nm}_b ? {b.i} : {a.i};")

    build(root, False)
    return root.i
