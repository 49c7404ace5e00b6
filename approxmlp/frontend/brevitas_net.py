"""The Brevitas network of `approxmlp train` and its bit-exact export to the IR.

The only module that imports Brevitas (slow to import; nothing else needs it). The
network, its power-of-two quantizers and why the export is exact are described in
:mod:`approxmlp.frontend.qat`; here are the pieces: the quantizers (fixed input scale,
floor-rounded activations, fixed-point or power-of-two weights), :class:`QATNet`,
:func:`export_ir` (the integers read back from Brevitas' own quantizers) and
:func:`brevitas_classes` (the network's classes, in float64 when float32 is not exact).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from brevitas.inject.enum import FloatToIntImplType, ScalingImplType
from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU
from brevitas.quant import Int8WeightPerTensorFixedPoint, Uint8ActPerTensorFixedPoint
from brevitas.quant.scaled_int import IntBias

from ..core import golden
from ..core.ir import MLP, Layer
from ..errors import TrainError

#: Largest |accumulator| for which float32 arithmetic is exact.
F32_EXACT = 1 << 24


class _InputQuant(Uint8ActPerTensorFixedPoint):
    """Unsigned, fixed scale ``max_val / 2**bits = 2**-bits``: the codes pass unchanged."""

    scaling_impl_type = ScalingImplType.CONST
    max_val = 1.0


class _ActQuant(Uint8ActPerTensorFixedPoint):
    """Unsigned, learned power-of-two scale (initialized from activation statistics), and
    floor rounding, like the IR's arithmetic right shift."""

    float_to_int_impl_type = FloatToIntImplType.FLOOR
    collect_stats_steps = 20
    high_percentile_q = 99.99
    scaling_min_val = 2.0 ** -24   # a power of two, so that even a dead layer exports


class _WeightQuant(Int8WeightPerTensorFixedPoint):
    """Per-tensor signed fixed point (narrow range), scale from the max |w|."""


class _HalfRangeIntScaling(nn.Module):
    """Scale denominator ``2**(bits-2)``: a power-of-two weight of magnitude max|w| then
    maps to ``2**(bits-2)``, never to the clipped ``2**(bits-1)``."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, bit_width: torch.Tensor, signed: Any = None) -> torch.Tensor:
        return torch.pow(2.0, bit_width - 2)


class _Pow2WeightQuant(Int8WeightPerTensorFixedPoint):
    int_scaling_impl = _HalfRangeIntScaling


def pow2_project(w: torch.Tensor) -> torch.Tensor:
    """Straight-through projection onto ``{0, ±2**k}``: the nearest signed power of two
    (in linear distance; zero stays zero) forward, identity backward."""
    a = w.detach().abs()
    e = torch.floor(torch.log2(a.clamp_min(torch.finfo(w.dtype).tiny)))
    lo = torch.pow(2.0, e).to(w.dtype)
    p = torch.where(a >= 1.5 * lo, 2 * lo, lo)
    p = torch.where(a > 0, p, torch.zeros_like(p)) * torch.sign(w.detach())
    return w + (p - w).detach()


class Pow2QuantLinear(QuantLinear):
    """A ``QuantLinear`` whose weight quantizer sees the power-of-two projection of the
    weights: Brevitas still does the (then exact) fixed-point quantization.

    Weights can be *frozen* at a power of two (:func:`freeze_pow2`): a frozen weight no
    longer follows its latent float value, which stops the oscillation of weights that sit
    near a rounding threshold (incremental quantization, Zhou et al. 2017)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register_buffer("pow2_frozen", torch.zeros_like(self.weight, dtype=torch.bool))
        self.register_buffer("pow2_value", torch.zeros_like(self.weight))

    def projected_weight(self) -> torch.Tensor:
        return torch.where(self.pow2_frozen, self.pow2_value, pow2_project(self.weight))

    def quant_weight(self, quant_input=None, subtensor_slice_list=None):  # noqa: D102
        return self.weight_quant(self.projected_weight())


def pow2_layers(net: nn.Module) -> list[Pow2QuantLinear]:
    return [m for m in net.modules() if isinstance(m, Pow2QuantLinear)]


def freeze_pow2(net: nn.Module, fraction: float) -> None:
    """Freeze ``fraction`` of each pow2 layer's weights at their current power of two, the
    most settled first (latent value farthest, in log2, from a rounding threshold)."""
    with torch.no_grad():
        for m in pow2_layers(net):
            w = m.weight.reshape(-1)
            frozen = m.pow2_frozen.reshape(-1).clone()
            more = math.ceil(fraction * w.numel()) - int(frozen.sum())
            if more <= 0:
                continue
            a = w.abs().clamp_min(torch.finfo(w.dtype).tiny)
            margin = (a / (1.5 * torch.pow(2.0, torch.floor(torch.log2(a))))).log2().abs()
            margin[frozen] = -1.0
            idx = torch.argsort(margin, descending=True)[:more]
            value = m.pow2_value.reshape(-1).clone()
            frozen[idx] = True
            value[idx] = pow2_project(w)[idx]
            m.pow2_frozen.copy_(frozen.view_as(m.weight))
            m.pow2_value.copy_(value.view_as(m.weight))


def pow2_dampening(net: nn.Module) -> torch.Tensor:
    """Mean squared *relative* distance of the live latent pow2 weights to their power of
    two (oscillation dampening, Nagel et al. 2022): pulls weights away from the rounding
    thresholds, where they would flip back and forth."""
    terms = []
    for m in pow2_layers(net):
        live = ~m.pow2_frozen
        if live.any():
            p = pow2_project(m.weight).detach()
            terms.append((((m.weight - p) / p.abs().clamp_min(1e-8))[live] ** 2).mean())
    return torch.stack(terms).sum() if terms else torch.zeros(())


class QATNet(nn.Module):
    """The Brevitas MLP (see the module docstring). ``forward`` takes ``codes * 2**-input_bits``
    (:meth:`codes_to_input`) and returns float logits; :meth:`forward_float` runs the same
    parameters without any quantization (the float warm-up)."""

    def __init__(self, n_inputs: int, hidden: Sequence[int], n_classes: int, *, input_bits: int = 4,
                 weight_bits: int = 8, bias_bits: int = 16, act_bits: int = 8, weights: str = "int"):
        super().__init__()
        self.input_bits = input_bits
        self.inp = QuantIdentity(act_quant=_InputQuant, bit_width=input_bits, return_quant_tensor=True)
        linear = Pow2QuantLinear if weights == "pow2" else QuantLinear
        wq = _Pow2WeightQuant if weights == "pow2" else _WeightQuant
        sizes = [n_inputs, *hidden, n_classes]
        self.linears = nn.ModuleList(
            linear(sizes[k], sizes[k + 1], bias=True, weight_quant=wq, weight_bit_width=weight_bits,
                   bias_quant=IntBias, bias_bit_width=bias_bits, return_quant_tensor=False)
            for k in range(len(sizes) - 1))
        self.acts = nn.ModuleList(
            QuantReLU(act_quant=_ActQuant, bit_width=act_bits, return_quant_tensor=True) for _ in hidden)

    def codes_to_input(self, codes: Any) -> torch.Tensor:
        """``q * 2**-input_bits`` as float32: exact for codes below 2**24."""
        q = torch.as_tensor(np.asarray(codes), dtype=torch.float32)
        return torch.ldexp(q, torch.tensor(-self.input_bits, dtype=torch.int32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for lin, act in zip(self.linears, self.acts):
            h = act(lin(h))
        return self.linears[-1](h)

    def forward_float(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for lin in self.linears[:-1]:
            h = F.relu(F.linear(h, lin.weight, lin.bias))
        last = self.linears[-1]
        return F.linear(h, last.weight, last.bias)


def _log2_exact(where: str, scale: torch.Tensor) -> int:
    v = float(scale.detach().reshape(-1)[0])
    m, e = math.frexp(v)
    if m != 0.5:
        raise TrainError(f"internal error: the {where} scale {v!r} is not a power of two; please report this")
    return e - 1


def export_ir(net: QATNet, *, name: str = "mlp", meta: dict[str, Any] | None = None) -> tuple[MLP, list[dict]]:
    """The IR the Brevitas network computes, read from Brevitas' own integer tensors
    (``int()`` of the quantized weights and biases, the scales of every quantizer); plus,
    per layer, the scale exponents (``input/weight/acc/output_scale_log2``)."""
    net.eval()
    n_in = net.linears[0].in_features
    with torch.no_grad():
        h = net.inp(net.codes_to_input(np.zeros((1, n_in), dtype=np.int64)))
        e_in = _log2_exact("input", h.scale)
        if e_in != -net.input_bits:
            raise TrainError(f"internal error: input scale 2**{e_in}, expected 2**{-net.input_bits}")
        layers, info = [], []
        last = len(net.linears) - 1
        for k, lin in enumerate(net.linears):
            qw = lin.quant_weight(h)
            qb = lin.bias_quant(lin.bias, h, qw)
            e_w = _log2_exact(f"layer {k} weight", qw.scale)
            e_acc = e_in + e_w
            if _log2_exact(f"layer {k} bias", qb.scale) != e_acc:
                raise TrainError(f"internal error: layer {k}'s bias is not at the accumulator scale 2**{e_acc}")
            W = qw.int().to(torch.int64).numpy()
            b = qb.int().to(torch.int64).numpy()
            rec: dict[str, Any] = {"input_scale_log2": e_in, "weight_scale_log2": e_w, "acc_scale_log2": e_acc}
            if k == last:
                layers.append(Layer(weights=W, biases=b, shift=0, activation="linear"))
                rec["output_scale_log2"] = e_acc
                info.append(rec)
                break
            out = net.acts[k](lin(h))
            e_out = _log2_exact(f"layer {k} activation", out.scale)
            shift = e_out - e_acc
            if shift < 0:
                # The activation step is finer than the accumulator's (a practically dead
                # layer): a left shift, which the IR expresses by scaling the integers.
                W, b, shift = W << -shift, b << -shift, 0
                rec["left_shift_folded"] = e_acc - e_out
            layers.append(Layer(weights=W, biases=b, shift=shift, activation="qrelu", act_bits=int(out.bit_width)))
            rec["output_scale_log2"] = e_out
            info.append(rec)
            h, e_in = out, e_out
    ir = MLP(n_inputs=n_in, input_bits=net.input_bits, layers=tuple(layers), name=name,
             meta={k: str(v) for k, v in (meta or {}).items()})
    return ir, info


def acc_bound(ir: MLP) -> int:
    """Largest |accumulator| that any input can produce (interval bound over all layers)."""
    from ..core.ranges import analyze

    return max(max(abs(n.acc_lo), abs(n.acc_hi)) for layer in analyze(ir) for n in layer)


def brevitas_classes(net: QATNet, codes: np.ndarray, *, ir: MLP | None = None) -> np.ndarray:
    """Classes the Brevitas model predicts for integer input codes (argmax, ties to the
    lowest index). Runs in float64 when ``ir``'s accumulators could pass 2**24."""
    return np.argmax(brevitas_logits(net, codes, ir=ir), axis=1).astype(np.int64)


def brevitas_logits(net: QATNet, codes: np.ndarray, *, ir: MLP | None = None) -> np.ndarray:
    """The Brevitas model's logits (float64 array) for integer input codes."""
    net.eval()
    wide = ir is not None and acc_bound(ir) >= F32_EXACT
    dtype = torch.float64 if wide else torch.float32
    try:
        if wide:
            net.to(dtype)
        with torch.no_grad():
            x = net.codes_to_input(codes).to(dtype)
            return net(x).to(torch.float64).numpy()
    finally:
        if wide:
            net.to(torch.float32)


def check_exact(net: QATNet, ir: MLP, codes: np.ndarray) -> int:
    """Number of samples on which Brevitas and the golden model disagree (0 by design)."""
    if len(codes) == 0:
        return 0
    return int(np.sum(brevitas_classes(net, codes, ir=ir) != golden.predict(ir, codes)))


def calibrate_activations(net: QATNet, x: torch.Tensor, cfg, gen: torch.Generator) -> None:
    """Let the activation quantizers collect their statistics (after which their scales
    become learnable parameters) before QAT starts."""
    net.train()
    with torch.no_grad():
        for _ in range(_ActQuant.collect_stats_steps + 1):
            net(x[torch.randperm(len(x), generator=gen)[:max(cfg.batch_size, 256)]])
