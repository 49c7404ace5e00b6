"""The reference circuit: the IR semantics written as Verilog by the plainest generator.

The formal check (:mod:`approxmlp.backend.formal`) proves the emitted RTL equal to this
module. It only means something if the two generators share as little as possible, so
this one knows nothing of the emitter's tricks and reads only :mod:`approxmlp.core.ir`:

* every value of a layer is a signed wire of one width, wide enough that nothing can
  overflow by the triangle inequality alone (the bias plus every ``|w|`` times the largest
  operand, whatever masks and truncations later remove; at least two bits more than the
  largest ``cmp_drop``): no per-signal range analysis, no narrowing. The golden model's
  int64 would do too, but 64-bit sums make the proof of a 64-16-10 network take minutes
  in Yosys' gate-level optimizations for nothing;
* every connection is written, zero weights and removed connections included, as
  ``((x & mask) * |w|) >>> t <<< t`` with its sign applied after the truncation
  (:mod:`approxmlp.core.golden`: magnitudes are truncated, then signed), using Verilog's
  own ``*``: no CSD, no shifts and adds;
* the accumulator is the sum of the positive terms minus the sum of the negative terms'
  magnitudes (each in index order, zero weights among the positive ones) plus the bias,
  the rescale ``>>>``, QReLU two comparisons, ``act_trunc`` and ``cmp_drop`` a shift down and back up;
* the argmax is a linear scan in class order that takes a score only if it is strictly
  greater than the best so far, so a tie keeps the lower index.

The one thing both generators share is how a sum is bracketed (positive and negative
terms apart, as :mod:`approxmlp.core.golden` describes the hardware). It was chosen to
spare the SAT solver differently associated sums; it did not make the literature's exact
networks provable within minutes (README, "Formal equivalence"), so a reference bracketed
otherwise would be no weaker a check. Nothing is folded or pruned: Yosys does that when it
reads the module, from these semantics, not from the emitter's analysis. The neuron
outputs keep the emitter's names (``l<layer>_n<neuron>``) but not its widths, so the
formal flow matches the circuits at their ports only.
"""

from __future__ import annotations

from ...core.ir import MLP, signed_width


def layer_width(mlp: MLP, li: int) -> int:
    """The one signed width of layer ``li``'s wires (see the module docstring)."""
    layer = mlp.layers[li]
    top = (1 << mlp.operand_bits(li)) - 1
    bound = max(abs(b) + sum(abs(w) for w in row) * top for row, b in zip(layer.weights, layer.biases))
    width = max(signed_width(-bound, bound), mlp.operand_bits(li) + 1)
    if li == len(mlp.layers) - 1:
        width = max(width, max(a.cmp_drop for a in layer.approx) + 2)
    return width


def _const(v: int, width: int) -> str:
    """A signed constant of ``width`` bits (negative ones as a negated literal)."""
    return f"-{width}'sd{-v}" if v < 0 else f"{width}'sd{v}"


def reference_verilog(mlp: MLP, *, module: str = "reference") -> str:
    """The reference module for ``mlp``: ports ``inp`` and ``out`` as the emitted RTL's
    (combinational; the registered variant is not modelled)."""
    b = mlp.input_bits
    k = max(1, (mlp.n_classes - 1).bit_length())
    lines = [f"// approxmlp reference circuit of IR {mlp.digest}: the IR semantics, literally.",
             "`default_nettype none", f"module {module} (",
             f"    input  wire [{mlp.n_inputs * b - 1}:0] inp,",
             f"    output wire [{k - 1}:0] out", ");"]
    w = lines.append
    # the unsigned operands of the first layer: the input features
    operands = [f"inp[{b * i + b - 1}:{b * i}]" for i in range(mlp.n_inputs)]
    for li, layer in enumerate(mlp.layers):
        W = layer_width(mlp, li)
        ob = mlp.operand_bits(li)
        sw = f"wire signed [{W - 1}:0]"
        for i, op in enumerate(operands):
            w(f"    {sw} l{li}_in{i} = $signed({{{W - ob}'d0, {op}}});")
        outs = []
        for j, (row, bias, a) in enumerate(zip(layer.weights, layer.biases, layer.approx)):
            n = f"l{li}_n{j}"
            pos, neg = [], []
            for i, wt in enumerate(row):
                mask = (1 << W) - 1 if a.input_masks is None else a.input_masks[i]
                t = a.product_trunc
                w(f"    {sw} {n}_m{i} = (((l{li}_in{i} & {W}'sh{mask:x}) * {_const(abs(wt), W)}) >>> {t}) <<< {t};")
                (neg if wt < 0 else pos).append(f"{n}_m{i}")
            w(f"    {sw} {n}_pos = {' + '.join(pos) or _const(0, W)};")
            w(f"    {sw} {n}_neg = {' + '.join(neg) or _const(0, W)};")
            w(f"    {sw} {n}_acc = {n}_pos - {n}_neg + {_const(bias, W)};")
            w(f"    {sw} {n}_v = {n}_acc >>> {layer.shift};")
            if layer.activation == "qrelu":
                top = (1 << layer.act_bits) - 1
                w(f"    {sw} {n}_c = ({n}_v < {_const(0, W)}) ? {_const(0, W)} : "
                  f"({n}_v > {_const(top, W)}) ? {_const(top, W)} : {n}_v;")
                w(f"    {sw} {n} = ({n}_c >>> {a.act_trunc}) <<< {a.act_trunc};")
                outs.append(f"{n}[{layer.act_bits - 1}:0]")  # QReLU: an act_bits-bit unsigned value
            else:
                w(f"    {sw} {n} = {n}_v;")
                outs.append(n)
        operands = outs
    W = layer_width(mlp, len(mlp.layers) - 1)
    sw = f"wire signed [{W - 1}:0]"
    last = mlp.layers[-1]
    for j, (op, a) in enumerate(zip(operands, last.approx)):
        value = op if last.activation == "linear" else f"$signed({{{W - last.act_bits}'d0, {op}}})"
        w(f"    {sw} s{j} = ({value} >>> {a.cmp_drop}) <<< {a.cmp_drop};")
    w(f"    {sw} best0 = s0;")
    w(f"    wire [{k - 1}:0] idx0 = {k}'d0;")
    for j in range(1, mlp.n_classes):
        w(f"    wire take{j} = s{j} > best{j - 1};  // strictly greater: a tie keeps the lower index")
        w(f"    {sw} best{j} = take{j} ? s{j} : best{j - 1};")
        w(f"    wire [{k - 1}:0] idx{j} = take{j} ? {k}'d{j} : idx{j - 1};")
    w(f"    assign out = idx{mlp.n_classes - 1};")
    lines += ["endmodule", "`default_nettype wire", ""]
    return "\n".join(lines)
