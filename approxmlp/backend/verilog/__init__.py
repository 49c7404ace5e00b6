"""The Verilog back end: IR in, one readable, lint-clean, bespoke module out.

:mod:`.module` writes the module (header, ports, the layers, the argmax);
:mod:`.neuron` one neuron's block; :mod:`.argmax` the comparator tree; :mod:`.body` the
declarations and their lint wrappers; :mod:`.text` the signals and expressions.
"""

from .argmax import class_width
from .module import emit_verilog

__all__ = ["class_width", "emit_verilog"]
