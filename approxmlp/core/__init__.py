"""The core: the integer MLP every stage reads, and what it means.

:mod:`.ir` is the frozen IR (integer weights, shifts, QReLU widths and a per-neuron
approximation record), :mod:`.golden` its reference semantics on whole batches,
:mod:`.ranges` the interval analysis that sizes every wire, :mod:`.argmax` the pruned
argmax tree the emitter writes and the cost model counts. Nothing here knows about
Verilog, tools or the search.
"""
