"""Data sets: where the samples the hardware is trained, picked and tested on come from.

Three kinds of data set spec are understood by :func:`load_dataset`:

* a built-in name (:data:`BUILTIN`): scikit-learn's bundled tables, so that demos and
  tests need no network and no files;
* a CSV file with a header row (the UCI tables of the printed-ML literature);
* a split folder with ``X_train.npy, Y_train.npy, X_test.npy, Y_test.npy`` (and, optionally,
  ``X_val.npy, Y_val.npy``), to reproduce a paper's exact train/test split.

Whatever the source, a :class:`Dataset` holds *raw* float features and class indices
``0..C-1``. Turning features into hardware integers is the job of
:class:`~approxmlp.frontend.input_quantizer.InputQuantizer`.

Every problem raises :class:`~approxmlp.errors.DataError` with a one-line message naming
the file (and row/column where it applies) and the fix.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataError, check_seed
from .dataset import _MAX_LISTED, Dataset, _first_nonfinite, _listing

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

_SNIFF_LINES = 50


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
