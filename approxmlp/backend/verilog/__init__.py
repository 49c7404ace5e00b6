"""The Verilog back end: IR in, one readable, lint-clean, bespoke module out.

:mod:`.module` writes the module (header, ports, what is read, the layers, the argmax);
:mod:`.neuron` one neuron's block; :mod:`.argmax` the comparator tree; :mod:`.body` the
declarations and instances; :mod:`.text` the signals, expressions and line wrapping;
:mod:`.primitives` the hand-written ``rtl/`` modules a design instantiates and where a
design's copies of them go. :mod:`.reference` is the independent plain generator the
proofs compare against (it uses no primitives).
"""

from .argmax import class_width
from .module import emit_verilog

__all__ = ["class_width", "emit_verilog"]
