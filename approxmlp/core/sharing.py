"""Shared subexpressions of a layer's constant multiplications (constant-matrix-vector
multiplication, CMVM).

A neuron's sum ``sum_i w_i * x_i`` is, digit by digit of each weight (canonical signed
digits, :mod:`.csd`), a sum of shifted operands ``+-(x_i << k)``. Neurons of one layer read
the same operands, so the same pair of digits often appears in several of them, at
different shifts: ``x3 + (x7 << 2)`` inside ``5*x3 + 20*x7`` and ``3*x3 + 12*x7`` alike.
:func:`share_layer` finds such pairs greedily (the most frequent pair first, the classic
two-term common-subexpression elimination of Hartley 1996, as da4ml does for FPGA layers)
and builds each once, as a *shared term* ``s = a + (b << shift)`` that the neurons then add
as one summand; terms nest, so a shared term may pair again with an operand or another term.

Digits of opposite signs pair too: ``x8 - x9`` is built as ``x8 + ~x9`` (``~x9 = 15 - x9``
for a 4-bit operand), an unsigned wire whose constant excess (the term's ``offset``) the
neurons that read it take off their bias. Approximations are respected: a masked operand
(``x & mask``) is an operand of its own, and a truncated product (its low bits cleared
*after* multiplying) is one summand that takes part in no sharing. Every summand is
unsigned and keeps its sign: the neuron adds its ``+`` summands and its ``-`` summands
apart and subtracts once, as before, and every width is the sum of its parts' bounds.

A pair is only worth building when its parts overlap in bit columns (``shift`` below the
width of the low part): ``x1 + (x2 << 4)`` of two 4-bit operands is a concatenation, which
costs nothing shared or not.

Pure and deterministic: the same layer gives the same terms, in the same order, every time;
the emitter and the cost model read the same plan.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Sequence

from .csd import csd
from .ir import unsigned_width
from .ranges import NeuronRange, ProductRange

#: The mask :mod:`.ranges` reports for a product that keeps every operand bit.
ALL_BITS = (1 << 62) - 1


@dataclass(frozen=True, order=True)
class Ref:
    """What a summand reads: ``kind`` ``"x"`` (operand ``index`` through ``mask``), ``"s"``
    (shared term ``index`` of the layer) or ``"p"`` (the truncated product of connection
    ``index``, which only its neuron reads)."""

    kind: str
    index: int
    mask: int = ALL_BITS


@dataclass(frozen=True)
class Summand:
    """``sign * (ref << shift)`` in a neuron's sum."""

    ref: Ref
    shift: int
    sign: int  # +1 or -1


@dataclass(frozen=True)
class SharedTerm:
    """``a + (b << shift)``, or with ``negate`` ``a + (~b << shift)`` (``~b`` over ``b``'s
    own width: ``2**w - 1 - b``, so a difference of digits stays an unsigned wire); ``bound``
    is its largest value, ``offset`` what its wire lacks of the value it stands for
    (``a - (b << shift)`` = wire + offset; the neurons add the offsets to their constants)."""

    a: Ref
    b: Ref
    shift: int
    bound: int
    users: tuple[int, ...]  # the neurons that add it (directly or through another term)
    negate: bool = False
    offset: int = 0

    @property
    def width(self) -> int:
        return unsigned_width(self.bound)


@dataclass(frozen=True)
class LayerPlan:
    """The shared terms of a layer (in build order: a term reads only earlier ones) and
    each neuron's summands."""

    terms: tuple[SharedTerm, ...]
    summands: tuple[tuple[Summand, ...], ...]
    products: tuple[dict[int, ProductRange], ...]  # per neuron: its truncated products by input

    def bound(self, ref: Ref, operand_max: dict[tuple[int, int], int]) -> int:
        if ref.kind == "s":
            return self.terms[ref.index].bound
        if ref.kind == "x":
            return operand_max[(ref.index, ref.mask)]
        raise ValueError("a product's bound is its neuron's")

    @property
    def additions(self) -> int:
        """Two-operand additions the layer's sums take: each neuron's summands but one, and
        one per shared term."""
        return sum(max(0, len(s) - 1) for s in self.summands) + len(self.terms)

    def offset(self, j: int) -> int:
        """What neuron ``j`` adds to its constant for the offsets of the terms it reads."""
        return sum(s.sign * (self.terms[s.ref.index].offset << s.shift) for s in self.summands[j] if s.ref.kind == "s")


def digits(magnitude: int) -> list[tuple[int, int]]:
    """The digits a constant multiplier adds, ``[(shift, +1|-1), ...]``: plain binary when
    it has no more digits than CSD (no subtraction then), else CSD."""
    d = csd(magnitude)
    binary = [(k, 1) for k in range(magnitude.bit_length() - 1, -1, -1) if magnitude >> k & 1]
    return binary if len(binary) <= len(d) else d


def operand_bounds(neurons: Sequence[NeuronRange]) -> dict[tuple[int, int], int]:
    """Largest value of each (input, mask) operand the layer reads, over every value of
    the bits the code reads (``unsigned_width(operand_max)`` low bits, through the mask):
    the range analysis' bound rounded up to the wire. A sum sized from it cannot overflow
    whatever its operand wires hold, which is what :mod:`approxmlp.backend.sum_proof`
    checks; sized from a hidden neuron's tighter bound it might, for values the neuron
    never outputs, and the proof could not tell."""
    out: dict[tuple[int, int], int] = {}
    for r in neurons:
        for p in r.pos + r.neg:
            out[(p.index, p.mask)] = wire_bound(p)
    return out


def wire_bound(p: ProductRange) -> int:
    """The largest value of connection ``p``'s operand over every value of the bits the
    code reads (see :func:`operand_bounds`)."""
    return ((1 << unsigned_width(p.operand_max)) - 1) & p.mask


def product_bound(p: ProductRange) -> int:
    """The largest magnitude of a truncated product over every value of the bits it reads."""
    return ((abs(p.weight) * wire_bound(p)) >> p.trunc) << p.trunc


def share_layer(neurons: Sequence[NeuronRange], *, share: bool = True) -> LayerPlan:
    """The summands of every neuron of a layer, with the pairs that occur at least twice
    built once as shared terms (``share=False``: none, every product on its own)."""
    bounds = operand_bounds(neurons)
    products: list[dict[int, ProductRange]] = []
    sums: list[dict[int, tuple[Ref, int, int]]] = []  # per neuron: id -> (ref, shift, sign)
    next_id = 0
    for r in neurons:
        mine, prods = {}, {}
        for p in sorted(r.pos + r.neg, key=lambda p: p.index):
            sign = 1 if p.weight > 0 else -1
            if p.trunc:
                prods[p.index] = p
                mine[next_id] = (Ref("p", p.index), 0, sign)
                next_id += 1
                continue
            for k, d in digits(abs(p.weight)):
                mine[next_id] = (Ref("x", p.index, p.mask), k, sign * d)
                next_id += 1
        sums.append(mine)
        products.append(prods)

    terms: list[SharedTerm] = []
    if share:
        terms = _eliminate(sums, bounds, next_id)
    summands = tuple(tuple(Summand(ref, k, s) for ref, k, s in sorted(m.values(), key=_order)) for m in sums)
    users = _users(terms, summands)
    terms = [replace(t, users=users[k]) for k, t in enumerate(terms)]
    return LayerPlan(terms=tuple(terms), summands=summands, products=tuple(products))


def _order(t: tuple[Ref, int, int]) -> tuple:
    ref, k, s = t
    return (-s, {"x": 0, "s": 1, "p": 0}[ref.kind] if ref.kind != "p" else 0, ref.index, k, ref.mask)


def _width(ref: Ref, bounds: dict[tuple[int, int], int], terms: list[SharedTerm]) -> int:
    return terms[ref.index].width if ref.kind == "s" else unsigned_width(bounds[(ref.index, ref.mask)])


def _pattern(t1: tuple[Ref, int, int], t2: tuple[Ref, int, int], bounds, terms) -> tuple | None:
    """The shared term two summands of one neuron would form: ``(a, b, shift, negate)`` with
    ``a`` the lower one and ``negate`` when their signs differ, or None when they cannot
    share (a product) or would gain nothing (no overlapping bit column)."""
    (r1, k1, s1), (r2, k2, s2) = t1, t2
    if r1.kind == "p" or r2.kind == "p":
        return None
    if (k2, r2) < (k1, r1):
        r1, k1, r2, k2 = r2, k2, r1, k1
    d = k2 - k1
    if d >= _width(r1, bounds, terms):
        return None
    return (r1, r2, d, s1 != s2)


def _eliminate(sums: list[dict[int, tuple[Ref, int, int]]], bounds, next_id: int) -> list[SharedTerm]:
    """Greedy pair elimination over every neuron's summands (modified in place): count every
    pattern's occurrences, build the most frequent (ties: the narrowest shift, a sum before
    a difference, then the first in a fixed order), replace its occurrences, update the counts of the pairs that
    changed, repeat while a pattern occurs twice."""
    terms: list[SharedTerm] = []
    heap: list = []
    count: dict[tuple, int] = defaultdict(int)
    where: dict[tuple, set[int]] = defaultdict(set)  # pattern -> neurons holding it (maybe stale)

    def pairs_of(n: int, tid: int, sign: int) -> None:
        me = sums[n][tid]
        for oid, other in sums[n].items():
            if oid == tid:
                continue
            pat = _pattern(me, other, bounds, terms)
            if pat is not None:
                count[pat] += sign
                if sign > 0:
                    where[pat].add(n)
                    if count[pat] >= 2:
                        heapq.heappush(heap, (-count[pat], pat[2], pat[3], pat))

    for n, m in enumerate(sums):
        ids = sorted(m)
        for x, a in enumerate(ids):
            for b in ids[x + 1:]:
                pat = _pattern(m[a], m[b], bounds, terms)
                if pat is not None:
                    count[pat] += 1
                    where[pat].add(n)
    heap[:] = [(-c, pat[2], pat[3], pat) for pat, c in count.items() if c >= 2]
    heapq.heapify(heap)
    while heap:
        negc, _, _, pat = heapq.heappop(heap)
        c = count.get(pat, 0)
        if c != -negc:  # stale: a pair of it was used up since (a rise pushed a fresh entry)
            if 2 <= c < -negc:
                heapq.heappush(heap, (-c, pat[2], pat[3], pat))
            continue
        a, b, d, neg = pat
        ref = Ref("s", len(terms))
        ob = _offset(b, terms)
        if neg:  # a - (b << d) = a + (~b << d) - ((2**w - 1) << d)
            wb = (1 << _width(b, bounds, terms)) - 1
            bound = _bound(a, bounds, terms) + (wb << d)
            offset = _offset(a, terms) - (ob << d) - (wb << d)
        else:
            bound = _bound(a, bounds, terms) + (_bound(b, bounds, terms) << d)
            offset = _offset(a, terms) + (ob << d)
        terms.append(SharedTerm(a, b, d, bound, (), negate=neg, offset=offset))
        for n in sorted(where[pat]):
            m = sums[n]
            at = defaultdict(list)
            for tid, (r, k, s) in m.items():
                at[(r, k, s)].append(tid)
            for tid in sorted(m):
                if tid not in m:
                    continue
                r, k, s = m[tid]
                if r != a:
                    continue
                partners = [o for o in at.get((b, k + d, -s if neg else s), ()) if o in m and o != tid]
                if not partners:
                    continue
                other = partners[0]
                pairs_of(n, tid, -1)
                del m[tid]
                pairs_of(n, other, -1)
                del m[other]
                m[next_id] = (ref, k, s)
                pairs_of(n, next_id, +1)
                next_id += 1
        count.pop(pat, None)
    return terms


def _offset(ref: Ref, terms: list[SharedTerm]) -> int:
    return terms[ref.index].offset if ref.kind == "s" else 0


def _bound(ref: Ref, bounds, terms: list[SharedTerm]) -> int:
    return terms[ref.index].bound if ref.kind == "s" else bounds[(ref.index, ref.mask)]


def _users(terms: list[SharedTerm], summands) -> list[tuple[int, ...]]:
    """Which neurons read each term, directly or through a term built on it."""
    direct: list[set[int]] = [set() for _ in terms]
    for j, ss in enumerate(summands):
        for s in ss:
            if s.ref.kind == "s":
                direct[s.ref.index].add(j)
    for k in range(len(terms) - 1, -1, -1):
        for part in (terms[k].a, terms[k].b):
            if part.kind == "s":
                direct[part.index] |= direct[k]
    return [tuple(sorted(u)) for u in direct]
