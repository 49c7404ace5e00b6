"""Verilog back end: IR in, one readable, lint-clean, bespoke module out.

The circuit is fully parallel and combinational (optionally with a registered output):
every weight is a constant, so every multiplier is a handful of shifts and adds in
canonical signed digit (CSD) form, and zero weights, removed connections and provably
constant neurons vanish before synthesis sees them.

Width discipline. Every wire is sized from :mod:`approxmlp.core.ranges`, and every operand is
explicitly zero- or sign-extended to the width of the expression it appears in, so that
Verilator's ``-Wall`` has nothing to say about widths. Inside an expression, two's-
complement arithmetic modulo the wire's width is exact whenever the true result fits,
which the range analysis guarantees; so a product such as ``x*7 = (x<<3) - x`` is
computed directly in the product's own width. The only bits never read are those a
neuron drops on purpose (below the rescale, above the value range, cleared by an
approximation); those declarations carry a local, commented ``lint_off UNUSEDSIGNAL``.

The emitter only reads the IR and returns text; writing files is the caller's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .. import __version__
from ..core.ir import MLP, signed_width, unsigned_width
from ..core.ranges import NeuronRange, ProductRange, analyze


def csd(n: int) -> list[tuple[int, int]]:
    """Canonical signed digits of ``n >= 0`` as ``[(shift, +1|-1), ...]``, high first.

    CSD (non-adjacent form) has the fewest nonzero digits of any signed-digit form, so
    a constant multiplier needs the fewest adders: 7 = 8 - 1, 29 = 32 - 4 + 1.
    """
    digits = []
    k = 0
    while n:
        if n & 1:
            d = 2 - (n & 3)  # +1 if n % 4 == 1, -1 if n % 4 == 3
            digits.append((k, d))
            n -= d
        n >>= 1
        k += 1
    return digits[::-1]


def class_width(n_classes: int) -> int:
    """Bits of the class-index output: ``ceil(log2(n_classes))``, at least 1."""
    return max(1, (n_classes - 1).bit_length())


@dataclass
class _Sig:
    """A named unsigned/signed signal and which of its bits some expression reads."""

    name: str
    width: int
    used: set[int] = field(default_factory=set)

    def use(self, bits) -> None:
        self.used.update(bits)

    def unused(self) -> list[int]:
        return [b for b in range(self.width) if b not in self.used]


def _bits_str(bits: list[int]) -> str:
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


def _zext(expr: str, width: int, target: int) -> str:
    """Zero-extend an unsigned ``width``-bit expression to ``target`` bits."""
    assert target >= width, (expr, width, target)
    return expr if target == width else f"{{{target - width}'d0, {expr}}}"


def _sext(name: str, width: int, target: int) -> str:
    """Sign-extend a signed ``width``-bit signal to ``target`` bits."""
    assert target >= width
    if target == width:
        return name
    top = f"{name}[{width - 1}]"
    rep = top if target - width == 1 else f"{{{target - width}{{{top}}}}}"
    return f"{{{rep}, {name}}}"


def _slice(name: str, hi: int, lo: int, width: int) -> str:
    if lo == 0 and hi == width - 1:
        return name
    return f"{name}[{hi}]" if hi == lo else f"{name}[{hi}:{lo}]"


def _sext_slice(name: str, width: int, hi: int, lo: int) -> str:
    """Bits ``[hi:lo]`` of a signed ``width``-bit signal, reading its sign extension
    above the top (an arithmetic shift by more than the width leaves only sign bits)."""
    if hi < width:
        return _slice(name, hi, lo, width)
    sign = f"{name}[{width - 1}]"
    extra = hi - max(lo, width) + 1
    rep = sign if extra == 1 else f"{{{extra}{{{sign}}}}}"
    if lo >= width:
        return rep if extra > 1 else f"{{{sign}}}"
    return f"{{{rep}, {_slice(name, width - 1, lo, width)}}}"


def _masked_operand(sig: _Sig, mask: int | None, omax: int) -> tuple[str, int]:
    """Expression and width of ``x & mask`` as a concatenation of kept bits (readable,
    and constant zeros are visible to the reader as well as to synthesis)."""
    top = unsigned_width(omax)  # the kept bits live below this
    keep = [b for b in range(min(top, sig.width)) if mask is None or mask >> b & 1]
    sig.use(keep)
    if mask is None or keep == list(range(top)):
        return _slice(sig.name, top - 1, 0, sig.width), top
    parts, b = [], top - 1
    while b >= 0:
        if b in keep:
            lo = b
            while lo - 1 in keep:
                lo -= 1
            parts.append(_slice(sig.name, b, lo, sig.width))
            b = lo - 1
        else:
            lo = b
            while lo - 1 >= 0 and lo - 1 not in keep:
                lo -= 1
            parts.append(f"{b - lo + 1}'d0")
            b = lo - 1
    return "{" + ", ".join(parts) + "}", top


def _product_expr(op: str, op_width: int, magnitude: int, width: int) -> str:
    """``op * magnitude`` in ``width`` bits, as CSD shifts and adds (or plain binary when
    that has no more terms, or when a CSD digit would fall off the top of the wire)."""
    digits = csd(magnitude)
    binary = [(k, 1) for k in range(magnitude.bit_length() - 1, -1, -1) if magnitude >> k & 1]
    if len(binary) <= len(digits) or digits[0][0] >= width:
        digits = binary
    x = _zext(op, op_width, width)
    terms = []
    for k, d in digits:
        t = x if k == 0 else f"({x} << {k})"
        terms.append(("- " if d < 0 else "+ ") + t)
    text = " ".join(terms)
    return text[2:] if text.startswith("+ ") else text


class _Emitter:
    def __init__(self, mlp: MLP, module: str, registered: bool, source: str | None):
        self.mlp = mlp
        self.module = module
        self.registered = registered
        self.source = source
        self.ranges = analyze(mlp)
        self.body: list[str] = []
        self.decls: dict[str, list[str]] = {}  # signal -> its declaration lines (late lint wrap)

    # -- small writers ----------------------------------------------------------------
    def line(self, text: str = "") -> None:
        self.body.append(("    " + text) if text else "")

    def declare(self, sig: _Sig, expr: str, comment: str = "", signed: bool = False) -> None:
        """Declare a wire; the lint wrapper is decided at the end, once usage is known."""
        sgn = "signed " if signed else ""
        rng = f"[{sig.width - 1}:0] "  # also for 1 bit, so that x[0] is legal
        text = f"wire {sgn}{rng}{sig.name} = {expr};"
        if comment:
            text += f"  // {comment}"
        self.body.append(("DECL", sig))  # placeholder resolved in finish()
        self.decls[sig.name] = [text]

    # -- the circuit ------------------------------------------------------------------
    def run(self) -> str:
        mlp = self.mlp
        b = mlp.input_bits
        operands = [_Sig(f"x{i}", b) for i in range(mlp.n_inputs)]
        self.line(f"// ---- inputs: {mlp.n_inputs} features x {b}-bit unsigned")
        for i, sig in enumerate(operands):
            self.declare(sig, _slice("inp", b * i + b - 1, b * i, b * mlp.n_inputs))
        scores = []
        for li, layer in enumerate(mlp.layers):
            last = li == len(mlp.layers) - 1
            act = f"QReLU {layer.act_bits}-bit" if layer.activation == "qrelu" else "linear"
            self.line()
            self.line(f"// ==== layer[{li}]: {layer.n_in} -> {layer.n_out}, {act}, rescale >>> {layer.shift}")
            outputs = []
            for j in range(layer.n_out):
                out, score = self.neuron(li, j, operands, last)
                outputs.append(out)
                if last:
                    r = self.ranges[li][j]
                    d = layer.approx[j].cmp_drop
                    lo, hi = (r.v_lo, r.v_hi) if layer.activation == "linear" else (r.out_lo, r.out_hi)
                    scores.append((score, (lo >> d) << d, (hi >> d) << d))
            operands = outputs
        self.line()
        cls = self.argmax(scores, signed=mlp.layers[-1].activation == "linear")
        return self.finish(cls)

    def neuron(self, li: int, j: int, operands: list[_Sig], last: bool):
        layer = self.mlp.layers[li]
        r: NeuronRange = self.ranges[li][j]
        a = layer.approx[j]
        name = f"l{li}_n{j}"
        self.line()
        self.line(f"// -- layer[{li}].neuron[{j}]: {self.formula(li, j, r, operands)}")
        if not a.is_exact:
            self.line(f"//    approximations: {self.approx_text(li, j)}")
        if r.out_lo == r.out_hi:
            self.line(f"//    constant {r.out_lo}: the range analysis proves this output never changes")
            if last:  # what the argmax sees: cmp_drop applies to the constant too
                d = a.cmp_drop
                r = replace(r, out_lo=(r.out_lo >> d) << d, out_hi=(r.out_lo >> d) << d)
            if layer.activation == "linear" or r.out_lo < 0:
                sig = _Sig(name, signed_width(r.out_lo, r.out_hi))
                self.declare(sig, f"{'-' if r.out_lo < 0 else ''}{sig.width}'sd{abs(r.out_lo)}", signed=True)
            else:
                sig = _Sig(name, unsigned_width(r.out_hi))
                self.declare(sig, f"{sig.width}'d{r.out_lo}")
            return sig, sig
        # products, as unsigned magnitudes, summed by sign
        prods: dict[str, list[tuple[_Sig, int]]] = {"pos": [], "neg": []}
        for kind, group in (("pos", r.pos), ("neg", r.neg)):
            for p in group:
                psig = self.product(name, p, operands[p.index])
                prods[kind].append((psig, p.mag_max))
        acc = _Sig(f"{name}_acc", r.acc_width)
        terms = []
        for kind, sign in (("pos", "+"), ("neg", "-")):
            if not prods[kind]:
                continue
            total = r.pos_max if kind == "pos" else r.neg_max
            ssig = _Sig(f"{name}_{kind}", unsigned_width(total))
            if len(prods[kind]) == 1:
                expr = prods[kind][0][0].name
            else:
                expr = " + ".join(_zext(s.name, s.width, ssig.width) for s, _ in prods[kind])
            for s, _ in prods[kind]:
                s.use(range(s.width))
            self.declare(ssig, expr, f"sum of {'positive' if kind == 'pos' else 'negative'} products")
            ssig.use(range(ssig.width))
            terms.append((sign, f"$signed({_zext(ssig.name, ssig.width, acc.width)})"))
        bias = r.const  # the bias, plus any products of constant operands
        if bias:
            terms.append(("+" if bias > 0 else "-", f"{acc.width}'sd{abs(bias)}"))
        if not terms:
            terms.append(("+", f"{acc.width}'sd0"))
        expr = " ".join(f"{s} {t}" for s, t in terms)
        expr = expr[2:] if expr.startswith("+ ") else expr
        self.declare(acc, expr, "accumulator", signed=True)
        return self.activation(li, j, name, acc, r, last)

    def product(self, name: str, p: ProductRange, op: _Sig) -> _Sig:
        a_mask = None if p.mask == (1 << 62) - 1 else p.mask
        opx, opw = _masked_operand(op, a_mask, p.operand_max)
        mag = abs(p.weight)
        width = unsigned_width(abs(p.weight) * p.operand_max)
        sig = _Sig(f"{name}_p{p.index}", width)
        expr = _product_expr(opx, opw, mag, width)
        note = f"{op.name} * {mag}" + (f" (w = {p.weight})" if p.weight < 0 else "")
        if a_mask is not None and opw > 0 and any(not (a_mask >> b & 1) for b in range(op.width)):
            note += f", operand bits {{{','.join(str(b) for b in range(op.width) if a_mask >> b & 1)}}}"
        if p.trunc:
            sig = self.truncated(sig, expr, p.trunc, note)
            return sig
        self.declare(sig, expr, note)
        return sig

    def truncated(self, full: _Sig, expr: str, t: int, note: str) -> _Sig:
        """A product whose ``t`` low magnitude bits are dropped: compute, then re-zero."""
        raw = _Sig(full.name + "_full", full.width)
        self.declare(raw, expr, note)
        if t >= full.width:
            raise AssertionError("range analysis removes fully truncated products")
        raw.use(range(t, full.width))
        sig = _Sig(full.name, full.width)
        self.declare(sig, f"{{{_slice(raw.name, full.width - 1, t, full.width)}, {t}'d0}}",
                     f"low {t} bits dropped")
        return sig

    def activation(self, li: int, j: int, name: str, acc: _Sig, r: NeuronRange, last: bool):
        layer = self.mlp.layers[li]
        a = layer.approx[j]
        s = layer.shift
        if layer.activation == "linear":
            width = signed_width(r.v_lo, r.v_hi)
            out = _Sig(name, width)
            acc.use(range(s, min(s + width, acc.width)))
            self.declare(out, _sext_slice(acc.name, acc.width, s + width - 1, s), f"acc >>> {s}", signed=True)
            d = a.cmp_drop
            if not d:
                return out, out  # the argmax marks what it reads
            # (v >> d) << d: keep the bits above d; past the top only the sign is left.
            score = _Sig(f"{name}_cmp", max(width, d + 1))
            if d < width:
                out.use(range(d, width))
                expr = f"{{{_slice(name, width - 1, d, width)}, {d}'d0}}"
            else:
                out.use([width - 1])
                expr = f"{{{name}[{width - 1}], {d}'d0}}"
            self.declare(score, expr, f"low {d} bits ignored by argmax", signed=True)
            return out, score
        top = (1 << layer.act_bits) - 1
        wo = unsigned_width(r.out_hi)
        t = a.act_trunc
        sat = r.v_hi > top
        neg = r.v_lo < 0
        sign_bit = acc.width - 1
        hi_limit = sign_bit - 1 if neg else sign_bit  # highest magnitude bit
        keep = _slice(acc.name, s + wo - 1, s + t, acc.width) if wo > t else None
        acc.use(range(s + t, s + wo))
        value = f"{{{keep}, {t}'d0}}" if t and keep else (keep or f"{wo}'d0")
        if sat:
            acc.use(range(s + wo, hi_limit + 1))
            ones = (f"{wo}'d0" if t >= wo else f"{{{{{wo - t}{{1'b1}}}}, {t}'d0}}" if t else f"{{{wo}{{1'b1}}}}")
            value = f"(|{_slice(acc.name, hi_limit, s + wo, acc.width)}) ? {ones} : {value}"
        if neg:
            acc.use([sign_bit])
            value = f"{_slice(acc.name, sign_bit, sign_bit, acc.width)} ? {wo}'d0 : {value}"
        note = f"QReLU: {'negative -> 0, ' if neg else ''}{'saturate at ' + str(top) + ', ' if sat else ''}bits [{s + wo - 1}:{s}]"
        if t:
            note += f", low {t} cleared"
        out = _Sig(name, wo)
        self.declare(out, value, note)
        if not last:
            return out, None
        d = min(a.cmp_drop, wo)
        if d:
            out.use(range(d, wo))
            score = _Sig(f"{name}_cmp", wo)
            self.declare(score, f"{{{_slice(name, wo - 1, d, wo)}, {d}'d0}}" if d < wo else f"{wo}'d0",
                         f"low {d} bits ignored by argmax")
            return out, score
        return out, out

    def argmax(self, scores: list[tuple[_Sig, int, int]], signed: bool) -> str:
        """Binary comparator tree, lower index on the left so that ties keep it.

        Each entry carries its value range: a comparison that the ranges already decide
        is not built, and the tree is planned before it is written, so that nothing is
        emitted that the pruned tree would not read.
        """
        n = len(scores)
        k = class_width(n)
        width = max(s.width for s, _, _ in scores)
        level: list[dict] = []
        for i, (s, lo, hi) in enumerate(scores):
            ext = _sext(s.name, s.width, width) if signed else _zext(s.name, s.width, width)
            level.append(dict(v=ext, i=f"{k}'d{i}", lo=lo, hi=hi, sig=s, kids=None))
        notes, depth = [], 0
        while len(level) > 1:
            depth += 1
            nxt = []
            for p in range(0, len(level) - 1, 2):
                a, b = level[p], level[p + 1]
                if b["hi"] <= a["lo"]:
                    notes.append(f"class {b['i']} never beats {a['i']} (value ranges)")
                    nxt.append(a)
                elif b["lo"] > a["hi"]:
                    notes.append(f"class {b['i']} always beats {a['i']} (value ranges)")
                    nxt.append(b)
                else:
                    nm = f"am{depth}_{p // 2}"
                    nxt.append(dict(v=f"{nm}_v", i=f"{nm}_i", lo=max(a["lo"], b["lo"]),
                                    hi=max(a["hi"], b["hi"]), sig=None, kids=(a, b), name=nm))
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
        self.line(f"// ==== argmax over {n} classes: tree of comparators, a tie keeps the lower index")
        for note in notes:
            self.line(f"// pruned: {note}")
        sgn = "signed " if signed else ""
        rng = f"[{k - 1}:0] " if k > 1 else ""

        def build(node: dict, need_value: bool) -> None:
            if node["kids"] is None:
                if need_value:
                    node["sig"].use(range(node["sig"].width))
                return
            a, b = node["kids"]
            build(a, True)
            build(b, True)
            nm = node["name"]
            cmp = f"$signed({b['v']}) > $signed({a['v']})" if signed else f"{b['v']} > {a['v']}"
            self.line(f"wire {nm}_b = {cmp};  // right side wins only if strictly greater")
            if need_value:
                self.line(f"wire {sgn}[{width - 1}:0] {nm}_v = {nm}_b ? {b['v']} : {a['v']};")
            self.line(f"wire {rng}{nm}_i = {nm}_b ? {b['i']} : {a['i']};")

        build(level[0], False)
        return level[0]["i"]

    # -- comments ---------------------------------------------------------------------
    def formula(self, li: int, j: int, r: NeuronRange, operands: list[_Sig]) -> str:
        layer = self.mlp.layers[li]
        terms = [f"{w:+d}*{operands[i].name}" for i, w in enumerate(layer.weights[j]) if w]
        if layer.biases[j]:
            terms.append(f"{layer.biases[j]:+d}")
        inner = " ".join(terms) if terms else "0"
        core = f"({inner}) >>> {layer.shift}" if layer.shift else f"{inner}"
        if layer.activation == "qrelu":
            return f"qrelu{layer.act_bits}({core})"
        return core

    def approx_text(self, li: int, j: int) -> str:
        a = self.mlp.layers[li].approx[j]
        parts = []
        if a.input_masks is not None:
            b = self.mlp.operand_bits(li)
            full = (1 << b) - 1
            cut = [(i, m) for i, m in enumerate(a.input_masks) if m != full and self.mlp.layers[li].weights[j][i]]
            removed = [i for i, m in cut if m == 0]
            masked = [(i, m) for i, m in cut if m]
            if removed:
                parts.append(f"connections removed: {removed}")
            if masked:
                parts.append("operand masks: " + ", ".join(f"in{i}&{m:#x}" for i, m in masked))
        if a.product_trunc:
            parts.append(f"products drop {a.product_trunc} LSBs")
        if a.act_trunc:
            parts.append(f"output drops {a.act_trunc} LSBs")
        if a.cmp_drop:
            parts.append(f"argmax ignores {a.cmp_drop} LSBs")
        return "; ".join(parts) or "none"

    # -- assembly ---------------------------------------------------------------------
    def finish(self, cls: str) -> str:
        mlp = self.mlp
        k = class_width(mlp.n_classes)
        body = []
        for item in self.body:
            if isinstance(item, tuple):
                sig = item[1]
                text = self.decls[sig.name]
                unused = sig.unused()
                if unused:
                    body.append(f"    /* verilator lint_off UNUSEDSIGNAL */  // bits {_bits_str(unused)} never read")
                    body.extend("    " + t for t in text)
                    body.append("    /* verilator lint_on UNUSEDSIGNAL */")
                else:
                    body.extend("    " + t for t in text)
            else:
                body.append(item)
        head = self.header()
        ports = [f"    input  wire [{mlp.n_inputs * mlp.input_bits - 1}:0] inp,  "
                 f"// {mlp.n_inputs} x {mlp.input_bits}-bit features, feature i at inp[{mlp.input_bits}*i +: {mlp.input_bits}]"]
        if self.registered:
            ports.insert(0, "    input  wire clk,")
            ports.append(f"    output reg  [{k - 1}:0] out  // class index 0..{mlp.n_classes - 1}, registered")
        else:
            ports.append(f"    output wire [{k - 1}:0] out  // class index 0..{mlp.n_classes - 1}")
        lines = head + ["`default_nettype none", "", f"module {self.module} ("] + ports + [");", ""]
        lines += body
        lines.append("")
        if self.registered:
            lines.append(f"    always @(posedge clk) out <= {cls};")
        else:
            lines.append(f"    assign out = {cls};")
        lines += ["", "endmodule", "", "`default_nettype wire", ""]
        return "\n".join(lines)

    def header(self) -> list[str]:
        mlp = self.mlp
        acts = sorted({layer.act_bits for layer in mlp.layers if layer.activation == "qrelu"})
        wmax = max((abs(w) for layer in mlp.layers for row in layer.weights for w in row), default=0)
        lines = [
            f"// Generated by approxmlp {__version__}. Do not edit: regenerate with `approxmlp compile`.",
            f"// Model     : {mlp.name}" + (f" (from {self.source})" if self.source else ""),
            f"// IR sha256 : {mlp.digest}",
            f"// Topology  : {mlp.topology_str}  (inputs-hidden...-classes)",
            f"// Inputs    : {mlp.input_bits}-bit unsigned; weights |w| <= {wmax} "
            f"({signed_width(-wmax, wmax)}-bit signed); QReLU {'/'.join(map(str, acts)) or '-'}-bit",
            "// Arithmetic: constant multipliers as CSD shifts and adds; positive and negative",
            "//             products summed apart and subtracted once; ties in argmax -> lower index",
            f"// Design    : {'exact' if mlp.is_exact else 'approximate'}, "
            f"{'registered output (1 cycle latency)' if self.registered else 'combinational'}",
        ]
        for k, v in mlp.meta:
            lines.append(f"// meta      : {k} = {v}")
        return lines + [""]


def emit_verilog(mlp: MLP, *, module: str = "top", registered: bool = False, source: str | None = None) -> str:
    """The bespoke Verilog of ``mlp`` as one module named ``module``.

    Ports: ``inp`` (feature i at ``inp[b*i +: b]``), ``out`` (class index) and, when
    ``registered``, ``clk`` (``out`` is then a register: one cycle of latency).
    """
    if not module.isidentifier():
        raise ValueError(f"module name must be a Verilog identifier, not {module!r}")
    return _Emitter(mlp, module, registered, source).run()
