"""Data sets and the input quantizer: where the integers fed to the hardware come from.

Three kinds of data set spec are understood by :func:`load_dataset`:

* a built-in name (:data:`BUILTIN`): scikit-learn's bundled tables, so that demos and
  tests need no network and no files;
* a CSV file with a header row (the UCI tables of the printed-ML literature);
* a split folder with ``X_train.npy, Y_train.npy, X_test.npy, Y_test.npy`` (and, optionally,
  ``X_val.npy, Y_val.npy``), to reproduce a paper's exact train/test split.

Whatever the source, a :class:`Dataset` holds *raw* float features and class indices
``0..C-1``. Turning features into hardware integers is the job of :class:`InputQuantizer`,
and it is done in exactly one place so that the golden model, the test vectors and the
RTL testbench all see the very same integers.

Every problem raises :class:`~approxmlp.errors.DataError` with a one-line message naming
the file (and row/column where it applies) and the fix.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ApproxMLPError, DataError
from ..core.ir import MAX_DATA_BITS

#: scikit-learn's bundled data sets (no download needed).
BUILTIN = frozenset({"iris", "wine", "breast_cancer", "digits"})
#: Files a split folder must hold.
SPLIT_FILES = ("X_train.npy", "Y_train.npy", "X_test.npy", "Y_test.npy")
#: Files a split folder may add: a validation split of its own, used as is.
VAL_FILES = ("X_val.npy", "Y_val.npy")
#: Separators the CSV sniffer chooses among.
CSV_SEPARATORS = ";,\t"
#: How every .npy file begins (numpy's format magic).
NPY_MAGIC = b"\x93NUMPY"
#: Version tag of :meth:`InputQuantizer.to_json` documents.
QUANTIZER_FORMAT = "approxmlp-input-quantizer/1"

_SNIFF_LINES = 50
_MAX_LISTED = 12


def check_bits(option: str, value: Any, lo: int, hi: int, error: type[ApproxMLPError] = DataError) -> int:
    """Validate a bit-width option; the message names the command-line option, since that
    is where the user typed the value."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise error(f"{option} must be an integer in {lo}..{hi}, not {value!r}")
    return int(value)


#: Seeds numpy and scikit-learn accept (a 32-bit unsigned integer).
MAX_SEED = 2**32 - 1


def check_seed(seed: Any) -> int:
    """Validate ``--seed`` up front: scikit-learn's splitter and numpy take only 32-bit
    unsigned seeds, and would otherwise fail deep inside with a traceback."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise DataError(f"--seed must be an integer in 0..{MAX_SEED}, not {seed!r}; pick another seed")
    return int(seed)


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


# ----------------------------------------------------------------------------- Dataset
@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification data set, already split into train and test (and, when its source
    says so, validation: see :meth:`validation_split`).

    Features are raw floats (quantization happens later, in :class:`InputQuantizer`, with
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


def load_dataset(spec: str, *, label: str | None = None, test_size: float = 0.3, seed: int = 0) -> Dataset:
    """Load a data set by built-in name, CSV path or split folder (see the module docstring).

    Built-ins and CSV files are split ``1 - test_size`` / ``test_size``, stratified by class
    and seeded, so the same call always gives the same split. A split folder is used as is.

    CSV files: a header row, the label in column ``label`` (default ``Y``), every other
    column a numeric feature; the separator is sniffed among ``;``, ``,`` and tab. Labels
    may be any strings and map to ``0..C-1`` in sorted order (numeric order when they are
    all numbers). **Empty fields are missing values and are imputed with the median of
    that column over the training split** (the test split gets the same training median,
    so nothing leaks from test to train); anything else that is not a number is an error
    naming the line and column.
    """
    if not isinstance(test_size, (int, float)) or not 0 < test_size < 1:
        raise DataError(f"--test-size must be a fraction between 0 and 1 (exclusive), not {test_size!r}")
    check_seed(seed)
    spec = str(spec)
    if spec in BUILTIN:
        _no_label(spec, label)
        return _load_builtin(spec, test_size, seed)
    path = Path(spec)
    if path.is_dir():
        _no_label(spec, label)
        return _load_split_folder(path)
    if path.is_file():
        return _load_csv(path, label or "Y", test_size, seed)
    if path.suffix or len(path.parts) > 1:
        raise DataError(f"data set {spec} not found: no such file or folder; check the path")
    raise DataError(f"unknown data set {spec!r}: the built-in ones are {', '.join(sorted(BUILTIN))}; "
                    "otherwise give a CSV file or a split folder path")


def _no_label(spec: str, label: str | None) -> None:
    if label is not None:
        raise DataError(f"--label {label} only applies to CSV files, and {spec} is not one; drop --label")


# ----------------------------------------------------------------------------- splitting
def _split(name: str, X: np.ndarray, y: np.ndarray, classes: Sequence[str], feature_names: Sequence[str],
           test_size: float, seed: int) -> Dataset:
    """Stratified seeded split, then median imputation of empty fields (NaN) from the
    training part: shared by the built-in and the CSV loaders."""
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y, minlength=len(classes))
    if len(classes) < 2:
        raise DataError(f"{name}: a single class ({_listing(list(classes))}); a classifier needs at least two")
    if counts.min() < 2:
        rare = classes[int(np.argmin(counts))]
        raise DataError(f"{name}: class {rare!r} has only {counts.min()} sample(s), a stratified split needs "
                        "at least 2 per class; add samples or remove that class")
    n_test = math.ceil(test_size * len(y))
    if n_test < len(classes) or len(y) - n_test < len(classes):
        raise DataError(f"{name}: {len(y)} rows are too few to split {len(classes)} classes with "
                        f"--test-size {test_size}; add rows or change --test-size")
    idx_train, idx_test = train_test_split(np.arange(len(y)), test_size=test_size, random_state=seed, stratify=y)
    X_train, X_test = X[idx_train], X[idx_test]
    if np.isnan(X).any():
        X_train, X_test = _impute_median(name, X_train, X_test, feature_names)
    return Dataset(name=name, X_train=X_train, y_train=y[idx_train], X_test=X_test, y_test=y[idx_test],
                   classes=tuple(classes), feature_names=tuple(feature_names))


def _impute_median(name: str, X_train: np.ndarray, X_test: np.ndarray,
                   feature_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Replace NaN (empty CSV fields) by the training-column median, in both parts: the
    test part must not influence the values the model is trained on."""
    empty = np.isnan(X_train).all(axis=0)
    if empty.any():
        col = feature_names[int(np.argmax(empty))]
        raise DataError(f"{name}: column {col!r} is empty in every training row, so there is no median "
                        "to impute it with; drop that column or fill it in")
    med = np.nanmedian(X_train, axis=0)
    return np.where(np.isnan(X_train), med, X_train), np.where(np.isnan(X_test), med, X_test)


# ----------------------------------------------------------------------------- built-ins
def _load_builtin(name: str, test_size: float, seed: int) -> Dataset:
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, f"load_{name}")()
    X = np.asarray(bunch.data, dtype=np.float64)
    features = getattr(bunch, "feature_names", None)
    if features is None or len(features) != X.shape[1]:
        features = [f"x{i}" for i in range(X.shape[1])]
    return _split(name, X, np.asarray(bunch.target, dtype=np.int64), [str(c) for c in bunch.target_names],
                  [str(f) for f in features], test_size, seed)


# ----------------------------------------------------------------------------- CSV
def _sniff_separator(path: Path, text: str) -> str:
    """The separator among ``;``, ``,``, tab: csv.Sniffer first, then the most frequent one
    in the header line (the sniffer gives up on some clean files, e.g. two columns)."""
    sample = "\n".join(text.splitlines()[:_SNIFF_LINES])
    try:
        return csv.Sniffer().sniff(sample, delimiters=CSV_SEPARATORS).delimiter
    except csv.Error:
        header = text.splitlines()[0]
        counts = {sep: header.count(sep) for sep in CSV_SEPARATORS}
        best = max(counts, key=counts.get)
        if counts[best] == 0:
            raise DataError(f"{path}: cannot find a separator (';', ',' or tab) in the header line; "
                            "write one header row with a name per column, the label column included") from None
        return best


def _read_csv_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and ``(line number, fields)`` rows; blank lines skipped, ragged rows refused."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text file ({exc.reason}); save it as UTF-8 CSV") from None
    if not text.strip():
        raise DataError(f"{path} is empty; it needs a header row and at least one data row")
    sep = _sniff_separator(path, text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    header = [h.strip() for h in next(reader)]
    rows = []
    for fields in reader:
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # blank line
        if len(fields) != len(header):
            raise DataError(f"{path}: line {reader.line_num} has {len(fields)} fields but the header has "
                            f"{len(header)} (separator {sep!r}); give every row one value per column")
        rows.append((reader.line_num, fields))
    if not rows:
        raise DataError(f"{path} has a header but no data rows; add samples")
    return header, rows


def _parse_float(path: Path, line: int, column: str, text: str) -> float:
    """A feature value; empty means missing (NaN, imputed later), anything else must be a
    finite number."""
    s = text.strip()
    if not s:
        return math.nan
    try:
        v = float(s)
    except ValueError:
        raise DataError(f"{path}: line {line}, column {column!r}: {s!r} is not a number; fix it, "
                        "or leave the field empty to have it imputed with the training median") from None
    if not math.isfinite(v):
        raise DataError(f"{path}: line {line}, column {column!r} is {s!r}; features must be finite numbers "
                        "(leave the field empty to have it imputed)")
    return v


def _label_order(labels: Sequence[str]) -> list[str]:
    """Distinct labels sorted numerically when they are all numbers ("10" after "9"),
    else as strings."""
    distinct = sorted(set(labels))
    try:
        return sorted(distinct, key=lambda s: (float(s), s))
    except ValueError:
        return distinct


def _load_csv(path: Path, label: str, test_size: float, seed: int) -> Dataset:
    header, rows = _read_csv_rows(path)
    dup = sorted({h for h in header if header.count(h) > 1})
    if label in dup:
        cols = [str(i + 1) for i, h in enumerate(header) if h == label]
        raise DataError(f"{path} has {len(cols)} label columns named {label!r} (columns {', '.join(cols)}); "
                        "rename or drop all but one (or name the label column with --label)")
    if dup:
        raise DataError(f"{path}: feature columns {_listing(dup)} appear more than once in the header; "
                        "give every column a name of its own")
    if label not in header:
        raise DataError(f"{path} has no label column {label!r} (columns: {_listing(header)}); "
                        "name the label column with --label")
    li = header.index(label)
    cols = [i for i in range(len(header)) if i != li]
    if not cols:
        raise DataError(f"{path} has only the label column {label!r}; it needs feature columns too")
    labels = []
    X = np.empty((len(rows), len(cols)))
    for r, (line, fields) in enumerate(rows):
        lab = fields[li].strip()
        if not lab:
            raise DataError(f"{path}: line {line} has an empty label in column {label!r}; "
                            "label every row or remove it")
        labels.append(lab)
        X[r] = [_parse_float(path, line, header[i], fields[i]) for i in cols]
    classes = _label_order(labels)
    index = {c: k for k, c in enumerate(classes)}
    y = np.array([index[s] for s in labels], dtype=np.int64)
    return _split(path.stem, X, y, classes, [header[i] for i in cols], test_size, seed)


# ----------------------------------------------------------------------------- split folders
def _load_npy(path: Path) -> np.ndarray:
    with open(path, "rb") as f:
        magic = f.read(len(NPY_MAGIC))
    if magic != NPY_MAGIC:
        raise DataError(f"{path} is not a .npy file (it does not begin with the NumPy header); "
                        "save the array with numpy.save")
    try:
        a = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"{path}: cannot read it as a numeric .npy array ({str(exc).splitlines()[0]}); "
                        "save plain numeric arrays with numpy.save") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npy file ({exc}); re-save it with numpy.save") from None
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "biuf":
        raise DataError(f"{path} holds {getattr(a, 'dtype', type(a).__name__)} data, not numbers; "
                        "save numeric arrays")
    return a


def _labels_from_array(path: Path, Y: np.ndarray) -> tuple[np.ndarray, int]:
    """Class indices and class count from one-hot rows ``(N, C)`` or indices ``(N,)``."""
    if Y.ndim == 2 and Y.shape[1] == 1:
        Y = Y[:, 0]
    if Y.ndim == 2:
        ones = Y == 1
        bad = np.flatnonzero((ones.sum(axis=1) != 1) | ~((Y == 0) | ones).all(axis=1))
        if len(bad):
            raise DataError(f"{path}: row {bad[0]} is not one-hot ({Y[bad[0]].tolist()[:_MAX_LISTED]}); "
                            "store exactly one 1 per row, or class indices")
        return np.argmax(Y, axis=1).astype(np.int64), Y.shape[1]
    if Y.ndim == 1:
        if Y.size and (np.any(Y != np.round(Y)) or Y.min() < 0):
            raise DataError(f"{path}: class indices must be integers >= 0; store indices 0..C-1 or one-hot rows")
        y = Y.astype(np.int64)
        return y, int(y.max(initial=-1)) + 1
    raise DataError(f"{path} has shape {Y.shape}; labels must be one-hot (N, C) or indices (N,)")


def _load_split_folder(folder: Path) -> Dataset:
    missing = [f for f in SPLIT_FILES if not (folder / f).is_file()]
    if missing:
        raise DataError(f"split folder {folder} lacks {', '.join(missing)}; it needs {', '.join(SPLIT_FILES)}")
    has_val = [(folder / f).is_file() for f in VAL_FILES]
    if any(has_val) and not all(has_val):
        present, absent = (VAL_FILES if has_val[0] else VAL_FILES[::-1])
        raise DataError(f"split folder {folder} has {present} but not {absent}; add it, or remove {present} "
                        "to have a validation split carved from the training data")
    parts = {}
    n_classes = []
    for part in ("train", "test") + (("val",) if all(has_val) else ()):
        xp, yp = folder / f"X_{part}.npy", folder / f"Y_{part}.npy"
        X = _load_npy(xp)
        if X.ndim != 2:
            raise DataError(f"{xp} has shape {X.shape}; features must be a 2-D array (samples, features)")
        y, c = _labels_from_array(yp, _load_npy(yp))
        if len(y) != len(X):
            raise DataError(f"{xp} has {len(X)} rows but {yp.name} has {len(y)} labels; "
                            "they must describe the same samples")
        bad = _first_nonfinite(X)
        if bad is not None:
            raise DataError(f"{xp} has {X[bad]} at row {bad[0]}, column {bad[1]}; features must be finite "
                            "numbers, clean or impute them")
        if len(X) == 0:
            raise DataError(f"{xp} has no rows; the data set is empty")
        parts[part] = (X.astype(np.float64), y)
        n_classes.append(c)
    for part in parts:
        if parts[part][0].shape[1] != parts["train"][0].shape[1]:
            raise DataError(f"{folder}: X_train has {parts['train'][0].shape[1]} features but X_{part} has "
                            f"{parts[part][0].shape[1]}; all parts must have the same columns")
    C = max(n_classes)
    seen = set(np.unique(parts["train"][1]).tolist())
    for part in parts:
        unseen = sorted(set(np.unique(parts[part][1]).tolist()) - seen)
        if unseen:
            raise DataError(f"{folder / f'Y_{part}.npy'} has labels {_listing([str(c) for c in unseen])} that "
                            "Y_train.npy never has; a model cannot learn a class it never saw: move some of "
                            "those samples into the training split, or drop them")
    if len(np.unique(parts["train"][1])) < 2:
        raise DataError(f"{folder}: Y_train holds a single class; a classifier needs at least two")
    return Dataset(name=folder.name, X_train=parts["train"][0], y_train=parts["train"][1],
                   X_test=parts["test"][0], y_test=parts["test"][1],
                   classes=tuple(str(c) for c in range(C)),
                   feature_names=tuple(f"x{i}" for i in range(parts["train"][0].shape[1])),
                   X_val=parts["val"][0] if "val" in parts else None, y_val=parts["val"][1] if "val" in parts else None)


# ----------------------------------------------------------------------------- quantizer
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
