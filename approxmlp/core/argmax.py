"""The argmax tree and its pruning: which comparisons the value ranges leave to build.

The classes' scores are compared in a binary tree, pairs of neighbours level by level
(lower index on the left, so that a tie keeps it; an odd one out goes up unchanged). A
comparison whose outcome the value ranges decide is not built: if the right score's
maximum is at most the left one's minimum, the left always wins (:func:`decide`); if the
right one's minimum exceeds the left one's maximum, the right always wins.

The emitter writes the tree this plans (:func:`plan`), and the cost model counts it, per
design (:func:`plan` too) and over whole populations at once (:func:`fold`, the same rule
on arrays): one rule for all three. (The cost model also counts a comparator whose result
a later decided comparison discards, :attr:`Plan.made`, which the RTL does not hold.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np


def decide(alo, ahi, blo, bhi):
    """``(a_wins, b_wins)``: whether the ranges decide the comparison of the left score
    ``[alo, ahi]`` with the right one ``[blo, bhi]`` for the left (``b > a`` never holds)
    or for the right (it always holds). Ints or numpy arrays, elementwise."""
    a_wins = bhi <= alo
    b_wins = blo > ahi
    if isinstance(a_wins, np.ndarray):
        return a_wins, ~a_wins & b_wins
    return a_wins, (not a_wins) and b_wins


@dataclass(frozen=True, eq=False)
class Node:
    """A node of the pruned tree: a leaf (``leaf``: its class) or a comparator over two
    ``kids``, named by its ``depth`` (1 at the leaves' parents) and ``slot`` in the level;
    ``lo``/``hi``: the range of the score it passes up."""

    lo: int
    hi: int
    leaf: int | None = None
    kids: tuple["Node", "Node"] | None = None
    depth: int = 0
    slot: int = 0

    @property
    def classes(self) -> frozenset[int]:
        """The classes below this node."""
        if self.kids is None:
            return frozenset((self.leaf,))
        return self.kids[0].classes | self.kids[1].classes


@dataclass(frozen=True, eq=False)
class Plan:
    """The pruned tree: its ``root``, the comparisons left out, each ``(winner, loser,
    always)`` (``always``: the right score always wins; else it never does), and every
    comparator the levels made (``made``, level by level), also those whose result a later
    level's decided comparison discards: the emitter writes only the tree below ``root``
    (:meth:`comparators`); the cost model counts ``made``, as it always has (synthesis
    removes the difference, which is at most a comparator or two)."""

    root: Node
    pruned: tuple[tuple[Node, Node, bool], ...]
    made: tuple[Node, ...] = ()

    def comparators(self) -> list[Node]:
        """The comparators built, children before parents."""
        out: list[Node] = []

        def walk(n: Node) -> None:
            if n.kids is not None:
                walk(n.kids[0])
                walk(n.kids[1])
                out.append(n)

        walk(self.root)
        return out

    @property
    def compared(self) -> frozenset[int]:
        """Classes whose score some comparator of :attr:`made` reads (a lone survivor is read
        by nobody)."""
        return frozenset().union(*(n.classes for n in self.made))


def plan(ranges: Sequence[tuple[int, int]]) -> Plan:
    """The pruned tree over the classes' score ranges ``(lo, hi)``."""
    level = [Node(lo=lo, hi=hi, leaf=j) for j, (lo, hi) in enumerate(ranges)]
    pruned, made, depth = [], [], 0
    while len(level) > 1:
        depth += 1
        nxt = []
        for p in range(0, len(level) - 1, 2):
            a, b = level[p], level[p + 1]
            a_wins, b_wins = decide(a.lo, a.hi, b.lo, b.hi)
            if a_wins:
                pruned.append((a, b, False))
                nxt.append(a)
            elif b_wins:
                pruned.append((b, a, True))
                nxt.append(b)
            else:
                made.append(Node(lo=max(a.lo, b.lo), hi=max(a.hi, b.hi), kids=(a, b), depth=depth, slot=p // 2))
                nxt.append(made[-1])
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return Plan(level[0], tuple(pruned), tuple(made))


Merge = Callable[[tuple, tuple, np.ndarray, tuple], tuple]


def fold(lo: np.ndarray, hi: np.ndarray, leaves: list[tuple], merge: Merge) -> tuple:
    """:func:`plan` for many designs at once, folded: ``lo``, ``hi`` ``(P, C)`` score ranges,
    ``leaves`` one tuple of ``(P,)`` arrays per class, the values each node passes up.
    ``merge(a, b, built, (lo, hi))`` gives a comparator's values from its kids' (``built``:
    ``(P,)``, where the comparison is built; ``lo``/``hi`` the kids' ranges); a decided
    comparison passes its winner's values up. Returns the root's values."""
    level = [((lo[:, j], hi[:, j]), leaves[j]) for j in range(lo.shape[1])]
    while len(level) > 1:
        nxt = []
        for p in range(0, len(level) - 1, 2):
            ((alo, ahi), a), ((blo, bhi), b) = level[p], level[p + 1]
            a_wins, b_wins = decide(alo, ahi, blo, bhi)
            built = ~a_wins & ~b_wins
            m = merge(a, b, built, (alo, ahi, blo, bhi))

            def pick(x, y, z):
                return np.where(a_wins, x, np.where(b_wins, y, z))

            nxt.append(((pick(alo, blo, np.maximum(alo, blo)), pick(ahi, bhi, np.maximum(ahi, bhi))),
                        tuple(pick(x, y, z) for x, y, z in zip(a, b, m))))
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0][1]
