"""The cost model: a linear estimate of area and power from the features, and its fit.

``area = c0 + sum_k c_k * feature_k`` (and the same form for static power), with
coefficients fitted per target against real Yosys synthesis by non-negative least squares
on the *relative* error, made robust (:func:`calibrate`); the fitted coefficients ship in
``cost_coefficients.json`` beside this module (written by ``python -m
flows.bench.calibrate_cost``, read by :func:`load_model`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..core.ir import MLP
from .design import features
from .features import FEATURES, FEATURES_VERSION

COEFF_FILE = Path(__file__).resolve().parent / "cost_coefficients.json"


@dataclass(frozen=True)
class CostModel:
    """Linear estimate of area (µm², or LUTs on an FPGA) and static power (mW) for one
    target: ``estimate = coeff[0] + coeff[1:] @ features``."""

    target: str
    area: tuple[float, ...]    # c0, then one coefficient per feature
    power: tuple[float, ...]

    def estimate(self, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        f = np.atleast_2d(feats)
        X = np.hstack([np.ones((len(f), 1)), f])
        return X @ np.array(self.area), X @ np.array(self.power)

    def area_of(self, mlp: MLP) -> float:
        return float(self.estimate(features(mlp))[0][0])

    def power_of(self, mlp: MLP) -> float:
        return float(self.estimate(features(mlp))[1][0])

    def to_json(self) -> dict:
        return {"target": self.target, "area": list(self.area), "power": list(self.power), "features": FEATURES,
                "features_version": FEATURES_VERSION}


#: Scale of the robust loss: relative errors well above it count ~logarithmically.
FIT_SCALE = 0.2


def _nnls(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative least squares on the *relative* error ``(X c - y) / y`` (a small design
    counts as much as a large one: the smallest are the ones a power budget picks), made
    robust by iteratively reweighting with the Cauchy loss of scale :data:`FIT_SCALE`:
    a few designs that synthesis collapses to a handful of gates (a function of a few
    input bits) would otherwise pull every coefficient down. Deterministic."""
    from scipy.optimize import nnls

    ok = y > 0  # a design synthesis folds to a constant has no relative error
    if not ok.any():
        return np.zeros(X.shape[1])
    X, y = X[ok], y[ok]
    scale = np.abs(X).max(axis=0)
    scale[scale == 0] = 1.0
    A = (X / scale) / y[:, None]
    c = nnls(A, np.ones(len(y)))[0]
    for _ in range(200):
        w = 1.0 / np.sqrt(1.0 + ((A @ c - 1.0) / FIT_SCALE) ** 2)
        new = nnls(A * w[:, None], w)[0]
        if np.allclose(new, c, rtol=1e-10, atol=1e-14):
            break
        c = new
    return c / scale


def calibrate(target: str, feats: Sequence[np.ndarray], areas: Sequence[float], powers: Sequence[float]) -> CostModel:
    """Fit the coefficients (non-negative: more hardware never makes a circuit smaller)."""
    F = np.vstack(feats)
    X = np.hstack([np.ones((len(F), 1)), F])
    return CostModel(target=target, area=tuple(_nnls(X, np.asarray(areas, dtype=float)).tolist()),
                     power=tuple(_nnls(X, np.asarray(powers, dtype=float)).tolist()))


def load_model(target: str) -> CostModel | None:
    """The shipped calibration for ``target`` (written by ``flows/bench/calibrate_cost.py``),
    or None if there is none for these features."""
    if not COEFF_FILE.is_file():
        return None
    d = json.loads(COEFF_FILE.read_text()).get(target)
    if d is None or tuple(d.get("features", ())) != FEATURES or d.get("features_version") != FEATURES_VERSION:
        return None
    return CostModel(target=target, area=tuple(d["area"]), power=tuple(d["power"]))
