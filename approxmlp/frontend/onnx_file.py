"""Reading an ONNX file safely (:func:`read_onnx`).

``onnx.load(..., load_external_data=False)``, so that nothing is read from a path the file
names before it is checked. External tensor data are resolved here, only inside the
model's own folder (a path leaving it, through ``..``, an absolute path or a symbolic link,
is refused and never opened), then the model goes through ``onnx.checker`` and strict
shape inference. Loading never runs code: ONNX is a protobuf of tensors and operator names.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

from ..errors import ModelError

#: Oldest and newest ``ai.onnx`` opset the importer knows (Gemm/MatMul/Relu/Flatten/
#: Reshape/Softmax/ArgMax mean the same thing throughout).
MIN_OPSET = 7
MAX_OPSET = 23


def read_onnx(path: Path) -> tuple[Any, str]:
    """``(ModelProto, sha256 of the file)``, external data resolved inside the model's
    folder, checked with ``onnx.checker`` and strict shape inference."""
    import onnx

    p = Path(path)
    if not p.is_file():
        raise ModelError(f"model file {p} not found; check the path")
    data = p.read_bytes()
    try:
        model = onnx.load(io.BytesIO(data), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ModelError(f"{p} is not a readable ONNX file, or is truncated ({type(exc).__name__}); "
                         "re-export the model") from None
    _check_opsets(p, model)
    _resolve_external_data(p, model)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = (str(exc).strip().splitlines() or ["invalid"])[0][:160]
        raise ModelError(f"{p}: the ONNX checker refuses the model ({first}); re-export it") from None
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception as exc:  # InferenceError: mismatched shapes
        first = (str(exc).strip().splitlines() or ["shape inference failed"])[0][:200]
        raise ModelError(f"{p}: mismatched shapes ({first}); re-export the model with consistent shapes") from None
    return model, hashlib.sha256(data).hexdigest()


def _check_opsets(p: Path, model: Any) -> None:
    seen = False
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            seen = True
            if not MIN_OPSET <= imp.version <= MAX_OPSET:
                raise ModelError(f"{p}: ONNX opset {imp.version} is not one this importer knows "
                                 f"({MIN_OPSET}..{MAX_OPSET}); re-export with opset_version={min(max(imp.version, MIN_OPSET), MAX_OPSET)}")
    if not seen:
        raise ModelError(f"{p}: the model imports no ai.onnx opset; re-export it with a standard exporter")


def _resolve_external_data(p: Path, model: Any) -> None:
    """Read every external tensor from the model's own folder, refusing (without opening
    it) any location outside that folder, and a missing or short file."""
    from onnx import TensorProto

    base = p.resolve().parent
    tensors = list(model.graph.initializer)
    for node in model.graph.node:
        tensors += [a.t for a in node.attribute if a.HasField("t")]
    for t in tensors:
        if t.data_location != TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in t.external_data}
        loc = info.get("location", "")
        where = f"{p}: tensor {t.name!r} keeps its data in {loc!r}"
        if not loc or Path(loc).is_absolute():
            raise ModelError(f"{where}, which is not a path inside the model's folder; refusing to read it "
                             "(save the external data next to the model, onnx.save(..., location='name.data'))")
        target = (base / loc).resolve()
        if not target.is_relative_to(base):
            raise ModelError(f"{where}, outside the model's folder {base}; refusing to read it "
                             "(save the external data next to the model)")
        if not target.is_file():
            raise ModelError(f"{where}, which does not exist; copy it next to the model")
        offset, length = int(info.get("offset", 0) or 0), info.get("length")
        with open(target, "rb") as f:
            f.seek(offset)
            raw = f.read(int(length)) if length is not None else f.read()
        if length is not None and len(raw) != int(length):
            raise ModelError(f"{where}, which is shorter than the {length} bytes it should hold; re-export the model")
        del t.external_data[:]
        t.data_location = TensorProto.DEFAULT
        t.raw_data = raw
