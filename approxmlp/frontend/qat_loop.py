"""The training loop of `approxmlp train`: Adam on mini-batches with a cosine learning
rate, early stopping on the validation part, the best epoch restored (:func:`run_epochs`).

Plain torch: it trains whatever module it is handed (the Brevitas network in QAT, its
float view in the warm-up), so it is apart from both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..progress import EpochProgress
from .train_config import TrainConfig

def auto_batch_size(n: int) -> int:
    """About 24 mini-batches per epoch, a power of two in 32..256: small sets still get
    enough updates per epoch, large ones do not pay Brevitas' per-step overhead too often."""
    return int(min(256, max(32, 2 ** round(math.log2(max(1, n) / 24)))))


def class_weights(y: np.ndarray, n_classes: int, mode: str) -> torch.Tensor | None:
    if mode == "none":
        return None
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    return torch.tensor(np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0), dtype=torch.float32)


@dataclass
class Split:
    x: torch.Tensor
    y: torch.Tensor
    xv: torch.Tensor
    yv: torch.Tensor


def logits_accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits.argmax(dim=1) == y).float().mean()) if len(y) else float("nan")


def _snapshot(net: nn.Module) -> dict[str, torch.Tensor]:
    # state_dict copies: deep-copying a Brevitas module is ~100x slower.
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def run_epochs(net: nn.Module, forward: Callable, d: Split, *, epochs: int, lr: float, cfg: TrainConfig,
            loss_fn: nn.Module, gen: torch.Generator, phase: str, progress: EpochProgress,
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
            metrics = {"val_acc": logits_accuracy(logits, d.yv), "val_loss": float(loss_fn(logits, d.yv))}
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
