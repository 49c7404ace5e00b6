"""Read the generated RTL: what each neuron computes and what it costs.

Emits the Verilog of a hand-written 3-2-2 integer MLP (the IR directly: no training, no
data), prints the block of one neuron, lists every neuron with `approxmlp inspect`, and
does the same for a compiled design folder (area share per neuron) if there is one. A few
seconds; no simulator or synthesis tool runs.

    python examples/04_read_the_rtl.py [OUT_DIR] [COMPILED_DIR]
    # defaults: example-out/04, and example-out/01/hw if example 01 has run

Writes OUT_DIR/hand_made.v and OUT_DIR/hand_made.json (the IR it implements).
"""

import subprocess
import sys
from pathlib import Path

from approxmlp.backend.verilog import emit_verilog
from approxmlp.core.ir import MLP, Layer, NeuronApprox

out = Path(sys.argv[1] if len(sys.argv) > 1 else "example-out/04")
compiled = Path(sys.argv[2]) if len(sys.argv) > 2 else out.parent / "01" / "hw"
out.mkdir(parents=True, exist_ok=True)

# An integer MLP written by hand: 3 inputs of 4 bits, 2 QReLU neurons, 2 classes.
#   hidden j = qrelu4((sum_i w[j][i] * x_i + b[j]) >>> shift)   (clamped to 0..15)
#   out      = argmax of the 2 linear output neurons (a tie keeps the lower index)
# The second hidden neuron is approximated: it reads only the top 2 bits of x0 and the top
# bit of x2 (operand bit masks, as the `explore` search would set them).
mlp = MLP(n_inputs=3, input_bits=4, name="hand_made", layers=(
    Layer(weights=((7, -2, 0), (1, 1, 1)), biases=(4, -3), shift=1, act_bits=4,
          approx=(NeuronApprox(), NeuronApprox(input_masks=(0b1100, 0b1111, 0b1000)))),
    Layer(weights=((2, -1), (-1, 3)), biases=(0, 1), activation="linear"),
))
rtl = out / "hand_made.v"
rtl.write_text(emit_verilog(mlp))
(out / "hand_made.json").write_text(mlp.dumps() + "\n")  # the same IR as `compile` writes to ir.json

# Each neuron is one commented block; its first line is the formula it implements, each
# constant product is a sum of shifted copies of the input (no multiplier), and every wire
# is exactly as wide as the value range it can carry.
text = rtl.read_text()
start = text.index("// -- layer[0].neuron[0]")
end = text.index("// -- layer[0].neuron[1]")
print(text[start:end])


def approxmlp(*args: str) -> None:
    """Run the approxmlp command line of this Python; stop the example if it fails."""
    subprocess.run([sys.executable, "-m", "approxmlp", *args], check=True)


# `approxmlp inspect` parses the Verilog back (pyverilog) and lists ports and neurons with
# the approximations each one uses.
approxmlp("inspect", str(rtl))

# On a compiled folder it also estimates each neuron's share of the area (from ir.json and
# the target's cost model): where approximation would pay most.
if (compiled / "rtl" / "top.v").is_file():
    approxmlp("inspect", str(compiled))
else:
    print(f"(no compiled design at {compiled}: run examples/01_compile_pytorch_model.py first "
          "to see per-neuron area shares)")
