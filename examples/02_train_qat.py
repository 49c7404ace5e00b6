"""Quantization-aware training, then hardware: `approxmlp train` + `approxmlp compile`.

Trains a 30-3-2 MLP on scikit-learn's breast cancer data (bundled, no download) with
quantization-aware training (Brevitas: 4-bit inputs, 8-bit weights, power-of-two scales)
twice: once with ordinary integer weights, once with every weight 0 or ±2^k (each product a
wire shift, no multiplier). Each model is compiled for the printed EGFET target as is (no
re-quantization), verified on every test vector and synthesized; the script then compares
test accuracy, area and power. About a minute.

    python examples/02_train_qat.py [OUT_DIR]      # default example-out/02

Writes OUT_DIR/<name>.pt (models) and OUT_DIR/<name>-hw/ (compiled designs) for name in
int, pow2.
"""

import json
import subprocess
import sys
from pathlib import Path

out = Path(sys.argv[1] if len(sys.argv) > 1 else "example-out/02")
out.mkdir(parents=True, exist_ok=True)

DATA = "breast_cancer"  # or iris, wine, digits, a CSV file, a folder of {X,Y}_{train,test}.npy
SEED = 0                # seeds the 70/30 split and the training; give compile the same --seed


def approxmlp(*args: str) -> None:
    """Run the approxmlp command line of this Python; stop the example if it fails."""
    subprocess.run([sys.executable, "-m", "approxmlp", *args], check=True)


results = {}
for weights in ("int", "pow2"):
    model = out / f"{weights}.pt"
    hw = out / f"{weights}-hw"
    # Float warm-up, then QAT with early stopping on a 20% validation split; of the
    # --restarts trainings the best on validation is kept. Writes an integer model.
    approxmlp("train", "--data", DATA, "--hidden", "3", "--weights", weights, "--restarts", "2",
              "--seed", str(SEED), "--out", str(model))
    # The model carries its own integer IR and input quantizer: compile uses them as is.
    approxmlp("compile", str(model), "--data", DATA, "--seed", str(SEED), "--target", "printed",
              "--out", str(hw), "--quiet")
    results[weights] = json.loads((hw / "report.json").read_text())

print()
print(f"{'weights':8} {'test accuracy':>13} {'RTL = golden':>14} {'area cm²':>9} {'power mW':>9}  RTL")
for weights, r in results.items():
    v = r["verification"]
    print(f"{weights:8} {r['accuracy']['rtl']:13.4f} {v['vectors'] - v['mismatches']:>7}/{v['vectors']:<6} "
          f"{r['area_cm2']:9.2f} {r['power_mw']:9.2f}  {out / f'{weights}-hw' / r['rtl']}")
ratio = results["int"]["area_cm2"] / results["pow2"]["area_cm2"]
print(f"power-of-two weights: {ratio:.1f}x smaller than integer weights")
