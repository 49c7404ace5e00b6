"""Your own Brevitas model, exported as QONNX, compiled bit-exactly.

Builds and trains a small Brevitas MLP on scikit-learn's iris data (bundled) with
power-of-two scales everywhere (`...FixedPoint` quantizers) and floor rounding on the
activations, exports it with `brevitas.export.export_qonnx`, and compiles the QONNX file:
the integers of its `Quant` nodes become the IR as they are, nothing re-quantized. Then it
runs the QONNX model with the qonnx package's own executor on every test vector and
checks that it picks the class the verified design picks. About 30 s.

    python examples/06_brevitas_to_qonnx.py [OUT_DIR]      # default example-out/06

Writes OUT_DIR/iris.qonnx.onnx and OUT_DIR/hw/ (the compiled, verified design).
"""

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from brevitas.export import export_qonnx
from brevitas.inject.enum import FloatToIntImplType, ScalingImplType
from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU
from brevitas.quant import Int8WeightPerTensorFixedPoint, Uint8ActPerTensorFixedPoint
from brevitas.quant.scaled_int import IntBias
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split
from torch import nn

out = Path(sys.argv[1] if len(sys.argv) > 1 else "example-out/06")
out.mkdir(parents=True, exist_ok=True)


class InputQuant(Uint8ActPerTensorFixedPoint):   # unsigned 5-bit codes of step 2**-2: 0 .. 7.75 cm
    scaling_impl_type = ScalingImplType.CONST
    max_val = 8.0


class ActQuant(Uint8ActPerTensorFixedPoint):     # floor: the hardware's right shift
    float_to_int_impl_type = FloatToIntImplType.FLOOR


# 1. The model: every scale a power of two (weights, activations), integer biases. Seeded
#    before it is built: its initial weights are drawn here, and the example is repeatable.
torch.manual_seed(0)
torch.set_num_threads(1)
lin = dict(weight_quant=Int8WeightPerTensorFixedPoint, bias_quant=IntBias, bias_bit_width=16,
           return_quant_tensor=False)
net = nn.Sequential(QuantIdentity(act_quant=InputQuant, bit_width=5, return_quant_tensor=True),
                    QuantLinear(4, 6, bias=True, **lin),
                    QuantReLU(act_quant=ActQuant, bit_width=6, return_quant_tensor=True),
                    QuantLinear(6, 3, bias=True, **lin))

# 2. Train it (plain QAT), on the split that `--data iris` uses (70/30, stratified, seed 0).
X, y = load_iris(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
opt = torch.optim.Adam(net.parameters(), lr=0.02)
xt, yt = torch.tensor(X_train, dtype=torch.float32), torch.tensor(y_train)
net.train()
for _ in range(150):
    opt.zero_grad()
    nn.functional.cross_entropy(net(xt), yt).backward()
    opt.step()
net.eval()

# 3. Export QONNX (torch 2.13's dynamo exporter: needs onnxscript and onnxoptimizer).
model_path = out / "iris.qonnx.onnx"
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    export_qonnx(net, input_t=xt[:1], export_path=str(model_path))

# 4. Compile it: verified on every test vector, no synthesis (to stay quick).
hw = out / "hw"
subprocess.run([sys.executable, "-m", "approxmlp", "compile", str(model_path), "--data", "iris", "--no-synth",
                "--out", str(hw), "-q"], check=True)
report = json.loads((hw / "report.json").read_text())

# 5. The QONNX model's own execution against the design's classes, on every test vector:
#    feed each test vector's codes back as the values they stand for (code * 2**-2).
q = json.loads((hw / "quantizer.json").read_text())
with np.load(hw / "vectors" / "test.npz") as f:
    codes, design = f["inputs"], f["golden"]
step = (np.asarray(q["hi"]) - np.asarray(q["lo"])) / ((1 << q["bits"]) - 1)
mw = ModelWrapper(str(model_path))
iname, oname = mw.graph.input[0].name, mw.graph.output[0].name
qonnx_cls = np.array([int(np.argmax(execute_onnx(mw, {iname: (c * step)[None, :].astype(np.float32)})[oname]))
                      for c in codes])
same = int(np.sum(qonnx_cls == design))
v = report["verification"]
print(f"QONNX execution = design on {same}/{len(codes)} test vectors; RTL verified on "
      f"{v['vectors_by_kind']['test']}/{v['vectors_by_kind']['test']} ({v['vectors']} vectors simulated, "
      f"{v['mismatches']} mismatches); test accuracy {report['accuracy']['golden']:.4f}")
print(f"IR sha256 {report['model']['ir_sha256'][:16]}… ({report['model']['meta']['quantization']}, nothing re-quantized)")
sys.exit(0 if same == len(codes) else 1)
