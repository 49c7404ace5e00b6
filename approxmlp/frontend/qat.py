"""Quantization-aware training with Brevitas, exported bit-exactly to the integer IR.

This is the only module that imports Brevitas (slow to import; nothing else needs it).

**The network** (:class:`QATNet`) is ``QuantIdentity -> (QuantLinear -> QuantReLU) x H ->
QuantLinear``. Every scale is a power of two, so the hardware needs only shifts:

* the input is the hardware's integer codes ``q = quantizer(X)`` fed as ``q * 2**-input_bits``
  through a ``QuantIdentity`` whose scale is *fixed* at ``2**-input_bits``: it returns the
  codes unchanged, so the network is trained on exactly the integers the circuit receives;
* weights: per-tensor fixed point (``Int8WeightPerTensorFixedPoint`` at ``weight_bits``),
  or with ``weights="pow2"`` a straight-through projection of the float weights onto
  ``0, ±2**k`` *before* that same kind of Brevitas quantizer (whose integer range is then
  ``±2**(weight_bits-2)``, so that no power of two is clipped to ``2**(weight_bits-1) - 1``):
  Brevitas still does the quantization, and it is exact on powers of two;
* biases: ``IntBias`` at ``bias_bits``, whose scale is input scale x weight scale, i.e. the
  accumulator scale: the IR adds the very same integer to the accumulator;
* hidden activations: ``QuantReLU`` with a learned power-of-two scale and **floor**
  rounding (the IR's rescale is an arithmetic right shift; Brevitas' default
  round-half-even would differ on ties), ``act_bits`` unsigned;
* the last layer returns float logits ``acc * 2**e``: the IR keeps it linear, shift 0,
  and the argmax of the two agrees, ties included (both take the lowest index).

**Exactness by construction.** Every tensor Brevitas multiplies is an integer times a power
of two, so its float32 arithmetic is exact while the integer accumulators stay below
2**24 (:func:`brevitas_classes` switches to float64 past that), and
``acc_int = W_int @ x_int + b_int`` (IR), ``y = clamp(floor(acc_int * 2**(e_acc - e_act)),
0, 2**act_bits - 1)`` = ``clamp(acc_int >> shift, ...)`` with ``shift = e_act - e_acc``.
:func:`export_ir` reads the integers back from Brevitas' own quantizers (nothing is
re-quantized) and :func:`train` checks the equality on every training and test sample.

**Training** (:func:`train`): a float warm-up, then QAT, both with Adam on mini-batches,
a cosine learning rate and early stopping on a stratified validation split carved from
the training set. The warm-up trains ``float_candidates`` float networks side by side (one
batched model, :func:`_float_screen`): with a hidden layer of a few neurons, where the
float optimization lands is a lottery (Pendigits 16-5-10: 0.67 to 0.96 validation
accuracy over 16 starts). The ``restarts`` best on validation go on to QAT, and the best
quantized one on that validation split wins. Power-of-two weights oscillate between neighbouring powers under
plain straight-through training, so the pow2 QAT also (Nagel et al. 2022; Zhou et al.
2017) dampens that oscillation, freezes the weights in stages, picks per-neuron scale
factors that the float function does not see but the rounding does
(:func:`pow2_rescale`) and ends with a discrete local search (:func:`pow2_local_search`).

Input ranges: data already on the ``k / 2**bits`` grid (the literature's splits) keep
their codes; other data get per-feature 1st..99th percentile ranges (outliers saturate),
which beats min-max ranges on skewed sensor data (Cardio: +2 points).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from brevitas.inject.enum import FloatToIntImplType, ScalingImplType
from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU
from brevitas.quant import Int8WeightPerTensorFixedPoint, Uint8ActPerTensorFixedPoint
from brevitas.quant.scaled_int import IntBias

from ..core import golden
from ..frontend.data import Dataset, InputQuantizer, check_bits
from ..errors import ApproxMLPError, DataError
from ..core.ir import MAX_DATA_BITS, MLP, Layer, signed_width

#: Weight quantizer choices.
WEIGHT_MODES = ("int", "pow2")
#: Class weighting choices for the loss.
CLASS_WEIGHTS = ("none", "balanced")
#: How the input quantizer is chosen: ``auto`` keeps the codes of a data set already on
#: the ``k / 2**bits`` grid and uses ``robust`` ranges otherwise; ``robust``: per-feature
#: percentile ranges (:func:`robust_quantizer`); ``fit``: min-max ranges.
INPUT_RANGES = ("auto", "robust", "fit")
#: Percentile of the low end of the robust input range (the high end is 100 minus it).
ROBUST_PERCENTILE = 1.0
#: Largest |accumulator| for which float32 arithmetic is exact.
F32_EXACT = 1 << 24
#: ``quantization`` entry of the exported IR's meta.
SCHEME = "qat-brevitas-pow2-scales"


class TrainError(ApproxMLPError):
    """Bad training options, or training could not produce a model."""


# ----------------------------------------------------------------------------- quantizers
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


def _pow2_layers(net: nn.Module) -> list[Pow2QuantLinear]:
    return [m for m in net.modules() if isinstance(m, Pow2QuantLinear)]


def freeze_pow2(net: nn.Module, fraction: float) -> None:
    """Freeze ``fraction`` of each pow2 layer's weights at their current power of two, the
    most settled first (latent value farthest, in log2, from a rounding threshold)."""
    with torch.no_grad():
        for m in _pow2_layers(net):
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
    for m in _pow2_layers(net):
        live = ~m.pow2_frozen
        if live.any():
            p = pow2_project(m.weight).detach()
            terms.append((((m.weight - p) / p.abs().clamp_min(1e-8))[live] ** 2).mean())
    return torch.stack(terms).sum() if terms else torch.zeros(())


# ----------------------------------------------------------------------------- config
@dataclass(frozen=True)
class TrainConfig:
    """Everything :func:`train` needs besides the data (the CLI options map 1:1; the
    ``pow2_*`` fields tune the power-of-two training and have no option)."""

    hidden: tuple[int, ...] = (3,)
    input_bits: int = 4
    weight_bits: int = 8
    #: 16, not 8: an 8-bit bias at accumulator scale costs 0.5..1 point on three of the
    #: five reference sets, and the circuit is sized by the trained values, not by this limit.
    bias_bits: int = 16
    act_bits: int = 8
    weights: str = "int"
    epochs: int = 300              # most QAT epochs (early stopping usually ends far sooner)
    float_epochs: int = 300        # most float warm-up epochs (0: QAT from scratch)
    lr: float = 0.01               # Adam; QAT runs at half of it
    batch_size: int | None = None  # None: auto_batch_size(training samples)
    patience: int = 40             # epochs without validation progress before stopping
    val_fraction: float = 0.2
    class_weight: str = "none"
    seed: int = 0
    restarts: int = 3
    #: Float networks trained side by side (one batched model) before QAT; the ``restarts``
    #: best on validation go on to QAT. A tiny hidden layer makes the float optimum a
    #: lottery: 16 Pendigits 16-5-10 starts range from 0.67 to 0.96 validation accuracy.
    float_candidates: int = 16
    input_range: str = "auto"
    weight_decay: float = 1e-4
    pow2_stages: tuple[float, ...] = (0.5, 0.75, 0.875, 1.0)
    pow2_stage_epochs: int = 40
    pow2_damp: float = 10.0
    pow2_rescale: int = 1
    pow2_search: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(self.hidden))
        object.__setattr__(self, "pow2_stages", tuple(self.pow2_stages))
        if not self.hidden:
            raise TrainError("--hidden is required: give at least one hidden layer size, e.g. --hidden 3")
        for h in self.hidden:
            if isinstance(h, bool) or not isinstance(h, (int, np.integer)) or not 1 <= h <= 4096:
                raise TrainError(f"--hidden sizes must be integers in 1..4096, not {h!r}")
        check_bits("--input-bits", self.input_bits, 1, MAX_DATA_BITS, TrainError)
        check_bits("--weight-bits", self.weight_bits, 2, 16, TrainError)
        check_bits("--bias-bits", self.bias_bits, 2, 16, TrainError)
        check_bits("--act-bits", self.act_bits, 1, MAX_DATA_BITS, TrainError)
        if self.weights not in WEIGHT_MODES:
            raise TrainError(f"--weights must be one of {', '.join(WEIGHT_MODES)}, not {self.weights!r}")
        if self.class_weight not in CLASS_WEIGHTS:
            raise TrainError(f"--class-weight must be one of {', '.join(CLASS_WEIGHTS)}, not {self.class_weight!r}")
        if self.input_range not in INPUT_RANGES:
            raise TrainError(f"--input-range must be one of {', '.join(INPUT_RANGES)}, not {self.input_range!r}")
        for name, lo in (("epochs", 1), ("float_epochs", 0), ("batch_size", 1), ("patience", 1), ("restarts", 1),
                         ("float_candidates", 1),
                         ("seed", 0), ("pow2_stage_epochs", 1), ("pow2_rescale", 0), ("pow2_search", 0)):
            v = getattr(self, name)
            if name == "batch_size" and v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise TrainError(f"--{name.replace('_', '-')} must be an integer >= {lo}, not {v!r}")
        for name, v, ok in (("lr", self.lr, lambda v: v > 0), ("weight-decay", self.weight_decay, lambda v: v >= 0),
                            ("pow2-damp", self.pow2_damp, lambda v: v >= 0),
                            ("val-fraction", self.val_fraction, lambda v: 0 < v < 1)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not ok(v):
                raise TrainError(f"--{name} is out of range: {v!r}")
        if not self.pow2_stages or self.pow2_stages[-1] != 1.0 or list(self.pow2_stages) != sorted(self.pow2_stages):
            raise TrainError(f"pow2_stages must be increasing fractions ending with 1.0, not {self.pow2_stages}")


# ----------------------------------------------------------------------------- network
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


# ----------------------------------------------------------------------------- export
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


# ----------------------------------------------------------------------------- data
def choose_quantizer(data: Dataset, bits: int, mode: str = "auto") -> InputQuantizer:
    """The input quantizer (see :data:`INPUT_RANGES`)."""
    if mode == "auto" and InputQuantizer.is_prequantized(data.X_train, bits):
        return InputQuantizer.for_prequantized(data.n_features, bits)
    if mode in ("auto", "robust"):
        return robust_quantizer(data.X_train, bits)
    return InputQuantizer.fit(data.X_train, bits)


def robust_quantizer(X: np.ndarray, bits: int, q: float = ROBUST_PERCENTILE) -> InputQuantizer:
    """Per feature, the ``q``-th to ``(100-q)``-th percentile of the training values spans
    the codes, so that a few outliers do not squeeze everyone else into a couple of codes
    (the outliers saturate); a feature whose percentiles coincide keeps its min-max range."""
    X = np.asarray(X, dtype=np.float64)
    lo, hi = np.percentile(X, q, axis=0), np.percentile(X, 100 - q, axis=0)
    flat = hi <= lo
    return InputQuantizer(lo=np.where(flat, X.min(axis=0), lo), hi=np.where(flat, X.max(axis=0), hi), bits=bits)


def auto_batch_size(n: int) -> int:
    """About 24 mini-batches per epoch, a power of two in 32..256: small sets still get
    enough updates per epoch, large ones do not pay Brevitas' per-step overhead too often."""
    return int(min(256, max(32, 2 ** round(math.log2(max(1, n) / 24)))))


def _class_weights(y: np.ndarray, n_classes: int, mode: str) -> torch.Tensor | None:
    if mode == "none":
        return None
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    return torch.tensor(np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0), dtype=torch.float32)


# ----------------------------------------------------------------------------- training
#: ``progress(phase, epoch, total_epochs, metrics)``; metrics: ``val_acc``, ``val_loss``,
#: ``best_val_acc``. Phases: ``"float r/R"``, ``"qat r/R"`` (pow2 also ``"qat r/R (k/K)"``).
Progress = Callable[[str, int, int, dict], None]


def _no_progress(phase: str, epoch: int, total: int, metrics: dict) -> None:
    pass


@dataclass
class TrainResult:
    """What :func:`train` produced: the IR, the input quantizer, the trained Brevitas
    network, per-layer scale exponents and a JSON-able summary (accuracies, ranges,
    timings, configuration) that also goes into the model file."""

    ir: MLP
    quantizer: InputQuantizer
    net: QATNet
    summary: dict[str, Any]
    layers: list[dict] = field(default_factory=list)


@dataclass
class _Split:
    x: torch.Tensor
    y: torch.Tensor
    xv: torch.Tensor
    yv: torch.Tensor


def _accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits.argmax(dim=1) == y).float().mean()) if len(y) else float("nan")


def _snapshot(net: nn.Module) -> dict[str, torch.Tensor]:
    # state_dict copies: deep-copying a Brevitas module is ~100x slower.
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _epochs(net: QATNet, forward: Callable, d: _Split, *, epochs: int, lr: float, cfg: TrainConfig,
            loss_fn: nn.Module, gen: torch.Generator, phase: str, progress: Progress,
            penalty: Callable[[float], torch.Tensor] | None = None) -> dict:
    """Adam on mini-batches with a cosine learning rate. The best epoch on the validation
    split (accuracy, then loss) is restored at the end; stops after ``patience`` epochs
    without progress. ``penalty(t)`` (``t`` = 0..1 through the phase) is added to the loss."""
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs), eta_min=lr / 20)
    best_key, best_state, best = None, _snapshot(net), {}
    stale, n, epoch = 0, len(d.y), 0
    for epoch in range(1, epochs + 1):
        net.train()
        perm = torch.randperm(n, generator=gen)
        for s in range(0, n, cfg.batch_size):
            idx = perm[s:s + cfg.batch_size]
            opt.zero_grad()
            loss = loss_fn(forward(d.x[idx]), d.y[idx])
            if penalty is not None:
                loss = loss + penalty((epoch - 1) / max(1, epochs - 1))
            loss.backward()
            opt.step()
        sched.step()
        net.eval()
        with torch.no_grad():
            logits = forward(d.xv)
            metrics = {"val_acc": _accuracy(logits, d.yv), "val_loss": float(loss_fn(logits, d.yv))}
        key = (metrics["val_acc"], -metrics["val_loss"])
        if best_key is None or key > best_key:
            best_key, best_state, best, stale = key, _snapshot(net), dict(metrics, epoch=epoch), 0
        else:
            stale += 1
        progress(phase, epoch, epochs, dict(metrics, best_val_acc=best_key[0]))
        if stale >= cfg.patience:
            break
    net.load_state_dict(best_state, strict=False)  # strict=False: Brevitas hides stats-phase parameters
    return dict(best, epochs_run=epoch)


@dataclass
class _FloatStart:
    """One float network of the screening (:func:`_float_screen`): its weights and biases
    per layer (``nn.Linear`` layout) and its best epoch on validation."""

    weights: list[torch.Tensor]
    biases: list[torch.Tensor]
    best: dict


def _float_screen(sizes: Sequence[int], d: _Split, cfg: TrainConfig, loss_fn: nn.Module,
                  progress: Progress) -> list[_FloatStart]:
    """``max(cfg.float_candidates, cfg.restarts)`` float MLPs of layer sizes ``sizes``,
    trained side by side as one batched model (same optimizer, schedule, batches and early
    stopping rule as :func:`_epochs`, each network keeping its own best epoch), best on
    validation first. Initialized as ``nn.Linear`` does, from ``cfg.seed``."""
    K = max(cfg.float_candidates, cfg.restarts)
    gen = torch.Generator().manual_seed(cfg.seed)
    Ws, Bs = [], []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / math.sqrt(n_in)
        Ws.append(((torch.rand(K, n_in, n_out, generator=gen) * 2 - 1) * bound).requires_grad_())
        Bs.append(((torch.rand(K, 1, n_out, generator=gen) * 2 - 1) * bound).requires_grad_())

    def forward(x: torch.Tensor) -> torch.Tensor:  # (n, in) -> (K, n, classes)
        h = x.expand(K, -1, -1)
        for k, (W, b) in enumerate(zip(Ws, Bs)):
            h = torch.baddbmm(b, h, W)
            if k < len(Ws) - 1:
                h = torch.relu(h)
        return h

    def per_net_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        C = logits.shape[-1]
        return torch.stack([loss_fn(logits[k], y) for k in range(K)]) if loss_fn.weight is not None else \
            F.cross_entropy(logits.reshape(-1, C), y.repeat(K), reduction="none").reshape(K, -1).mean(dim=1)

    params = Ws + Bs
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.float_epochs), eta_min=cfg.lr / 20)
    best_acc = torch.full((K,), -1.0)
    best_loss = torch.full((K,), float("inf"))
    best_epoch = torch.zeros(K, dtype=torch.long)
    best_params = [p.detach().clone() for p in params]
    stale = torch.zeros(K, dtype=torch.long)
    n, epoch = len(d.y), 0
    shuffle = torch.Generator().manual_seed(cfg.seed)
    for epoch in range(1, cfg.float_epochs + 1):
        perm = torch.randperm(n, generator=shuffle)
        for s0 in range(0, n, cfg.batch_size):
            idx = perm[s0:s0 + cfg.batch_size]
            opt.zero_grad()
            per_net_loss(forward(d.x[idx]), d.y[idx]).sum().backward()
            opt.step()
        sched.step()
        with torch.no_grad():
            logits = forward(d.xv)
            acc = (logits.argmax(dim=2) == d.yv[None]).float().mean(dim=1)
            loss = per_net_loss(logits, d.yv)
        better = (acc > best_acc) | ((acc == best_acc) & (loss < best_loss))
        best_acc = torch.where(better, acc, best_acc)
        best_loss = torch.where(better, loss, best_loss)
        best_epoch = torch.where(better, torch.tensor(epoch), best_epoch)
        stale = torch.where(better, torch.zeros_like(stale), stale + 1)
        for kept, p in zip(best_params, params):
            kept[better] = p.detach()[better]
        progress(f"float x{K}", epoch, cfg.float_epochs, {"val_acc": float(acc.max()), "val_loss": float(loss.min()),
                                                         "best_val_acc": float(best_acc.max())})
        if bool((stale >= cfg.patience).all()):
            break
    order = sorted(range(K), key=lambda k: (-float(best_acc[k]), float(best_loss[k]), k))
    L = len(Ws)
    return [_FloatStart(weights=[best_params[i][k].T.contiguous() for i in range(L)],
                        biases=[best_params[L + i][k, 0].clone() for i in range(L)],
                        best={"val_acc": float(best_acc[k]), "val_loss": float(best_loss[k]),
                              "epoch": int(best_epoch[k]), "epochs_run": epoch, "candidate": k, "candidates": K})
            for k in order]


def _calibrate(net: QATNet, x: torch.Tensor, cfg: TrainConfig, gen: torch.Generator) -> None:
    """Let the activation quantizers collect their statistics (after which their scales
    become learnable parameters) before QAT starts."""
    net.train()
    with torch.no_grad():
        for _ in range(_ActQuant.collect_stats_steps + 1):
            net(x[torch.randperm(len(x), generator=gen)[:max(cfg.batch_size, 256)]])


def pow2_rescale(net: QATNet, x: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module, *, sweeps: int = 1,
                 grid: int = 16) -> None:
    """Choose, per hidden neuron, a factor ``c`` in ``[1, 2)`` that scales its incoming
    weights and bias by ``c`` and its outgoing weights by ``1/c``: the float function is
    unchanged (ReLU is positively homogeneous), the powers of two the weights round to are
    not. Keeps the factor with the lowest quantized training loss."""
    net.eval()
    factors = [1.0 + i / grid for i in range(grid)]
    with torch.no_grad():
        for _ in range(sweeps):
            for k in range(len(net.acts)):
                a, b = net.linears[k], net.linears[k + 1]
                for j in range(a.out_features):
                    w_in, b_in, w_out = a.weight[j].clone(), a.bias[j].clone(), b.weight[:, j].clone()
                    scores = []
                    for c in factors:
                        a.weight[j], a.bias[j], b.weight[:, j] = w_in * c, b_in * c, w_out / c
                        scores.append(float(loss_fn(net(x), y)))
                    c = factors[int(np.argmin(scores))]
                    a.weight[j], a.bias[j], b.weight[:, j] = w_in * c, b_in * c, w_out / c


def pow2_local_search(net: QATNet, x: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module, *,
                      sweeps: int = 2) -> int:
    """Discrete fine-tuning of *frozen* power-of-two weights: for each weight in turn try
    ``2w, w/2, -w, 0`` (``±`` the smallest step for a zero weight) and keep the change
    if the training loss drops. Returns the number of accepted changes."""
    net.eval()

    def loss() -> float:
        with torch.no_grad():
            return float(loss_fn(net(x), y))

    best, accepted = loss(), 0
    for _ in range(sweeps):
        changed = 0
        for m in _pow2_layers(net):
            flat = m.pow2_value.view(-1)
            step = float(m.quant_weight().scale.detach())
            for i in range(flat.numel()):
                v = float(flat[i])
                for c in ([2 * v, v / 2, -v, 0.0] if v != 0 else [step, -step]):
                    flat[i] = c
                    trial = loss()
                    if trial < best - 1e-7:
                        best, v, changed = trial, c, changed + 1
                    else:
                        flat[i] = v
        accepted += changed
        if not changed:
            break
    return accepted


def _qat_pow2(net: QATNet, d: _Split, cfg: TrainConfig, loss_fn: nn.Module, gen: torch.Generator, tag: str,
              progress: Progress) -> None:
    """Power-of-two QAT before the final phase: staged freezing with oscillation
    dampening and per-neuron rescaling, then a discrete local search."""
    stages = cfg.pow2_stages
    damp = (lambda t: cfg.pow2_damp * t * pow2_dampening(net)) if cfg.pow2_damp else None
    for k, frac in enumerate(stages[:-1]):
        if cfg.pow2_rescale:
            pow2_rescale(net, d.x, d.y, loss_fn, sweeps=cfg.pow2_rescale)
        _epochs(net, net.forward, d, epochs=cfg.pow2_stage_epochs, lr=cfg.lr / 2, cfg=cfg,
                loss_fn=loss_fn, gen=gen, phase=f"qat {tag} ({k + 1}/{len(stages)})", progress=progress,
                penalty=damp)
        freeze_pow2(net, frac)
    freeze_pow2(net, 1.0)
    if cfg.pow2_search:
        pow2_local_search(net, d.x, d.y, loss_fn, sweeps=cfg.pow2_search)


def train(data: Dataset, cfg: TrainConfig, *, name: str = "mlp", progress: Progress = _no_progress) -> TrainResult:
    """QAT of ``data`` with ``cfg`` (see the module docstring). The exported IR is checked
    against the Brevitas model on every training and test sample before it is returned."""
    if not isinstance(cfg, TrainConfig):
        raise TypeError("cfg must be a TrainConfig")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: a thread pool costs far more than it gives
    try:
        return _train(data, cfg, name, progress)
    finally:
        torch.set_num_threads(threads)


def _train(data: Dataset, cfg: TrainConfig, name: str, progress: Progress) -> TrainResult:
    t0 = time.perf_counter()
    if len(np.unique(data.y_train)) < 2:
        raise DataError(f"{data.name}: the training split holds a single class; a classifier needs at least two")
    quantizer = choose_quantizer(data, cfg.input_bits, cfg.input_range)
    # The validation split is also the one explore picks designs on, so this model's
    # validation accuracy is somewhat optimistic (it early-stops and picks its restarts on
    # it). Choosing on a part of its own instead was measured and cost the exact models
    # 1.2-2.2 points of test accuracy (fewer samples to learn from): see the README.
    split = data.validation_split(cfg.val_fraction, cfg.seed)
    codes_fit, codes_val, codes_test = quantizer(split.X_fit), quantizer(split.X_val), quantizer(data.X_test)
    if cfg.batch_size is None:
        cfg = replace(cfg, batch_size=auto_batch_size(len(codes_fit)))
    loss_fn = nn.CrossEntropyLoss(weight=_class_weights(split.y_fit, data.n_classes, cfg.class_weight))
    y_fit, y_val = torch.tensor(split.y_fit, dtype=torch.long), torch.tensor(split.y_val, dtype=torch.long)
    y_test = torch.tensor(data.y_test, dtype=torch.long)

    def make_net() -> QATNet:
        return QATNet(data.n_features, cfg.hidden, data.n_classes, input_bits=cfg.input_bits,
                      weight_bits=cfg.weight_bits, bias_bits=cfg.bias_bits, act_bits=cfg.act_bits, weights=cfg.weights)

    torch.manual_seed(cfg.seed)
    probe = make_net()
    d = _Split(probe.codes_to_input(codes_fit), y_fit, probe.codes_to_input(codes_val), y_val)
    starts = []
    if cfg.float_epochs:  # the float optima of many starts, the restarts best ones go on to QAT
        starts = _float_screen((data.n_features, *cfg.hidden, data.n_classes), d, cfg, loss_fn, progress)
    runs = []
    for r in range(cfg.restarts):
        seed = cfg.seed + r
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        net = make_net()
        tag = f"{r + 1}/{cfg.restarts}"
        fbest: dict = {}
        if starts:
            with torch.no_grad():
                for lin, w, b in zip(net.linears, starts[r].weights, starts[r].biases):
                    lin.weight.copy_(w)
                    lin.bias.copy_(b)
            fbest = starts[r].best
        with torch.no_grad():
            float_test = _accuracy(net.forward_float(net.codes_to_input(codes_test)), y_test)
        _calibrate(net, d.x, cfg, gen)
        if cfg.weights == "pow2":
            _qat_pow2(net, d, cfg, loss_fn, gen, tag, progress)
        qbest = _epochs(net, net.forward, d, epochs=cfg.epochs, lr=cfg.lr / 2, cfg=cfg, loss_fn=loss_fn, gen=gen,
                        phase=f"qat {tag}", progress=progress)
        runs.append({"seed": seed, "net": net, "float": fbest, "qat": qbest, "float_test": float_test})
    best = max(runs, key=lambda r: (r["qat"]["val_acc"], -r["qat"]["val_loss"], -r["seed"]))
    net = best["net"]

    meta = {"quantization": SCHEME, "weights": cfg.weights, "source": data.name, "train_seed": best["seed"],
            "input_bits": cfg.input_bits, "weight_bits": cfg.weight_bits, "bias_bits": cfg.bias_bits,
            "act_bits": cfg.act_bits, "input_lo": json.dumps(quantizer.lo.tolist()),
            "input_hi": json.dumps(quantizer.hi.tolist()), "class_names": json.dumps(list(data.classes))}
    ir, info = export_ir(net, name=name, meta=meta)
    ir = ir.with_meta(scale_log2=json.dumps([rec["output_scale_log2"] for rec in info]))

    codes_all = np.concatenate([codes_fit, codes_val, codes_test])
    mism = check_exact(net, ir, codes_all)
    if mism:
        raise TrainError(f"internal error: the Brevitas model and the exported IR disagree on {mism} of "
                         f"{len(codes_all)} samples; please report this with the command line")
    if cfg.weights == "pow2":
        a = np.abs(np.concatenate([layer.weight_matrix.ravel() for layer in ir.layers]))
        if np.any(a & (a - 1)):
            raise TrainError("internal error: a pow2 weight is not a power of two; please report this")

    def acc(codes: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(golden.predict(ir, codes) == y)) if len(y) else float("nan")

    summary = {
        "data": data.name, "topology": ir.topology_str, "weights": cfg.weights, "seed": best["seed"],
        "restarts": cfg.restarts,
        "float_accuracy": {"val": best["float"].get("val_acc"), "test": best["float_test"]},
        "accuracy": {"train": acc(codes_fit, split.y_fit), "val": acc(codes_val, split.y_val),
                     "test": acc(codes_test, data.y_test)},
        "validation": split.source,
        "epochs": {"float": best["float"].get("epochs_run", 0), "float_best": best["float"].get("epoch", 0),
                   "qat": best["qat"]["epochs_run"], "qat_best": best["qat"]["epoch"]},
        "brevitas_equals_golden": {"samples": int(len(codes_all)), "mismatches": 0},
        "ranges": layer_ranges(ir, np.concatenate([codes_fit, codes_val]), info),
        "config": asdict(cfg) | {"hidden": list(cfg.hidden), "pow2_stages": list(cfg.pow2_stages)},
        "train_seconds": round(time.perf_counter() - t0, 2),
        "ir_sha256": ir.digest,
    }
    return TrainResult(ir=ir, quantizer=quantizer, net=net, summary=summary, layers=info)


def layer_ranges(ir: MLP, codes: np.ndarray, info: Sequence[dict] = ()) -> list[dict]:
    """Per layer: integer weight and bias ranges, shift, the accumulator and output ranges
    seen on ``codes`` and the worst-case accumulator width (for the training summary)."""
    from ..core.ranges import analyze

    ev = golden.evaluate(ir, codes, trace=True)
    bounds = analyze(ir)
    x, out = codes, []
    for k, layer in enumerate(ir.layers):
        W, b = layer.weight_matrix, layer.bias_vector
        acc = x @ W.T + b
        rec = {"layer": k, "shape": f"{layer.n_in}->{layer.n_out}", "activation": layer.activation,
               "weights": [int(W.min()), int(W.max())], "biases": [int(b.min()), int(b.max())],
               "shift": layer.shift, "act_bits": layer.act_bits if layer.activation == "qrelu" else None,
               "acc_seen": [int(acc.min()), int(acc.max())],
               "acc_bits_worst": signed_width(min(n.acc_lo for n in bounds[k]), max(n.acc_hi for n in bounds[k])),
               "out_seen": [int(ev.outputs[k].min()), int(ev.outputs[k].max())]}
        if k < len(info):
            rec["scale_log2"] = info[k]["output_scale_log2"]
        out.append(rec)
        x = ev.outputs[k]
    return out


# ----------------------------------------------------------------------------- saving
def save(result: TrainResult, path: Any) -> None:
    """Write the trained model in the integer model format that ``approxmlp compile``
    (:func:`approxmlp.frontend.quantize.load_model`) compiles as is; see
    :func:`approxmlp.frontend.quantize.save_integer_model`."""
    import brevitas

    from .. import __version__
    from ..frontend.quantize import save_integer_model

    s = result.summary
    cfg = s["config"]
    meta = {
        "producer": f"approxmlp {__version__} train (brevitas {brevitas.__version__}, torch {torch.__version__})",
        "quantization": SCHEME, "weights": cfg["weights"], "input_bits": cfg["input_bits"],
        "weight_bits": cfg["weight_bits"], "bias_bits": cfg["bias_bits"], "act_bits": cfg["act_bits"],
        "float_accuracy": s["float_accuracy"]["test"], "accuracy": s["accuracy"],
        "class_names": json.loads(dict(result.ir.meta).get("class_names", "[]")),
        "training": s,
    }
    save_integer_model(path, result.ir, result.quantizer, meta)


def save_qonnx(result: TrainResult, path: Any) -> None:
    """Write the trained Brevitas network as QONNX (``brevitas.export.export_qonnx``): integer
    ``Quant`` nodes with power-of-two scales on the input, the weights, the biases and the
    activations (floor rounding). The graph takes ``codes * 2**-input_bits``; the input
    quantizer (raw features to codes) and the class names go into its ``metadata_props``
    (``approxmlp.input_lo``, ``approxmlp.input_hi``, ``approxmlp.class_names``), so that
    ``approxmlp compile`` reads the same IR from it as from the ``.pt`` (checked here)."""
    import os
    import tempfile
    from pathlib import Path

    import onnx
    from brevitas.export import export_qonnx

    from .onnx_model import load_onnx

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    net = result.net
    net.eval()
    tmpdir = tempfile.mkdtemp(prefix=f".{p.name}.", dir=p.parent)
    try:
        raw = Path(tmpdir) / "export.onnx"
        import logging
        import warnings

        quiet = logging.getLogger("torch.onnx")   # "torchvision is not installed" notes of the exporter
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                export_qonnx(net, input_t=net.codes_to_input(np.zeros((1, result.ir.n_inputs), dtype=np.int64)),
                             export_path=str(raw), verbose=False)
        finally:
            quiet.setLevel(level)
        model = onnx.load(str(raw))    # our own file: its external data, if any, come along
        meta = {"approxmlp.input_lo": json.dumps(result.quantizer.lo.tolist()),
                "approxmlp.input_hi": json.dumps(result.quantizer.hi.tolist()),
                "approxmlp.ir_sha256": result.ir.digest}
        names = dict(result.ir.meta).get("class_names")
        if names:
            meta["approxmlp.class_names"] = names
        onnx.helper.set_model_props(model, meta)
        final = Path(tmpdir) / p.name
        onnx.save(model, str(final))
        back = load_onnx(final)
        if back.ir.digest != result.ir.digest:
            raise TrainError("internal error: the QONNX export does not compile to the trained IR; please report this")
        os.replace(final, p)
    finally:
        import shutil

        shutil.rmtree(tmpdir, ignore_errors=True)
