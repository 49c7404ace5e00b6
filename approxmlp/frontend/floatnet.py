"""Plain PyTorch float MLPs: the starting point a user brings, and the demo's.

`train_float` trains ``Linear/ReLU`` layers on standardized features (tiny MLPs train
badly on raw features whose ranges differ by 1000x, and min-max scaling lets a few outliers
squash the rest: on white wine it trains into a constant classifier), then folds that
scaling into the first layer so the returned model takes the *raw* features, as a user's
model would.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn


def make_mlp(n_in: int, hidden: Sequence[int], n_out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    fan = n_in
    for h in hidden:
        layers += [nn.Linear(fan, h), nn.ReLU()]
        fan = h
    layers.append(nn.Linear(fan, n_out))
    return nn.Sequential(*layers)


def train_float(X: np.ndarray, y: np.ndarray, hidden: Sequence[int], n_classes: int, *, epochs: int = 300,
                lr: float = 0.02, seed: int = 0, weight_decay: float = 1e-4) -> nn.Sequential:
    """Full-batch Adam on cross-entropy; deterministic for a seed.

    Runs on one thread: for tensors this small, torch's thread pool costs far more than it
    gives, and on a busy 2-core machine it can make training ~100x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(X, y, hidden, n_classes, epochs=epochs, lr=lr, seed=seed, weight_decay=weight_decay)
    finally:
        torch.set_num_threads(threads)


def _train(X, y, hidden, n_classes, *, epochs, lr, seed, weight_decay) -> nn.Sequential:
    torch.manual_seed(seed)
    lo, span = X.mean(axis=0), X.std(axis=0)
    span = np.where(span > 0, span, 1.0)
    Xs = torch.tensor((X - lo) / span, dtype=torch.float32)
    yt = torch.tensor(y, dtype=torch.long)
    net = make_mlp(X.shape[1], hidden, n_classes)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        opt.zero_grad()
        loss = loss_fn(net(Xs), yt)
        loss.backward()
        opt.step()
    with torch.no_grad():  # fold x_scaled = (x - mean) / std into the first layer
        first = net[0]
        scale = torch.tensor(1.0 / span, dtype=torch.float32)
        first.bias -= first.weight @ torch.tensor(lo * (1.0 / span), dtype=torch.float32)
        first.weight *= scale
    return net


def float_predict(net: nn.Module, X: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.tensor(X, dtype=torch.float32)).argmax(dim=1).numpy()
