"""Back out: the IR (exact or approximate) as an ONNX model that computes the golden class.

The graph takes the input codes ``codes`` (int64, ``(N, n_inputs)``: what the circuit's
``inp`` receives, ``quantizer.json`` maps raw features to them) and gives ``class`` (int64,
``(N,)``, the argmax, ties to the lower index) and ``scores`` (the values the argmax
compares). Every line of :mod:`approxmlp.core.golden` has its node:

* operand masks: ``BitwiseAnd`` of the int64 operands with each connection's mask;
* products in float64, exact because every value stays below 2**53 (checked with the
  interval analysis of :mod:`approxmlp.core.ranges`; a design past it is refused);
* product truncation: ``Floor(|w x| / 2**t) * 2**t``, then the sign, as the hardware
  truncates magnitudes; the sum with ``ReduceSum`` (or one ``MatMul`` where no connection
  is approximated) plus the bias;
* the shift ``Floor(acc / 2**s)`` (an arithmetic right shift), QReLU a ``Clip``,
  activation truncation and the comparators' dropped bits ``Floor(v / 2**k) * 2**k``;
* ``ArgMax`` (``select_last_index=0``: the lower index wins a tie, like the RTL).

Division by a power of two and ``Floor`` are exact in float64, so the model is bit-exact
with the golden model on every input, not only on the test vectors.
"""

from __future__ import annotations

import numpy as np

from ..core.ir import MLP
from ..errors import ModelError

#: Opset of the exported graph (BitwiseAnd needs 18).
OPSET = 18
#: Largest magnitude a float64 holds exactly.
F64_EXACT = 1 << 53


def check_exact(ir: MLP) -> None:
    """Refuse a design whose products or sums could leave the exact float64 range."""
    from ..core.ranges import analyze

    for k, layer in enumerate(analyze(ir)):
        for j, n in enumerate(layer):
            if max(abs(n.acc_lo), abs(n.acc_hi)) >= F64_EXACT:
                raise ModelError(f"layer[{k}].neuron[{j}]'s accumulator can reach 2**53, past float64's exact range; "
                                 "this design cannot be exported to ONNX exactly")


def export_onnx(ir: MLP, *, producer: str = "approxmlp"):
    """The ``onnx.ModelProto`` of ``ir`` (see the module docstring), checked with
    ``onnx.checker``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    check_exact(ir)
    nodes, inits = [], []
    counter = [0]

    def const(name: str, value: np.ndarray) -> str:
        counter[0] += 1
        full = f"{name}_{counter[0]}"
        inits.append(numpy_helper.from_array(np.asarray(value), full))
        return full

    def node(op: str, inputs: list[str], name: str, **attrs) -> str:
        counter[0] += 1
        out = f"{name}_{counter[0]}"
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def floor_to(x: str, bits: np.ndarray, name: str, shape: tuple[int, ...]) -> str:
        """``floor(x / 2**bits) * 2**bits`` per element (``bits`` broadcast to ``shape``)."""
        p = const(f"{name}_pow", np.ldexp(np.ones(shape), np.asarray(bits).reshape(shape)).astype(np.float64))
        return node("Mul", [node("Floor", [node("Div", [x, p], f"{name}_div")], f"{name}_floor"), p], name)

    x_int = "codes"
    x_f = node("Cast", [x_int], "codes_f", to=TensorProto.DOUBLE)
    for k, layer in enumerate(ir.layers):
        W = layer.weight_matrix.astype(np.int64)
        masks = layer.mask_matrix
        truncs = np.array([a.product_trunc for a in layer.approx], dtype=np.int64)
        tag = f"l{k}"
        if masks is None and not truncs.any():
            acc = node("MatMul", [x_f, const(f"{tag}_wT", W.T.astype(np.float64))], f"{tag}_mm")
        else:
            xu = node("Unsqueeze", [x_int, const(f"{tag}_ax1", np.array([1], dtype=np.int64))], f"{tag}_xu")
            if masks is not None:
                xu = node("BitwiseAnd", [xu, const(f"{tag}_masks", masks.astype(np.int64))], f"{tag}_masked")
            xm = node("Cast", [xu], f"{tag}_xm", to=TensorProto.DOUBLE)
            mag = node("Mul", [xm, const(f"{tag}_absw", np.abs(W).astype(np.float64))], f"{tag}_mag")
            if truncs.any():
                mag = floor_to(mag, truncs, f"{tag}_trunc", (W.shape[0], 1))
            prod = node("Mul", [mag, const(f"{tag}_sign", np.sign(W).astype(np.float64))], f"{tag}_prod")
            acc = node("ReduceSum", [prod, const(f"{tag}_ax2", np.array([2], dtype=np.int64))], f"{tag}_sum",
                       keepdims=0)
        acc = node("Add", [acc, const(f"{tag}_b", layer.bias_vector.astype(np.float64))], f"{tag}_acc")
        v = acc
        if layer.shift:
            p = const(f"{tag}_shiftpow", np.array([2.0 ** layer.shift]))
            v = node("Floor", [node("Div", [acc, p], f"{tag}_sdiv")], f"{tag}_shifted")
        if layer.activation == "qrelu":
            v = node("Clip", [v, const(f"{tag}_lo", np.array(0.0)),
                              const(f"{tag}_hi", np.array(float((1 << layer.act_bits) - 1)))], f"{tag}_qrelu")
            at = np.array([a.act_trunc for a in layer.approx], dtype=np.int64)
            if at.any():
                v = floor_to(v, at, f"{tag}_atrunc", (layer.n_out,))
        x_f = v
        if k < len(ir.layers) - 1 and _needs_int(ir.layers[k + 1]):
            x_int = node("Cast", [v], f"{tag}_int", to=TensorProto.INT64)
    drop = np.array([a.cmp_drop for a in ir.layers[-1].approx], dtype=np.int64)
    scores = floor_to(x_f, drop, "cmp_drop", (ir.n_classes,)) if drop.any() else x_f
    nodes.append(helper.make_node("Identity", [scores], ["scores"], name="scores"))
    nodes.append(helper.make_node("ArgMax", ["scores"], ["class"], name="argmax", axis=1, keepdims=0,
                                  select_last_index=0))
    graph = helper.make_graph(
        nodes, ir.name,
        [helper.make_tensor_value_info("codes", TensorProto.INT64, ["N", ir.n_inputs])],
        [helper.make_tensor_value_info("class", TensorProto.INT64, ["N"]),
         helper.make_tensor_value_info("scores", TensorProto.DOUBLE, ["N", ir.n_classes])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name=producer)
    model.ir_version = 8
    helper.set_model_props(model, {"approxmlp.ir_sha256": ir.digest, "approxmlp.input_bits": str(ir.input_bits),
                                   "approxmlp.input": "codes: int64 input codes, see quantizer.json"})
    onnx.checker.check_model(model, full_check=True)
    return model


def _needs_int(layer) -> bool:
    return layer.mask_matrix is not None or any(a.product_trunc for a in layer.approx)


def run_onnx(model, codes: np.ndarray) -> np.ndarray:
    """Classes onnxruntime computes for ``codes`` with the exported ``model``."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(["class"], {"codes": np.asarray(codes, dtype=np.int64)})[0].astype(np.int64)


def write_onnx(ir: MLP, path, *, check_codes: np.ndarray | None = None) -> dict:
    """Write ``ir`` as ONNX to ``path`` (atomically); with ``check_codes``, run it with
    onnxruntime on them and compare with the golden model (a mismatch is an error)."""
    import os
    import tempfile
    from pathlib import Path

    from .. import __version__
    from ..core.golden import predict

    model = export_onnx(ir, producer=f"approxmlp {__version__}")
    out: dict = {"file": Path(path).name, "opset": OPSET}
    if check_codes is not None and len(check_codes):
        got, want = run_onnx(model, check_codes), predict(ir, check_codes)
        bad = int(np.sum(got != want))
        if bad:
            raise ModelError(f"internal error: the exported ONNX model disagrees with the golden model on {bad} of "
                             f"{len(want)} vectors; please report this")
        out.update(vectors=int(len(want)), mismatches=0)
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    os.close(fd)
    try:
        Path(tmp).write_bytes(model.SerializeToString())
        os.replace(tmp, p)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out
