"""The float MLP every float front end produces (:class:`FloatMLP`): layers of float
weights and biases, ReLU between them, logits out, with the checks a state_dict needs.

PyTorch state_dicts (:mod:`.model_file`), ONNX graphs (:mod:`.onnx_model`) and scikit-learn
models (:mod:`.sklearn_model`) all become one; post-training quantization
(:mod:`.quantize`) turns it into the IR.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..errors import ModelError
from .input_quantizer import InputQuantizer

_RESAVE = "save a state_dict instead (torch.save(model.state_dict(), path))"
_BATCHNORM_KEYS = ("running_mean", "running_var", "num_batches_tracked")


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
                raise ModelError(f"{source}: {state_key(prefix, 'bias')!r} has no matching {state_key(prefix, 'weight')!r}; "
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
            sd[state_key(name, "weight")] = torch.tensor(W)
            sd[state_key(name, "bias")] = torch.tensor(b)
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


def state_key(prefix: str, leaf: str) -> str:
    """The state_dict key of a layer's ``leaf`` (``weight``, ``bias``): how messages name it."""
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
    wk, bk = state_key(name, "weight"), state_key(name, "bias")
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
