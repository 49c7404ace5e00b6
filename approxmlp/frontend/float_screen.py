"""The float warm-up of `approxmlp train`: many float MLPs screened side by side.

With a hidden layer of a few neurons, where the float optimization lands is a lottery
(Pendigits 16-5-10: 0.67 to 0.96 validation accuracy over 16 starts), so
:func:`float_screen` trains ``float_candidates`` networks as one batched model and hands
the best on validation to QAT. Plain torch, no Brevitas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..progress import EpochProgress
from .qat_loop import Split
from .train_config import TrainConfig

@dataclass
class FloatStart:
    """One float network of the screening (:func:`float_screen`): its weights and biases
    per layer (``nn.Linear`` layout) and its best epoch on validation."""

    weights: list[torch.Tensor]
    biases: list[torch.Tensor]
    best: dict


def float_screen(sizes: Sequence[int], d: Split, cfg: TrainConfig, loss_fn: nn.Module,
                  progress: EpochProgress) -> list[FloatStart]:
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
    return [FloatStart(weights=[best_params[i][k].T.contiguous() for i in range(L)],
                        biases=[best_params[L + i][k, 0].clone() for i in range(L)],
                        best={"val_acc": float(best_acc[k]), "val_loss": float(best_loss[k]),
                              "epoch": int(best_epoch[k]), "epochs_run": epoch, "candidate": k, "candidates": K})
            for k in order]
