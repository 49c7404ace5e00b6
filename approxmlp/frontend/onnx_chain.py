"""The chain of steps an MLP graph is read into (:class:`Chain`): dense layers, ReLUs,
QONNX quantizers and constants, in order.

Shared by the float ONNX import (:mod:`.onnx_model`) and the QONNX one
(:mod:`.qonnx_model`), which read the same chain and make different things of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelError


@dataclass(frozen=True)
class QuantParams:
    """A QONNX ``Quant`` node: ``clip(round(x / scale + zero_point))`` at ``bits`` bits."""

    node: str
    scale: np.ndarray
    zero_point: np.ndarray
    bits: float
    signed: bool
    narrow: bool
    rounding: str
    scale_name: str

    def int_range(self) -> tuple[int, int]:
        b = int(self.bits)
        if self.signed:
            return (-(1 << (b - 1)) + (1 if self.narrow else 0), (1 << (b - 1)) - 1)
        return (0, (1 << b) - 1 - (1 if self.narrow else 0))

    def to_int(self, x: np.ndarray) -> np.ndarray:
        """The integers the node computes (before its dequantization), as QONNX does."""
        t = np.asarray(x, dtype=np.float64) / self.scale + self.zero_point
        t = ROUNDING[self.rounding](t)
        lo, hi = self.int_range()
        return np.clip(t, lo, hi)

    def dequantize(self, x: np.ndarray) -> np.ndarray:
        return (self.to_int(x) - self.zero_point) * self.scale


ROUNDING = {"ROUND": np.round, "FLOOR": np.floor, "CEIL": np.ceil, "ROUND_TO_ZERO": np.trunc,
            "HALF_UP": lambda t: np.floor(t + 0.5), "HALF_DOWN": lambda t: np.ceil(t - 0.5)}


@dataclass(frozen=True)
class Const:
    """A constant operand: a float tensor, possibly through a ``Quant`` node (``quant``)."""

    name: str
    value: np.ndarray
    quant: QuantParams | None = None


@dataclass(frozen=True)
class Dense:
    """``y = x @ W.T + b``; ``W`` is ``(out, in)`` as given (``weight.value`` may need the
    transposition ``transposed``: a MatMul's ``B`` or a Gemm's with ``transB=0``)."""

    node: str
    weight: Const
    bias: Const | None
    transposed: bool
    alpha: float = 1.0
    beta: float = 1.0

    def float_weight(self) -> np.ndarray:
        W = self.weight.value if self.weight.quant is None else self.weight.quant.dequantize(self.weight.value)
        return self.alpha * (W.T if self.transposed else W)

    def float_bias(self, n_out: int) -> np.ndarray:
        if self.bias is None:
            return np.zeros(n_out)
        b = self.bias.value if self.bias.quant is None else self.bias.quant.dequantize(self.bias.value)
        return self.beta * bias_vector(self.node, self.bias.name, b, n_out).astype(np.float64)


@dataclass(frozen=True)
class Relu:
    node: str


@dataclass(frozen=True)
class ActQuant:
    """A ``Quant`` node on the data path (the input's or an activation's)."""

    params: QuantParams


@dataclass
class Chain:
    """What :func:`walk` found: the steps in order, the input's name and feature count,
    the model's ``metadata_props`` and whether a binary ``Sigmoid`` tail was seen."""

    source: str
    input_name: str
    n_features: int
    steps: list = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    binary_sigmoid: bool = False

    @property
    def quantized(self) -> bool:
        return any(isinstance(s, ActQuant) for s in self.steps) or any(
            isinstance(s, Dense) and (s.weight.quant or (s.bias and s.bias.quant)) for s in self.steps)


def bias_vector(node: str, name: str, b: np.ndarray, n_out: int) -> np.ndarray:
    """A bias (scalar, ``(n,)`` or ``(1, n)``) as ``(n_out,)``, its dtype kept."""
    b = np.asarray(b)
    if b.size == 1:
        return np.full(n_out, b.reshape(-1)[0])
    if b.size != n_out or max(b.shape) != n_out:
        raise ModelError(f"node {node!r}: bias {name!r} has shape {tuple(b.shape)} for {n_out} outputs "
                         "(mismatched shapes); the bias needs one entry per output")
    return b.reshape(-1)
