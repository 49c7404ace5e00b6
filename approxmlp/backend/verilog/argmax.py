"""The argmax: a binary tree of ``>`` comparators with multiplexers, lower index on the
left so that a tie keeps it.

Each score carries its value range: a comparison that the ranges already decide is not
built, and the tree is planned before it is written, so that nothing is emitted that the
pruned tree would not read.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...core import argmax
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
    """The pruned tree over ``(score, lo, hi)`` (:func:`approxmlp.core.argmax.plan`, the rule
    the cost model counts too) and notes on the comparisons left out."""
    k = class_width(len(scores))
    width = max(s.width for s, _, _ in scores)
    tree = argmax.plan([(lo, hi) for _, lo, hi in scores])

    def node(n: argmax.Node) -> _Node:
        if n.kids is None:
            s = scores[n.leaf][0]
            return _Node(v=(sext if signed else zext)(s.name, s.width, width), i=f"{k}'d{n.leaf}", lo=n.lo, hi=n.hi,
                         sig=s)
        nm = f"am{n.depth}_{n.slot}"
        return _Node(v=f"{nm}_v", i=f"{nm}_i", lo=n.lo, hi=n.hi, kids=(node(n.kids[0]), node(n.kids[1])), name=nm)

    notes = [f"class {node(loser).i} never beats {node(winner).i} (value ranges)" if not always else
             f"class {node(winner).i} always beats {node(loser).i} (value ranges)"
             for winner, loser, always in tree.pruned]
    return node(tree.root), notes


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
