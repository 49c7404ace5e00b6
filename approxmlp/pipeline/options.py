"""What a design is built with: :class:`CompileOptions`, checked before any work.

Its own module because every flow reads it (`compile`, `explore`, the realize step that
both end in, the steps' synthesis settings) and none of them should import another to get it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ApproxMLPError, ModelError, check_bits, check_seed

#: Bit widths a float model is quantized to when no option says otherwise (an integer
#: model, `approxmlp train`'s output, has its own).
DEFAULT_BITS = {"input_bits": 4, "weight_bits": 8, "act_bits": 8}


@dataclass(frozen=True)
class CompileOptions:
    target: str = "printed"
    #: None: the model's own widths (an integer model), else :data:`DEFAULT_BITS`.
    input_bits: int | None = None
    weight_bits: int | None = None
    act_bits: int | None = None
    registered: bool = False
    verify: bool = True
    synth: bool = True
    #: place and route iCE40 designs with nextpnr (target fpga-ice40; see backend/pnr.py)
    pnr: bool = True
    #: prove RTL = reference and netlist = RTL where that is quick (see :func:`run_formal`)
    formal: bool = True
    #: the largest design (kept connections) proven by default; None: AUTO_MAX_CONNECTIONS
    formal_max_connections: int | None = None
    clock_hz: float = 5.0
    module: str = "top"
    label: str | None = None
    seed: int = 0
    requantize: bool = False
    onnx: bool = True

    @property
    def routes(self) -> bool:
        """Whether the flow places and routes (nextpnr: synthesized iCE40 designs, unless off)."""
        return self.synth and self.pnr and self.target == "fpga-ice40"


def check_options(opts: CompileOptions) -> None:
    """Refuse impossible settings before any work is done."""
    from ..backend.synth import TARGETS

    if opts.target not in TARGETS:
        raise ApproxMLPError(f"unknown target {opts.target!r}; choose one of {', '.join(TARGETS)}")
    for name, lo in (("input_bits", 1), ("weight_bits", 2), ("act_bits", 1)):
        if getattr(opts, name) is not None:
            check_bits("--" + name.replace("_", "-"), getattr(opts, name), lo, 16, ModelError)
    check_seed(opts.seed)
    if not opts.clock_hz > 0:
        raise ApproxMLPError(f"--clock-hz must be positive, not {opts.clock_hz}")
