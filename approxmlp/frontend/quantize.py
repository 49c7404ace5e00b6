"""Float PyTorch MLP in, integer IR out: import and post-training quantization (PTQ).

**Import** (:func:`load_model`) reads a ``torch.save``'d state_dict of Linear layers,
optionally wrapped as ``{"state_dict": ..., "metadata": {...}}``, with
``torch.load(weights_only=True)`` only: a model file is untrusted input, and a pickle that
needs code to load is refused rather than executed. Hidden layers are taken to be followed
by ReLU and the last layer to produce logits; a state_dict cannot say otherwise, so a
model trained with another activation will quantize to the wrong function.

**PTQ** (:func:`quantize_ptq`) maps that float model onto the IR semantics of
:mod:`approxmlp.core.ir` with power-of-two scales only, so that every rescale is a shift:

1. the input quantizer's affine map ``x = lo + q * step`` is folded into the first layer,
   so the integer inputs need no arithmetic and the float model still sees the raw
   features it was trained on;
2. per layer, weights get a power-of-two scale ``s_w`` that fits ``weight_bits`` signed,
   biases sit at accumulator scale ``s_prev * s_w``, and a hidden layer's shift is the
   smallest that fits the calibration maximum of its ReLU output into ``act_bits``
   unsigned (round to nearest via a bias offset of ``2**(shift-1)``);
3. the last layer stays at accumulator scale (shift 0, linear): the argmax needs no
   rescale and every dropped bit could only flip a decision.

**Integer models** (``approxmlp train``'s output, :class:`IntegerModel`) are already
quantized: ``{"format": INTEGER_MODEL_FORMAT, "tensors": {"layers.K.weight"/"bias": int64},
"metadata": {...}}`` with the shifts, activations and bit widths, the input quantizer and the
IR digest in the JSON-able metadata. :func:`load_model` recognises them and returns the IR
as is; nothing is re-quantized.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..core import golden
from ..frontend.data import InputQuantizer, check_bits
from ..errors import DataError, ModelError
from ..core.ir import MAX_BIAS_BITS, MAX_DATA_BITS, MLP, Layer

#: Weights wider than this buy nothing for printed/FPGA MLPs and slow the search.
MAX_PTQ_WEIGHT_BITS = 16
#: ``quantization`` value recorded in the IR meta.
PTQ_SCHEME = "ptq-pow2-per-layer"

#: How torch.save's files begin: a zip archive (the default) or a pickle (protocol 2+).
_TORCH_MAGIC = (b"PK\x03\x04", b"\x80")
_RESAVE = "save a state_dict instead (torch.save(model.state_dict(), path))"
_BATCHNORM_KEYS = ("running_mean", "running_var", "num_batches_tracked")


# ----------------------------------------------------------------------------- float model
@dataclass(frozen=True, eq=False)
class FloatMLP:
    """A float MLP: ``layers[k] = (W (out, in), b (out,))`` in float64, ReLU after every
    layer but the last, which gives logits.

    ``names[k]`` is the state_dict prefix of layer ``k`` (e.g. ``"0"`` for ``0.weight``) so
    errors can name the tensor; ``source`` is where the model came from and ``sha256`` the
    hash of that file, recorded in the IR as provenance.
    """

    layers: tuple[tuple[np.ndarray, np.ndarray], ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)
    names: tuple[str, ...] = ()
    source: str = "model"
    sha256: str | None = None

    def __post_init__(self) -> None:
        layers = tuple((np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64)) for W, b in self.layers)
        names = tuple(self.names) or tuple(f"layer{k}" for k in range(len(layers)))
        object.__setattr__(self, "names", names)
        if not layers:
            raise ModelError(f"{self.source}: no Linear layers found; save the state_dict of an "
                             "nn.Sequential(nn.Linear, nn.ReLU, ..., nn.Linear)")
        if len(names) != len(layers):
            raise ModelError(f"{self.source}: {len(names)} layer names for {len(layers)} layers")
        for k, ((W, b), name) in enumerate(zip(layers, names)):
            _check_layer(self.source, k, name, W, b, layers[k - 1][0].shape[0] if k else None)
            W.setflags(write=False)
            b.setflags(write=False)
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "metadata", _check_metadata(self.source, dict(self.metadata),
                                                             layers[0][0].shape[1], layers[-1][0].shape[0]))

    @classmethod
    def from_state_dict(cls, state_dict: Mapping[str, Any], metadata: Mapping[str, Any] | None = None, *,
                        source: str = "state_dict", sha256: str | None = None) -> "FloatMLP":
        """Group ``<prefix>.weight`` / ``<prefix>.bias`` tensors into layers, in key order.

        Any prefix works (``0.``, ``net.fc1.``...); a missing bias is zero. Everything that
        is not a 2-D weight or a 1-D bias is refused, because PTQ would silently compute a
        different function without it (batch norm, convolutions...)."""
        if not isinstance(state_dict, Mapping):
            raise ModelError(f"{source} holds a {type(state_dict).__name__} where a state_dict was expected; {_RESAVE}")
        # Names first: a batch-norm layer is best recognised by its running statistics,
        # which come after its 1-D weight in key order.
        split = {key: _split_key(source, key) for key in state_dict}
        groups: dict[str, dict[str, np.ndarray]] = {}
        for key, (prefix, leaf) in split.items():
            groups.setdefault(prefix, {})[leaf] = _tensor_to_numpy(source, key, state_dict[key], leaf)
        layers, names = [], []
        for prefix, tensors in groups.items():
            if "weight" not in tensors:
                raise ModelError(f"{source}: {_key(prefix, 'bias')!r} has no matching {_key(prefix, 'weight')!r}; "
                                 f"{_RESAVE}")
            W = tensors["weight"]
            layers.append((W, tensors.get("bias", np.zeros(W.shape[0]))))
            names.append(prefix)
        return cls(layers=tuple(layers), metadata=dict(metadata or {}), names=tuple(names), source=source,
                   sha256=sha256)

    def state_dict(self) -> dict[str, Any]:
        """The layers as a ``torch`` state_dict with this model's key prefixes."""
        import torch

        sd = {}
        for name, (W, b) in zip(self.names, self.layers):
            sd[_key(name, "weight")] = torch.tensor(W)
            sd[_key(name, "bias")] = torch.tensor(b)
        return sd

    @property
    def n_inputs(self) -> int:
        return self.layers[0][0].shape[1]

    @property
    def n_classes(self) -> int:
        return self.layers[-1][0].shape[0]

    @property
    def topology(self) -> tuple[int, ...]:
        return (self.n_inputs,) + tuple(W.shape[0] for W, _ in self.layers)

    def logits(self, X: np.ndarray) -> np.ndarray:
        """Float forward pass on raw features ``(N, n_inputs)``."""
        h = np.asarray(X, dtype=np.float64)
        for k, (W, b) in enumerate(self.layers):
            h = h @ W.T + b
            if k < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        return h

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.argmax(self.logits(X), axis=1).astype(np.int64)

    def input_quantizer(self, bits: int) -> InputQuantizer | None:
        """The quantizer the model's metadata prescribes (``input_lo``/``input_hi``), if any:
        a model trained on scaled inputs knows its own scaling better than the data does."""
        if "input_lo" not in self.metadata or "input_hi" not in self.metadata:
            return None
        return InputQuantizer(lo=np.asarray(self.metadata["input_lo"]), hi=np.asarray(self.metadata["input_hi"]),
                              bits=bits)


def _key(prefix: str, leaf: str) -> str:
    return f"{prefix}.{leaf}" if prefix else leaf


def _split_key(source: str, key: Any) -> tuple[str, str]:
    if not isinstance(key, str):
        raise ModelError(f"{source}: state_dict key {key!r} is not a string; {_RESAVE}")
    prefix, _, leaf = key.rpartition(".")
    if leaf not in ("weight", "bias"):
        hint = ("batch-norm statistics: fold batch norm into the preceding Linear layer before saving"
                if leaf in _BATCHNORM_KEYS else "only nn.Linear weights and biases are supported")
        raise ModelError(f"{source}: tensor {key!r} is not a Linear weight or bias ({hint})")
    return prefix, leaf


def _tensor_to_numpy(source: str, key: str, value: Any, leaf: str) -> np.ndarray:
    """A float64 copy of one tensor, refusing shapes no Linear layer has."""
    import torch

    if not isinstance(value, torch.Tensor):
        raise ModelError(f"{source}: entry {key!r} is of type {type(value).__name__}, not a tensor; {_RESAVE}")
    shape = tuple(value.shape)
    if leaf == "weight" and len(shape) != 2:
        what = ("a normalization layer's scale?" if len(shape) == 1
                else "a convolution kernel?" if len(shape) >= 3 else "a scalar?")
        raise ModelError(f"{source}: tensor {key!r} has shape {shape} ({what}); only nn.Linear layers "
                         "(2-D weights) are supported")
    if leaf == "bias" and len(shape) != 1:
        raise ModelError(f"{source}: tensor {key!r} has shape {shape}; a Linear bias is 1-D")
    if value.is_complex() or value.is_quantized:
        raise ModelError(f"{source}: tensor {key!r} is {value.dtype}; save the float model's state_dict")
    return value.detach().to(torch.float64).cpu().numpy().copy()


def _check_layer(source: str, k: int, name: str, W: np.ndarray, b: np.ndarray, prev_out: int | None) -> None:
    """Shapes chain and values are finite; messages name the state_dict tensor."""
    wk, bk = _key(name, "weight"), _key(name, "bias")
    if W.ndim != 2 or W.shape[0] < 1 or W.shape[1] < 1:
        raise ModelError(f"{source}: {wk!r} has shape {W.shape}; a Linear weight is 2-D (out, in) and non-empty")
    if b.shape != (W.shape[0],):
        raise ModelError(f"{source}: {bk!r} has shape {b.shape} but {wk!r} has {W.shape[0]} outputs; "
                         "the bias needs one entry per output")
    if prev_out is not None and W.shape[1] != prev_out:
        raise ModelError(f"{source}: layer {k} ({wk!r}) takes {W.shape[1]} inputs but layer {k - 1} produces "
                         f"{prev_out}; the tensors must come from consecutive Linear layers in order")
    for key, a in ((wk, W), (bk, b)):
        if not np.isfinite(a).all():
            raise ModelError(f"{source}: tensor {key!r} contains NaN or inf; retrain or repair the model")


def _check_metadata(source: str, meta: dict[str, Any], n_inputs: int, n_classes: int) -> dict[str, Any]:
    """Plain-Python metadata (tensors become lists), with the lengths the model implies."""
    out = {str(k): (v.tolist() if hasattr(v, "tolist") else v) for k, v in meta.items()}
    for key in ("input_lo", "input_hi"):
        if key in out:
            v = out[key]
            if (not isinstance(v, (list, tuple)) or len(v) != n_inputs
                    or not all(isinstance(x, (int, float)) and math.isfinite(x) for x in v)):
                raise ModelError(f"{source}: metadata {key!r} must be a list of {n_inputs} finite numbers "
                                 "(one per model input); fix the metadata")
    if "class_names" in out and (not isinstance(out["class_names"], (list, tuple))
                                 or len(out["class_names"]) != n_classes):
        raise ModelError(f"{source}: metadata 'class_names' must list {n_classes} names (one per output); "
                         "fix the metadata")
    return out


# ----------------------------------------------------------------------------- load / save
def load_model(path: str | Path) -> "FloatMLP | IntegerModel":
    """Read a float MLP saved with ``torch.save`` (see the module docstring), or an
    integer model written by ``approxmlp train`` (:class:`IntegerModel`, recognised by its
    ``format`` entry), which is compiled as is, without re-quantization.

    The file is read once, hashed (the hash goes into the IR as provenance) and
    unpickled with ``weights_only=True``; there is deliberately no fallback to
    ``weights_only=False``."""
    p = Path(path)
    if not p.exists():
        raise ModelError(f"model file {p} not found; check the path")
    if p.is_dir():
        raise ModelError(f"model path {p} is a folder; give the .pt file saved with torch.save")
    data = p.read_bytes()
    obj = _torch_load(p, data)
    if isinstance(obj, Mapping) and "format" in obj:
        return _integer_model(p, obj, hashlib.sha256(data).hexdigest())
    state_dict, metadata = _unwrap(p, obj)
    return FloatMLP.from_state_dict(state_dict, metadata, source=str(p), sha256=hashlib.sha256(data).hexdigest())


def _torch_load(p: Path, data: bytes) -> Any:
    import torch

    if not data:
        raise ModelError(f"{p} is empty; re-save the model with torch.save(model.state_dict(), path)")
    if not data.startswith(_TORCH_MAGIC):
        raise ModelError(f"{p} is not a PyTorch file (neither torch.save's zip archive nor a pickle); "
                         "give the file written by torch.save(model.state_dict(), path)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pickle-protocol chatter for non-zip files
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch words every refusal "weights only load failed": a global (a function or
        # class to import) or a bare pickle (torch.save writes zip archives) needs code;
        # a zip archive failing otherwise is damaged
        if "global" in str(exc).lower() or data.startswith(b"\x80"):
            raise ModelError(f"{p}: refusing to run code from the model file; {_RESAVE}") from None
        reason = exc
    except Exception as exc:  # torch reports corrupt files with many exception types
        reason = exc
    first = (str(reason).strip().splitlines() or [type(reason).__name__])[0][:120]
    raise ModelError(f"{p} is not a readable PyTorch file, or is truncated ({first}); "
                     "re-save it with torch.save(model.state_dict(), path)")


def _unwrap(p: Path, obj: Any) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """``(state_dict, metadata)`` from a plain state_dict or the wrapped form."""
    if not isinstance(obj, Mapping):
        raise ModelError(f"{p} holds a {type(obj).__name__} where a state_dict was expected; {_RESAVE}")
    if "state_dict" not in obj:
        return obj, {}
    meta = obj.get("metadata", {})
    if not isinstance(meta, Mapping):
        raise ModelError(f"{p}: 'metadata' is of type {type(meta).__name__}, not a dict; save a dict of plain values")
    return obj["state_dict"], meta


def save_model(path: str | Path, model: FloatMLP | Mapping[str, Any],
               metadata: Mapping[str, Any] | None = None) -> None:
    """Write ``{"state_dict": ..., "metadata": ...}`` in the form :func:`load_model` reads
    (``model`` is a :class:`FloatMLP` or a torch state_dict, e.g. ``module.state_dict()``)."""
    import torch

    if isinstance(model, FloatMLP):
        meta = dict(model.metadata)
        state_dict = model.state_dict()
    else:
        meta, state_dict = {}, dict(model)
    meta.update(metadata or {})
    torch.save({"state_dict": state_dict, "metadata": meta}, Path(path))


# ----------------------------------------------------------------------------- integer models
#: ``format`` entry of the integer model files written by ``approxmlp train``.
INTEGER_MODEL_FORMAT = "approxmlp-integer-mlp/1"


@dataclass(frozen=True, eq=False)
class IntegerModel:
    """An already quantized MLP (``approxmlp train``'s output): the IR to compile as is,
    the input quantizer it was trained with, and the file's metadata (bit widths, training
    summary...)."""

    ir: MLP
    quantizer: InputQuantizer
    metadata: Mapping[str, Any] = field(default_factory=dict)
    source: str = "model"
    sha256: str | None = None

    @property
    def n_inputs(self) -> int:
        return self.ir.n_inputs

    @property
    def n_classes(self) -> int:
        return self.ir.n_classes

    @property
    def topology(self) -> tuple[int, ...]:
        return self.ir.topology

    @property
    def weight_bits(self) -> int:
        """The trained weight width (metadata), else the width the integers need."""
        wb = self.metadata.get("weight_bits")
        if isinstance(wb, int) and not isinstance(wb, bool):
            return wb
        from ..core.ir import signed_width

        return max(signed_width(int(layer.weight_matrix.min(initial=0)), int(layer.weight_matrix.max(initial=0)))
                   for layer in self.ir.layers)

    @property
    def act_bits(self) -> int:
        hidden = [layer.act_bits for layer in self.ir.layers if layer.activation == "qrelu"]
        return max(hidden) if hidden else self.ir.layers[-1].act_bits

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Classes of raw features, through the input quantizer and the golden model."""
        return golden.predict(self.ir, self.quantizer(X))


def save_integer_model(path: str | Path, ir: MLP, quantizer: InputQuantizer,
                       metadata: Mapping[str, Any] | None = None) -> None:
    """Write ``ir`` + ``quantizer`` as ``{"format", "tensors", "metadata"}``: int64 weight and
    bias tensors, everything else plain JSON-able values, so that ``torch.load(...,
    weights_only=True)`` reads it and :func:`load_model` returns an :class:`IntegerModel`.
    The file appears atomically (written next to ``path``, then renamed)."""
    import os
    import tempfile

    import torch

    if quantizer.n_features != ir.n_inputs or quantizer.bits != ir.input_bits:
        raise ModelError(f"the input quantizer ({quantizer.n_features} features, {quantizer.bits} bits) does not "
                         f"fit the IR ({ir.n_inputs} inputs, {ir.input_bits} bits)")
    doc = ir.to_json()
    tensors, layers = {}, []
    for k, (layer, ld) in enumerate(zip(ir.layers, doc["layers"])):
        tensors[f"layers.{k}.weight"] = torch.tensor(layer.weight_matrix, dtype=torch.int64)
        tensors[f"layers.{k}.bias"] = torch.tensor(layer.bias_vector, dtype=torch.int64)
        layers.append({key: v for key, v in ld.items() if key not in ("weights", "biases")})
    meta = dict(metadata or {})
    meta.update({"name": ir.name, "n_inputs": ir.n_inputs, "input_bits": ir.input_bits, "layers": layers,
                 "ir_meta": dict(ir.meta), "ir_sha256": ir.digest, "input_quantizer": quantizer.to_json()})
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    except OSError as exc:  # not the temp file's name: the user never asked for it
        raise ModelError(f"cannot write {p} ({exc.strerror or exc}); choose a folder you can write to") from None
    os.close(fd)
    try:
        torch.save({"format": INTEGER_MODEL_FORMAT, "tensors": tensors, "metadata": meta}, tmp)
        os.replace(tmp, p)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _integer_model(p: Path, obj: Mapping[str, Any], sha256: str) -> IntegerModel:
    """Rebuild the IR of an integer model file, refusing anything inconsistent."""
    import torch

    from ..errors import ApproxMLPError

    fmt = obj.get("format")
    if fmt != INTEGER_MODEL_FORMAT:
        raise ModelError(f"{p}: unsupported model format {fmt!r} (this approxmlp reads {INTEGER_MODEL_FORMAT!r}); "
                         "retrain it with this version's `approxmlp train`")
    tensors, meta = obj.get("tensors"), obj.get("metadata")
    if not isinstance(tensors, Mapping) or not isinstance(meta, Mapping) or not isinstance(meta.get("layers"), list):
        raise ModelError(f"{p}: malformed integer model (needs 'tensors' and 'metadata' with 'layers'); "
                         "retrain it with `approxmlp train`")
    layers = []
    try:
        for k, ld in enumerate(meta["layers"]):
            d = dict(ld)
            for leaf, key in (("weight", "weights"), ("bias", "biases")):
                t = tensors.get(f"layers.{k}.{leaf}")
                if not isinstance(t, torch.Tensor) or t.is_floating_point() or t.is_complex():
                    raise ModelError(f"{p}: 'layers.{k}.{leaf}' is missing or not an integer tensor; "
                                     "retrain it with `approxmlp train`")
                d[key] = t.to(torch.int64).numpy()
            layers.append(Layer.from_json(d))
        ir = MLP(n_inputs=meta["n_inputs"], input_bits=meta["input_bits"], layers=tuple(layers),
                 name=meta.get("name", "mlp"), meta=dict(meta.get("ir_meta", {})))
        quantizer = InputQuantizer.from_json(meta.get("input_quantizer"))
    except ModelError:
        raise
    except (ApproxMLPError, KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{p}: malformed integer model ({exc}); retrain it with `approxmlp train`") from None
    if meta.get("ir_sha256") not in (None, ir.digest):
        raise ModelError(f"{p}: the integer weights do not match the recorded IR digest (the file was modified); "
                         "retrain it with `approxmlp train`")
    if quantizer.n_features != ir.n_inputs or quantizer.bits != ir.input_bits:
        raise ModelError(f"{p}: its input quantizer ({quantizer.n_features} features, {quantizer.bits} bits) does not "
                         f"fit its IR ({ir.n_inputs} inputs, {ir.input_bits} bits); retrain it")
    return IntegerModel(ir=ir, quantizer=quantizer, metadata=dict(meta), source=str(p), sha256=sha256)


# ----------------------------------------------------------------------------- PTQ
def fold_input_scaling(model: FloatMLP, quantizer: InputQuantizer) -> FloatMLP:
    """The same function of the integer codes that ``model`` computes on the features they
    stand for: ``W' = W * step`` per input column, ``b' = b + W @ lo``."""
    if quantizer.n_features != model.n_inputs:
        raise ModelError(f"{model.source}: the model takes {model.n_inputs} inputs but the data set has "
                         f"{quantizer.n_features} features; use the data set the model was trained on")
    W, b = model.layers[0]
    first = (W * quantizer.step[None, :], b + W @ quantizer.lo)
    return FloatMLP(layers=(first,) + model.layers[1:], metadata=model.metadata, names=model.names,
                    source=model.source, sha256=model.sha256)


def weight_scale_log2(W: np.ndarray, weight_bits: int) -> int:
    """Smallest ``e`` with ``max|W| / 2**e <= 2**(weight_bits-1) - 1``: the finest
    power-of-two step whose integers still fit the signed width (0 for an all-zero W)."""
    qmax = (1 << (weight_bits - 1)) - 1
    m = float(np.max(np.abs(W), initial=0.0))
    if m == 0.0:
        return 0
    # frexp, not log2: log2 of a subnormal ratio underflows to a domain error.
    e = math.frexp(m)[1] - qmax.bit_length()
    while math.ldexp(m, -e) > qmax:
        e += 1
    while math.ldexp(m, -(e - 1)) <= qmax:
        e -= 1
    return e


def quantize_weights(W: np.ndarray, weight_bits: int) -> tuple[np.ndarray, int]:
    """``(W_int, e)`` with ``W ~= W_int * 2**e`` and ``|W_int| <= 2**(weight_bits-1) - 1``."""
    e = weight_scale_log2(W, weight_bits)
    qmax = (1 << (weight_bits - 1)) - 1
    return np.clip(_round_half_up(np.ldexp(W, -e)), -qmax, qmax).astype(np.int64), e


def _round_half_up(x: np.ndarray) -> np.ndarray:
    """Round to nearest, ties up: the same rule as the input quantizer."""
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5)


def _to_int(where: str, x: np.ndarray, bits: int) -> np.ndarray:
    limit = float(1 << (bits - 1))
    if np.any(np.abs(x) >= limit):
        raise ModelError(f"{where} needs more than {bits} bits at the accumulator scale (the bias is huge "
                         "next to the weights); retrain with weight decay or rescale the inputs")
    return x.astype(np.int64)


def activation_shift(acc: np.ndarray, act_bits: int) -> int:
    """Smallest shift ``>= 0`` that brings the largest calibration accumulator, rounded to
    nearest, into ``act_bits`` unsigned: ``(max + 2**(s-1)) >> s <= 2**act_bits - 1``."""
    top = (1 << act_bits) - 1
    m = int(np.max(acc, initial=0))
    s = 0
    while ((m + (1 << s >> 1)) >> s) > top:
        s += 1
    return s


def _layer_outputs(layer: Layer, x: np.ndarray, in_bits: int) -> np.ndarray:
    """Outputs of one IR layer on integer operands, by the golden model itself, so that
    calibration of the next layer sees exactly what the hardware will feed it."""
    one = MLP(n_inputs=layer.n_in, input_bits=in_bits, layers=(layer,))
    return golden.evaluate(one, x, trace=True).outputs[0]


def _calibration_codes(X_calib_int: Any, quantizer: InputQuantizer) -> np.ndarray:
    x = np.asarray(X_calib_int)
    if x.ndim != 2 or x.shape[1] != quantizer.n_features or len(x) == 0:
        raise DataError(f"calibration inputs must be a non-empty (N, {quantizer.n_features}) array, not shape "
                        f"{x.shape}; pass the quantized training features, quantizer(X_train)")
    if x.dtype.kind not in "iu" or x.min() < 0 or x.max() > quantizer.top:
        raise DataError(f"calibration inputs must be integer codes in 0..{quantizer.top}; "
                        "pass quantizer(X_train), not the raw features")
    return x.astype(np.int64)


def quantize_ptq(model: FloatMLP, quantizer: InputQuantizer, X_calib_int: np.ndarray, *,
                 weight_bits: int = 8, act_bits: int = 8, name: str = "mlp") -> MLP:
    """Post-training quantization of ``model`` to the integer IR (see the module docstring).

    ``X_calib_int`` are input codes (normally ``quantizer(X_train)``) on which the hidden
    activation ranges are measured, by running the already quantized layers, so each
    layer is calibrated on the integers it will really receive. Scale bookkeeping is in
    powers of two (exponents), so the integer layer computes ``float / 2**e`` up to
    rounding; the output scale exponent of every layer is recorded in ``meta["scale_log2"]``.
    """
    weight_bits = check_bits("--weight-bits", weight_bits, 2, MAX_PTQ_WEIGHT_BITS, ModelError)
    act_bits = check_bits("--act-bits", act_bits, 1, MAX_DATA_BITS, ModelError)
    folded = fold_input_scaling(model, quantizer)
    x = _calibration_codes(X_calib_int, quantizer)
    n_calib = len(x)
    in_bits, e_prev = quantizer.bits, 0      # the input codes are integers: scale 2**0
    layers, scales = [], []
    for k, (W, b) in enumerate(folded.layers):
        W_int, e_w = quantize_weights(W, weight_bits)
        e_acc = e_prev + e_w                 # accumulator scale s_prev * s_w
        where = f"{model.source}: layer {k} ({_key(model.names[k], 'bias')!r})"
        b_int = _to_int(where, _round_half_up(np.ldexp(b, -e_acc)), MAX_BIAS_BITS)
        if k == len(folded.layers) - 1:
            layers.append(Layer(weights=W_int, biases=b_int, shift=0, activation="linear"))
            scales.append(e_acc)
            break
        shift = activation_shift(x @ W_int.T + b_int, act_bits)
        layer = Layer(weights=W_int, biases=b_int + (1 << shift >> 1), shift=shift, activation="qrelu",
                      act_bits=act_bits)
        layers.append(layer)
        x = _layer_outputs(layer, x, in_bits)
        in_bits, e_prev = act_bits, e_acc + shift
        scales.append(e_prev)
    meta = {
        "quantization": PTQ_SCHEME,
        "source": model.source,
        "source_sha256": model.sha256 or "unknown",
        "input_bits": quantizer.bits,
        "weight_bits": weight_bits,
        "act_bits": act_bits,
        "input_lo": json.dumps(quantizer.lo.tolist()),
        "input_hi": json.dumps(quantizer.hi.tolist()),
        "calibration_samples": n_calib,
        "scale_log2": json.dumps(scales),
    }
    if "class_names" in model.metadata:
        meta["class_names"] = json.dumps([str(c) for c in model.metadata["class_names"]])
    return MLP(n_inputs=model.n_inputs, input_bits=quantizer.bits, layers=tuple(layers), name=name,
               meta={k: str(v) for k, v in meta.items()})


def input_quantizer_from_ir(mlp: MLP) -> InputQuantizer:
    """The input quantizer recorded in a PTQ'd IR's meta (to quantize new data for it)."""
    meta = dict(mlp.meta)
    try:
        return InputQuantizer(lo=json.loads(meta["input_lo"]), hi=json.loads(meta["input_hi"]), bits=mlp.input_bits)
    except (KeyError, ValueError) as exc:
        raise ModelError(f"IR {mlp.name} records no input scaling ({exc}); quantize it with quantize_ptq "
                         "or keep the input quantizer JSON next to it") from None
