"""Data sets and the input quantizer: loaders, their error messages, the quantization rule."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from approxmlp.frontend.data import BUILTIN, load_dataset
from approxmlp.frontend.dataset import Dataset
from approxmlp.frontend.input_quantizer import InputQuantizer
from approxmlp.errors import DataError
from tests.conftest import DATASETS, SPLITS, needs_shared
from tests.test_cli import assert_clean_failure, run

#: Reference splits whose features the README says are already k/16 in [0, 1).
GRID_SPLITS = ("Breast_Cancer", "RedWine")
#: Reference splits min-max scaled to [0, 0.9], not quantized (fixed 2026-12-02).
SCALED_SPLITS = ("Pendigits", "WhiteWine")


def write(tmp_path: Path, text: str, name: str = "d.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def csv_text(rows: list[list[object]], sep: str = ";", header: list[str] | None = None) -> str:
    header = header or [f"X{i + 1}" for i in range(len(rows[0]) - 1)] + ["Y"]
    return "\n".join(sep.join(str(v) for v in r) for r in [header] + rows) + "\n"


def balanced_rows(n_per_class: int = 10, labels=("a", "b"), n_features: int = 2) -> list[list[object]]:
    """Rows whose first feature is a unique id (so a row can be found after the split)."""
    rows = []
    for k, lab in enumerate(labels):
        for i in range(n_per_class):
            rid = k * n_per_class + i
            rows.append([rid] + [rid * 0.5 + f for f in range(n_features - 1)] + [lab])
    return rows


# ----------------------------------------------------------------------------- built-ins
@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_builtin_loads_stratified_70_30(name):
    d = load_dataset(name)
    n = len(d.y_train) + len(d.y_test)
    assert abs(len(d.y_test) / n - 0.3) < 0.01
    assert d.X_train.shape[1] == d.X_test.shape[1] == d.n_features == len(d.feature_names)
    assert set(np.unique(d.y_train)) == set(range(d.n_classes))
    # stratified: every class keeps its share in the test part
    share = lambda y: np.bincount(y, minlength=d.n_classes) / len(y)  # noqa: E731
    assert np.abs(share(d.y_train) - share(d.y_test)).max() < 0.05


def test_split_is_seeded():
    a, b, c = load_dataset("iris"), load_dataset("iris"), load_dataset("iris", seed=1)
    assert np.array_equal(a.X_test, b.X_test) and np.array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.X_test, c.X_test)


def test_test_size_is_honoured_and_validated():
    assert len(load_dataset("iris", test_size=0.2).y_test) == 30
    with pytest.raises(DataError, match="--test-size"):
        load_dataset("iris", test_size=1.5)


def test_dataset_arrays_are_read_only():
    d = load_dataset("iris")
    with pytest.raises(ValueError):
        d.X_train[0, 0] = 1.0
    assert d.y_train.dtype == np.int64 and d.X_train.dtype == np.float64


def test_unknown_builtin_lists_the_valid_ones():
    with pytest.raises(DataError, match="unknown data set 'irsi'") as e:
        load_dataset("irsi")
    assert all(name in str(e.value) for name in BUILTIN)


def test_missing_path():
    with pytest.raises(DataError, match="not found"):
        load_dataset("/nonexistent/data.csv")


def test_label_option_refused_for_builtins():
    with pytest.raises(DataError, match="only applies to CSV"):
        load_dataset("iris", label="class")


# ----------------------------------------------------------------------------- CSV
@pytest.mark.parametrize("sep", [";", ",", "\t"])
def test_csv_separator_is_sniffed(tmp_path, sep):
    d = load_dataset(str(write(tmp_path, csv_text(balanced_rows(n_features=3), sep=sep))))
    assert d.n_features == 3 and d.classes == ("a", "b") and d.name == "d"
    assert len(d.y_train) == 14 and len(d.y_test) == 6


def test_csv_quoted_header_and_custom_label(tmp_path):
    rows = balanced_rows()
    text = csv_text(rows, header=['"id"', '"f"', '"class"'])
    d = load_dataset(str(write(tmp_path, text)), label="class")
    assert d.feature_names == ("id", "f")


def test_csv_numeric_labels_sort_numerically(tmp_path):
    d = load_dataset(str(write(tmp_path, csv_text(balanced_rows(labels=("10", "9", "2"))))))
    assert d.classes == ("2", "9", "10")
    # row ids 20..29 were labelled "2": class 0
    ids = np.concatenate([d.X_train[:, 0], d.X_test[:, 0]])
    ys = np.concatenate([d.y_train, d.y_test])
    assert set(ys[ids >= 20]) == {0}


def test_csv_blank_lines_are_skipped(tmp_path):
    text = csv_text(balanced_rows()).replace("\n", "\n\n", 3)
    assert len(load_dataset(str(write(tmp_path, text))).y_train) == 14


def test_csv_empty_fields_get_the_training_median(tmp_path):
    rows = balanced_rows(n_per_class=20, n_features=3)
    rows[5][2] = ""   # row id 5, third column
    d = load_dataset(str(write(tmp_path, csv_text(rows))))
    for X in (d.X_train, d.X_test):
        assert np.isfinite(X).all()
    in_train = 5 in d.X_train[:, 0]
    X = d.X_train if in_train else d.X_test
    imputed = X[X[:, 0] == 5][0, 2]
    others = d.X_train[d.X_train[:, 0] != 5][:, 2]
    assert imputed == np.median(others)


def test_csv_without_label_column_lists_columns(tmp_path):
    p = write(tmp_path, csv_text(balanced_rows(), header=["a", "b", "target"]))
    with pytest.raises(DataError, match="no label column 'Y'") as e:
        load_dataset(str(p))
    assert "'target'" in str(e.value) and "--label" in str(e.value)


def test_csv_empty_file(tmp_path):
    with pytest.raises(DataError, match="is empty"):
        load_dataset(str(write(tmp_path, "")))


def test_csv_header_only(tmp_path):
    with pytest.raises(DataError, match="no data rows"):
        load_dataset(str(write(tmp_path, "X1;X2;Y\n")))


def test_csv_single_class(tmp_path):
    with pytest.raises(DataError, match="single class"):
        load_dataset(str(write(tmp_path, csv_text(balanced_rows(labels=("a",))))))


def test_csv_class_with_one_sample(tmp_path):
    rows = balanced_rows() + [[99, 1.0, "lonely"]]
    with pytest.raises(DataError, match="'lonely' has only 1 sample"):
        load_dataset(str(write(tmp_path, csv_text(rows))))


def test_csv_ragged_row_names_the_line(tmp_path):
    text = csv_text(balanced_rows()).splitlines()
    text[3] += ";7"
    with pytest.raises(DataError, match="line 4 has 4 fields but the header has 3"):
        load_dataset(str(write(tmp_path, "\n".join(text))))


@pytest.mark.parametrize("bad", ["abc", "?"])
def test_csv_non_numeric_feature_names_line_and_column(tmp_path, bad):
    rows = balanced_rows()
    rows[2][1] = bad
    with pytest.raises(DataError, match=re.escape(f"line 4, column 'X2': '{bad}' is not a number")):
        load_dataset(str(write(tmp_path, csv_text(rows))))


@pytest.mark.parametrize("bad", ["nan", "inf", "-Infinity"])
def test_csv_nan_inf_features_are_refused(tmp_path, bad):
    rows = balanced_rows()
    rows[0][1] = bad
    with pytest.raises(DataError, match="must be finite"):
        load_dataset(str(write(tmp_path, csv_text(rows))))


def test_csv_empty_label(tmp_path):
    rows = balanced_rows()
    rows[0][-1] = ""
    with pytest.raises(DataError, match="empty label"):
        load_dataset(str(write(tmp_path, csv_text(rows))))


def test_csv_column_empty_in_training(tmp_path):
    rows = balanced_rows(n_features=3)
    for r in rows:
        r[2] = ""
    with pytest.raises(DataError, match="column 'X3' is empty in every training row"):
        load_dataset(str(write(tmp_path, csv_text(rows))))


# ----------------------------------------------------------------------------- split folders
def make_split(folder: Path, n_train=20, n_test=8, n_features=3, n_classes=2, onehot=True) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for part, n in (("train", n_train), ("test", n_test)):
        y = np.arange(n) % n_classes
        np.save(folder / f"X_{part}.npy", rng.random((n, n_features)))
        np.save(folder / f"Y_{part}.npy", np.eye(n_classes)[y] if onehot else y)
    return folder


@pytest.mark.parametrize("onehot", [True, False])
def test_split_folder(tmp_path, onehot):
    d = load_dataset(str(make_split(tmp_path / "S", n_classes=3, onehot=onehot)))
    assert d.name == "S" and d.n_classes == 3 and d.n_features == 3
    assert np.array_equal(d.y_train, np.arange(20) % 3)


def test_validation_split_is_carved_stratified_and_seeded():
    d = load_dataset("wine")
    a, b = d.validation_split(0.2, 0), d.validation_split(0.2, 0)
    assert np.array_equal(a.X_val, b.X_val) and len(a.y_val) == round(0.2 * len(d.y_train))
    assert len(a.y_fit) + len(a.y_val) == len(d.y_train)
    assert not np.array_equal(a.X_val, d.validation_split(0.2, 1).X_val)
    # stratified: every class in proportion (within one sample)
    want = np.bincount(d.y_train) * 0.2
    assert np.all(np.abs(np.bincount(a.y_val) - want) <= 1)
    rows = {r.tobytes() for r in a.X_fit}
    assert not any(r.tobytes() in rows for r in a.X_val)  # disjoint
    assert "0.2 of the training split" in a.source
    with pytest.raises(DataError, match="--val-fraction must be a fraction"):
        d.validation_split(1.0, 0)


def test_split_folder_with_its_own_validation_split(tmp_path):
    folder = make_split(tmp_path / "S")
    rng = np.random.default_rng(1)
    np.save(folder / "X_val.npy", rng.random((6, 3)))
    np.save(folder / "Y_val.npy", np.eye(2)[np.arange(6) % 2])
    d = load_dataset(str(folder))
    v = d.validation_split(0.2, 0)  # the fraction does not apply: the folder's split is used as is
    assert np.array_equal(v.X_val, np.load(folder / "X_val.npy")) and np.array_equal(v.X_fit, d.X_train)
    assert v.source == "given with the data"
    (folder / "Y_val.npy").unlink()
    with pytest.raises(DataError, match="has X_val.npy but not Y_val.npy"):
        load_dataset(str(folder))
    np.save(folder / "Y_val.npy", np.eye(2)[np.arange(6) % 2])
    np.save(folder / "X_val.npy", rng.random((6, 4)))
    with pytest.raises(DataError, match="X_train has 3 features but X_val has 4"):
        load_dataset(str(folder))


def test_split_folder_missing_file(tmp_path):
    folder = make_split(tmp_path / "S")
    (folder / "Y_test.npy").unlink()
    with pytest.raises(DataError, match="lacks Y_test.npy"):
        load_dataset(str(folder))


def test_split_folder_length_disagreement(tmp_path):
    folder = make_split(tmp_path / "S")
    np.save(folder / "Y_train.npy", np.eye(2)[np.arange(19) % 2])
    with pytest.raises(DataError, match="has 20 rows but Y_train.npy has 19 labels"):
        load_dataset(str(folder))


def test_split_folder_nan_features(tmp_path):
    folder = make_split(tmp_path / "S")
    X = np.load(folder / "X_test.npy")
    X[3, 1] = np.inf
    np.save(folder / "X_test.npy", X)
    with pytest.raises(DataError, match="row 3, column 1; features must be finite"):
        load_dataset(str(folder))


def test_split_folder_not_one_hot(tmp_path):
    folder = make_split(tmp_path / "S")
    Y = np.eye(2)[np.arange(20) % 2]
    Y[4] = [1, 1]
    np.save(folder / "Y_train.npy", Y)
    with pytest.raises(DataError, match="row 4 is not one-hot"):
        load_dataset(str(folder))


def test_split_folder_single_class(tmp_path):
    with pytest.raises(DataError, match="single class"):
        load_dataset(str(make_split(tmp_path / "S", n_classes=1, onehot=False)))


def test_split_folder_empty(tmp_path):
    with pytest.raises(DataError, match="no rows"):
        load_dataset(str(make_split(tmp_path / "S", n_test=0)))


def test_split_folder_feature_count_disagreement(tmp_path):
    folder = make_split(tmp_path / "S")
    np.save(folder / "X_test.npy", np.zeros((8, 4)))
    with pytest.raises(DataError, match="X_train has 3 features but X_test has 4"):
        load_dataset(str(folder))


def test_split_folder_object_array(tmp_path):
    folder = make_split(tmp_path / "S")
    np.save(folder / "X_train.npy", np.array([[{}]] * 20, dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="numeric .npy"):
        load_dataset(str(folder))


def test_dataset_checks_its_own_shapes():
    with pytest.raises(DataError, match="one label per row"):
        Dataset("x", np.zeros((3, 2)), np.zeros(2, int), np.zeros((1, 2)), np.zeros(1, int), ("a", "b"), ("f", "g"))


# ----------------------------------------------------------------------------- reference data
@needs_shared(DATASETS)
@pytest.mark.parametrize("name,n_train,n_test,n_features,n_classes", [
    ("Arrhythmia", 316, 136, 274, 13), ("Breast_Cancer", 478, 205, 10, 2), ("Cardio", 1488, 638, 21, 3),
    ("Pendigits", 7694, 3298, 16, 10), ("RedWine", 1119, 480, 11, 6), ("WhiteWine", 3428, 1470, 11, 7)])
def test_reference_splits_load(name, n_train, n_test, n_features, n_classes):
    d = load_dataset(str(SPLITS / name))
    assert (len(d.y_train), len(d.y_test), d.n_features, d.n_classes) == (n_train, n_test, n_features, n_classes)


@needs_shared(DATASETS)
def test_reference_csvs_load():
    arr = load_dataset(str(DATASETS / "arrhythmia" / "arrhythmia.csv"))  # ','-separated, empty fields imputed
    assert arr.n_features == 279 and arr.n_classes == 13 and np.isfinite(arr.X_train).all()
    assert arr.classes[:3] == ("1", "2", "3") and arr.classes[-1] == "16"
    bc = load_dataset(str(DATASETS / "breast_cancer" / "breast_cancer.csv"))
    assert bc.classes == ("2", "3") and bc.feature_names[0] == "X1"


@needs_shared(DATASETS)
@pytest.mark.parametrize("name", GRID_SPLITS)
def test_quantization_rule_maps_the_4bit_grid_back_to_k(name):
    """The splits hold k/16. With lo = 0 and hi = 15/16 (what fit() finds when a feature
    spans the whole grid) the rule gives back exactly k."""
    X = np.load(SPLITS / name / "X_train.npy").astype(np.float64)
    assert InputQuantizer.is_prequantized(X, 4)
    k = X * 16
    spanned = np.vstack([X, np.zeros(X.shape[1]), np.full(X.shape[1], 15 / 16)])  # train min 0, max 15/16
    fitted = InputQuantizer.fit(spanned, 4)
    assert np.array_equal(fitted.lo, np.zeros(X.shape[1])) and np.array_equal(fitted.hi, np.full(X.shape[1], 15 / 16))
    assert np.array_equal(fitted(X), k.astype(np.int64))
    assert np.array_equal(InputQuantizer.for_prequantized(X.shape[1], 4)(X), k.astype(np.int64))


@needs_shared(DATASETS)
@pytest.mark.parametrize("name", SCALED_SPLITS)
def test_scaled_splits_are_not_on_the_grid_and_fit_spans_them(name):
    """Pendigits and WhiteWine hold min-max scaled reals in [0, 0.9]: not k/16, so the
    quantizer fits their training range and the codes span 0..15."""
    X = np.load(SPLITS / name / "X_train.npy").astype(np.float64)
    assert not InputQuantizer.is_prequantized(X, 4)
    assert X.min() == 0 and abs(X.max() - 0.9) < 1e-9
    q = InputQuantizer.fit(X, 4)(X)
    assert q.min() == 0 and q.max() == 15


@needs_shared(DATASETS)
def test_fit_stretches_a_grid_that_stops_short_of_15():
    """Most split features only reach 14/16, so fit() stretches them: 14/16 -> code 15.
    Use for_prequantized() to keep the literature's integers."""
    X = np.load(SPLITS / "RedWine" / "X_train.npy").astype(np.float64)
    assert X.max() == 14 / 16
    q = InputQuantizer.fit(X, 4)
    assert q(np.full((1, X.shape[1]), 14 / 16)).tolist() == [[15] * X.shape[1]]


# ----------------------------------------------------------------------------- InputQuantizer
def test_quantizer_rule_by_hand():
    q = InputQuantizer(lo=np.array([0.0, 10.0, 5.0]), hi=np.array([1.0, 20.0, 5.0]), bits=2)
    X = np.array([[0.0, 10.0, 5.0], [1 / 6, 11.6, 7.0], [0.5, 15.0, 4.0], [2.0, 0.0, 5.0]])
    # 1/6*3 + .5 = 1.0 -> 1 ; 1.6/10*3 + .5 = .98 -> 0 ; .5*3+.5 = 2 ; saturation; constant -> 0
    assert q(X).tolist() == [[0, 0, 0], [1, 0, 0], [2, 2, 0], [3, 0, 0]]
    assert q(X).dtype == np.int64
    assert np.allclose(q.dequantize([[1, 2, 3]]), [[1 / 3, 10 + 20 / 3, 5.0]])


def test_quantizer_fit_uses_training_range():
    X = np.array([[1.0, -2.0], [3.0, 2.0], [2.0, 0.0]])
    q = InputQuantizer.fit(X, 4)
    assert q.lo.tolist() == [1.0, -2.0] and q.hi.tolist() == [3.0, 2.0] and q.n_features == 2
    assert q(X).tolist() == [[0, 0], [15, 15], [8, 8]]


@pytest.mark.parametrize("bits", [0, 17, 2.5, True])
def test_quantizer_bits_validated(bits):
    with pytest.raises(DataError, match="--input-bits must be an integer in 1..16"):
        InputQuantizer.fit(np.zeros((2, 2)), bits)


def test_quantizer_refuses_wrong_width_and_nonfinite():
    q = InputQuantizer.fit(np.eye(3), 4)
    with pytest.raises(DataError, match=r"shape \(N, 3\)"):
        q(np.zeros((2, 4)))
    with pytest.raises(DataError, match="row 1, column 2"):
        q(np.array([[0, 0, 0], [0, 0, np.nan]]))
    with pytest.raises(DataError, match="empty training set"):
        InputQuantizer.fit(np.zeros((0, 3)), 4)
    with pytest.raises(DataError, match="lo 1.0 > hi 0.0"):
        InputQuantizer(lo=[1.0], hi=[0.0], bits=4)


def test_quantizer_json_round_trip(tmp_path):
    q = InputQuantizer.fit(np.random.default_rng(1).normal(size=(50, 5)), 6)
    assert InputQuantizer.from_json(json.loads(json.dumps(q.to_json()))) == q
    p = tmp_path / "inputs.json"
    q.save(p, feature_names=list("abcde"))
    assert InputQuantizer.load(p) == q
    assert json.loads(p.read_text())["feature_names"] == list("abcde")


def test_quantizer_json_errors(tmp_path):
    with pytest.raises(DataError, match="not an input quantizer document"):
        InputQuantizer.from_json({"format": "other"})
    with pytest.raises(DataError, match="lacks 'hi'"):
        InputQuantizer.from_json({"format": "approxmlp-input-quantizer/1", "bits": 4, "lo": [0]})
    with pytest.raises(DataError, match="not found"):
        InputQuantizer.load(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(DataError, match="not a JSON file"):
        InputQuantizer.load(tmp_path / "bad.json")


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(lo=finite, width=st.floats(min_value=1e-3, max_value=1e6), bits=st.integers(1, 16),
       xs=st.lists(st.floats(min_value=-3e6, max_value=3e6, allow_nan=False), min_size=1, max_size=30))
def test_quantizer_in_range_and_monotone(lo, width, bits, xs):
    q = InputQuantizer(lo=[lo], hi=[lo + width], bits=bits)
    x = np.sort(np.array(xs))[:, None]
    codes = q(x)[:, 0]
    assert codes.dtype == np.int64
    assert codes.min() >= 0 and codes.max() <= 2 ** bits - 1
    assert np.all(np.diff(codes) >= 0)


@settings(max_examples=200, deadline=None)
@given(lo=finite, width=st.floats(min_value=1e-3, max_value=1e6), bits=st.integers(1, 12))
def test_quantizer_codes_survive_dequantization(lo, width, bits):
    q = InputQuantizer(lo=[lo], hi=[lo + width], bits=bits)
    k = np.arange(2 ** bits)[:, None]
    assert np.array_equal(q(q.dequantize(k)), k)


# ----------------------------------------------------------------------------- issue 19: refused at the command line
def _compile(capsys, tmp_path: Path, data: Path, n_in: int, n_out: int) -> tuple[int, str, Path]:
    """`approxmlp compile` of a float model that fits the data's shape; (exit status, stderr, --out)."""
    import torch

    from approxmlp.frontend.floatnet import make_mlp

    model = tmp_path / "m.pt"
    torch.manual_seed(0)
    torch.save(make_mlp(n_in, [2], n_out).state_dict(), model)
    out = tmp_path / "out"
    code, _, err = run(capsys, "compile", str(model), "--data", str(data), "--out", str(out), "--no-verify",
                       "--no-synth", "-q")
    return code, err, out


def test_csv_with_two_label_columns_is_refused(capsys, tmp_path):
    rows = [[i, i % 2, 2 * i, i % 2] for i in range(20)]
    csv = write(tmp_path, csv_text(rows, header=["X1", "Y", "X2", "Y"]))
    before = csv.read_text()
    code, err, out = _compile(capsys, tmp_path, csv, 2, 2)
    assert_clean_failure(code, err, out, "2 label columns named 'Y'", "columns 2, 4", "--label")
    assert csv.read_text() == before


def test_csv_with_a_duplicate_feature_name_is_refused(capsys, tmp_path):
    rows = [[i, 2 * i, i % 2] for i in range(20)]
    csv = write(tmp_path, csv_text(rows, header=["A", "A", "Y"]))
    code, err, out = _compile(capsys, tmp_path, csv, 2, 2)
    assert_clean_failure(code, err, out, "'A'", "more than once", "a name of its own")


def test_a_file_that_is_not_npy_is_named_so(capsys, tmp_path):
    folder = make_split(tmp_path / "S")
    (folder / "X_train.npy").write_bytes(b"\x00garbage" * 50)
    code, err, out = _compile(capsys, tmp_path, folder, 3, 2)
    assert_clean_failure(code, err, out, "X_train.npy is not a .npy file", "numpy.save")
    assert "pickled" not in err


def test_test_labels_unseen_in_training_are_named(capsys, tmp_path):
    folder = make_split(tmp_path / "S", n_classes=3, onehot=False)
    np.save(folder / "Y_test.npy", np.array([0, 1, 2, 7, 0, 1, 2, 5]))
    code, err, out = _compile(capsys, tmp_path, folder, 3, 3)
    assert_clean_failure(code, err, out, "Y_test.npy has labels '5', '7'", "Y_train.npy never has")
    assert "classes" not in err
