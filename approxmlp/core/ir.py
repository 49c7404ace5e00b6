"""The integer MLP: the one representation every stage reads.

An :class:`MLP` is what the hardware computes, exactly, and nothing else:

* ``n_inputs`` unsigned features of ``input_bits`` bits each (a 4-bit sensor/ADC word);
* a chain of dense :class:`Layer` s. Neuron ``j`` of a layer computes::

      acc_j = sum_i  P(w_ji, x_i)  + b_j                  (exact integers)
      v_j   = acc_j >> shift                              (arithmetic: floor division)
      y_j   = clamp(v_j, 0, 2**act_bits - 1)              (QReLU)   or   y_j = v_j (linear)

  where ``P`` is the (possibly approximate) product of :class:`NeuronApprox`;
* a final argmax over the last layer's outputs, ties going to the lower index.

Hidden layers are QReLU (their outputs are the next layer's unsigned operands); only
the last layer may be linear. Each neuron carries a :class:`NeuronApprox` record, all
zeros/``None`` for an exact design, filled by the approximation search.

The IR is immutable: transforms build a new one (:func:`dataclasses.replace`). It
validates itself on construction and names the offending path in its errors, serializes
to JSON and has a stable content hash that the generated RTL quotes as provenance.
"""

from __future__ import annotations

import hashlib
import json
import numbers
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import IRError

#: Widths accepted for inputs and activations. 16 bits is far past what printed sensors
#: deliver and keeps every intermediate inside int64 in the golden model.
MAX_DATA_BITS = 16
#: Weights are signed integers of at most this many bits (two's complement).
MAX_WEIGHT_BITS = 24
#: Biases live at accumulator scale, so they may be much wider than weights.
MAX_BIAS_BITS = 48
MAX_SHIFT = 48
#: Most low score bits an argmax comparator may ignore: scores are int64, and 63 dropped
#: bits leave just the sign (a larger shift is not defined on int64).
MAX_CMP_DROP = 63

ACTIVATIONS = ("qrelu", "linear")
IR_FORMAT = "approxmlp-ir/1"


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _check_int(path: str, v: Any, lo: int, hi: int) -> int:
    if not _is_int(v):
        raise IRError(f"{path} must be an integer, not {v!r}")
    v = int(v)
    if not lo <= v <= hi:
        raise IRError(f"{path} must be in {lo}..{hi}, not {v}")
    return v


def _int_tuple(path: str, values: Any) -> tuple[int, ...]:
    """Accept lists, tuples or integer numpy arrays; refuse floats, even integral ones:
    a float weight means quantization has not happened yet."""
    if isinstance(values, np.ndarray):
        if values.dtype.kind not in "iu":
            raise IRError(f"{path} must hold integers, not {values.dtype} values")
        values = values.tolist()
    if not isinstance(values, (list, tuple)):
        raise IRError(f"{path} must be a sequence of integers, not {type(values).__name__}")
    out = []
    for k, v in enumerate(values):
        if not _is_int(v):
            raise IRError(f"{path}[{k}] must be an integer, not {v!r}")
        out.append(int(v))
    return tuple(out)


@dataclass(frozen=True)
class NeuronApprox:
    """How one neuron departs from exact arithmetic. The default is exact.

    Attributes:
        input_masks: per connection, the bits of the input operand that the product keeps
            (``x & mask``, as in the DATE'24 designs); ``0`` removes the connection;
            ``None`` keeps every bit of every input.
        product_trunc: low bits dropped from every partial-product magnitude before
            accumulation (``|w*x| >> t << t``, then the sign): cheaper adders.
        act_trunc: low bits of the QReLU output forced to zero (cheaper next layer).
        cmp_drop: low bits of this output that the argmax comparators ignore
            (last layer only).
    """

    input_masks: tuple[int, ...] | None = None
    product_trunc: int = 0
    act_trunc: int = 0
    cmp_drop: int = 0

    @property
    def is_exact(self) -> bool:
        return (self.input_masks is None and self.product_trunc == 0
                and self.act_trunc == 0 and self.cmp_drop == 0)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.input_masks is not None:
            d["input_masks"] = list(self.input_masks)
        for name in ("product_trunc", "act_trunc", "cmp_drop"):
            if getattr(self, name):
                d[name] = getattr(self, name)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "NeuronApprox":
        masks = d.get("input_masks")
        return cls(input_masks=None if masks is None else tuple(masks),
                   product_trunc=d.get("product_trunc", 0), act_trunc=d.get("act_trunc", 0),
                   cmp_drop=d.get("cmp_drop", 0))


EXACT = NeuronApprox()


@dataclass(frozen=True)
class Layer:
    """One dense layer: ``weights[j][i]`` connects input ``i`` to neuron ``j``."""

    weights: tuple[tuple[int, ...], ...]
    biases: tuple[int, ...]
    shift: int = 0
    activation: str = "qrelu"
    act_bits: int = 8
    approx: tuple[NeuronApprox, ...] | None = None

    def __post_init__(self) -> None:
        # Normalize containers so that equal layers compare (and hash) equal.
        w = self.weights
        if isinstance(w, np.ndarray):
            if w.ndim != 2:
                raise IRError(f"weights must be a 2-D matrix, not {w.ndim}-D")
            w = list(w)
        if not isinstance(w, (list, tuple)):
            raise IRError(f"weights must be a matrix of integers, not {type(w).__name__}")
        object.__setattr__(self, "weights", tuple(_int_tuple(f"weights[{j}]", row) for j, row in enumerate(w)))
        object.__setattr__(self, "biases", _int_tuple("biases", self.biases))
        if self.approx is None:
            object.__setattr__(self, "approx", tuple(EXACT for _ in self.weights))
        else:
            object.__setattr__(self, "approx", tuple(self.approx))

    @property
    def n_out(self) -> int:
        return len(self.weights)

    @property
    def n_in(self) -> int:
        return len(self.weights[0]) if self.weights else 0

    @cached_property
    def weight_matrix(self) -> np.ndarray:
        """Weights as an ``(n_out, n_in)`` int64 array (read-only)."""
        a = np.array(self.weights, dtype=np.int64).reshape(self.n_out, self.n_in)
        a.setflags(write=False)
        return a

    @cached_property
    def bias_vector(self) -> np.ndarray:
        a = np.array(self.biases, dtype=np.int64)
        a.setflags(write=False)
        return a

    @cached_property
    def mask_matrix(self) -> np.ndarray | None:
        """Per-connection input masks as ``(n_out, n_in)``, or ``None`` if no neuron masks."""
        if all(a.input_masks is None for a in self.approx):
            return None
        full = -1  # all ones in two's complement: x & -1 == x
        a = np.array([a.input_masks if a.input_masks is not None else (full,) * self.n_in
                      for a in self.approx], dtype=np.int64)
        a.setflags(write=False)
        return a

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"weights": [list(r) for r in self.weights], "biases": list(self.biases),
                             "shift": self.shift, "activation": self.activation, "act_bits": self.act_bits}
        if any(not a.is_exact for a in self.approx):
            d["approx"] = [a.to_json() for a in self.approx]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Layer":
        approx = d.get("approx")
        return cls(weights=d["weights"], biases=d["biases"], shift=d.get("shift", 0),
                   activation=d.get("activation", "qrelu"), act_bits=d.get("act_bits", 8),
                   approx=None if approx is None else tuple(NeuronApprox.from_json(a) for a in approx))


@dataclass(frozen=True)
class MLP:
    """A bespoke integer MLP classifier. See the module docstring for the semantics."""

    n_inputs: int
    input_bits: int
    layers: tuple[Layer, ...]
    name: str = "mlp"
    #: free-form provenance (data set, training seed, source model hash...): strings only,
    #: so the IR stays JSON; not part of the content hash.
    meta: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        if isinstance(self.meta, dict):
            object.__setattr__(self, "meta", tuple(sorted((str(k), str(v)) for k, v in self.meta.items())))
        self._validate()

    # -- validation -------------------------------------------------------------------
    def _validate(self) -> None:
        _check_int("n_inputs", self.n_inputs, 1, 1 << 16)
        _check_int("input_bits", self.input_bits, 1, MAX_DATA_BITS)
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise IRError(f"name must be a Verilog-safe identifier, not {self.name!r}")
        if not self.layers:
            raise IRError("an MLP needs at least one layer, found none")
        fan_in = self.n_inputs
        in_bits = self.input_bits
        last = len(self.layers) - 1
        if isinstance(self.layers[-1], Layer) and self.layers[-1].n_out < 2:
            raise IRError(f"layer[{last}] is the output layer and needs at least 2 neurons "
                          f"(one per class), found {self.layers[-1].n_out}")
        for li, layer in enumerate(self.layers):
            p = f"layer[{li}]"
            if not isinstance(layer, Layer):
                raise IRError(f"{p} must be a Layer, not {type(layer).__name__}")
            if layer.n_out < 1:
                raise IRError(f"{p} must have at least one neuron, found 0")
            for j, row in enumerate(layer.weights):
                if len(row) != fan_in:
                    raise IRError(f"{p}.weights[{j}] has {len(row)} inputs, expected {fan_in} "
                                  f"(the {'input count' if li == 0 else f'width of layer[{li - 1}]'})")
                for i, w in enumerate(row):
                    _check_int(f"{p}.neuron[{j}].weight[{i}]", w, -(1 << (MAX_WEIGHT_BITS - 1)),
                               (1 << (MAX_WEIGHT_BITS - 1)) - 1)
            if len(layer.biases) != layer.n_out:
                raise IRError(f"{p} has {len(layer.biases)} biases for {layer.n_out} neurons")
            for j, b in enumerate(layer.biases):
                _check_int(f"{p}.neuron[{j}].bias", b, -(1 << (MAX_BIAS_BITS - 1)), (1 << (MAX_BIAS_BITS - 1)) - 1)
            _check_int(f"{p}.shift", layer.shift, 0, MAX_SHIFT)
            if layer.activation not in ACTIVATIONS:
                raise IRError(f"{p}.activation must be one of {', '.join(ACTIVATIONS)}, not {layer.activation!r}")
            if layer.activation == "linear" and li != last:
                raise IRError(f"{p}.activation is 'linear', but only the last layer may be linear "
                              "(hidden outputs are the next layer's unsigned operands)")
            _check_int(f"{p}.act_bits", layer.act_bits, 1, MAX_DATA_BITS)
            if len(layer.approx) != layer.n_out:
                raise IRError(f"{p} has {len(layer.approx)} approximation records for {layer.n_out} neurons")
            for j, a in enumerate(layer.approx):
                self._validate_approx(f"{p}.neuron[{j}]", a, fan_in, in_bits, layer, li == last)
            fan_in = layer.n_out
            in_bits = layer.act_bits

    @staticmethod
    def _validate_approx(p: str, a: NeuronApprox, fan_in: int, in_bits: int, layer: Layer, is_last: bool) -> None:
        if not isinstance(a, NeuronApprox):
            raise IRError(f"{p}.approx must be a NeuronApprox, not {type(a).__name__}")
        if a.input_masks is not None:
            masks = _int_tuple(f"{p}.input_masks", a.input_masks)
            if len(masks) != fan_in:
                raise IRError(f"{p}.input_masks has {len(masks)} entries, expected {fan_in}")
            for i, m in enumerate(masks):
                _check_int(f"{p}.input_masks[{i}]", m, 0, (1 << in_bits) - 1)
        _check_int(f"{p}.product_trunc", a.product_trunc, 0, MAX_WEIGHT_BITS + MAX_DATA_BITS)
        if layer.activation == "qrelu":
            _check_int(f"{p}.act_trunc", a.act_trunc, 0, layer.act_bits - 1)
        elif a.act_trunc:
            raise IRError(f"{p}.act_trunc must be 0 for a linear layer, not {a.act_trunc}")
        if is_last:
            _check_int(f"{p}.cmp_drop", a.cmp_drop, 0, MAX_CMP_DROP)
        elif a.cmp_drop:
            raise IRError(f"{p}.cmp_drop must be 0 outside the last layer, not {a.cmp_drop}")

    # -- views ------------------------------------------------------------------------
    @property
    def n_classes(self) -> int:
        return self.layers[-1].n_out

    @property
    def topology(self) -> tuple[int, ...]:
        return (self.n_inputs,) + tuple(layer.n_out for layer in self.layers)

    @property
    def topology_str(self) -> str:
        return "-".join(str(n) for n in self.topology)

    def operand_bits(self, li: int) -> int:
        """Bit width of the unsigned operands that layer ``li`` multiplies."""
        return self.input_bits if li == 0 else self.layers[li - 1].act_bits

    @property
    def is_exact(self) -> bool:
        return all(a.is_exact for layer in self.layers for a in layer.approx)

    # -- serialization ----------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        d = {"format": IR_FORMAT, "name": self.name, "n_inputs": self.n_inputs,
             "input_bits": self.input_bits, "layers": [layer.to_json() for layer in self.layers]}
        if self.meta:
            d["meta"] = dict(self.meta)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "MLP":
        if not isinstance(d, dict) or d.get("format") != IR_FORMAT:
            raise IRError(f"not an approxmlp IR document (expected format {IR_FORMAT!r})")
        try:
            return cls(n_inputs=d["n_inputs"], input_bits=d["input_bits"],
                       layers=tuple(Layer.from_json(x) for x in d["layers"]),
                       name=d.get("name", "mlp"), meta=d.get("meta", {}))
        except IRError:
            raise
        except (KeyError, TypeError, AttributeError, ValueError) as exc:  # e.g. "layers": "x"
            raise IRError(f"malformed IR document: {type(exc).__name__}: {exc}") from None

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, sort_keys=True)

    @cached_property
    def digest(self) -> str:
        """SHA-256 of the computation (name and metadata excluded): equal circuits, equal digests."""
        body = self.to_json()
        body.pop("name", None)
        body.pop("meta", None)
        return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    def with_meta(self, **kv: str) -> "MLP":
        merged = dict(self.meta)
        merged.update({k: str(v) for k, v in kv.items()})
        return replace(self, meta=tuple(sorted(merged.items())))


def make_mlp(n_inputs: int, input_bits: int, layers: Iterable[dict[str, Any] | Layer], **kw: Any) -> MLP:
    """Convenience constructor: layers given as :class:`Layer` or keyword dicts."""
    built = tuple(x if isinstance(x, Layer) else Layer(**x) for x in layers)
    return MLP(n_inputs=n_inputs, input_bits=input_bits, layers=built, **kw)


def check_inputs(mlp: MLP, X: Any, what: str = "inputs") -> np.ndarray:
    """Validate a batch of integer input vectors against the IR and return it as int64."""
    a = np.asarray(X)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] != mlp.n_inputs:
        raise IRError(f"{what} must have shape (N, {mlp.n_inputs}), not {tuple(a.shape)}")
    if a.dtype.kind not in "iu":
        raise IRError(f"{what} must be integers, not {a.dtype}")
    a = a.astype(np.int64, copy=False)
    top = (1 << mlp.input_bits) - 1
    if a.size and (a.min() < 0 or a.max() > top):
        raise IRError(f"{what} must lie in 0..{top} ({mlp.input_bits}-bit unsigned), found {a.min()}..{a.max()}")
    return a


def signed_width(lo: int, hi: int) -> int:
    """Fewest two's-complement bits holding every integer in ``[lo, hi]`` (at least 1)."""
    w = 1
    while not (-(1 << (w - 1)) <= lo and hi <= (1 << (w - 1)) - 1):
        w += 1
    return w


def unsigned_width(hi: int) -> int:
    """Fewest bits holding ``0..hi`` (at least 1)."""
    return max(1, int(hi).bit_length())


def split_products(weights: Sequence[int]) -> tuple[list[int], list[int]]:
    """Indices of the positive and the negative weights (zero weights vanish)."""
    pos = [i for i, w in enumerate(weights) if w > 0]
    neg = [i for i, w in enumerate(weights) if w < 0]
    return pos, neg
