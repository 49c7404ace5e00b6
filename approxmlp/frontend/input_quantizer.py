"""The input quantizer: how raw features become the hardware's unsigned integers, and how
its ranges are chosen.

:class:`InputQuantizer` is the only place where inputs are quantized, so that the golden
model, the test vectors and the RTL testbench all see the very same integers;
:func:`choose_quantizer` picks its ranges for training (:data:`INPUT_RANGES`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.ir import MAX_DATA_BITS
from ..errors import DataError, check_bits
from .dataset import _first_nonfinite, _frozen

#: Version tag of :meth:`InputQuantizer.to_json` documents.
QUANTIZER_FORMAT = "approxmlp-input-quantizer/1"
#: How the input quantizer is chosen: ``auto`` keeps the codes of a data set already on
#: the ``k / 2**bits`` grid and uses ``robust`` ranges otherwise; ``robust``: per-feature
#: percentile ranges (:func:`robust_quantizer`); ``fit``: min-max ranges.
INPUT_RANGES = ("auto", "robust", "fit")
#: Percentile of the low end of the robust input range (the high end is 100 minus it).
ROBUST_PERCENTILE = 1.0


@dataclass(frozen=True, eq=False)
class InputQuantizer:
    """Per-feature affine map from raw floats to unsigned ``bits``-bit hardware integers.

    ``q = clip(floor((x - lo) / (hi - lo) * (2**bits - 1) + 0.5), 0, 2**bits - 1)``: the
    training range ``[lo, hi]`` spans the full code range, rounding is to nearest (ties
    up), values outside the training range saturate and a constant feature (``hi == lo``)
    maps to 0. Integer ``q`` stands for ``lo + q * step`` with ``step = (hi - lo) /
    (2**bits - 1)`` (:meth:`dequantize`), which is what PTQ folds into the first layer.

    This is the only place where inputs are quantized: the golden model, the test vectors
    and the exported JSON all go through it.
    """

    lo: np.ndarray
    hi: np.ndarray
    bits: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "bits", check_bits("--input-bits", self.bits, 1, MAX_DATA_BITS))
        lo = np.atleast_1d(np.asarray(self.lo, dtype=np.float64))
        hi = np.atleast_1d(np.asarray(self.hi, dtype=np.float64))
        if lo.ndim != 1 or lo.shape != hi.shape or len(lo) == 0:
            raise DataError(f"input ranges must be two equal-length lists, one value per feature, "
                            f"not shapes {lo.shape} and {hi.shape}")
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            raise DataError("input ranges must be finite numbers; refit the quantizer on clean data")
        if np.any(hi < lo):
            k = int(np.argmax(hi < lo))
            raise DataError(f"input range of feature {k} is empty (lo {lo[k]} > hi {hi[k]}); swap or refit them")
        object.__setattr__(self, "lo", _frozen(lo))
        object.__setattr__(self, "hi", _frozen(hi))

    @classmethod
    def fit(cls, X_train: np.ndarray, bits: int) -> "InputQuantizer":
        """Ranges from the training features: per column min and max."""
        X = _as_features(X_train, None, "training features")
        if len(X) == 0:
            raise DataError("cannot fit the input quantizer on an empty training set; provide rows")
        return cls(lo=X.min(axis=0), hi=X.max(axis=0), bits=bits)

    @classmethod
    def for_prequantized(cls, n_features: int, bits: int) -> "InputQuantizer":
        """The quantizer under which features already on the grid ``k / 2**bits``
        (``k = 0..2**bits-1``, as in the literature's reference splits) map back to exactly
        ``k``: ``lo = 0``, ``hi = (2**bits - 1) / 2**bits``. :meth:`fit` would instead
        stretch each feature's own training range over all codes."""
        bits = check_bits("--input-bits", bits, 1, MAX_DATA_BITS)
        return cls(lo=np.zeros(n_features), hi=np.full(n_features, ((1 << bits) - 1) / (1 << bits)), bits=bits)

    @staticmethod
    def is_prequantized(X: np.ndarray, bits: int) -> bool:
        """Whether every value of ``X`` is some ``k / 2**bits`` with ``0 <= k < 2**bits``."""
        k = np.asarray(X, dtype=np.float64) * (1 << bits)
        return bool(k.size) and bool(np.all((k == np.floor(k)) & (k >= 0) & (k < (1 << bits))))

    @property
    def n_features(self) -> int:
        return len(self.lo)

    @property
    def top(self) -> int:
        """Largest code, ``2**bits - 1``."""
        return (1 << self.bits) - 1

    @property
    def step(self) -> np.ndarray:
        """Real value of one code step per feature (0 for a constant feature)."""
        return (self.hi - self.lo) / self.top

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """Quantize raw features ``(N, n_features)`` (or one sample) to int64 codes."""
        X = _as_features(X, self.n_features, "features")
        span = self.hi - self.lo
        const = span == 0
        t = (X - self.lo) / np.where(const, 1.0, span) * self.top
        q = np.clip(np.floor(t + 0.5), 0, self.top).astype(np.int64)
        q[:, const] = 0
        return q

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        """The real features that codes ``q`` stand for: ``lo + q * step``."""
        q = np.asarray(q)
        return self.lo + q.astype(np.float64) * self.step

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, InputQuantizer) and self.bits == other.bits
                and np.array_equal(self.lo, other.lo) and np.array_equal(self.hi, other.hi))

    __hash__ = None  # type: ignore[assignment]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict; floats are written with repr, so the round trip is exact."""
        return {"format": QUANTIZER_FORMAT, "bits": self.bits, "lo": self.lo.tolist(), "hi": self.hi.tolist(),
                "rule": "q = clip(floor((x - lo) / (hi - lo) * (2**bits - 1) + 0.5), 0, 2**bits - 1); "
                        "q = 0 where hi == lo"}

    @classmethod
    def from_json(cls, d: Any) -> "InputQuantizer":
        if not isinstance(d, dict) or d.get("format") != QUANTIZER_FORMAT:
            raise DataError(f"not an input quantizer document (expected format {QUANTIZER_FORMAT!r}); "
                            "write it with InputQuantizer.save")
        try:
            return cls(lo=d["lo"], hi=d["hi"], bits=d["bits"])
        except KeyError as exc:
            raise DataError(f"input quantizer document lacks {exc.args[0]!r}; write it with InputQuantizer.save") \
                from None
        except (TypeError, ValueError) as exc:
            raise DataError(f"malformed input quantizer document ({exc}); write it with InputQuantizer.save") \
                from None

    def save(self, path: str | Path, **extra: Any) -> None:
        """Write the JSON next to the RTL (``extra`` keys, e.g. ``feature_names``, are kept
        for the human reader and ignored by :meth:`load`)."""
        doc = dict(extra)
        doc.update(self.to_json())
        Path(path).write_text(json.dumps(doc, indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "InputQuantizer":
        p = Path(path)
        try:
            doc = json.loads(p.read_text())
        except FileNotFoundError:
            raise DataError(f"input quantizer file {p} not found; check the path") from None
        except (OSError, ValueError) as exc:
            raise DataError(f"{p}: not a JSON file ({exc}); write it with InputQuantizer.save") from None
        return cls.from_json(doc)


def _as_features(X: Any, n_features: int | None, what: str) -> np.ndarray:
    """A float64 ``(N, F)`` view of ``X`` (one sample may be given as a vector), finite."""
    try:
        a = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{what} must be numbers; convert them to a numeric array") from None
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or (n_features is not None and a.shape[1] != n_features):
        want = "(N, features)" if n_features is None else f"(N, {n_features})"
        raise DataError(f"{what} must have shape {want}, not {np.shape(X)}; check the data set matches the model")
    bad = _first_nonfinite(a)
    if bad is not None:
        raise DataError(f"{what} have {a[bad]} at row {bad[0]}, column {bad[1]}; clean or impute the data")
    return a


def choose_quantizer(data, bits: int, mode: str = "auto") -> InputQuantizer:
    """The input quantizer of ``data`` (a :class:`~approxmlp.frontend.data.Dataset`) for
    training, its ranges chosen by ``mode`` (see :data:`INPUT_RANGES`)."""
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
