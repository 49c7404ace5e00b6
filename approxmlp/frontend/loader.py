"""The one place where a model file's type decides its front end.

=================  ==========================================================  =====================
suffix             front end                                                   gives
=================  ==========================================================  =====================
``.onnx``          :mod:`~approxmlp.frontend.onnx_model` (float graphs) and     ``FloatMLP`` (PTQ
                   :mod:`~approxmlp.frontend.qonnx_model` (``Quant`` nodes)     follows) or
                                                                                ``IntegerModel``
``.skops``         :mod:`~approxmlp.frontend.sklearn_model`                     ``FloatMLP``
``.pkl/.joblib``   refused unopened: a pickle runs code                         —
anything else      :mod:`~approxmlp.frontend.model_file` (``torch.load``,       ``FloatMLP`` or
                   ``weights_only=True``)                                       ``IntegerModel``
=================  ==========================================================  =====================
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelError


def load_model(path: str | Path, *, requantize: bool = False):
    """The model in ``path``: a :class:`~approxmlp.frontend.float_model.FloatMLP` to quantize
    post-training, or an :class:`~approxmlp.frontend.model_file.IntegerModel` to compile as
    is. ``requantize``: a QONNX model the IR cannot express exactly is re-quantized
    (its float values through PTQ) instead of refused."""
    p = Path(path)
    suffix = p.suffix.lower()
    if not p.exists():
        raise ModelError(f"model file {p} not found; check the path")
    if p.is_dir():
        raise ModelError(f"model path {p} is a folder; give the model file (.pt, .onnx or .skops)")
    if suffix == ".onnx":
        return load_onnx(p, requantize=requantize)
    if suffix == ".skops":
        from .sklearn_model import load_skops

        return load_skops(p)
    if suffix in (".pkl", ".pickle", ".joblib"):
        from .sklearn_model import refuse_pickle

        refuse_pickle(p)
    from .model_file import load_model as load_torch

    return load_torch(p)


def load_onnx(path: Path, *, requantize: bool = False):
    """A float ONNX MLP as a :class:`~approxmlp.frontend.float_model.FloatMLP` (PTQ follows,
    as for a state_dict), or a QONNX one as an
    :class:`~approxmlp.frontend.model_file.IntegerModel` (see
    :mod:`approxmlp.frontend.qonnx_model`): the graph is read and walked once
    (:mod:`.onnx_model`), and its ``Quant`` nodes decide which."""
    from .onnx_file import read_onnx
    from .onnx_model import float_mlp, walk

    model, sha = read_onnx(path)
    chain = walk(str(path), model)
    if chain.quantized:
        from .qonnx_model import load_qonnx_chain

        return load_qonnx_chain(chain, sha, requantize=requantize)
    return float_mlp(chain, sha)
