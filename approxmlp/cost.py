"""A fast area/power estimate of an IR, for the search's inner loop.

Synthesis takes seconds per design; the genetic search needs thousands of estimates a
second. The estimate counts what the emitted circuit is made of, from the same range
analysis the emitter sizes its wires with:

* ``pp_bits``: partial-product bits entering the adders: for every product, the operand
  bits it keeps times the signed digits of its constant (the shifted copies), less the
  bits that product truncation drops; the compressor tree is about one full adder each;
* ``acc_bits``: accumulator, subtraction and QReLU bits per neuron;
* ``cmp_bits``: comparator and multiplexer bits of the argmax tree.

``area = c0 + c_pp * pp_bits + c_acc * acc_bits + c_cmp * cmp_bits``, with coefficients
fitted per target by non-negative least squares against real Yosys synthesis
(:func:`calibrate`; ``flows/bench`` reports the fit's error and rank correlation).
Static power is fitted the same way (it is nearly proportional to area).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .emit import csd
from .ir import MLP, signed_width
from .ranges import analyze

FEATURES = ("pp_bits", "acc_bits", "cmp_bits")
COEFF_FILE = Path(__file__).resolve().parent / "cost_coefficients.json"


def _terms(mag: int) -> int:
    """Adder inputs of a constant multiplier: the fewer of CSD and binary digits."""
    return min(len(csd(mag)), bin(mag).count("1"))


def neuron_features(mlp: MLP) -> dict[tuple[int, int], np.ndarray]:
    """``[pp_bits, acc_bits, cmp_bits]`` per neuron ``(layer, index)``; an output neuron
    carries its share of the argmax tree (the comparators it feeds)."""
    rng = analyze(mlp)
    out: dict[tuple[int, int], np.ndarray] = {}
    last = len(mlp.layers) - 1
    widths = {}
    for li, layer in enumerate(mlp.layers):
        for j, r in enumerate(rng[li]):
            pp = acc = 0
            if r.out_lo != r.out_hi:  # else folded to a constant
                for p in r.pos + r.neg:
                    kept = bin(p.mask & ((1 << p.operand_max.bit_length()) - 1)).count("1")
                    terms = _terms(abs(p.weight))
                    pp += max(0, terms * kept - p.trunc * terms)
                acc = r.acc_width
                if li == last:
                    lo, hi = (r.v_lo, r.v_hi) if layer.activation == "linear" else (r.out_lo, r.out_hi)
                    widths[j] = max(1, signed_width(lo, hi) - layer.approx[j].cmp_drop)
            out[(li, j)] = np.array([pp, acc, 0.0])
    if len(widths) > 1:
        w = max(widths.values())
        total = (len(widths) - 1) * (2 * w + max(1, (len(widths) - 1).bit_length()))
        for j in widths:
            out[(last, j)][2] = total / len(widths)
    return out


def features(mlp: MLP) -> np.ndarray:
    """``[pp_bits, acc_bits, cmp_bits]`` of the circuit the emitter would write for ``mlp``."""
    return np.sum(list(neuron_features(mlp).values()), axis=0)


@dataclass(frozen=True)
class CostModel:
    """Linear estimate of area (µm²) and static power (mW) for one target."""

    target: str
    area: tuple[float, ...]    # c0, c_pp, c_acc, c_cmp
    power: tuple[float, ...]

    def estimate(self, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        f = np.atleast_2d(feats)
        X = np.hstack([np.ones((len(f), 1)), f])
        return X @ np.array(self.area), X @ np.array(self.power)

    def area_of(self, mlp: MLP) -> float:
        return float(self.estimate(features(mlp))[0][0])

    def to_json(self) -> dict:
        return {"target": self.target, "area": list(self.area), "power": list(self.power), "features": FEATURES}


def _nnls(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    from scipy.optimize import nnls

    return nnls(X, y)[0]


def calibrate(target: str, feats: Sequence[np.ndarray], areas: Sequence[float], powers: Sequence[float]) -> CostModel:
    """Fit the coefficients (non-negative: more bits never make a circuit smaller)."""
    F = np.vstack(feats)
    X = np.hstack([np.ones((len(F), 1)), F])
    return CostModel(target=target, area=tuple(_nnls(X, np.asarray(areas, dtype=float)).tolist()),
                     power=tuple(_nnls(X, np.asarray(powers, dtype=float)).tolist()))


def load_model(target: str) -> CostModel | None:
    """The shipped calibration for ``target`` (written by ``flows/bench/calibrate_cost.py``)."""
    if not COEFF_FILE.is_file():
        return None
    data = json.loads(COEFF_FILE.read_text())
    d = data.get(target)
    if d is None:
        return None
    return CostModel(target=target, area=tuple(d["area"]), power=tuple(d["power"]))
