"""How sure a figure is: accuracy intervals and paired loss bounds.

An accuracy measured on a few hundred samples is noisy (one sample of 80 is 1.25 points),
and a design picked because it cleared a budget on such a part is picked partly for its
luck. Two tools keep the figures honest:

* :func:`accuracy_interval`: Wilson's score interval of a proportion (scipy), for every
  accuracy the tool prints;
* :func:`paired_loss`: the loss of a design against the exact one *on the same samples*,
  with Tango's score interval for a difference of paired proportions (Tango 1998,
  Statistics in Medicine 17:891). Two designs that mostly agree differ only on their
  discordant samples, so the paired interval is far tighter than two separate accuracy
  intervals; with no discordant sample at all it still has width (about z²/n), which is
  the finest loss ``n`` samples can certify (:func:`finest_budget`).

Picks use the one-sided upper bound at a stated confidence (``--confidence``); reports use
two-sided 95 % intervals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Two-sided level of every interval a report prints.
REPORT_LEVEL = 0.95


def _z(level: float, sided: int) -> float:
    from scipy.stats import norm

    if not 0 < level < 1:
        raise ValueError(f"a confidence level is in (0, 1), not {level}")
    return float(norm.ppf(level if sided == 1 else 0.5 + level / 2))


def accuracy_interval(correct: int, n: int, level: float = REPORT_LEVEL) -> tuple[float, float]:
    """Two-sided Wilson score interval of ``correct`` successes in ``n`` trials."""
    from scipy.stats import binomtest

    if n <= 0:
        return (0.0, 1.0)
    ci = binomtest(int(correct), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return (float(ci.low), float(ci.high))


@dataclass(frozen=True)
class PairedLoss:
    """Accuracy lost by a design against a reference on the same ``n`` samples:
    ``worse`` samples the reference gets right and the design wrong, ``better`` the other
    way round; ``loss = (worse - better) / n`` and its interval ``[low, high]``."""

    n: int
    worse: int
    better: int
    low: float
    high: float

    @property
    def loss(self) -> float:
        return (self.worse - self.better) / self.n if self.n else 0.0

    def to_json(self) -> dict:
        return {"loss": self.loss, "low": self.low, "high": self.high, "n": self.n,
                "worse": self.worse, "better": self.better}


def _tango_z(worse: int, better: int, n: int, delta: float) -> float:
    """Tango's score statistic for a paired difference ``delta`` (reference minus design)."""
    a = 2.0 * n
    b = -worse - better + (2.0 * n - worse + better) * delta
    c = -better * delta * (1.0 - delta)
    p21 = (-b + math.sqrt(max(b * b - 4.0 * a * c, 0.0))) / (2.0 * a)
    var = n * (2.0 * p21 + delta * (1.0 - delta))
    num = worse - better - n * delta
    if var <= 0:
        return 0.0 if num == 0 else math.copysign(math.inf, num)
    return num / math.sqrt(var)


def _tango_bounds(worse: int, better: int, n: int, z: float) -> tuple[float, float]:
    from scipy.optimize import brentq

    est = (worse - better) / n
    if z <= 0:
        return (est, est)
    eps = 1e-12
    f = lambda d, t: _tango_z(worse, better, n, d) - t  # noqa: E731  (decreasing in d)
    hi = 1.0 if f(1.0 - eps, -z) > 0 else brentq(f, est, 1.0 - eps, args=(-z,), xtol=1e-10)
    lo = -1.0 if f(-1.0 + eps, z) < 0 else brentq(f, -1.0 + eps, est, args=(z,), xtol=1e-10)
    return (float(lo), float(hi))


def paired_loss(reference_correct: np.ndarray, design_correct: np.ndarray, level: float = REPORT_LEVEL,
                sided: int = 2) -> PairedLoss:
    """The design's loss against the reference on the same samples (boolean vectors of
    per-sample correctness), with Tango's interval: two-sided at ``level`` (``sided=2``,
    reports), or, with ``sided=1``, ``high`` the one-sided upper bound at confidence
    ``level`` (picks; ``low`` then the one-sided lower bound)."""
    r = np.asarray(reference_correct, dtype=bool)
    d = np.asarray(design_correct, dtype=bool)
    if r.shape != d.shape:
        raise ValueError(f"paired samples differ in number: {r.shape} vs {d.shape}")
    n = int(r.size)
    worse, better = int(np.sum(r & ~d)), int(np.sum(~r & d))
    if n == 0:
        return PairedLoss(0, 0, 0, -1.0, 1.0)
    lo, hi = _tango_bounds(worse, better, n, _z(level, sided))
    return PairedLoss(n, worse, better, lo, hi)


def finest_budget(n: int, level: float) -> float:
    """The smallest loss ``n`` paired samples can certify at one-sided confidence ``level``:
    the upper bound when the two designs agree on every sample (``z² / (n + z²)``)."""
    z = _z(level, 1)
    return z * z / (n + z * z) if n > 0 else 1.0
