"""The cost model: a fast area/power estimate of an IR, for the search's inner loop.

:mod:`.features` names the features (counts of adders, gates, comparator and multiplexer
bits) once; :mod:`.design` counts them for one IR (the readable oracle), :mod:`.population`
for a whole search population at once (about 30x faster, tested equal to the oracle);
:mod:`.model` is the linear estimate on them and its calibration against synthesis.
Reads the IR and its ranges only; below the search and the back ends, which both use it.
"""
