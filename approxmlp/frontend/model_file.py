"""Model files: PyTorch state_dicts and approxmlp's integer models, read and written.

:func:`load_model` reads a ``torch.save``'d state_dict of Linear layers, optionally
wrapped as ``{"state_dict": ..., "metadata": {...}}``, with ``torch.load(weights_only=True)``
only: a model file is untrusted input, and a pickle that needs code to load is refused
rather than executed. Hidden layers are taken to be followed by ReLU and the last layer
to produce logits; a state_dict cannot say otherwise, so a model trained with another
activation will quantize to the wrong function.

**Integer models** (``approxmlp train``'s output, :class:`IntegerModel`) are already
quantized: ``{"format": INTEGER_MODEL_FORMAT, "tensors": {"layers.K.weight"/"bias": int64},
"metadata": {...}}`` with the shifts, activations and bit widths, the input quantizer and the
IR digest in the JSON-able metadata. :func:`load_model` recognises them and returns the IR
as is; nothing is re-quantized.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..core import golden
from ..core.ir import MLP, Layer
from ..errors import ModelError
from .input_quantizer import InputQuantizer
from .float_model import _RESAVE, FloatMLP

#: How torch.save's files begin: a zip archive (the default) or a pickle (protocol 2+).
_TORCH_MAGIC = (b"PK\x03\x04", b"\x80")


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
