"""Approximation-aware retraining of a population's constants (the search's memetic step).

The genetic search picks a *structure*: which connections exist, which operand bits each
product keeps, the product and activation truncations, the argmax compare bits. Random
mutations are a poor way to fit the ~130 constants that go with it: after a cut, the
other weights and the biases should move to compensate. :func:`retrain` does that by
gradient descent, with the structure fixed:

* a torch model of the exact integer IR semantics (:mod:`approxmlp.core.ir`), batched over
  individuals: masked operands, products ``sign(w) (|w (x & m)| >> t << t)``, the bias,
  the arithmetic right shift, QReLU, ``act_trunc``, ``cmp_drop``. The forward pass is
  bit-exact (float32 or float64 on integer values, whichever is exact; checked against :mod:`approxmlp.search.evaluate`'s
  evaluator by the tests), so the accuracy it reports is the circuit's;
* straight-through estimators where the semantics are not differentiable: every rounding
  (weight onto its value set, bias onto the integers, the floor of the shift, the
  truncations, the operand masks) passes the gradient through unchanged; the clamps pass
  it only inside their range;
* weights move on their value set: power-of-two weights in the log domain (sign kept,
  latent ``log2 |w|``, rounded; a magnitude below 1/2 is zero, so a weight may also be
  removed), other value sets as a latent integer projected onto the nearest allowed value.
  Connections the structure removed (zero weight or mask) stay removed;
* cross-entropy on the scores times a per-individual temperature (the one that fits the
  starting scores best), Adam on mini-batches, and every ``eval_every`` steps the exact
  accuracy on all samples: each individual returns its best iterate (never worse than it
  started: the starting point is iterate 0).

Deterministic for a ``seed`` (torch on one thread, a seeded generator for the batches).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .genome import Population, allowed_weights, project_weights
from ..core.ir import MAX_BIAS_BITS


@dataclass(frozen=True)
class RetrainConfig:
    steps: int = 150
    batch: int = 1024
    lr: float = 0.01            # Adam, on normalized latents (log2 magnitudes, bias / scale), cosine decay
    eval_every: int = 15
    multipliers: str = "pow2"
    weight_bits: int = 8


def _temperature(scores, y, torch):
    """Per individual ``(K,)``: the scale of the scores that minimizes the cross-entropy, on a
    grid of powers of two (relative to the scores' spread)."""
    K = scores.shape[0]
    spread = scores.std(dim=(1, 2)).clamp_min(1.0)
    grid = 2.0 ** torch.arange(-4.0, 6.5, 0.5, dtype=scores.dtype)
    best = torch.full((K,), float("inf"), dtype=scores.dtype)
    tau = torch.ones(K, dtype=scores.dtype)
    for g in grid:
        t = g / spread
        logits = scores * t[:, None, None]
        ce = torch.nn.functional.cross_entropy(logits, y[None].expand(K, -1),
                                               reduction="none").mean(dim=1)
        better = ce < best
        best = torch.where(better, ce, best)
        tau = torch.where(better, t, tau)
    return tau


class _Model:
    """The batched exact model of ``K`` individuals (see the module docstring)."""

    def __init__(self, pop: Population, X: np.ndarray, cfg: RetrainConfig, torch):
        self.torch = torch
        self.base = base = pop.base
        self.cfg = cfg
        self.K = pop.size
        self.allowed = allowed_weights(cfg.weight_bits, cfg.multipliers)
        self.w_top = int(np.abs(self.allowed).max())
        # float32 is exact on integers below 2**24: every accumulator stays below that when
        # the largest weight meets the largest operand on every connection and the biases
        # are kept within 2**22 (they are clamped there); otherwise float64
        bound, op_max = 0, int(X.max(initial=0))
        for li, layer in enumerate(base.layers):
            top_w = max(int(np.abs(self.allowed).max()), int(np.abs(pop.weights[li]).max(initial=0)))
            bound = max(bound, layer.n_in * top_w * op_max)
            op_max = (1 << layer.act_bits) - 1
        b_max = max(int(np.abs(b).max(initial=0)) for b in pop.biases)
        small = bound + (1 << 22) < (1 << 24) and b_max < (1 << 22)
        self.dtype = dt = torch.float32 if small else torch.float64
        self.b_lim = float(1 << 22) if small else float(1 << (MAX_BIAS_BITS - 1))
        self.pow2 = cfg.multipliers == "pow2"
        self.emax = math.log2(self.w_top) if self.pow2 else None
        self.layers = []
        for li, layer in enumerate(base.layers):
            W = pop.weights[li].astype(np.int64)
            M = pop.masks[li].astype(np.int64)
            live = (W != 0) & (M != 0)
            B = pop.biases[li].astype(np.int64)
            rec = {"M": torch.from_numpy(M), "live": torch.from_numpy(live),
                   "sign": torch.from_numpy(np.sign(W)).to(dt),
                   "T": torch.from_numpy(pop.product_trunc[li].astype(np.int64)).to(dt),
                   "AT": torch.from_numpy(pop.act_trunc[li].astype(np.int64)).to(dt),
                   "shift": layer.shift, "qrelu": layer.activation == "qrelu",
                   "top": float((1 << layer.act_bits) - 1)}
            if self.pow2:
                e = np.log2(np.maximum(np.abs(W), 1)).astype(np.float64)
                rec["wlat"] = torch.tensor(np.where(live, e, -4.0), dtype=dt, requires_grad=True)
                rec["wscale"] = 1.0
            else:
                s = float(max(1, np.abs(W).max()))
                rec["wlat"] = torch.tensor(W / s, dtype=dt, requires_grad=True)
                rec["wscale"] = s
            rec["B0"] = B
            self.layers.append(rec)
        self.cmp_drop = torch.from_numpy(pop.cmp_drop.astype(np.int64)).to(dt)
        # per layer: the operand bits each mask keeps, times their weights 2**b (K, out, in * bits)
        for li, r in enumerate(self.layers):
            bits = max(1, base.operand_bits(li))
            if li == 0:
                bits = max(1, int(X.max(initial=0)).bit_length())
            r["bits"] = bits
            kb = (r["M"][..., None] >> torch.arange(bits)) & 1
            r["mbits"] = (kb * (1 << torch.arange(bits))).to(dt)          # (K, out, in, bits)
            r["rows"] = torch.nonzero(r["T"] != 0)                       # truncating neurons
        Xi = np.ascontiguousarray(X.astype(np.int64))
        self.x_int = torch.from_numpy(Xi)                                  # (N, in)
        planes = (Xi[:, :, None] >> np.arange(self.layers[0]["bits"])) & 1
        self.planes = torch.from_numpy(planes.reshape(len(Xi), -1)).to(dt)  # (N, in * bits)
        self.levels = 1 << self.layers[0]["bits"]
        onehot = Xi[:, :, None] == np.arange(self.levels)
        self.onehot = torch.from_numpy(onehot.reshape(len(Xi), -1)).to(dt)   # (N, in * levels)
        self.n = X.shape[0]
        # bias latents in units of max(2**shift, spread of the accumulator / 8): Adam moves
        # every latent by about lr per step, whatever its scale
        for r in self.layers:
            r["bscale"] = float(1 << r["shift"])
            r["blat"] = torch.zeros(1, dtype=dt)
        with torch.no_grad():
            accs = self.forward(trace=True)
        for r, acc in zip(self.layers, accs):
            r["bscale"] = max(float(1 << r["shift"]), float(acc.std()) / 8.0)
            r["blat"] = torch.tensor(r.pop("B0") / r["bscale"], dtype=dt, requires_grad=True)

    def clamp_latents(self) -> None:
        """Keep log2 magnitudes within the value set (a latent far past the largest weight
        would take as long to come back, and its gradient, ``w ln 2``, would explode)."""
        if self.pow2:
            with self.torch.no_grad():
                for r in self.layers:
                    r["wlat"].clamp_(-1.5, self.emax + 0.49)

    def params(self):
        return [p for r in self.layers for p in (r["wlat"], r["blat"])]

    def _weights(self, r):
        torch = self.torch
        live = r["live"]
        if self.pow2:
            e = r["wlat"]
            cont = r["sign"] * torch.pow(2.0, e)
            q = torch.where(e < -1.0, torch.zeros_like(e), torch.pow(2.0, torch.clamp(torch.round(e), 0, self.emax)))
            q = q * r["sign"]
        else:
            cont = r["wlat"] * r["wscale"]
            c = cont.detach().numpy()
            q = torch.from_numpy(project_weights(np.rint(c).astype(np.int64), self.allowed)).to(cont.dtype)
        q = torch.where(live, q, torch.zeros_like(q))
        cont = torch.where(live, cont, torch.zeros_like(cont))
        return cont + (q - cont).detach()

    def _biases(self, r):
        if "B0" in r:  # during the scale calibration
            return self.torch.from_numpy(r["B0"]).to(self.dtype)
        cont = r["blat"] * r["bscale"]
        q = torch_round(self.torch, cont.detach()).clamp(-self.b_lim, self.b_lim - 1)
        return cont + (q - cont).detach()

    def forward(self, cols=None, trace: bool = False):
        """Scores ``(K, C, n)`` for samples ``cols`` (an index tensor; all if None); with
        ``trace``, every layer's accumulators instead.

        A masked product is linear in the operand's bits, ``w (x & m) = sum_b x_b w m_b 2^b``:
        each layer is one (batched) matrix product against bit planes, exact, whose gradient
        with respect to ``w`` is the masked operand. The gradient with respect to the
        operand goes straight through the mask (``w`` where the connection exists). Truncated
        products are recomputed for the neurons that truncate, and their difference added
        as a constant."""
        torch = self.torch
        a = None
        accs = []
        for li, r in enumerate(self.layers):
            w = self._weights(r)                                             # (K, out, in)
            b = self._biases(r)                                              # (K, out)
            K, n_out, n_in = w.shape
            E = (w[..., None] * r["mbits"]).reshape(K, n_out, -1)          # (K, out, in * bits)
            if li == 0:
                P = self.planes if cols is None else self.planes[cols]         # (n, in * bits)
                acc = torch.matmul(E, P.T)                                     # (K, out, n)
                xi = self.x_int if cols is None else self.x_int[cols]
                operands = xi.T[None]                                          # (1, in, n) int
            else:
                ai = a.detach().to(torch.int64)                                # (K, in, n)
                planes = (ai[:, :, None] >> torch.arange(r["bits"])[:, None]) & 1
                acc = torch.bmm(E, planes.reshape(K, -1, ai.shape[-1]).to(a.dtype))
                through = (w.detach() * (r["M"] != 0)).to(a.dtype)
                lin = torch.bmm(through, a)
                acc = acc + (lin - lin.detach())                               # d/d operand: w
                operands = ai
            if len(r["rows"]):
                k, j = r["rows"][:, 0], r["rows"][:, 1]
                wq = w.detach()[k, j][..., None]                                  # (R, in, 1)
                p2 = torch.pow(2.0, r["T"][k, j])[:, None, None]
                if li == 0:  # a table over the feature values, read through their one-hot code
                    v = torch.arange(self.levels)
                    mag = wq.abs() * (v & r["M"][k, j][..., None]).to(acc.dtype)   # (R, in, levels)
                    diff = torch.sign(wq) * (torch.floor(mag / p2) * p2 - mag)
                    oh = self.onehot if cols is None else self.onehot[cols]
                    cut = diff.reshape(len(k), -1) @ oh.T                          # (R, n)
                else:
                    x = operands[k]                                                # (R, in, n)
                    mag = wq.abs() * (x & r["M"][k, j][..., None]).to(acc.dtype)
                    cut = (torch.sign(wq) * (torch.floor(mag / p2) * p2 - mag)).sum(dim=1)
                fix = torch.zeros_like(acc)
                fix[k, j] = cut
                acc = acc + fix
            acc = acc + b[..., None]
            accs.append(acc)
            s = float(1 << r["shift"])
            v = acc / s
            v = v + (torch.floor(v.detach()) - v.detach())
            if r["qrelu"]:
                v = torch.clamp(v, 0.0, r["top"])
                p2 = torch.pow(2.0, r["AT"])[..., None]
                v = v + (torch.floor(v.detach() / p2) * p2 - v.detach())
            a = v
        if trace:
            return accs
        p2 = torch.pow(2.0, self.cmp_drop)[..., None]
        return a + (torch.floor(a.detach() / p2) * p2 - a.detach())

    def genes(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The current (projected) weights and biases as integer arrays."""
        W, B = [], []
        with self.torch.no_grad():
            for r in self.layers:
                W.append(np.rint(self._weights(r).numpy()).astype(np.int64))
                B.append(np.rint(self._biases(r).numpy()).astype(np.int64))
        return W, B


def torch_round(torch, v):
    """Round half away from zero (torch.round is half-to-even; either is fine, this is fixed)."""
    return torch.sign(v) * torch.floor(v.abs() + 0.5)


def _accuracy(scores, y) -> "np.ndarray":
    """Per individual: argmax (ties to the lowest index, as the IR) equal to the label."""
    return (scores.argmax(dim=1) == y[None]).double().mean(dim=1).numpy()


def retrain(pop: Population, X: np.ndarray, y: np.ndarray, cfg: RetrainConfig, seed: int) -> tuple[Population, np.ndarray]:
    """Every individual of ``pop`` with its weights and biases retrained on ``(X, y)`` (structure
    fixed); returns the new population (its own arrays) and each one's exact accuracy."""
    if pop.size == 0:
        return pop.take(np.arange(0, dtype=np.int64)), np.zeros(0)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _retrain(pop, X, y, cfg, seed, torch)
    finally:
        torch.set_num_threads(threads)


def _retrain(pop, X, y, cfg, seed, torch):
    model = _Model(pop, np.asarray(X), cfg, torch)
    yt = torch.from_numpy(np.asarray(y).astype(np.int64))
    n = model.n
    with torch.no_grad():
        scores = model.forward()
    tau = _temperature(scores, yt, torch)
    best_acc = _accuracy(scores, yt)
    best_W, best_B = model.genes()
    opt = torch.optim.Adam(model.params(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1 + math.cos(math.pi * min(k, cfg.steps) / cfg.steps)))
    gen = torch.Generator().manual_seed(int(seed))
    batch = min(cfg.batch, n)
    order = torch.randperm(n, generator=gen)
    pos = 0
    for step in range(1, cfg.steps + 1):
        if pos + batch > n:
            order, pos = torch.randperm(n, generator=gen), 0
        cols = order[pos:pos + batch]
        pos += batch
        s = model.forward(cols) * tau[:, None, None]
        loss = torch.nn.functional.cross_entropy(s, yt[cols][None].expand(model.K, -1),
                                                 reduction="mean") * model.K
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        model.clamp_latents()
        if step % cfg.eval_every == 0 or step == cfg.steps:
            with torch.no_grad():
                acc = _accuracy(model.forward(), yt)
            better = acc > best_acc
            if better.any():
                W, B = model.genes()
                for li in range(len(W)):
                    best_W[li][better] = W[li][better]
                    best_B[li][better] = B[li][better]
                best_acc = np.where(better, acc, best_acc)
    out = Population.concat([pop])  # own copies of every gene
    for li in range(len(best_W)):
        out.weights[li] = best_W[li]
        out.biases[li] = best_B[li]
    return out, best_acc
