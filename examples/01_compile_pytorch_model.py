"""Compile a PyTorch model you trained yourself.

Trains a float 13-4-3 MLP with plain PyTorch on scikit-learn's wine data (bundled, no
download), saves its state_dict exactly as you would, then runs `approxmlp compile` on it:
post-training quantization, bespoke Verilog, verification on every test vector with
cocotb + Verilator, synthesis onto the printed EGFET cells with Yosys. About 20 s.

    python examples/01_compile_pytorch_model.py [OUT_DIR]      # default example-out/01

Writes OUT_DIR/wine.pt (the model) and OUT_DIR/hw/ (the compiled design: rtl/top.v,
report.json, report.md, test vectors, logs).
"""

import json
import subprocess
import sys
from pathlib import Path

import torch
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split
from torch import nn

out = Path(sys.argv[1] if len(sys.argv) > 1 else "example-out/01")
out.mkdir(parents=True, exist_ok=True)

# 1. Your model: any nn.Sequential of Linear/ReLU layers (ReLU after every hidden layer,
#    logits out), trained on the raw features.
X, y = load_wine(return_X_y=True)
X_train, _, y_train, _ = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
mean, std = X_train.mean(0), X_train.std(0)
torch.manual_seed(0)
torch.set_num_threads(1)  # tiny tensors: one thread is fastest
net = nn.Sequential(nn.Linear(13, 4), nn.ReLU(), nn.Linear(4, 3))
opt = torch.optim.Adam(net.parameters(), lr=0.02)
xt = torch.tensor((X_train - mean) / std, dtype=torch.float32)
yt = torch.tensor(y_train)
for _ in range(300):
    opt.zero_grad()
    nn.functional.cross_entropy(net(xt), yt).backward()
    opt.step()
with torch.no_grad():  # fold the standardization into the first layer: the model takes raw features
    net[0].bias -= net[0].weight @ torch.tensor(mean / std, dtype=torch.float32)
    net[0].weight /= torch.tensor(std, dtype=torch.float32)

# 2. Save the state_dict (approxmlp loads it with weights_only=True: no code runs).
torch.save(net.state_dict(), out / "wine.pt")

# 3. Compile for the printed target. `--data wine` is the same split as above (70/30,
#    stratified, seed 0). `python -m approxmlp` is the `approxmlp` command of this Python.
#    Exit status 1 means the RTL disagreed with the golden model, 2 bad input or a tool failure.
hw = out / "hw"
subprocess.run([sys.executable, "-m", "approxmlp", "compile", str(out / "wine.pt"), "--data", "wine",
                "--target", "printed", "--out", str(hw)], check=True)

# 4. Everything the table above shows is in report.json, for your own scripts.
report = json.loads((hw / "report.json").read_text())
v = report["verification"]
print(f"RTL accuracy {report['accuracy']['rtl']:.4f} on {v['vectors_by_kind']['test']} test vectors; "
      f"{v['vectors']} vectors simulated ({v['mismatches']} mismatches); area {report['area_cm2']:.2f} cm², power {report['power_mw']:.1f} mW")
print(f"RTL: {hw / report['rtl']}")
