"""One neuron's block: its products, the two sums, the accumulator and the activation.

Every product is an unsigned magnitude (CSD shifts and adds of the masked operand, low
bits cleared when truncated), one per line in input order; positive and negative
products are summed apart and subtracted once, with the bias (and any constant products)
as one constant term. The activation is a primitive of ``rtl/``: ``approxmlp_qrelu`` (the
rescale, the clamp and the output truncation) or, in a linear output layer,
``approxmlp_rescale``; in the last layer the bits the argmax ignores are cleared there
too, so that the neuron's output is its score. A score the range analysis proves
constant is one constant wire.
"""

from __future__ import annotations

import heapq
from dataclasses import replace

from ...core.ir import MLP, signed_width, unsigned_width
from ...core.ranges import NeuronRange, ProductRange
from ...core.sharing import digits, wire_bound
from .body import Body, instance
from .shared import LayerTerms
from .text import Signal, masked_operand, operand_text, paren, product_expr, zext

#: The mask :mod:`approxmlp.core.ranges` reports for a product that keeps every bit.
_ALL_BITS = (1 << 62) - 1


def emit_neuron(body: Body, mlp: MLP, r: NeuronRange, li: int, j: int, terms: LayerTerms, row: int | None,
                score: tuple[int, int] | None, read: int = 0) -> Signal:
    """Write neuron ``j`` of layer ``li``, whose summands are row ``row`` of the layer's plan
    (None for a neuron the range analysis proves constant); returns its output (in the last
    layer, whose ``score`` range is given, the value the argmax compares). ``read``: how
    many low bits of a hidden neuron's output the next layer reads (its masks may clear the
    top ones)."""
    operands = terms.operands
    layer = mlp.layers[li]
    a = layer.approx[j]
    name = f"l{li}_n{j}"
    body.line()
    body.line(f"// -- layer[{li}].neuron[{j}]: {formula(mlp, r, li, j, operands)}")
    if not a.is_exact:
        body.line(f"//    approximations: {approx_text(mlp, li, j)}")
    signed = layer.activation == "linear"
    if score is not None and score[0] == score[1]:
        return _constant(body, name, score[0], signed, "the argmax sees")
    if r.out_lo == r.out_hi:
        return _constant(body, name, r.out_lo, signed, "this output")
    assert row is not None
    acc = _accumulator(body, r, name, terms, row)
    if signed:
        return _linear(body, mlp, r, li, j, name, acc)
    return _qrelu(body, mlp, r, li, j, name, acc, score is not None, read)


def _constant(body: Body, name: str, value: int, signed: bool, what: str) -> Signal:
    body.line(f"//    constant {value}: the range analysis proves {what} never changes")
    if signed or value < 0:
        sig = Signal(name, signed_width(value, value))
        body.declare(sig, f"{'-' if value < 0 else ''}{sig.width}'sd{abs(value)}", signed=True)
    else:
        sig = Signal(name, unsigned_width(value))
        body.declare(sig, f"{sig.width}'d{value}")
    return sig


def _accumulator(body: Body, r: NeuronRange, name: str, terms: LayerTerms, row: int) -> Signal:
    """The truncated products, the sums of the ``+`` and of the ``-`` digits (operands,
    shared terms and products, each shifted), the difference plus the bias."""
    summands = terms.plan.summands[row]
    products = {i: _product(body, name, p, terms.operands[i]) for i, p in sorted(terms.plan.products[row].items())}
    totals = {sign: sum(terms.summand_bound(s, row) for s in summands if s.sign == sign) for sign in (1, -1)}
    bias = r.const + terms.plan.offset(row)  # the bias, constant products, the shared differences' offsets
    width = signed_width(min(r.acc_lo, bias), max(r.acc_hi, bias))
    for sign in (1, -1):
        if any(s.sign == sign for s in summands):
            width = max(width, unsigned_width(totals[sign]) + 1)
    acc = Signal(f"{name}_acc", width)
    parts = []
    for kind, sign in (("pos", 1), ("neg", -1)):
        mine = [s for s in summands if s.sign == sign]
        if not mine:
            continue
        ssig = Signal(f"{name}_{kind}", unsigned_width(totals[sign]))
        expr = _adder_tree(body, f"{name}_{kind}", mine, ssig.width, terms, row, products)
        body.declare(ssig, expr, f"{'+' if sign > 0 else '-'} digits of {_products_text(r, terms, sign)}")
        ssig.use(range(ssig.width))
        parts.append(("+" if sign > 0 else "-", f"$signed({zext(ssig.name, ssig.width, acc.width)})"))
    if bias:
        parts.append(("+" if bias > 0 else "-", f"{acc.width}'sd{abs(bias)}"))
    if not parts:
        parts.append(("+", f"{acc.width}'sd0"))
    expr = " ".join(f"{s} {t}" for s, t in parts)
    body.declare(acc, expr[2:] if expr.startswith("+ ") else expr, "accumulator", signed=True)
    acc.use(range(acc.width))  # read whole by the activation primitive
    return acc


def _adder_tree(body: Body, name: str, summands: list, width: int, terms: LayerTerms, row: int,
                products: dict[int, Signal]) -> str:
    """The sum of ``summands`` (each ``ref << shift``) in ``width`` bits, as two-operand
    additions: the two smallest values first (Huffman), each partial sum a wire as wide as
    its bound and aligned at the lower of its parts' shifts, so its low bits pass through
    and no adder is wider than what it adds. An FPGA builds each addition on a carry chain,
    one logic cell per bit (the synthesis flows keep them: flows/README.md); for printed
    cells Yosys merges the single-use additions back into one multi-operand sum. Returns the
    expression of the whole sum (the last addition)."""
    def leaf(s):
        product = products.get(s.ref.index) if s.ref.kind == "p" else None
        unshifted = replace(s, shift=0)
        return lambda w: terms.summand(unshifted, w, product)

    heap = [(b << s.shift, k, b, s.shift, leaf(s))
            for k, s in enumerate(summands) for b in [terms.summand_bound(s, row) >> s.shift]]
    heapq.heapify(heap)
    order = len(heap)
    while len(heap) > 1:
        _, _, ba, ka, ta = heapq.heappop(heap)
        _, _, bb, kb, tb = heapq.heappop(heap)
        if kb < ka:
            ba, ka, ta, bb, kb, tb = bb, kb, tb, ba, ka, ta
        bound = ba + (bb << (kb - ka))
        if not heap:  # the last addition is the sum itself
            break
        part = Signal(f"{name}_{order - len(summands)}", unsigned_width(bound))
        w = part.width
        body.declare(part, _add(ta(w), tb(w), kb - ka), f"part of {name}")
        part.use(range(w))
        heapq.heappush(heap, (bound << ka, order, bound, ka, lambda w2, p=part: zext(p.name, p.width, w2)))
        order += 1
    else:  # one summand
        _, _, _, ka, ta = heap[0]
        return f"({ta(width)} << {ka})" if ka else ta(width)
    # the root: ta + (tb << (kb - ka)), shifted by ka, in the sum's width
    inner = _add(ta(width), tb(width), kb - ka)
    return f"({inner}) << {ka}" if ka else inner


def _add(a: str, b: str, shift: int) -> str:
    """``a + (b << shift)`` as text."""
    return f"{a} + " + (f"({b} << {shift})" if shift else b)


def _products_text(r: NeuronRange, terms: LayerTerms, sign: int) -> str:
    """The products with a digit in the ``sign`` sum, as the weights they implement:
    ``x0 * 3, (x2 & 4'b1100) * 7``."""
    out = []
    for p in sorted(r.pos + r.neg, key=lambda p: p.index):
        s = 1 if p.weight > 0 else -1
        signs = {s} if p.trunc else {s * d for _, d in digits(abs(p.weight))}
        if sign in signs:
            op = terms.operands[p.index]
            text = operand_text(op, None if p.mask == _ALL_BITS else p.mask, p.operand_max)[0] if op else f"x{p.index}"
            out.append(f"{text} * {abs(p.weight)}" + (f" (w = {p.weight})" if p.weight < 0 else ""))
    return ", ".join(out)


def _product(body: Body, name: str, p: ProductRange, op: Signal) -> Signal:
    a_mask = None if p.mask == _ALL_BITS else p.mask
    opx, opw = masked_operand(op, a_mask, p.operand_max)
    mag = abs(p.weight)
    width = unsigned_width(mag * wire_bound(p))  # whatever the bits read hold (see core.sharing)
    sig = Signal(f"{name}_p{p.index}", width)
    expr = product_expr(opx, opw, mag, width)
    note = f"{op.name} * {mag}" + (f" (w = {p.weight})" if p.weight < 0 else "")
    if p.trunc:  # the low magnitude bits dropped: compute, then clear them
        if p.trunc >= width:
            raise AssertionError("range analysis removes fully truncated products")
        expr = f"{paren(expr)} & ~{width}'d{(1 << p.trunc) - 1}"
        note += f", low {p.trunc} bit{'s' if p.trunc > 1 else ''} dropped"
    body.declare(sig, expr, note)
    return sig


def _linear(body: Body, mlp: MLP, r: NeuronRange, li: int, j: int, name: str, acc: Signal) -> Signal:
    """``acc >>> shift``, the low bits the argmax ignores cleared (``approxmlp_rescale``)."""
    s = mlp.layers[li].shift
    d = mlp.layers[li].approx[j].cmp_drop
    out = Signal(name, max(signed_width(r.v_lo, r.v_hi), d + 1))  # with d bits dropped, at least sign + d zeros
    note = f"acc >>> {s}" + (f", low {d} bits ignored by argmax" if d else "")
    body.declare(out, None, note, signed=True)
    body.lines(instance("approxmlp_rescale", {"ACC_W": acc.width, "SHIFT": s, "DROP": d, "OUT_W": out.width},
                        f"u_{name}", {"acc": acc.name, "out": name}))
    return out


def _qrelu(body: Body, mlp: MLP, r: NeuronRange, li: int, j: int, name: str, acc: Signal, last: bool,
           read: int) -> Signal:
    """Negative -> 0, else bits ``[s + w - 1 : s]`` of the accumulator, all ones when a bit
    above them is set; low bits cleared by an activation truncation and, in the last
    layer, by the argmax (``approxmlp_qrelu``). Only the ``read`` low bits of a hidden
    neuron are built when every reader's mask clears the others (``OUT_W < SAT_W``)."""
    layer = mlp.layers[li]
    a = layer.approx[j]
    top = (1 << layer.act_bits) - 1
    wo = unsigned_width(r.out_hi)
    d = min(a.cmp_drop, wo) if last else 0
    t = max(a.act_trunc, d)
    neg, sat = r.v_lo < 0, r.v_hi > top
    w = min(wo, read) if read and not last else wo
    note = (f"QReLU: {'negative -> 0, ' if neg else ''}{'saturate at ' + str(top) + ', ' if sat else ''}"
            f"bits [{layer.shift + w - 1}:{layer.shift}]" + (f" (of {wo}: the readers' masks)" if w < wo else ""))
    if a.act_trunc:
        note += f", low {a.act_trunc} cleared"
    if d:
        note += f", low {d} ignored by argmax"
    out = Signal(name, w)
    body.declare(out, None, note)
    widths = {"OUT_W": w} | ({"SAT_W": wo} if w < wo else {})
    body.lines(instance("approxmlp_qrelu", {"ACC_W": acc.width, "SHIFT": layer.shift} | widths
                        | {"TRUNC": t, "CAN_NEG": int(neg), "CAN_SAT": int(sat)},
                        f"u_{name}", {"acc": acc.name, "out": name}))
    return out


# -- comments ---------------------------------------------------------------------------
def formula(mlp: MLP, r: NeuronRange, li: int, j: int, operands: list[Signal | None]) -> str:
    """The neuron as arithmetic over the connections that are built, each with its mask as
    the code reads it: ``qrelu8((+3*(x0 & 4'b1101) -1*x2 +17) >>> 2)``."""
    layer = mlp.layers[li]
    terms = []
    for p in sorted(r.pos + r.neg, key=lambda p: p.index):
        op = operands[p.index]
        if op is None:  # a constant neuron's operand that nothing else reads: named, not built
            op = Signal(f"x{p.index}" if li == 0 else f"l{li - 1}_n{p.index}", unsigned_width(p.operand_max))
        text, _, _ = operand_text(op, None if p.mask == _ALL_BITS else p.mask, p.operand_max)
        terms.append(f"{p.weight:+d}*{text}")
    if r.const:
        terms.append(f"{r.const:+d}")
    inner = " ".join(terms) if terms else "0"
    core = f"({inner}) >>> {layer.shift}" if layer.shift else f"{inner}"
    if layer.activation == "qrelu":
        return f"qrelu{layer.act_bits}({core})"
    return core


def approx_text(mlp: MLP, li: int, j: int) -> str:
    """The neuron's approximation record in words (the operand masks are in the formula)."""
    a = mlp.layers[li].approx[j]
    parts = []
    if a.input_masks is not None:
        removed = [i for i, m in enumerate(a.input_masks) if m == 0 and mlp.layers[li].weights[j][i]]
        masked = sum(1 for i, m in enumerate(a.input_masks)
                     if m and m != (1 << mlp.operand_bits(li)) - 1 and mlp.layers[li].weights[j][i])
        if removed:
            parts.append(f"connections removed: {removed}")
        if masked:
            parts.append(f"{masked} operand{'s' if masked > 1 else ''} masked")
    if a.product_trunc:
        parts.append(f"products drop {a.product_trunc} LSBs")
    if a.act_trunc:
        parts.append(f"output drops {a.act_trunc} LSBs")
    if a.cmp_drop:
        parts.append(f"argmax ignores {a.cmp_drop} LSBs")
    return "; ".join(parts) or "none"
