"""Power-of-two weights after QAT: staged freezing, per-neuron rescaling and a discrete
local search (:func:`qat_pow2`).

Power-of-two weights oscillate between neighbouring powers under plain straight-through
training, so the pow2 QAT also (Nagel et al. 2022; Zhou et al. 2017) dampens that
oscillation, freezes the weights in stages, picks per-neuron scale factors that the float
function does not see but the rounding does (:func:`pow2_rescale`) and ends with a
discrete local search (:func:`pow2_local_search`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..progress import EpochProgress
from .brevitas_net import QATNet, freeze_pow2, pow2_dampening, pow2_layers
from .qat_loop import Split, run_epochs
from .train_config import TrainConfig

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
        for m in pow2_layers(net):
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


def qat_pow2(net: QATNet, d: Split, cfg: TrainConfig, loss_fn: nn.Module, gen: torch.Generator, tag: str,
              progress: EpochProgress) -> None:
    """Power-of-two QAT before the final phase: staged freezing with oscillation
    dampening and per-neuron rescaling, then a discrete local search."""
    stages = cfg.pow2_stages
    damp = (lambda t: cfg.pow2_damp * t * pow2_dampening(net)) if cfg.pow2_damp else None
    for k, frac in enumerate(stages[:-1]):
        if cfg.pow2_rescale:
            pow2_rescale(net, d.x, d.y, loss_fn, sweeps=cfg.pow2_rescale)
        run_epochs(net, net.forward, d, epochs=cfg.pow2_stage_epochs, lr=cfg.lr / 2, cfg=cfg,
                loss_fn=loss_fn, gen=gen, phase=f"qat {tag} ({k + 1}/{len(stages)})", progress=progress,
                penalty=damp)
        freeze_pow2(net, frac)
    freeze_pow2(net, 1.0)
    if cfg.pow2_search:
        pow2_local_search(net, d.x, d.y, loss_fn, sweeps=cfg.pow2_search)
