"""The argmax: a binary tree of ``>=`` comparators (``approxmlp_ge``) with multiplexers,
lower index on the left so that a tie keeps it.

Each score carries its value range: a comparison that the ranges already decide is not
built, and the tree is planned before anything is written (:func:`plan`), so that the
emitter builds only the scores the pruned tree reads (:func:`read_leaves`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...core import argmax
from .body import Body, instance
from .text import Signal, sext, zext


def class_width(n_classes: int) -> int:
    """Bits of the class-index output: ``ceil(log2(n_classes))``, at least 1."""
    return max(1, (n_classes - 1).bit_length())


@dataclass
class _Node:
    """A tree node: its class-index expression and value range; a leaf has the index
    ``leaf`` of its score, an inner node ``kids`` and the ``name`` of its wires."""

    i: str
    lo: int
    hi: int
    leaf: int = -1
    kids: tuple["_Node", "_Node"] | None = None
    name: str = ""


def plan(ranges: list[tuple[int, int]]) -> tuple[_Node, list[str]]:
    """The pruned tree over scores of value ranges ``(lo, hi)`` (:func:`approxmlp.core.argmax.plan`,
    the rule the cost model counts too) and notes on the comparisons left out."""
    k = class_width(len(ranges))
    tree = argmax.plan([(lo, hi) for lo, hi in ranges])

    def node(n: argmax.Node) -> _Node:
        if n.kids is None:
            return _Node(i=f"{k}'d{n.leaf}", lo=n.lo, hi=n.hi, leaf=n.leaf)
        nm = f"am{n.depth}_{n.slot}"
        return _Node(i=f"{nm}_i", lo=n.lo, hi=n.hi, kids=(node(n.kids[0]), node(n.kids[1])), name=nm)

    notes = [f"class {node(loser).i} never beats {node(winner).i} (value ranges)" if not always else
             f"class {node(winner).i} always beats {node(loser).i} (value ranges)"
             for winner, loser, always in tree.pruned]
    return node(tree.root), notes


def read_leaves(ranges: list[tuple[int, int]]) -> set[int]:
    """The scores some comparison of the pruned tree reads."""
    root, _ = plan(ranges)
    out: set[int] = set()

    def walk(node: _Node) -> None:
        for kid in node.kids or ():
            if kid.kids is None:
                out.add(kid.leaf)
            walk(kid)

    walk(root)
    return out


def emit_argmax(body: Body, scores: dict[int, Signal], ranges: list[tuple[int, int]], signed: bool) -> str:
    """Write the tree over the ``scores`` (by class; those it reads) of value ``ranges``;
    returns the expression of the class index."""
    n = len(ranges)
    k = class_width(n)
    root, notes = plan(ranges)
    width = max((s.width for s in scores.values()), default=1)
    body.line(f"// ==== argmax over {n} classes: tree of comparators, a tie keeps the lower index")
    for note in notes:
        body.line(f"// pruned: {note}")
    sgn = "signed " if signed else ""
    rng = f"[{k - 1}:0] " if k > 1 else ""

    def value(node: _Node) -> tuple[str, int]:
        """The node's value wire and its width."""
        if node.kids is None:
            sig = scores[node.leaf]
            sig.use(range(sig.width))
            return sig.name, sig.width
        return f"{node.name}_v", width

    def build(node: _Node, need_value: bool) -> None:
        if node.kids is None:
            return
        a, b = node.kids
        build(a, True)
        build(b, True)
        (av, aw), (bv, bw) = value(a), value(b)
        nm = node.name
        body.line(f"wire {nm}_ge;")
        body.lines(instance("approxmlp_ge", {"A_W": aw, "B_W": bw, "SIGNED": int(signed)}, f"u_{nm}",
                            {"a": av, "b": bv, "ge": f"{nm}_ge"}, "the left side wins a tie"))
        if need_value:
            ext = sext if signed else zext
            body.line(f"wire {sgn}[{width - 1}:0] {nm}_v = {nm}_ge ? {ext(av, aw, width)} : {ext(bv, bw, width)};")
        body.line(f"wire {rng}{nm}_i = {nm}_ge ? {a.i} : {b.i};")

    build(root, False)
    return root.i
