"""scikit-learn in, safely: an ``MLPClassifier`` saved with ``skops.io.dump``.

A pickle (``.pkl``, ``.joblib``) runs code when loaded, so it is refused and never opened;
skops files are loaded with an explicit list of trusted types (:data:`TRUSTED`), checked
against ``skops.io.get_untrusted_types`` first: a file holding any other type (a pipeline,
a custom class, a function...) is refused, naming it. The classifier must use ReLU
(``tanh``/``logistic``/``identity`` hidden layers compute another function than the IR's
QReLU). Its layers become the same :class:`FloatMLP` a state_dict does (``coefs_[k].T``,
``intercepts_[k]``; a binary classifier's one logistic output becomes two logits ``[0, z]``)
and are quantized by the same PTQ.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..errors import ModelError

#: The only types a skops file may hold: the classifier and what it is made of.
TRUSTED = (
    "sklearn.neural_network._multilayer_perceptron.MLPClassifier",
    "sklearn.preprocessing._label.LabelBinarizer",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "numpy.ndarray", "numpy.dtype", "numpy.float64", "numpy.float32", "numpy.int64", "numpy.int32",
    "numpy.str_", "numpy.bool_", "numpy.random.mtrand.RandomState", "numpy.random._mt19937.MT19937",
    "builtins.list", "builtins.dict", "builtins.tuple", "builtins.int", "builtins.float", "builtins.str",
    "builtins.bool", "builtins.NoneType",
)
#: Suffixes of pickle files, refused unopened.
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
SAFE_FORMATS = ("save it with skops (skops.io.dump(clf, 'model.skops')) or convert it to ONNX with skl2onnx "
                "(skl2onnx.to_onnx(clf, X[:1].astype('float32')))")


def refuse_pickle(path: Path) -> None:
    raise ModelError(f"{path}: refusing to load a pickle (.pkl/.joblib files run code when loaded); {SAFE_FORMATS}")


def load_skops(path: Path):
    """The :class:`FloatMLP` of the ``MLPClassifier`` in a skops file."""
    import skops.io as sio

    from .float_model import FloatMLP

    p = Path(path)
    if not p.is_file():
        raise ModelError(f"model file {p} not found; check the path")
    data = p.read_bytes()
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:  # not a zip, no schema...
        raise ModelError(f"{p} is not a readable skops file ({type(exc).__name__}); save the classifier with "
                         "skops.io.dump(clf, path)") from None
    refused = sorted(set(untrusted) - set(TRUSTED))
    if refused:
        raise ModelError(f"{p} holds untrusted types ({', '.join(refused[:5])}{'...' if len(refused) > 5 else ''}); "
                         "approxmlp loads only a bare MLPClassifier: save the classifier itself with skops.io.dump")
    try:
        clf = sio.loads(data, trusted=list(untrusted))
    except Exception as exc:
        raise ModelError(f"{p}: skops could not load it ({type(exc).__name__}: {str(exc)[:120]}); re-save the "
                         "classifier with this scikit-learn and skops") from None
    from sklearn.neural_network import MLPClassifier

    if type(clf) is not MLPClassifier:
        raise ModelError(f"{p} holds a {type(clf).__name__}, not an MLPClassifier; save the classifier itself")
    if not hasattr(clf, "coefs_"):
        raise ModelError(f"{p}: the MLPClassifier is not fitted; fit it before saving")
    if clf.activation != "relu":
        raise ModelError(f"{p}: the MLPClassifier uses activation={clf.activation!r}; the hardware computes ReLU "
                         "(QReLU): retrain with activation='relu'")
    layers = [(np.asarray(W, dtype=np.float64).T, np.asarray(b, dtype=np.float64))
              for W, b in zip(clf.coefs_, clf.intercepts_)]
    if clf.out_activation_ == "logistic":
        if layers[-1][0].shape[0] != 1:
            raise ModelError(f"{p}: a multi-label MLPClassifier ({layers[-1][0].shape[0]} logistic outputs) is not a "
                             "single-label classifier; train it on one label column")
        from .onnx_model import binary_logits

        layers[-1] = binary_logits(str(p), *layers[-1])
    elif clf.out_activation_ != "softmax":
        raise ModelError(f"{p}: output activation {clf.out_activation_!r} is not a classifier's; train a classifier")
    meta = {"class_names": [str(c) for c in clf.classes_]}
    return FloatMLP(layers=tuple(layers), metadata=meta, names=tuple(f"coefs_[{k}]" for k in range(len(layers))),
                    source=str(p), sha256=hashlib.sha256(data).hexdigest())
