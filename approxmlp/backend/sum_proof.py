"""Word-level proof of a design's sums: each accumulator of the RTL equals its neuron's
affine function of the layer's operands, for every value of the operand wires.

Why algebra and not SAT. A SAT solver, even after ABC's sweeping, does not see that two
differently associated adder trees add the same numbers: with the products of a layer
shared across its neurons (:mod:`approxmlp.core.sharing`) the emitted sums have no
internal point in common with the reference's, and the exact Cardio 21-3-3 network was
not proven within 600 s (3.3 s without sharing). But everything the emitter builds below
an accumulator is linear: shifted operands, masks, additions, subtractions and the
truncation of a product's low bits. So:

1. Yosys reads the RTL (``proc``, ``flatten``): word-level ``$add``/``$sub``/``$neg``
   cells, shifts and extensions as wiring, masks as ``$and`` with a constant.
2. :func:`prove_sums` walks each accumulator back to the operand wires (the input bus
   for the first layer, the previous layer's outputs ``l<k>_n<i>`` after it) and writes
   its value as an integer linear form over the operand *bits*, with a truncation
   ``floor(V / 2**t) * 2**t`` as an atom of its own. On the way it checks that no cell can
   overflow: the form's interval, over all bit values, must fit the cell's width as the
   reader reads it (so the modular arithmetic of the wires is the integer arithmetic of
   the forms). Anything else on the path (a multiplexer, a comparison) and the sum is
   not proven this way.
3. The form is compared, coefficient by coefficient, with the IR's own affine function of
   the same bits (``bias + sum sign(w) * trunc(|w| * (operand & mask))``). Equal forms are
   equal functions; the accumulator wire keeps the value modulo its width, as the
   replacement does.

Then :func:`substitute` redefines each proven accumulator, in a copy of the RTL, by that
affine function in plain arithmetic (``*`` and masks, as the reference writes it), and
the miter of :mod:`.formal` proves the copy equal to the reference: the rest of the
circuit (activations, rescales, the argmax) is checked there, and its products line up
with the reference's, so ABC's sweeping works as it did before sharing. The copy computes
the same function as the RTL, since each replaced wire equals its replacement for every
value of its operand wires, whatever drives them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..core.ir import MLP
from .tools import run_yosys

#: A variable of the forms: an operand bit (``("b", net)``) or a truncation atom
#: (``("t", t, form-key)``).
Key = tuple


class NotLinear(Exception):
    """The accumulator's cone holds something this proof does not model."""


@dataclass(frozen=True)
class Form:
    """``const + sum(coeff * key)``; ``lo``/``hi`` bound its value over every key value."""

    coeffs: tuple[tuple[Key, int], ...]
    const: int
    lo: int
    hi: int

    @property
    def key(self) -> tuple:
        return (self.coeffs, self.const)


def _form(coeffs: dict[Key, int], const: int, ranges: dict[Key, tuple[int, int]]) -> Form:
    items = tuple(sorted(((k, c) for k, c in coeffs.items() if c), key=repr))
    lo = hi = const
    for k, c in items:
        a, b = ranges[k]
        lo += min(c * a, c * b)
        hi += max(c * a, c * b)
    return Form(items, const, lo, hi)


class _Netlist:
    """The RTL as Yosys' JSON holds it after ``proc; flatten``: who drives each bit."""

    def __init__(self, module: dict) -> None:
        self.cells = module["cells"]
        self.nets = {name: n["bits"] for name, n in module["netnames"].items()}
        self.driver: dict[int, tuple[str, int]] = {}
        for name, cell in self.cells.items():
            for port, direction in cell.get("port_directions", {}).items():
                if direction == "output":
                    for k, bit in enumerate(cell["connections"][port]):
                        if isinstance(bit, int):
                            self.driver[bit] = (name, k)
        self.ranges: dict[Key, tuple[int, int]] = {}
        self._values: dict[str, Form] = {}
        self.stop: set[int] = set()

    def set_operands(self, bits: set[int]) -> None:
        """The bits where a layer's sums stop (its operands): values are atoms there, so
        the values worked out for another layer, with other atoms, are forgotten."""
        self.stop = set(bits)
        self._values = {}

    def resolve(self, bit) -> tuple:
        """A bit as ``("c", 0|1)``, ``("v", net)`` (an operand bit) or ``("y", cell, k)``,
        through ``$and`` with a constant (a mask) and ``$pos``."""
        while True:
            if isinstance(bit, str):
                if bit not in ("0", "1"):
                    raise NotLinear(f"an undefined bit ({bit})")
                return ("c", int(bit))
            if bit in self.stop:
                return ("v", bit)
            if bit not in self.driver:
                raise NotLinear("a bit driven by no cell")
            name, k = self.driver[bit]
            cell = self.cells[name]
            kind, conn = cell["type"], cell["connections"]
            if kind == "$pos" and not int(cell["parameters"]["A_SIGNED"], 2):
                a = conn["A"]
                bit = a[k] if k < len(a) else "0"
                continue
            if kind == "$and":
                a, b = conn["A"], conn["B"]
                par = cell["parameters"]
                ab = a[k] if k < len(a) else (a[-1] if int(par["A_SIGNED"], 2) else "0")
                bb = b[k] if k < len(b) else (b[-1] if int(par["B_SIGNED"], 2) else "0")
                if bb in ("0", "1"):
                    bit = "0" if bb == "0" else ab
                    continue
                if ab in ("0", "1"):
                    bit = "0" if ab == "0" else bb
                    continue
                raise NotLinear("an $and of two signals")
            return ("y", name, k)

    def vector(self, bits: list, signed: bool) -> Form:
        """The integer a bit vector holds, read ``signed`` or not, as a form; raises
        :class:`NotLinear` unless it is provably that integer."""
        res = [self.resolve(b) for b in bits]
        n = len(res)
        ys = [p for p, r in enumerate(res) if r[0] == "y"]
        if not ys:
            coeffs: dict[Key, int] = {}
            const = 0
            for p, r in enumerate(res):
                weight = -(1 << p) if signed and p == n - 1 else 1 << p
                if r[0] == "c":
                    const += weight * r[1]
                else:
                    key = ("b", r[1])
                    self.ranges[key] = (0, 1)
                    coeffs[key] = coeffs.get(key, 0) + weight
            return _form(coeffs, const, self.ranges)
        cell = res[ys[0]][1]
        p0, p1 = ys[0], ys[-1]
        k0 = res[p0][2]
        offset = p0 - k0
        for p in range(p0, p1 + 1):
            if res[p] != ("y", cell, p - offset):
                raise NotLinear("a vector mixing a cell's bits with others")
        if any(res[p] != ("c", 0) for p in range(p0)):
            raise NotLinear("low bits that are not zero below a cell's bits")
        k1 = p1 - offset
        high = res[p1 + 1:]
        v = self.value(cell)
        sign_ext = all(r == ("y", cell, k1) for r in high)
        if signed and (sign_ext or not high):
            if not -(1 << k1) <= v.lo <= v.hi < (1 << k1):
                raise NotLinear(f"{cell} may overflow its {k1 + 1} signed bits")
        elif all(r == ("c", 0) for r in high):
            if not 0 <= v.lo <= v.hi < (1 << (k1 + 1)):
                raise NotLinear(f"{cell} may overflow its {k1 + 1} bits")
        else:
            raise NotLinear("bits above a cell's that are not an extension")
        base = v if k0 == 0 else self.truncate(v, k0)
        return self.scale(base, 1 << offset) if offset else base

    def truncate(self, v: Form, t: int) -> Form:
        key = ("t", t, v.key)
        self.ranges[key] = ((v.lo >> t) << t, (v.hi >> t) << t)
        return _form({key: 1}, 0, self.ranges)

    def scale(self, v: Form, c: int) -> Form:
        return _form({k: c * x for k, x in v.coeffs}, c * v.const, self.ranges)

    def add(self, a: Form, b: Form, sign: int = 1) -> Form:
        coeffs = dict(a.coeffs)
        for k, x in b.coeffs:
            coeffs[k] = coeffs.get(k, 0) + sign * x
        return _form(coeffs, a.const + sign * b.const, self.ranges)

    def value(self, name: str) -> Form:
        """The exact integer an arithmetic cell computes (before its width wraps it)."""
        if name in self._values:
            return self._values[name]
        cell = self.cells[name]
        kind, conn, par = cell["type"], cell["connections"], cell["parameters"]
        if kind in ("$add", "$sub"):
            a = self.vector(conn["A"], bool(int(par["A_SIGNED"], 2)))
            b = self.vector(conn["B"], bool(int(par["B_SIGNED"], 2)))
            v = self.add(a, b, 1 if kind == "$add" else -1)
        elif kind == "$mul":
            a = self.vector(conn["A"], bool(int(par["A_SIGNED"], 2)))
            b = self.vector(conn["B"], bool(int(par["B_SIGNED"], 2)))
            if not b.coeffs:
                v = self.scale(a, b.const)
            elif not a.coeffs:
                v = self.scale(b, a.const)
            else:
                raise NotLinear("a product of two signals")
        elif kind == "$not":  # ~a over the cell's width, a zero-extended: 2**w - 1 - a
            if int(par["A_SIGNED"], 2):
                raise NotLinear("a signed $not")
            v = self.add(_form({}, (1 << int(par["Y_WIDTH"], 2)) - 1, self.ranges),
                         self.vector(conn["A"], False), -1)
        elif kind == "$neg":
            v = self.scale(self.vector(conn["A"], bool(int(par["A_SIGNED"], 2))), -1)
        else:
            raise NotLinear(f"a {kind} cell")
        self._values[name] = v
        return v


@dataclass(frozen=True)
class SumResult:
    """Per accumulator wire: ``proven`` or why not."""

    proven: dict[str, int]       # accumulator name -> its width
    failed: dict[str, str]       # accumulator name -> the reason

    @property
    def all_proven(self) -> bool:
        return not self.failed


def _operand_bits(net: _Netlist, mlp: MLP, li: int, i: int) -> list:
    """The bits of operand ``i`` of layer ``li`` as the RTL holds them."""
    if li == 0:
        b = mlp.input_bits
        return net.nets["inp"][b * i:b * (i + 1)]
    name = f"l{li - 1}_n{i}"
    if name not in net.nets:
        raise NotLinear(f"operand wire {name} is not in the RTL")
    return net.nets[name]


def _expected(net: _Netlist, mlp: MLP, li: int, j: int) -> Form:
    """The IR's affine function of neuron ``j`` over the RTL's operand bits."""
    layer = mlp.layers[li]
    a = layer.approx[j]
    total = _form({}, layer.biases[j], net.ranges)
    for i, w in enumerate(layer.weights[j]):
        mask = a.input_masks[i] if a.input_masks is not None else -1
        if w == 0 or mask == 0:
            continue
        bits = _operand_bits(net, mlp, li, i)
        masked = [b if mask >> k & 1 else "0" for k, b in enumerate(bits)]
        prod = net.scale(net.vector(masked, False), abs(w))
        if a.product_trunc:
            prod = net.truncate(prod, a.product_trunc)
        total = net.add(total, prod, 1 if w > 0 else -1)
    return total


def prove_sums(mlp: MLP, rtl: Path, module: str, workdir: Path, timeout: float) -> SumResult:
    """Prove every accumulator ``l<k>_n<j>_acc`` of the RTL (the bundled file ``rtl``,
    primitives included) equal to its neuron's affine function (module docstring)."""
    script = "\n".join([f"read_verilog -sv {rtl.name}", f"hierarchy -top {module}", "proc",
                        "flatten -noscopeinfo", "opt_clean", "write_json sums.json"])
    (workdir / "sums.ys").write_text(script + "\n")
    run_yosys(workdir / "sums.ys", workdir, workdir / "sums.log", timeout)
    net = _Netlist(json.loads((workdir / "sums.json").read_text())["modules"][module])
    proven, failed = {}, {}
    for li, layer in enumerate(mlp.layers):
        stop: set[int] = set()
        for i in range(layer.n_in):
            try:
                stop |= {b for b in _operand_bits(net, mlp, li, i) if isinstance(b, int)}
            except NotLinear:
                pass
        net.set_operands(stop)
        for j in range(layer.n_out):
            name = f"l{li}_n{j}_acc"
            if name not in net.nets:
                continue  # a constant or unread neuron: no sum (the miter checks the constant)
            bits = net.nets[name]
            try:
                got = _wire_value(net, bits)
                want = _expected(net, mlp, li, j)
            except NotLinear as exc:
                failed[name] = str(exc)
                continue
            width = len(bits)
            if _reduced(got, width) != _reduced(want, width):
                failed[name] = "its sum differs from the neuron's"
            else:
                proven[name] = width
    return SumResult(proven, failed)


def _wire_value(net: _Netlist, bits: list) -> Form:
    """The value whose low ``len(bits)`` bits an accumulator wire holds: its cell's exact
    value (no fit required: the wire and its replacement both keep it modulo the width)."""
    res = [net.resolve(b) for b in bits]
    if res and all(r[0] == "y" and r[1] == res[0][1] and r[2] == k for k, r in enumerate(res)):
        return net.value(res[0][1])
    return net.vector(bits, True)


def _reduced(f: Form, width: int) -> tuple:
    """A form's coefficients and constant modulo ``2**width`` (the wire keeps that much)."""
    m = (1 << width) - 1
    return (tuple((k, c & m) for k, c in f.coeffs if c & m), f.const & m)


def affine_lines(mlp: MLP, li: int, j: int, name: str, width: int, operands: dict[int, tuple[str, int]]) -> list[str]:
    """Neuron ``j``'s affine function as the reference circuit writes it (its layer width,
    ``*`` on masked operands, a truncation as two shifts, positive and negative terms
    apart, in index order), its low ``width`` bits driving ``name``. ``operands``: the
    RTL's operand wires by index, as (text, width)."""
    from .verilog.reference import layer_width

    layer = mlp.layers[li]
    a = layer.approx[j]
    W = max(layer_width(mlp, li), width)  # the accumulator may be wider (a constant the range does not reach)
    sw = f"wire signed [{W - 1}:0]"
    out, pos, neg = [], [], []
    for i, wt in enumerate(layer.weights[j]):
        mask = a.input_masks[i] if a.input_masks is not None else (1 << W) - 1
        if wt == 0 or mask == 0:
            continue
        text, w = operands[i]
        if w >= W:
            raise ValueError("an operand as wide as the reference's layer")
        t = a.product_trunc
        out.append(f"    {sw} {name}__in{i} = $signed({{{W - w}'d0, {text}}});")
        out.append(f"    {sw} {name}__m{i} = ((({name}__in{i} & {W}'sh{mask & ((1 << W) - 1):x}) * "
                   f"{W}'sd{abs(wt)}) >>> {t}) <<< {t};")
        (neg if wt < 0 else pos).append(f"{name}__m{i}")
    bias = layer.biases[j]
    b = f"-{W}'sd{-bias}" if bias < 0 else f"{W}'sd{bias}"
    out.append(f"    {sw} {name}__pos = {' + '.join(pos) or f'{W}' + chr(39) + 'sd0'};")
    out.append(f"    {sw} {name}__neg = {' + '.join(neg) or f'{W}' + chr(39) + 'sd0'};")
    out.append(f"    {sw} {name}__sum = {name}__pos - {name}__neg + {b};")
    return out


def substitute(text: str, mlp: MLP, proven: dict[str, int], nets: dict[str, list]) -> str | None:
    """The RTL text with every proven accumulator redefined by its affine function as the
    reference writes it (:func:`affine_lines`); None if a declaration is not found exactly
    once or an operand cannot be written."""
    b = mlp.input_bits
    for name, width in proven.items():
        li, j = (int(v) for v in re.fullmatch(r"l(\d+)_n(\d+)_acc", name).groups())
        pat = re.compile(rf"(wire\s+signed\s+\[{width - 1}:0\]\s+{name})\s*=[^;]*;", re.S)
        if len(pat.findall(text)) != 1:
            return None
        ops = {}
        for i in range(mlp.layers[li].n_in):
            if li == 0:
                ops[i] = (f"inp[{b * i + b - 1}:{b * i}]", b)
            elif f"l{li - 1}_n{i}" in nets:
                ops[i] = (f"l{li - 1}_n{i}", len(nets[f"l{li - 1}_n{i}"]))
            else:
                ops[i] = (f"{mlp.layers[li - 1].act_bits}'d0", 1)
        try:
            helper = affine_lines(mlp, li, j, name, width, ops)
        except ValueError:
            return None
        block = "\n".join(helper).lstrip() + "\n    "
        text = pat.sub(lambda mt: f"{block}{mt.group(1)} = {name}__sum[{width - 1}:0];", text)
    return text
