"""approxmlp: a hardware-approximation compiler for tiny MLP classifiers.

Quantized MLP -> integer IR -> (approximations) -> bespoke Verilog, verified bit-exactly
against the golden model with cocotb + Verilator, and measured with Yosys + ABC on
printed standard cells or FPGA LUTs.
"""

__version__ = "0.1.0"
