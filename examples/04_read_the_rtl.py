"""Read the generated RTL: what each neuron computes and what it costs.

Emits the Verilog of a hand-written 3-2-2 integer MLP (the IR, no training needed), prints
the block of one neuron, then lists every neuron with `approxmlp inspect` on a compiled
folder.

    python examples/04_read_the_rtl.py [OUT_DIR]
"""

import subprocess
import sys
from pathlib import Path

from approxmlp.emit import emit_verilog
from approxmlp.ir import Layer, MLP, NeuronApprox

out = Path(sys.argv[1] if len(sys.argv) > 1 else "example-out/04")
out.mkdir(parents=True, exist_ok=True)

# An integer MLP written by hand: 3 inputs of 4 bits, 2 QReLU neurons, 2 classes.
mlp = MLP(n_inputs=3, input_bits=4, name="hand_made", layers=(
    Layer(weights=((7, -2, 0), (1, 1, 1)), biases=(4, -3), shift=1, act_bits=4,
          approx=(NeuronApprox(), NeuronApprox(input_masks=(0b1100, 0b1111, 0b1000)))),
    Layer(weights=((2, -1), (-1, 3)), biases=(0, 1), activation="linear"),
))
text = emit_verilog(mlp)
(out / "hand_made.v").write_text(text)

# Each neuron is one commented block; its first line is the formula it implements.
start = text.index("// -- layer[0].neuron[0]")
end = text.index("// -- layer[0].neuron[1]")
print(text[start:end])

# For a compiled design, `approxmlp inspect` lists ports and neurons with their area share.
compiled = Path("example-out/01/hw")
if compiled.is_dir():
    subprocess.run(["approxmlp", "inspect", str(compiled)], check=True)
