"""The adders a layer's shared subexpressions save, estimated fast enough for the search.

The emitter builds every layer's digit pairs that recur once, as shared terms
(:func:`approxmlp.core.sharing.share_layer`, greedy two-term elimination): on the exact
models of the literature sets that removes 28-39 % of a layer's two-operand additions
and 15-22 % of its printed area. The plan itself takes 4-40 ms a design in Python, and a
search prices ~90,000 designs, so the cost model estimates the saving instead, from one
statistic the plan's greedy is driven by: how often digit pairs repeat.

For a layer, every pair of digits ``(x_a << k, x_b << k + d)`` of one neuron that could
form a term (the low operand's bits overlap the high one's: ``d`` below its width; both
products untruncated) is a *pattern* ``(a, b, d, same sign or not)``; the layer's
*excess* is ``sum over patterns of max(0, occurrences - 1)``, over all its neurons. The
greedy cannot realize all of it (one digit sits in many patterns, but is used once), so
the saved fraction of the layer's additions saturates:

    x = excess / additions,   saved = A * x / (1 + B * x)

with ``additions`` the per-neuron count (each neuron's summands minus one). The curve
saturates at ``A / B`` (0.30; the exact layers of the literature sets save 0.21-0.40): a
layer of near-copies of one neuron saves more (up to 0.8), and the estimate errs on the
side of the circuit being larger there. An operand is
the input *through its kept bits* (a masked operand is another wire, and shares only
with the same mask); counting per input only the neurons that read it through the
layer's most common mask keeps the count one array product per shift, at the price of
missing pairs between neurons that share a less common mask.

``A`` and ``B`` are fitted to the plan's saved fraction of additions (no synthesis), on
what a sharing-aware search visits: the first fit (on the bench's fronts of a search
that did not know sharing: A 1.58, B 4.39, residual RMS 0.047 on 413 layers) was
exploited by the search it drove, which built layers of overlapping pairs the greedy
cannot all use: on that search's fronts and archives the estimate was 0.04 high on
average (0.1 on Pendigits' largest designs) and the area it implied 10 % low on median.
Refitted on those (the fronts and archives of Breast_Cancer, Cardio and Pendigits:
693 layers of 358 designs): residual RMS 0.036, mean -0.002. The exact
designs' layers of the nine literature sets then come out at 0.22-0.29 against the
plan's 0.21-0.40 (0.06 below on average): the estimate errs towards a larger circuit
where the search does not go.
``python -m flows.bench.calibrate_cost --sharing DIR...`` refits them on the explore runs
below ``DIR`` (their designs and their checkpoints' archives). The cost model scales each
layer's adder features by ``1 - saved``.

:func:`adder_factor` takes arrays with a leading population axis, so that
:mod:`.population` calls it on a whole search population and :mod:`.design` on one IR
with the same code: the two counts agree exactly, as they must.
"""

from __future__ import annotations

import numpy as np

#: Saturation of the saved fraction (see the module docstring); fitted, not tuned.
A = 0.91
B = 3.01


def pattern_excess(digits: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``(P,)``: each layer's sum over digit-pair patterns of ``max(0, occurrences - 1)``.

    ``digits`` ``(P, O, I, K)``: the signed digits (sign of the weight included) of each
    neuron's product with input ``i`` at shift ``k``; ``keys`` ``(P, O, I)``: the operand
    bits each product reads, 0 where the product takes part in no sharing (absent,
    truncated, or a neuron synthesis removes)."""
    P, O, I, K = digits.shape
    if P == 0 or O == 0 or I == 0 or K == 0:
        return np.zeros(P)
    # the most common key of each input over the neurons that read it (ties: first neuron)
    same = (keys[:, :, None, :] == keys[:, None, :, :]) & (keys[:, None, :, :] != 0)
    votes = same.sum(axis=2)                                     # (P, O, I)
    best = np.take_along_axis(keys, votes.argmax(axis=1)[:, None, :], axis=1)[:, 0, :]  # (P, I)
    used = (keys == best[:, None, :]) & (keys != 0)
    width = np.frexp(best.astype(np.float64))[1]                 # bit_length of the kept bits
    dig = np.where(used[..., None], digits, 0).transpose(0, 2, 1, 3)  # (P, I, O, K)
    # positive digits in rows 0..I-1, negative ones in rows I..2I-1: one product per shift
    # counts the pairs of every sign combination at once (small integers, exact in float32)
    both = np.concatenate([dig > 0, dig < 0], axis=1).astype(np.float32)  # (P, 2I, O, K)
    upper = np.triu(np.ones((I, I), dtype=bool), 1)
    excess = np.zeros(P)
    for d in range(K):
        lo = both[..., :K - d].reshape(P, 2 * I, -1)
        hi = both[..., d:].reshape(P, 2 * I, -1)
        g = lo @ hi.transpose(0, 2, 1)                           # (P, 2I, 2I)
        # a pair and its negation are one term: ++ with --, +- with -+
        pairs = (np.maximum(0.0, g[:, :I, :I] + g[:, I:, I:] - 1)
                 + np.maximum(0.0, g[:, :I, I:] + g[:, I:, :I] - 1))
        ok = (d < width)[:, :, None]                             # the low operand overlaps
        if d == 0:
            ok = ok & upper                                      # a pair, not a digit with itself
        excess += (pairs * ok).sum(axis=(1, 2))
    return excess


def excess_ratio(digits: np.ndarray, keys: np.ndarray, summands: np.ndarray) -> np.ndarray:
    """``(P,)``: :func:`pattern_excess` over the layer's per-neuron additions, from
    ``summands`` ``(P, O)``, each neuron's summand count (digits of its untruncated
    products, one per truncated product; 0 for a neuron synthesis removes)."""
    additions = np.maximum(0, summands - 1).sum(axis=1)
    return pattern_excess(digits, keys) / np.maximum(additions, 1)


def saved_fraction(x: np.ndarray) -> np.ndarray:
    """The fraction of a layer's additions its shared terms save, from :func:`excess_ratio`."""
    return A * x / (1.0 + B * x)


def factor_of_ratio(x: np.ndarray) -> np.ndarray:
    """The factor on a layer's adder counts that its shared terms leave, from its
    :func:`excess_ratio` (for a caller that keeps the ratio too: :mod:`.design`)."""
    return 1.0 - saved_fraction(x)


def adder_factor(digits: np.ndarray, keys: np.ndarray, summands: np.ndarray) -> np.ndarray:
    """``(P,)``: the factor on a layer's adder counts that its shared terms leave."""
    return factor_of_ratio(excess_ratio(digits, keys, summands))
