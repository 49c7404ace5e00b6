"""`approxmlp demo`: the whole flow on a data set that ships inside scikit-learn.

Trains a float 13-4-3 MLP on the UCI wine recognition data (plain PyTorch, seconds),
saves it as a ``state_dict`` exactly as a user would, and compiles it for the printed
target: post-training quantization, bespoke Verilog, cocotb/Verilator verification on
every test vector, Yosys + ABC synthesis onto the EGFET cells. Offline.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..pipeline.compiler import CompileOptions, compile_model

DEMO_DATA = "wine"
DEMO_HIDDEN = (4,)


def run_demo(out: Path, *, target: str = "printed", progress=lambda _: None) -> dict:
    from ..frontend.data import load_dataset
    from ..frontend.floatnet import train_float

    out = Path(out)
    data = load_dataset(DEMO_DATA)
    progress(f"training a float {data.n_features}-{'-'.join(map(str, DEMO_HIDDEN))}-{data.n_classes} "
             f"MLP on {DEMO_DATA} (PyTorch)")
    net = train_float(data.X_train, data.y_train, DEMO_HIDDEN, data.n_classes)
    out.mkdir(parents=True, exist_ok=True)
    model = out / "model.pt"
    torch.save(net.state_dict(), model)
    return compile_model(model, DEMO_DATA, out / "design", CompileOptions(target=target), progress=progress)
