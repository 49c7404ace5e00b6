"""Fit a printed battery: the most accurate verified design under a power budget.

A printed battery delivers a few mW. This example trains a small 13-2-3 classifier on
scikit-learn's wine data with `approxmlp train`, lets `approxmlp explore` search hardware
approximations (NSGA-II: constant multipliers, operand bit masks, truncations) with the
budget as a constraint, and then reads explore's power-budget pick from DIR/pareto.json:
the design most accurate on the *validation* split that passed verification on every
test vector and whose *synthesized* power fits the budget (its test accuracy is reported
beside it, never used to choose). The search only sees a fast power estimate; the pick
uses Yosys' figure. About 30 s (a small population and few generations; raise both for a
better front).

    python examples/03_explore_power_budget.py [OUT_DIR] [BUDGET_MW]   # example-out/03, 3 mW

Prints the chosen design and the path of its RTL, and exits 0; if no verified design fits
the budget, says so, names the lowest-power one, and exits 1.
"""

import json
import subprocess
import sys
from pathlib import Path

out = Path(sys.argv[1] if len(sys.argv) > 1 else "example-out/03")
budget_mw = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
out.mkdir(parents=True, exist_ok=True)

DATA = "wine"


def approxmlp(*args: str) -> None:
    """Run the approxmlp command line of this Python; stop the example if it fails."""
    subprocess.run([sys.executable, "-m", "approxmlp", *args], check=True)


# 1. The seed model: exact, quantization-aware trained (use your own model.pt instead).
model = out / "wine.pt"
approxmlp("train", "--data", DATA, "--hidden", "2", "--restarts", "1", "--out", str(model), "--quiet")

# 2. The search. --max-loss bounds the accuracy loss against the seed model; --max-power-mw
#    steers the search toward the budget and makes explore pick, among the verified
#    designs whose synthesized power fits, the most accurate one on validation. Every front
#    point and the exact baseline are emitted, verified and synthesized into DIR/designs/<id>/.
explore = out / "explore"
approxmlp("explore", "--model", str(model), "--data", DATA, "--target", "printed", "--out", str(explore),
          "--population", "64", "--generations", "100", "--max-loss", "0.05",
          "--max-power-mw", str(budget_mw), "--seed", "0", "--quiet")

# 3. The pick, made by explore on validation accuracy (pareto.json "power_budget").
summary = json.loads((explore / "pareto.json").read_text())
points = summary["points"]
print(f"\nThe exact baseline and {len(points) - 1} Pareto point(s); budget {budget_mw:g} mW:")
for p in points:
    v = p["verification"]
    print(f"  {p['id']:6} validation accuracy {p['validation_accuracy']:.4f}  test accuracy {p['test_accuracy']:.4f}  "
          f"power {p['power_mw']:7.3f} mW  area {p['area_cm2']:6.2f} cm²  verified {v['vectors'] - v['mismatches']}/"
          f"{v['vectors']}" + ("" if v["passed"] else "  FAILED"))

pick = summary["power_budget"]
if pick["design"] is None:
    verified = [p for p in points if p["verification"]["passed"]]
    lowest = min(verified, key=lambda p: p["power_mw"]) if verified else None
    print(f"\nNo verified design fits {budget_mw:g} mW.", end=" ")
    if lowest:
        print(f"The lowest-power one is {lowest['id']} at {lowest['power_mw']:.3f} mW.", end=" ")
    print("Try a larger --max-loss, a larger --population or more --generations, or a smaller hidden layer.")
    sys.exit(1)

best = next(p for p in points if p["id"] == pick["design"])
base = summary["baseline"]
print(f"\nChosen on validation: {best['id']}: validation accuracy {best['validation_accuracy']:.4f} "
      f"(exact {base['validation_accuracy']:.4f}), test accuracy {best['test_accuracy']:.4f} "
      f"(exact {base['test_accuracy']:.4f}), {best['power_mw']:.3f} mW (exact {base['power_mw']:.3f} mW), "
      f"{best['area_cm2']:.2f} cm² (exact {base['area_cm2']:.2f} cm²)")
print(f"RTL: {explore / best['rtl']}")
print(f"Check it again any time: approxmlp verify {explore / 'designs' / best['id']}")
