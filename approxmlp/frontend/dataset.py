"""The :class:`Dataset` every stage reads: raw float features and class indices, a train
and a test split, and the validation part cut from the training split.

Its own module, apart from the readers (:mod:`.data`), because everything downstream
takes a ``Dataset`` and nothing downstream reads files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import DataError

_MAX_LISTED = 12


def _listing(names: Sequence[str]) -> str:
    """Comma-separated names, cut short so that a message stays one readable line."""
    shown = ", ".join(repr(n) for n in names[:_MAX_LISTED])
    return shown + (f", ... ({len(names)} in all)" if len(names) > _MAX_LISTED else "")


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


def _first_nonfinite(X: np.ndarray) -> tuple[int, int] | None:
    bad = np.argwhere(~np.isfinite(X))
    return (int(bad[0][0]), int(bad[0][1])) if len(bad) else None


@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification data set, already split into train and test (and, when its source
    says so, validation: see :meth:`validation_split`).

    Features are raw floats (quantization happens later, in
    :class:`~approxmlp.frontend.input_quantizer.InputQuantizer`, with
    the ranges of the training part only); labels are class indices ``0..C-1``, and
    ``classes[c]`` is the original label of class ``c``. Arrays are read-only copies, so a
    data set can be shared between the search, the golden model and the testbench.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]
    feature_names: tuple[str, ...]
    #: A validation split given with the data (a split folder's ``X_val.npy``), or None.
    X_val: np.ndarray | None = None
    y_val: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        object.__setattr__(self, "feature_names", tuple(str(f) for f in self.feature_names))
        if (self.X_val is None) != (self.y_val is None):
            raise DataError(f"{self.name}: give both X_val and y_val, or neither")
        for part in ("train", "test") + (("val",) if self.X_val is not None else ()):
            X = np.asarray(getattr(self, f"X_{part}"), dtype=np.float64)
            y = np.asarray(getattr(self, f"y_{part}"))
            if X.ndim != 2 or X.shape[1] != len(self.feature_names):
                raise DataError(f"{self.name}: X_{part} must have shape (N, {len(self.feature_names)}), "
                                f"not {X.shape}; give one name per feature column")
            if y.shape != (len(X),):
                raise DataError(f"{self.name}: X_{part} has {len(X)} rows but y_{part} has shape {y.shape}; "
                                "give one label per row")
            if y.dtype.kind not in "iu" or (y.size and (y.min() < 0 or y.max() >= len(self.classes))):
                raise DataError(f"{self.name}: y_{part} must hold class indices 0..{len(self.classes) - 1}")
            bad = _first_nonfinite(X)
            if bad is not None:
                raise DataError(f"{self.name}: X_{part} has {X[bad]} at row {bad[0]}, feature "
                                f"{self.feature_names[bad[1]]!r}; clean or impute the data")
            object.__setattr__(self, f"X_{part}", _frozen(X))
            object.__setattr__(self, f"y_{part}", _frozen(y.astype(np.int64)))
        if len(self.X_train) == 0:
            raise DataError(f"{self.name}: the training split is empty; provide more rows")
        if len(self.classes) < 2:
            raise DataError(f"{self.name}: a single class ({_listing(self.classes)}); "
                            "a classifier needs at least two")

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def validation_split(self, fraction: float, seed: int) -> "ValidationSplit":
        """The part of the training data models are fitted on, and the validation part on
        which designs are chosen. The data set's own validation split when it has one (used
        as is, ``fraction`` ignored); otherwise a stratified, seeded ``fraction`` of the
        training split (the same one for QAT's early stopping and for explore's picks, at
        the same fraction and seed). The test split is never part of either."""
        if self.X_val is not None:
            return ValidationSplit(self.X_train, self.y_train, self.X_val, self.y_val, "given with the data")
        fit, val = split_indices(self.y_train, fraction, seed)
        return ValidationSplit(self.X_train[fit], self.y_train[fit], self.X_train[val], self.y_train[val],
                               f"{fraction:g} of the training split, stratified, seed {seed}")

    @property
    def n_classes(self) -> int:
        return len(self.classes)


@dataclass(frozen=True, eq=False)
class ValidationSplit:
    """Training data cut in two: ``fit`` (what training and the search's fitness see) and
    ``val`` (what every choice among trained models and found designs is made on)."""

    X_fit: np.ndarray
    y_fit: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    source: str


def split_indices(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted indices ``(fit, val)`` of a seeded validation split of labels ``y``, stratified
    when every class has two samples or more."""
    from sklearn.model_selection import train_test_split

    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise DataError(f"--val-fraction must be a fraction between 0 and 1 (exclusive), not {fraction!r}")
    n_val = int(round(fraction * len(y)))
    if n_val < 1 or len(y) - n_val < 1:
        raise DataError(f"{len(y)} training samples are too few to hold out a validation split of "
                        f"{fraction:g}; add samples or change --val-fraction")
    counts = np.bincount(y)
    present = counts[counts > 0]
    ok = present.min() >= 2 and n_val >= len(present) and len(y) - n_val >= len(present)
    tr, va = train_test_split(np.arange(len(y)), test_size=n_val, random_state=seed, stratify=y if ok else None)
    return np.sort(tr), np.sort(va)


