"""Back ends: readers of the IR.

:mod:`.verilog` (bespoke RTL), :mod:`.simulate` (cocotb + Verilator), :mod:`.synth`
(Yosys + ABC onto printed cells or FPGA LUTs), :mod:`.cost` (the search's fast area and
power estimate), :mod:`.report` and :mod:`.inspect` (human views), :mod:`.tools` (where
Verilator and Yosys are found). None of them changes the IR.
"""
