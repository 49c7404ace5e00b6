"""Back ends: readers of the IR.

:mod:`.verilog` (bespoke RTL), :mod:`.simulate` (cocotb + Verilator), :mod:`.synth`
(Yosys + ABC onto printed cells or FPGA LUTs; :mod:`.liberty` the cells' figures),
:mod:`.formal` (proofs), :mod:`.onnx_export`, :mod:`.report` and :mod:`.inspect` (human
views), :mod:`.tools` (where Verilator and Yosys are found). None of them changes the IR;
the search's fast area and power estimate is :mod:`approxmlp.cost`, below them.
"""
