"""Compile a scikit-learn MLPClassifier, saved safely with skops.

Trains an `MLPClassifier` (ReLU) on scikit-learn's wine data (bundled, no download) on
standardized features, then folds the standardization into its first layer: the saved
classifier takes the raw features, as approxmlp expects (a Pipeline is refused). Saves it with `skops.io.dump` (a pickle would run code when loaded, so approxmlp
refuses `.pkl`/`.joblib`), compiles it (PTQ, Verilog, verification on every test vector,
no synthesis, to stay quick), prints float and quantized test accuracy side by side, and
shows the skl2onnx route to the same float model. About 15 s.

    python examples/05_compile_sklearn_model.py [OUT_DIR]      # default example-out/05

Writes OUT_DIR/wine.skops, OUT_DIR/wine.onnx (skl2onnx) and OUT_DIR/hw/ (the compiled design,
with model.onnx: the integer design again, for onnxruntime).
"""

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import skops.io as sio
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

out = Path(sys.argv[1] if len(sys.argv) > 1 else "example-out/05")
out.mkdir(parents=True, exist_ok=True)

# 1. Your classifier: ReLU hidden layers (tanh/logistic are refused), trained on raw features.
#    `--data wine` below is this very split (70/30, stratified, seed 0).
X, y = load_wine(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
mean, std = X_train.mean(0), X_train.std(0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # ConvergenceWarning
    clf = MLPClassifier((6,), activation="relu", max_iter=2000, random_state=0).fit((X_train - mean) / std, y_train)
clf.intercepts_[0] = clf.intercepts_[0] - (mean / std) @ clf.coefs_[0]   # now it takes the raw features
clf.coefs_[0] = clf.coefs_[0] / std[:, None]

# 2. Save it with skops: approxmlp loads it with an explicit list of trusted types.
sio.dump(clf, out / "wine.skops")

# 3. Compile it like any other model (`python -m approxmlp` is this Python's `approxmlp`).
hw = out / "hw"
subprocess.run([sys.executable, "-m", "approxmlp", "compile", str(out / "wine.skops"), "--data", "wine",
                "--input-bits", "6", "--no-synth", "--out", str(hw), "-q"], check=True)
report = json.loads((hw / "report.json").read_text())
acc, v = report["accuracy"], report["verification"]
print(f"float accuracy (scikit-learn) {acc['float_accuracy']:.4f}   quantized (golden = RTL) {acc['golden']:.4f}   "
      f"RTL verified on {v['vectors_by_kind']['test']}/{v['vectors_by_kind']['test']} test vectors "
      f"({v['vectors']} vectors simulated, {v['mismatches']} mismatches)")

# 4. The other safe route: skl2onnx writes an ONNX graph that compiles to the same design.
from skl2onnx import to_onnx  # noqa: E402

(out / "wine.onnx").write_bytes(to_onnx(clf, X_train[:1].astype(np.float32)).SerializeToString())
print(f"also: approxmlp compile {out / 'wine.onnx'} --data wine --input-bits 6 --out <folder>")
