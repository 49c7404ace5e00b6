"""scikit-learn in (frontend/sklearn_model.py): an MLPClassifier saved with skops compiles;
skl2onnx's graph of it gives the same float model; pickles, untrusted types and non-ReLU
activations are refused."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
import skops.io as sio
from sklearn.neural_network import MLPClassifier

from approxmlp.errors import ModelError
from approxmlp.frontend.data import load_dataset
from approxmlp.frontend.loader import load_model



def _fit(name: str = "iris", **kw) -> tuple[MLPClassifier, object]:
    data = load_dataset(name, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # ConvergenceWarning
        clf = MLPClassifier((5,), max_iter=kw.pop("max_iter", 300), random_state=0, **kw).fit(data.X_train, data.y_train)
    return clf, data


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "approxmlp", *args], capture_output=True, text=True)


@pytest.mark.parametrize("name", ["iris", "breast_cancer"])
def test_skops_classifier_is_the_same_function(tmp_path, name):
    """Multi-class (softmax) and binary (one logistic output -> logits [0, z])."""
    clf, data = _fit(name)
    sio.dump(clf, tmp_path / "clf.skops")
    m = load_model(tmp_path / "clf.skops")
    assert np.array_equal(m.predict(data.X_test), clf.predict(data.X_test))
    assert m.metadata["class_names"] == [str(c) for c in clf.classes_]


@pytest.mark.parametrize("name", ["iris", "breast_cancer"])
def test_skl2onnx_graph_gives_the_same_float_model(tmp_path, name):
    skl2onnx = pytest.importorskip("skl2onnx")
    clf, data = _fit(name)
    sio.dump(clf, tmp_path / "clf.skops")
    onx = skl2onnx.to_onnx(clf, data.X_train[:1].astype(np.float32))
    (tmp_path / "clf.onnx").write_bytes(onx.SerializeToString())
    a, b = load_model(tmp_path / "clf.onnx"), load_model(tmp_path / "clf.skops")
    for (Wa, ba), (Wb, bb) in zip(a.layers, b.layers):
        assert np.allclose(Wa, Wb, rtol=1e-6, atol=1e-6) and np.allclose(ba, bb, rtol=1e-6, atol=1e-6)
    assert np.mean(a.predict(data.X_test) == clf.predict(data.X_test)) > 0.97


def test_compile_reports_float_and_quantized_accuracy(tmp_path):
    clf, data = _fit("iris")
    sio.dump(clf, tmp_path / "clf.skops")
    out = tmp_path / "hw"
    r = _cli("compile", str(tmp_path / "clf.skops"), "--data", "iris", "--out", str(out), "--no-verify", "--no-synth")
    assert r.returncode == 0, r.stderr
    assert "float accuracy (test)" in r.stdout and "golden accuracy (test)" in r.stdout
    acc = json.loads((out / "report.json").read_text())["accuracy"]
    assert acc["float_accuracy"] == pytest.approx(np.mean(clf.predict(data.X_test) == data.y_test))
    assert 0 < acc["golden"] <= 1


@pytest.mark.parametrize("activation", ["tanh", "logistic", "identity"])
def test_non_relu_activation_is_refused(tmp_path, activation):
    clf, _ = _fit("iris", activation=activation, max_iter=20)
    sio.dump(clf, tmp_path / "clf.skops")
    with pytest.raises(ModelError, match=f"activation='{activation}'.*relu"):
        load_model(tmp_path / "clf.skops")
    r = _cli("compile", str(tmp_path / "clf.skops"), "--data", "iris", "--out", str(tmp_path / "o"), "-q")
    assert r.returncode == 2 and "Traceback" not in r.stderr and not (tmp_path / "o").exists()


def test_untrusted_types_are_refused_unloaded(tmp_path, monkeypatch):
    import fractions

    clf, _ = _fit("iris", max_iter=20)
    clf.payload = fractions.Fraction(1, 3)   # any type skops does not trust
    sio.dump(clf, tmp_path / "clf.skops")
    called = []
    monkeypatch.setattr(sio, "loads", lambda *a, **k: called.append(1))
    with pytest.raises(ModelError, match="untrusted types .*fractions.Fraction"):
        load_model(tmp_path / "clf.skops")
    assert not called
    monkeypatch.undo()
    r = _cli("compile", str(tmp_path / "clf.skops"), "--data", "iris", "--out", str(tmp_path / "o"), "-q")
    assert r.returncode == 2 and "untrusted" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_a_pipeline_is_refused(tmp_path):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_dataset("iris", seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = make_pipeline(StandardScaler(), MLPClassifier((3,), max_iter=20)).fit(data.X_train, data.y_train)
    sio.dump(pipe, tmp_path / "pipe.skops")
    with pytest.raises(ModelError, match="holds a Pipeline, not an MLPClassifier"):
        load_model(tmp_path / "pipe.skops")


@pytest.mark.parametrize("suffix", [".pkl", ".joblib"])
def test_pickle_files_are_refused_naming_the_fix(tmp_path, suffix):
    import pickle

    clf, _ = _fit("iris", max_iter=20)
    path = tmp_path / f"clf{suffix}"
    path.write_bytes(pickle.dumps(clf))
    r = _cli("compile", str(path), "--data", "iris", "--out", str(tmp_path / "o"), "-q")
    assert r.returncode == 2 and "skops" in r.stderr and "skl2onnx" in r.stderr and "Traceback" not in r.stderr


def test_not_a_skops_file(tmp_path):
    (tmp_path / "x.skops").write_bytes(b"garbage")
    with pytest.raises(ModelError, match="not a readable skops file"):
        load_model(tmp_path / "x.skops")
