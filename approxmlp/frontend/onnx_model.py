"""ONNX in: an MLP graph as the common exporters write it, read safely, as a chain of steps.

**Reading** (:func:`~approxmlp.frontend.onnx_file.read_onnx`): safely, see
:mod:`.onnx_file`; the steps it is read into are :mod:`.onnx_chain`'s.

**The graph** (:func:`walk`) must be a chain from its one input: an optional ``Cast``,
``Flatten`` or ``Reshape`` of the input, then dense layers (``Gemm``, or ``MatMul`` +
``Add``), each hidden one followed by ``Relu``, and a tail that only reads the logits
(``Softmax``, ``ArgMax``, ``ZipMap``... ignored: the argmax already is the decision). A
one-output last layer followed by ``Sigmoid`` (scikit-learn's binary classifier) becomes
two logits ``[0, z]``: class 1 exactly where the sigmoid passes 0.5. QONNX ``Quant`` nodes
are kept as steps for :mod:`approxmlp.frontend.qonnx_model`.

**Float models** (:func:`float_mlp`, called by :func:`approxmlp.frontend.loader.load_onnx`) become the same :class:`FloatMLP` a state_dict does
and are quantized by the same PTQ (:mod:`approxmlp.frontend.quantize`); a graph with QONNX
``Quant`` nodes is compiled as it is quantized (:mod:`approxmlp.frontend.qonnx_model`).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..errors import ModelError
from .onnx_chain import ROUNDING, ActQuant, Chain, Const, Dense, QuantParams, Relu

#: Domains of QONNX's quantization operators (Brevitas' export writes the first).
QONNX_DOMAINS = ("qonnx.custom_op.general", "onnx.brevitas", "finn.custom_op.general")
#: Operators that may follow the last dense layer: they only read the logits.
TAIL_OPS = frozenset({"Softmax", "LogSoftmax", "Sigmoid", "ArgMax", "ZipMap", "ArrayFeatureExtractor",
                      "Cast", "Identity", "Reshape", "Concat", "Sub", "Flatten", "Squeeze", "Unsqueeze",
                      "Normalizer", "LabelEncoder", "TopK"})
#: Operators that pass the input through unchanged in value (shape aside).
_INPUT_OPS = frozenset({"Cast", "Identity", "Flatten", "Reshape"})
_FLOAT_TYPES = (1, 10, 11, 16)  # float, float16, double, bfloat16
_FIX = "export a chain of Linear/ReLU layers (torch.onnx.export of an nn.Sequential, or skl2onnx of an MLPClassifier)"


# ----------------------------------------------------------------------------- the chain
def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def _node_name(node: Any, k: int) -> str:
    return node.name or f"#{k} ({node.op_type})"


def walk(source: str, model: Any) -> Chain:
    """The chain of steps of ``model`` (see the module docstring); anything else is refused
    with the operator and node that break it."""
    from onnx import numpy_helper

    g = model.graph
    consts: dict[str, np.ndarray] = {}
    for t in g.initializer:
        consts[t.name] = _finite(source, t.name, numpy_helper.to_array(t))
    nodes = list(g.node)
    names = {id(n): _node_name(n, k) for k, n in enumerate(nodes)}
    qconsts: dict[str, Const] = {}
    used: set[int] = set()
    for n in nodes:  # constants: Constant nodes and Quant nodes of constants
        if n.op_type == "Constant" and n.domain in ("", "ai.onnx"):
            a = _attrs(n)
            if "value" not in a:
                raise ModelError(f"{source}: Constant node {names[id(n)]!r} has no tensor value; re-export the model")
            consts[n.output[0]] = _finite(source, n.output[0], numpy_helper.to_array(a["value"]))
            used.add(id(n))
    for n in nodes:
        if n.op_type == "Quant" and n.domain in QONNX_DOMAINS and n.input[0] in consts:
            qconsts[n.output[0]] = Const(n.input[0], consts[n.input[0]], _quant_params(source, n, names[id(n)], consts))
            used.add(id(n))
    inputs = [i for i in g.input if i.name not in consts]
    if len(inputs) != 1:
        raise ModelError(f"{source}: the graph has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); "
                         f"an MLP has one; {_FIX}")
    inp = inputs[0]
    n_features = _input_features(source, inp)
    consumers: dict[str, list] = {}
    for n in nodes:
        if id(n) in used:
            continue
        for name in n.input:
            consumers.setdefault(name, []).append(n)
    outputs = {o.name for o in g.output}
    chain = Chain(source=source, input_name=inp.name, n_features=n_features,
                  metadata={p.key: p.value for p in model.metadata_props})
    cur, seen_dense = inp.name, False
    pending: Dense | None = None   # a MatMul waiting for its Add
    visited: set[int] = set()

    def const(name: str, node: Any) -> Const:
        if name in qconsts:
            return qconsts[name]
        if name in consts:
            return Const(name, consts[name])
        raise ModelError(f"{source}: node {names[id(node)]!r} ({node.op_type}) takes {name!r} from the data path "
                         f"where a constant was expected: not a chain of dense layers; {_FIX}")

    while True:
        users = consumers.get(cur, [])
        if not users:
            break
        nxt = users[0]
        if len(users) > 1:
            if seen_dense and all(u.op_type in TAIL_OPS for u in users):
                break
            raise ModelError(f"{source}: tensor {cur!r} feeds {len(users)} nodes ("
                             + ", ".join(f"{names[id(u)]!r} {u.op_type}" for u in users)
                             + f"): not a chain of dense layers; {_FIX}")
        op, name = nxt.op_type, names[id(nxt)]
        if id(nxt) in visited:
            raise ModelError(f"{source}: node {name!r} ({op}) closes a cycle: not a chain of dense layers; {_FIX}")
        if nxt.domain not in ("", "ai.onnx") and not (op == "Quant" and nxt.domain in QONNX_DOMAINS):
            if seen_dense and nxt.domain == "ai.onnx.ml" and op in TAIL_OPS:
                break
            raise ModelError(f"{source}: unsupported operator {nxt.domain}.{op} (node {name!r}); {_FIX}")
        if pending is not None and op != "Add":
            chain.steps.append(pending)
            pending = None
        if op in ("Gemm", "MatMul"):
            if nxt.input[0] != cur:
                raise ModelError(f"{source}: node {name!r} ({op}) multiplies a constant by the data; "
                                 f"a dense layer takes the data as its first operand; {_FIX}")
            a = _attrs(nxt)
            if a.get("transA", 0):
                raise ModelError(f"{source}: node {name!r} (Gemm) has transA=1; re-export with the data as A")
            W = const(nxt.input[1], nxt)
            if W.value.ndim != 2:
                raise ModelError(f"{source}: node {name!r} ({op}) has a {W.value.ndim}-D weight {W.name!r}; "
                                 "a dense layer's weight is 2-D (mismatched shapes)")
            dense = Dense(name, W, None, transposed=(op == "MatMul" or not a.get("transB", 0)),
                          alpha=float(a.get("alpha", 1.0)), beta=float(a.get("beta", 1.0)))
            if op == "Gemm" and len(nxt.input) > 2 and nxt.input[2]:
                dense = Dense(name, W, const(nxt.input[2], nxt), dense.transposed, dense.alpha, dense.beta)
                chain.steps.append(dense)
            elif op == "Gemm":
                chain.steps.append(dense)
            else:
                pending = dense
            seen_dense = True
        elif op == "Add":
            if pending is None:
                raise ModelError(f"{source}: node {name!r} (Add) is not the bias of a MatMul: not a chain of "
                                 f"dense layers; {_FIX}")
            other = nxt.input[1] if nxt.input[0] == cur else nxt.input[0]
            chain.steps.append(Dense(pending.node, pending.weight, const(other, nxt), True))
            pending = None
        elif op == "Relu":
            chain.steps.append(Relu(name))
        elif op == "Quant":
            chain.steps.append(ActQuant(_quant_params(source, nxt, name, consts)))
        elif op in _INPUT_OPS and not seen_dense:
            if op == "Cast" and _attrs(nxt).get("to") not in _FLOAT_TYPES:
                raise ModelError(f"{source}: node {name!r} casts the input to a non-float type; {_FIX}")
        elif op == "Sigmoid" and seen_dense:
            chain.binary_sigmoid = True
            break
        elif op in TAIL_OPS and seen_dense:
            break
        else:
            raise ModelError(f"{source}: unsupported operator {op} (node {name!r}); {_FIX}")
        visited.add(id(nxt))
        cur = nxt.output[0]
        if cur in outputs and not consumers.get(cur):
            break
    if pending is not None:
        chain.steps.append(pending)
    for n in nodes:
        if id(n) not in used and id(n) not in visited and n.op_type not in TAIL_OPS:
            raise ModelError(f"{source}: unsupported operator {n.op_type} (node {names[id(n)]!r}) outside the "
                             f"chain of dense layers; {_FIX}")
    if not any(isinstance(s, Dense) for s in chain.steps):
        raise ModelError(f"{source}: no dense layer (Gemm or MatMul) found from input {inp.name!r}; {_FIX}")
    return chain


def _input_features(source: str, inp: Any) -> int:
    tt = inp.type.tensor_type
    if not inp.type.HasField("tensor_type") or tt.elem_type not in _FLOAT_TYPES + (6, 7):
        raise ModelError(f"{source}: input {inp.name!r} is not a float tensor; {_FIX}")
    if not tt.HasField("shape") or len(tt.shape.dim) < 2:
        raise ModelError(f"{source}: input {inp.name!r} has no (batch, features) shape (dynamic or unknown "
                         "shape); export with a fixed number of features")
    n = 1
    for k, d in enumerate(tt.shape.dim[1:], start=1):
        if not d.HasField("dim_value") or d.dim_value < 1:
            label = d.dim_param or "?"
            raise ModelError(f"{source}: input {inp.name!r} has a dynamic dimension {k} ({label!r}); only the batch "
                             "dimension may be dynamic: export with a fixed number of features")
        n *= d.dim_value
    return n


def _finite(source: str, name: str, a: np.ndarray) -> np.ndarray:
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ModelError(f"{source}: initializer {name!r} contains NaN or inf; retrain or repair the model")
    return a


def _quant_params(source: str, node: Any, name: str, consts: dict[str, np.ndarray]) -> QuantParams:
    a = _attrs(node)
    vals = []
    for k, what in ((1, "scale"), (2, "zero point"), (3, "bit width")):
        if len(node.input) <= k or node.input[k] not in consts:
            raise ModelError(f"{source}: Quant node {name!r} has a {what} that is not a constant; re-export the model")
        vals.append(np.asarray(consts[node.input[k]], dtype=np.float64))
    scale, zp, bits = vals
    if bits.size != 1 or float(bits.reshape(-1)[0]) != int(bits.reshape(-1)[0]) or not 1 <= bits.reshape(-1)[0] <= 32:
        raise ModelError(f"{source}: Quant node {name!r} has bit width {bits.reshape(-1)[:3].tolist()}, not an integer "
                         "in 1..32; re-export the model")
    rounding = str(a.get("rounding_mode", "ROUND")).upper()
    if rounding not in ROUNDING:
        raise ModelError(f"{source}: Quant node {name!r} has rounding mode {rounding!r}, which this importer does not "
                         f"know ({', '.join(ROUNDING)})")
    if not (np.all(scale > 0) and np.isfinite(scale).all()):
        raise ModelError(f"{source}: Quant node {name!r} has a non-positive or non-finite scale "
                         f"({node.input[1]!r}); re-export the model")
    return QuantParams(node=name, scale=scale, zero_point=zp, bits=float(bits.reshape(-1)[0]),
                       signed=bool(a.get("signed", 1)), narrow=bool(a.get("narrow", 0)), rounding=rounding,
                       scale_name=node.input[1])


# ----------------------------------------------------------------------------- float models
def float_mlp(chain: Chain, sha256: str | None = None):
    """The :class:`FloatMLP` of a float chain: Dense (Relu Dense)*."""
    from .float_model import FloatMLP

    source = chain.source
    layers, names = [], []
    steps = list(chain.steps)
    for k, s in enumerate(steps):
        if isinstance(s, ActQuant):
            raise ModelError(f"{source}: internal error: a Quant node in a float chain")
        if isinstance(s, Relu):
            prev = steps[k - 1] if k else None
            if not isinstance(prev, Dense):
                raise ModelError(f"{source}: node {s.node!r} (Relu) does not follow a dense layer: not a chain of "
                                 f"dense layers; {_FIX}")
            if k == len(steps) - 1:
                raise ModelError(f"{source}: node {s.node!r} (Relu) follows the last dense layer; the last layer "
                                 "must give linear logits (drop the final ReLU)")
            continue
        if layers and not isinstance(steps[k - 1], Relu):
            raise ModelError(f"{source}: dense node {s.node!r} follows dense node {steps[k - 1].node!r} without a Relu "
                             f"between them: not a chain of Linear/ReLU layers; {_FIX}")
        W = s.float_weight()
        layers.append((W, s.float_bias(W.shape[0])))
        names.append(s.weight.name.removesuffix(".weight") if s.weight.name.endswith(".weight") else s.node)
    W0 = layers[0][0]
    if W0.shape[1] != chain.n_features:
        raise ModelError(f"{source}: the input has {chain.n_features} features but the first dense node "
                         f"{steps[0].node!r} takes {W0.shape[1]} (mismatched shapes); re-export the model")
    for k in range(1, len(layers)):
        if layers[k][0].shape[1] != layers[k - 1][0].shape[0]:
            raise ModelError(f"{source}: dense layer {k} takes {layers[k][0].shape[1]} inputs but layer {k - 1} "
                             f"gives {layers[k - 1][0].shape[0]} (mismatched shapes); re-export the model")
    if chain.binary_sigmoid:
        layers[-1] = binary_logits(source, *layers[-1])
    return FloatMLP(layers=tuple(layers), metadata=metadata_of(chain), names=tuple(names), source=source,
                    sha256=sha256)


def binary_logits(source: str, W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A one-output logistic layer as two logits ``[0, z]``: argmax picks class 1 exactly
    where ``sigmoid(z) > 0.5`` (``z = 0`` goes to class 0, as scikit-learn decides)."""
    if W.shape[0] != 1:
        raise ModelError(f"{source}: a Sigmoid output over {W.shape[0]} units is multi-label, not a classifier; "
                         "train a softmax classifier")
    return np.vstack([np.zeros_like(W), W]), np.concatenate([[0.0], b])


def metadata_of(chain: Chain) -> dict[str, Any]:
    """``input_lo``/``input_hi``/``class_names`` from the model's ``metadata_props``
    (``approxmlp.*`` keys, JSON values), as a state_dict's metadata would give them."""
    out = {}
    for key in ("input_lo", "input_hi", "class_names"):
        v = chain.metadata.get(f"approxmlp.{key}")
        if v is not None:
            try:
                out[key] = json.loads(v)
            except ValueError:
                raise ModelError(f"{chain.source}: metadata 'approxmlp.{key}' is not JSON; fix or drop it") from None
    return out
