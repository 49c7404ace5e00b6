"""`approxmlp export`: a design folder (compile or explore output) written in another format."""

from __future__ import annotations

from pathlib import Path

from ..errors import ApproxMLPError, ModelError
from .folder import load_ir

FORMATS = ("onnx",)


def export_folder(folder: Path, *, fmt: str = "onnx", out: Path | None = None) -> dict:
    """Write the IR of ``folder`` as ``fmt`` (default ``folder/model.onnx``), checked with
    onnxruntime against the golden model on the folder's test vectors where it has them."""
    from ..backend.onnx_export import write_onnx

    if fmt not in FORMATS:
        raise ApproxMLPError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"{folder} is not a folder; give a design folder written by `approxmlp compile` or explore")
    ir = load_ir(folder)
    dest = Path(out) if out is not None else folder / "model.onnx"
    if dest.is_dir():
        raise ApproxMLPError(f"--out {dest} is a folder; give the file to write, e.g. {dest / 'model.onnx'}")
    if not dest.parent.is_dir():
        raise ApproxMLPError(f"--out {dest}: folder {dest.parent} does not exist; create it first")
    codes = None
    npz = folder / "vectors" / "test.npz"
    if npz.is_file():
        import numpy as np

        with np.load(npz) as f:
            codes = f["inputs"]
    info = write_onnx(ir, dest, check_codes=codes)
    return info | {"path": str(dest), "n_inputs": ir.n_inputs, "vectors": info.get("vectors")}
