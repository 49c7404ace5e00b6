"""One neuron's block: its products, the two sums, the accumulator and the activation.

Every product is an unsigned magnitude (CSD shifts and adds of the masked operand, low
bits re-zeroed when truncated); positive and negative products are summed apart and
subtracted once, with the bias (and any constant products) as one constant term; the
rescale is a bit slice, QReLU a clamp written as two conditions on accumulator bits.
A neuron the range analysis proves constant is one constant wire.
"""

from __future__ import annotations

from dataclasses import replace

from ...core.ir import MLP, signed_width, unsigned_width
from ...core.ranges import NeuronRange, ProductRange
from .body import Body
from .text import Signal, bit_slice, masked_operand, product_expr, sext_slice, zext

#: The mask :mod:`approxmlp.core.ranges` reports for a product that keeps every bit.
_ALL_BITS = (1 << 62) - 1


def emit_neuron(body: Body, mlp: MLP, r: NeuronRange, li: int, j: int, operands: list[Signal],
                last: bool) -> tuple[Signal, Signal | None]:
    """Write neuron ``j`` of layer ``li``; returns its output and, in the last layer, the
    score the argmax compares (``None`` otherwise)."""
    layer = mlp.layers[li]
    a = layer.approx[j]
    name = f"l{li}_n{j}"
    body.line()
    body.line(f"// -- layer[{li}].neuron[{j}]: {formula(mlp, li, j, operands)}")
    if not a.is_exact:
        body.line(f"//    approximations: {approx_text(mlp, li, j)}")
    if r.out_lo == r.out_hi:
        return _constant(body, mlp, r, li, j, name, last)
    acc = _accumulator(body, r, name, operands)
    if layer.activation == "linear":
        return _linear(body, mlp, r, li, j, name, acc)
    return _qrelu(body, mlp, r, li, j, name, acc, last)


def _constant(body: Body, mlp: MLP, r: NeuronRange, li: int, j: int, name: str, last: bool):
    layer = mlp.layers[li]
    body.line(f"//    constant {r.out_lo}: the range analysis proves this output never changes")
    if last:  # what the argmax sees: cmp_drop applies to the constant too
        d = layer.approx[j].cmp_drop
        r = replace(r, out_lo=(r.out_lo >> d) << d, out_hi=(r.out_lo >> d) << d)
    if layer.activation == "linear" or r.out_lo < 0:
        sig = Signal(name, signed_width(r.out_lo, r.out_hi))
        body.declare(sig, f"{'-' if r.out_lo < 0 else ''}{sig.width}'sd{abs(r.out_lo)}", signed=True)
    else:
        sig = Signal(name, unsigned_width(r.out_hi))
        body.declare(sig, f"{sig.width}'d{r.out_lo}")
    return sig, sig


def _accumulator(body: Body, r: NeuronRange, name: str, operands: list[Signal]) -> Signal:
    """Products, as unsigned magnitudes summed by sign, minus each other, plus the bias."""
    acc = Signal(f"{name}_acc", r.acc_width)
    products = {kind: [_product(body, name, p, operands[p.index]) for p in group]
                for kind, group in (("pos", r.pos), ("neg", r.neg))}
    terms = []
    for kind, sign, total in (("pos", "+", r.pos_max), ("neg", "-", r.neg_max)):
        prods = products[kind]
        if not prods:
            continue
        ssig = Signal(f"{name}_{kind}", unsigned_width(total))
        expr = prods[0].name if len(prods) == 1 else " + ".join(zext(s.name, s.width, ssig.width) for s in prods)
        for s in prods:
            s.use(range(s.width))
        body.declare(ssig, expr, f"sum of {'positive' if kind == 'pos' else 'negative'} products")
        ssig.use(range(ssig.width))
        terms.append((sign, f"$signed({zext(ssig.name, ssig.width, acc.width)})"))
    bias = r.const  # the bias, plus any products of constant operands
    if bias:
        terms.append(("+" if bias > 0 else "-", f"{acc.width}'sd{abs(bias)}"))
    if not terms:
        terms.append(("+", f"{acc.width}'sd0"))
    expr = " ".join(f"{s} {t}" for s, t in terms)
    body.declare(acc, expr[2:] if expr.startswith("+ ") else expr, "accumulator", signed=True)
    return acc


def _product(body: Body, name: str, p: ProductRange, op: Signal) -> Signal:
    a_mask = None if p.mask == _ALL_BITS else p.mask
    opx, opw = masked_operand(op, a_mask, p.operand_max)
    mag = abs(p.weight)
    width = unsigned_width(mag * p.operand_max)
    sig = Signal(f"{name}_p{p.index}", width)
    expr = product_expr(opx, opw, mag, width)
    note = f"{op.name} * {mag}" + (f" (w = {p.weight})" if p.weight < 0 else "")
    if a_mask is not None and opw > 0 and any(not (a_mask >> b & 1) for b in range(op.width)):
        note += f", operand bits {{{','.join(str(b) for b in range(op.width) if a_mask >> b & 1)}}}"
    if not p.trunc:
        body.declare(sig, expr, note)
        return sig
    # the low t magnitude bits dropped: compute, then re-zero
    t = p.trunc
    if t >= width:
        raise AssertionError("range analysis removes fully truncated products")
    raw = Signal(sig.name + "_full", width)
    body.declare(raw, expr, note)
    raw.use(range(t, width))
    body.declare(sig, f"{{{bit_slice(raw.name, width - 1, t, width)}, {t}'d0}}", f"low {t} bits dropped")
    return sig


def _linear(body: Body, mlp: MLP, r: NeuronRange, li: int, j: int, name: str, acc: Signal):
    """``acc >>> shift`` (a signed slice); the argmax may ignore its low bits."""
    s = mlp.layers[li].shift
    width = signed_width(r.v_lo, r.v_hi)
    out = Signal(name, width)
    acc.use(range(s, min(s + width, acc.width)))
    body.declare(out, sext_slice(acc.name, acc.width, s + width - 1, s), f"acc >>> {s}", signed=True)
    d = mlp.layers[li].approx[j].cmp_drop
    if not d:
        return out, out  # the argmax marks what it reads
    # (v >> d) << d: keep the bits above d; past the top only the sign is left.
    score = Signal(f"{name}_cmp", max(width, d + 1))
    if d < width:
        out.use(range(d, width))
        expr = f"{{{bit_slice(name, width - 1, d, width)}, {d}'d0}}"
    else:
        out.use([width - 1])
        expr = f"{{{name}[{width - 1}], {d}'d0}}"
    body.declare(score, expr, f"low {d} bits ignored by argmax", signed=True)
    return out, score


def _qrelu(body: Body, mlp: MLP, r: NeuronRange, li: int, j: int, name: str, acc: Signal, last: bool):
    """Negative -> 0, else bits ``[s + w - 1 : s]`` of the accumulator, all ones when a bit
    above them is set; low bits cleared by an activation truncation."""
    layer = mlp.layers[li]
    a = layer.approx[j]
    s = layer.shift
    top = (1 << layer.act_bits) - 1
    wo = unsigned_width(r.out_hi)
    t = a.act_trunc
    sat = r.v_hi > top
    neg = r.v_lo < 0
    sign_bit = acc.width - 1
    hi_limit = sign_bit - 1 if neg else sign_bit  # highest magnitude bit
    keep = bit_slice(acc.name, s + wo - 1, s + t, acc.width) if wo > t else None
    acc.use(range(s + t, s + wo))
    value = f"{{{keep}, {t}'d0}}" if t and keep else (keep or f"{wo}'d0")
    if sat:
        acc.use(range(s + wo, hi_limit + 1))
        ones = (f"{wo}'d0" if t >= wo else f"{{{{{wo - t}{{1'b1}}}}, {t}'d0}}" if t else f"{{{wo}{{1'b1}}}}")
        value = f"(|{bit_slice(acc.name, hi_limit, s + wo, acc.width)}) ? {ones} : {value}"
    if neg:
        acc.use([sign_bit])
        value = f"{bit_slice(acc.name, sign_bit, sign_bit, acc.width)} ? {wo}'d0 : {value}"
    note = (f"QReLU: {'negative -> 0, ' if neg else ''}{'saturate at ' + str(top) + ', ' if sat else ''}"
            f"bits [{s + wo - 1}:{s}]")
    if t:
        note += f", low {t} cleared"
    out = Signal(name, wo)
    body.declare(out, value, note)
    if not last:
        return out, None
    d = min(a.cmp_drop, wo)
    if not d:
        return out, out
    out.use(range(d, wo))
    score = Signal(f"{name}_cmp", wo)
    body.declare(score, f"{{{bit_slice(name, wo - 1, d, wo)}, {d}'d0}}" if d < wo else f"{wo}'d0",
                 f"low {d} bits ignored by argmax")
    return out, score


# -- comments ---------------------------------------------------------------------------
def formula(mlp: MLP, li: int, j: int, operands: list[Signal]) -> str:
    """The neuron as arithmetic, with its weights: ``qrelu8((+3*x0 -1*x2 +17) >>> 2)``."""
    layer = mlp.layers[li]
    terms = [f"{w:+d}*{operands[i].name}" for i, w in enumerate(layer.weights[j]) if w]
    if layer.biases[j]:
        terms.append(f"{layer.biases[j]:+d}")
    inner = " ".join(terms) if terms else "0"
    core = f"({inner}) >>> {layer.shift}" if layer.shift else f"{inner}"
    if layer.activation == "qrelu":
        return f"qrelu{layer.act_bits}({core})"
    return core


def approx_text(mlp: MLP, li: int, j: int) -> str:
    """The neuron's approximation record in words."""
    a = mlp.layers[li].approx[j]
    parts = []
    if a.input_masks is not None:
        full = (1 << mlp.operand_bits(li)) - 1
        cut = [(i, m) for i, m in enumerate(a.input_masks) if m != full and mlp.layers[li].weights[j][i]]
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
