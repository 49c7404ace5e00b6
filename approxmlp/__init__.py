"""approxmlp: a hardware-approximation compiler for tiny MLP classifiers.

Quantized MLP -> integer IR -> (approximations) -> bespoke Verilog, verified bit-exactly
against the golden model with cocotb + Verilator, and measured with Yosys + ABC on
printed standard cells or FPGA LUTs.
"""

from pathlib import Path

__version__ = "0.1.0"

#: The package folder; data files that ship with it (flows/, the cost coefficients) and,
#: in a source checkout, sim/ are found from here.
PACKAGE_DIR = Path(__file__).resolve().parent
