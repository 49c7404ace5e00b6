"""The one place where a model file's type decides its front end.

=================  ==========================================================  =====================
suffix             front end                                                   gives
=================  ==========================================================  =====================
``.onnx``          :mod:`~approxmlp.frontend.onnx_model` (float graphs) and     ``FloatMLP`` (PTQ
                   :mod:`~approxmlp.frontend.qonnx_model` (``Quant`` nodes)     follows) or
                                                                                ``IntegerModel``
``.skops``         :mod:`~approxmlp.frontend.sklearn_model`                     ``FloatMLP``
``.pkl/.joblib``   refused unopened: a pickle runs code                         —
anything else      :mod:`~approxmlp.frontend.quantize` (``torch.load``,         ``FloatMLP`` or
                   ``weights_only=True``)                                       ``IntegerModel``
=================  ==========================================================  =====================
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelError


def load_model(path: str | Path, *, requantize: bool = False):
    """The model in ``path``: a :class:`~approxmlp.frontend.quantize.FloatMLP` to quantize
    post-training, or an :class:`~approxmlp.frontend.quantize.IntegerModel` to compile as
    is. ``requantize``: a QONNX model the IR cannot express exactly is re-quantized
    (its float values through PTQ) instead of refused."""
    p = Path(path)
    suffix = p.suffix.lower()
    if not p.exists():
        raise ModelError(f"model file {p} not found; check the path")
    if p.is_dir():
        raise ModelError(f"model path {p} is a folder; give the model file (.pt, .onnx or .skops)")
    if suffix == ".onnx":
        from .onnx_model import load_onnx

        return load_onnx(p, requantize=requantize)
    if suffix == ".skops":
        from .sklearn_model import load_skops

        return load_skops(p)
    if suffix in (".pkl", ".pickle", ".joblib"):
        from .sklearn_model import refuse_pickle

        refuse_pickle(p)
    from .quantize import load_model as load_torch

    return load_torch(p)
